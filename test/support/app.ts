/**
 * Builds the real app on the real test database, in a database of its own
 * per call so test files run in parallel without sharing data.
 */
import { expect, inject } from 'vitest';
import { MongoClient } from 'mongodb';
import { Writable } from 'node:stream';
import { loadConfig, validatorOptions, type Config } from '../../src/config.js';
import { createLog } from '../../src/log.js';
import { collections, ensureIndexes, type Collections } from '../../src/records/model.js';
import { detectEngine, type Engine } from '../../src/db/engine.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { createApp, createServices } from '../../src/app.js';
import type { Repositories } from '../../src/records/repository.js';
import { StructureValidator } from '../../src/fhir/structure.js';
import { ConsentStore } from '../../src/consents/store.js';
import { AuditLog } from '../../src/audit/log.js';
import { loadVerifier } from '../../src/auth/keys.js';
import { loadPagingKeys } from '../../src/auth/paging-keys.js';
import type { HiTransfers } from '../../src/abdm/transfer.js';
import type { HipLinker } from '../../src/abdm/hip-linking.js';
import type { OtpMessage } from '../../src/abdm/otp-delivery.js';
import { signDevToken } from '../../src/auth/token.js';
import type { Role } from '../../src/auth/caller.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let structure: StructureValidator | undefined;
/** The compiled R4 definitions are shared within a test file (compiling takes ~0.5 s). */
export const sharedStructure = () => (structure ??= new StructureValidator());

export interface TestApp {
  app: ReturnType<typeof createApp>;
  config: Config;
  consents: ConsentStore;
  audit: AuditLog;
  transfers: HiTransfers;
  /** HIP-initiated linking, context and SMS notify (src/abdm/hip-linking.ts); tests call its sweep() directly. */
  hipLinks: HipLinker;
  /** The app's repositories (records/repository.ts), for tests of the access rules without HTTP. */
  repositories: Repositories;
  /** One-time codes the linking notifier was asked to send (none when env sets LINK_OTP_DELIVERY). */
  otps: OtpMessage[];
  /** A bearer token signed with this app's development key. */
  token(role: Role, facility: string, opts?: { ttlSec?: number }): Promise<string>;
  /** app.request as `role` of `facility` (no token when `as` is omitted). */
  request(path: string, init?: RequestInit & { as?: [Role, string] }): Promise<Response>;
  /** Uploads `bundle` as provider `hip` under `careContext` (and its display); expects 201, gives the id. */
  upload(hip: string, bundle: unknown, careContext: string, display?: string): Promise<string>;
  clock: { now: Date | undefined };
  client: MongoClient;
  collections: Collections;
  /** What the test database guarantees (db/engine.ts), with this app's lock tables. */
  engine: Engine;
  logs: string[];
  close(): Promise<void>;
}

let counter = 0;

export async function createTestApp(
  env: Record<string, string> = {},
  uri = inject('mongoUri'),
  opts: { engine?: Engine } = {},
): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-app-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    DATA_DIR: dataDir,
    MONGODB_URI: uri,
    MONGODB_DB: `t_${process.pid}_${Date.now().toString(36)}_${counter++}`,
    DB_TIMEOUT_MS: '2000',
    ...env,
  });
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: config.DB_TIMEOUT_MS });
  await client.connect();
  const db = client.db(config.MONGODB_DB);
  const c = collections(db);
  // `opts.engine`: share another app's engine (its lock tables), as one process serving two apps would.
  const engine = opts.engine ?? (await detectEngine(db));
  await ensureIndexes(c, engine);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const validator = new DocumentValidator(validatorOptions(config), sharedStructure());
  const clock: { now: Date | undefined } = { now: undefined };
  const now = () => clock.now ?? new Date();
  const consents = new ConsentStore(db);
  const audit = new AuditLog(db, now);
  await Promise.all([consents.ensureIndexes(), audit.ensureIndexes()]);
  const verifier = await loadVerifier(config);
  const pagingKeys = loadPagingKeys(config);
  const log = createLog('info', sink);
  const { gateway, store, repositories, transfers, hipLinks, sessions } = await createServices({
    db,
    collections: c,
    engine,
    consents,
    audit,
    config,
    validator,
    pagingKeys,
    log,
    clock: now,
  });
  const otps: OtpMessage[] = [];
  const app = createApp({
    config,
    store,
    consents,
    audit,
    repositories,
    transfers,
    gateway,
    hipLinks,
    sessions,
    db,
    collections: c,
    notifier: env.LINK_OTP_DELIVERY
      ? undefined
      : {
          async send(m) {
            otps.push(m);
          },
        },
    validator,
    verifier,
    log,
    clock: now,
  });
  const tokens = new Map<string, Promise<string>>();
  const token = (role: Role, facility: string, opts: { ttlSec?: number } = {}) => {
    const key = `${role}|${facility}|${opts.ttlSec ?? ''}`;
    if (!tokens.has(key)) tokens.set(key, signDevToken(dataDir, { role, facility, ttlSec: opts.ttlSec }));
    return tokens.get(key)!;
  };
  const request = async (path: string, init: RequestInit & { as?: [Role, string] } = {}) => {
    const { as, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (as) headers.set('Authorization', `Bearer ${await token(as[0], as[1])}`);
    return app.request(path, { ...rest, headers });
  };
  const upload = async (hip: string, bundle: unknown, careContext: string, display?: string) => {
    const res = await request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(bundle),
      headers: uploadHeaders(careContext, display === undefined ? {} : { 'X-Care-Context-Display': display }),
      as: ['hip', hip],
    });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()).id as string;
  };
  return {
    app,
    config,
    client,
    collections: c,
    engine,
    logs,
    consents,
    audit,
    transfers,
    hipLinks,
    repositories,
    token,
    request,
    upload,
    clock,
    otps,
    async close() {
      await Promise.race([hipLinks.idle(), new Promise((r) => setTimeout(r, 5000).unref())]); // its background sends
      await db.dropDatabase().catch(() => {});
      await client.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Headers of an upload (the caller is given separately, as a token). */
export const uploadHeaders = (careContext = 'OP-1', extra: Record<string, string> = {}) => ({
  'Content-Type': 'application/fhir+json',
  'X-Care-Context': careContext,
  ...extra,
});
