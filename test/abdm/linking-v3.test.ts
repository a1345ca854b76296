/**
 * User-initiated linking in ABDM v3 (discover, link/init, link/confirm under
 * /api/v3/hip/...) through the strict stand-in gateway: the store answers 202
 * at once and the outcome by callback in v3 (REQUEST-ID and TIMESTAMP headers,
 * X-HIP-ID, `response.requestId`, care contexts grouped by hiType), and every
 * call it makes is checked against the dialect (`assertClean` after each test).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';
import { startStandInGateway, v3Headers, type StandInGateway, gatewayEnv } from '../support/stand-in-gateway.js';
import { createGenerator, type RecordKind, type SyntheticPatient } from '../../fixtures/generator.js';
import type { Role } from '../../src/auth/caller.js';

const HIP = 'HIP-V3';
const DISCOVER = '/api/v3/hip/patient/care-context/discover';
const INIT = '/api/v3/hip/link/care-context/init';
const CONFIRM = '/api/v3/hip/link/care-context/confirm';
const ON_DISCOVER = '/user-initiated-linking/v3/patient/care-context/on-discover';
const ON_INIT = '/user-initiated-linking/v3/link/care-context/on-init';
const ON_CONFIRM = '/user-initiated-linking/v3/link/care-context/on-confirm';

let t: TestApp;
let gw: StandInGateway;
const g = createGenerator(3303);

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    ...gatewayEnv(gw),
    LINK_OTP_MAX_ATTEMPTS: '3',
    LINK_INIT_PER_PATIENT_PER_HOUR: '100',
  });
});
afterEach(() => {
  gw.assertClean();
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

async function upload(p: SyntheticPatient, cc: string, kind: RecordKind = 'Prescription') {
  const rec = g.record(p, kind, { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
  await t.upload(HIP, rec.bundle, cc, `Visit ${cc}`);
}

/** A patient with OPD-1 (Prescription and DiagnosticReport), OPD-2 (DiagnosticReport) and IPD-3 (DischargeSummary). */
async function patientWithVisits(prefix: string): Promise<SyntheticPatient> {
  const p = g.patient();
  await upload(p, `${prefix}OPD-1`, 'Prescription');
  await upload(p, `${prefix}OPD-1`, 'DiagnosticReport');
  await upload(p, `${prefix}OPD-2`, 'DiagnosticReport');
  await upload(p, `${prefix}IPD-3`, 'DischargeSummary');
  return p;
}

/** A v3 message from the gateway: REQUEST-ID, TIMESTAMP, X-CM-ID and X-HIP-ID headers, no envelope in the body. */
const post = (
  path: string,
  body: unknown,
  opts: { hip?: string | null; requestId?: string; as?: [Role, string] | null } = {},
) =>
  t.request(path, {
    method: 'POST',
    ...(opts.as === null ? {} : { as: opts.as ?? ['cm', 'sbx'] }),
    headers: v3Headers(opts.hip === null ? undefined : (opts.hip ?? HIP), opts.requestId),
    body: JSON.stringify(body),
  });

/** Posts a v3 message and returns the gateway's answer to it (the callback whose response.requestId is its id). */
async function exchange(path: string, answer: string, body: unknown) {
  const requestId = uuidv4();
  const res = await post(path, body, { requestId });
  expect(res.status, await res.clone().text()).toBe(202);
  return gw.waitFor(answer, (c) => c.body.response?.requestId === requestId);
}

const demographicsOf = (p: SyntheticPatient) => ({
  name: `${p.name.given} ${p.name.family}`,
  gender: { male: 'M', female: 'F', other: 'O' }[p.gender],
  yearOfBirth: Number(p.birthDate.slice(0, 4)),
});

const discover = (
  id: string,
  verifiedIdentifiers: { type: string; value: string }[] = [],
  demographics: Record<string, unknown> = {},
  transactionId = uuidv4(),
) =>
  exchange(DISCOVER, ON_DISCOVER, {
    transactionId,
    patient: { id, ...demographics, verifiedIdentifiers, unverifiedIdentifiers: [] },
  });

/** The link request a PHR app sends back: the groups discovery offered (or the given ones), under its reference. */
const linkInit = (
  abhaAddress: string,
  transactionId: string,
  patient: { referenceNumber: string; careContexts: { referenceNumber: string }[]; hiType: string; count: number }[],
) => exchange(INIT, ON_INIT, { transactionId, abhaAddress, patient });

const confirm = (linkRefNumber: string, token: string) =>
  exchange(CONFIRM, ON_CONFIRM, { confirmation: { linkRefNumber, token } });

/** The groups as link/init sends them: referenceNumber, careContexts (referenceNumber only), hiType, count. */
const asRequest = (groups: any[]) =>
  groups.map((x) => ({
    referenceNumber: x.referenceNumber,
    careContexts: x.careContexts.map((cc: any) => ({ referenceNumber: cc.referenceNumber })),
    hiType: x.hiType,
    count: x.count,
  }));

/** hiType → the referenceNumbers of its group. */
const byType = (groups: any[]) =>
  Object.fromEntries(groups.map((x) => [x.hiType, x.careContexts.map((cc: any) => cc.referenceNumber).sort()]));

describe('v3 discovery', () => {
  it('finds the patient by ABHA address: one group per hiType (a care context of two types in both), matchedBy abhaAddress', async () => {
    const p = await patientWithVisits('A-');
    const answer = await discover(p.abhaAddress.toUpperCase(), [], demographicsOf(p));
    const body = answer.body;
    expect(byType(body.patient)).toEqual({
      DiagnosticReport: ['A-OPD-1', 'A-OPD-2'],
      DischargeSummary: ['A-IPD-3'],
      Prescription: ['A-OPD-1'],
    });
    for (const group of body.patient) {
      expect(group.count).toBe(group.careContexts.length);
      expect(group.referenceNumber).toBe(p.abhaAddress.toLowerCase());
      expect(group.display).toBe(`${p.name.given} ${p.name.family}`);
    }
    expect(body.patient.find((x: any) => x.hiType === 'Prescription').careContexts).toEqual([
      { referenceNumber: 'A-OPD-1', display: 'Visit A-OPD-1' },
    ]);
    expect(body.matchedBy).toEqual(['abhaAddress']);
    expect(body.error).toBeUndefined();
    // The v3 envelope: ids in headers, the provider named, no v0.5 fields in the body.
    expect(answer.headers['x-hip-id']).toBe(HIP);
    expect(answer.headers['request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.requestId).toBeUndefined();
    expect(body.resp).toBeUndefined();
  });

  it('finds the patient by a verified ABHA number under another ABHA address: matchedBy ABHA_NUMBER, the number as reference', async () => {
    const p = await patientWithVisits('B-');
    const body = (await discover('other.handle@sbx', [{ type: 'ABHA_NUMBER', value: p.abhaNumber }])).body;
    expect(body.matchedBy).toEqual(['ABHA_NUMBER']);
    expect(body.patient.every((x: any) => x.referenceNumber === p.abhaNumber.replace(/-/g, ''))).toBe(true);
    expect(Object.keys(byType(body.patient)).sort()).toEqual(['DiagnosticReport', 'DischargeSummary', 'Prescription']);
    // Both: the address and the number.
    const both = (await discover(p.abhaAddress, [{ type: 'ABHA_NUMBER', value: p.abhaNumber }])).body;
    expect(both.matchedBy).toEqual(['abhaAddress', 'ABHA_NUMBER']);
    // A mobile number alone never matches.
    expect((await discover('other.handle@sbx', [{ type: 'MOBILE', value: '9999999999' }])).body.error.code).toBe(
      'ABDM-1010',
    );
  });

  it('answers ABDM-1010 with no patient for an unknown patient, and for the right patient at another provider', async () => {
    const unknown = (await discover('nobody.here@sbx')).body;
    expect(unknown.error).toEqual({ code: 'ABDM-1010', message: expect.stringMatching(/No patient/) });
    expect(unknown.patient).toBeUndefined();
    expect(unknown.matchedBy).toBeUndefined();
    const p = await patientWithVisits('C-');
    const requestId = uuidv4();
    const res = await post(
      DISCOVER,
      { transactionId: uuidv4(), patient: { id: p.abhaAddress } },
      { hip: 'HIP-ELSEWHERE', requestId },
    );
    expect(res.status).toBe(202);
    const elsewhere = await gw.waitFor(ON_DISCOVER, (c) => c.body.response?.requestId === requestId);
    expect(elsewhere.body.error.code).toBe('ABDM-1010');
    expect(elsewhere.headers['x-hip-id']).toBe('HIP-ELSEWHERE');
    expect(JSON.stringify(elsewhere.body)).not.toContain('C-OPD');
  });
});

describe('v3 linking', () => {
  it('links what discovery offered with the one-time code; on-confirm groups the linked care contexts by hiType', async () => {
    const p = await patientWithVisits('D-');
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    // The patient picks OPD-1 and OPD-2: the groups as offered, IPD-3 left out.
    const picked = asRequest(found.patient.filter((x: any) => x.hiType !== 'DischargeSummary'));
    const init = (await linkInit(p.abhaAddress, tx, picked)).body;
    expect(init.transactionId).toBe(tx);
    expect(init.error).toBeUndefined();
    expect(init.link).toMatchObject({ authenticationType: 'DIRECT', meta: { communicationMedium: 'MOBILE' } });
    const ref = init.link.referenceNumber;
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!;
    expect(otp.careContexts).toEqual(['D-OPD-1', 'D-OPD-2']);

    const done = (await confirm(ref, otp.otp)).body;
    expect(done.error).toBeUndefined();
    expect(byType(done.patient)).toEqual({ DiagnosticReport: ['D-OPD-1', 'D-OPD-2'], Prescription: ['D-OPD-1'] });
    for (const group of done.patient) {
      expect(group.referenceNumber).toBe(p.abhaAddress.toLowerCase());
      expect(group.count).toBe(group.careContexts.length);
    }
    const linked = await t.collections.careContexts
      .find({ provider: HIP, 'linked.abhaAddress': p.abhaAddress.toLowerCase() })
      .toArray();
    expect(linked.map((c) => c.referenceNumber).sort()).toEqual(['D-OPD-1', 'D-OPD-2']);
    // Linked care contexts are no longer offered; the code again is a repeat: the same answer, nothing linked anew.
    expect(byType((await discover(p.abhaAddress)).body.patient)).toEqual({ DischargeSummary: ['D-IPD-3'] });
    expect((await confirm(ref, otp.otp)).body.patient).toEqual(done.patient);
    const audits = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .find({ action: { $in: ['link.init', 'link.confirm'] }, patients: p.abhaAddress.toLowerCase() })
      .toArray();
    expect(audits.map((e) => `${e.action} ${e.outcome}`)).toEqual([
      'link.init success',
      'link.confirm success',
      'link.confirm success',
    ]);
    expect(audits[2].reason).toMatch(/repeat/);
  });

  it('a wrong code is refused (ABDM-1035) and links nothing; the right one within the limit still links', async () => {
    const p = await patientWithVisits('E-');
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    const init = (await linkInit(p.abhaAddress, tx, asRequest(found.patient))).body;
    const ref = init.link.referenceNumber;
    const right = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const wrong = right === '000000' ? '111111' : '000000';
    const refused = (await confirm(ref, wrong)).body;
    expect(refused.error).toEqual({ code: 'ABDM-1035', message: 'wrong one-time code' });
    expect(refused.patient).toBeUndefined();
    expect(
      await t.collections.careContexts.countDocuments({
        provider: HIP,
        referenceNumber: /^E-/,
        linked: { $exists: true },
      }),
    ).toBe(0);
    expect(byType((await confirm(ref, right)).body.patient)).toEqual({
      DiagnosticReport: ['E-OPD-1', 'E-OPD-2'],
      DischargeSummary: ['E-IPD-3'],
      Prescription: ['E-OPD-1'],
    });
    // An unknown reference is refused too.
    expect((await confirm(uuidv4(), right)).body.error.message).toMatch(/unknown/);
  });

  it("another transaction's discovery governs: another ABHA address, another reference, care contexts not offered and mixed references are refused, with no code", async () => {
    const victim = await patientWithVisits('F-');
    const other = await patientWithVisits('G-');
    const handle = 'victim.handle@sbx';
    const tx = uuidv4();
    const found = (await discover(handle, [{ type: 'ABHA_NUMBER', value: victim.abhaNumber }], {}, tx)).body;
    const groups = asRequest(found.patient);
    const reference = groups[0].referenceNumber;
    const sent = t.otps.length;
    // Another ABHA address under this transaction.
    expect((await linkInit('attacker.x@sbx', tx, groups)).body.error.message).toMatch(/not offered/);
    // Another reference.
    const otherReference = groups.map((x) => ({ ...x, referenceNumber: other.abhaNumber }));
    expect((await linkInit(handle, tx, otherReference)).body.error.message).toMatch(/reference/);
    // Care contexts this discovery did not offer.
    const notOffered = [
      {
        referenceNumber: reference,
        careContexts: [{ referenceNumber: 'G-OPD-2' }],
        hiType: 'DiagnosticReport',
        count: 1,
      },
    ];
    expect((await linkInit(handle, tx, notOffered)).body.error.message).toMatch(/G-OPD-2/);
    // Groups under two references.
    const mixed = [groups[0], { ...groups[1], referenceNumber: other.abhaNumber }];
    expect((await linkInit(handle, tx, mixed)).body.error.message).toMatch(/one patient reference/);
    // Another transaction (no discovery): only care contexts stored under the address itself.
    expect((await linkInit(handle, uuidv4(), groups)).body.error).toBeTruthy();
    // A second discovery under the same transaction cannot rebind it.
    expect(
      (await discover('attacker.x@sbx', [{ type: 'ABHA_NUMBER', value: other.abhaNumber }], {}, tx)).body.error,
    ).toBeTruthy();
    await new Promise((r) => setTimeout(r, 50));
    expect(t.otps.length).toBe(sent);
    const refusals = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .find({ action: 'link.init', outcome: 'refused' })
      .toArray();
    expect(refusals.filter((e) => e.patients.includes('attacker.x@sbx')).length).toBeGreaterThanOrEqual(1);
    // The patient links under the transaction's reference.
    const init = (await linkInit(handle, tx, groups)).body;
    const message = t.otps.find((o) => o.linkRefNumber === init.link.referenceNumber)!;
    expect(message.patient.abhaNumbers).toEqual([victim.abhaNumber.replace(/-/g, '')]);
    const done = (await confirm(init.link.referenceNumber, message.otp)).body;
    expect(done.patient.every((x: any) => x.referenceNumber === reference)).toBe(true);
  });
});

/** Every answer to message `requestId` on `path`, once there are `n` of them (and no more came meanwhile). */
async function answersTo(path: string, requestId: string, n: number) {
  const of = () => gw.callbacks.filter((c) => c.path === path && c.body.response?.requestId === requestId);
  await expect.poll(() => of().length, { timeout: 10_000 }).toBeGreaterThanOrEqual(n);
  await new Promise((r) => setTimeout(r, 150));
  expect(of()).toHaveLength(n);
  return of();
}
const db = () => t.client.db(t.config.MONGODB_DB);
const linkRequestsOf = (address: string) => db().collection('link_requests').find({ abhaAddress: address }).toArray();

describe('v3 retries of one message (the same REQUEST-ID)', () => {
  it('link/init posted twice, and twice at once, makes one link request and sends one code; every answer names that link', async () => {
    const p = await patientWithVisits('R-');
    const address = p.abhaAddress.toLowerCase();
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    const body = { transactionId: tx, abhaAddress: p.abhaAddress, patient: asRequest(found.patient) };
    const sent = t.otps.length;
    const requestId = uuidv4();
    const first = await post(INIT, body, { requestId });
    const again = await post(INIT, body, { requestId });
    expect([first.status, again.status]).toEqual([202, 202]);
    const [a, b] = await answersTo(ON_INIT, requestId, 2);
    expect(a.body.error).toBeUndefined();
    expect(b.body).toEqual(a.body); // the same link reference, the same expiry
    const ref = a.body.link.referenceNumber;
    expect(await again.json()).toEqual(await first.json());
    expect(t.otps.length - sent).toBe(1);
    expect((await linkRequestsOf(address)).map((l) => l._id)).toEqual([ref]);
    const audits = await db().collection('audit_events').find({ action: 'link.init', patients: address }).toArray();
    expect(audits.map((e) => e.outcome)).toEqual(['success', 'success']);
    expect(audits.filter((e) => /repeat/.test(e.reason))).toHaveLength(1);

    // Two deliveries of one message at once (in two apps on one database, as two server processes): one code.
    const q = await patientWithVisits('RR-');
    const tx2 = uuidv4();
    const offer = (await discover(q.abhaAddress, [], {}, tx2)).body;
    const body2 = { transactionId: tx2, abhaAddress: q.abhaAddress, patient: asRequest(offer.patient) };
    const other = await createTestApp(
      {
        ...gatewayEnv(gw),
        LINK_OTP_MAX_ATTEMPTS: '3',
        LINK_INIT_PER_PATIENT_PER_HOUR: '100',
        MONGODB_DB: t.config.MONGODB_DB,
      },
      undefined,
      t.engine.multiProcess ? {} : { engine: t.engine },
    );
    try {
      const id2 = uuidv4();
      const sentHere = t.otps.length;
      const at = (app: TestApp) =>
        app.request(INIT, {
          method: 'POST',
          as: ['cm', 'sbx'],
          headers: v3Headers(HIP, id2),
          body: JSON.stringify(body2),
        });
      const statuses = await Promise.all([at(t), at(other), at(t), at(other)].map(async (r) => (await r).status));
      expect(statuses).toEqual([202, 202, 202, 202]);
      const answers = await answersTo(ON_INIT, id2, 4);
      expect(new Set(answers.map((x) => x.body.link?.referenceNumber)).size).toBe(1);
      expect(answers.every((x) => x.body.error === undefined)).toBe(true);
      expect(t.otps.length - sentHere + other.otps.length).toBe(1);
      expect(await linkRequestsOf(q.abhaAddress.toLowerCase())).toHaveLength(1);
    } finally {
      await other.client.close();
    }
  });

  it('link/init under a REQUEST-ID already used with another body (other care contexts, another patient) is refused and changes nothing', async () => {
    const p = await patientWithVisits('S-');
    const address = p.abhaAddress.toLowerCase();
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    const groups = asRequest(found.patient);
    const requestId = uuidv4();
    const prescriptions = groups.filter((x) => x.hiType === 'Prescription');
    expect(
      (await post(INIT, { transactionId: tx, abhaAddress: p.abhaAddress, patient: prescriptions }, { requestId }))
        .status,
    ).toBe(202);
    const [first] = await answersTo(ON_INIT, requestId, 1);
    const ref = first.body.link.referenceNumber;
    const sent = t.otps.length;
    const before = await linkRequestsOf(address);
    // Other care contexts under the same id.
    const more = await post(INIT, { transactionId: tx, abhaAddress: p.abhaAddress, patient: groups }, { requestId });
    expect(more.status).toBe(202);
    expect(await more.json()).toMatchObject({ status: 'ERRORED' });
    // Another patient under the same id.
    const q = await patientWithVisits('SS-');
    const elsewhere = [
      {
        referenceNumber: q.abhaAddress,
        careContexts: [{ referenceNumber: 'SS-OPD-2' }],
        hiType: 'DiagnosticReport',
        count: 1,
      },
    ];
    await post(INIT, { transactionId: uuidv4(), abhaAddress: q.abhaAddress, patient: elsewhere }, { requestId });
    const answers = await answersTo(ON_INIT, requestId, 3);
    for (const refused of answers.slice(1)) {
      expect(refused.body.error.message).toMatch(/already used/);
      expect(refused.body.link).toBeUndefined();
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(t.otps.length).toBe(sent);
    expect(await linkRequestsOf(address)).toEqual(before);
    expect(await linkRequestsOf(q.abhaAddress.toLowerCase())).toEqual([]);
    // The first request is untouched: its code still links what it asked for, and only that.
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    expect(byType((await confirm(ref, otp)).body.patient)).toEqual({
      DiagnosticReport: ['S-OPD-1'], // OPD-1 holds both types
      Prescription: ['S-OPD-1'],
    });
  });

  it('link/confirm posted twice answers success twice with the same care contexts, and links once', async () => {
    const p = await patientWithVisits('U-');
    const address = p.abhaAddress.toLowerCase();
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    const ref = (await linkInit(p.abhaAddress, tx, asRequest(found.patient))).body.link.referenceNumber;
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const requestId = uuidv4();
    const body = { confirmation: { linkRefNumber: ref, token: otp } };
    const first = await post(CONFIRM, body, { requestId });
    const [done] = await answersTo(ON_CONFIRM, requestId, 1);
    const linkedAt = (await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray()).map((d) => [
      d._id,
      d.linked!.at.toISOString(),
    ]);
    const again = await post(CONFIRM, body, { requestId });
    expect([first.status, again.status]).toEqual([202, 202]);
    const [a, b] = await answersTo(ON_CONFIRM, requestId, 2);
    expect(a).toBe(done);
    expect(a.body.error).toBeUndefined();
    expect(b.body).toEqual(a.body);
    expect(byType(b.body.patient)).toEqual({
      DiagnosticReport: ['U-OPD-1', 'U-OPD-2'],
      DischargeSummary: ['U-IPD-3'],
      Prescription: ['U-OPD-1'],
    });
    // The same code under a new REQUEST-ID (the app asking again) is a repeat too.
    expect((await confirm(ref, otp)).body.patient).toEqual(a.body.patient);
    const links = await linkRequestsOf(address);
    expect(links.map((l) => [l._id, l.status])).toEqual([[ref, 'LINKED']]);
    const linkedNow = (await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray()).map((d) => [
      d._id,
      d.linked!.at.toISOString(),
    ]);
    expect(linkedNow).toEqual(linkedAt); // not linked anew
    const audits = await db().collection('audit_events').find({ action: 'link.confirm', patients: address }).toArray();
    expect(audits.map((e) => e.outcome)).toEqual(['success', 'success', 'success']);
    expect(audits.filter((e) => /repeat/.test(e.reason))).toHaveLength(2);
  });

  it('a wrong code for a LINKED request is an error that reveals nothing, and changes nothing', async () => {
    const p = await patientWithVisits('W-');
    const address = p.abhaAddress.toLowerCase();
    const tx = uuidv4();
    const found = (await discover(p.abhaAddress, [], {}, tx)).body;
    const ref = (await linkInit(p.abhaAddress, tx, asRequest(found.patient))).body.link.referenceNumber;
    const right = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const wrong = right === '000000' ? '111111' : '000000';
    const requestId = uuidv4();
    await post(CONFIRM, { confirmation: { linkRefNumber: ref, token: right } }, { requestId });
    expect((await answersTo(ON_CONFIRM, requestId, 1))[0].body.error).toBeUndefined();
    const before = [
      await linkRequestsOf(address),
      await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray(),
    ];
    for (const id of [uuidv4(), requestId]) {
      // A new message, and the message that confirmed it with another code.
      const res = await post(CONFIRM, { confirmation: { linkRefNumber: ref, token: wrong } }, { requestId: id });
      expect(res.status).toBe(202);
      const answer = (await answersTo(ON_CONFIRM, id, id === requestId ? 2 : 1)).at(-1)!.body;
      expect(answer.error).toEqual({ code: 'ABDM-1035', message: 'wrong one-time code' });
      expect(answer.patient).toBeUndefined();
      expect(JSON.stringify(answer)).not.toMatch(/LINKED|W-OPD|W-IPD/);
      expect(JSON.stringify(await res.json())).not.toMatch(/LINKED/);
    }
    expect([
      await linkRequestsOf(address),
      await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray(),
    ]).toEqual(before);
  });
});

describe('v3 callers and envelope', () => {
  it('refuses no token (401), hip, hiu and admin (403) on every v3 linking route, and calls the gateway for none', async () => {
    const before = gw.callbacks.length;
    for (const path of [DISCOVER, INIT, CONFIRM]) {
      expect((await post(path, {}, { as: null })).status, path).toBe(401);
      for (const role of ['hip', 'hiu', 'admin'] as const)
        expect((await post(path, {}, { as: [role, 'X'] })).status, `${path} ${role}`).toBe(403);
    }
    const refusals = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .find({ action: { $in: ['care-context.discover', 'link.init', 'link.confirm'] }, status: { $in: [401, 403] } })
      .toArray();
    expect(refusals).toHaveLength(12);
    await new Promise((r) => setTimeout(r, 50));
    expect(gw.callbacks.length).toBe(before);
  });

  it('needs X-HIP-ID (400) and REQUEST-ID (400); a malformed body is 422', async () => {
    const body = { transactionId: uuidv4(), patient: { id: 'someone@sbx' } };
    expect((await post(DISCOVER, body, { hip: null })).status).toBe(400);
    expect((await post(CONFIRM, { confirmation: { linkRefNumber: 'x', token: '1' } }, { hip: null })).status).toBe(400);
    const noId = await t.request(DISCOVER, {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
      body: JSON.stringify(body),
    });
    expect(noId.status).toBe(400);
    expect((await noId.json()).issue[0].diagnostics).toMatch(/REQUEST-ID/);
    expect((await post(DISCOVER, { transactionId: uuidv4(), patient: { id: { $ne: null } } })).status).toBe(422);
    expect((await post(INIT, { transactionId: uuidv4(), abhaAddress: 'a@sbx', patient: [] })).status).toBe(422);
    expect(
      (
        await post(INIT, {
          transactionId: uuidv4(),
          abhaAddress: 'not-an-address',
          patient: [{ referenceNumber: 'r', careContexts: [{ referenceNumber: 'x' }] }],
        })
      ).status,
    ).toBe(422);
  });
});
