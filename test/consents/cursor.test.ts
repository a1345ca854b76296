/**
 * Paging cursors are sealed and bound: a forged, edited, replayed-elsewhere or
 * expired cursor is 400 and never serves a page, so no cursor skips a
 * consent's frequency limit. A pull is counted once, at its first page; its
 * own next/previous links continue it without counting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { grantConsent } from '../support/consents.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';
import { CursorSealer, type CursorBinding } from '../../src/records/cursor.js';
import { FhirError } from '../../src/fhir/outcome.js';

let t: TestApp;
const g = createGenerator(7117);
const patient = g.patient();
const HIP = 'HIP-CUR',
  HIU = 'HIU-CUR';

beforeAll(async () => {
  t = await createTestApp();
  for (const date of ['2024-01-01T10:00:00Z', '2024-02-01T10:00:00Z', '2024-03-01T10:00:00Z', '2024-04-01T10:00:00Z']) {
    const rec = g.record(patient, 'Prescription', { date, careContext: { referenceNumber: 'CC-C', display: 'CC-C' } });
    const res = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(rec.bundle),
      headers: uploadHeaders('CC-C'),
      as: ['hip', HIP],
    });
    expect(res.status).toBe(201);
  }
});
afterAll(async () => {
  await t?.close();
});

async function grant(frequency: { unit: 'DAY' | 'HOUR'; value: number }) {
  const { consentId, res } = await grantConsent(t, {
    patient: patient.abhaAddress,
    hip: HIP,
    hiu: HIU,
    careContexts: ['CC-C'],
    frequency,
  });
  expect(res.status).toBe(202);
  return consentId;
}

const view = (path: string, consentId: string, as: [any, string] = ['hiu', HIU]) =>
  t.request(path.replace(/^https?:\/\/[^/]+/, ''), { as, headers: { 'X-Consent-Id': consentId } });
const nextOf = (b: { link: { relation: string; url: string }[] }) => b.link.find((l) => l.relation === 'next')?.url;
const cursorOf = (url: string) => new URL(url).searchParams.get('_cursor')!;

describe('forged or replayed paging cursors cannot skip the frequency limit', () => {
  it('with frequency 1 a DAY: a second pull is 429, a forged plain-JSON cursor is 400, the first pull’s own links continue it', async () => {
    t.clock.now = undefined;
    const consentId = await grant({ unit: 'DAY', value: 1 });
    const first = await view('/fhir/Bundle?_count=1', consentId);
    expect(first.status).toBe(200);
    const page1 = await first.json();
    expect(page1.entry).toHaveLength(1);
    expect((await view('/fhir/Bundle?_count=1', consentId)).status).toBe(429);

    const forged = Buffer.from(JSON.stringify({ d: 8640000000000000, i: '', dir: 'next' })).toString('base64url');
    for (let i = 0; i < 3; i++) {
      const res = await view(`/fhir/Bundle?_count=1&_cursor=${forged}`, consentId);
      expect(res.status).toBe(400);
      const oo = await res.json();
      expect(oo.resourceType).toBe('OperationOutcome');
      expect(oo.entry).toBeUndefined();
    }

    // The pull that was counted walks on, page by page, without being counted again.
    const seen = [page1.entry[0].fullUrl];
    let next = nextOf(page1);
    while (next) {
      const res = await view(next, consentId);
      expect(res.status, await res.clone().text()).toBe(200);
      const page = await res.json();
      seen.push(...page.entry.map((e: { fullUrl: string }) => e.fullUrl));
      next = nextOf(page);
    }
    expect(new Set(seen).size).toBe(4);
    expect(page1.total).toBe(4);
  });

  it('an edited cursor, or one used with another query, consent or caller, is 400', async () => {
    const consentId = await grant({ unit: 'HOUR', value: 100 });
    const other = await grant({ unit: 'HOUR', value: 100 });
    const page = await (await view('/fhir/Bundle?_count=1', consentId)).json();
    const cursor = cursorOf(nextOf(page)!);
    const flipped = cursor.slice(0, -2) + (cursor.at(-2) === 'A' ? 'B' : 'A') + cursor.at(-1);
    expect((await view(`/fhir/Bundle?_count=1&_cursor=${flipped}`, consentId)).status).toBe(400);
    expect((await view(`/fhir/Bundle?_count=1&type=Prescription&_cursor=${cursor}`, consentId)).status).toBe(400);
    expect((await view(`/fhir/Bundle?_count=1&_cursor=${cursor}`, other)).status).toBe(400);
    expect((await t.request(`/fhir/Bundle?_count=1&_cursor=${cursor}`, { as: ['hip', HIP] })).status).toBe(400);
    // the page size may change mid-walk; the cursor still opens
    expect((await view(`/fhir/Bundle?_count=2&_cursor=${cursor}`, consentId)).status).toBe(200);
  });

  it('a cursor expires PAGING_CURSOR_TTL_SEC after its pull began, however recently its page was served', async () => {
    const consentId = await grant({ unit: 'HOUR', value: 100 });
    const start = new Date();
    t.clock.now = start;
    try {
      const p1 = await (await view('/fhir/Bundle?_count=1', consentId)).json();
      t.clock.now = new Date(start.getTime() + (t.config.PAGING_CURSOR_TTL_SEC - 60) * 1000);
      const p2res = await view(nextOf(p1)!, consentId);
      expect(p2res.status).toBe(200);
      const p2 = await p2res.json();
      t.clock.now = new Date(start.getTime() + t.config.PAGING_CURSOR_TTL_SEC * 1000);
      expect((await view(nextOf(p2)!, consentId)).status).toBe(400);
    } finally {
      t.clock.now = undefined;
    }
  });

  it('a provider’s own cursors are sealed and bound to it too', async () => {
    const page = await (await t.request('/fhir/Bundle?_count=1', { as: ['hip', HIP] })).json();
    const next = nextOf(page)!;
    expect((await t.request(next.replace(/^https?:\/\/[^/]+/, ''), { as: ['hip', HIP] })).status).toBe(200);
    expect((await t.request(next.replace(/^https?:\/\/[^/]+/, ''), { as: ['hip', 'HIP-OTHER'] })).status).toBe(400);
  });
});

describe('CursorSealer', () => {
  const key = (kid: string) => ({ kid, secret: randomBytes(32) });
  const binding: CursorBinding = {
    role: 'hiu',
    facility: 'H',
    subject: 'H',
    consentId: 'c1',
    params: new URLSearchParams('type=Prescription&_count=5'),
  };
  const now = new Date('2026-01-01T00:00:00Z');

  it('opens what it sealed; a key rotated out of first place still opens its cursors, a dropped one does not', () => {
    const old = key('old'),
      fresh = key('new');
    const before = new CursorSealer({ keys: [old], source: 't' }, 60_000);
    const pull = before.startPull(now);
    const token = before.seal({ d: 5, i: 'r1', dir: 'next' }, pull, binding);
    const rotated = new CursorSealer({ keys: [fresh, old], source: 't' }, 60_000);
    expect(rotated.open(token, binding, now)).toEqual({ position: { d: 5, i: 'r1', dir: 'next' }, pull });
    expect(rotated.seal({ d: 5, i: 'r1', dir: 'next' }, pull, binding).startsWith('new.')).toBe(true);
    const dropped = new CursorSealer({ keys: [fresh], source: 't' }, 60_000);
    expect(() => dropped.open(token, binding, now)).toThrow(FhirError);
  });

  it('the query binding ignores parameter order and _count, and nothing else', () => {
    const s = new CursorSealer({ keys: [key('k')], source: 't' }, 60_000);
    const token = s.seal({ d: 1, i: 'x', dir: 'prev' }, s.startPull(now), binding);
    expect(
      s.open(token, { ...binding, params: new URLSearchParams('_count=9&type=Prescription') }, now).position.dir,
    ).toBe('prev');
    for (const b of [
      { ...binding, subject: 'other' },
      { ...binding, consentId: null },
      { ...binding, role: 'hip' },
      { ...binding, params: new URLSearchParams('type=Prescription&date=2024') },
    ]) {
      expect(() => s.open(token, b, now)).toThrow(FhirError);
    }
    for (const bad of ['', 'k.', 'k.AAAA', 'nokey', `k.${'A'.repeat(2000)}`])
      expect(() => s.open(bad, binding, now)).toThrow(FhirError);
  });
});
