/**
 * The health-information request in ABDM v3 (HIP_INIT_SHARE_CARECONTEXT),
 * against the strict stand-in gateway (test/support/stand-in-gateway.ts),
 * which checks every call the store makes against the v3 dialect: paths,
 * REQUEST-ID / TIMESTAMP / X-CM-ID / X-HIP-ID headers, `response.requestId`,
 * and bodies with nothing of v0.5's envelope; `gw.assertClean()` after each
 * test.
 *
 * The viewer (HIU) is a node:http server on loopback, which the store may
 * push to only because HI_PUSH_ALLOWED_HOSTS names it; it makes its own
 * Fidelius keys and decrypts every entry. What it can read must be exactly
 * the consent's hiTypes and care contexts, within both the consent's and the
 * request's dateRange; then a notify TRANSFERRED with DELIVERED per care
 * context. A refusal is an error on-request then a notify FAILED; a repeat of
 * a request pushes nothing again; a conflicting request changes nothing; a
 * failure after the acknowledgement ends FAILED with a notify.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';
import { grantConsent, notifyConsent } from '../support/consents.js';
import {
  startStandInGateway,
  v3Headers,
  type Callback,
  type StandInGateway,
  gatewayEnv,
} from '../support/stand-in-gateway.js';
import { createGenerator, type RecordKind, type SyntheticPatient } from '../../fixtures/generator.js';
import { decrypt, generateKeyMaterial, parsePublicKey, type KeyMaterial } from '../../src/abdm/fidelius.js';

const HIP = 'HIP-V3';
const HIU = 'HIU-V3';
const PATH = '/api/v3/hip/health-information/request';
const ON_REQUEST = '/data-flow/v3/health-information/hip/on-request';
const NOTIFY = '/data-flow/v3/health-information/notify';

let gw: StandInGateway;
let viewer: Server;
let viewerUrl: string;
let t: TestApp;
const g = createGenerator(20260301);
let patient: SyntheticPatient;

/** Pages the viewer received, per path key (/push/<key>). */
const pages = new Map<string, any[]>();
const pagesOf = (key: string) => pages.get(key) ?? [];

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// ---------------------------------------------------------------------------
// Records and consent
// ---------------------------------------------------------------------------

/** The consent's terms: two care contexts, two hiTypes, 2022 to 2025. */
const CONSENT = {
  careContexts: ['CC-A', 'CC-B'],
  hiTypes: ['Prescription', 'DiagnosticReport'],
  from: '2022-01-01T00:00:00Z',
  to: '2026-01-01T00:00:00Z',
};
/** A request narrower than the consent, and one wider. */
const NARROW = { from: '2023-01-01T00:00:00Z', to: '2025-06-01T00:00:00Z' };
const WIDE = { from: '2019-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' };

interface Planned {
  name: string;
  careContext: string;
  kind: RecordKind;
  date: string;
  narrow: boolean;
  wide: boolean;
}
const PLAN: Planned[] = [
  {
    name: 'R1',
    careContext: 'CC-A',
    kind: 'Prescription',
    date: '2023-03-10T09:00:00+05:30',
    narrow: true,
    wide: true,
  },
  {
    name: 'R2',
    careContext: 'CC-A',
    kind: 'DiagnosticReport',
    date: '2024-05-01T09:00:00+05:30',
    narrow: true,
    wide: true,
  },
  {
    name: 'R3',
    careContext: 'CC-B',
    kind: 'Prescription',
    date: '2025-02-20T09:00:00+05:30',
    narrow: true,
    wide: true,
  },
  // hiType not consented
  {
    name: 'R4',
    careContext: 'CC-A',
    kind: 'DischargeSummary',
    date: '2024-03-01T09:00:00+05:30',
    narrow: false,
    wide: false,
  },
  // care context not consented
  {
    name: 'R5',
    careContext: 'CC-C',
    kind: 'Prescription',
    date: '2024-03-01T09:00:00+05:30',
    narrow: false,
    wide: false,
  },
  // in the consent, before the narrow request
  {
    name: 'R6',
    careContext: 'CC-B',
    kind: 'Prescription',
    date: '2022-06-01T09:00:00+05:30',
    narrow: false,
    wide: true,
  },
  // in the wide request, before the consent
  {
    name: 'R7',
    careContext: 'CC-A',
    kind: 'Prescription',
    date: '2021-01-10T09:00:00+05:30',
    narrow: false,
    wide: false,
  },
  // in the wide request, after the consent
  {
    name: 'R8',
    careContext: 'CC-B',
    kind: 'DiagnosticReport',
    date: '2026-03-01T09:00:00+05:30',
    narrow: false,
    wide: false,
  },
];
/** Record id → its plan. */
const ids = new Map<string, Planned>();

async function upload(hip: string, p: SyntheticPatient, kind: RecordKind, date: string, careContext: string) {
  const rec = g.record(p, kind, { date, careContext: { referenceNumber: careContext, display: careContext } });
  return t.upload(hip, rec.bundle, careContext);
}

async function grant(terms: Partial<typeof CONSENT> = {}): Promise<string> {
  const { consentId, res } = await grantConsent(t, {
    patient: patient.abhaAddress,
    hip: HIP,
    hiu: HIU,
    ...CONSENT,
    ...terms,
  });
  expect(res.status).toBe(202);
  return consentId;
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

interface RequestOpts {
  consentId: string;
  txId?: string;
  requestId?: string;
  range?: { from: string; to: string };
  viewerKey?: KeyMaterial;
  /** Overrides of the key material as sent. */
  keyMaterial?: Partial<{ keyValue: string; nonce: string; expiry: string }>;
  dataPushUrl?: string;
  hip?: string;
}

const EXPIRY = new Date(Date.now() + 6 * 3600_000).toISOString();

function body(o: RequestOpts & { txId: string }, key: KeyMaterial) {
  return {
    transactionId: o.txId,
    hiRequest: {
      consent: { id: o.consentId },
      dateRange: o.range ?? NARROW,
      dataPushUrl: o.dataPushUrl ?? `${viewerUrl}/push/${o.txId}`,
      keyMaterial: {
        cryptoAlg: 'ECDH',
        curve: 'Curve25519',
        dhPublicKey: {
          expiry: o.keyMaterial?.expiry ?? EXPIRY,
          parameters: 'Curve25519/32byte random key',
          keyValue: o.keyMaterial?.keyValue ?? key.x509PublicKey,
        },
        nonce: o.keyMaterial?.nonce ?? key.nonce,
      },
    },
  };
}

interface Sent {
  txId: string;
  requestId: string;
  key: KeyMaterial;
  status: number;
  answer: any;
}

async function send(o: RequestOpts): Promise<Sent> {
  const txId = o.txId ?? uuidv4();
  const requestId = o.requestId ?? uuidv4();
  const key = o.viewerKey ?? generateKeyMaterial();
  const res = await t.request(PATH, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(o.hip ?? HIP, requestId),
    body: JSON.stringify(body({ ...o, txId }, key)),
  });
  return { txId, requestId, key, status: res.status, answer: await res.json() };
}

const onRequestsFor = (requestId: string) =>
  gw.callbacks.filter((c) => c.path === ON_REQUEST && c.body?.response?.requestId === requestId);
const notifiesFor = (txId: string) =>
  gw.callbacks.filter((c) => c.path === NOTIFY && c.body?.notification?.transactionId === txId);
const waitNotify = (txId: string) => gw.waitFor(NOTIFY, (c) => c.body?.notification?.transactionId === txId, 15_000);
const waitOnRequest = (requestId: string, n = 1) =>
  gw.waitFor(ON_REQUEST, () => onRequestsFor(requestId).length >= n, 10_000).then(() => onRequestsFor(requestId));

const statusesOf = (notify: Callback): Record<string, string> =>
  Object.fromEntries(
    notify.body.notification.statusNotification.statusResponses.map((s: any) => [s.careContextReference, s.hiStatus]),
  );

/** Waits until the transaction is saved as notified and its lease released (nothing more will change it). */
/** A v3 HI request for the NARROW range accepted straight into the transfers (no HTTP), as the route would. */
async function acceptDirectly(consentId: string) {
  const key = generateKeyMaterial();
  const txId = uuidv4();
  const accepted = await t.transfers.accept(
    {
      requestId: uuidv4(),
      transactionId: txId,
      consentId,
      dateRange: NARROW,
      dataPushUrl: `${viewerUrl}/push/${txId}`,
      keyMaterial: { dhPublicKey: { expiry: EXPIRY, keyValue: key.x509PublicKey }, nonce: key.nonce },
      dialect: 'v3',
    },
    await t.consents.get(consentId),
  );
  return { txId, accepted };
}

async function settled(txId: string) {
  await expect
    .poll(async () => {
      const tx = await t.transfers.transactions.findOne({ _id: txId });
      return !!tx?.notified && !tx.lease;
    })
    .toBe(true);
  return (await t.transfers.transactions.findOne({ _id: txId }))!;
}

/** Decrypts every pushed entry with the viewer's key: record id → care context. */
function decryptAll(sent: Sent, got: any[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const page of got) {
    expect(page.transactionId).toBe(sent.txId);
    expect(page.keyMaterial).toMatchObject({ cryptoAlg: 'ECDH', curve: 'Curve25519' });
    const hipKey = page.keyMaterial.dhPublicKey.keyValue;
    expect(() => parsePublicKey(hipKey)).not.toThrow();
    expect(Buffer.from(page.keyMaterial.nonce, 'base64')).toHaveLength(32);
    for (const e of page.entries) {
      expect(e.media).toBe('application/fhir+json');
      const plaintext = decrypt({
        encryptedData: e.content,
        requesterNonce: sent.key.nonce,
        senderNonce: page.keyMaterial.nonce,
        requesterPrivateKey: sent.key.privateKey,
        senderPublicKey: hipKey,
      });
      expect(e.checksum).toBe(createHash('md5').update(plaintext).digest('base64')); // "base64 value of MD5"
      expect(e.content).not.toContain(JSON.parse(plaintext).id); // encrypted, not merely encoded
      const bundle = JSON.parse(plaintext);
      expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'document' });
      expect(out.has(bundle.id)).toBe(false);
      out.set(bundle.id, e.careContextReference);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------

beforeAll(async () => {
  gw = await startStandInGateway();
  viewer = createServer(async (req, res) => {
    const text = await readBody(req);
    const key = decodeURIComponent(/^\/push\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '');
    pages.set(key, [...pagesOf(key), JSON.parse(text)]);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((r) => viewer.listen(0, '127.0.0.1', () => r()));
  const port = (viewer.address() as AddressInfo).port;
  viewerUrl = `http://127.0.0.1:${port}`;
  t = await createTestApp({
    ...gatewayEnv(gw),
    HI_PAGE_SIZE: '2',
    HI_PUSH_ATTEMPTS: '2',
    HI_PUSH_BACKOFF_MS: '20',
    HI_PUSH_TIMEOUT_MS: '2000',
    HI_PUSH_ALLOWED_HOSTS: `127.0.0.1:${port}`, // the viewer only
    HIP_INITIATED_LINKING: 'false', // the uploads below need not notify the gateway
  });
  patient = g.patient();
  for (const p of PLAN) ids.set(await upload(HIP, patient, p.kind, p.date, p.careContext), p);
  // outside the consent: another patient at this HIP; this patient at another HIP
  await upload(HIP, g.patient(), 'Prescription', '2024-01-01T09:00:00+05:30', 'CC-A');
  await upload('HIP-OTHER', patient, 'Prescription', '2024-01-01T09:00:00+05:30', 'CC-A');
});

afterEach(() => gw.assertClean());

afterAll(async () => {
  viewer?.closeAllConnections();
  await new Promise<void>((r) => (viewer ? viewer.close(() => r()) : r()));
  await gw?.close();
  await t?.close();
});

// ---------------------------------------------------------------------------

describe('HIP_INIT_SHARE_CARECONTEXT in v3', () => {
  it.each([
    ['narrower than the consent', NARROW, 'narrow'],
    ['wider than the consent', WIDE, 'wide'],
  ] as const)(
    'a request %s: only the consented hiTypes and care contexts within both ranges, encrypted; notify TRANSFERRED',
    async (_name, range, which) => {
      const consentId = await grant();
      const sent = await send({ consentId, range });
      expect(sent.status).toBe(202);
      expect(sent.answer).toEqual({ transactionId: sent.txId, status: 'ACKNOWLEDGED' });

      const notify = await waitNotify(sent.txId);
      const [onRequest] = onRequestsFor(sent.requestId);
      expect(onRequest.body).toEqual({
        hiRequest: { transactionId: sent.txId, sessionStatus: 'ACKNOWLEDGED' },
        response: { requestId: sent.requestId },
      });
      expect(onRequest.headers['x-hip-id']).toBe(HIP);
      expect(gw.callbacks.indexOf(onRequest)).toBeLessThan(gw.callbacks.indexOf(notify));

      const want = [...ids].filter(([, p]) => p[which]).map(([id, p]) => [id, p.careContext] as const);
      const got = decryptAll(sent, pagesOf(sent.txId));
      expect([...got].sort()).toEqual([...want].sort());
      expect(pagesOf(sent.txId).map((p) => p.pageNumber)).toEqual(
        Array.from({ length: Math.ceil(want.length / 2) }, (_, i) => i + 1),
      );

      expect(notify.headers['x-hip-id']).toBe(HIP);
      expect(notify.body.notification).toMatchObject({
        consentId,
        transactionId: sent.txId,
        notifier: { type: 'HIP', id: HIP },
        statusNotification: { sessionStatus: 'TRANSFERRED', hipId: HIP },
      });
      expect(statusesOf(notify)).toEqual(Object.fromEntries(want.map(([, cc]) => [cc, 'DELIVERED'])));
      const tx = await settled(sent.txId);
      expect(tx).toMatchObject({ status: 'TRANSFERRED', dialect: 'v3', hip: HIP, requestId: sent.requestId });
      expect(tx.sender).toBeUndefined();
      expect(notifiesFor(sent.txId)).toHaveLength(1);
    },
  );

  it('a raw (65-byte) viewer key works as well as an X.509 one', async () => {
    const consentId = await grant({ careContexts: ['CC-B'] });
    const key = generateKeyMaterial();
    const sent = await send({ consentId, viewerKey: key, keyMaterial: { keyValue: key.publicKey } });
    const notify = await waitNotify(sent.txId);
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    const got = decryptAll(sent, pagesOf(sent.txId));
    expect([...got.values()]).toEqual(['CC-B']);
  });
});

describe('refusals: an error on-request, then a notify FAILED', () => {
  async function refused(o: RequestOpts, reason: RegExp) {
    const sent = await send(o);
    expect(sent.status).toBe(202);
    expect(sent.answer).toMatchObject({ transactionId: sent.txId, status: 'ERRORED' });
    expect(sent.answer.reason).toMatch(reason);
    const [onRequest] = await waitOnRequest(sent.requestId);
    expect(onRequest.body).toEqual({
      error: { code: expect.anything(), message: expect.stringMatching(reason) },
      response: { requestId: sent.requestId },
    });
    expect(onRequest.headers['x-hip-id']).toBe(HIP);
    const notify = await waitNotify(sent.txId);
    expect(gw.callbacks.indexOf(onRequest)).toBeLessThan(gw.callbacks.indexOf(notify));
    expect(notify.headers['x-hip-id']).toBe(HIP);
    expect(notify.body.notification).toMatchObject({
      consentId: o.consentId,
      transactionId: sent.txId,
      notifier: { type: 'HIP', id: HIP },
      statusNotification: { sessionStatus: 'FAILED', hipId: HIP },
    });
    expect(pagesOf(sent.txId)).toEqual([]);
    const tx = await settled(sent.txId);
    expect(tx).toMatchObject({ status: 'FAILED', refused: true, dialect: 'v3' });
    expect(tx.sender).toBeUndefined(); // no key pair made for a refusal
    return notify;
  }

  it('a revoked consent', async () => {
    const consentId = await grant();
    const res = await notifyConsent(t, { consentId, status: 'REVOKED' });
    expect(res.status).toBe(202);
    const notify = await refused({ consentId }, /REVOKED/);
    expect(statusesOf(notify)).toEqual({}); // the terms are erased: no care contexts to report
  });

  it('an unknown consent: no care contexts', async () => {
    const notify = await refused({ consentId: uuidv4() }, /unknown/);
    expect(statusesOf(notify)).toEqual({});
  });

  it.each([
    ['a nonce of 3 bytes ("AAAA")', { nonce: 'AAAA' }, /nonce is not base64 of exactly 32 bytes/],
    ['a nonce of 33 bytes', { nonce: Buffer.alloc(33, 1).toString('base64') }, /nonce/],
    ['a keyValue that is not a Curve25519 point', { keyValue: Buffer.alloc(65, 7).toString('base64') }, /keyValue/],
    ['an expired key', { expiry: new Date(Date.now() - 60_000).toISOString() }, /key material has expired/],
  ])('bad key material: %s (every care context of the consent ERRORED)', async (_name, keyMaterial, reason) => {
    const consentId = await grant();
    const notify = await refused({ consentId, keyMaterial }, reason);
    expect(statusesOf(notify)).toEqual({ 'CC-A': 'ERRORED', 'CC-B': 'ERRORED' });
  });

  it('a dateRange with from after to', async () => {
    const consentId = await grant();
    await refused({ consentId, range: { from: NARROW.to, to: NARROW.from } }, /dateRange/);
  });

  it('a consent of another HIP than the one addressed (X-HIP-ID)', async () => {
    const consentId = await grant();
    const sent = await send({ consentId, hip: 'HIP-ELSE' });
    expect(sent.answer).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(/not for HIP HIP-ELSE/) });
    // Answered as the HIP the gateway addressed, and nothing of the other HIP's consent is told: no care contexts.
    const [onRequest] = await waitOnRequest(sent.requestId);
    expect(onRequest.headers['x-hip-id']).toBe('HIP-ELSE');
    const notify = await waitNotify(sent.txId);
    expect(notify.body.notification.statusNotification).toMatchObject({ sessionStatus: 'FAILED', hipId: 'HIP-ELSE' });
    expect(notify.body.notification.notifier).toEqual({ type: 'HIP', id: 'HIP-ELSE' });
    expect(notify.headers['x-hip-id']).toBe('HIP-ELSE');
    expect(statusesOf(notify)).toEqual({});
    expect(pagesOf(sent.txId)).toEqual([]);
  });

  it('a v3 request without X-HIP-ID, or with a malformed one, is 400 and pushes nothing', async () => {
    const consentId = await grant();
    const before = gw.callbacks.length;
    const { 'X-HIP-ID': _omitted, ...withoutHip } = v3Headers(HIP);
    for (const headers of [withoutHip, { ...withoutHip, 'X-HIP-ID': 'HIP A' }, { ...withoutHip, 'X-HIP-ID': 'a, b' }]) {
      const res = await t.request(PATH, {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers,
        body: JSON.stringify(body({ consentId, txId: uuidv4() }, generateKeyMaterial())),
      });
      expect(res.status).toBe(400);
      expect((await res.json()).issue[0].expression).toEqual(['X-HIP-ID']);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.callbacks.slice(before).filter((c) => c.path.startsWith('/data-flow/'))).toEqual([]);
  });

  it('a v3 request without REQUEST-ID is 400 and answered to no one', async () => {
    const consentId = await grant();
    const before = gw.callbacks.length;
    const { 'REQUEST-ID': _omitted, ...headers } = v3Headers(HIP);
    const res = await t.request(PATH, {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers,
      body: JSON.stringify(body({ consentId, txId: uuidv4() }, generateKeyMaterial())),
    });
    expect(res.status).toBe(400);
    expect((await res.json()).resourceType).toBe('OperationOutcome');
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.callbacks.slice(before).filter((c) => c.path.startsWith('/data-flow/'))).toEqual([]);
  });

  it('malformed v3 bodies are 422 (cryptoAlg, curve, a v0.5 body without hiRequest)', async () => {
    const consentId = await grant();
    const key = generateKeyMaterial();
    for (const mutate of [
      (b: any) => (b.hiRequest.keyMaterial.cryptoAlg = 'RSA'),
      (b: any) => (b.hiRequest.keyMaterial.curve = 'P-256'),
      (b: any) => delete b.hiRequest,
      (b: any) => delete b.transactionId,
      (b: any) => (b.hiRequest.dataPushUrl = 'ftp://viewer.example.org/push'),
    ]) {
      const b: any = body({ consentId, txId: uuidv4() }, key);
      mutate(b);
      const res = await t.request(PATH, {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: v3Headers(HIP),
        body: JSON.stringify(b),
      });
      expect(res.status, JSON.stringify(b).slice(0, 200)).toBe(422);
    }
  });
});

describe('who may ask', () => {
  it('no token 401; hip, hiu and admin tokens 403; nothing pushed or answered', async () => {
    const consentId = await grant();
    const txId = uuidv4();
    const payload = JSON.stringify(body({ consentId, txId }, generateKeyMaterial()));
    const before = gw.callbacks.length;
    const anonymous = await t.request(PATH, { method: 'POST', headers: v3Headers(HIP), body: payload });
    expect(anonymous.status).toBe(401);
    for (const as of [
      ['hip', HIP],
      ['hiu', HIU],
      ['admin', 'ops'],
    ] as const) {
      const res = await t.request(PATH, { method: 'POST', as: [as[0], as[1]], headers: v3Headers(HIP), body: payload });
      expect(res.status, as[0]).toBe(403);
      expect((await res.json()).resourceType).toBe('OperationOutcome');
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.callbacks.slice(before).filter((c) => c.path.startsWith('/data-flow/'))).toEqual([]);
    expect(pagesOf(txId)).toEqual([]);
    expect(await t.transfers.transactions.findOne({ _id: txId })).toBeNull();
    // each refusal is audited under the route's action
    const refusals = await t.audit.events
      .find({ action: 'health-information.request', outcome: 'refused', status: { $in: [401, 403] } })
      .toArray();
    expect(refusals.length).toBeGreaterThanOrEqual(4);
  });
});

describe('the same request id, or the same transaction, again', () => {
  /** A finished transfer to compare against. */
  async function finished() {
    const consentId = await grant();
    const sent = await send({ consentId });
    await waitNotify(sent.txId);
    const tx = await settled(sent.txId);
    return { consentId, sent, tx, pushed: pagesOf(sent.txId).length };
  }

  it('the same REQUEST-ID with the same content: acknowledged again, nothing pushed again', async () => {
    const { consentId, sent, tx, pushed } = await finished();
    const again = await send({ consentId, txId: sent.txId, requestId: sent.requestId, viewerKey: sent.key });
    expect(again.answer).toEqual({ transactionId: sent.txId, status: 'ACKNOWLEDGED' });
    const answers = await waitOnRequest(sent.requestId, 2);
    expect(answers[1].body).toEqual(answers[0].body);
    await t.transfers.run(sent.txId);
    await new Promise((r) => setTimeout(r, 200));
    expect(pagesOf(sent.txId)).toHaveLength(pushed);
    expect(notifiesFor(sent.txId)).toHaveLength(1);
    expect(await t.transfers.transactions.findOne({ _id: sent.txId })).toEqual(tx);
  });

  it('the same REQUEST-ID under a new transactionId: refused; the original untouched', async () => {
    const { consentId, sent, tx, pushed } = await finished();
    const other = await send({ consentId, requestId: sent.requestId, viewerKey: sent.key });
    expect(other.answer).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(/another transaction/) });
    const answers = await waitOnRequest(sent.requestId, 2);
    expect(answers[1].body.error.message).toMatch(/another transaction/);
    await new Promise((r) => setTimeout(r, 200));
    expect(pagesOf(other.txId)).toEqual([]);
    expect(pagesOf(sent.txId)).toHaveLength(pushed);
    expect(notifiesFor(other.txId)).toEqual([]);
    expect(await t.transfers.transactions.findOne({ _id: other.txId })).toBeNull();
    expect(await t.transfers.transactions.findOne({ _id: sent.txId })).toEqual(tx);
  });

  it('the same transactionId with a changed request (dataPushUrl, key, dateRange, consent): refused each time', async () => {
    const { consentId, sent, tx, pushed } = await finished();
    const otherConsent = await grant();
    const changes: [string, RequestOpts][] = [
      ['dataPushUrl', { consentId, dataPushUrl: `${viewerUrl}/push/elsewhere` }],
      ['key material', { consentId }], // a new key pair
      ['nonce', { consentId, viewerKey: sent.key, keyMaterial: { nonce: generateKeyMaterial().nonce } }],
      ['dateRange', { consentId, viewerKey: sent.key, range: WIDE }],
      ['consent', { consentId: otherConsent, viewerKey: sent.key }],
    ];
    for (const [what, o] of changes) {
      const changed = await send({ ...o, txId: sent.txId });
      expect(changed.answer, what).toMatchObject({
        status: 'ERRORED',
        reason: expect.stringMatching(/different request/),
      });
      const [answer] = await waitOnRequest(changed.requestId);
      expect(answer.body.error.message, what).toMatch(/different request/);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(pagesOf('elsewhere')).toEqual([]);
    expect(pagesOf(sent.txId)).toHaveLength(pushed);
    expect(notifiesFor(sent.txId)).toHaveLength(1);
    expect(await t.transfers.transactions.findOne({ _id: sent.txId })).toEqual(tx);
  });

  it('two identical requests at once: one transaction, pushed once', async () => {
    const consentId = await grant();
    const txId = uuidv4();
    const requestId = uuidv4();
    const key = generateKeyMaterial();
    const [a, b] = await Promise.all([
      send({ consentId, txId, requestId, viewerKey: key }),
      send({ consentId, txId, requestId, viewerKey: key }),
    ]);
    expect([a.answer.status, b.answer.status]).toEqual(['ACKNOWLEDGED', 'ACKNOWLEDGED']);
    await waitNotify(txId);
    await settled(txId);
    await t.transfers.run(txId);
    expect(notifiesFor(txId)).toHaveLength(1);
    const numbers = pagesOf(txId).map((p) => p.pageNumber);
    expect(numbers).toEqual([...new Set(numbers)]);
    expect(await t.transfers.transactions.countDocuments({ requestId })).toBe(1);
    // one transaction per request id, kept by a unique index
    const indexes = await t.transfers.transactions.indexes();
    expect(indexes.find((i) => i.name === 'request_id')).toMatchObject({ key: { requestId: 1 }, unique: true });
  });
});

describe('a transaction whose process died', () => {
  it('is taken over once its lease expires, by the periodic resume, not only at the next start', async () => {
    const sent = await send({ consentId: uuidv4() }); // refused (unknown consent): a FAILED transaction to notify
    await settled(sent.txId);
    const notifies = () =>
      gw.callbacks.filter((c) => c.path === NOTIFY && c.body.notification.transactionId === sent.txId);
    expect(notifies()).toHaveLength(1);
    // As if a previous run of this store died before notifying, holding the lease for a moment longer.
    await t.transfers.transactions.updateOne(
      { _id: sent.txId },
      { $set: { notified: false, lease: { owner: 'a-process-that-died', until: new Date(Date.now() + 600) } } },
    );
    expect(await t.transfers.resume()).toBe(0); // its lease is still live: left alone
    const stop = t.transfers.keepResuming(150);
    try {
      await expect.poll(() => notifies().length, { timeout: 5000 }).toBe(2);
      expect((await settled(sent.txId)).notified).toBe(true);
    } finally {
      stop();
    }
  });
});

describe('a failure after the acknowledgement ends FAILED, with a notify', () => {
  it('the stored sender key corrupted after accept, before run: FAILED, every care context ERRORED, notify', async () => {
    const consentId = await grant();
    const { txId, accepted } = await acceptDirectly(consentId);
    expect(accepted.outcome).toBe('new');
    await t.transfers.transactions.updateOne({ _id: txId }, { $set: { 'sender.privateKey': 'not a key!' } });
    await t.transfers.run(txId);
    const notify = await waitNotify(txId);
    expect(notify.headers['x-hip-id']).toBe(HIP);
    expect(notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    expect(statusesOf(notify)).toEqual({ 'CC-A': 'ERRORED', 'CC-B': 'ERRORED' });
    const tx = await settled(txId);
    expect(tx).toMatchObject({ status: 'FAILED', notified: true });
    expect(tx.error).toMatch(/internal error/);
    expect(tx.error).not.toMatch(/not a key/);
    expect(tx.sender).toBeUndefined();
    expect(pagesOf(txId)).toEqual([]);
  });

  it('a record whose content cannot be read mid-transfer: FAILED, its care context and those after it ERRORED', async () => {
    const consentId = await grant();
    const { txId } = await acceptDirectly(consentId);
    // Page 1 (R1, R2) goes; R3 (page 2, CC-B) is then made unreadable: its current version points at no content.
    const r3 = [...ids].find(([, p]) => p.name === 'R3')![0];
    const original = await t.collections.current.findOne({ _id: r3 });
    try {
      await t.collections.current.updateOne({ _id: r3 }, { $set: { contentId: 'missing' }, $unset: { z: '' } });
      await t.transfers.run(txId);
      const notify = await waitNotify(txId);
      expect(notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
      expect(statusesOf(notify)).toEqual({ 'CC-A': 'DELIVERED', 'CC-B': 'ERRORED' });
      expect(pagesOf(txId).map((p) => p.pageNumber)).toEqual([1]);
      const tx = await settled(txId);
      expect(tx).toMatchObject({ status: 'FAILED', pagesSent: 1 });
      expect(tx.error).toMatch(/internal error/);
    } finally {
      await t.collections.current.replaceOne({ _id: r3 }, original!);
    }
  });
});
