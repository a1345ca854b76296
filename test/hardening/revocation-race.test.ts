/**
 * Concurrency: reads racing a revocation. Any read that starts after the
 * revocation was acknowledged (202) is refused; none serves under it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
});
afterAll(async () => {
  await t?.close();
});

describe('revocation racing reads', () => {
  it('no read that starts after the revocation is acknowledged serves under it', async () => {
    const g = createGenerator(55);
    const p = g.patient();
    const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: 'CC-R', display: 'R' } });
    const up = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(rec.bundle),
      headers: uploadHeaders('CC-R'),
      as: ['hip', 'HIP-R'],
    });
    const id = (await up.json()).id;
    const consentId = uuidv4();
    const cm = (notification: unknown) =>
      t.request('/v0.5/consents/hip/notify', {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ notification }),
      });
    expect(
      (
        await cm({
          consentId,
          status: 'GRANTED',
          consentDetail: {
            consentId,
            createdAt: '2025-01-01T00:00:00Z',
            patient: { id: p.abhaAddress },
            careContexts: [{ careContextReference: 'CC-R' }],
            purpose: { code: 'CAREMGT' },
            hip: { id: 'HIP-R' },
            hiu: { id: 'HIU-R' },
            hiTypes: ['Prescription'],
            permission: {
              accessMode: 'VIEW',
              dateRange: { from: '1900-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' },
              dataEraseAt: '2100-01-01T00:00:00Z',
              frequency: { unit: 'HOUR', value: 100000 },
            },
          },
        })
      ).status,
    ).toBe(202);

    let revokedAt = Infinity,
      stop = false;
    const reads: { start: number; status: number }[] = [];
    const reader = async () => {
      while (!stop) {
        const start = performance.now();
        const path = reads.length % 2 ? `/fhir/Bundle/${id}` : '/fhir/Bundle';
        const res = await t.request(path, { as: ['hiu', 'HIU-R'], headers: { 'X-Consent-Id': consentId } });
        await res.arrayBuffer();
        reads.push({ start, status: res.status });
      }
    };
    const readers = Array.from({ length: 6 }, reader);
    await new Promise((r) => setTimeout(r, 300));
    const res = await cm({ consentId, status: 'REVOKED' });
    expect(res.status).toBe(202);
    revokedAt = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(readers);

    const before = reads.filter((r) => r.start < revokedAt);
    const after = reads.filter((r) => r.start > revokedAt);
    expect(before.some((r) => r.status === 200)).toBe(true); // the consent did serve before
    expect(after.length).toBeGreaterThan(5);
    expect(after.filter((r) => r.status !== 403)).toEqual([]);
  });
});
