/**
 * HIP-initiated linking, context notify and SMS notify (src/abdm/hip-linking.ts) against the strict stand-in ABDM
 * gateway, which answers generate-token, link/carecontext and the notifies by posting the gateway's answers to the
 * app as role cm, as ABDM does. Each test uses its own provider (X-HIP-ID), so its calls are told apart; sweeps are
 * run by the tests themselves (the app's interval is main.ts's).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import {
  startStandInGateway,
  v3Headers,
  type Callback,
  type StandInGateway,
  gatewayEnv,
} from '../support/stand-in-gateway.js';
import { createGenerator, type RecordKind, type SyntheticPatient } from '../../fixtures/generator.js';
import { HipLinker, linkTokenExpiry, type HipLinkDoc } from '../../src/abdm/hip-linking.js';
import { createLog } from '../../src/log.js';
import { RecordStore } from '../../src/records/store.js';
import { GatewayClient } from '../../src/abdm/gateway.js';

const GENERATE = '/v3/token/generate-token';
const LINK = '/hip/v3/link/carecontext';
const NOTIFY = '/hip/v3/link/context/notify';
const SMS = '/hip/v3/link/patient/links/sms/notify2';
const ON_TOKEN = '/api/v3/hip/token/on-generate-token';
const ON_LINK = '/api/v3/link/on_carecontext';
const ON_NOTIFY = '/api/v3/links/context/on-notify';
const ON_SMS = '/api/v3/patients/sms/on-notify';
const ATTEMPTS = 3;
const BACKOFF = 1000;
const ANSWER_TIMEOUT = 5000;
const PHONE = '+91 98765 43210';

let gw: StandInGateway;
let t: TestApp;
const g = createGenerator(40417);
const patients: SyntheticPatient[] = [];
const newPatient = () => {
  const p = g.patient();
  patients.push(p);
  return p;
};

/** A JWT-shaped link token (unsigned; the store only reads `exp`). */
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const jwt = (expSec: number, sub = 'link') =>
  `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub, exp: expSec, n: Math.random() })}.c2lnbmF0dXJl`;
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

/** How the gateway answers, per provider; default: a token valid for an hour, a successful link, acknowledgements. */
type TokenAnswer = Record<string, unknown> | null;
const tokenAnswers = new Map<string, (call: Callback) => TokenAnswer>();
const linkAnswers = new Map<string, (call: Callback) => Record<string, unknown> | null>();
const notifyAnswers = new Map<string, (call: Callback) => Record<string, unknown>>();
const held = new Map<string, Callback[]>();
const hipOf = (c: Callback) => c.headers['x-hip-id'] as string;
const calls = (path: string, hip: string) => gw.callbacks.filter((c) => c.path === path && hipOf(c) === hip);
/** Every answer posted to the app, with what the app said became of it (applied, late, ignored). */
const answered: { path: string; hip: string; requestId: string; status: string }[] = [];

async function answer(path: string, call: Callback, body: Record<string, unknown>) {
  const requestId = call.headers['request-id'] as string;
  const res = await t.request(path, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(hipOf(call)),
    body: JSON.stringify({ ...body, response: { requestId } }),
  });
  if (res.status !== 202) throw new Error(`${path} answered ${res.status}: ${await res.text()}`);
  answered.push({ path, hip: hipOf(call), requestId, status: (await res.json()).status });
}
const answerToken = (call: Callback) => {
  const a = (tokenAnswers.get(hipOf(call)) ?? (() => ({ linkToken: jwt(inAnHour()) })))(call);
  if (!a) return;
  return answer(ON_TOKEN, call, { abhaAddress: call.body.abhaAddress ?? 'number.only@sbx', ...a });
};

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    ...gatewayEnv(gw),
    HIP_LINK_ATTEMPTS: String(ATTEMPTS),
    HIP_LINK_BACKOFF_MS: String(BACKOFF),
    HIP_LINK_ANSWER_TIMEOUT_MS: String(ANSWER_TIMEOUT),
  });
  gw.on(GENERATE, async (call) => {
    const h = held.get(hipOf(call));
    if (h) return void h.push(call); // answered when the test releases it
    await answerToken(call);
  });
  gw.on(LINK, async (call) => {
    const a = (linkAnswers.get(hipOf(call)) ?? (() => ({ status: 'SUCCESS' })))(call);
    if (a) await answer(ON_LINK, call, { abhaAddress: call.body.abhaAddress, ...a });
  });
  gw.on(NOTIFY, (call) =>
    answer(ON_NOTIFY, call, (notifyAnswers.get(hipOf(call)) ?? (() => ({ acknowledgement: { status: 'OK' } })))(call)),
  );
  gw.on(SMS, (call) => answer(ON_SMS, call, { acknowledgement: { status: 'OK' } }));
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

/** Waits until the background work and the gateway's answers have settled. */
async function settle() {
  let seen = -1;
  while (seen !== gw.callbacks.length) {
    seen = gw.callbacks.length;
    await t.hipLinks.idle();
    await new Promise((r) => setTimeout(r, 150));
    await t.hipLinks.idle();
  }
}
afterEach(async () => {
  t.clock.now = undefined;
  await settle();
  gw.assertClean();
  // No test leaves another a due job: what is still open is ended here.
  await t.hipLinks.jobs.updateMany(
    { status: { $in: ['PENDING', 'SENDING', 'TOKEN_REQUESTED', 'LINK_REQUESTED'] } },
    { $set: { status: 'FAILED', nextAttemptAt: null, lastError: 'ended by the test' } },
  );
});

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const digits = (p: SyntheticPatient) => p.abhaNumber.replace(/-/g, '');
const ccId = (hip: string, p: SyntheticPatient, cc: string) => `${hip}|${digits(p)}|${cc}`;
const job = (id: string) => t.hipLinks.jobs.findOne({ _id: id }) as Promise<HipLinkDoc | null>;
const careContext = (hip: string, p: SyntheticPatient, cc: string) =>
  t.collections.careContexts.findOne({ _id: ccId(hip, p, cc) });

/** Uploads a new record of `p` into care context `cc` at `hip`; `edit` changes the bundle first. */
async function upload(
  hip: string,
  p: SyntheticPatient,
  cc: string,
  kind: RecordKind = 'Prescription',
  edit?: (bundle: any) => void,
): Promise<{ bundle: any; status: number }> {
  const rec = g.record(p, kind, { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
  edit?.(rec.bundle);
  const res = await t.request('/fhir/Bundle', {
    method: 'POST',
    body: JSON.stringify(rec.bundle),
    headers: uploadHeaders(cc, { 'X-Care-Context-Display': `Visit ${cc}` }),
    as: ['hip', hip],
  });
  expect([200, 201]).toContain(res.status);
  return { bundle: rec.bundle, status: res.status };
}
const patientOf = (bundle: any) => bundle.entry.find((e: any) => e.resource.resourceType === 'Patient').resource;
/** The Patient without its ABHA address (only the ABHA number remains), with `phone` when given. */
const numberOnly = (p: SyntheticPatient, phone?: string) => (bundle: any) => {
  const patient = patientOf(bundle);
  patient.identifier = patient.identifier.filter((i: any) => i.value !== p.abhaAddress);
  if (phone) patient.telecom = [{ system: 'phone', value: phone, use: 'mobile' }];
};

const demographics = (p: SyntheticPatient) => ({
  name: `${p.name.given} ${p.name.family}`,
  gender: { male: 'M', female: 'F', other: 'O' }[p.gender],
  yearOfBirth: Number(p.birthDate.slice(0, 4)),
});

describe('HIP-initiated linking', () => {
  const HIP = 'HIP-LINKS';
  let p: SyntheticPatient;

  it('links a new care context: generate-token with the demographics, link/carecontext grouped by hiType', async () => {
    p = newPatient();
    held.set(HIP, []); // the token's answer waits until both uploads are in
    const first = await upload(HIP, p, 'OP-1', 'Prescription');
    expect(first.status).toBe(201);
    await until('generate-token', async () => calls(GENERATE, HIP).length === 1);
    await upload(HIP, p, 'OP-1', 'DiagnosticReport');
    await t.hipLinks.idle(); // the second upload's follow-up has joined the open job
    const waiting = held.get(HIP)!;
    held.delete(HIP);
    await Promise.all(waiting.map(answerToken));

    const cc = await until('care context linked', async () => (await careContext(HIP, p, 'OP-1'))?.linked);
    expect(cc.abhaAddress).toBe(p.abhaAddress.toLowerCase());
    const [generate] = calls(GENERATE, HIP);
    expect(generate.body).toEqual({ abhaNumber: digits(p), abhaAddress: p.abhaAddress, ...demographics(p) });
    const [link] = calls(LINK, HIP);
    const token = await t.hipLinks.tokens.findOne({ _id: `${HIP}|${digits(p)}` });
    expect(token?.linkToken).toBeTruthy();
    expect(link.headers['x-link-token']).toBe(token!.linkToken);
    expect(link.body.abhaAddress).toBe(p.abhaAddress);
    expect(link.body.abhaNumber).toBe(digits(p));
    const group = (hiType: string) => ({
      referenceNumber: p.abhaAddress,
      display: demographics(p).name,
      careContexts: [{ referenceNumber: 'OP-1', display: 'Visit OP-1' }],
      hiType,
      count: 1,
    });
    expect(link.body.patient).toEqual([group('Prescription'), group('DiagnosticReport')]);
    // The care context is marked linked before the job is (two writes): wait for the job's own state.
    const done = await until('job linked', async () => {
      const j = await job(`link|${ccId(HIP, p, 'OP-1')}`);
      return j?.status === 'LINKED' ? j : undefined;
    });
    expect(done).toMatchObject({ status: 'LINKED', attempts: 1, lastError: null });
    expect(done!.sent.map((s) => s.call)).toEqual(['generateToken', 'linkCareContext']);
    expect(done!.sent.map((s) => s.requestId)).toEqual([generate.headers['request-id'], link.headers['request-id']]);
    // expiresAt is the JWT's exp claim
    const exp = JSON.parse(Buffer.from(token!.linkToken.split('.')[1], 'base64url').toString()).exp;
    expect(token!.expiresAt.getTime()).toBe(exp * 1000);
  });

  it('a new record in the linked care context sends a context notify; an identical repeat sends nothing', async () => {
    const { bundle } = await upload(HIP, p, 'OP-1', 'Prescription');
    const notify = await gw.waitFor(NOTIFY, (c) => hipOf(c) === HIP);
    expect(notify.body.notification).toEqual({
      patient: { id: p.abhaAddress.toLowerCase() },
      careContext: { patientReference: p.abhaAddress.toLowerCase(), careContextReference: 'OP-1' },
      hiTypes: ['Prescription'],
      date: expect.any(String),
      hip: { id: HIP },
    });
    const notified = await until('acknowledged', async () => {
      const j = await t.hipLinks.jobs.findOne({ kind: 'notify', provider: HIP });
      return j?.acknowledgedAt ? j : null;
    });
    expect(notified).toMatchObject({ status: 'NOTIFIED', lastError: null });
    const repeat = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(bundle),
      headers: uploadHeaders('OP-1', { 'X-Care-Context-Display': 'Visit OP-1' }),
      as: ['hip', HIP],
    });
    expect(repeat.status).toBe(200);
    await settle();
    expect(calls(NOTIFY, HIP)).toHaveLength(1);
    expect(calls(GENERATE, HIP)).toHaveLength(1);
  });

  it("a second care context of the same patient reuses the patient's link token", async () => {
    await upload(HIP, p, 'OP-2', 'DischargeSummary');
    await until('second care context linked', async () => (await careContext(HIP, p, 'OP-2'))?.linked);
    expect(calls(GENERATE, HIP)).toHaveLength(1);
    const links = calls(LINK, HIP);
    expect(links).toHaveLength(2);
    expect(links[1].headers['x-link-token']).toBe(links[0].headers['x-link-token']);
    expect(links[1].body.patient).toEqual([
      {
        referenceNumber: p.abhaAddress,
        display: demographics(p).name,
        careContexts: [{ referenceNumber: 'OP-2', display: 'Visit OP-2' }],
        hiType: 'DischargeSummary',
        count: 1,
      },
    ]);
  });

  it('a context notify the gateway answers with an error is FAILED with the error, shown to admin', async () => {
    notifyAnswers.set(HIP, () => ({ error: { code: 'ABDM-1000', message: 'Care context not found' } }));
    try {
      await upload(HIP, p, 'OP-1', 'DiagnosticReport');
      const failed = await until('refused notify', async () => {
        const j = await t.hipLinks.jobs.findOne({ kind: 'notify', provider: HIP, status: 'FAILED' });
        return j ?? null;
      });
      expect(failed.lastError).toBe('context notify refused: ABDM-1000: Care context not found');
      const res = await t.request('/admin/hip-links?kind=notify&status=FAILED', { as: ['admin', 'ADMIN-1'] });
      expect((await res.json()).jobs.map((j: any) => j.id)).toContain(failed._id);
    } finally {
      notifyAnswers.delete(HIP);
    }
  });

  it('links a patient known only by ABHA number (no address, no phone) by number', async () => {
    const HIPN = 'HIP-NUMBER';
    const q = newPatient();
    await upload(HIPN, q, 'OP-N', 'Prescription', numberOnly(q));
    const cc = await until('linked by number', async () => (await careContext(HIPN, q, 'OP-N'))?.linked);
    const [generate] = calls(GENERATE, HIPN);
    expect(generate.body).toEqual({ abhaNumber: digits(q), ...demographics(q) });
    expect(calls(LINK, HIPN)[0].body.abhaNumber).toBe(digits(q));
    expect(cc.abhaAddress).toBe('number.only@sbx'); // as on-generate-token named it
    expect(calls(SMS, HIPN)).toHaveLength(0);
  });

  it('a Patient without demographics fails at once with a reason admin can read', async () => {
    const HIPD = 'HIP-NODEMO';
    const q = newPatient();
    await upload(HIPD, q, 'OP-D', 'Prescription', (b) => delete patientOf(b).birthDate);
    const failed = await until('failed', async () => {
      const j = await job(`link|${ccId(HIPD, q, 'OP-D')}`);
      return j?.status === 'FAILED' ? j : null;
    });
    expect(failed.lastError).toMatch(/no birthDate/);
    expect(calls(GENERATE, HIPD)).toHaveLength(0);
  });
});

describe('a gateway that answers at once', () => {
  it('links every care context when each answer reaches the app before the send that it answers has returned', async () => {
    const HIP = 'HIP-SYNC';
    const N = 20;
    // Which sends have returned to the store: an answer posted before its send returned is what used to be held.
    const returned = new Set<string>();
    const send = GatewayClient.prototype.send;
    const spy = vi.spyOn(GatewayClient.prototype, 'send').mockImplementation(async function (
      this: GatewayClient,
      ...a
    ) {
      const id = await send.apply(this, a);
      returned.add(id);
      return id;
    });
    let early = 0;
    // The stand-in's handlers run right after it has answered the call (202): the answer is posted from there with
    // nothing awaited before it, typically while the store has not yet read the 202.
    const fast = (handler: (c: Callback) => Promise<void> | undefined) => (call: Callback) => {
      if (hipOf(call) !== HIP) return;
      if (!returned.has(call.headers['request-id'] as string)) early++;
      return handler(call);
    };
    tokenAnswers.set(HIP, () => null); // the shared handlers leave HIP-SYNC to the fast ones
    linkAnswers.set(HIP, () => null);
    gw.on(
      GENERATE,
      fast((call) => answer(ON_TOKEN, call, { abhaAddress: call.body.abhaAddress, linkToken: jwt(inAnHour()) })),
    );
    gw.on(
      LINK,
      fast((call) => answer(ON_LINK, call, { abhaAddress: call.body.abhaAddress, status: 'SUCCESS' })),
    );
    try {
      const qs = Array.from({ length: N }, () => newPatient());
      for (const [i, q] of qs.entries()) await upload(HIP, q, `OP-SYNC-${i}`); // each a new patient: its own token
      for (const [i, q] of qs.entries())
        await until(`care context ${i} linked`, async () => (await careContext(HIP, q, `OP-SYNC-${i}`))?.linked);
      await settle();
      expect(calls(GENERATE, HIP)).toHaveLength(N);
      expect(calls(LINK, HIP)).toHaveLength(N);
      for (const [i, q] of qs.entries()) {
        const j = (await job(`link|${ccId(HIP, q, `OP-SYNC-${i}`)}`))!;
        expect(j).toMatchObject({ status: 'LINKED', attempts: 1, lastError: null });
        expect(j.sent.map((s) => s.call)).toEqual(['generateToken', 'linkCareContext']);
        expect(j).not.toHaveProperty('awaiting');
        expect(j).not.toHaveProperty('owner');
      }
      const mine = answered.filter((x) => x.hip === HIP);
      expect(mine).toHaveLength(2 * N);
      expect(mine.filter((x) => x.status !== 'applied')).toEqual([]);
      expect(early).toBeGreaterThan(0); // the race was run, not avoided
    } finally {
      spy.mockRestore();
      tokenAnswers.delete(HIP);
      linkAnswers.delete(HIP);
    }
  });
});

describe('SMS notify', () => {
  it('sends one SMS per care context for a Patient with a phone but no ABHA address; the number is kept nowhere', async () => {
    const HIP = 'HIP-SMS';
    const q = newPatient();
    const { bundle } = await upload(HIP, q, 'OP-S', 'Prescription', numberOnly(q, PHONE));
    const sms = await gw.waitFor(SMS, (c) => hipOf(c) === HIP);
    const custodian = bundle.entry.find((e: any) => e.resource.resourceType === 'Composition').resource.custodian;
    expect(sms.body).toEqual({ notification: { phoneNo: '+919876543210', hip: { name: custodian.display, id: HIP } } });
    const done = await until('acknowledged', async () => {
      const j = await job(`sms|${ccId(HIP, q, 'OP-S')}`);
      return j?.acknowledgedAt ? j : null;
    });
    expect(done.status).toBe('SMS_SENT');
    await upload(HIP, q, 'OP-S', 'DiagnosticReport', numberOnly(q, PHONE));
    await settle();
    expect(calls(SMS, HIP)).toHaveLength(1);
    expect(calls(GENERATE, HIP)).toHaveLength(0); // with a phone, the SMS is what the patient gets

    // Nothing the store keeps has the number: every document of every collection of the test database (the
    // record's own content is kept compressed, as every record's is), and no log line.
    const db = t.client.db(t.config.MONGODB_DB);
    const needles = ['9876543210', '98765 43210'];
    for (const { name } of await db.listCollections().toArray()) {
      for (const doc of await db.collection(name).find().toArray()) {
        const text = JSON.stringify(doc);
        for (const n of needles) expect(text, `${name} ${String(doc._id)}`).not.toContain(n);
      }
    }
    const logs = t.logs.join('');
    for (const n of needles) expect(logs).not.toContain(n);

    // HIP_INIT_NOTIFY_HIECM: the patient follows the SMS to a PHR app, which discovers the care context with the
    // ABHA number the consent manager verified.
    const transactionId = crypto.randomUUID();
    const discover = await t.request('/api/v3/hip/patient/care-context/discover', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: v3Headers(HIP),
      body: JSON.stringify({
        transactionId,
        patient: {
          id: 'someone.new@sbx',
          verifiedIdentifiers: [{ type: 'ABHA_NUMBER', value: digits(q) }],
          unverifiedIdentifiers: [],
        },
      }),
    });
    expect(discover.status).toBe(202);
    const found = await gw.waitFor(
      '/user-initiated-linking/v3/patient/care-context/on-discover',
      (c) => c.body?.transactionId === transactionId,
    );
    expect(found.body.patient.flatMap((g: any) => g.careContexts.map((cc: any) => cc.referenceNumber))).toContain(
      'OP-S',
    );
    expect(found.body.matchedBy).toEqual(['ABHA_NUMBER']);
  });
});

describe('what the gateway says', () => {
  it('an on_carecontext whose status reports a failure does not link: the try fails and is retried', async () => {
    const HIP = 'HIP-STATUS';
    const q = newPatient();
    linkAnswers.set(HIP, () => ({ status: 'FAILED: care context could not be linked' }));
    await upload(HIP, q, 'OP-ST', 'Prescription');
    const job = await until('a failed try', async () => {
      const j = await t.hipLinks.jobs.findOne({ _id: `link|${ccId(HIP, q, 'OP-ST')}` });
      return j?.lastError ? j : null;
    });
    expect(job.lastError).toMatch(/FAILED/);
    expect(job.status).not.toBe('LINKED');
    const cc = await t.collections.careContexts.findOne({ _id: ccId(HIP, q, 'OP-ST') });
    expect(cc?.linked).toBeUndefined();
    linkAnswers.delete(HIP);
  });

  it('a link token expires at its JWT exp; one with no usable exp (none, or beyond any date) in six months', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    expect(linkTokenExpiry(jwt(1_800_000_000), now).toISOString()).toBe(new Date(1_800_000_000_000).toISOString());
    for (const token of [jwt(1e20), 'not-a-jwt', `${b64({ alg: 'none' })}.${b64({ sub: 'x' })}.`])
      expect(linkTokenExpiry(token, now).toISOString(), token.slice(0, 30)).toBe('2027-06-01T00:00:00.000Z');
  });
});

describe('failures and retries', () => {
  it('retries gateway failures with exponential backoff and ends FAILED after HIP_LINK_ATTEMPTS, shown to admin', async () => {
    const HIP = 'HIP-FAILING';
    const q = newPatient();
    gw.failNext(GENERATE, 500);
    try {
      const t0 = new Date();
      t.clock.now = t0;
      const up = await upload(HIP, q, 'OP-F');
      expect(up.status).toBe(201); // the upload is answered whatever the gateway does
      const id = `link|${ccId(HIP, q, 'OP-F')}`;
      const at = (ms: number) => new Date(t0.getTime() + ms);
      const first = await until('first try failed', async () => {
        const j = await job(id);
        return j?.status === 'PENDING' && j.attempts === 1 ? j : null;
      });
      expect(first.nextAttemptAt).toEqual(at(BACKOFF));
      expect(first.lastError).toMatch(/HTTP 500/);
      expect(await t.hipLinks.sweep(at(BACKOFF - 1))).toBe(0); // not due yet
      t.clock.now = at(BACKOFF);
      expect(await t.hipLinks.sweep(at(BACKOFF))).toBe(1);
      const second = (await job(id))!;
      expect(second).toMatchObject({ status: 'PENDING', attempts: 2 });
      expect(second.nextAttemptAt).toEqual(at(BACKOFF + 2 * BACKOFF)); // doubled
      t.clock.now = at(3 * BACKOFF);
      expect(await t.hipLinks.sweep(at(3 * BACKOFF))).toBe(1);
      const failed = (await job(id))!;
      expect(failed).toMatchObject({ status: 'FAILED', attempts: ATTEMPTS, nextAttemptAt: null });
      expect(failed.lastError).toMatch(/HTTP 500.*after 3 tries/);
      t.clock.now = at(100 * BACKOFF);
      expect(await t.hipLinks.sweep(at(100 * BACKOFF))).toBe(0); // FAILED is final

      const res = await t.request('/admin/hip-links?status=FAILED&_count=200', { as: ['admin', 'ADMIN-1'] });
      expect(res.status).toBe(200);
      const listed = (await res.json()).jobs.find((j: any) => j.id === id);
      expect(listed).toMatchObject({
        kind: 'link',
        status: 'FAILED',
        attempts: ATTEMPTS,
        careContext: { id: ccId(HIP, q, 'OP-F'), referenceNumber: 'OP-F', display: 'Visit OP-F' },
        nextAttemptAt: null,
      });
      expect(listed.lastError).toMatch(/HTTP 500/);
      expect(listed.createdAt).toBeTruthy();
      expect(listed.updatedAt).toBeTruthy();
      const shown = JSON.stringify(listed);
      expect(shown).not.toContain(q.name.family);
      expect(shown).not.toContain(q.birthDate);
      const audited = await t.audit.events.find({ action: 'hip-link.read' }).toArray();
      expect(audited.at(-1)).toMatchObject({ outcome: 'success', status: 200, actor: { role: 'admin' } });
    } finally {
      gw.failNext(GENERATE, 500, 0);
    }
  });

  it('a generate-token that is never answered is asked again after the answer timeout', async () => {
    const HIP = 'HIP-SILENT';
    const q = newPatient();
    tokenAnswers.set(HIP, () => null);
    const t0 = new Date();
    t.clock.now = t0;
    await upload(HIP, q, 'OP-T');
    const id = `link|${ccId(HIP, q, 'OP-T')}`;
    const waiting = await until('token requested', async () => {
      const j = await job(id);
      return j?.status === 'TOKEN_REQUESTED' ? j : null;
    });
    expect(waiting.nextAttemptAt).toEqual(new Date(t0.getTime() + ANSWER_TIMEOUT));
    const late = new Date(t0.getTime() + ANSWER_TIMEOUT);
    t.clock.now = late;
    expect(await t.hipLinks.sweep(late)).toBe(0); // counted as a failed try; again after the backoff
    expect(await job(id)).toMatchObject({
      status: 'PENDING',
      attempts: 1,
      lastError: expect.stringMatching(/no on-generate-token answer/),
    });
    const retry = new Date(late.getTime() + BACKOFF);
    t.clock.now = retry;
    expect(await t.hipLinks.sweep(retry)).toBe(1);
    expect(calls(GENERATE, HIP)).toHaveLength(2);
    expect(await job(id)).toMatchObject({ status: 'TOKEN_REQUESTED', attempts: 2 });
  });

  it('a refused link token is dropped and a new one asked for', async () => {
    const HIP = 'HIP-REFUSED';
    const q = newPatient();
    let refusals = 1;
    linkAnswers.set(HIP, () =>
      refusals-- > 0 ? { error: { code: 'ABDM-1092', message: 'Invalid X-LINK-TOKEN' } } : { status: 'SUCCESS' },
    );
    const t0 = new Date();
    t.clock.now = t0;
    await upload(HIP, q, 'OP-R');
    const id = `link|${ccId(HIP, q, 'OP-R')}`;
    const refused = await until('refused', async () => {
      const j = await job(id);
      return j?.status === 'PENDING' && j.lastError ? j : null;
    });
    expect(refused.lastError).toMatch(/Invalid X-LINK-TOKEN/);
    expect(await t.hipLinks.tokens.findOne({ _id: `${HIP}|${digits(q)}` })).toBeNull();
    t.clock.now = new Date(t0.getTime() + BACKOFF);
    await t.hipLinks.sweep(t.clock.now);
    await until('linked', async () => (await careContext(HIP, q, 'OP-R'))?.linked);
    const links = calls(LINK, HIP);
    expect(calls(GENERATE, HIP)).toHaveLength(2);
    expect(links).toHaveLength(2);
    expect(links[1].headers['x-link-token']).not.toBe(links[0].headers['x-link-token']);
    const token = await t.hipLinks.tokens.findOne({ _id: `${HIP}|${digits(q)}` });
    expect(token?.linkToken).toBe(links[1].headers['x-link-token']);
  });

  it('an expired link token is not kept: not stored when it comes expired, not reused, deleted by the sweep', async () => {
    const HIP = 'HIP-EXPIRED';
    const q = newPatient();
    const key = `${HIP}|${digits(q)}`;
    const past = new Date(Date.now() - 60_000);
    await t.hipLinks.tokens.insertOne({
      _id: key,
      provider: HIP,
      abhaAddress: q.abhaAddress,
      linkToken: 'stale-token',
      expiresAt: past,
      createdAt: past,
    });
    tokenAnswers.set(HIP, () => ({ linkToken: jwt(Math.floor(Date.now() / 1000) - 60) }));
    await upload(HIP, q, 'OP-E');
    const id = `link|${ccId(HIP, q, 'OP-E')}`;
    const failedTry = await until('expired token refused', async () => {
      const j = await job(id);
      return j?.status === 'PENDING' && j.lastError ? j : null;
    });
    expect(failedTry.lastError).toMatch(/already expired/);
    expect(calls(GENERATE, HIP)).toHaveLength(1); // the stale token was not used
    expect(calls(LINK, HIP)).toHaveLength(0);
    expect(await t.hipLinks.tokens.findOne({ _id: key })).toBeNull();

    // A token that expires while stored is deleted by the sweep (FerretDB never runs TTL indexes).
    await t.hipLinks.tokens.insertOne({
      _id: `${key}-2`,
      provider: HIP,
      abhaAddress: q.abhaAddress,
      linkToken: jwt(inAnHour()),
      expiresAt: new Date(Date.now() + 60_000),
      createdAt: new Date(),
    });
    await t.hipLinks.sweep(new Date());
    expect(await t.hipLinks.tokens.findOne({ _id: `${key}-2` })).not.toBeNull();
    await t.hipLinks.jobs.updateMany({ provider: HIP }, { $set: { status: 'FAILED', nextAttemptAt: null } });
    await t.hipLinks.sweep(new Date(Date.now() + 120_000));
    expect(await t.hipLinks.tokens.findOne({ _id: `${key}-2` })).toBeNull();
  });

  it('two server processes sweeping the same due job send it once', async () => {
    const HIP = 'HIP-TWO';
    const q = newPatient();
    tokenAnswers.set(HIP, () => null);
    gw.failNext(GENERATE, 500, 2); // the first try (two sends) fails: the job is then due for both sweepers
    const t0 = new Date();
    t.clock.now = t0;
    await upload(HIP, q, 'OP-2P');
    const id = `link|${ccId(HIP, q, 'OP-2P')}`;
    await until('due again', async () => (await job(id))?.attempts === 1 && (await job(id))?.status === 'PENDING');
    const db = t.client.db(t.config.MONGODB_DB);
    // Another process: its own HipLinker, store and gateway client; on FerretDB it must share this process's locks.
    const other = new HipLinker({
      db,
      records: t.collections,
      store: new RecordStore(t.collections, t.engine),
      gateway: new GatewayClient(t.config),
      config: t.config,
      log: createLog('silent'),
      clock: () => t.clock.now ?? new Date(),
      engine: t.engine,
    });
    const due = new Date(t0.getTime() + BACKOFF);
    t.clock.now = due;
    const ran = await Promise.all([t.hipLinks.sweep(due), other.sweep(due)]);
    expect(ran.sort()).toEqual([0, 1]);
    expect(calls(GENERATE, HIP)).toHaveLength(1); // the two failed sends are not recorded by the stand-in
    expect(await job(id)).toMatchObject({ status: 'TOKEN_REQUESTED', attempts: 2 });
  });
});

describe('when nothing is sent', () => {
  it('sends nothing with HIP_INITIATED_LINKING=false, nor with the v0.5 dialect (logged once)', async () => {
    const envs: Record<string, string>[] = [{ HIP_INITIATED_LINKING: 'false' }, { GATEWAY_API_VERSION: 'v0.5' }];
    for (const env of envs) {
      const quiet = await startStandInGateway();
      const t2 = await createTestApp({
        GATEWAY_BASE_URL: quiet.url,
        GATEWAY_CLIENT_ID: 'abha-vault',
        GATEWAY_CLIENT_SECRET: 's3cret',
        ...env,
      });
      try {
        const q = newPatient();
        const rec = g.record(q, 'Prescription', { careContext: { referenceNumber: 'OP-Q', display: 'Visit' } });
        const res = await t2.request('/fhir/Bundle', {
          method: 'POST',
          body: JSON.stringify(rec.bundle),
          headers: uploadHeaders('OP-Q'),
          as: ['hip', 'HIP-QUIET'],
        });
        expect(res.status).toBe(201);
        await t2.hipLinks.idle();
        expect(await t2.hipLinks.sweep(new Date(Date.now() + 3_600_000))).toBe(0);
        expect(quiet.callbacks).toEqual([]);
        expect(await t2.hipLinks.jobs.countDocuments()).toBe(0);
        const notes = t2.logs.filter((l) => l.includes('not offered with GATEWAY_API_VERSION=v0.5'));
        expect(notes).toHaveLength(env.GATEWAY_API_VERSION ? 1 : 0);
      } finally {
        await t2.close();
        await quiet.close();
      }
    }
  });

  it('creates no job for an ABHA address that abha_status marks DEACTIVATED or DELETED', async () => {
    const HIP = 'HIP-OPTOUT';
    const db = t.client.db(t.config.MONGODB_DB);
    for (const status of ['DEACTIVATED', 'DELETED']) {
      const q = newPatient();
      await db.collection('abha_status').insertOne({ _id: q.abhaAddress.toLowerCase() as any, status });
      await upload(HIP, q, `OP-${status}`);
      await settle();
      expect(await t.hipLinks.jobs.countDocuments({ provider: HIP })).toBe(0);
    }
    expect(gw.callbacks.filter((c) => hipOf(c) === HIP)).toEqual([]);
  });
});

describe('the routes', () => {
  const ROUTES: [string, string, string][] = [
    ['POST', ON_TOKEN, 'cm'],
    ['POST', ON_LINK, 'cm'],
    ['POST', ON_NOTIFY, 'cm'],
    ['POST', ON_SMS, 'cm'],
    ['GET', '/admin/hip-links', 'admin'],
  ];
  it.each(ROUTES)('%s %s: 401 without a token, 403 for every other role', async (method, path, allowed) => {
    const init = (as?: [any, string]) => ({
      method,
      ...(as ? { as } : {}),
      ...(method === 'POST'
        ? { headers: v3Headers('HIP-X'), body: JSON.stringify({ response: { requestId: 'r' }, status: 'x' }) }
        : {}),
    });
    const none = await t.request(path, init());
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    for (const role of ['hip', 'hiu', 'cm', 'admin'].filter((r) => r !== allowed))
      expect((await t.request(path, init([role, 'X']))).status, role).toBe(403);
  });

  it('refuses bad answers (4xx OperationOutcome) and changes nothing', async () => {
    const before = await t.hipLinks.jobs.find().sort({ _id: 1 }).toArray();
    const post = (path: string, body: unknown, headers: Record<string, string> = v3Headers('HIP-X')) =>
      t.request(path, { method: 'POST', as: ['cm', 'sbx'], headers, body: JSON.stringify(body) });
    const someSent = before.flatMap((j) => j.sent).find((s) => s.call === 'generateToken')!;
    // no response.requestId; neither linkToken nor error; a REQUEST-ID header missing; a non-JSON body
    expect((await post(ON_TOKEN, { linkToken: 'x' })).status).toBe(422);
    expect((await post(ON_TOKEN, { response: { requestId: someSent.requestId } })).status).toBe(422);
    expect((await post(ON_LINK, { response: { requestId: someSent.requestId } })).status).toBe(422);
    const { 'REQUEST-ID': _r, ...noId } = v3Headers('HIP-X');
    const missing = await post(ON_TOKEN, { linkToken: 'x', response: { requestId: someSent.requestId } }, noId);
    expect(missing.status).toBe(400);
    expect((await missing.json()).resourceType).toBe('OperationOutcome');
    const bad = await t.request(ON_SMS, { method: 'POST', as: ['cm', 'sbx'], headers: v3Headers(), body: '{' });
    expect(bad.status).toBe(400);
    const status = await t.request('/admin/hip-links?status=DONE', { as: ['admin', 'A'] });
    expect(status.status).toBe(400);
    expect((await t.request('/admin/hip-links?_count=0', { as: ['admin', 'A'] })).status).toBe(400);
    expect((await t.request('/admin/hip-links?colour=red', { as: ['admin', 'A'] })).status).toBe(400);
    expect(await t.hipLinks.jobs.find().sort({ _id: 1 }).toArray()).toEqual(before);
  });

  it('ignores an answer naming a REQUEST-ID no job sent (202, audited) and stores nothing of it', async () => {
    const db = t.client.db(t.config.MONGODB_DB);
    /** Every document of every collection but the audit trail (which records the answers). */
    const everything = async () => {
      const all: Record<string, unknown[]> = {};
      for (const { name } of await db.listCollections().toArray())
        if (name !== 'audit_events') all[name] = await db.collection(name).find().sort({ _id: 1 }).toArray();
      return all;
    };
    const before = await everything();
    const jobs = before.hip_links as HipLinkDoc[];
    const known = jobs.flatMap((j) => j.sent).find((s) => s.call === 'generateToken')!;
    const linkToken = jwt(inAnHour(), 'never-kept');
    const post = async (path: string, requestId: string, body: Record<string, unknown>) => {
      const res = await t.request(path, {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: v3Headers('HIP-LINKS'),
        body: JSON.stringify({ ...body, response: { requestId } }),
      });
      expect(res.status, path).toBe(202);
      expect(await res.json(), path).toEqual({ requestId, status: 'ignored' });
    };
    const unknown = crypto.randomUUID();
    await post(ON_TOKEN, unknown, { abhaAddress: 'someone@sbx', linkToken });
    await post(ON_LINK, crypto.randomUUID(), { abhaAddress: 'someone@sbx', status: 'SUCCESS' });
    await post(ON_NOTIFY, crypto.randomUUID(), { error: { code: 'ABDM-1000', message: 'refused' } });
    await post(ON_SMS, crypto.randomUUID(), { acknowledgement: { status: 'OK' } });
    // A known REQUEST-ID answered as another call (an on_carecontext naming a generate-token's id) is no answer either.
    await post(ON_LINK, known.requestId, { abhaAddress: 'someone@sbx', status: 'SUCCESS' });
    await settle();

    expect(await everything()).toEqual(before);
    expect(await db.listCollections({ name: 'hip_link_answers' }).toArray()).toEqual([]);
    const audited = await t.audit.events.find({ reason: { $regex: ': ignored$' } }).toArray();
    expect(audited.map((e) => e.action)).toEqual(
      expect.arrayContaining(['link.token', 'link.add-care-context', 'link.context-notify', 'link.sms-notify']),
    );
    const ignored = audited.find((e) => e.reason?.includes(unknown))!;
    expect(ignored).toMatchObject({ action: 'link.token', outcome: 'success', status: 202, patients: [] });
    // The link token it brought is nowhere: not in any collection (the audit trail included), not in a log line.
    for (const { name } of await db.listCollections().toArray())
      expect(JSON.stringify(await db.collection(name).find().toArray()), name).not.toContain(linkToken);
    expect(t.logs.join('')).not.toContain(linkToken);
    expect(t.logs.some((l) => l.includes('answer to a REQUEST-ID no job sent; ignored'))).toBe(true);
  });

  it('pages the admin list', async () => {
    const all: any[] = [];
    let after: string | undefined;
    for (let i = 0; i < 50; i++) {
      const res = await t.request(`/admin/hip-links?_count=2${after ? `&after=${encodeURIComponent(after)}` : ''}`, {
        as: ['admin', 'A'],
      });
      const page = await res.json();
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      all.push(...page.jobs);
      if (!page.next) break;
      after = page.next;
    }
    expect(all.map((j) => j.id)).toEqual((await t.hipLinks.jobs.find().sort({ _id: 1 }).toArray()).map((j) => j._id));
    for (const j of all) expect(Object.keys(j)).not.toContain('tokenHash');
  });
});

describe('what is kept', () => {
  it("no hip_links or hip_link_tokens document has a patient's name or birth date; no log line names them", async () => {
    const docs = [...(await t.hipLinks.jobs.find().toArray()), ...(await t.hipLinks.tokens.find().toArray())];
    expect(docs.length).toBeGreaterThan(5);
    const text = JSON.stringify(docs);
    for (const p of patients) {
      expect(text).not.toContain(p.name.given);
      expect(text).not.toContain(p.name.family);
      expect(text).not.toContain(p.birthDate);
    }
    const logs = t.logs.join('');
    for (const p of patients) {
      expect(logs).not.toContain(`${p.name.given} ${p.name.family}`);
      expect(logs).not.toContain(digits(p)); // nor ABHA identifiers (src/log.ts)
      expect(logs).not.toContain(p.abhaAddress);
    }
  });
});
