// FHIR's Prefer: return=minimal on upload: the same storing, status, Location and ETag, and no body.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => t?.close());
const g = createGenerator(515);

describe('Prefer: return=minimal', () => {
  it('answers 201 and then 200 with Location and ETag and no body; the record is stored as without it', async () => {
    const [r] = g.records(g.patient(), 1);
    const body = JSON.stringify(r.bundle);
    const post = (prefer?: string) =>
      t.request('/fhir/Bundle', {
        method: 'POST',
        body,
        headers: uploadHeaders('CC-PREFER', prefer ? { Prefer: prefer } : {}),
        as: ['hip', 'HOSP-PREFER'],
      });
    const first = await post('return=minimal');
    expect(first.status).toBe(201);
    expect(await first.text()).toBe('');
    expect(first.headers.get('preference-applied')).toBe('return=minimal');
    expect(first.headers.get('etag')).toBe('W/"1"');
    const location = first.headers.get('location')!;
    expect(location).toMatch(/\/fhir\/Bundle\/[0-9a-f-]{36}\/_history\/1$/);
    const repeat = await post('handling=strict, return=minimal');
    expect(repeat.status).toBe(200);
    expect(await repeat.text()).toBe('');
    const full = await post('return=representation');
    expect(full.status).toBe(200);
    const stored = await full.json();
    expect(location).toContain(`/fhir/Bundle/${stored.id}/_history/1`);
    expect(stored.identifier).toEqual(r.bundle.identifier);
    const read = await t.request(`/fhir/Bundle/${stored.id}`, { as: ['hip', 'HOSP-PREFER'] });
    expect(await read.json()).toEqual(stored);
  });
});
