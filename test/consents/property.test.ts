/**
 * Property: over HTTP on the real database, what a viewer (hiu) is served
 * under a consent is exactly what the pure policy `decide` allows, whatever
 * the consent and page size: the same set of ids, the right `total` on every
 * page, pages no larger than _count, no id twice; and a read by id answers
 * 200 for an allowed record and 404 for any other.
 *
 * One record set is uploaded once per file (3 patients, 2 providers, 4 care
 * contexts, 3 hiTypes, dates spread over 2019-2025 with ties); fast-check
 * generates the consents.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator, RECORD_KINDS, type SyntheticPatient } from '../../fixtures/generator.js';
import { consentUsable, decide, type Viewer } from '../../src/consents/policy.js';
import { ACCESS_MODES, ConsentNotifyV3, HI_TYPES } from '../../src/consents/schema.js';
import type { CurrentDoc } from '../../src/records/model.js';

const PROVIDERS = ['HIP-A', 'HIP-B'] as const;
const HIPS = [...PROVIDERS, 'HIP-C'] as const; // HIP-C holds no records
const HIUS = ['HIU-1', 'HIU-2'] as const;
const CARE_CONTEXTS = ['CC-1', 'CC-2', 'CC-3', 'CC-4'] as const;
const CONSENT_CARE_CONTEXTS = [...CARE_CONTEXTS, 'CC-5'] as const; // CC-5 holds no records
const N_RECORDS = 40;

const IST_OFFSET_MS = 330 * 60_000;
const DAY = 86_400_000;
/** epoch ms → "YYYY-MM-DDTHH:MM:SS+05:30" */
const istDateTime = (ms: number) => `${new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 19)}+05:30`;
/** 26 distinct instants, whole seconds, 2019-01-15 to about 2025-08 (40 records over them: some share a date). */
const DATES = Array.from(
  { length: 26 },
  (_, k) => Date.UTC(2019, 0, 15, 5, 0, 0) + k * 97 * DAY + (k % 5) * 3_600_000 + (k % 7) * 61_000,
);
const DATE_MIN = Date.UTC(2018, 0, 1),
  DATE_MAX = Date.UTC(2026, 11, 31);
/**
 * What record i is: its patient (index), provider, care context, kind and date
 * (whole seconds). Record i-6 has the same patient and provider; every fourth
 * record from i = 7 takes its date (7 that of 1, 11 that of 5, ...), so pairs
 * of one patient's records at one provider share a date, and a page boundary
 * can fall between records of equal date.
 */
const PLAN: {
  patient: number;
  provider: (typeof PROVIDERS)[number];
  cc: (typeof CARE_CONTEXTS)[number];
  kind: (typeof RECORD_KINDS)[number];
  date: number;
}[] = [];
for (let i = 0; i < N_RECORDS; i++) {
  PLAN.push({
    patient: i % 3,
    provider: PROVIDERS[Math.floor(i / 3) % 2],
    cc: CARE_CONTEXTS[(i * 7 + Math.floor(i / 6)) % 4],
    kind: RECORD_KINDS[(i * 5 + Math.floor(i / 4)) % 3],
    date: i >= 6 && i % 4 === 3 ? PLAN[i - 6].date : DATES[(i * 11) % DATES.length],
  });
}

let t: TestApp;
let NOW: Date;
let patients: SyntheticPatient[];
let records: CurrentDoc[];

beforeAll(async () => {
  t = await createTestApp();
  NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
  t.clock.now = NOW;
  const g = createGenerator(20250601);
  patients = [g.patient(), g.patient(), g.patient()];
  const uploads = PLAN.map((u) => {
    const rec = g.record(patients[u.patient], u.kind, {
      date: istDateTime(u.date),
      careContext: { referenceNumber: u.cc, display: `Visit ${u.cc}` },
      entries: 6,
    });
    return { provider: u.provider, cc: u.cc, body: JSON.stringify(rec.bundle) };
  });
  for (let i = 0; i < uploads.length; i += 8) {
    const batch = uploads.slice(i, i + 8);
    const res = await Promise.all(
      batch.map((u) =>
        t.request('/fhir/Bundle', {
          method: 'POST',
          body: u.body,
          headers: uploadHeaders(u.cc),
          as: ['hip', u.provider],
        }),
      ),
    );
    for (const r of res) expect(r.status, await r.clone().text()).toBe(201);
  }
  records = await t.collections.current.find({}).toArray();
  expect(records).toHaveLength(N_RECORDS);
  // the record set covers what the property needs
  expect(new Set(records.map((r) => r.provider)).size).toBe(2);
  expect(new Set(records.map((r) => r.abhaAddress)).size).toBe(3);
  expect(new Set(records.map((r) => r.careContext)).size).toBe(4);
  expect(new Set(records.map((r) => r.hiType)).size).toBe(3);
  // ties within one patient at one provider exercise the keyset's id tie-break
  const sameDate = new Map<string, number>();
  for (const r of records) {
    const k = `${r.provider}|${r.abhaAddress}|${r.recordDate.getTime()}`;
    sameDate.set(k, (sameDate.get(k) ?? 0) + 1);
  }
  expect([...sameDate.values()].filter((n) => n >= 2).length).toBeGreaterThanOrEqual(5);
}, 240_000);

afterAll(async () => {
  await t?.close();
});

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** A date near a record date (exactly, or 1 ms either side), or anywhere in 2018-2026. */
const dateArb = fc.oneof(
  fc.tuple(fc.constantFrom(...DATES), fc.constantFrom(-1, 0, 0, 1)).map(([d, off]) => d + off),
  fc.integer({ min: DATE_MIN, max: DATE_MAX }),
);

type PatientForm = 'address' | 'ADDRESS' | 'Address' | 'number-dashed' | 'number-plain';
const randomConsentArb = fc.record({
  patient: fc.integer({ min: 0, max: 3 }), // 3: a patient with no records
  form: fc.constantFrom<PatientForm>('address', 'ADDRESS', 'Address', 'number-dashed', 'number-plain'),
  hip: fc.constantFrom(...HIPS),
  hiu: fc.option(fc.constantFrom(...HIUS), { freq: 12, nil: undefined }),
  careContexts: fc.subarray([...CONSENT_CARE_CONTEXTS], { minLength: 1 }),
  hiTypes: fc.subarray([...HI_TYPES], { minLength: 1 }),
  accessMode: fc.constantFrom(...ACCESS_MODES, 'VIEW', 'QUERY'), // STREAM less often
  dates: fc.tuple(dateArb, dateArb).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]),
  /** dataEraseAt relative to now: mostly ahead; sometimes exactly now or past (consent unusable). */
  eraseOffset: fc.oneof(
    { weight: 10, arbitrary: fc.constant(DAY) },
    { weight: 1, arbitrary: fc.constantFrom(0, -1, -DAY) },
  ),
  /** the viewer's facility: the consent's HIU most of the time. */
  viewer: fc.oneof(
    { weight: 6, arbitrary: fc.constant('consent-hiu' as const) },
    { weight: 1, arbitrary: fc.constantFrom(...HIUS) },
  ),
  count: fc.integer({ min: 1, max: 7 }),
  readAllowed: fc.nat(),
  readDenied: fc.nat(),
});
type ConsentCase = typeof randomConsentArb extends fc.Arbitrary<infer T> ? T : never;

/**
 * A consent built around one uploaded record, so that it matches that record
 * on patient, provider, care context and type, and has dateFrom or dateTo (or
 * both) exactly at, or 1 ms beside, the record's date: the boundaries get hit.
 */
const TIED = PLAN.map((r, i) => i).filter((i) =>
  PLAN.some(
    (o, j) => j !== i && o.date === PLAN[i].date && o.patient === PLAN[i].patient && o.provider === PLAN[i].provider,
  ),
);
const anchorArb = fc.oneof(fc.integer({ min: 0, max: N_RECORDS - 1 }), fc.constantFrom(...TIED));
const anchoredConsentArb: fc.Arbitrary<ConsentCase> = fc
  .tuple(
    randomConsentArb,
    anchorArb,
    fc.constantFrom('from', 'to', 'both'),
    fc.constantFrom(0, 0, 0, -1, 1),
    dateArb,
    fc.boolean(),
  )
  .map(([c0, i, end, off, other, wide]) => {
    // wide: every care context and type, so records that share the anchor's date are served together
    const c = wide ? { ...c0, careContexts: [...CONSENT_CARE_CONTEXTS], hiTypes: [...HI_TYPES] } : c0;
    const r = PLAN[i];
    const at = r.date + off;
    const dates: [number, number] =
      end === 'both' ? [at, at] : end === 'from' ? [at, Math.max(at, other)] : [Math.min(at, other), at];
    return {
      ...c,
      patient: r.patient,
      hip: r.provider,
      hiu: c.hiu ?? 'HIU-2',
      careContexts: c.careContexts.includes(r.cc) ? c.careContexts : [...c.careContexts, r.cc],
      hiTypes: c.hiTypes.includes(r.kind) ? c.hiTypes : [r.kind, ...c.hiTypes],
      accessMode: c.accessMode === 'STREAM' ? 'STORE' : c.accessMode,
      eraseOffset: DAY,
      viewer: 'consent-hiu' as const,
      dates,
    };
  });
const consentArb = fc.oneof(randomConsentArb, anchoredConsentArb);

function patientId(c: ConsentCase): string {
  if (c.patient === 3) return c.form.startsWith('number') ? '91-0000-0000-0001' : 'nobody.here@sbx';
  const p = patients[c.patient];
  switch (c.form) {
    case 'address':
      return p.abhaAddress;
    case 'ADDRESS':
      return p.abhaAddress.toUpperCase();
    case 'Address':
      return p.abhaAddress[0].toUpperCase() + p.abhaAddress.slice(1, -3) + p.abhaAddress.slice(-3).toUpperCase();
    case 'number-dashed':
      return p.abhaNumber;
    case 'number-plain':
      return p.abhaNumber.replace(/-/g, '');
  }
}

/** Grants the case's consent through the store (as the notify route would) and returns its id. */
async function grant(c: ConsentCase): Promise<string> {
  const consentId = uuidv4();
  const parsed = ConsentNotifyV3.parse({
    notification: {
      consentId,
      status: 'GRANTED',
      consentDetail: {
        schemaVersion: 'v0.5',
        consentId,
        createdAt: new Date(NOW.getTime() - 60_000).toISOString(),
        patient: { id: patientId(c) },
        careContexts: c.careContexts.map((careContextReference) => ({
          patientReference: 'PAT-REF',
          careContextReference,
        })),
        purpose: { code: 'CAREMGT', text: 'Care Management' },
        hip: { id: c.hip },
        ...(c.hiu ? { hiu: { id: c.hiu } } : {}),
        hiTypes: c.hiTypes,
        permission: {
          accessMode: c.accessMode,
          dateRange: { from: new Date(c.dates[0]).toISOString(), to: new Date(c.dates[1]).toISOString() },
          dataEraseAt: new Date(NOW.getTime() + c.eraseOffset).toISOString(),
          frequency: { unit: 'HOUR', value: 1000, repeats: 0 },
        },
      },
    },
  });
  expect(await t.consents.apply(parsed.notification, new Date())).toBe('stored');
  return consentId;
}

const idOfUrl = (u: string) => new URL(u).pathname.split('/').pop()!;
const pathOf = (u: string) => {
  const x = new URL(u);
  return `${x.pathname}${x.search}`;
};

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

describe('consent-gated search and read over HTTP equal the pure policy', () => {
  it('serves exactly the records decide() allows, with the right total, page sizes and no repeats', async () => {
    let served = 0,
      usableCases = 0;
    await fc.assert(
      fc.asyncProperty(consentArb, async (c) => {
        const consentId = await grant(c);
        const consent = await t.consents.get(consentId);
        expect(consent?.status).toBe('GRANTED');
        const facility = c.viewer === 'consent-hiu' ? (c.hiu ?? 'HIU-1') : c.viewer;
        const viewer: Viewer = { role: 'hiu', facilityId: facility };
        const as: ['hiu', string] = ['hiu', facility];
        const headers = { 'X-Consent-Id': consentId };

        const allowed = new Set(records.filter((r) => decide(consent, r, viewer, NOW).allow).map((r) => r._id));
        const denied = records.filter((r) => !allowed.has(r._id)).map((r) => r._id);

        if (!consentUsable(consent, viewer, NOW).allow) {
          // the consent itself is unusable for this viewer now: every fetch is refused
          expect(allowed.size).toBe(0);
          const res = await t.request(`/fhir/Bundle?_count=${c.count}`, { as, headers });
          expect(res.status).toBe(403);
          const one = await t.request(`/fhir/Bundle/${records[c.readDenied % records.length]._id}`, { as, headers });
          expect(one.status).toBe(403);
          return;
        }
        usableCases++;

        // page through following `next`
        const seen: string[] = [];
        let path: string | undefined = `/fhir/Bundle?_count=${c.count}`;
        let pages = 0;
        const maxPages = Math.ceil(allowed.size / c.count) + 1;
        while (path) {
          pages++;
          expect(pages, 'too many pages').toBeLessThanOrEqual(maxPages);
          const res = await t.request(path, { as, headers });
          expect(res.status, await res.clone().text()).toBe(200);
          const body = (await res.json()) as fhir4.Bundle;
          expect(body.type).toBe('searchset');
          expect(body.total).toBe(allowed.size);
          const entries = body.entry ?? [];
          expect(entries.length).toBeLessThanOrEqual(c.count);
          for (const e of entries) {
            const id = idOfUrl(e.fullUrl!);
            expect((e.resource as fhir4.Bundle).id).toBe(id);
            expect(seen, `id ${id} served twice`).not.toContain(id);
            seen.push(id);
          }
          const next = body.link?.find((l) => l.relation === 'next');
          if (next) expect(entries.length).toBe(c.count); // only full pages have a next page
          path = next ? pathOf(next.url) : undefined;
        }
        expect(new Set(seen)).toEqual(allowed);
        // newest first
        const dates = seen.map((id) => records.find((r) => r._id === id)!.recordDate.getTime());
        expect(dates).toEqual([...dates].sort((a, b) => b - a));
        served += seen.length;

        // read by id: an allowed record is served, any other is not found
        if (allowed.size > 0) {
          const id = [...allowed][c.readAllowed % allowed.size];
          const res = await t.request(`/fhir/Bundle/${id}`, { as, headers });
          expect(res.status).toBe(200);
          expect((await res.json()).id).toBe(id);
        }
        if (denied.length > 0) {
          for (const id of new Set([
            denied[c.readDenied % denied.length],
            denied[(c.readDenied + 7) % denied.length],
          ])) {
            const res = await t.request(`/fhir/Bundle/${id}`, { as, headers });
            expect(res.status, `record ${id} read under consent ${consentId}`).toBe(404);
          }
        }
      }),
      { numRuns: 40, interruptAfterTimeLimit: 50_000 },
    );
    // the generated consents were not all vacuous
    expect(usableCases).toBeGreaterThan(0);
    expect(served).toBeGreaterThan(0);
  }, 120_000);

  it('serves a hand-picked wide consent: everything of one patient at one provider', async () => {
    const c: ConsentCase = {
      patient: 0,
      form: 'ADDRESS',
      hip: 'HIP-A',
      hiu: 'HIU-1',
      careContexts: [...CARE_CONTEXTS],
      hiTypes: [...HI_TYPES],
      accessMode: 'VIEW',
      dates: [DATE_MIN, DATE_MAX],
      eraseOffset: DAY,
      viewer: 'consent-hiu',
      count: 100,
      readAllowed: 0,
      readDenied: 0,
    };
    const consentId = await grant(c);
    const expected = records
      .filter((r) => r.provider === 'HIP-A' && r.abhaAddress === patients[0].abhaAddress.toLowerCase())
      .map((r) => r._id);
    expect(expected.length).toBeGreaterThan(2);
    const res = await t.request('/fhir/Bundle?_count=100', {
      as: ['hiu', 'HIU-1'],
      headers: { 'X-Consent-Id': consentId },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as fhir4.Bundle;
    expect(body.total).toBe(expected.length);
    expect(new Set(body.entry!.map((e) => idOfUrl(e.fullUrl!)))).toEqual(new Set(expected));
  });
});
