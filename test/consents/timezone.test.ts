/**
 * ABDM date-times mean the same instant whatever the server's time zone: a
 * value without an offset is UTC, a date-only `to` covers its whole day, and
 * impossible calendar dates are refused (422), never rolled over. The same
 * tests run with the process in UTC and in Asia/Kolkata (+05:30).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { grantConsent } from '../support/consents.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';
import { parseAbdmDateTime } from '../../src/fhir/datetime.js';

const original = process.env.TZ;
afterAll(() => {
  if (original === undefined) delete process.env.TZ;
  else process.env.TZ = original;
});

describe('parseAbdmDateTime', () => {
  it('reads a value without an offset as UTC, microseconds truncated to milliseconds', () => {
    expect(parseAbdmDateTime('2023-01-09T13:01:01.593055')!.toISOString()).toBe('2023-01-09T13:01:01.593Z');
    expect(parseAbdmDateTime('2023-06-15T00:00:00')!.toISOString()).toBe('2023-06-15T00:00:00.000Z');
    expect(parseAbdmDateTime('2023-06-15T05:30:00+05:30')!.toISOString()).toBe('2023-06-15T00:00:00.000Z');
    expect(parseAbdmDateTime('2023-06-15T05:30:00+0530')!.toISOString()).toBe('2023-06-15T00:00:00.000Z');
    expect(parseAbdmDateTime('2023-06-15T10:00')!.toISOString()).toBe('2023-06-15T10:00:00.000Z');
  });
  it('as the end of a range, a value covers its whole precision: a date its day, a minute its minute', () => {
    expect(parseAbdmDateTime('2023-06-15', 'end')!.toISOString()).toBe('2023-06-15T23:59:59.999Z');
    expect(parseAbdmDateTime('2023-06-15T08:59:59', 'end')!.toISOString()).toBe('2023-06-15T08:59:59.999Z');
    expect(parseAbdmDateTime('2023-06-15T08:59', 'end')!.toISOString()).toBe('2023-06-15T08:59:59.999Z');
    expect(parseAbdmDateTime('2023-06-15T08:59:59.250', 'end')!.toISOString()).toBe('2023-06-15T08:59:59.250Z');
    expect(parseAbdmDateTime('2023-06-15', 'start')!.toISOString()).toBe('2023-06-15T00:00:00.000Z');
  });
  it('refuses impossible calendar values and non-dates instead of rolling over', () => {
    for (const bad of [
      '2024-02-30',
      '2023-02-29',
      '2023-13-01',
      '2023-00-10',
      '2023-06-15T24:00:00',
      '2023-06-15T10:60',
      '2023-06-15T10:00:61',
      '0',
      '',
      '2023',
      '2023-06',
      '15/06/2023',
      '2023-06-15T10:00:00+15:00',
      '2023-06-15 10:00:00',
      'x2023-06-15',
    ]) {
      expect(parseAbdmDateTime(bad), bad).toBeUndefined();
    }
    expect(parseAbdmDateTime('2024-02-29')!.toISOString()).toBe('2024-02-29T00:00:00.000Z');
    expect(parseAbdmDateTime(20230615)).toBeUndefined();
  });
});

describe.each(['UTC', 'Asia/Kolkata'])('consent date ranges with the server in TZ=%s', (tz) => {
  let t: TestApp;
  const g = createGenerator(tz === 'UTC' ? 501 : 502);
  const patient = g.patient();
  const HIP = 'HIP-TZ',
    HIU = 'HIU-TZ';

  beforeAll(async () => {
    process.env.TZ = tz;
    t = await createTestApp({ GATEWAY_BASE_URL: 'http://127.0.0.1:9' });
    for (const date of [
      '2023-06-15T03:00:00Z',
      '2023-06-15T08:30:00+00:00',
      '2023-06-15T09:30:00Z',
      '2023-06-16T20:00:00Z',
    ]) {
      const rec = g.record(patient, 'Prescription', {
        date,
        careContext: { referenceNumber: 'CC-TZ', display: 'CC-TZ' },
      });
      const res = await t.request('/fhir/Bundle', {
        method: 'POST',
        body: JSON.stringify(rec.bundle),
        headers: uploadHeaders('CC-TZ'),
        as: ['hip', HIP],
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.close();
  });

  it('the process really runs in that zone', () => {
    expect(new Date(2023, 5, 15).getTimezoneOffset()).toBe(tz === 'UTC' ? 0 : -330);
  });

  const grant = (
    from: string,
    to: string,
    dataEraseAt = '2099-01-01T00:00:00',
    createdAt = '2023-01-09T13:01:01.593055',
  ) =>
    grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-TZ'],
      from,
      to,
      dataEraseAt,
      createdAt,
    });
  const served = async (consentId: string) => {
    const res = await t.request('/fhir/Bundle?_count=50', { as: ['hiu', HIU], headers: { 'X-Consent-Id': consentId } });
    expect(res.status).toBe(200);
    const b = await res.json();
    expect(b.total).toBe((b.entry ?? []).length);
    return b.total as number;
  };

  it('an offset-less range is UTC: 2023-06-15T00:00:00 to T08:59:59 serves the 2 records in it', async () => {
    const { consentId, res } = await grant('2023-06-15T00:00:00', '2023-06-15T08:59:59');
    expect(res.status).toBe(202);
    expect(await served(consentId)).toBe(2);
  });

  it('a date-only `to` covers its whole day', async () => {
    const { consentId, res } = await grant('2023-06-15', '2023-06-15');
    expect(res.status).toBe(202);
    expect(await served(consentId)).toBe(3);
  });

  it('an offset-less dataEraseAt is UTC too', async () => {
    const { consentId } = await grant('2023-01-01', '2023-12-31', '2099-01-01T00:00:00');
    expect((await t.consents.get(consentId))!.terms!.dataEraseAt.toISOString()).toBe('2099-01-01T00:00:00.000Z');
    expect((await t.consents.get(consentId))!.createdAt!.toISOString()).toBe('2023-01-09T13:01:01.593Z');
  });

  it('impossible calendar dates in a consent get 422 naming the field, and nothing is stored', async () => {
    for (const [from, to, field] of [
      ['2024-02-30', '2024-03-01', 'from'],
      ['2024-01-01', '0', 'to'],
    ] as const) {
      const { consentId, res } = await grant(from, to);
      expect(res.status).toBe(422);
      const oo = await res.json();
      expect(
        oo.issue.some((i: { expression?: string[] }) =>
          (i.expression ?? []).includes(`notification.consentDetail.permission.dateRange.${field}`),
        ),
        JSON.stringify(oo),
      ).toBe(true);
      expect(await t.consents.get(consentId)).toBeNull();
    }
  });

  it('a health-information request with an impossible dateRange gets 422', async () => {
    const res = await t.request('/v0.5/health-information/hip/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        requestId: uuidv4(),
        timestamp: '2023-01-09T13:01:01.593055',
        transactionId: uuidv4(),
        hiRequest: {
          consent: { id: uuidv4() },
          dateRange: { from: '2023-02-29T00:00:00', to: '2023-03-01' },
          dataPushUrl: 'http://127.0.0.1:9/push',
          keyMaterial: {
            cryptoAlg: 'ECDH',
            curve: 'Curve25519',
            dhPublicKey: { expiry: '2099-01-01T00:00:00', keyValue: 'AAAA' },
            nonce: 'AAAA',
          },
        },
      }),
    });
    expect(res.status).toBe(422);
    expect(JSON.stringify(await res.json())).toContain('hiRequest.dateRange.from');
  });
});
