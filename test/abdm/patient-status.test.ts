/**
 * ABHA status notifications (POST /v0.5/patients/status/notify, role cm):
 * DEACTIVATED and DELETED end the address's consents and drop its links and
 * discovery keys, never its health records; REACTIVATED lets it discover and
 * link again. Acknowledged to the strict stand-in gateway (v0.5 on-notify),
 * with no deviation from the dialect (`assertClean` after each test).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';
import { startStandInGateway, v3Headers, type StandInGateway, gatewayEnv } from '../support/stand-in-gateway.js';
import { grantConsent, notifyConsent } from '../support/consents.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import type { Role } from '../../src/auth/caller.js';

const HIP = 'HIP-S';
const HIU = 'HIU-S';
const NOTIFY = '/v0.5/patients/status/notify';
const ON_NOTIFY = '/v0.5/patients/status/on-notify';
const ON_DISCOVER = '/user-initiated-linking/v3/patient/care-context/on-discover';

let t: TestApp;
let gw: StandInGateway;
const g = createGenerator(5150);

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    ...gatewayEnv(gw),
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

const db = () => t.client.db(t.config.MONGODB_DB);

/** Uploads one Prescription in care context `cc`; returns the record id. */
async function upload(p: SyntheticPatient, cc: string): Promise<string> {
  const rec = g.record(p, 'Prescription', {
    careContext: { referenceNumber: cc, display: `Visit ${cc}` },
    date: '2024-05-01T10:00:00+05:30',
  });
  return t.upload(HIP, rec.bundle, cc, `Visit ${cc}`);
}

/** Posts a v3 linking message and returns the gateway's answer to it. */
async function v3(path: string, answer: string, body: unknown) {
  const requestId = uuidv4();
  const res = await t.request(path, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(HIP, requestId),
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return (await gw.waitFor(answer, (c) => c.body.response?.requestId === requestId)).body;
}

const discover = (p: SyntheticPatient, withNumber = false, transactionId = uuidv4()) =>
  v3('/api/v3/hip/patient/care-context/discover', ON_DISCOVER, {
    transactionId,
    patient: {
      id: p.abhaAddress,
      verifiedIdentifiers: withNumber ? [{ type: 'ABHA_NUMBER', value: p.abhaNumber }] : [],
    },
  });

/** Discovers, links and confirms every care context offered; returns the link reference. */
async function link(p: SyntheticPatient, withNumber = false): Promise<string> {
  const tx = uuidv4();
  const found = await discover(p, withNumber, tx);
  expect(found.patient, JSON.stringify(found)).toBeTruthy();
  const init = await v3('/api/v3/hip/link/care-context/init', '/user-initiated-linking/v3/link/care-context/on-init', {
    transactionId: tx,
    abhaAddress: p.abhaAddress,
    patient: found.patient.map((x: any) => ({
      referenceNumber: x.referenceNumber,
      careContexts: x.careContexts.map((cc: any) => ({ referenceNumber: cc.referenceNumber })),
      hiType: x.hiType,
      count: x.count,
    })),
  });
  const ref = init.link.referenceNumber;
  const done = await v3(
    '/api/v3/hip/link/care-context/confirm',
    '/user-initiated-linking/v3/link/care-context/on-confirm',
    { confirmation: { linkRefNumber: ref, token: t.otps.find((o) => o.linkRefNumber === ref)!.otp } },
  );
  expect(done.patient).toBeTruthy();
  return ref;
}

/** Starts linking without confirming: a PENDING link request of the patient. */
async function pendingLink(p: SyntheticPatient, cc: string) {
  const res = await t.request('/v0.5/links/link/init', {
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
  return (await res.json()).linkRefNumber as string;
}

/** Posts an ABHA status notification as the consent manager; resolves with the answer and the gateway's on-notify. */
async function notify(status: string, id: string, opts: { timestamp?: unknown } = {}) {
  const requestId = uuidv4();
  const res = await t.request(NOTIFY, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
    body: JSON.stringify({
      requestId,
      timestamp: 'timestamp' in opts ? opts.timestamp : new Date().toISOString(),
      notification: { status, patient: { id } },
    }),
  });
  expect(res.status, await res.clone().text()).toBe(202);
  const ack = await gw.waitFor(ON_NOTIFY, (c) => c.body.resp?.requestId === requestId);
  return { answer: await res.json(), ack };
}

const search = (consentId: string) =>
  t.request('/fhir/Bundle?_count=50', { as: ['hiu', HIU], headers: { 'X-Consent-Id': consentId } });
const readAsHip = (recordId: string) => t.request(`/fhir/Bundle/${recordId}`, { as: ['hip', HIP] });
const careContextsOf = (cc: RegExp) =>
  t.collections.careContexts.find({ provider: HIP, referenceNumber: cc }).toArray();

describe('DEACTIVATED', () => {
  it("ends the address's granted consents, unlinks and unkeys its care contexts, drops its link requests, discoveries and HIP-initiated links; the records stay", async () => {
    const p = g.patient();
    const address = p.abhaAddress.toLowerCase();
    const recordId = await upload(p, 'DA-1');
    await upload(p, 'DA-2');
    const { consentId } = await grantConsent(t, {
      patient: p.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['DA-1', 'DA-2'],
    });
    const before = await search(consentId);
    expect(before.status).toBe(200);
    expect((await before.json()).total).toBe(2);
    await link(p); // both care contexts linked
    await upload(p, 'DA-3');
    await pendingLink(p, 'DA-3');
    await db()
      .collection('hip_links')
      .insertMany([
        { _id: uuidv4() as any, abhaAddress: address, provider: HIP },
        { _id: uuidv4() as any, abhaAddress: 'someone.else@sbx', provider: HIP },
      ]);
    await db()
      .collection('hip_link_tokens')
      .insertOne({ _id: uuidv4() as any, abhaAddress: p.abhaAddress.toUpperCase(), token: 'x' });
    expect(await db().collection('link_requests').countDocuments({ abhaAddress: address })).toBe(2);
    expect(await db().collection('link_discoveries').countDocuments({ patientId: address })).toBe(1);
    // HIP-initiated linking keeps jobs of its own for the uploads (abdm/hip-linking.ts), under the address too.
    const hipLinks = await db().collection('hip_links').countDocuments({ abhaAddress: address });
    expect(hipLinks).toBeGreaterThanOrEqual(1);

    const { answer, ack } = await notify('DEACTIVATED', p.abhaAddress.toUpperCase());
    expect(answer).toEqual({ status: 'DEACTIVATED', applied: true });
    expect(ack.body.acknowledgement).toEqual({ status: 'OK' });
    expect(ack.headers['x-hip-id']).toBe(HIP);

    // The consent no longer serves: ended as a revocation, its terms erased; the patient key stays.
    const consent = await t.consents.get(consentId);
    expect(consent).toMatchObject({ status: 'REVOKED', patient: address });
    expect(consent!.terms).toBeUndefined();
    expect(consent!.artefact).toBeUndefined();
    const after = await search(consentId);
    expect(after.status).toBeGreaterThanOrEqual(400);
    expect(after.status).toBeLessThan(500);
    // Care contexts: unlinked, no longer under the address.
    const ccs = await careContextsOf(/^DA-/);
    expect(ccs).toHaveLength(3);
    for (const cc of ccs) {
      expect(cc.linked).toBeUndefined();
      expect(cc.abhaAddress).toBeNull();
      expect(cc.abhaNumber).toBe(p.abhaNumber.replace(/-/g, ''));
    }
    expect(await db().collection('link_requests').countDocuments({ abhaAddress: address })).toBe(0);
    expect(await db().collection('link_discoveries').countDocuments({ patientId: address })).toBe(0);
    expect(await db().collection('hip_links').countDocuments({ abhaAddress: address })).toBe(0);
    expect(await db().collection('hip_links').countDocuments({ abhaAddress: 'someone.else@sbx' })).toBe(1);
    expect(await db().collection('hip_link_tokens').countDocuments({})).toBe(0);
    expect(
      await db()
        .collection('abha_status')
        .findOne({ _id: address as any }),
    ).toMatchObject({
      status: 'DEACTIVATED',
    });

    // Not discoverable, by the address or (under the address) by the number; link/init refused.
    expect((await discover(p)).error.code).toBe('ABDM-1010');
    expect((await discover(p, true)).error.code).toBe('ABDM-1010');
    const init = await v3(
      '/api/v3/hip/link/care-context/init',
      '/user-initiated-linking/v3/link/care-context/on-init',
      {
        transactionId: uuidv4(),
        abhaAddress: p.abhaAddress,
        patient: [
          {
            referenceNumber: p.abhaAddress,
            careContexts: [{ referenceNumber: 'DA-1' }],
            hiType: 'Prescription',
            count: 1,
          },
        ],
      },
    );
    expect(init.error).toBeTruthy();

    // The records stay, and the provider still reads them.
    const read = await readAsHip(recordId);
    expect(read.status).toBe(200);
    expect(await t.collections.current.countDocuments({ provider: HIP, abhaAddress: address })).toBe(3);

    // Audited: the notification (with counts) and each refusal after it.
    const events = await db()
      .collection('audit_events')
      .find({ patients: address, action: { $in: ['patient.status', 'care-context.discover', 'link.init'] } })
      .sort({ _id: 1 })
      .toArray();
    const status = events.find((e) => e.action === 'patient.status')!;
    expect(status).toMatchObject({ outcome: 'success', status: 202, actor: { role: 'cm' } });
    expect(status.reason).toMatch(/^DEACTIVATED: consents ended 1, link requests 2, discoveries 1, /);
    expect(status.reason).toContain(
      `care contexts unlinked 2, care contexts unkeyed 3, HIP-initiated links ${hipLinks}, link tokens 1`,
    );
    const refusals = events.filter((e) => e._id > status._id && e.outcome === 'refused');
    expect(refusals.map((e) => e.action)).toEqual(['care-context.discover', 'care-context.discover', 'link.init']);
    expect(refusals.every((e) => /DEACTIVATED/.test(e.reason))).toBe(true);
  });
});

describe('a deactivation racing a confirmation', () => {
  it('a link confirmed after the status was written, before its link request was dropped, is taken back', async () => {
    const p = g.patient();
    await upload(p, 'RC-1');
    const ref = await pendingLink(p, 'RC-1');
    await expect.poll(() => t.otps.some((o) => o.linkRefNumber === ref)).toBe(true);
    // The status as the notification writes it first; the drop has not run yet.
    await db()
      .collection('abha_status')
      .insertOne({ _id: p.abhaAddress.toLowerCase() as any, status: 'DEACTIVATED', at: new Date() });
    const requestId = uuidv4();
    const res = await t.request('/v0.5/links/link/confirm', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
      body: JSON.stringify({
        requestId,
        timestamp: new Date().toISOString(),
        confirmation: { linkRefNumber: ref, token: t.otps.find((o) => o.linkRefNumber === ref)!.otp },
      }),
    });
    expect(await res.json()).toMatchObject({ status: 'ERRORED', reason: 'ABHA address is DEACTIVATED' });
    const answer = await gw.waitFor('/v0.5/links/link/on-confirm', (c) => c.body.resp?.requestId === requestId);
    expect(answer.body.error.message).toMatch(/DEACTIVATED/);
    expect((await careContextsOf(/^RC-/))[0].linked).toBeUndefined();
    expect(
      (
        await db()
          .collection('link_requests')
          .findOne({ _id: ref as any })
      )?.status,
    ).toBe('FAILED');
  });
});

describe('REACTIVATED', () => {
  it('lets the address discover and link again; links are not restored; a late, older DEACTIVATED changes nothing', async () => {
    const p = g.patient();
    await upload(p, 'RA-1');
    await link(p);
    await notify('DEACTIVATED', p.abhaAddress);
    expect((await discover(p, true)).error.code).toBe('ABDM-1010');

    const reactivatedAt = new Date();
    const { answer } = await notify('REACTIVATED', p.abhaAddress, { timestamp: reactivatedAt.toISOString() });
    expect(answer.applied).toBe(true);
    expect((await careContextsOf(/^RA-/))[0].linked).toBeUndefined(); // not restored
    // Discoverable again: the care context is found by the ABHA number it carries (its address key was dropped).
    const found = await discover(p, true);
    expect(found.matchedBy).toEqual(['ABHA_NUMBER']);
    expect(found.patient[0].careContexts.map((c: any) => c.referenceNumber)).toEqual(['RA-1']);
    // A record uploaded now is found by the address itself; the patient links again.
    await upload(p, 'RA-2');
    expect((await discover(p)).patient[0].careContexts.map((c: any) => c.referenceNumber)).toEqual(['RA-2']);
    await link(p, true);
    expect((await careContextsOf(/^RA-/)).every((c) => c.linked?.abhaAddress === p.abhaAddress.toLowerCase())).toBe(
      true,
    );
    // A consent granted after reactivation survives a retried DEACTIVATED older than the reactivation.
    const { consentId } = await grantConsent(t, { patient: p.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['RA-1'] });
    const late = await notify('DEACTIVATED', p.abhaAddress, {
      timestamp: new Date(reactivatedAt.getTime() - 60_000).toISOString(),
    });
    expect(late.answer).toEqual({ status: 'DEACTIVATED', applied: false });
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
    expect((await search(consentId)).status).toBe(200);
    expect((await careContextsOf(/^RA-/)).every((c) => !!c.linked)).toBe(true);
  });
});

describe('DELETED', () => {
  it("also takes the patient key off the address's ended consents; the records stay", async () => {
    const p = g.patient();
    const address = p.abhaAddress.toLowerCase();
    const recordId = await upload(p, 'DE-1');
    const live = await grantConsent(t, { patient: p.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['DE-1'] });
    const revoked = await grantConsent(t, { patient: p.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['DE-1'] });
    expect((await notifyConsent(t, { consentId: revoked.consentId, status: 'REVOKED' })).status).toBe(202);
    const other = g.patient();
    const untouched = await grantConsent(t, { patient: other.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['X'] });
    await link(p);

    const { answer } = await notify('DELETED', p.abhaAddress);
    expect(answer).toEqual({ status: 'DELETED', applied: true });
    for (const id of [live.consentId, revoked.consentId]) {
      const consent = await t.consents.get(id);
      expect(consent?.status).toBe('REVOKED');
      expect(consent?.terms).toBeUndefined();
      expect(consent?.patient ?? null).toBeNull();
    }
    expect(await t.consents.consents.countDocuments({ patient: address })).toBe(0);
    expect((await t.consents.get(untouched.consentId))?.status).toBe('GRANTED');
    expect((await search(live.consentId)).status).toBeGreaterThanOrEqual(400);
    const [cc] = await careContextsOf(/^DE-/);
    expect(cc.abhaAddress).toBeNull();
    expect(cc.linked).toBeUndefined();
    expect(await db().collection('link_requests').countDocuments({ abhaAddress: address })).toBe(0);
    expect((await readAsHip(recordId)).status).toBe(200);
    expect((await discover(p, true)).error.code).toBe('ABDM-1010');
    const event = await db().collection('audit_events').findOne({ action: 'patient.status', patients: address });
    expect(event?.reason).toMatch(/^DELETED: consents ended 1, consents forgotten 2, /);
    expect(event?.reason).toContain('link/init counters 1'); // the link() above counted one link/init
    expect(
      await db()
        .collection('link_init_usage')
        .countDocuments({ _id: { $regex: address } as any }),
    ).toBe(0);
  });
});

describe('who may notify, and what a bad notification changes', () => {
  it('refuses no token (401), hip, hiu and admin (403), audited, and changes nothing', async () => {
    const p = g.patient();
    await upload(p, 'WC-1');
    const { consentId } = await grantConsent(t, { patient: p.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['WC-1'] });
    const body = JSON.stringify({
      requestId: uuidv4(),
      timestamp: new Date().toISOString(),
      notification: { status: 'DELETED', patient: { id: p.abhaAddress } },
    });
    const as: ([Role, string] | undefined)[] = [undefined, ['hip', HIP], ['hiu', HIU], ['admin', 'ops']];
    const statuses: number[] = [];
    for (const caller of as)
      statuses.push(
        (
          await t.request(NOTIFY, {
            method: 'POST',
            ...(caller ? { as: caller } : {}),
            headers: { 'Content-Type': 'application/json' },
            body,
          })
        ).status,
      );
    expect(statuses).toEqual([401, 403, 403, 403]);
    const refusals = await db()
      .collection('audit_events')
      .find({ action: 'patient.status', outcome: 'refused' })
      .toArray();
    expect(refusals.map((e) => e.status).sort()).toEqual([401, 403, 403, 403]);
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
    expect(
      await db()
        .collection('abha_status')
        .countDocuments({ _id: p.abhaAddress.toLowerCase() as any }),
    ).toBe(0);
  });

  it('a malformed notification is 400/422 with an OperationOutcome, is audited, changes nothing and is not acknowledged', async () => {
    const p = g.patient();
    await upload(p, 'MB-1');
    const { consentId } = await grantConsent(t, { patient: p.abhaAddress, hip: HIP, hiu: HIU, careContexts: ['MB-1'] });
    const acks = gw.callbacks.filter((c) => c.path === ON_NOTIFY).length;
    const send = (body: string) =>
      t.request(NOTIFY, {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: { 'Content-Type': 'application/json', 'X-HIP-ID': HIP },
        body,
      });
    const valid = { requestId: uuidv4(), notification: { status: 'DEACTIVATED', patient: { id: p.abhaAddress } } };
    const bad: [string, number][] = [
      ['{"requestId": "r", "notification": ', 400],
      [JSON.stringify({ ...valid, notification: { ...valid.notification, status: 'PAUSED' } }), 422],
      [JSON.stringify({ ...valid, notification: { status: 'DEACTIVATED' } }), 422],
      [JSON.stringify({ ...valid, notification: { status: 'DELETED', patient: { id: p.abhaNumber } } }), 422],
      [JSON.stringify({ ...valid, notification: { status: 'DELETED', patient: { id: { $ne: null } } } }), 422],
      [JSON.stringify({ notification: valid.notification }), 422],
    ];
    for (const [body, status] of bad) {
      const res = await send(body);
      expect(res.status, body).toBe(status);
      expect((await res.json()).resourceType).toBe('OperationOutcome');
    }
    const rejected = await db()
      .collection('audit_events')
      .find({ action: 'patient.status', outcome: 'rejected' })
      .toArray();
    expect(rejected).toHaveLength(bad.length);
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
    expect((await careContextsOf(/^MB-/))[0].abhaAddress).toBe(p.abhaAddress.toLowerCase());
    expect(
      await db()
        .collection('abha_status')
        .countDocuments({ _id: p.abhaAddress.toLowerCase() as any }),
    ).toBe(0);
    // A timestamp that is no date does not make a valid notification refused.
    const { answer } = await notify('REACTIVATED', p.abhaAddress, { timestamp: 12345 });
    expect(answer.applied).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(gw.callbacks.filter((c) => c.path === ON_NOTIFY).length).toBe(acks + 1);
  });
});
