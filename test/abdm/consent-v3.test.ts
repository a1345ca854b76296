/**
 * ABDM Milestone 2 HIP_INIT_GRANT_CONSENT, HIP_INIT_REVOKE_CONSENT and
 * HIP_INIT_EXPIRE_CONSENT in v3: the consent manager's notification on
 * /api/v3/consent/request/hip/notify is applied and acknowledged on
 * {base}/consent/v3/request/hip/on-notify with `acknowledgement {status: OK,
 * consentId}`, `response.requestId` = the notification's REQUEST-ID, and the
 * v3 headers, all checked by the strict stand-in gateway. A revoked or expired
 * consent stops serving at once and its terms are erased. v0.5 notifications
 * are acknowledged in v0.5.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { consentDetail, notifyConsent } from '../support/consents.js';
import { startStandInGateway, v3Headers, type StandInGateway, gatewayEnv } from '../support/stand-in-gateway.js';
import { createGenerator } from '../../fixtures/generator.js';

const HIP = 'HIP-CV3';
const HIU = 'HIU-CV3';
const V3 = '/api/v3/consent/request/hip/notify';
const ON_NOTIFY = '/consent/v3/request/hip/on-notify';

let gw: StandInGateway;
let t: TestApp;
let patient: string;

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    ...gatewayEnv(gw),
    HIP_INITIATED_LINKING: 'false',
  });
  const gen = createGenerator(4242);
  const p = gen.patient();
  patient = p.abhaAddress;
  const { bundle } = gen.record(p, 'Prescription', {
    date: '2024-03-01',
    careContext: { referenceNumber: 'CC-V3', display: 'OPD visit' },
  });
  const res = await t.request('/fhir/Bundle', {
    method: 'POST',
    as: ['hip', HIP],
    headers: uploadHeaders('CC-V3'),
    body: JSON.stringify(bundle),
  });
  expect(res.status).toBe(201);
});
afterEach(() => gw.assertClean());
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

const post = (body: unknown, requestId = uuidv4()) =>
  t.request(V3, { method: 'POST', as: ['cm', 'sbx'], headers: v3Headers(HIP, requestId), body: JSON.stringify(body) });
const grant = (consentId: string, extra: Partial<Parameters<typeof consentDetail>[0]> = {}) => ({
  notification: {
    consentId,
    status: 'GRANTED',
    consentDetail: consentDetail({ consentId, patient, hip: HIP, hiu: HIU, careContexts: ['CC-V3'], ...extra }),
  },
});
const search = (consentId: string) =>
  t.request('/fhir/Bundle', {
    as: ['hiu', HIU],
    headers: { 'X-Consent-Id': consentId },
  });

describe('v3 consent notifications, acknowledged in v3', () => {
  it('HIP_INIT_GRANT_CONSENT: a grant is stored, serves its viewer, and is acknowledged with its REQUEST-ID', async () => {
    const consentId = uuidv4();
    const requestId = uuidv4();
    const res = await post(grant(consentId), requestId);
    expect(res.status).toBe(202);
    const ack = await gw.waitFor(ON_NOTIFY, (c) => c.body?.acknowledgement?.consentId === consentId);
    expect(ack.body).toEqual({ acknowledgement: { status: 'OK', consentId }, response: { requestId } });
    expect(ack.headers['x-hip-id']).toBe(HIP);
    expect(ack.headers['request-id']).not.toBe(requestId);
    const page = await search(consentId);
    expect(page.status).toBe(200);
    expect((await page.json()).total).toBe(1);
  });

  it('HIP_INIT_REVOKE_CONSENT: a revocation stops serving at once, erases the terms, and is acknowledged', async () => {
    const consentId = uuidv4();
    expect((await post(grant(consentId))).status).toBe(202);
    expect((await search(consentId)).status).toBe(200);
    const requestId = uuidv4();
    expect((await post({ notification: { consentId, status: 'REVOKED' } }, requestId)).status).toBe(202);
    const ack = await gw.waitFor(ON_NOTIFY, (c) => c.body?.response?.requestId === requestId);
    expect(ack.body.acknowledgement).toEqual({ status: 'OK', consentId });
    // The HIP id of the revoked consent comes from the consent as it was stored.
    expect(ack.headers['x-hip-id']).toBe(HIP);
    expect((await search(consentId)).status).toBe(403);
    const stored = await t.consents.get(consentId);
    expect(stored?.status).toBe('REVOKED');
    expect(stored?.terms).toBeUndefined();
  });

  it('HIP_INIT_EXPIRE_CONSENT: an EXPIRED notification ends it at once; a consent past dataEraseAt is swept', async () => {
    const notified = uuidv4();
    expect((await post(grant(notified))).status).toBe(202);
    const requestId = uuidv4();
    expect((await post({ notification: { consentId: notified, status: 'EXPIRED' } }, requestId)).status).toBe(202);
    await gw.waitFor(ON_NOTIFY, (c) => c.body?.response?.requestId === requestId);
    expect((await search(notified)).status).toBe(403);
    expect((await t.consents.get(notified))?.terms).toBeUndefined();

    const lapsing = uuidv4();
    const soon = new Date(Date.now() + 60_000).toISOString();
    expect((await post(grant(lapsing, { dataEraseAt: soon }))).status).toBe(202);
    expect((await search(lapsing)).status).toBe(200);
    const later = new Date(Date.now() + 120_000);
    t.clock.now = later;
    try {
      expect((await search(lapsing)).status).toBe(403);
      expect(await t.consents.sweep(later)).toBeGreaterThanOrEqual(1);
      const swept = await t.consents.get(lapsing);
      expect(swept?.status).toBe('EXPIRED');
      expect(swept?.terms).toBeUndefined();
    } finally {
      t.clock.now = undefined;
    }
  });

  it('a v3 notification without REQUEST-ID is still applied (a revocation is never refused for its envelope), not acknowledged', async () => {
    const consentId = uuidv4();
    expect((await post(grant(consentId))).status).toBe(202);
    await gw.waitFor(ON_NOTIFY, (c) => c.body?.acknowledgement?.consentId === consentId);
    const before = gw.callbacks.length;
    const headers: Record<string, string> = { ...v3Headers(HIP) };
    delete headers['REQUEST-ID'];
    const res = await t.request(V3, {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers,
      body: JSON.stringify({ notification: { consentId, status: 'REVOKED' } }),
    });
    expect(res.status).toBe(202);
    expect((await t.consents.get(consentId))?.status).toBe('REVOKED');
    await new Promise((r) => setTimeout(r, 200));
    expect(gw.callbacks.slice(before).filter((c) => c.path === ON_NOTIFY)).toHaveLength(0);
  });

  it('a v0.5 notification is acknowledged in v0.5 (requestId and timestamp in the body, resp.requestId)', async () => {
    const consentId = uuidv4();
    const res = await notifyConsent(
      t,
      {
        consentId,
        status: 'GRANTED',
        consentDetail: consentDetail({ consentId, patient, hip: HIP, hiu: HIU, careContexts: ['CC-V3'] }),
      },
      'v0.5',
    );
    expect(res.status).toBe(202);
    const ack = await gw.waitFor(
      '/v0.5/consents/hip/on-notify',
      (c) => c.body?.acknowledgement?.consentId === consentId,
    );
    expect(ack.body.acknowledgement).toEqual({ status: 'OK', consentId });
    expect(ack.body.resp.requestId).toEqual(expect.any(String));
  });

  it('a v0.5 notification whose timestamp is not a string is still applied (an envelope field is never a reason to refuse)', async () => {
    const consentId = uuidv4();
    for (const timestamp of [1700000000000, null, { at: 'now' }]) {
      const res = await t.request('/v0.5/consents/hip/notify', {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          requestId: uuidv4(),
          timestamp,
          notification: {
            consentId,
            status: 'GRANTED',
            consentDetail: consentDetail({ consentId, patient, hip: HIP, hiu: HIU, careContexts: ['CC-V3'] }),
          },
        }),
      });
      expect(res.status, JSON.stringify(timestamp)).toBe(202);
    }
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
  });

  it('only the consent manager may notify: no token 401, hip, hiu and admin 403', async () => {
    const body = JSON.stringify(grant(uuidv4()));
    expect((await t.request(V3, { method: 'POST', headers: v3Headers(HIP), body })).status).toBe(401);
    for (const as of [
      ['hip', HIP],
      ['hiu', HIU],
      ['admin', 'ADMIN'],
    ] as const)
      expect((await t.request(V3, { method: 'POST', as: [...as], headers: v3Headers(HIP), body })).status).toBe(403);
  });
});
