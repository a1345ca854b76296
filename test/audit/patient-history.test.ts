/**
 * What a patient sees when they ask who accessed their records: consent
 * notifications under their normalised identity (an ABHA number is found in
 * either form), and refused attempts under their consents, revoked ones too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { grantConsent, notifyConsent } from '../support/consents.js';
import { createTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const NUMBER = '91-9894-8126-9524';

async function notify(notification: unknown) {
  expect((await notifyConsent(t, notification)).status).toBe(202);
}
const grant = async (consentId: string, patient: string) => {
  const { res } = await grantConsent(t, { consentId, patient, hip: 'HIP-AUD', hiu: 'HIU-AUD', careContexts: ['CC-1'] });
  expect(res.status).toBe(202);
};

async function historyOf(who: string, consentId: string) {
  const res = await t.request(`/fhir/AuditEvent?patient-abha=${encodeURIComponent(who)}&_count=1000`, {
    as: ['cm', 'sbx'],
  });
  expect(res.status).toBe(200);
  return ((await res.json()).entry ?? [])
    .map((e: any) => e.resource)
    .filter((e: any) => e.entity.some((x: any) => x.what.identifier?.value === consentId))
    .map((e: any) => ({ action: e.subtype[0].code, outcome: e.outcome, reason: e.outcomeDesc as string | undefined }));
}

describe("the patient's access history", () => {
  it('a consent naming a dashed ABHA number is found by the number in either form, revocation included', async () => {
    const consentId = uuidv4();
    await grant(consentId, NUMBER);
    await notify({ consentId, status: 'REVOKED' });
    for (const who of [NUMBER, NUMBER.replace(/-/g, '')]) {
      expect(
        (await historyOf(who, consentId)).map((e: { action: string }) => e.action),
        who,
      ).toEqual(['consent.notify', 'consent.notify']);
    }
  });

  it('a read refused under a consent names its patient: while live (outside the consent), and after revocation', async () => {
    const consentId = uuidv4();
    await grant(consentId, 'meera.iyer@sbx');
    const outside = await t.request('/fhir/Bundle/00000000-0000-4000-8000-000000000000', {
      as: ['hiu', 'HIU-AUD'],
      headers: { 'X-Consent-Id': consentId },
    });
    expect(outside.status).toBe(404);
    await notify({ consentId, status: 'REVOKED' });
    const revoked = await t.request('/fhir/Bundle?_count=5', {
      as: ['hiu', 'HIU-AUD'],
      headers: { 'X-Consent-Id': consentId },
    });
    expect(revoked.status).toBe(403);
    const other = await t.request('/fhir/Bundle?_count=5', {
      as: ['hiu', 'HIU-OTHER'],
      headers: { 'X-Consent-Id': consentId },
    });
    expect(other.status).toBe(403);
    const events = await historyOf('Meera.Iyer@sbx', consentId);
    const refused = events.filter((e: { outcome: string }) => e.outcome === '4');
    expect(refused.map((e: { action: string }) => e.action)).toEqual(['record.read', 'record.search', 'record.search']);
    expect(events.map((e: { action: string }) => e.action)).toContain('consent.notify');
  });
});
