/**
 * Builds the real app on the real test database, in a database of its own
 * per call so test files run in parallel without sharing data.
 */
import { inject } from 'vitest';
import { MongoClient } from 'mongodb';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { createLog } from '../../src/log.js';
import { collections, ensureIndexes, type Collections } from '../../src/db/mongo.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { RecordStore } from '../../src/records/store.js';
import { createApp } from '../../src/app.js';
import { StructureValidator } from '../../src/fhir/structure.js';

let structure: StructureValidator | undefined;
/** The compiled R4 definitions are shared within a test file (compiling takes ~0.5 s). */
export const sharedStructure = () => (structure ??= new StructureValidator());

export interface TestApp {
  app: ReturnType<typeof createApp>;
  config: Config;
  client: MongoClient;
  collections: Collections;
  logs: string[];
  close(): Promise<void>;
}

let counter = 0;

export async function createTestApp(env: Record<string, string> = {}, uri = inject('mongoUri')): Promise<TestApp> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'info', MONGODB_URI: uri, MONGODB_DB: `t_${process.pid}_${Date.now().toString(36)}_${counter++}`, DB_TIMEOUT_MS: '2000', ...env });
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: config.DB_TIMEOUT_MS });
  await client.connect();
  const db = client.db(config.MONGODB_DB);
  const c = collections(db);
  await ensureIndexes(c);
  const logs: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(chunk.toString()); cb(); } });
  const validator = new DocumentValidator({ maxBytes: config.MAX_BODY_BYTES, maxDepth: config.MAX_JSON_DEPTH, abhaSystems: config.ABHA_IDENTIFIER_SYSTEMS }, sharedStructure());
  const app = createApp({ config, store: new RecordStore(c), validator, log: createLog('info', sink) });
  return {
    app, config, client, collections: c, logs,
    async close() { await db.dropDatabase().catch(() => {}); await client.close(); },
  };
}

/** Headers of a provider upload. */
export const uploadHeaders = (facility = 'H1', careContext = 'OP-1', extra: Record<string, string> = {}) => ({
  'Content-Type': 'application/fhir+json',
  'X-Facility-Id': facility,
  'X-Care-Context': careContext,
  ...extra,
});
