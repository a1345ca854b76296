/**
 * Each configured limit, and the operational endpoints: entries per bundle,
 * string length, the per-client rate limit, metrics, production key refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { load } from '../support/fixtures.js';
import { loadPagingKeys } from '../../src/auth/paging-keys.js';
import { loadConfig } from '../../src/config.js';
import { KeyConfigError, loadVerifier } from '../../src/auth/keys.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    MAX_BUNDLE_ENTRIES: '12',
    MAX_STRING_LENGTH: '2000',
    RATE_LIMIT_PER_MINUTE: '60',
    RATE_LIMIT_BURST: '5',
  });
});
afterAll(async () => {
  await t?.close();
});

const upload = (body: string, facility: string) =>
  t.request('/fhir/Bundle', { method: 'POST', body, headers: uploadHeaders(), as: ['hip', facility] });
const fresh = (name: Parameters<typeof load>[0]) => {
  const b = load(name);
  b.identifier.value = uuidv4();
  return b;
};

describe('limits', () => {
  it('more entries than MAX_BUNDLE_ENTRIES → 422 too-costly, nothing stored', async () => {
    const b = fresh('discharge-summary');
    expect(b.entry.length).toBeGreaterThan(12);
    const res = await upload(JSON.stringify(b), 'H-ENTRIES');
    expect(res.status).toBe(422);
    const oo = await res.json();
    expect(oo.issue[0]).toMatchObject({ code: 'too-costly', expression: ['Bundle.entry'] });
    expect(await t.collections.versions.countDocuments({ provider: 'H-ENTRIES' })).toBe(0);
    expect((await upload(JSON.stringify(fresh('prescription')), 'H-ENTRIES')).status).toBe(201); // 10 entries: within the limit
  });

  it('a string longer than MAX_STRING_LENGTH → 400 too-long before parsing', async () => {
    const b = fresh('prescription');
    b.entry[0].resource.title = 'x'.repeat(2001);
    const res = await upload(JSON.stringify(b), 'H-STRING');
    expect(res.status).toBe(400);
    expect((await res.json()).issue[0].code).toBe('too-long');
  });

  it('per-client rate limit on expensive routes: 429 with Retry-After, other clients unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await t.request('/fhir/Bundle', { as: ['hip', 'H-RATE'] })).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    const limited = await t.request('/fhir/Bundle', { as: ['hip', 'H-RATE'] });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await limited.json()).issue[0].code).toBe('throttled');
    expect((await t.request('/fhir/Bundle', { as: ['hip', 'H-OTHER'] })).status).toBe(200);
    expect((await t.request('/healthz')).status).toBe(200); // cheap routes are not limited
  });
});

describe('metrics', () => {
  it('are served to admin only, and count requests and validation failures by rule', async () => {
    const b = fresh('prescription');
    delete b.timestamp;
    expect((await upload(JSON.stringify(b), 'H-METRICS')).status).toBe(422);
    expect((await t.app.request('/metrics')).status).toBe(401);
    expect((await t.request('/metrics', { as: ['hip', 'H1'] })).status).toBe(403);
    const res = await t.request('/metrics', { as: ['admin', 'ops'] });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/abha_vault_http_requests_total\{method="POST",route="\/fhir\/Bundle",status="422"\} \d+/);
    expect(text).toContain('abha_vault_validation_failures_total{code="required",rule="Bundle.timestamp"} 1');
    expect(text).toContain('abha_vault_http_request_duration_seconds_bucket');
  });
});

describe('keys', () => {
  it('NODE_ENV=production refuses to start without configured keys', async () => {
    const production = loadConfig({
      NODE_ENV: 'production',
      DATA_DIR: '/nonexistent',
      PUBLIC_BASE_URL: 'https://vault.example',
    });
    await expect(loadVerifier(production)).rejects.toBeInstanceOf(KeyConfigError);
    expect(() => loadPagingKeys(production)).toThrow(/PAGING_KEYS_FILE/);
  });
});
