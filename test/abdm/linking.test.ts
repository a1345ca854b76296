/**
 * Care-context discovery and linking (ABDM v0.5) through the strict stand-in
 * gateway: the store answers 202 at once and the outcome by callback, with no
 * deviation from the dialect (`assertClean` after each test). v3 is in
 * linking-v3.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { initFingerprint } from '../../src/abdm/link-store.js';

let t: TestApp;
let gw: StandInGateway;
const g = createGenerator(777);
let patient: SyntheticPatient;

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    GATEWAY_BASE_URL: gw.url,
    GATEWAY_CLIENT_ID: 'abha-vault',
    GATEWAY_CLIENT_SECRET: 's3cret',
    LINK_OTP_TTL_SEC: '60',
    LINK_OTP_MAX_ATTEMPTS: '3',
    LINK_INIT_PER_PATIENT_PER_HOUR: '100',
  });
  patient = g.patient();
  for (const [cc, kind] of [
    ['OPD-1', 'Prescription'],
    ['OPD-2', 'DiagnosticReport'],
    ['IPD-3', 'DischargeSummary'],
    ['OPD-1', 'DiagnosticReport'],
  ] as const) {
    const rec = g.record(patient, kind, { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
    const res = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(rec.bundle),
      headers: uploadHeaders(cc, { 'X-Care-Context-Display': `Visit ${cc}` }),
      as: ['hip', 'HIP-L'],
    });
    expect(res.status).toBe(201);
  }
});
afterEach(() => {
  gw.assertClean(); // every answer in the v0.5 dialect: envelope, resp.requestId, matchedBy from the v0.5 enum
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

const cm = (path: string, body: unknown, hip = 'HIP-L') =>
  t.request(path, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': hip },
    body: JSON.stringify(body),
  });

/** The demographics a consent manager sends for a synthetic patient. */
const demographicsOf = (p: SyntheticPatient) => ({
  name: `${p.name.given} ${p.name.family}`,
  gender: { male: 'M', female: 'F', other: 'O' }[p.gender],
  yearOfBirth: Number(p.birthDate.slice(0, 4)),
});

async function upload(p: SyntheticPatient, cc: string, hip = 'HIP-L') {
  const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
  await t.upload(hip, rec.bundle, cc, `Visit ${cc}`);
}

async function discover(
  patientId: string,
  verified: { type: string; value: string }[] = [],
  demographics: Record<string, unknown> = demographicsOf(patient),
  transactionId = uuidv4(),
) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/care-contexts/discover', {
    requestId,
    timestamp: new Date().toISOString(),
    transactionId,
    patient: { id: patientId, verifiedIdentifiers: verified, ...demographics },
  });
  expect(res.status).toBe(202);
  return (await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === requestId)).body;
}

async function linkInit(refs: string[], opts: { id?: string; referenceNumber?: string; transactionId?: string } = {}) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/links/link/init', {
    requestId,
    timestamp: new Date().toISOString(),
    transactionId: opts.transactionId ?? uuidv4(),
    patient: {
      id: opts.id ?? patient.abhaAddress,
      referenceNumber: opts.referenceNumber ?? opts.id ?? patient.abhaAddress,
      careContexts: refs.map((referenceNumber) => ({ referenceNumber })),
    },
  });
  expect(res.status).toBe(202);
  return (await gw.waitFor('/v0.5/links/link/on-init', (c) => c.body.resp.requestId === requestId)).body;
}

async function confirm(linkRefNumber: string, token: string) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/links/link/confirm', {
    requestId,
    timestamp: new Date().toISOString(),
    confirmation: { linkRefNumber, token },
  });
  expect(res.status).toBe(202);
  return (await gw.waitFor('/v0.5/links/link/on-confirm', (c) => c.body.resp.requestId === requestId)).body;
}

describe('discovery', () => {
  it('finds the patient by ABHA address and returns the care contexts with the headers ABDM requires', async () => {
    const body = await discover(patient.abhaAddress.toUpperCase());
    expect(body.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['IPD-3', 'OPD-1', 'OPD-2']);
    expect(body.patient.careContexts.find((c: any) => c.referenceNumber === 'OPD-1').display).toBe('Visit OPD-1');
    expect(body.patient.matchedBy).toContain('HEALTH_ID');
    const cb = gw.callbacks.find((c) => c.path === '/v0.5/care-contexts/on-discover')!;
    expect(cb.headers.authorization).toBe(`Bearer ${gw.token}`);
    expect(cb.headers['x-cm-id']).toBe('sbx');
    expect(cb.headers['request-id']).toBe(cb.body.requestId);
    expect(cb.headers.timestamp).toBeTruthy();
  });

  it('finds the patient by a verified ABHA number', async () => {
    const body = await discover('someone.else@sbx', [{ type: 'NDHM_HEALTH_NUMBER', value: patient.abhaNumber }]);
    expect(body.patient.careContexts).toHaveLength(3);
    expect(body.patient.matchedBy).toEqual(['NDHM_HEALTH_NUMBER']);
  });

  it('answers an error for an unknown patient, and for the right patient at another provider', async () => {
    expect((await discover('nobody.here@sbx')).error.message).toMatch(/No patient/);
    const requestId = uuidv4();
    await cm(
      '/v0.5/care-contexts/discover',
      { requestId, transactionId: uuidv4(), patient: { id: patient.abhaAddress } },
      'HIP-OTHER',
    );
    expect(
      (await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === requestId)).body.error,
    ).toBeTruthy();
  });

  it('refuses a missing X-HIP-ID (400), a bad body (422) and callers other than cm (403)', async () => {
    const missing = await t.request('/v0.5/care-contexts/discover', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ requestId: 'r', transactionId: 't', patient: { id: patient.abhaAddress } }),
    });
    expect(missing.status).toBe(400);
    expect((await cm('/v0.5/care-contexts/discover', { requestId: 'r' })).status).toBe(422);
    for (const role of ['hip', 'hiu', 'admin'] as const) {
      const res = await t.request('/v0.5/links/link/init', {
        method: 'POST',
        as: [role, 'X'],
        headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-L' },
        body: '{}',
      });
      expect(res.status).toBe(403);
    }
  });
});

describe('linking', () => {
  it('links with the right one-time code; linked care contexts are no longer offered by discovery', async () => {
    const init = await linkInit(['OPD-1', 'OPD-2']);
    expect(init.link.authenticationType).toBe('DIRECT');
    const ref = init.link.referenceNumber;
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!;
    expect(otp.otp).toMatch(/^\d{6}$/);
    const stored = await t.client
      .db(t.config.MONGODB_DB)
      .collection('link_requests')
      .findOne({ _id: ref as any });
    expect(JSON.stringify(stored)).not.toContain(otp.otp); // only a salted hash is kept
    const done = await confirm(ref, otp.otp);
    expect(done.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['OPD-1', 'OPD-2']);
    const linked = await t.collections.careContexts
      .find({ provider: 'HIP-L', 'linked.abhaAddress': patient.abhaAddress.toLowerCase() })
      .toArray();
    expect(linked.map((c) => c.referenceNumber).sort()).toEqual(['OPD-1', 'OPD-2']);
    const again = await discover(patient.abhaAddress);
    expect(again.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['IPD-3']);
    // The code again is a repeat: the same answer, nothing linked anew.
    expect((await confirm(ref, otp.otp)).patient).toEqual(done.patient);
    expect((await linkInit(['OPD-1'])).error.message).toMatch(/already linked/);
  });

  it('limits wrong codes: after the limit even the right code fails', async () => {
    const init = await linkInit(['IPD-3']);
    const ref = init.link.referenceNumber;
    const right = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const wrong = right === '000000' ? '111111' : '000000';
    expect((await confirm(ref, wrong)).error.message).toMatch(/wrong/);
    expect((await confirm(ref, wrong)).error.message).toMatch(/wrong/);
    expect((await confirm(ref, wrong)).error.message).toMatch(/too many/);
    expect((await confirm(ref, right)).error.message).toMatch(/FAILED/);
    expect(
      await t.collections.careContexts.countDocuments({
        provider: 'HIP-L',
        referenceNumber: 'IPD-3',
        linked: { $exists: true },
      }),
    ).toBe(0);
  });

  it('expires codes (fixed clock)', async () => {
    t.clock.now = new Date('2026-11-25T10:00:00Z');
    try {
      const init = await linkInit(['IPD-3']);
      const ref = init.link.referenceNumber;
      expect(init.link.meta.communicationExpiry).toBe('2026-11-25T10:01:00.000Z');
      t.clock.now = new Date('2026-11-25T10:01:00Z');
      expect((await confirm(ref, t.otps.find((o) => o.linkRefNumber === ref)!.otp)).error.message).toMatch(/expired/);
    } finally {
      t.clock.now = undefined;
    }
  });

  it('refuses care contexts the patient does not have here', async () => {
    expect((await linkInit(['NOPE-9'])).error.message).toMatch(/NOPE-9/);
  });
});

describe('consent notifications are acknowledged to the gateway', () => {
  it('sends on-notify with the consent id and the notification requestId', async () => {
    const requestId = uuidv4(),
      consentId = uuidv4();
    const res = await t.request('/v0.5/consents/hip/notify', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        requestId,
        timestamp: new Date().toISOString(),
        notification: { consentId, status: 'REVOKED' },
      }),
    });
    expect(res.status).toBe(202);
    const ack = await gw.waitFor('/v0.5/consents/hip/on-notify', (c) => c.body.resp.requestId === requestId);
    expect(ack.body.acknowledgement).toEqual({ status: 'OK', consentId });
  });
});

describe('discovery needs a verified identifier; demographics only narrow', () => {
  it("a namesake with the victim's name, gender and year of birth is not found, and learns none of the victim's identifiers", async () => {
    const victim = g.patient();
    await upload(victim, 'OPD-D1');
    const body = await discover('namesake@sbx', [], demographicsOf(victim));
    expect(body.error.message).toMatch(/No patient/);
    expect(body.patient).toBeNull();
    const text = JSON.stringify(body);
    for (const secret of [
      victim.abhaAddress.toLowerCase(),
      victim.abhaNumber,
      victim.abhaNumber.replace(/-/g, ''),
      'OPD-D1',
    ])
      expect(text).not.toContain(secret);
    // Not even with a verified identifier of a type that is not an ABHA number.
    expect(
      (await discover('namesake@sbx', [{ type: 'MOBILE', value: '9999999999' }], demographicsOf(victim))).error,
    ).toBeTruthy();
    const stored = await t.collections.careContexts.findOne({ provider: 'HIP-L', referenceNumber: 'OPD-D1' });
    expect(JSON.stringify(stored)).not.toContain(victim.name.family); // only a hash of the demographics is kept
  });

  it('a verified identifier still finds the patient, with demographics that agree (spacing and case do not matter)', async () => {
    const p = g.patient();
    await upload(p, 'OPD-V1');
    const d = demographicsOf(p);
    const byAddress = await discover(p.abhaAddress, [], {
      ...d,
      name: `${p.name.given}  ${p.name.family.toUpperCase()}`,
    });
    expect(byAddress.patient.matchedBy).toEqual(['HEALTH_ID']);
    expect(byAddress.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['OPD-V1']);
    const byNumber = await discover('another.handle@sbx', [{ type: 'ABHA_NUMBER', value: p.abhaNumber }], d);
    expect(byNumber.patient.matchedBy).toEqual(['NDHM_HEALTH_NUMBER']);
    expect(byNumber.patient.referenceNumber).toBe(p.abhaNumber.replace(/-/g, ''));
    expect(byNumber.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['OPD-V1']);
  });

  it('a matched care context whose stored demographics disagree with the request is left out', async () => {
    const p = g.patient();
    await upload(p, 'OPD-M1');
    await upload({ ...p, name: { given: 'Someone', family: 'Different' } }, 'OPD-M2'); // same ABHA identifiers, other demographics
    const agreeing = await discover(p.abhaAddress, [], demographicsOf(p));
    expect(agreeing.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['OPD-M1']);
    const wrongYear = await discover(p.abhaAddress, [], {
      ...demographicsOf(p),
      yearOfBirth: demographicsOf(p).yearOfBirth + 1,
    });
    expect(wrongYear.error).toBeTruthy(); // every match disagrees: not found
    // Without all three demographics nothing narrows.
    const bare = await discover(p.abhaAddress, [], {});
    expect(bare.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['OPD-M1', 'OPD-M2']);
  });
});

describe('link/init links only care contexts of the patient the request names', () => {
  it("an attacker naming the victim's ABHA number as referenceNumber is refused, gets no code, and the victim can still link", async () => {
    const victim = g.patient();
    await upload(victim, 'OPD-X1');
    const sent = t.otps.length;
    const attack = await linkInit(['OPD-X1'], { id: 'attacker.x@sbx', referenceNumber: victim.abhaNumber });
    expect(attack.error.message).toMatch(/not found or already linked/);
    expect(attack.link).toBeUndefined();
    // Nor with the victim's ABHA address as referenceNumber.
    expect(
      (await linkInit(['OPD-X1'], { id: 'attacker.x@sbx', referenceNumber: victim.abhaAddress })).error,
    ).toBeTruthy();
    expect(t.otps.length).toBe(sent);
    expect(
      await t.client
        .db(t.config.MONGODB_DB)
        .collection('link_requests')
        .countDocuments({ abhaAddress: 'attacker.x@sbx' }),
    ).toBe(0);
    const audited = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .find({ action: 'link.init', patients: 'attacker.x@sbx' })
      .toArray();
    expect(audited.length).toBeGreaterThanOrEqual(2);
    expect(audited.every((e) => e.outcome === 'refused')).toBe(true);
    // The victim links them.
    const init = await linkInit(['OPD-X1'], { id: victim.abhaAddress, referenceNumber: victim.abhaNumber });
    const otp = t.otps.find((o) => o.linkRefNumber === init.link.referenceNumber)!.otp;
    expect(
      (await confirm(init.link.referenceNumber, otp)).patient.careContexts.map((c: any) => c.referenceNumber),
    ).toEqual(['OPD-X1']);
  });

  it('under a discovery, only what it offered to the same patient.id, with the reference it returned', async () => {
    const victim = g.patient();
    await upload(victim, 'OPD-Y1');
    await upload(victim, 'OPD-Y2');
    const other = g.patient();
    await upload(other, 'OPD-Z1');
    const handle = 'victim.handle@sbx'; // the consent manager's verified ABHA address, not one the provider stored
    const tx = uuidv4();
    const found = await discover(
      handle,
      [{ type: 'NDHM_HEALTH_NUMBER', value: victim.abhaNumber }],
      demographicsOf(victim),
      tx,
    );
    const reference = found.patient.referenceNumber;
    expect(found.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['OPD-Y1', 'OPD-Y2']);
    const sent = t.otps.length;
    expect(
      (await linkInit(['OPD-Y1'], { transactionId: tx, id: 'attacker.x@sbx', referenceNumber: reference })).error,
    ).toBeTruthy(); // another patient.id
    expect(
      (await linkInit(['OPD-Y1'], { transactionId: tx, id: handle, referenceNumber: other.abhaNumber })).error,
    ).toBeTruthy(); // another reference
    expect(
      (await linkInit(['OPD-Z1'], { transactionId: tx, id: handle, referenceNumber: reference })).error,
    ).toBeTruthy(); // not offered
    // A second discovery under the same transaction cannot rebind it to another patient.
    expect(
      (
        await discover(
          'attacker.x@sbx',
          [{ type: 'NDHM_HEALTH_NUMBER', value: other.abhaNumber }],
          demographicsOf(other),
          tx,
        )
      ).error,
    ).toBeTruthy();
    expect(t.otps.length).toBe(sent);
    const record = await t.client.db(t.config.MONGODB_DB).collection('link_discoveries').findOne({ transactionId: tx });
    expect(record).toMatchObject({ patientId: handle, patientReference: reference });

    const init = await linkInit(['OPD-Y1', 'OPD-Y2'], { transactionId: tx, id: handle, referenceNumber: reference });
    const message = t.otps.find((o) => o.linkRefNumber === init.link.referenceNumber)!;
    // The code goes to the patient as the provider holds them, not to what the request named.
    expect(message.patient).toEqual({
      abhaNumbers: [victim.abhaNumber.replace(/-/g, '')],
      abhaAddresses: [victim.abhaAddress.toLowerCase()],
    });
    expect(message.careContexts).toEqual(['OPD-Y1', 'OPD-Y2']);
    expect(message.provider).toBe('HIP-L');
    expect(JSON.stringify(message)).not.toContain(handle);
    expect((await confirm(init.link.referenceNumber, message.otp)).patient.careContexts).toHaveLength(2);
  });

  it('without a discovery, only care contexts stored under patient.id, named by that address or their own ABHA number', async () => {
    const p = g.patient();
    await upload(p, 'OPD-F1');
    const someoneElse = g.patient();
    expect(
      (await linkInit(['OPD-F1'], { id: p.abhaAddress, referenceNumber: someoneElse.abhaNumber })).error,
    ).toBeTruthy();
    expect((await linkInit(['OPD-F1'], { id: p.abhaAddress, referenceNumber: 'whatever' })).error).toBeTruthy();
    expect(
      (await linkInit(['OPD-F1'], { id: p.abhaAddress.toUpperCase(), referenceNumber: p.abhaAddress })).link
        .referenceNumber,
    ).toBeTruthy();
  });
});

/** Every answer to message `requestId` on `path`, once there are `n` of them (and no more came meanwhile). */
async function answersTo(path: string, requestId: string, n: number) {
  const of = () => gw.callbacks.filter((c) => c.path === path && c.body.resp?.requestId === requestId);
  await expect.poll(() => of().length, { timeout: 10_000 }).toBeGreaterThanOrEqual(n);
  await new Promise((r) => setTimeout(r, 150));
  expect(of()).toHaveLength(n);
  return of().map((c) => c.body);
}
const db = () => t.client.db(t.config.MONGODB_DB);
const linkRequestsOf = (address: string) =>
  db().collection('link_requests').find({ abhaAddress: address.toLowerCase() }).toArray();
const initBody = (requestId: string, p: SyntheticPatient, refs: string[], transactionId = uuidv4()) => ({
  requestId,
  timestamp: new Date().toISOString(),
  transactionId,
  patient: {
    id: p.abhaAddress,
    referenceNumber: p.abhaAddress,
    careContexts: refs.map((referenceNumber) => ({ referenceNumber })),
  },
});
const confirmBody = (requestId: string, linkRefNumber: string, token: string) => ({
  requestId,
  timestamp: new Date().toISOString(),
  confirmation: { linkRefNumber, token },
});

describe('retries of one message (the same requestId)', () => {
  it('link/init posted twice makes one link request and sends one code; both answers name that link', async () => {
    const p = g.patient();
    await upload(p, 'RT-1');
    await upload(p, 'RT-2');
    const sent = t.otps.length;
    const body = initBody(uuidv4(), p, ['RT-1', 'RT-2']);
    const first = await cm('/v0.5/links/link/init', body);
    const again = await cm('/v0.5/links/link/init', body);
    expect([first.status, again.status]).toEqual([202, 202]);
    const [a, b] = await answersTo('/v0.5/links/link/on-init', body.requestId, 2);
    expect(a.error).toBeUndefined();
    expect(b.link).toEqual(a.link);
    expect(b.transactionId).toBe(a.transactionId);
    expect(await again.json()).toEqual(await first.json());
    expect(t.otps.length - sent).toBe(1);
    expect((await linkRequestsOf(p.abhaAddress)).map((l) => l._id)).toEqual([a.link.referenceNumber]);
    const audits = await db()
      .collection('audit_events')
      .find({ action: 'link.init', patients: p.abhaAddress.toLowerCase() })
      .toArray();
    expect(audits.map((e) => e.outcome)).toEqual(['success', 'success']);
    expect(audits.filter((e) => /repeat/.test(e.reason))).toHaveLength(1);
    // A retry of a refused message is refused again, as the first was, and still sends nothing.
    const refused = initBody(uuidv4(), p, ['RT-404']);
    await cm('/v0.5/links/link/init', refused);
    await cm('/v0.5/links/link/init', refused);
    const errors = await answersTo('/v0.5/links/link/on-init', refused.requestId, 2);
    expect(errors[1].error).toEqual(errors[0].error);
    expect(errors[0].error.message).toMatch(/RT-404/);
    expect(t.otps.length - sent).toBe(1);
  });

  it('link/init under a requestId already used with another body (other care contexts, another patient) is refused and changes nothing', async () => {
    const p = g.patient();
    await upload(p, 'RB-1');
    await upload(p, 'RB-2');
    const q = g.patient();
    await upload(q, 'RB-3');
    const requestId = uuidv4();
    const tx = uuidv4();
    expect((await cm('/v0.5/links/link/init', initBody(requestId, p, ['RB-1'], tx))).status).toBe(202);
    const [first] = await answersTo('/v0.5/links/link/on-init', requestId, 1);
    const ref = first.link.referenceNumber;
    const sent = t.otps.length;
    const before = await linkRequestsOf(p.abhaAddress);
    const more = await cm('/v0.5/links/link/init', initBody(requestId, p, ['RB-1', 'RB-2'], tx));
    expect(await more.json()).toMatchObject({ status: 'ERRORED' });
    await cm('/v0.5/links/link/init', initBody(requestId, q, ['RB-3']));
    const answers = await answersTo('/v0.5/links/link/on-init', requestId, 3);
    for (const refused of answers.slice(1)) {
      expect(refused.error.message).toMatch(/already used/);
      expect(refused.link).toBeUndefined();
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(t.otps.length).toBe(sent);
    expect(await linkRequestsOf(p.abhaAddress)).toEqual(before);
    expect(await linkRequestsOf(q.abhaAddress)).toEqual([]);
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    expect((await confirm(ref, otp)).patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['RB-1']);
  });

  it('a message whose first delivery stopped before deciding (a stale claim), or gave up (released), is handled afresh', async () => {
    const p = g.patient();
    await upload(p, 'RS-1');
    await upload(p, 'RS-2');
    const address = p.abhaAddress.toLowerCase();
    const messages = db().collection<any>('link_init_messages');
    const sent = t.otps.length;
    for (const [cc, left] of [
      ['RS-1', { createdAt: new Date(Date.now() - 61_000) }], // a process that died after claiming it
      ['RS-2', { createdAt: new Date(), decided: 'released' }], // a delivery that failed before deciding
    ] as const) {
      const body = initBody(uuidv4(), p, [cc]);
      const fingerprint = initFingerprint({
        dialect: 'v0.5',
        transactionId: body.transactionId,
        address,
        references: [address],
        wanted: [cc],
      });
      const abandoned = uuidv4();
      await messages.insertOne({
        _id: `HIP-L|${body.requestId}`,
        provider: 'HIP-L',
        messageId: body.requestId,
        patient: address,
        fingerprint,
        linkRefNumber: abandoned,
        expiresAt: new Date(Date.now() + 3_600_000),
        ...left,
      });
      expect((await cm('/v0.5/links/link/init', body)).status).toBe(202);
      const [answer] = await answersTo('/v0.5/links/link/on-init', body.requestId, 1);
      expect(answer.error).toBeUndefined();
      expect(answer.link.referenceNumber).not.toBe(abandoned);
      expect(await messages.findOne({ _id: `HIP-L|${body.requestId}` })).toMatchObject({
        decided: 'link',
        linkRefNumber: answer.link.referenceNumber,
      });
      // And its retry is now a repeat.
      await cm('/v0.5/links/link/init', body);
      expect((await answersTo('/v0.5/links/link/on-init', body.requestId, 2))[1].link).toEqual(answer.link);
    }
    expect(t.otps.length - sent).toBe(2);
    expect(await linkRequestsOf(p.abhaAddress)).toHaveLength(2);
  });

  it('link/confirm posted twice answers success twice with the same care contexts, and links once', async () => {
    const p = g.patient();
    await upload(p, 'RC-1');
    await upload(p, 'RC-2');
    const ref = (await linkInit(['RC-1', 'RC-2'], { id: p.abhaAddress })).link.referenceNumber;
    const otp = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const body = confirmBody(uuidv4(), ref, otp);
    const first = await cm('/v0.5/links/link/confirm', body);
    const [done] = await answersTo('/v0.5/links/link/on-confirm', body.requestId, 1);
    const linkedAt = await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray();
    const again = await cm('/v0.5/links/link/confirm', body);
    expect([first.status, again.status]).toEqual([202, 202]);
    const [a, b] = await answersTo('/v0.5/links/link/on-confirm', body.requestId, 2);
    expect(a).toEqual(done);
    expect(b.patient).toEqual(a.patient);
    expect(a.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['RC-1', 'RC-2']);
    expect((await linkRequestsOf(p.abhaAddress)).map((l) => [l._id, l.status])).toEqual([[ref, 'LINKED']]);
    expect(await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray()).toEqual(linkedAt);
    const audits = await db()
      .collection('audit_events')
      .find({ action: 'link.confirm', patients: p.abhaAddress.toLowerCase() })
      .toArray();
    expect(audits.map((e) => e.outcome)).toEqual(['success', 'success']);
    expect(audits[1].reason).toMatch(/repeat/);
  });

  it('a wrong code for a LINKED request is an error that reveals nothing, and changes nothing', async () => {
    const p = g.patient();
    await upload(p, 'RW-1');
    const ref = (await linkInit(['RW-1'], { id: p.abhaAddress })).link.referenceNumber;
    const right = t.otps.find((o) => o.linkRefNumber === ref)!.otp;
    const wrong = right === '000000' ? '111111' : '000000';
    expect((await confirm(ref, right)).error).toBeUndefined();
    const before = [
      await linkRequestsOf(p.abhaAddress),
      await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray(),
    ];
    const answer = await confirm(ref, wrong);
    expect(answer.error).toEqual({ code: 1000, message: 'wrong one-time code' });
    expect(answer.patient).toBeUndefined();
    expect(JSON.stringify(answer)).not.toMatch(/LINKED|RW-1/);
    expect([
      await linkRequestsOf(p.abhaAddress),
      await t.collections.careContexts.find({ 'linked.linkRefNumber': ref }).toArray(),
    ]).toEqual(before);
  });
});
