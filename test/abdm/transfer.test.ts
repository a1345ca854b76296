/**
 * The health-information push (ABDM "Health-information request and push"),
 * end to end over real HTTP: a stand-in ABDM gateway (sessions + callbacks)
 * and a stand-in viewer (HIU) dataPushUrl, both node:http servers started
 * here, against the real app on the real test database.
 *
 * The viewer makes its own Fidelius key material, sends the request as the
 * gateway (role cm) would, and decrypts every pushed entry with its private
 * key: what it can read must be exactly what the consent allows within the
 * requested dateRange. Faults at the viewer (down, 5xx, slow, 4xx) and a
 * revocation mid-transfer must end in a FAILED/ERRORED notify, never a silent drop.
 *
 * This file speaks ABDM v0.5 (GATEWAY_API_VERSION v0.5: its stand-in gateway
 * serves /v0.5/sessions); test/abdm/hi-v3.test.ts covers v3. The viewer is on
 * loopback, which the push refuses unless HI_PUSH_ALLOWED_HOSTS names it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { notifyConsent } from '../support/consents.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import type { ConsentDetail } from '../../src/consents/schema.js';
import type { HiRequestInput } from '../../src/abdm/transfer.js';
import { decrypt, generateKeyMaterial, parsePublicKey, type KeyMaterial } from '../../src/abdm/fidelius.js';

const HIP = 'HIP-1';
const HIU = 'HIU-1';
const CLIENT_ID = 'abha-vault';
const CLIENT_SECRET = 's3cret';
const GATEWAY_TOKEN = `gw-token-${uuidv4()}`;
const ON_REQUEST = '/v0.5/health-information/hip/on-request';
const NOTIFY = '/v0.5/health-information/notify';

// ---------------------------------------------------------------------------
// Stand-in servers
// ---------------------------------------------------------------------------

/** One global sequence across both stand-ins, to check the order of events. */
let seq = 0;

interface Callback {
  seq: number;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
}
const gatewayCalls: Callback[] = [];
const sessionCalls: { clientId?: string; clientSecret?: string; ok: boolean }[] = [];
/** Per transactionId: something the gateway does when that transaction's on-request arrives, before answering. */
const onRequestHooks = new Map<string, () => Promise<void>>();

type Behaviour =
  | { kind: 'ok' }
  | { kind: 'fail'; status: number; times: number } // answer `status` to the first `times` requests, then 200
  | { kind: 'refuse'; status: number } // always answer `status`
  | { kind: 'slow'; delayMs: number; times: number } // hold the first `times` requests for delayMs
  | { kind: 'revoke'; consentId: string; onPage: number } // revoke the consent (via the app) when this page arrives, then 200
  | { kind: 'hook'; onPage: number; run: () => Promise<void> }; // run something (via the app) when this page arrives, then 200

interface Attempt {
  seq: number;
  pageNumber: number;
  outcome: number | 'held';
}
interface ViewerLog {
  attempts: Attempt[];
  delivered: any[];
}

const behaviours = new Map<string, Behaviour>();
const hooked = new Set<string>();
const viewerLogs = new Map<string, ViewerLog>();
const logOf = (key: string): ViewerLog => {
  let l = viewerLogs.get(key);
  if (!l) viewerLogs.set(key, (l = { attempts: [], delivered: [] }));
  return l;
};

let gateway: Server;
let viewer: Server;
let gatewayUrl: string;
let viewerUrl: string;
let deadUrl: string; // a port nothing listens on

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown = {}) {
  res.on('error', () => {});
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => {
    if (!server?.listening) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });

function startGateway(): Server {
  return createServer(async (req, res) => {
    const text = await readBody(req);
    let body: any;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      return send(res, 400, { error: 'not JSON' });
    }
    if (req.method === 'POST' && req.url === '/v0.5/sessions') {
      const ok = body.clientId === CLIENT_ID && body.clientSecret === CLIENT_SECRET;
      sessionCalls.push({ clientId: body.clientId, clientSecret: body.clientSecret, ok });
      return ok
        ? send(res, 200, { accessToken: GATEWAY_TOKEN, expiresIn: 600, tokenType: 'bearer' })
        : send(res, 401, { error: 'bad client credentials' });
    }
    gatewayCalls.push({ seq: ++seq, path: req.url ?? '', headers: req.headers, body });
    if (req.headers.authorization !== `Bearer ${GATEWAY_TOKEN}`) return send(res, 401, { error: 'bad token' });
    const hook = req.url === ON_REQUEST ? onRequestHooks.get(body?.hiRequest?.transactionId) : undefined;
    if (hook) await hook();
    return send(res, 202, {});
  });
}

function startViewer(): Server {
  return createServer(async (req, res) => {
    const text = await readBody(req);
    const m = /^\/push\/([^/?]+)/.exec(req.url ?? '');
    if (req.method !== 'POST' || !m) return send(res, 404, {});
    const key = decodeURIComponent(m[1]);
    const log = logOf(key);
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      return send(res, 400, { error: 'not JSON' });
    }
    const b = behaviours.get(key) ?? { kind: 'ok' };
    const n = log.attempts.length; // attempts before this one
    const attempt: Attempt = { seq: ++seq, pageNumber: body.pageNumber, outcome: 200 };
    log.attempts.push(attempt);
    if (b.kind === 'fail' && n < b.times) {
      attempt.outcome = b.status;
      return send(res, b.status, { error: 'try again' });
    }
    if (b.kind === 'refuse') {
      attempt.outcome = b.status;
      return send(res, b.status, { error: 'refused' });
    }
    if (b.kind === 'slow' && n < b.times) {
      attempt.outcome = 'held';
      await new Promise((r) => setTimeout(r, b.delayMs));
      return send(res, 200, {}); // far too late: the store has given up on this attempt
    }
    // hooks run once, even if the store retries the page because the hook made it wait past HI_PUSH_TIMEOUT_MS
    if ((b.kind === 'revoke' || b.kind === 'hook') && body.pageNumber === b.onPage && !hooked.has(key)) {
      hooked.add(key);
      if (b.kind === 'revoke') await revoke(b.consentId);
      else await b.run();
    }
    // a page delivered again after a retry replaces the earlier copy (as a viewer would deduplicate)
    const i = log.delivered.findIndex((p) => p.pageNumber === body.pageNumber);
    if (i >= 0) log.delivered[i] = body;
    else log.delivered.push(body);
    return send(res, 200, {});
  });
}

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

let t: TestApp;
const g = createGenerator(20250917);
let patient: SyntheticPatient;
let stranger: SyntheticPatient;

type Kind = 'Prescription' | 'DiagnosticReport' | 'DischargeSummary';
interface Uploaded {
  id: string;
  careContext: string;
  kind: Kind;
  date: string;
  note: string;
  bundle: any;
}
const uploaded: Uploaded[] = [];

/** The consent every transfer below is granted under (unless a test says otherwise). */
const CONSENT = {
  careContexts: ['CC-A', 'CC-B', 'CC-C'],
  hiTypes: ['Prescription', 'DiagnosticReport'] as Kind[],
  from: '2022-01-01T00:00:00Z',
  to: '2026-01-01T00:00:00Z',
};
/** The requested dateRange: narrower than the consent's. */
const RANGE = { from: '2023-01-01T00:00:00Z', to: '2025-06-01T00:00:00Z' };

/** Records of `patient` at HIP-1; `in` marks those the consent allows within RANGE. */
const PLAN: { careContext: string; kind: Kind; date: string; in: boolean; note: string }[] = [
  {
    careContext: 'CC-C',
    kind: 'DiagnosticReport',
    date: '2023-01-01T05:30:00+05:30',
    in: true,
    note: 'exactly at the start of the requested range',
  },
  { careContext: 'CC-C', kind: 'Prescription', date: '2023-03-10T09:00:00+05:30', in: true, note: 'in' },
  { careContext: 'CC-A', kind: 'DiagnosticReport', date: '2023-11-05T09:00:00+05:30', in: true, note: 'in' },
  { careContext: 'CC-A', kind: 'Prescription', date: '2024-01-15T09:00:00+05:30', in: true, note: 'in' },
  { careContext: 'CC-B', kind: 'DiagnosticReport', date: '2024-07-01T09:00:00+05:30', in: true, note: 'in' },
  { careContext: 'CC-B', kind: 'Prescription', date: '2025-02-20T09:00:00+05:30', in: true, note: 'in' },
  {
    careContext: 'CC-A',
    kind: 'DischargeSummary',
    date: '2024-03-01T09:00:00+05:30',
    in: false,
    note: 'hiType not consented',
  },
  {
    careContext: 'CC-D',
    kind: 'Prescription',
    date: '2024-03-01T09:00:00+05:30',
    in: false,
    note: 'care context not consented',
  },
  {
    careContext: 'CC-B',
    kind: 'Prescription',
    date: '2022-06-01T09:00:00+05:30',
    in: false,
    note: 'consented, before the requested range',
  },
  {
    careContext: 'CC-C',
    kind: 'DiagnosticReport',
    date: '2025-09-01T09:00:00+05:30',
    in: false,
    note: 'consented, after the requested range',
  },
  {
    careContext: 'CC-A',
    kind: 'Prescription',
    date: '2021-01-10T09:00:00+05:30',
    in: false,
    note: 'before the consent',
  },
];

async function upload(
  hip: string,
  p: SyntheticPatient,
  kind: Kind,
  date: string,
  careContext: string,
): Promise<{ id: string; bundle: any }> {
  const rec = g.record(p, kind, { date, careContext: { referenceNumber: careContext, display: careContext } });
  return { id: await t.upload(hip, rec.bundle, careContext), bundle: rec.bundle };
}

/** The records the consent allows within RANGE, in push order (record date ascending). */
const expectedRecords = () =>
  uploaded
    .filter((u) => PLAN.find((p) => p.note === u.note && p.date === u.date && p.careContext === u.careContext)?.in)
    .sort((a, b) => Date.parse(a.date) - Date.parse(b.date));

async function grant(terms: Partial<typeof CONSENT> = {}): Promise<string> {
  const consentId = uuidv4();
  const c = { ...CONSENT, ...terms };
  const detail: ConsentDetail = {
    schemaVersion: 'v0.5',
    consentId,
    createdAt: new Date().toISOString(),
    patient: { id: patient.abhaAddress },
    careContexts: c.careContexts.map((cc) => ({ patientReference: 'P', careContextReference: cc })),
    purpose: { code: 'CAREMGT', text: 'Care management' },
    hip: { id: HIP },
    hiu: { id: HIU },
    hiTypes: c.hiTypes as ConsentDetail['hiTypes'],
    permission: {
      accessMode: 'VIEW',
      dateRange: { from: c.from, to: c.to },
      dataEraseAt: '2099-01-01T00:00:00Z',
      frequency: { unit: 'HOUR', value: 1000, repeats: 0 },
    },
  };
  const res = await notifyConsent(t, { consentId, status: 'GRANTED', consentDetail: detail }, 'v0.5');
  expect(res.status).toBe(202);
  return consentId;
}

async function revoke(consentId: string) {
  const res = await t.request('/v0.5/consents/hip/notify', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      requestId: uuidv4(),
      timestamp: new Date().toISOString(),
      notification: { consentId, status: 'REVOKED' },
    }),
  });
  expect(res.status).toBe(202);
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== null && (v as unknown) !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The on-request answering a request (an error has no hiRequest, so it is found by the request id it echoes). */
const onRequestFor = (requestId: string) =>
  gatewayCalls.filter((c) => c.path === ON_REQUEST && c.body?.resp?.requestId === requestId);

const callbacksFor = (path: string, txId: string) =>
  gatewayCalls.filter(
    (c) =>
      c.path === path && (c.body?.hiRequest?.transactionId === txId || c.body?.notification?.transactionId === txId),
  );

interface RequestOpts {
  consentId: string;
  txId?: string;
  keyForm?: 'x509' | 'raw';
  range?: { from: string; to: string };
  expiry?: string;
  behaviour?: Behaviour;
  dataPushUrl?: string;
  viewerKey?: KeyMaterial;
}

interface Sent {
  txId: string;
  requestId: string;
  viewerKey: KeyMaterial;
  res: Response;
  body: any;
}

/** The viewer key's expiry unless a test says otherwise: one value, so a request built again is the same one. */
const EXPIRY = new Date(Date.now() + 6 * 3600_000).toISOString();

function hiRequestBody(txId: string, requestId: string, o: RequestOpts, viewerKey: KeyMaterial, dataPushUrl: string) {
  return {
    requestId,
    timestamp: new Date().toISOString(),
    transactionId: txId,
    hiRequest: {
      consent: { id: o.consentId },
      dateRange: o.range ?? RANGE,
      dataPushUrl,
      keyMaterial: {
        cryptoAlg: 'ECDH',
        curve: 'Curve25519',
        dhPublicKey: {
          expiry: o.expiry ?? EXPIRY,
          parameters: 'Curve25519/32byte random key',
          keyValue: (o.keyForm ?? 'x509') === 'x509' ? viewerKey.x509PublicKey : viewerKey.publicKey,
        },
        nonce: viewerKey.nonce,
      },
    },
  };
}

async function sendRequest(o: RequestOpts): Promise<Sent> {
  const txId = o.txId ?? uuidv4();
  const requestId = uuidv4();
  const viewerKey = o.viewerKey ?? generateKeyMaterial();
  if (o.behaviour) behaviours.set(txId, o.behaviour);
  const res = await t.request('/v0.5/health-information/hip/request', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
    body: JSON.stringify(hiRequestBody(txId, requestId, o, viewerKey, o.dataPushUrl ?? `${viewerUrl}/push/${txId}`)),
  });
  const body = await res.json();
  return { txId, requestId, viewerKey, res, body };
}

interface Finished extends Sent {
  onRequest: Callback;
  notify: Callback;
  log: ViewerLog;
}

/** Sends a request expected to be accepted, and waits for the gateway's notify. */
async function transfer(o: RequestOpts): Promise<Finished> {
  const sent = await sendRequest(o);
  expect(sent.res.status, JSON.stringify(sent.body)).toBe(202);
  expect(sent.body).toMatchObject({ transactionId: sent.txId, status: 'ACKNOWLEDGED' });
  const notify = await until(`notify for ${sent.txId}`, () => callbacksFor(NOTIFY, sent.txId)[0]);
  const onRequests = callbacksFor(ON_REQUEST, sent.txId);
  expect(onRequests).toHaveLength(1);
  expect(callbacksFor(NOTIFY, sent.txId)).toHaveLength(1);
  return { ...sent, onRequest: onRequests[0], notify, log: logOf(sent.txId) };
}

function expectGatewayHeaders(c: Callback) {
  expect(c.headers.authorization).toBe(`Bearer ${GATEWAY_TOKEN}`);
  expect(c.headers['x-cm-id']).toBe('sbx');
  expect(c.headers['request-id']).toBeTruthy();
  expect(c.headers['request-id']).toBe(c.body.requestId);
  expect(c.headers.timestamp).toBeTruthy();
  expect(Number.isNaN(Date.parse(String(c.headers.timestamp)))).toBe(false);
  expect(c.headers['content-type']).toMatch(/^application\/json/);
}

function expectAcknowledged(f: Finished) {
  expectGatewayHeaders(f.onRequest);
  expect(f.onRequest.body.hiRequest).toEqual({ transactionId: f.txId, sessionStatus: 'ACKNOWLEDGED' });
  expect(f.onRequest.body.resp).toEqual({ requestId: f.requestId });
  expect(f.onRequest.body.error).toBeUndefined();
  expect(f.onRequest.seq).toBeLessThan(f.notify.seq);
  for (const a of f.log.attempts) expect(f.onRequest.seq).toBeLessThan(a.seq);
  for (const a of f.log.attempts) expect(a.seq).toBeLessThan(f.notify.seq);
  expectGatewayHeaders(f.notify);
  expect(f.notify.body.notification).toMatchObject({
    consentId: expect.any(String),
    transactionId: f.txId,
    notifier: { type: 'HIP', id: HIP },
  });
  expect(f.notify.body.notification.statusNotification.hipId).toBe(HIP);
}

/** Decrypts every delivered page; returns bundle id → { careContext, bundle }. */
function decryptPages(f: Finished, pages: any[]): Map<string, { careContext: string; bundle: any }> {
  const out = new Map<string, { careContext: string; bundle: any }>();
  const hipKeys = new Set<string>();
  for (const page of pages) {
    expect(page.transactionId).toBe(f.txId);
    expect(page.keyMaterial).toMatchObject({ cryptoAlg: 'ECDH', curve: 'Curve25519' });
    const hipKey: string = page.keyMaterial.dhPublicKey.keyValue;
    const hipNonce: string = page.keyMaterial.nonce;
    expect(() => parsePublicKey(hipKey)).not.toThrow();
    expect(Buffer.from(hipNonce, 'base64')).toHaveLength(32);
    expect(Buffer.from(parsePublicKey(hipKey)).toString('base64')).not.toBe(f.viewerKey.publicKey);
    expect(hipNonce).not.toBe(f.viewerKey.nonce);
    hipKeys.add(`${Buffer.from(parsePublicKey(hipKey)).toString('base64')}|${hipNonce}`);
    expect(Array.isArray(page.entries)).toBe(true);
    for (const e of page.entries) {
      expect(e.media).toBe('application/fhir+json');
      expect(typeof e.checksum).toBe('string');
      expect(e.checksum.length).toBeGreaterThan(0);
      const plaintext = decrypt({
        encryptedData: e.content,
        requesterNonce: f.viewerKey.nonce,
        senderNonce: hipNonce,
        requesterPrivateKey: f.viewerKey.privateKey,
        senderPublicKey: hipKey,
      });
      // ABDM: "base64 value of MD5" of the plaintext bundle
      expect(e.checksum).toBe(createHash('md5').update(plaintext).digest('base64'));
      const bundle = JSON.parse(plaintext);
      expect(bundle.resourceType).toBe('Bundle');
      expect(bundle.type).toBe('document');
      expect(out.has(bundle.id), `bundle ${bundle.id} pushed twice`).toBe(false);
      out.set(bundle.id, { careContext: e.careContextReference, bundle });
    }
  }
  expect(hipKeys.size).toBeLessThanOrEqual(1); // one key pair and nonce per transaction
  return out;
}

const statusesOf = (notify: Callback): Record<string, string> =>
  Object.fromEntries(
    notify.body.notification.statusNotification.statusResponses.map((s: any) => [s.careContextReference, s.hiStatus]),
  );

async function adminView(txId: string) {
  const res = await t.request(`/admin/health-information/transactions/${txId}`, { as: ['admin', 'ops'] });
  return { status: res.status, text: await res.text() };
}

function hipKeyOf(pages: any[]): { key: string; nonce: string } {
  return {
    key: Buffer.from(parsePublicKey(pages[0].keyMaterial.dhPublicKey.keyValue)).toString('base64'),
    nonce: pages[0].keyMaterial.nonce,
  };
}

// ---------------------------------------------------------------------------

beforeAll(async () => {
  gateway = startGateway();
  viewer = startViewer();
  const dead = createServer();
  [gatewayUrl, viewerUrl, deadUrl] = await Promise.all([listen(gateway), listen(viewer), listen(dead)]);
  await closeServer(dead); // nothing listens on this port any more
  t = await createTestApp({
    GATEWAY_BASE_URL: gatewayUrl,
    GATEWAY_CLIENT_ID: CLIENT_ID,
    GATEWAY_CLIENT_SECRET: CLIENT_SECRET,
    HI_PAGE_SIZE: '2',
    HI_PUSH_ATTEMPTS: '3',
    HI_PUSH_BACKOFF_MS: '50',
    HI_PUSH_TIMEOUT_MS: '500',
    GATEWAY_API_VERSION: 'v0.5', // the stand-in gateway above serves the v0.5 session only
    HI_PUSH_ALLOWED_HOSTS: '127.0.0.1', // the viewer (and the port nothing listens on) are on loopback
    HIP_INITIATED_LINKING: 'false', // uploads here need not notify the gateway
  });
  patient = g.patient();
  stranger = g.patient();
  for (const p of PLAN)
    uploaded.push({
      ...(await upload(HIP, patient, p.kind, p.date, p.careContext)),
      careContext: p.careContext,
      kind: p.kind,
      date: p.date,
      note: p.note,
    });
  // outside the consent: same provider, another patient; same patient, another provider
  await upload(HIP, stranger, 'Prescription', '2024-01-01T09:00:00+05:30', 'CC-A');
  await upload('HIP-2', patient, 'Prescription', '2024-01-01T09:00:00+05:30', 'CC-A');
});

afterAll(async () => {
  await closeServer(viewer);
  await closeServer(gateway);
  await t?.close();
});

// ---------------------------------------------------------------------------

describe('health-information request and push, end to end', () => {
  const keys: { key: string; nonce: string }[] = [];

  it.each(['x509', 'raw'] as const)(
    'pushes exactly the consented records in the requested range, encrypted for the viewer (%s viewer key)',
    async (keyForm) => {
      const want = expectedRecords();
      expect(want).toHaveLength(6);
      const consentId = await grant();
      const f = await transfer({ consentId, keyForm, behaviour: { kind: 'ok' } });

      expectAcknowledged(f);
      expect(sessionCalls.length).toBeGreaterThan(0);
      expect(sessionCalls.every((s) => s.ok)).toBe(true);

      // pages 1..pageCount, each once, pageCount = ceil(n / HI_PAGE_SIZE)
      const pages = f.log.delivered;
      const pageCount = Math.ceil(want.length / 2);
      expect(pages.map((p) => p.pageNumber)).toEqual(Array.from({ length: pageCount }, (_, i) => i + 1));
      for (const p of pages) expect(p.pageCount).toBe(pageCount);
      expect(f.log.attempts).toHaveLength(pageCount); // no retries when the viewer is well
      for (const p of pages.slice(0, -1)) expect(p.entries).toHaveLength(2);

      // every entry decrypts to a FHIR Bundle; the set is exactly what the consent allows in the range
      const got = decryptPages(f, pages);
      expect([...got.keys()].sort()).toEqual(want.map((w) => w.id).sort());
      for (const w of want) expect(got.get(w.id)!.careContext).toBe(w.careContext);

      // notify: TRANSFERRED, each care context DELIVERED
      expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
      expect(f.notify.body.notification.consentId).toBe(consentId);
      const wantContexts = Object.fromEntries(
        [...new Set(want.map((w) => w.careContext))].map((cc) => [cc, 'DELIVERED']),
      );
      expect(statusesOf(f.notify)).toEqual(wantContexts);

      // the admin view: TRANSFERRED, and no key material of the store's
      const admin = await until('transaction saved as notified', async () => {
        const a = await adminView(f.txId);
        return JSON.parse(a.text).notified ? a : undefined;
      });
      expect(admin.status).toBe(200);
      const tx = JSON.parse(admin.text);
      expect(tx).toMatchObject({
        transactionId: f.txId,
        status: 'TRANSFERRED',
        consentId,
        pageCount,
        pagesSent: pageCount,
        error: null,
      });
      expect(tx.sender).toBeUndefined();
      expect(admin.text).not.toMatch(/privateKey/i);
      const stored = await t.transfers.transactions.findOne({ _id: f.txId });
      expect(stored?.sender).toBeUndefined(); // not kept past the transaction either

      keys.push(hipKeyOf(pages));
    },
  );

  it("every pushed page is in the patient's audit history, found by ABHA address and by number in either form", async () => {
    const want = expectedRecords();
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    for (const who of [patient.abhaAddress, patient.abhaNumber, patient.abhaNumber.replace(/-/g, '')]) {
      const res = await t.request(`/fhir/AuditEvent?patient-abha=${encodeURIComponent(who)}&_count=1000`, {
        as: ['cm', 'sbx'],
      });
      expect(res.status).toBe(200);
      const events = (await res.json()).entry
        .map((e: any) => e.resource)
        .filter(
          (e: any) =>
            e.subtype[0].code === 'health-information.push' &&
            e.entity.some((x: any) => x.what.identifier?.value === consentId),
        );
      expect(events.length, who).toBe(Math.ceil(want.length / 2));
      const pushed = events.flatMap((e: any) =>
        e.entity.filter((x: any) => x.what.reference).map((x: any) => x.what.reference.replace('Bundle/', '')),
      );
      expect(pushed.sort(), who).toEqual(want.map((w) => w.id).sort());
      for (const e of events) {
        expect(e.outcome).toBe('0');
        expect(e.agent[0].who.identifier.value).toBe(HIU);
        expect(e.purposeOfEvent[0].coding[0].code).toBe('CAREMGT');
      }
    }
  });

  it('uses a fresh key pair and nonce per transaction', () => {
    expect(keys).toHaveLength(2);
    expect(keys[0].key).not.toBe(keys[1].key);
    expect(keys[0].nonce).not.toBe(keys[1].nonce);
  });

  it('the viewer cannot decrypt with another key pair (the push really is for its key)', async () => {
    const consentId = await grant({ careContexts: ['CC-C'] });
    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    const page = f.log.delivered[0];
    const other = generateKeyMaterial();
    expect(() =>
      decrypt({
        encryptedData: page.entries[0].content,
        requesterNonce: f.viewerKey.nonce,
        senderNonce: page.keyMaterial.nonce,
        requesterPrivateKey: other.privateKey,
        senderPublicKey: page.keyMaterial.dhPublicKey.keyValue,
      }),
    ).toThrow();
  });
});

describe('faults at the viewer', () => {
  it('viewer down: retries, then notify FAILED with every care context ERRORED (none dropped)', async () => {
    const consentId = await grant();
    const sent = await sendRequest({ consentId, dataPushUrl: `${deadUrl}/push/down` });
    expect(sent.res.status).toBe(202);
    const notify = await until('notify (down)', () => callbacksFor(NOTIFY, sent.txId)[0]);
    expectGatewayHeaders(notify);
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    const wantContexts = Object.fromEntries(
      [...new Set(expectedRecords().map((w) => w.careContext))].map((cc) => [cc, 'ERRORED']),
    );
    expect(statusesOf(notify)).toEqual(wantContexts);
    const onRequest = callbacksFor(ON_REQUEST, sent.txId)[0];
    expect(onRequest.body.hiRequest.sessionStatus).toBe('ACKNOWLEDGED');
    expect(onRequest.seq).toBeLessThan(notify.seq);
    const tx = JSON.parse((await adminView(sent.txId)).text);
    expect(tx.status).toBe('FAILED');
    expect(tx.pagesSent).toBe(0);
    expect(tx.error).toMatch(/unreachable/);
  });

  it('viewer answers 500 then 200: delivered after a retry', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'fail', status: 500, times: 1 } });
    expectAcknowledged(f);
    const pageCount = Math.ceil(expectedRecords().length / 2);
    expect(f.log.attempts.map((a) => [a.pageNumber, a.outcome])).toEqual([
      [1, 500],
      [1, 200],
      ...Array.from({ length: pageCount - 1 }, (_, i) => [i + 2, 200]),
    ]);
    expect(f.log.delivered.map((p) => p.pageNumber)).toEqual(Array.from({ length: pageCount }, (_, i) => i + 1));
    expect([...decryptPages(f, f.log.delivered).keys()].sort()).toEqual(
      expectedRecords()
        .map((w) => w.id)
        .sort(),
    );
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    expect(Object.values(statusesOf(f.notify)).every((s) => s === 'DELIVERED')).toBe(true);
  });

  it('viewer answers 503 on every attempt: exactly HI_PUSH_ATTEMPTS tries, then FAILED', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'fail', status: 503, times: 1000 } });
    expect(f.log.attempts.map((a) => [a.pageNumber, a.outcome])).toEqual([
      [1, 503],
      [1, 503],
      [1, 503],
    ]);
    expect(f.log.delivered).toHaveLength(0);
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    expect(new Set(Object.values(statusesOf(f.notify)))).toEqual(new Set(['ERRORED']));
    expect(Object.keys(statusesOf(f.notify)).sort()).toEqual(
      [...new Set(expectedRecords().map((w) => w.careContext))].sort(),
    );
  });

  it('slow viewer (first attempt exceeds HI_PUSH_TIMEOUT_MS): retried and delivered', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'slow', delayMs: 1500, times: 1 } });
    expectAcknowledged(f);
    const pageCount = Math.ceil(expectedRecords().length / 2);
    expect(f.log.attempts[0]).toMatchObject({ pageNumber: 1, outcome: 'held' });
    expect(f.log.attempts.slice(1).map((a) => [a.pageNumber, a.outcome])).toEqual(
      Array.from({ length: pageCount }, (_, i) => [i + 1, 200]),
    );
    expect([...decryptPages(f, f.log.delivered).keys()].sort()).toEqual(
      expectedRecords()
        .map((w) => w.id)
        .sort(),
    );
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    expect(Object.values(statusesOf(f.notify)).every((s) => s === 'DELIVERED')).toBe(true);
  });

  it('viewer refuses (400): not retried, notify FAILED with every care context ERRORED', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'refuse', status: 400 } });
    expect(f.log.attempts.map((a) => [a.pageNumber, a.outcome])).toEqual([[1, 400]]);
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    const wantContexts = Object.fromEntries(
      [...new Set(expectedRecords().map((w) => w.careContext))].map((cc) => [cc, 'ERRORED']),
    );
    expect(statusesOf(f.notify)).toEqual(wantContexts);
    const tx = JSON.parse((await adminView(f.txId)).text);
    expect(tx).toMatchObject({ status: 'FAILED', pagesSent: 0 });
    expect(tx.error).toMatch(/400/);
  });

  it('revocation mid-transfer: page 2 is not pushed; notify FAILED, undelivered care contexts ERRORED', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'revoke', consentId, onPage: 1 } });
    expectAcknowledged(f);
    expect((await t.consents.get(consentId))?.status).toBe('REVOKED');
    // page 1 only (retried at most, if the revocation was slow)
    expect(new Set(f.log.attempts.map((a) => a.pageNumber))).toEqual(new Set([1]));
    expect(f.log.delivered.map((p) => p.pageNumber)).toEqual([1]);
    const page1 = decryptPages(f, f.log.delivered);
    const want = expectedRecords();
    expect([...page1.keys()].sort()).toEqual(
      want
        .slice(0, 2)
        .map((w) => w.id)
        .sort(),
    );
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    // a care context is DELIVERED only if all of its records reached the viewer
    const deliveredIds = new Set(page1.keys());
    const expectedStatus: Record<string, string> = {};
    for (const w of want)
      expectedStatus[w.careContext] =
        expectedStatus[w.careContext] === 'ERRORED' || !deliveredIds.has(w.id) ? 'ERRORED' : 'DELIVERED';
    expect(expectedStatus).toEqual({ 'CC-C': 'DELIVERED', 'CC-A': 'ERRORED', 'CC-B': 'ERRORED' }); // the plan's own check
    expect(statusesOf(f.notify)).toEqual(expectedStatus);
    const tx = JSON.parse((await adminView(f.txId)).text);
    expect(tx).toMatchObject({ status: 'FAILED', pagesSent: 1 });
    expect(tx.error).toMatch(/REVOKED/);
  });
});

describe('state changes during a transfer', () => {
  it('a revocation after the acknowledgement, before the first page: nothing pushed; notify FAILED, the care contexts ERRORED (not dropped)', async () => {
    const consentId = await grant();
    const txId = uuidv4();
    onRequestHooks.set(txId, () => revoke(consentId));
    const f = await transfer({ consentId, txId, behaviour: { kind: 'ok' } });
    expectAcknowledged(f);
    expect(f.log.attempts).toHaveLength(0);
    expect(f.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    expect(statusesOf(f.notify)).toEqual({ 'CC-A': 'ERRORED', 'CC-B': 'ERRORED', 'CC-C': 'ERRORED' });
  });

  it('a record changed mid-transfer so that the consent no longer covers it is not pushed as it now stands', async () => {
    const want = expectedRecords();
    const composition = (b: any) => b.entry.find((e: any) => e.resource.resourceType === 'Composition').resource;
    const redated = want[want.length - 1]; // due on page 3; refiled dated before the consent
    const moved = want[3]; // due on page 2; refiled under a care context the consent does not name
    expect(redated.careContext).toBe('CC-B');
    expect(moved.careContext).toBe('CC-A');
    const reupload = async (r: Uploaded, change: ((b: any) => void) | undefined, careContext: string) => {
      const bundle = structuredClone(r.bundle);
      change?.(bundle);
      const res = await t.request('/fhir/Bundle', {
        method: 'POST',
        body: JSON.stringify(bundle),
        headers: uploadHeaders(careContext),
        as: ['hip', HIP],
      });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
      expect((await res.json()).id).toBe(r.id); // a new version of the same record
    };
    const consentId = await grant();
    try {
      // when page 1 arrives, the provider files corrected versions of two records still to be pushed
      const f = await transfer({
        consentId,
        behaviour: {
          kind: 'hook',
          onPage: 1,
          run: async () => {
            await reupload(
              redated,
              (b) => {
                composition(b).date = '2021-02-01T09:00:00+05:30';
              },
              redated.careContext,
            );
            await reupload(
              moved,
              (b) => {
                composition(b).title = `${composition(b).title} (corrected)`;
              },
              'CC-D',
            );
          },
        },
      });
      expectAcknowledged(f);
      const got = decryptPages(f, f.log.delivered);
      const outside: string[] = [];
      for (const [id, { bundle, careContext }] of got) {
        const date = composition(bundle).date as string;
        if (Date.parse(date) < Date.parse(RANGE.from) || Date.parse(date) > Date.parse(RANGE.to))
          outside.push(`${id}: dated ${date}, outside the requested range and the consent`);
        if (!CONSENT.careContexts.includes(careContext))
          outside.push(`${id}: care context ${careContext}, which the consent does not name`);
      }
      expect(outside).toEqual([]);
      // everything else still arrives
      for (const w of want.filter((x) => x !== redated && x !== moved)) expect(got.has(w.id), w.id).toBe(true);
    } finally {
      // back to the original versions for the other tests
      await reupload(redated, undefined, redated.careContext);
      await reupload(moved, undefined, moved.careContext);
    }
  });

  it('a duplicate request for a finished transaction pushes nothing again', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    const attempts = f.log.attempts.length;
    const res = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(
        hiRequestBody(f.txId, f.requestId, { consentId }, f.viewerKey, `${viewerUrl}/push/${f.txId}`),
      ),
    });
    expect(res.status).toBe(202);
    await until('second on-request', () => callbacksFor(ON_REQUEST, f.txId)[1]);
    await t.transfers.run(f.txId); // joins (or repeats) whatever the duplicate started
    expect(f.log.attempts).toHaveLength(attempts);
    expect(callbacksFor(NOTIFY, f.txId)).toHaveLength(1);
    expect(JSON.parse((await adminView(f.txId)).text).status).toBe('TRANSFERRED');
  });
});

describe('the same request id or transaction again (v0.5)', () => {
  it('the same request id under a new transaction id: refused, nothing pushed again, the original untouched', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    await until('saved as notified, the lease released', async () => {
      const tx = await t.transfers.transactions.findOne({ _id: f.txId });
      return tx?.notified && !tx.lease ? true : undefined;
    });
    const before = await t.transfers.transactions.findOne({ _id: f.txId });
    const attempts = f.log.attempts.length;
    const txId = uuidv4();
    const res = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
      body: JSON.stringify(hiRequestBody(txId, f.requestId, { consentId }, f.viewerKey, `${viewerUrl}/push/${txId}`)),
    });
    expect(await res.json()).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(/another transaction/) });
    const answers = await until(
      'the second on-request',
      () => onRequestFor(f.requestId)[1] && onRequestFor(f.requestId),
    );
    expect(answers[1].body.error.message).toMatch(/another transaction/);
    expect(answers[1].body.hiRequest).toBeUndefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(logOf(txId).attempts).toHaveLength(0);
    expect(f.log.attempts).toHaveLength(attempts);
    expect(callbacksFor(NOTIFY, txId)).toHaveLength(0);
    expect(callbacksFor(NOTIFY, f.txId)).toHaveLength(1);
    expect(await t.transfers.transactions.findOne({ _id: txId })).toBeNull();
    expect(await t.transfers.transactions.findOne({ _id: f.txId })).toEqual(before);
  });

  it('the same transaction with a new dataPushUrl: refused, the original untouched', async () => {
    const consentId = await grant();
    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    await until('saved as notified, the lease released', async () => {
      const tx = await t.transfers.transactions.findOne({ _id: f.txId });
      return tx?.notified && !tx.lease ? true : undefined;
    });
    const before = await t.transfers.transactions.findOne({ _id: f.txId });
    const requestId = uuidv4();
    const res = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
      body: JSON.stringify(hiRequestBody(f.txId, requestId, { consentId }, f.viewerKey, `${viewerUrl}/push/elsewhere`)),
    });
    expect(await res.json()).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(/different request/) });
    const answer = await until('on-request', () => onRequestFor(requestId)[0]);
    expect(answer.body.error.message).toMatch(/different request/);
    await new Promise((r) => setTimeout(r, 300));
    expect(logOf('elsewhere').attempts).toHaveLength(0);
    expect(callbacksFor(NOTIFY, f.txId)).toHaveLength(1);
    expect(await t.transfers.transactions.findOne({ _id: f.txId })).toEqual(before);
  });
});

describe('resuming after a restart', () => {
  async function accepted(consentId: string): Promise<{ txId: string; viewerKey: KeyMaterial }> {
    const txId = uuidv4();
    const viewerKey = generateKeyMaterial();
    behaviours.set(txId, { kind: 'ok' });
    const input: HiRequestInput = {
      requestId: uuidv4(),
      transactionId: txId,
      consentId,
      dateRange: RANGE,
      dataPushUrl: `${viewerUrl}/push/${txId}`,
      keyMaterial: {
        dhPublicKey: { expiry: new Date(Date.now() + 3600_000).toISOString(), keyValue: viewerKey.publicKey },
        nonce: viewerKey.nonce,
      },
    };
    await t.transfers.accept(input, (await t.consents.get(consentId))!);
    return { txId, viewerKey };
  }

  it('an acknowledged transaction that never ran is run to the end by resume()', async () => {
    const consentId = await grant();
    const { txId, viewerKey } = await accepted(consentId);
    expect(await t.transfers.resume()).toBeGreaterThanOrEqual(1);
    const notify = await until('notify (resumed)', () => callbacksFor(NOTIFY, txId)[0]);
    const log = logOf(txId);
    expect(log.delivered.map((p) => p.pageNumber)).toEqual([1, 2, 3]);
    const got = decryptPages({ txId, viewerKey, log, notify } as Finished, log.delivered);
    expect([...got.keys()].sort()).toEqual(
      expectedRecords()
        .map((w) => w.id)
        .sort(),
    );
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
  });

  it('a transaction stopped after page 1 resumes at page 2, with the same key material', async () => {
    const consentId = await grant();
    const { txId, viewerKey } = await accepted(consentId);
    const want = expectedRecords();
    // as a process that crashed right after pushing page 1 would have left it
    await t.transfers.transactions.updateOne(
      { _id: txId },
      {
        $set: {
          status: 'TRANSFERRING',
          recordIds: want.map((w) => w.id),
          pageCount: 3,
          pagesSent: 1,
          careContexts: { 'CC-C': 'DELIVERED' },
        },
      },
    );
    expect(await t.transfers.resume()).toBeGreaterThanOrEqual(1);
    const notify = await until('notify (resumed mid-way)', () => callbacksFor(NOTIFY, txId)[0]);
    const log = logOf(txId);
    expect(log.delivered.map((p) => p.pageNumber)).toEqual([2, 3]);
    const got = decryptPages({ txId, viewerKey, log, notify } as Finished, log.delivered);
    expect([...got.keys()].sort()).toEqual(
      want
        .slice(2)
        .map((w) => w.id)
        .sort(),
    );
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    expect(statusesOf(notify)).toEqual({ 'CC-A': 'DELIVERED', 'CC-B': 'DELIVERED', 'CC-C': 'DELIVERED' });
    // the notify is sent before the transaction is saved as notified: wait for that write
    const tx = await until('transaction saved as notified', async () => {
      const a = JSON.parse((await adminView(txId)).text);
      return a.notified ? a : undefined;
    });
    expect(tx).toMatchObject({ status: 'TRANSFERRED', pagesSent: 3, notified: true });
    expect(tx.sender).toBeUndefined();
  });
});

describe('refusals', () => {
  async function refused(o: RequestOpts, reason: RegExp) {
    const sent = await sendRequest({ ...o, behaviour: { kind: 'ok' } });
    expect(sent.res.status).toBe(202);
    expect(sent.body).toMatchObject({ transactionId: sent.txId, status: 'ERRORED' });
    expect(sent.body.reason).toMatch(reason);
    const onRequest = await until('on-request (refused)', () => onRequestFor(sent.requestId)[0]);
    expectGatewayHeaders(onRequest);
    // ABDM's sessionStatus is only ever ACKNOWLEDGED: a refusal is an error object, without hiRequest
    expect(onRequest.body.hiRequest).toBeUndefined();
    expect(onRequest.body.resp).toEqual({ requestId: sent.requestId });
    expect(onRequest.body.error).toEqual({ code: expect.anything(), message: expect.stringMatching(reason) });
    // then a notify FAILED (the consent's care contexts ERRORED, when its terms are still known); nothing pushed
    const notify = await until('notify (refused)', () => callbacksFor(NOTIFY, sent.txId)[0]);
    expectGatewayHeaders(notify);
    expect(onRequest.seq).toBeLessThan(notify.seq);
    expect(notify.body.notification).toMatchObject({
      consentId: o.consentId,
      transactionId: sent.txId,
      notifier: { type: 'HIP', id: HIP },
      statusNotification: { sessionStatus: 'FAILED', hipId: HIP },
    });
    expect(logOf(sent.txId).attempts).toHaveLength(0);
    // recorded as a FAILED transaction (so that its notify resumes like any other's)
    const tx = await until('refusal saved as notified', async () => {
      const a = await adminView(sent.txId);
      return a.status === 200 && JSON.parse(a.text).notified ? JSON.parse(a.text) : undefined;
    });
    expect(tx).toMatchObject({ status: 'FAILED', refused: true, pagesSent: 0 });
    expect(tx.error).toMatch(reason);
    expect(callbacksFor(NOTIFY, sent.txId)).toHaveLength(1);
    return { sent, notify };
  }

  it('a revoked consent: 202 ERRORED, on-request error, notify FAILED (terms erased: no care contexts), nothing pushed', async () => {
    const consentId = await grant();
    await revoke(consentId);
    const { notify } = await refused({ consentId }, /REVOKED/);
    expect(statusesOf(notify)).toEqual({});
  });

  it('an unknown consent: 202 ERRORED, on-request error, notify FAILED without care contexts, nothing pushed', async () => {
    const { notify } = await refused({ consentId: uuidv4() }, /unknown/);
    expect(statusesOf(notify)).toEqual({});
  });

  it('expired key material: 202 ERRORED, on-request error, notify FAILED with the care contexts ERRORED', async () => {
    const consentId = await grant();
    const { notify } = await refused(
      { consentId, expiry: new Date(Date.now() - 60_000).toISOString() },
      /key material has expired/,
    );
    expect(statusesOf(notify)).toEqual({ 'CC-A': 'ERRORED', 'CC-B': 'ERRORED', 'CC-C': 'ERRORED' });
  });

  it('a nonce that is not 32 bytes ("AAAA") is refused before acknowledging', async () => {
    const consentId = await grant();
    const key = { ...generateKeyMaterial(), nonce: 'AAAA' };
    await refused({ consentId, viewerKey: key }, /nonce is not base64 of exactly 32 bytes/);
  });

  it('a dataPushUrl on loopback not named by HI_PUSH_ALLOWED_HOSTS is refused before acknowledging', async () => {
    const consentId = await grant();
    const port = new URL(viewerUrl).port;
    const { sent } = await refused({ consentId, dataPushUrl: `http://localhost:${port}/push/lh` }, /loopback name/);
    expect(logOf('lh').attempts).toHaveLength(0);
    expect(sent.body.reason).not.toMatch(/push\/lh/); // the reason names the host, not the URL
  });

  it('a request for a consent of another HIP than the one addressed is refused', async () => {
    const consentId = await grant();
    const txId = uuidv4();
    const requestId = uuidv4();
    const res = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-OTHER' },
      body: JSON.stringify(
        hiRequestBody(txId, requestId, { consentId }, generateKeyMaterial(), `${viewerUrl}/push/${txId}`),
      ),
    });
    expect(await res.json()).toMatchObject({
      status: 'ERRORED',
      reason: expect.stringMatching(/not for HIP HIP-OTHER/),
    });
    const notify = await until('notify (other HIP)', () => callbacksFor(NOTIFY, txId)[0]);
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    expect(logOf(txId).attempts).toHaveLength(0);
  });

  it('a dateRange with from after to is refused', async () => {
    const consentId = await grant();
    await refused({ consentId, range: { from: RANGE.to, to: RANGE.from } }, /dateRange/);
  });

  it('a keyValue that is base64 but not a Curve25519 public key is refused', async () => {
    const consentId = await grant();
    const bogus = { ...generateKeyMaterial() };
    bogus.x509PublicKey = Buffer.alloc(65, 7).toString('base64');
    await refused({ consentId, viewerKey: bogus }, /not a Curve25519 public key/);
  });

  it('malformed bodies → 422 (400 for text that is not JSON)', async () => {
    const consentId = await grant();
    const key = generateKeyMaterial();
    const good = hiRequestBody(uuidv4(), uuidv4(), { consentId }, key, `${viewerUrl}/push/malformed`);
    const variants: [string, (b: any) => void][] = [
      [
        'no hiRequest',
        (b) => {
          delete b.hiRequest;
        },
      ],
      [
        'no transactionId',
        (b) => {
          delete b.transactionId;
        },
      ],
      [
        'no requestId',
        (b) => {
          delete b.requestId;
        },
      ],
      [
        'wrong cryptoAlg',
        (b) => {
          b.hiRequest.keyMaterial.cryptoAlg = 'RSA';
        },
      ],
      [
        'wrong curve',
        (b) => {
          b.hiRequest.keyMaterial.curve = 'P-256';
        },
      ],
      [
        'keyValue not base64',
        (b) => {
          b.hiRequest.keyMaterial.dhPublicKey.keyValue = 'not base64!';
        },
      ],
      [
        'no nonce',
        (b) => {
          delete b.hiRequest.keyMaterial.nonce;
        },
      ],
      [
        'dataPushUrl not http(s)',
        (b) => {
          b.hiRequest.dataPushUrl = 'ftp://127.0.0.1/push';
        },
      ],
      [
        'dataPushUrl not a URL',
        (b) => {
          b.hiRequest.dataPushUrl = 'push here';
        },
      ],
      [
        'dateRange.from not a date',
        (b) => {
          b.hiRequest.dateRange.from = 'yesterday';
        },
      ],
      [
        'expiry not a date',
        (b) => {
          b.hiRequest.keyMaterial.dhPublicKey.expiry = 'soon';
        },
      ],
      ['body is an array', () => {}],
    ];
    const before = gatewayCalls.length;
    for (const [name, mutate] of variants) {
      const b = structuredClone(good);
      mutate(b);
      const res = await t.request('/v0.5/health-information/hip/request', {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(name === 'body is an array' ? [b] : b),
      });
      expect(res.status, name).toBe(422);
      expect((await res.json()).resourceType, name).toBe('OperationOutcome');
    }
    const notJson = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: '{"requestId": ',
    });
    expect([400, 422]).toContain(notJson.status);
    // a malformed request is not acknowledged to anyone (the grant above has its own consent on-notify)
    expect(gatewayCalls.slice(before).filter((c) => c.path.startsWith('/v0.5/health-information/'))).toEqual([]);
    expect(logOf('malformed').attempts).toHaveLength(0);
  });

  it('only the consent manager (cm) may send a request; only admin may read a transaction', async () => {
    const consentId = await grant();
    const body = JSON.stringify(
      hiRequestBody(uuidv4(), uuidv4(), { consentId }, generateKeyMaterial(), `${viewerUrl}/push/roles`),
    );
    for (const as of [
      ['hip', HIP],
      ['hiu', HIU],
      ['admin', 'ops'],
    ] as const) {
      const res = await t.request('/v0.5/health-information/hip/request', {
        method: 'POST',
        as: [as[0], as[1]],
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      expect(res.status, as[0]).toBe(403);
    }
    const anonymous = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body,
    });
    expect(anonymous.status).toBe(401);
    expect(logOf('roles').attempts).toHaveLength(0);

    const f = await transfer({ consentId, behaviour: { kind: 'ok' } });
    for (const as of [
      ['cm', 'sbx'],
      ['hip', HIP],
      ['hiu', HIU],
    ] as const) {
      const res = await t.request(`/admin/health-information/transactions/${f.txId}`, { as: [as[0], as[1]] });
      expect(res.status, as[0]).toBe(403);
    }
    expect((await adminView(f.txId)).status).toBe(200);
    expect((await adminView(uuidv4())).status).toBe(404);
  });
});
