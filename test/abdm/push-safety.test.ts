/**
 * The push cannot be misdirected or made to hold a huge answer, end to end
 * (src/http/outbound.ts as abdm/transfer.ts uses it), against the strict v3
 * stand-in gateway.
 *
 * Two loopback servers: the viewer, which HI_PUSH_ALLOWED_HOSTS names by
 * host:port, and a bait on another port, which nothing allows. A request
 * whose dataPushUrl points at the bait in any spelling (localhost,
 * 0x7f000001, 2130706433, IPv4-mapped IPv6), or at a name that resolves to
 * loopback only when the connection is made, must end FAILED with a notify
 * and the bait never posted to. A redirect from the viewer is not followed;
 * a 200 MB answer is not read.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { v4 as uuidv4 } from 'uuid';
import { hiRequestBody } from '../support/viewer.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { grantConsent } from '../support/consents.js';
import { startStandInGateway, v3Headers, type StandInGateway, gatewayEnv } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { generateKeyMaterial } from '../../src/abdm/fidelius.js';

const HIP = 'HIP-PS';
const HIU = 'HIU-PS';
const PATH = '/api/v3/hip/health-information/request';
const ON_REQUEST = '/data-flow/v3/health-information/hip/on-request';
const NOTIFY = '/data-flow/v3/health-information/notify';
const HUGE = 200 * 1024 * 1024;

let gw: StandInGateway;
let viewer: Server;
let bait: Server;
let viewerPort: number;
let baitPort: number;
let t: TestApp;
let patient: SyntheticPatient;
const g = createGenerator(4242);

/** Every request the bait received (there must be none). */
const baitHits: string[] = [];
/** Per viewer key: attempts, and the bytes of answer written for each. */
const viewerLog = new Map<string, { attempts: number; written: number[] }>();
type Behaviour = 'ok' | 'redirect' | 'huge';
const behaviours = new Map<string, Behaviour>();

async function drain(req: IncomingMessage) {
  for await (const _ of req);
}

function answerHuge(res: ServerResponse, log: { written: number[] }) {
  const i = log.written.push(0) - 1;
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(HUGE) });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = () => {
    while (log.written[i] < HUGE && !res.destroyed) {
      log.written[i] += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end();
  };
  res.on('error', () => {});
  pump();
}

const listen = (s: Server) =>
  new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));

beforeAll(async () => {
  gw = await startStandInGateway();
  bait = createServer(async (req, res) => {
    baitHits.push(req.url ?? '');
    await drain(req);
    res.writeHead(200);
    res.end('{}');
  });
  viewer = createServer(async (req, res) => {
    await drain(req);
    const key = decodeURIComponent(/^\/push\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '');
    const log = viewerLog.get(key) ?? { attempts: 0, written: [] };
    viewerLog.set(key, log);
    log.attempts++;
    const b = behaviours.get(key) ?? 'ok';
    if (b === 'redirect') {
      res.writeHead(307, { Location: `http://127.0.0.1:${baitPort}/push/redirected` });
      return res.end();
    }
    if (b === 'huge') return answerHuge(res, log);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  [viewerPort, baitPort] = await Promise.all([listen(viewer), listen(bait)]);
  t = await createTestApp({
    ...gatewayEnv(gw),
    HI_PAGE_SIZE: '1',
    HI_PUSH_ATTEMPTS: '3',
    HI_PUSH_BACKOFF_MS: '20',
    HI_PUSH_TIMEOUT_MS: '5000',
    HI_PUSH_ALLOWED_HOSTS: `127.0.0.1:${viewerPort}`, // the viewer only; not the bait's port
    HIP_INITIATED_LINKING: 'false',
  });
  patient = g.patient();
  for (const date of ['2023-02-01T09:00:00+05:30', '2023-08-01T09:00:00+05:30']) {
    const rec = g.record(patient, 'Prescription', { date, careContext: { referenceNumber: 'CC-1', display: 'CC-1' } });
    const res = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(rec.bundle),
      headers: uploadHeaders('CC-1'),
      as: ['hip', HIP],
    });
    expect(res.status).toBe(201);
  }
});

afterEach(() => {
  gw.assertClean();
  expect(baitHits).toEqual([]);
});

afterAll(async () => {
  for (const s of [viewer, bait]) {
    s?.closeAllConnections();
    await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  }
  await gw?.close();
  await t?.close();
});

async function request(dataPushUrl: (txId: string) => string) {
  const { consentId } = await grantConsent(t, {
    patient: patient.abhaAddress,
    hip: HIP,
    hiu: HIU,
    careContexts: ['CC-1'],
    from: '2020-01-01',
    to: '2030-01-01',
  });
  const txId = uuidv4();
  const requestId = uuidv4();
  const key = generateKeyMaterial();
  const res = await t.request(PATH, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(HIP, requestId),
    body: JSON.stringify(
      hiRequestBody({
        txId,
        consentId,
        dataPushUrl: dataPushUrl(txId),
        key,
        range: { from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' },
      }),
    ),
  });
  expect(res.status).toBe(202);
  const answer = await res.json();
  const notify = await gw.waitFor(NOTIFY, (c) => c.body.notification.transactionId === txId, 20_000);
  const onRequest = gw.callbacks.find((c) => c.path === ON_REQUEST && c.body.response?.requestId === requestId)!;
  await expect
    .poll(async () => {
      const tx = await t.transfers.transactions.findOne({ _id: txId });
      return !!tx?.notified && !tx.lease;
    })
    .toBe(true);
  const tx = (await t.transfers.transactions.findOne({ _id: txId }))!;
  return { txId, answer, onRequest, notify, tx };
}

describe('destinations the push refuses, end to end', () => {
  it.each([
    ['localhost', (p: number) => `http://localhost:${p}/push/x`, /localhost is a loopback name/],
    ['0x7f000001', (p: number) => `http://0x7f000001:${p}/push/x`, /127\.0\.0\.1 is a loopback address/],
    ['2130706433', (p: number) => `http://2130706433:${p}/push/x`, /127\.0\.0\.1 is a loopback address/],
    ['[::ffff:127.0.0.1]', (p: number) => `http://[::ffff:127.0.0.1]:${p}/push/x`, /loopback address/],
    ['[::1]', (p: number) => `http://[::1]:${p}/push/x`, /loopback address/],
  ])('http://%s:<port>: refused before acknowledging, not posted to, FAILED with a notify', async (_n, url, why) => {
    const r = await request(() => url(baitPort));
    expect(r.answer).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(why) });
    expect(r.onRequest.body.error.message).toMatch(why);
    expect(r.onRequest.body.hiRequest).toBeUndefined();
    expect(r.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
    expect(r.tx).toMatchObject({ status: 'FAILED', refused: true });
  });

  it('a name that resolves to loopback only at connect time: refused as connected, not retried, FAILED', async () => {
    const policy = t.transfers.pushPolicy;
    const lookups: string[] = [];
    policy.resolve = async (host) => {
      lookups.push(host);
      return [{ address: '127.0.0.1', family: 4 }]; // as a rebinding DNS would answer after the request's check
    };
    try {
      const r = await request(() => `http://viewer.rebind.example:${baitPort}/push/rebind`);
      expect(r.answer.status).toBe('ACKNOWLEDGED'); // a name: nothing to tell before connecting
      expect(r.notify.body.notification.statusNotification).toMatchObject({
        sessionStatus: 'FAILED',
        statusResponses: [expect.objectContaining({ careContextReference: 'CC-1', hiStatus: 'ERRORED' })],
      });
      expect(r.tx.status).toBe('FAILED');
      expect(r.tx.error).toMatch(/refused: viewer\.rebind\.example resolves to 127\.0\.0\.1, which is a loopback/);
      expect(lookups.filter((h) => h === 'viewer.rebind.example')).toHaveLength(1); // not retried
    } finally {
      delete policy.resolve;
    }
  });

  it('http when HI_PUSH_ALLOW_HTTP is false: refused before acknowledging', async () => {
    const policy = t.transfers.pushPolicy;
    policy.allowHttp = false;
    try {
      const r = await request((txId) => `http://127.0.0.1:${viewerPort}/push/${txId}`);
      expect(r.answer).toMatchObject({ status: 'ERRORED', reason: expect.stringMatching(/must be https/) });
      expect(viewerLog.get(r.txId)).toBeUndefined();
    } finally {
      policy.allowHttp = true;
    }
  });
});

describe('what the viewer answers', () => {
  it('a 307 redirect is not followed: the page fails (not retried), FAILED with a notify', async () => {
    const r = await request((txId) => {
      behaviours.set(txId, 'redirect');
      return `http://127.0.0.1:${viewerPort}/push/${txId}`;
    });
    expect(r.answer.status).toBe('ACKNOWLEDGED');
    expect(viewerLog.get(r.txId)?.attempts).toBe(1);
    expect(r.tx.status).toBe('FAILED');
    expect(r.tx.error).toMatch(/HTTP 307 \(a redirect: not followed\)/);
    expect(r.notify.body.notification.statusNotification.sessionStatus).toBe('FAILED');
  });

  it('a 200 MB answer is not read: at most a socket buffer of it is sent before the store hangs up', async () => {
    const r = await request((txId) => {
      behaviours.set(txId, 'huge');
      return `http://127.0.0.1:${viewerPort}/push/${txId}`;
    });
    expect(r.tx.status).toBe('TRANSFERRED'); // the viewer said 200; the rest of its answer does not matter
    expect(r.notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
    const log = viewerLog.get(r.txId)!;
    expect(log.attempts).toBe(2); // two pages, each delivered once
    console.log(`[push-safety] bytes of a ${HUGE}-byte answer written before the store hung up: ${log.written}`);
    for (const w of log.written) expect(w).toBeLessThan(32 * 1024 * 1024);
  });
});
