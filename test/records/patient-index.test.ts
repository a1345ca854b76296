/**
 * The patient index (src/records/patient-index.ts) and the in-memory filter
 * evaluation it is read with (src/records/match.ts):
 * - matchesFilter agrees with the database on every filter shape the store builds;
 * - a provider's search by patient (answered from the index) serves exactly
 *   what a query of the records collection serves, page by page, both ways;
 * - an index missing from an older store is built at start;
 * - an entry that lags its record never widens what is served;
 * - concurrent uploads of one patient's records lose no entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator, RECORD_KINDS, type SyntheticPatient } from '../../fixtures/generator.js';
import { collections, ensureIndexes, type CurrentDoc } from '../../src/records/model.js';
import { matchesFilter, UnsupportedFilterError } from '../../src/records/match.js';
import { cursorFilter, parseSearch } from '../../src/records/search.js';
import { keysOf } from '../../src/records/patient-index.js';

let t: TestApp;
const g = createGenerator(424242);
let patients: SyntheticPatient[];
const HIP = 'IDX-HIP';
const CCS = ['CC-A', 'CC-B', 'CC-C'];
const ISO = (ms: number) => `${new Date(ms + 330 * 60_000).toISOString().slice(0, 19)}+05:30`;
const DAY = 86_400_000;
const BASE = Date.UTC(2022, 0, 1);

beforeAll(async () => {
  t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
  patients = [g.patient(), g.patient()];
  // 30 records: two patients, three care contexts, every kind, dates with ties.
  const bodies = Array.from({ length: 30 }, (_, i) => {
    const cc = CCS[i % 3];
    const rec = g.record(patients[i % 2], RECORD_KINDS[(i * 7) % 3], {
      date: ISO(BASE + (i % 11) * 40 * DAY),
      careContext: { referenceNumber: cc, display: cc },
      entries: 6,
    });
    return { cc, body: JSON.stringify(rec.bundle) };
  });
  for (let i = 0; i < bodies.length; i += 10) {
    const res = await Promise.all(
      bodies
        .slice(i, i + 10)
        .map((b) =>
          t.request('/fhir/Bundle', { method: 'POST', body: b.body, headers: uploadHeaders(b.cc), as: ['hip', HIP] }),
        ),
    );
    for (const r of res) expect(r.status).toBe(201);
  }
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const byNewest = { recordDate: -1, _id: -1 } as const;

/** Every page of a search, following next links from the first page; ids in order, and the totals seen. */
async function walk(query: string, facility = HIP): Promise<{ ids: string[]; totals: number[]; lastLinks: any[] }> {
  const ids: string[] = [],
    totals: number[] = [];
  let url: string | undefined = `/fhir/Bundle?${query}`;
  let lastLinks: any[] = [];
  for (let guard = 0; url && guard < 100; guard++) {
    const res = await t.request(url, { as: ['hip', facility] });
    expect(res.status, await res.clone().text()).toBe(200);
    const b = await res.json();
    totals.push(b.total);
    ids.push(...(b.entry ?? []).map((e: any) => e.resource.id));
    lastLinks = b.link;
    const next = b.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
    url = next ? next.slice(next.indexOf('/fhir/')) : undefined;
  }
  return { ids, totals, lastLinks };
}

describe('matchesFilter agrees with the database', () => {
  it('on the filter shapes search, consents and cursors build', async () => {
    const docs = (await t.collections.current.find({}).toArray()) as CurrentDoc[];
    const dates = [...new Set(docs.map((d) => d.recordDate.getTime()))];
    const dateArb = fc.oneof(
      fc.constantFrom(...dates).chain((d) => fc.constantFrom(d - 1, d, d + 1)),
      fc.integer({ min: BASE - 100 * DAY, max: BASE + 600 * DAY }),
    );
    const fieldArb = fc.record({
      abha: fc.option(fc.constantFrom(...patients.flatMap((p) => [p.abhaAddress, p.abhaNumber])), { nil: undefined }),
      careContext: fc.option(fc.constantFrom(...CCS, 'CC-none'), { nil: undefined }),
      type: fc.option(fc.constantFrom(...RECORD_KINDS), { nil: undefined }),
      dates: fc.array(fc.tuple(fc.constantFrom('eq', 'ge', 'gt', 'le', 'lt'), dateArb), { maxLength: 2 }),
      scopeCcs: fc.option(fc.subarray([...CCS, 'CC-none'], { minLength: 1 }), { nil: undefined }),
      scopeTypes: fc.option(fc.subarray([...RECORD_KINDS], { minLength: 1 }), { nil: undefined }),
      scopeRange: fc.option(fc.tuple(dateArb, dateArb), { nil: undefined }),
      cursor: fc.option(
        fc.record({ at: fc.constantFrom(...docs), dir: fc.constantFrom('next' as const, 'prev' as const) }),
        { nil: undefined },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fieldArb, async (f) => {
        const params = new URLSearchParams();
        if (f.abha) params.set('patient-abha', f.abha);
        if (f.careContext) params.set('care-context', f.careContext);
        if (f.type) params.set('type', f.type);
        for (const [p, d] of f.dates) params.append('date', `${p}${new Date(d).toISOString()}`);
        const q = parseSearch(params, { defaultCount: 20, maxCount: 100, hiTypes: RECORD_KINDS });
        const scope: Record<string, unknown> = { provider: HIP };
        if (f.scopeCcs) scope.careContext = { $in: f.scopeCcs };
        if (f.scopeTypes) scope.hiType = { $in: f.scopeTypes };
        if (f.scopeRange)
          scope.recordDate = { $gte: new Date(Math.min(...f.scopeRange)), $lte: new Date(Math.max(...f.scopeRange)) };
        const parts: object[] = [q.filter, scope];
        if (f.cursor)
          parts.push(cursorFilter({ d: f.cursor.at.recordDate.getTime(), i: f.cursor.at._id, dir: f.cursor.dir }));
        const filter = { $and: parts };
        const fromDb = (
          await t.collections.current
            .find(filter as any)
            .sort(byNewest)
            .toArray()
        )
          .map((d) => d._id)
          .sort();
        const inMemory = docs
          .filter((d) => matchesFilter(d, filter))
          .map((d) => d._id)
          .sort();
        expect(inMemory).toEqual(fromDb);
      }),
      { numRuns: 120 },
    );
  }, 120_000);

  it('refuses operators it does not know instead of guessing', () => {
    for (const f of [
      { a: { $ne: 1 } },
      { $nor: [] },
      { a: { $regex: 'x' } },
      { 'a.b': 1 },
      { a: { b: 1 } },
      { $where: 'true' },
    ]) {
      expect(() => matchesFilter({ a: 1 }, f), JSON.stringify(f)).toThrow(UnsupportedFilterError);
    }
  });
});

describe('search by patient from the index', () => {
  const queries = (p: SyntheticPatient) => [
    `patient-abha=${encodeURIComponent(p.abhaAddress)}`,
    `patient-abha=${p.abhaNumber}`,
    `patient-abha=${p.abhaNumber.replaceAll('-', '')}&type=Prescription`,
    `patient-abha=${encodeURIComponent(p.abhaAddress.toUpperCase())}&care-context=CC-B`,
    `patient-abha=${encodeURIComponent(p.abhaAddress)}&date=ge2022-03&date=lt2023`,
  ];

  it('serves what a query of the records collection serves, in order, on every page size', async () => {
    for (const p of patients) {
      for (const query of queries(p)) {
        const q = parseSearch(new URLSearchParams(query), { defaultCount: 20, maxCount: 100, hiTypes: RECORD_KINDS });
        const expected = (
          await t.collections.current
            .find({ $and: [q.filter, { provider: HIP }] } as any)
            .sort(byNewest)
            .toArray()
        ).map((d) => d._id);
        expect(expected.length, query).toBeGreaterThan(0);
        for (const count of [1, 2, 7, 100]) {
          const { ids, totals } = await walk(`${query}&_count=${count}`);
          expect(ids, `${query} _count=${count}`).toEqual(expected);
          expect(new Set(totals)).toEqual(new Set([expected.length]));
        }
      }
    }
  }, 120_000);

  it('previous links walk back over the same pages', async () => {
    const p = patients[0];
    const query = `patient-abha=${encodeURIComponent(p.abhaAddress)}&_count=3`;
    const forward = await walk(query);
    // From the last page, follow previous links to the start.
    let links = forward.lastLinks;
    const back: string[][] = [];
    for (let guard = 0; guard < 50; guard++) {
      const prev = links.find((l: any) => l.relation === 'previous')?.url as string | undefined;
      if (!prev) break;
      const b = await (await t.request(prev.slice(prev.indexOf('/fhir/')), { as: ['hip', HIP] })).json();
      back.unshift((b.entry ?? []).map((e: any) => e.resource.id));
      links = b.link;
    }
    const pages: string[][] = [];
    for (let i = 0; i < forward.ids.length; i += 3) pages.push(forward.ids.slice(i, i + 3));
    expect(back).toEqual(pages.slice(0, -1));
  });

  it("another provider's search for the same patient finds none of these records", async () => {
    const { ids, totals } = await walk(`patient-abha=${encodeURIComponent(patients[0].abhaAddress)}`, 'IDX-OTHER');
    expect(ids).toEqual([]);
    expect(totals).toEqual([0]);
  });

  it('is built at start for a store that has records but no index', async () => {
    const query = `patient-abha=${encodeURIComponent(patients[1].abhaAddress)}&_count=4`;
    const before = await walk(query);
    expect(before.ids.length).toBeGreaterThan(4);
    await t.collections.patientIndex.deleteMany({});
    await t.collections.meta.deleteMany({});
    expect((await walk(query)).ids).toEqual([]); // the index is what answers
    await ensureIndexes(collections(t.client.db(t.config.MONGODB_DB)));
    const after = await walk(query);
    // links differ: every cursor is sealed afresh
    expect({ ids: after.ids, totals: after.totals }).toEqual({ ids: before.ids, totals: before.totals });
    expect(await t.collections.meta.findOne({ _id: 'patient-index-v1' })).toMatchObject({ records: 30 });
  });

  it('an entry that lags its record never widens what is served', async () => {
    const p = patients[0];
    const rec = (await t.collections.current.findOne({ abhaAddress: p.abhaAddress, hiType: 'Prescription' }))!;
    expect(rec).toBeTruthy();
    // The record moves to another type behind the index's back (as a crash between the two writes could leave it).
    await t.collections.current.updateOne({ _id: rec._id }, { $set: { hiType: 'DischargeSummary' } });
    try {
      const { ids } = await walk(`patient-abha=${encodeURIComponent(p.abhaAddress)}&type=Prescription`);
      expect(ids).not.toContain(rec._id);
    } finally {
      await t.collections.current.updateOne({ _id: rec._id }, { $set: { hiType: 'Prescription' } });
    }
  });

  it('files a record under its ABHA number and its ABHA address', async () => {
    const rec = (await t.collections.current.findOne({ abhaAddress: patients[1].abhaAddress }))!;
    const keys = keysOf(rec);
    expect(keys).toHaveLength(2);
    for (const key of keys)
      expect(Object.keys((await t.collections.patientIndex.findOne({ _id: key }))!.entries)).toContain(rec._id);
  });
});

describe('patient index under concurrency', () => {
  /** Uploads all of `bundles` at once, as provider HIP under `careContext`. */
  const uploadAll = (bundles: unknown[], careContext: string) =>
    Promise.all(
      bundles.map((b) =>
        t.request('/fhir/Bundle', {
          method: 'POST',
          body: JSON.stringify(b),
          headers: uploadHeaders(careContext),
          as: ['hip', HIP],
        }),
      ),
    );

  it('40 concurrent uploads for one patient leave 40 entries, each at its newest version', async () => {
    const p = g.patient();
    const recs = Array.from({ length: 40 }, (_, i) =>
      g.record(p, RECORD_KINDS[i % 3], { careContext: { referenceNumber: 'CC-C', display: 'C' }, entries: 5 }),
    );
    const res = await uploadAll(
      recs.map((r) => r.bundle),
      'CC-C',
    );
    for (const r of res) expect(r.status).toBe(201);
    // A second version of ten of them, concurrently too.
    const changed = recs.slice(0, 10).map((r) => {
      const b = structuredClone(r.bundle);
      (b as any).timestamp = '2025-01-01T00:00:00+05:30';
      return b;
    });
    const res2 = await uploadAll(changed, 'CC-C');
    for (const r of res2) expect(r.status).toBe(201);
    const current = await t.collections.current.find({ abhaAddress: p.abhaAddress }).toArray();
    expect(current).toHaveLength(40);
    for (const key of keysOf(current[0])) {
      const entries = (await t.collections.patientIndex.findOne({ _id: key }))!.entries;
      expect(Object.keys(entries).sort()).toEqual(current.map((c) => c._id).sort());
      for (const c of current) expect(entries[c._id].version, c._id).toBe(c.version);
    }
    expect(current.filter((c) => c.version === 2)).toHaveLength(10);
    const { ids } = await walk(`patient-abha=${encodeURIComponent(p.abhaAddress)}&_count=100`);
    expect(ids.sort()).toEqual(current.map((c) => c._id).sort());
  }, 60_000);

  it("a new record's first version racing its later versions: the entry ends at the current version", async () => {
    // The first version of a record id just assigned is indexed without a read (PatientIndex.firstVersion); versions
    // 2, 3, … sent at the same moment must still leave the entry at the newest, whatever order the writes land in.
    for (let round = 0; round < 5; round++) {
      const p = g.patient();
      const base = g.record(p, 'Prescription', { careContext: { referenceNumber: 'CC-R', display: 'R' }, entries: 3 });
      const variants = Array.from({ length: 6 }, (_, i) => {
        const b = structuredClone(base.bundle) as any;
        b.timestamp = `2025-01-0${i + 1}T00:00:00+05:30`;
        return b;
      });
      const res = await uploadAll(variants, 'CC-R');
      for (const r of res) expect(r.status).toBe(201);
      const [current] = await t.collections.current.find({ abhaAddress: p.abhaAddress }).toArray();
      expect(current.version).toBe(6);
      for (const key of keysOf(current)) {
        const entries = (await t.collections.patientIndex.findOne({ _id: key }))!.entries;
        expect(entries[current._id].version).toBe(6);
      }
    }
  }, 60_000);
});
