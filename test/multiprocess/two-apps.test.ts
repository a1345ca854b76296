/**
 * Two app instances on one database, racing: what several server processes
 * on one MongoDB do to each other (src/db/engine.ts says what holds).
 *
 * - uploads of one Bundle.identifier: exactly one record, versions 1..n with
 *   no gap, the pointer and the patient-index entry at the newest version;
 * - wrong one-time codes for one link request: never more attempts than
 *   LINK_OTP_MAX_ATTEMPTS in total;
 * - resume() of one transaction: each page pushed once, one notify; a live
 *   lease is left alone, an expired one is taken over.
 *
 * Each instance has its own lock tables, as a second process would, where
 * the engine makes that legal (`engine.multiProcess`: MongoDB, e.g. with
 * MONGODB_URI set). On FerretDB (the embedded default) guarded writes are
 * atomic only under one process's locks, so there the same races run between
 * two apps sharing one engine (one process serving both), and the lease
 * scenarios run as they would on one process.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { v4 as uuidv4 } from 'uuid';
import { notifyConsent } from '../support/consents.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { detectEngine } from '../../src/db/engine.js';
import { keysOf } from '../../src/records/patient-index.js';
import { generateKeyMaterial } from '../../src/abdm/fidelius.js';
import type { ConsentDetail } from '../../src/consents/schema.js';
import type { HiRequestInput } from '../../src/abdm/transfer.js';

// What the test database guarantees decides which form of each race is legal (known before the tests are collected).
const probe = new MongoClient(inject('mongoUri'), { serverSelectionTimeoutMS: 5000 });
const ENGINE = await detectEngine(probe.db('admin')).finally(() => probe.close());
const MULTI = ENGINE.multiProcess;
console.log(
  MULTI
    ? `[multiprocess] ${inject('databaseKind')} is ${ENGINE.kind}: races run between two apps with their own lock tables, as two processes; the shared-lock form is not needed there and did not run.`
    : `[multiprocess] ${inject('databaseKind')} is ${ENGINE.kind}: conditional writes are not atomic across processes, so the races between apps with their own lock tables did not run; their single-process form (two apps sharing one engine's locks) ran instead. Set MONGODB_URI to a MongoDB to run them.`,
);

const HIP = 'HIP-MP';
const HIU = 'HIU-MP';
const MAX_ATTEMPTS = 3;
const NOTIFY = '/v0.5/health-information/notify';
const g = createGenerator(77031);

let gw: StandInGateway;
let viewer: Server;
let viewerUrl: string;
let a: TestApp;
/** Another process: the same database, its own memory and lock tables. */
let other: TestApp;
/** The same process serving a second app: the same database and engine (lock tables). */
let sibling: TestApp;

/** Pages the viewer received, per transaction; `gates` hold a transaction's pages until opened. */
const pages = new Map<string, number[]>();
const gates = new Map<string, Promise<void>>();

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  gw = await startStandInGateway();
  viewer = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    const txId = decodeURIComponent((req.url ?? '').split('/').pop() ?? '');
    pages.set(txId, [...(pages.get(txId) ?? []), body.pageNumber]);
    await gates.get(txId);
    await new Promise((r) => setTimeout(r, 20)); // a slow viewer widens the window a second runner would need
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((r) => viewer.listen(0, '127.0.0.1', () => r()));
  viewerUrl = `http://127.0.0.1:${(viewer.address() as AddressInfo).port}`;
  const env = {
    GATEWAY_BASE_URL: gw.url,
    GATEWAY_CLIENT_ID: 'abha-vault',
    GATEWAY_CLIENT_SECRET: 's3cret',
    HI_PUSH_ALLOWED_HOSTS: '127.0.0.1', // the stand-in viewer is on loopback
    LINK_OTP_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    HI_PAGE_SIZE: '1',
    RATE_LIMIT_PER_MINUTE: '0',
    LINK_INIT_PER_CALLER_PER_MINUTE: '0',
  };
  a = await createTestApp(env);
  other = await createTestApp({ ...env, MONGODB_DB: a.config.MONGODB_DB });
  sibling = await createTestApp({ ...env, MONGODB_DB: a.config.MONGODB_DB }, undefined, { engine: a.engine });
});

afterAll(async () => {
  for (const t of [other, sibling])
    if (t) {
      await t.client.close();
      rmSync(t.config.DATA_DIR, { recursive: true, force: true });
    }
  await a?.close();
  viewer?.closeAllConnections();
  await new Promise<void>((r) => (viewer ? viewer.close(() => r()) : r()));
  await gw?.close();
});

// ---------------------------------------------------------------------------
// Scenarios, each between `a` and a second app `b`
// ---------------------------------------------------------------------------

async function racingUploads(b: TestApp) {
  const p = g.patient();
  const n = 12;
  const records = Array.from({ length: n }, () =>
    g.record(p, 'Prescription', { careContext: { referenceNumber: 'OP-MP', display: 'OP-MP' } }),
  );
  const identifier = records[0].bundle.identifier!;
  for (const r of records) r.bundle.identifier = { ...identifier };
  const statuses = await Promise.all(
    records.map((r, i) =>
      (i % 2 ? b : a)
        .request('/fhir/Bundle', {
          method: 'POST',
          body: JSON.stringify(r.bundle),
          headers: uploadHeaders('OP-MP'),
          as: ['hip', HIP],
        })
        .then(async (res) => [res.status, await res.text()] as const),
    ),
  );
  for (const [status, text] of statuses) expect(status, text).toBe(201);

  const c = a.collections;
  const ids = await c.identifiers.find({ _id: { $regex: `^${HIP}\\|` } }).toArray();
  const mine = ids.filter((d) => d._id.includes(identifier.value!));
  expect(mine).toHaveLength(1); // exactly one record
  const recordId = mine[0].recordId;
  expect(await c.current.countDocuments({ recordId })).toBe(1);
  const versions = (await c.versions.find({ recordId }).toArray()).map((v) => v.version).sort((x, y) => x - y);
  expect(versions).toEqual(Array.from({ length: n }, (_, i) => i + 1)); // contiguous, none lost
  const current = (await c.current.findOne({ _id: recordId }))!;
  expect(current.version).toBe(n);
  expect(keysOf(current).length).toBeGreaterThan(0);
  for (const key of keysOf(current)) {
    const entry = (await c.patientIndex.findOne({ _id: key }))?.entries?.[recordId];
    expect(entry?.version, key).toBe(n); // neither lost nor moved back
  }
  const cc = await c.careContexts
    .find({ provider: HIP, referenceNumber: 'OP-MP', abhaNumber: current.abhaNumber, abhaAddress: current.abhaAddress })
    .toArray();
  expect(cc).toHaveLength(1);
  expect(cc[0].hiTypes).toEqual(['Prescription']);
}

async function linkRequest(p: SyntheticPatient, cc: string): Promise<{ ref: string; otp: string }> {
  const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: cc, display: cc } });
  expect(
    (
      await a.request('/fhir/Bundle', {
        method: 'POST',
        body: JSON.stringify(rec.bundle),
        headers: uploadHeaders(cc),
        as: ['hip', HIP],
      })
    ).status,
  ).toBe(201);
  const res = await a.request('/v0.5/links/link/init', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
    body: JSON.stringify({
      requestId: uuidv4(),
      timestamp: new Date().toISOString(),
      transactionId: uuidv4(),
      patient: { id: p.abhaAddress, referenceNumber: p.abhaAddress, careContexts: [{ referenceNumber: cc }] },
    }),
  });
  expect(res.status).toBe(202);
  const ref = (await res.json()).linkRefNumber as string;
  await expect.poll(() => a.otps.some((m) => m.linkRefNumber === ref)).toBe(true);
  return { ref, otp: a.otps.find((m) => m.linkRefNumber === ref)!.otp };
}

const confirm = async (t: TestApp, ref: string, token: string) =>
  (
    await t.request('/v0.5/links/link/confirm', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        requestId: uuidv4(),
        timestamp: new Date().toISOString(),
        confirmation: { linkRefNumber: ref, token },
      }),
    })
  ).json() as Promise<{ status: string; reason?: string }>;

async function racingWrongCodes(b: TestApp) {
  const p = g.patient();
  const { ref, otp } = await linkRequest(p, `LK-${uuidv4().slice(0, 8)}`);
  const wrong = otp === '000000' ? '111111' : '000000';
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => confirm(i % 2 ? b : a, ref, wrong)));
  expect(answers.every((x) => x.status === 'ERRORED')).toBe(true);
  // Only counted attempts have their code checked: exactly MAX_ATTEMPTS - 1 "wrong", the rest refused as over the
  // limit.
  expect(answers.filter((x) => x.reason === 'wrong one-time code')).toHaveLength(MAX_ATTEMPTS - 1);
  const stored = await a.client
    .db(a.config.MONGODB_DB)
    .collection('link_requests')
    .findOne({ _id: ref as any });
  expect(stored!.attempts).toBe(MAX_ATTEMPTS); // never over the limit, across both
  expect(stored!.status).toBe('FAILED');
  expect((await confirm(b, ref, otp)).status).toBe('ERRORED'); // the right code, too late
}

async function racingRightCode(b: TestApp) {
  const p = g.patient();
  const cc = `LK-${uuidv4().slice(0, 8)}`;
  const { ref, otp } = await linkRequest(p, cc);
  const answers = await Promise.all([
    confirm(a, ref, otp),
    confirm(b, ref, otp),
    confirm(a, ref, otp),
    confirm(b, ref, otp),
  ]);
  expect(answers.filter((x) => x.status === 'LINKED')).toHaveLength(1); // LINKED once, guarded on PENDING
  const linked = await a.collections.careContexts.find({ provider: HIP, referenceNumber: cc }).toArray();
  expect(linked.map((d) => d.linked?.linkRefNumber)).toEqual([ref]);
}

// Transfers ------------------------------------------------------------------

async function grant(p: SyntheticPatient): Promise<string> {
  const consentId = uuidv4();
  const detail: ConsentDetail = {
    schemaVersion: 'v0.5',
    consentId,
    createdAt: new Date().toISOString(),
    patient: { id: p.abhaAddress },
    careContexts: [{ patientReference: 'P', careContextReference: 'CC-MP' }],
    purpose: { code: 'CAREMGT', text: 'Care management' },
    hip: { id: HIP },
    hiu: { id: HIU },
    hiTypes: ['Prescription'] as ConsentDetail['hiTypes'],
    permission: {
      accessMode: 'VIEW',
      dateRange: { from: '2022-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
      dataEraseAt: '2099-01-01T00:00:00Z',
      frequency: { unit: 'HOUR', value: 1000, repeats: 0 },
    },
  };
  const res = await notifyConsent(a, { consentId, status: 'GRANTED', consentDetail: detail }, 'v0.5');
  expect(res.status).toBe(202);
  return consentId;
}

/** A patient with 3 consented records, and a transaction accepted but not run (as a restart finds it). */
async function acceptedTransfer(): Promise<string> {
  const p = g.patient();
  for (const date of ['2023-02-01', '2023-08-01', '2024-03-01']) {
    const rec = g.record(p, 'Prescription', { date, careContext: { referenceNumber: 'CC-MP', display: 'CC-MP' } });
    expect(
      (
        await a.request('/fhir/Bundle', {
          method: 'POST',
          body: JSON.stringify(rec.bundle),
          headers: uploadHeaders('CC-MP'),
          as: ['hip', HIP],
        })
      ).status,
    ).toBe(201);
  }
  const consentId = await grant(p);
  const txId = uuidv4();
  const key = generateKeyMaterial();
  const input: HiRequestInput = {
    requestId: uuidv4(),
    transactionId: txId,
    consentId,
    dateRange: { from: '2023-01-01T00:00:00Z', to: '2025-01-01T00:00:00Z' },
    dataPushUrl: `${viewerUrl}/push/${txId}`,
    keyMaterial: {
      dhPublicKey: { expiry: new Date(Date.now() + 3600_000).toISOString(), keyValue: key.publicKey },
      nonce: key.nonce,
    },
  };
  await a.transfers.accept(input, (await a.consents.get(consentId))!);
  return txId;
}

const notifies = (txId: string) =>
  gw.callbacks.filter((c) => c.path === NOTIFY && c.body?.notification?.transactionId === txId);

async function finished(txId: string, b: TestApp) {
  await gw.waitFor(NOTIFY, (c) => c.body?.notification?.transactionId === txId, 20_000);
  // join whatever still runs (a finished one is not run again)
  await Promise.all([a.transfers.run(txId), b.transfers.run(txId)]);
  await new Promise((r) => setTimeout(r, 200));
  expect(pages.get(txId)).toEqual([1, 2, 3]); // each page once, in order
  expect(notifies(txId)).toHaveLength(1);
  expect(notifies(txId)[0].body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
  const tx = await a.transfers.transactions.findOne({ _id: txId });
  expect(tx).toMatchObject({ status: 'TRANSFERRED', pagesSent: 3, notified: true });
  expect(tx!.lease).toBeUndefined(); // released at the end
}

async function racingResume(b: TestApp) {
  const txId = await acceptedTransfer();
  await Promise.all([a.transfers.resume(), b.transfers.resume(), a.transfers.resume(), b.transfers.resume()]);
  await finished(txId, b);
}

async function liveLeaseIsLeftAlone(b: TestApp) {
  const txId = await acceptedTransfer();
  let open!: () => void;
  gates.set(
    txId,
    new Promise<void>((r) => {
      open = r;
    }),
  );
  const running = a.transfers.run(txId);
  await expect.poll(() => pages.get(txId)?.length ?? 0).toBe(1); // a holds the lease, mid-page 1
  const tx = await a.transfers.transactions.findOne({ _id: txId });
  expect(tx!.lease?.owner).toBe(a.transfers.owner);
  await b.transfers.resume(); // not b's: left alone
  await b.transfers.run(txId);
  expect((await b.transfers.transactions.findOne({ _id: txId }))!.lease?.owner).toBe(a.transfers.owner);
  open();
  await running;
  await finished(txId, b);
}

async function expiredLeaseIsTakenOver(b: TestApp) {
  const txId = await acceptedTransfer();
  // As a process that crashed while running it would have left it: its lease, live for another minute.
  await a.transfers.transactions.updateOne(
    { _id: txId },
    { $set: { lease: { owner: 'crashed-process', until: new Date(Date.now() + 60_000) } } },
  );
  expect(await b.transfers.resume()).toBe(0);
  await new Promise((r) => setTimeout(r, 200));
  expect(pages.get(txId)).toBeUndefined();
  b.clock.now = new Date(Date.now() + 61_000); // past its expiry
  try {
    expect(await b.transfers.resume()).toBe(1);
    await gw.waitFor(NOTIFY, (c) => c.body?.notification?.transactionId === txId, 20_000);
    await b.transfers.run(txId);
  } finally {
    b.clock.now = undefined;
  }
  await finished(txId, b);
}

// ---------------------------------------------------------------------------

describe.runIf(MULTI)('two processes on one MongoDB (each its own lock tables)', () => {
  it('racing uploads of one identifier: one record, versions contiguous, pointer and patient index at the newest', () =>
    racingUploads(other));
  it('racing wrong one-time codes: never more attempts than LINK_OTP_MAX_ATTEMPTS across both', () =>
    racingWrongCodes(other));
  it('racing right one-time codes: linked once', () => racingRightCode(other));
  it('racing resume() of one transaction: each page pushed once, one notify', () => racingResume(other));
  it("another process's live lease is left alone", () => liveLeaseIsLeftAlone(other));
  it('an expired lease is taken over by another process', () => expiredLeaseIsTakenOver(other));
});

describe.runIf(!MULTI)('one process serving two apps (FerretDB: guarded writes through one lock table)', () => {
  it('racing uploads of one identifier: one record, versions contiguous, pointer and patient index at the newest', () =>
    racingUploads(sibling));
  it('racing wrong one-time codes: never more attempts than LINK_OTP_MAX_ATTEMPTS', () => racingWrongCodes(sibling));
  it('racing right one-time codes: linked once', () => racingRightCode(sibling));
  it('racing resume() of one transaction: each page pushed once, one notify', () => racingResume(sibling));
  it('a live lease is left alone by a second claimant', () => liveLeaseIsLeftAlone(sibling));
  it('a lease is taken over only after it expired', () => expiredLeaseIsTakenOver(sibling));
});

describe('either engine', () => {
  it('a second app with its own lock tables still sees a live lease of the first as not its own', () =>
    liveLeaseIsLeftAlone(other));
});
