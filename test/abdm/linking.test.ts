/**
 * Care-context discovery and linking through a stand-in gateway: the store
 * answers 202 at once and the outcome by callback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';

let t: TestApp;
let gw: StandInGateway;
const g = createGenerator(777);
let patient: SyntheticPatient;

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({ GATEWAY_BASE_URL: gw.url, GATEWAY_CLIENT_ID: 'abha-vault', GATEWAY_CLIENT_SECRET: 's3cret', LINK_OTP_TTL_SEC: '60', LINK_OTP_MAX_ATTEMPTS: '3' });
  patient = g.patient();
  for (const [cc, kind] of [['OPD-1', 'Prescription'], ['OPD-2', 'DiagnosticReport'], ['IPD-3', 'DischargeSummary'], ['OPD-1', 'DiagnosticReport']] as const) {
    const rec = g.record(patient, kind, { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
    const res = await t.request('/fhir/Bundle', { method: 'POST', body: JSON.stringify(rec.bundle), headers: uploadHeaders(cc, { 'X-Care-Context-Display': `Visit ${cc}` }), as: ['hip', 'HIP-L'] });
    expect(res.status).toBe(201);
  }
});
afterAll(async () => { await t?.close(); await gw?.close(); });

const cm = (path: string, body: unknown, hip = 'HIP-L') =>
  t.request(path, { method: 'POST', as: ['cm', 'sbx'], headers: { 'Content-Type': 'application/json', 'X-HIP-ID': hip }, body: JSON.stringify(body) });

async function discover(patientId: string, verified: { type: string; value: string }[] = []) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/care-contexts/discover', { requestId, timestamp: new Date().toISOString(), transactionId: uuidv4(), patient: { id: patientId, verifiedIdentifiers: verified, name: 'Test Patient', gender: 'F', yearOfBirth: 1990 } });
  expect(res.status).toBe(202);
  return (await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === requestId)).body;
}

async function linkInit(refs: string[]) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/links/link/init', { requestId, timestamp: new Date().toISOString(), transactionId: uuidv4(), patient: { id: patient.abhaAddress, referenceNumber: patient.abhaAddress, careContexts: refs.map((referenceNumber) => ({ referenceNumber })) } });
  expect(res.status).toBe(202);
  return (await gw.waitFor('/v0.5/links/link/on-init', (c) => c.body.resp.requestId === requestId)).body;
}

async function confirm(linkRefNumber: string, token: string) {
  const requestId = uuidv4();
  const res = await cm('/v0.5/links/link/confirm', { requestId, timestamp: new Date().toISOString(), confirmation: { linkRefNumber, token } });
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
    await cm('/v0.5/care-contexts/discover', { requestId, transactionId: uuidv4(), patient: { id: patient.abhaAddress } }, 'HIP-OTHER');
    expect((await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === requestId)).body.error).toBeTruthy();
  });

  it('refuses a missing X-HIP-ID (400), a bad body (422) and callers other than cm (403)', async () => {
    const missing = await t.request('/v0.5/care-contexts/discover', { method: 'POST', as: ['cm', 'sbx'], headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId: 'r', transactionId: 't', patient: { id: patient.abhaAddress } }) });
    expect(missing.status).toBe(400);
    expect((await cm('/v0.5/care-contexts/discover', { requestId: 'r' })).status).toBe(422);
    for (const role of ['hip', 'hiu', 'admin'] as const) {
      const res = await t.request('/v0.5/links/link/init', { method: 'POST', as: [role, 'X'], headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-L' }, body: '{}' });
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
    const stored = await t.client.db(t.config.MONGODB_DB).collection('link_requests').findOne({ _id: ref as any });
    expect(JSON.stringify(stored)).not.toContain(otp.otp); // only a salted hash is kept
    const done = await confirm(ref, otp.otp);
    expect(done.patient.careContexts.map((c: any) => c.referenceNumber).sort()).toEqual(['OPD-1', 'OPD-2']);
    const linked = await t.collections.careContexts.find({ provider: 'HIP-L', 'linked.abhaAddress': patient.abhaAddress.toLowerCase() }).toArray();
    expect(linked.map((c) => c.referenceNumber).sort()).toEqual(['OPD-1', 'OPD-2']);
    const again = await discover(patient.abhaAddress);
    expect(again.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['IPD-3']);
    expect((await confirm(ref, otp.otp)).error.message).toMatch(/LINKED/); // a code works once
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
    expect(await t.collections.careContexts.countDocuments({ provider: 'HIP-L', referenceNumber: 'IPD-3', linked: { $exists: true } })).toBe(0);
  });

  it('expires codes (fixed clock)', async () => {
    t.clock.now = new Date('2026-11-25T10:00:00Z');
    try {
      const init = await linkInit(['IPD-3']);
      const ref = init.link.referenceNumber;
      expect(init.link.meta.communicationExpiry).toBe('2026-11-25T10:01:00.000Z');
      t.clock.now = new Date('2026-11-25T10:01:00Z');
      expect((await confirm(ref, t.otps.find((o) => o.linkRefNumber === ref)!.otp)).error.message).toMatch(/expired/);
    } finally { t.clock.now = undefined; }
  });

  it('refuses care contexts the patient does not have here', async () => {
    expect((await linkInit(['NOPE-9'])).error.message).toMatch(/NOPE-9/);
  });
});

describe('consent notifications are acknowledged to the gateway', () => {
  it('sends on-notify with the consent id and the notification requestId', async () => {
    const requestId = uuidv4(), consentId = uuidv4();
    const res = await t.request('/v0.5/consents/hip/notify', { method: 'POST', as: ['cm', 'sbx'], headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ requestId, timestamp: new Date().toISOString(), notification: { consentId, status: 'REVOKED' } }) });
    expect(res.status).toBe(202);
    const ack = await gw.waitFor('/v0.5/consents/hip/on-notify', (c) => c.body.resp.requestId === requestId);
    expect(ack.body.acknowledgement).toEqual({ status: 'OK', consentId });
  });
});

describe('discovery by verified demographics', () => {
  it('finds the patient by name, gender and year of birth when no identifier matches, and links', async () => {
    const other = g.patient();
    const rec = g.record(other, 'Prescription', { careContext: { referenceNumber: 'OPD-D1', display: 'OPD D1' } });
    expect((await t.request('/fhir/Bundle', { method: 'POST', body: JSON.stringify(rec.bundle), headers: uploadHeaders('OPD-D1'), as: ['hip', 'HIP-L'] })).status).toBe(201);
    const gender = { male: 'M', female: 'F', other: 'O' }[other.gender];
    const year = Number(other.birthDate.slice(0, 4));
    const name = `${other.name.given}  ${other.name.family.toUpperCase()}`; // spacing and case do not matter
    const requestId = uuidv4();
    await cm('/v0.5/care-contexts/discover', { requestId, transactionId: uuidv4(), patient: { id: 'new.handle@sbx', name, gender, yearOfBirth: year } });
    const body = (await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === requestId)).body;
    expect(body.patient.matchedBy).toEqual(['DEMOGRAPHICS']);
    expect(body.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['OPD-D1']);
    expect(body.patient.referenceNumber).toBe(other.abhaAddress.toLowerCase());

    const wrongYear = uuidv4();
    await cm('/v0.5/care-contexts/discover', { requestId: wrongYear, transactionId: uuidv4(), patient: { id: 'new.handle@sbx', name, gender, yearOfBirth: year + 1 } });
    expect((await gw.waitFor('/v0.5/care-contexts/on-discover', (c) => c.body.resp.requestId === wrongYear)).body.error).toBeTruthy();

    const stored = await t.collections.careContexts.findOne({ provider: 'HIP-L', referenceNumber: 'OPD-D1' });
    expect(JSON.stringify(stored)).not.toContain(other.name.family); // only a hash of the demographics is kept
  });
});
