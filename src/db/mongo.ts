/**
 * Connecting to the database (MONGODB_URI, or the embedded FerretDB), the
 * collections the store uses and their indexes (created at start, idempotently).
 *
 * FerretDB has no multi-document transactions, so each write is a single
 * document and uniqueness is a unique index; see README "Storage".
 */
import { MongoClient, type Binary, type Collection, type Db, MongoError, MongoServerError } from 'mongodb';
import type { Config } from '../config.js';
import { startEmbedded } from './embedded.js';
import { PatientIndex } from '../records/patient-index.js';
import { migrateIdentifierKeys } from '../records/migrate.js';
import { FhirError, unavailable } from '../fhir/outcome.js';

export interface RecordDoc {
  _id: string; // `${recordId}/${version}`
  recordId: string;
  version: number;
  provider: string;
  identifierKey: string; // Bundle.identifier as JSON [system, value] (records/index-keys.ts bundleIdentifierKey)
  contentHash: string; // SHA-256 of the content without id/meta and insignificant whitespace
  contentId: string; // SHA-256 of the exact uploaded text (record_contents._id)
  /** SHA-256 of the caller's Bundle.meta without versionId/lastUpdated (records/store.ts metaFingerprint); absent in versions stored before it. */
  metaHash?: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  careContext: string;
  careContextDisplay: string | null;
  recordDate: Date;
  receivedAt: Date;
  bytes: number;
}

/** The newest version of each record: what search and read-by-id serve. */
export type CurrentDoc = Omit<RecordDoc, '_id'> & {
  _id: string /* recordId */;
  versionId: string;
  /** This version's content, compressed as in record_contents (records/content.ts): a read by id or a page of a patient's records needs no second lookup. Absent in documents written before it was kept here. */
  z?: Binary;
};

/** The exact uploaded text: `z` its raw DEFLATE (records/content.ts); `text` in documents written before compression. */
export interface ContentDoc { _id: string /* SHA-256 of text */; z?: Binary; text?: string }

export interface CareContextDoc {
  _id: string;
  provider: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  referenceNumber: string;
  display: string | null;
  hiTypes: string[];
  firstSeen: Date;
  lastSeen: Date;
  /** See records/index-keys.ts demographicKey. */
  demographicKey?: string | null;
  /** Set when the patient linked this care context to their ABHA address (discovery and linking). */
  linked?: { abhaAddress: string; at: Date; linkRefNumber: string };
}

/** A provider's bundle identifier → its record id (the upload path's entry point, looked up by _id). */
export interface IdentifierDoc { _id: string /* `${provider}|${identifierKey}` */; recordId: string }

/** A record's facts in the patient index (records/patient-index.ts): what searches and consents filter on. */
export type IndexEntry = Pick<RecordDoc, 'version' | 'provider' | 'abhaNumber' | 'abhaAddress' | 'careContext' | 'hiType' | 'recordDate'>;

/** One provider's patient (by ABHA number or address) and their current records. */
export interface PatientIndexDoc { _id: string /* `${provider}|n:${number}` or `${provider}|a:${address}` */; entries: Record<string /* recordId */, IndexEntry> }

/** Markers of one-time work done on a database (e.g. the patient index built). */
export interface MetaDoc { _id: string; builtAt: Date; records: number }

export interface Collections {
  identifiers: Collection<IdentifierDoc>;
  versions: Collection<RecordDoc>;
  current: Collection<CurrentDoc>;
  contents: Collection<ContentDoc>;
  careContexts: Collection<CareContextDoc>;
  patientIndex: Collection<PatientIndexDoc>;
  meta: Collection<MetaDoc>;
}

export function collections(db: Db): Collections {
  return {
    identifiers: db.collection<IdentifierDoc>('record_identifiers'),
    versions: db.collection<RecordDoc>('record_versions'),
    current: db.collection<CurrentDoc>('records'),
    contents: db.collection<ContentDoc>('record_contents'),
    careContexts: db.collection<CareContextDoc>('care_contexts'),
    patientIndex: db.collection<PatientIndexDoc>('patient_index'),
    meta: db.collection<MetaDoc>('store_meta'),
  };
}

/** Search keys: each search the API offers is served by one of these (newest first, then id). */
export async function ensureIndexes(c: Collections): Promise<void> {
  const order = { recordDate: -1, _id: -1 } as const;
  await Promise.all([
    c.versions.createIndex({ provider: 1, identifierKey: 1, version: 1 }, { unique: true, name: 'provider_identifier_version' }),
    c.versions.createIndex({ recordId: 1, version: 1 }, { unique: true, name: 'record_version' }),
    c.current.createIndex({ provider: 1, identifierKey: 1 }, { unique: true, name: 'provider_identifier' }),
    c.current.createIndex({ provider: 1, ...order }, { name: 'provider_date' }),
    c.current.createIndex({ provider: 1, abhaNumber: 1, ...order }, { name: 'provider_abha_number_date' }),
    c.current.createIndex({ provider: 1, abhaAddress: 1, ...order }, { name: 'provider_abha_address_date' }),
    c.current.createIndex({ provider: 1, careContext: 1, ...order }, { name: 'provider_care_context_date' }),
    c.current.createIndex({ provider: 1, hiType: 1, ...order }, { name: 'provider_hitype_date' }),
    c.careContexts.createIndex({ provider: 1, abhaNumber: 1 }, { name: 'provider_abha_number' }),
    c.careContexts.createIndex({ provider: 1, abhaAddress: 1 }, { name: 'provider_abha_address' }),
    c.careContexts.createIndex({ provider: 1, demographicKey: 1 }, { name: 'provider_demographics' }),
  ]);
  // Once per store, before it serves: identifier keys of older stores rewritten, and the patient index built for a store created before it existed.
  await migrateIdentifierKeys(c);
  await new PatientIndex(c.patientIndex, c.meta).ensureBuilt(c.current);
}

export interface Database {
  client: MongoClient;
  db: Db;
  uri: string;
  embedded: boolean;
  close(): Promise<void>;
}

export async function connectDatabase(config: Config, log: (msg: string) => void): Promise<Database> {
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
  });
  await client.connect();
  const db = client.db(config.MONGODB_DB);
  return {
    client, db, uri, embedded: !!stopEmbedded,
    async close() { await client.close(); await stopEmbedded?.(); },
  };
}

/**
 * Whether the server is FerretDB (embedded or not). FerretDB applies a
 * conditional update as a read then a write, so a condition beyond _id
 * neither protects against another process nor uses an index (it scans the
 * collection); on FerretDB the store relies on its per-process locks instead.
 */
export async function isFerretDB(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return 'ferretdbVersion' in info || JSON.stringify(info).toLowerCase().includes('ferretdb');
}

/** A unique-index clash (E11000): the write lost a race, or was already done. */
export const isDuplicateKey = (e: unknown): boolean => e instanceof MongoServerError && e.code === 11000;

/** Database failures become 503 OperationOutcomes; everything else passes through. */
export function asUnavailable(e: unknown): unknown {
  if (e instanceof FhirError) return e;
  if ((e instanceof MongoError && isConnectivity(e)) || isSocketError(e)) return unavailable('The database is unavailable; try again shortly');
  return e;
}

/**
 * A socket failure the driver let through unwrapped. Seen when the database
 * went away between a pooled connection's last use and its next write:
 * `Error: This socket has been ended by the other party` (code EPIPE), which
 * then answered 500 instead of 503.
 */
const SOCKET_CODES = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'ENOTCONN', 'EHOSTUNREACH', 'ENETUNREACH']);
const isSocketError = (e: unknown): boolean =>
  e instanceof Error && SOCKET_CODES.has(String((e as { code?: unknown }).code));

const UNAVAILABLE_CODES = new Set([6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436]); // host unreachable, shutdown, stepdown, not primary
const UNAVAILABLE_NAMES = new Set([
  'MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoTopologyClosedError',
  'MongoNotConnectedError', 'MongoPoolClearedError', 'MongoPoolClosedError', 'MongoWaitQueueTimeoutError',
]);

function isConnectivity(e: MongoError): boolean {
  return UNAVAILABLE_NAMES.has(e.name) || UNAVAILABLE_CODES.has(Number(e.code))
    || e.hasErrorLabel('ResetPool') || e.hasErrorLabel('RetryableWriteError') || e.hasErrorLabel('TransientTransactionError');
}
