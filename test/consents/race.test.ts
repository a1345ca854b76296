/**
 * Consent notifications that race each other, over HTTP on the real database:
 * a terminal status (REVOKED, EXPIRED, DENIED) wins whatever the arrival
 * order; afterwards the consent's terms and artefact are erased and no read
 * under it is served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';

let t: TestApp;
const g = createGenerator(9031);
const patient = g.patient();
const HIP = 'HIP-RACE',
  HIU = 'HIU-RACE';

beforeAll(async () => {
  t = await createTestApp();
  const rec = g.record(patient, 'Prescription', {
    date: '2024-03-01T10:00:00+05:30',
    careContext: { referenceNumber: 'CC-R', display: 'CC-R' },
  });
  const res = await t.request('/fhir/Bundle', {
    method: 'POST',
    body: JSON.stringify(rec.bundle),
    headers: uploadHeaders('CC-R'),
    as: ['hip', HIP],
  });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await t?.close();
});

type Status = 'GRANTED' | 'REVOKED' | 'EXPIRED' | 'DENIED';
const TERMINAL: Status[] = ['REVOKED', 'EXPIRED', 'DENIED'];

const notification = (consentId: string, status: Status) => ({
  consentId,
  status,
  ...(status === 'GRANTED'
    ? {
        consentDetail: {
          schemaVersion: 'v0.5',
          consentId,
          createdAt: '2024-01-01T10:00:00.000Z',
          patient: { id: patient.abhaAddress },
          careContexts: [{ patientReference: 'P', careContextReference: 'CC-R' }],
          purpose: { code: 'CAREMGT' },
          hip: { id: HIP },
          hiu: { id: HIU },
          hiTypes: ['Prescription'],
          permission: {
            accessMode: 'VIEW',
            dateRange: { from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' },
            dataEraseAt: '2099-01-01T00:00:00Z',
            frequency: { unit: 'HOUR', value: 1000, repeats: 0 },
          },
        },
      }
    : {}),
});

async function send(consentId: string, status: Status, v3: boolean) {
  const path = v3 ? '/api/v3/consent/request/hip/notify' : '/v0.5/consents/hip/notify';
  const body = v3
    ? { notification: notification(consentId, status) }
    : { requestId: uuidv4(), timestamp: new Date().toISOString(), notification: notification(consentId, status) };
  const res = await t.request(path, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(202);
}

/** What a terminal consent must look like afterwards: terminal, erased, and serving nothing. */
async function expectEnded(consentId: string) {
  const doc = await t.consents.get(consentId);
  expect(doc, consentId).not.toBeNull();
  expect(TERMINAL, `${consentId} is ${doc!.status}`).toContain(doc!.status);
  expect(doc!.terms).toBeUndefined();
  expect(doc!.artefact).toBeUndefined();
  const res = await t.request('/fhir/Bundle?_count=10', { as: ['hiu', HIU], headers: { 'X-Consent-Id': consentId } });
  expect(res.status).toBe(403);
}

describe('a terminal status wins over a racing grant', () => {
  it('60 GRANTED/REVOKED pairs sent together all end REVOKED, erased, serving nothing', async () => {
    const ids = Array.from({ length: 60 }, () => uuidv4());
    await Promise.all(
      ids.flatMap((id, i) =>
        i % 2 === 0
          ? [send(id, 'REVOKED', false), send(id, 'GRANTED', false)]
          : [send(id, 'GRANTED', true), send(id, 'REVOKED', true)],
      ),
    );
    for (const id of ids) {
      await expectEnded(id);
      expect((await t.consents.get(id))!.status).toBe('REVOKED');
    }
  });

  it('any interleaving of GRANTED/REVOKED/EXPIRED/DENIED for random consents, sent concurrently, leaves every consent that got a terminal status ended', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            statuses: fc.array(fc.constantFrom<Status>('GRANTED', 'REVOKED', 'EXPIRED', 'DENIED'), {
              minLength: 1,
              maxLength: 4,
            }),
            v3: fc.boolean(),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        async (consents) => {
          const plan = consents.map((c) => ({ id: uuidv4(), ...c }));
          // Every notification of every consent at once, in the generated order.
          await Promise.all(plan.flatMap((c) => c.statuses.map((s) => send(c.id, s, c.v3))));
          for (const c of plan) {
            if (c.statuses.some((s) => s !== 'GRANTED')) await expectEnded(c.id);
            else {
              const doc = await t.consents.get(c.id);
              expect(doc?.status).toBe('GRANTED');
              expect(doc?.terms?.patient).toBe(patient.abhaAddress);
            }
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('the dataEraseAt sweep racing a revocation leaves the consent ended once, with one terminal history entry', async () => {
    const id = uuidv4();
    await send(id, 'GRANTED', false);
    const later = new Date('2100-01-01T00:00:00Z');
    await Promise.all([t.consents.sweep(later), send(id, 'REVOKED', false)]);
    const doc = await t.consents.get(id);
    expect(TERMINAL).toContain(doc!.status);
    expect(doc!.history.filter((h) => h.status !== 'GRANTED')).toHaveLength(1);
    await expectEnded(id);
  });
});
