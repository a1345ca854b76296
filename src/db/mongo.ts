/**
 * Connecting to the database (MONGODB_URI, or the embedded FerretDB), the
 * collections the store uses and their indexes (created at start, idempotently).
 *
 * What each engine guarantees, and the guarded writes the stores use, are in
 * db/engine.ts; see also README "Storage".
 */
import {
  MongoClient,
  type Collection,
  type Db,
  type Document,
  type Filter,
  MongoError,
  MongoServerError,
  type OptionalUnlessRequiredId,
  type WithId,
} from 'mongodb';
import type { Config } from '../config.js';
import { startEmbedded } from './embedded.js';
import { detectEngine, type Engine } from './engine.js';
import { FhirError, unavailable } from '../fhir/outcome.js';

export interface Database {
  client: MongoClient;
  db: Db;
  uri: string;
  embedded: boolean;
  /** What this database guarantees (db/engine.ts), detected once here. */
  engine: Engine;
  close(): Promise<void>;
}

/**
 * Commands the driver sends for itself rather than for the server's work (handshake, authentication, closing its
 * sessions): not counted by countCommands. The heartbeat's `hello` is not command-monitored at all.
 */
const DRIVER_COMMANDS = new Set(['hello', 'ismaster', 'isMaster', 'saslStart', 'saslContinue', 'endSessions']);

/**
 * Calls `count` with the name of each command `client` sends to the database (`find`, `insert`, `getMore`, …), the
 * driver's own excepted (DRIVER_COMMANDS). The client must have been created with `monitorCommands: true`.
 */
export function countCommands(client: MongoClient, count: (command: string) => void): void {
  client.on('commandStarted', (e) => {
    if (!DRIVER_COMMANDS.has(e.commandName)) count(e.commandName);
  });
}

/** `onCommand`: called with each command's name (countCommands), e.g. to count them in a metric. */
export async function connectDatabase(
  config: Config,
  log: (msg: string) => void,
  opts: { onCommand?: (command: string) => void } = {},
): Promise<Database> {
  let uri = config.MONGODB_URI;
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!uri) {
    const embedded = await startEmbedded({ dataDir: config.DATA_DIR, log });
    uri = embedded.uri;
    stopEmbedded = () => embedded.stop();
  }
  const client = new MongoClient(uri, {
    serverSelectionTimeoutMS: config.DB_TIMEOUT_MS,
    connectTimeoutMS: config.DB_TIMEOUT_MS,
    appName: 'abha-vault',
    monitorCommands: !!opts.onCommand,
  });
  if (opts.onCommand) countCommands(client, opts.onCommand);
  await client.connect();
  const db = client.db(config.MONGODB_DB);
  const engine = await detectEngine(db);
  return {
    client,
    db,
    uri,
    embedded: !!stopEmbedded,
    engine,
    async close() {
      await client.close();
      await stopEmbedded?.();
    },
  };
}

/** A unique-index clash (E11000): the write lost a race, or was already done. */
export const isDuplicateKey = (e: unknown): boolean => e instanceof MongoServerError && e.code === 11000;

/**
 * Inserts `doc` unless its _id is taken (the unique _id decides, across processes); then the document that holds it
 * (null if it went again meanwhile).
 */
export async function insertFirst<T extends Document & { _id: string }>(
  coll: Collection<T>,
  doc: OptionalUnlessRequiredId<T>,
): Promise<{ inserted: true } | { existing: WithId<T> | null }> {
  try {
    await coll.insertOne(doc);
    return { inserted: true };
  } catch (e) {
    if (!isDuplicateKey(e)) throw e;
    return { existing: await coll.findOne({ _id: doc._id } as Filter<T>) };
  }
}

/** `text` as a regular expression that matches exactly it (for `$regex` queries). */
export const regexLiteral = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Database failures become 503 OperationOutcomes; everything else passes through. */
export function asUnavailable(e: unknown): unknown {
  if (e instanceof FhirError) return e;
  if ((e instanceof MongoError && isConnectivity(e)) || isSocketError(e))
    return unavailable('The database is unavailable; try again shortly');
  return e;
}

/**
 * A socket failure the driver let through unwrapped. Seen when the database
 * went away between a pooled connection's last use and its next write:
 * `Error: This socket has been ended by the other party` (code EPIPE), which
 * then answered 500 instead of 503.
 */
const SOCKET_CODES = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const isSocketError = (e: unknown): boolean =>
  e instanceof Error && SOCKET_CODES.has(String((e as { code?: unknown }).code));

// host unreachable, shutdown, stepdown, not primary
const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436]);
const UNAVAILABLE_NAMES = new Set([
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoTopologyClosedError',
  'MongoNotConnectedError',
  'MongoPoolClearedError',
  'MongoPoolClosedError',
  'MongoWaitQueueTimeoutError',
]);

function isConnectivity(e: MongoError): boolean {
  return (
    UNAVAILABLE_NAMES.has(e.name) ||
    UNAVAILABLE_CODES.has(Number(e.code)) ||
    e.hasErrorLabel('ResetPool') ||
    e.hasErrorLabel('RetryableWriteError') ||
    e.hasErrorLabel('TransientTransactionError')
  );
}
