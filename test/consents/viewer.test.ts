/**
 * A viewer (hiu) fetching a patient's records under a consent, over HTTP on
 * the real database: what a live consent allows and nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { notifyConsent } from '../support/consents.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import type { ConsentDetail } from '../../src/consents/schema.js';

let t: TestApp;
const g = createGenerator(4242);
let patient: SyntheticPatient;
let stranger: SyntheticPatient;
/** The records uploaded for `patient` by HIP-1, with their index facts. */
const mine: { id: string; careContext: string; hiType: string; date: string }[] = [];

const HIP = 'HIP-1';
const HIU = 'HIU-1';
const KINDS = ['Prescription', 'DiagnosticReport', 'DischargeSummary'] as const;
const DATES = [
  '2023-01-10T09:00:00+05:30',
  '2023-06-15T09:00:00+05:30',
  '2024-02-01T09:00:00+05:30',
  '2024-08-20T09:00:00+05:30',
  '2025-03-05T09:00:00+05:30',
  '2025-05-30T09:00:00+05:30',
];

async function upload(
  hip: string,
  p: SyntheticPatient,
  kind: (typeof KINDS)[number],
  date: string,
  careContext: string,
) {
  const rec = g.record(p, kind, { date, careContext: { referenceNumber: careContext, display: careContext } });
  return t.upload(hip, rec.bundle, careContext);
}

beforeAll(async () => {
  t = await createTestApp();
  patient = g.patient();
  stranger = g.patient();
  for (let i = 0; i < 12; i++) {
    const kind = KINDS[i % 3],
      date = DATES[i % DATES.length],
      careContext = `CC-${i % 4}`;
    mine.push({ id: await upload(HIP, patient, kind, date, careContext), careContext, hiType: kind, date });
  }
  await upload('HIP-2', patient, 'Prescription', DATES[0], 'CC-0'); // same patient, another provider
  await upload(HIP, stranger, 'Prescription', DATES[0], 'CC-0'); // same provider, another patient
});
afterAll(async () => {
  await t?.close();
});

interface Terms {
  careContexts?: string[];
  hiTypes?: string[];
  from?: string;
  to?: string;
  dataEraseAt?: string;
  hip?: string;
  hiu?: string;
  patientId?: string;
  accessMode?: ConsentDetail['permission']['accessMode'];
  frequency?: { unit: 'HOUR' | 'DAY'; value: number };
}

async function grant(terms: Terms = {}): Promise<string> {
  const consentId = uuidv4();
  const detail: ConsentDetail = {
    schemaVersion: 'v0.5',
    consentId,
    createdAt: '2025-06-01T00:00:00Z',
    patient: { id: terms.patientId ?? patient.abhaAddress },
    careContexts: (terms.careContexts ?? ['CC-0', 'CC-1', 'CC-2', 'CC-3']).map((c) => ({
      patientReference: 'P',
      careContextReference: c,
    })),
    purpose: { code: 'CAREMGT', text: 'Care management' },
    hip: { id: terms.hip ?? HIP },
    hiu: { id: terms.hiu ?? HIU },
    hiTypes: (terms.hiTypes ?? [...KINDS]) as ConsentDetail['hiTypes'],
    permission: {
      accessMode: terms.accessMode ?? 'VIEW',
      dateRange: { from: terms.from ?? '2020-01-01T00:00:00Z', to: terms.to ?? '2030-01-01T00:00:00Z' },
      dataEraseAt: terms.dataEraseAt ?? '2099-01-01T00:00:00Z',
      frequency: { unit: terms.frequency?.unit ?? 'HOUR', value: terms.frequency?.value ?? 1000, repeats: 0 },
    },
  };
  const res = await notifyConsent(t, { consentId, status: 'GRANTED', consentDetail: detail }, 'v0.5');
  expect(res.status).toBe(202);
  return consentId;
}

async function revoke(consentId: string) {
  const res = await t.request('/v0.5/consents/hip/notify', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ notification: { consentId, status: 'REVOKED' } }),
  });
  expect(res.status).toBe(202);
}

const view = (path: string, consentId: string | undefined, hiu = HIU) =>
  t.request(path, { as: ['hiu', hiu], headers: consentId ? { 'X-Consent-Id': consentId } : {} });

async function all(consentId: string, query = '', count = 50): Promise<{ ids: string[]; totals: number[] }> {
  const ids: string[] = [],
    totals: number[] = [];
  let next: string | undefined = `/fhir/Bundle?_count=${count}${query}`;
  while (next) {
    const res = await view(next, consentId);
    expect(res.status, await res.clone().text()).toBe(200);
    const page = await res.json();
    totals.push(page.total);
    ids.push(...(page.entry ?? []).map((e: any) => e.resource.id));
    const link = page.link.find((l: any) => l.relation === 'next');
    next = link ? new URL(link.url).pathname + new URL(link.url).search : undefined;
  }
  return { ids, totals };
}

const expected = (f: (r: (typeof mine)[number]) => boolean) =>
  mine
    .filter(f)
    .map((r) => r.id)
    .sort();

describe('a viewer under a live consent', () => {
  it('sees exactly the consented records, with totals that count only those', async () => {
    const id = await grant({
      careContexts: ['CC-0', 'CC-1'],
      hiTypes: ['Prescription', 'DischargeSummary'],
      from: '2023-06-15T03:30:00Z',
      to: '2025-03-05T03:30:00Z',
    });
    const want = expected(
      (r) =>
        ['CC-0', 'CC-1'].includes(r.careContext) &&
        r.hiType !== 'DiagnosticReport' &&
        r.date >= DATES[1] &&
        r.date <= DATES[4],
    );
    expect(want.length).toBeGreaterThan(0);
    expect(want.length).toBeLessThan(mine.length);
    for (const count of [1, 2, 5, 50]) {
      const { ids, totals } = await all(id, '', count);
      expect(ids.sort()).toEqual(want);
      expect(new Set(totals)).toEqual(new Set([want.length]));
    }
  });

  it('search parameters narrow within the consent, never beyond it', async () => {
    const id = await grant({ hiTypes: ['Prescription'] });
    const { ids, totals } = await all(id, '&type=DischargeSummary');
    expect(ids).toEqual([]);
    expect(totals).toEqual([0]);
    const rx = await all(id, `&type=Prescription&patient-abha=${stranger.abhaAddress}`);
    expect(rx.ids).toEqual([]);
  });

  it('reads one consented record by id; a record outside the consent is 404', async () => {
    const id = await grant({ hiTypes: ['Prescription'] });
    const rx = mine.find((r) => r.hiType === 'Prescription')!;
    const ds = mine.find((r) => r.hiType === 'DischargeSummary')!;
    const ok = await view(`/fhir/Bundle/${rx.id}`, id);
    expect(ok.status).toBe(200);
    expect((await ok.json()).id).toBe(rx.id);
    const no = await view(`/fhir/Bundle/${ds.id}`, id);
    expect(no.status).toBe(404);
    const body = await no.json();
    expect(body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(body)).not.toContain('record type'); // the reason is audited, not told
  });

  it('dateRange edges are inclusive; a millisecond outside is excluded', async () => {
    const d = new Date(DATES[2]).toISOString();
    const at = await all(await grant({ from: d, to: d }));
    expect(at.ids.sort()).toEqual(expected((r) => r.date === DATES[2]));
    const before = await all(
      await grant({ from: new Date(Date.parse(d) + 1).toISOString(), to: '2030-01-01T00:00:00Z' }),
    );
    expect(before.ids).not.toContain(mine.find((r) => r.date === DATES[2])!.id);
    const after = await all(
      await grant({ from: '2020-01-01T00:00:00Z', to: new Date(Date.parse(d) - 1).toISOString() }),
    );
    expect(after.ids).not.toContain(mine.find((r) => r.date === DATES[2])!.id);
  });

  it('hiTypes and care contexts just outside the consent are not served', async () => {
    const onlyCc3 = await all(await grant({ careContexts: ['CC-3'] }));
    expect(onlyCc3.ids.sort()).toEqual(expected((r) => r.careContext === 'CC-3'));
    const onlyDr = await all(await grant({ hiTypes: ['DiagnosticReport'] }));
    expect(onlyDr.ids.sort()).toEqual(expected((r) => r.hiType === 'DiagnosticReport'));
    const unknownCc = await all(await grant({ careContexts: ['CC-9'] }));
    expect(unknownCc).toEqual({ ids: [], totals: [0] });
  });

  it('matches the patient by ABHA number as well as by address', async () => {
    const byNumber = await all(await grant({ patientId: patient.abhaNumber }));
    expect(byNumber.ids.sort()).toEqual(mine.map((r) => r.id).sort());
  });
});

describe('refusals', () => {
  it("a consent for another patient or another provider serves nothing of this patient's here", async () => {
    const other = await all(await grant({ patientId: stranger.abhaAddress }));
    expect(other.ids).toHaveLength(1); // the stranger's one record at HIP-1
    expect(other.ids).not.toContain(mine[0].id);
    const elsewhere = await all(await grant({ hip: 'HIP-2' }));
    expect(elsewhere.ids).toHaveLength(1); // HIP-2's record, not HIP-1's
    expect(mine.map((r) => r.id)).not.toContain(elsewhere.ids[0]);
  });

  it("a viewer using another HIU's consent is refused (403)", async () => {
    const id = await grant({ hiu: 'HIU-OTHER' });
    const res = await view('/fhir/Bundle', id, HIU);
    expect(res.status).toBe(403);
    expect((await res.json()).issue[0].code).toBe('forbidden');
    expect((await view(`/fhir/Bundle/${mine[0].id}`, id, HIU)).status).toBe(403);
  });

  it('no X-Consent-Id → 400; an unknown consent → 403; a STREAM consent is not fetched directly', async () => {
    expect((await view('/fhir/Bundle', undefined)).status).toBe(400);
    expect((await view('/fhir/Bundle', uuidv4())).status).toBe(403);
    const stream = await grant({ accessMode: 'STREAM' });
    expect((await view('/fhir/Bundle', stream)).status).toBe(403);
  });

  it('cm and admin cannot search records; a hip sees only its own, consent header or not', async () => {
    const id = await grant();
    expect((await t.request('/fhir/Bundle', { as: ['cm', 'sbx'], headers: { 'X-Consent-Id': id } })).status).toBe(403);
    expect((await t.request('/fhir/Bundle', { as: ['admin', 'ops'], headers: { 'X-Consent-Id': id } })).status).toBe(
      403,
    );
    const hip2 = await (
      await t.request('/fhir/Bundle', { as: ['hip', 'HIP-2'], headers: { 'X-Consent-Id': id } })
    ).json();
    expect(hip2.total).toBe(1);
  });

  it('revocation in the middle of paging: the next page is refused', async () => {
    const id = await grant();
    const first = await view('/fhir/Bundle?_count=3', id);
    expect(first.status).toBe(200);
    const page = await first.json();
    const next = new URL(page.link.find((l: any) => l.relation === 'next').url);
    await revoke(id);
    const res = await view(next.pathname + next.search, id);
    expect(res.status).toBe(403);
    expect((await res.json()).issue[0].diagnostics).toContain('REVOKED');
    expect((await view(`/fhir/Bundle/${mine[0].id}`, id)).status).toBe(403);
  });

  it('expiry exactly at dataEraseAt, with a fixed clock', async () => {
    const eraseAt = '2026-12-01T00:00:00.000Z';
    const id = await grant({ dataEraseAt: eraseAt });
    try {
      t.clock.now = new Date(Date.parse(eraseAt) - 1);
      expect((await view('/fhir/Bundle', id)).status).toBe(200);
      t.clock.now = new Date(eraseAt);
      const res = await view('/fhir/Bundle', id);
      expect(res.status).toBe(403);
      expect((await res.json()).issue[0].diagnostics).toContain('dataEraseAt');
      // the sweep then erases the terms, keeping id, status and times
      expect(await t.consents.sweep(new Date(eraseAt))).toBe(1);
      const stored = await t.consents.get(id);
      expect(stored).toMatchObject({ _id: id, status: 'EXPIRED' });
      expect(stored!.terms).toBeUndefined();
      expect(stored!.artefact).toBeUndefined();
    } finally {
      t.clock.now = undefined;
    }
  });

  it('frequency is a rate limit per consent: 429 with Retry-After, paging within a pull is free', async () => {
    const id = await grant({ frequency: { unit: 'HOUR', value: 2 } });
    t.clock.now = new Date('2026-11-25T10:15:00Z');
    try {
      const first = await view('/fhir/Bundle?_count=2', id);
      expect(first.status).toBe(200);
      const next = new URL((await first.json()).link.find((l: any) => l.relation === 'next').url);
      expect((await view(next.pathname + next.search, id)).status).toBe(200); // the same pull
      expect((await view('/fhir/Bundle', id)).status).toBe(200);
      const third = await view('/fhir/Bundle', id);
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).toBe(String(45 * 60));
      expect((await third.json()).issue[0].code).toBe('throttled');
      t.clock.now = new Date('2026-11-25T11:00:00Z'); // the next hour
      expect((await view('/fhir/Bundle', id)).status).toBe(200);
    } finally {
      t.clock.now = undefined;
    }
  });
});
