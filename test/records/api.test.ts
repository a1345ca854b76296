/**
 * Upload, validation errors, versions, read and search through createApp on
 * the real database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders as baseHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';
import { topLevelMembers } from '../../src/fhir/json-text.js';
import { readContent } from '../../src/records/content.js';
import { ProfileEngine } from '../../src/fhir/profiles.js';
import { HI_TYPES } from '../../src/consents/schema.js';
import { CARE_CONTEXT_EXTENSION_URL, RECORD_TYPE_EXTENSION_URL } from '../../src/records/render.js';

const example = (name: string) =>
  readFileSync(new URL(`../../fixtures/examples/${name}.json`, import.meta.url), 'utf8');
/** The example with a fresh Bundle.identifier, re-serialised (loses decimal formatting). */
const withIdentifier = (text: string, value = uuidv4()) => {
  const b = JSON.parse(text);
  b.identifier.value = value;
  return JSON.stringify(b);
};
/** The example as written on disk, with a fresh identifier spliced into the text. */
const rawWithIdentifier = (name: string) => {
  const raw = example(name);
  const old = JSON.stringify(JSON.parse(raw).identifier.value);
  expect(raw.split(old)).toHaveLength(2);
  return raw.replace(old, JSON.stringify(uuidv4()));
};

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** Upload headers; `as` names the provider whose hip token the request carries. */
const uploadHeaders = (facility = 'H1', careContext = 'OP-1', extra: Record<string, string> = {}) => ({
  ...baseHeaders(careContext, extra),
  as: facility,
});
const post = (body: string, { as = 'H1', ...headers }: Record<string, string> = uploadHeaders(), app = t) =>
  app.request('/fhir/Bundle', { method: 'POST', body, headers, as: ['hip', as] });
const get = (path: string, facility = 'H1', app = t) => app.request(path, { as: ['hip', facility] });
const idOf = (res: Response) => res.headers.get('location')!.split('/')[5];
const outcome = async (res: Response) => {
  const body = await res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  for (const i of body.issue) {
    expect(i.severity).toBeTruthy();
    expect(i.code).toBeTruthy();
    expect(i.diagnostics).toBeTruthy();
  }
  return body as fhir4.OperationOutcome;
};
const countStored = () => t.collections.versions.countDocuments({});

describe('upload of valid documents', () => {
  it.each(['prescription', 'diagnostic-report', 'discharge-summary'])(
    'stores the %s example and returns it unchanged but for id and meta',
    async (name) => {
      const text = withIdentifier(example(name));
      const res = await post(text, uploadHeaders('H1', `CC-${name}`, { 'X-Care-Context-Display': 'Visit' }));
      expect(res.status).toBe(201);
      expect(res.headers.get('etag')).toBe('W/"1"');
      expect(res.headers.get('location')).toMatch(/\/fhir\/Bundle\/[0-9a-f-]{36}\/_history\/1$/);
      const stored = await res.json();
      expect(stored.meta.versionId).toBe('1');
      expect(stored.id).toBe(idOf(res));
      const { id: _a, meta: _b, ...rest } = stored;
      const { id: _c, meta: _d, ...orig } = JSON.parse(text);
      expect(rest).toEqual(orig);
    },
  );

  it('keeps the uploaded text exactly, decimal precision included (1.50 stays 1.50)', async () => {
    const raw = rawWithIdentifier('diagnostic-report');
    expect(raw).toMatch(/1\.50\b/);
    const res = await post(raw);
    expect(res.status).toBe(201);
    const read = await (await get(`/fhir/Bundle/${idOf(res)}`)).text();
    // every member but the server-set id/meta comes back as the very bytes uploaded
    const members = topLevelMembers(raw).filter((m) => !['id', 'meta', 'resourceType'].includes(m.key));
    expect(members.map((m) => m.key)).toContain('entry');
    for (const m of members) expect(read.includes(raw.slice(m.start, m.end)), `member ${m.key}`).toBe(true);
    const trailingZeros = (x: string) => x.match(/\d+\.\d*0\b/g) ?? [];
    expect(trailingZeros(read)).toEqual(trailingZeros(raw));
  });

  it('stores the text compressed, and serves back its exact bytes (non-ASCII and odd whitespace included)', async () => {
    const b = JSON.parse(withIdentifier(example('prescription')));
    b.entry[0].resource.title = 'Prescription — डॉ. शर्मा 🩺 "quoted" \\ back\u0001slash';
    const raw = JSON.stringify(b, null, 3).replace('"resourceType"', '"resourceType"   ');
    const res = await post(raw);
    expect(res.status).toBe(201);
    const v = (await t.collections.versions.findOne({ recordId: idOf(res) }))!;
    const doc = (await t.collections.contents.findOne({ _id: v.contentId }))!;
    expect(doc.text).toBeUndefined();
    expect(doc.z!.buffer.length).toBeLessThan(Buffer.byteLength(raw) / 3);
    const read = await (await get(`/fhir/Bundle/${idOf(res)}`)).text();
    const members = topLevelMembers(raw).filter((m) => !['id', 'meta', 'resourceType'].includes(m.key));
    for (const m of members) expect(read.includes(raw.slice(m.start, m.end)), `member ${m.key}`).toBe(true);
  });

  it("keeps the current version's compressed content with its pointer, and moves it on with a new version", async () => {
    const text = withIdentifier(example('prescription'));
    const res = await post(text);
    const id = idOf(res);
    const cur1 = (await t.collections.current.findOne({ _id: id }))!;
    const v1 = (await t.collections.versions.findOne({ _id: `${id}/1` }))!;
    expect(cur1.z!.buffer).toEqual((await t.collections.contents.findOne({ _id: v1.contentId }))!.z!.buffer);
    const b = JSON.parse(text);
    b.timestamp = '2025-02-02T10:00:00+05:30';
    expect((await post(JSON.stringify(b))).status).toBe(201);
    const cur2 = (await t.collections.current.findOne({ _id: id }))!;
    const v2 = (await t.collections.versions.findOne({ _id: `${id}/2` }))!;
    expect(cur2.version).toBe(2);
    expect(cur2.z!.buffer).toEqual((await t.collections.contents.findOne({ _id: v2.contentId }))!.z!.buffer);
    expect(JSON.parse(await (await get(`/fhir/Bundle/${id}`)).text()).timestamp).toBe('2025-02-02T10:00:00+05:30');
  });

  it('serves a record whose pointer was written without its content (by an earlier version of the store)', async () => {
    const res = await post(withIdentifier(example('discharge-summary')));
    const id = idOf(res);
    const before = await (await get(`/fhir/Bundle/${id}`)).text();
    await t.collections.current.updateOne({ _id: id }, { $unset: { z: '' } });
    expect((await t.collections.current.findOne({ _id: id }))!.z).toBeUndefined();
    expect(await (await get(`/fhir/Bundle/${id}`)).text()).toBe(before);
    const cur = (await t.collections.current.findOne({ _id: id }))!;
    const search = await (
      await get(
        `/fhir/Bundle?patient-abha=${encodeURIComponent(cur.abhaAddress!)}&care-context=OP-1&date=${cur.recordDate.toISOString()}`,
      )
    ).json();
    expect(search.entry.map((e: any) => e.resource.id)).toContain(id);
    expect(JSON.stringify(search.entry.find((e: any) => e.resource.id === id).resource)).toBe(
      JSON.stringify(JSON.parse(before)),
    );
  });

  it('reads content stored uncompressed by earlier versions of the store', async () => {
    const res = await post(withIdentifier(example('prescription')));
    const v = (await t.collections.versions.findOne({ recordId: idOf(res) }))!;
    const before = await (await get(`/fhir/Bundle/${idOf(res)}`)).text();
    const text = await readContent(t.collections.contents, v.contentId);
    await t.collections.contents.replaceOne({ _id: v.contentId }, { text });
    expect((await t.collections.contents.findOne({ _id: v.contentId }))!.z).toBeUndefined();
    expect(await (await get(`/fhir/Bundle/${idOf(res)}`)).text()).toBe(before);
  });

  it('indexes ABHA number (digits), address (lower case), care context, hiType and date', async () => {
    const g = createGenerator(7);
    const p = g.patient();
    const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: 'OPD-77', display: 'OPD 77' } });
    const res = await post(
      JSON.stringify(rec.bundle),
      uploadHeaders('H-INDEX', 'OPD-77', { 'X-Care-Context-Display': 'OPD 77' }),
    );
    expect(res.status).toBe(201);
    const stored = await t.collections.current.findOne({ provider: 'H-INDEX' });
    expect(stored).toMatchObject({
      abhaNumber: p.abhaNumber.replace(/-/g, ''),
      abhaAddress: p.abhaAddress.toLowerCase(),
      careContext: 'OPD-77',
      hiType: 'Prescription',
      version: 1,
      identifierKey: JSON.stringify([rec.bundle.identifier!.system, rec.bundle.identifier!.value]),
    });
    expect(stored!.contentHash).toMatch(/^[0-9a-f]{64}$/);
    expect(stored!.recordDate.getTime()).toBe(new Date(rec.date).getTime());
    const cc = await t.collections.careContexts.findOne({ provider: 'H-INDEX', referenceNumber: 'OPD-77' });
    expect(cc).toMatchObject({ display: 'OPD 77', hiTypes: ['Prescription'] });
  });
});

describe('idempotency and versions', () => {
  it('same identifier and content → 200 with the same record; changed content → 201 version 2; old version readable', async () => {
    const text = withIdentifier(example('prescription'));
    const first = await post(text);
    expect(first.status).toBe(201);
    const id = idOf(first);
    const again = await post(JSON.stringify(JSON.parse(text), null, 2)); // same content, other whitespace
    expect(again.status).toBe(200);
    expect(again.headers.get('location')).toBe(first.headers.get('location'));

    const changed = JSON.parse(text);
    changed.entry[0].resource.title = 'Prescription (amended)';
    const v2 = await post(JSON.stringify(changed));
    expect(v2.status).toBe(201);
    expect(v2.headers.get('etag')).toBe('W/"2"');
    expect(v2.headers.get('location')).toContain(`/fhir/Bundle/${id}/_history/2`);

    const current = await get(`/fhir/Bundle/${id}`);
    expect((await current.json()).entry[0].resource.title).toBe('Prescription (amended)');
    const v1 = await get(`/fhir/Bundle/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect((await v1.json()).entry[0].resource.title).toBe(JSON.parse(text).entry[0].resource.title);
    const history = await (await get(`/fhir/Bundle/${id}/_history`)).json();
    expect(history.type).toBe('history');
    expect(history.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);
  });

  it('_history pages with _count and a sealed next link, newest first; an unknown parameter is 400', async () => {
    const base = JSON.parse(withIdentifier(example('prescription')));
    let id = '';
    for (let i = 1; i <= 5; i++) {
      base.entry[0].resource.title = `Prescription v${i}`;
      const res = await post(JSON.stringify(base));
      expect(res.status).toBe(201);
      id = idOf(res);
    }
    const seen: string[] = [];
    let url: string | undefined = `/fhir/Bundle/${id}/_history?_count=2`;
    while (url) {
      const page = await (await get(url)).json();
      expect(page.total).toBe(5);
      seen.push(...page.entry.map((e: any) => e.resource.meta.versionId));
      const next = page.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      url = next ? next.slice(next.indexOf('/fhir/')) : undefined;
    }
    expect(seen).toEqual(['5', '4', '3', '2', '1']);
    expect((await get(`/fhir/Bundle/${id}/_history?_since=2024-01-01`)).status).toBe(400);
    expect((await get(`/fhir/Bundle/${id}/_history?_count=0`)).status).toBe(400);
    expect((await get(`/fhir/Bundle/${id}/_history?_cursor=forged`)).status).toBe(400);
  });

  it('another provider uploading the same identifier gets its own record', async () => {
    const text = withIdentifier(example('prescription'));
    const a = await post(text, uploadHeaders('H-A'));
    const b = await post(text, uploadHeaders('H-B'));
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(idOf(a)).not.toBe(idOf(b));
  });

  it.each([20, 50])('%i concurrent uploads of one identifier create exactly one record', async (n) => {
    const text = withIdentifier(example('discharge-summary'));
    const results = await Promise.all(Array.from({ length: n }, () => post(text, uploadHeaders(`H-CONC-${n}`))));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(n - 1);
    expect(new Set(results.map((r) => r.headers.get('location'))).size).toBe(1);
    expect(await t.collections.versions.countDocuments({ provider: `H-CONC-${n}` })).toBe(1);
    expect(await t.collections.current.countDocuments({ provider: `H-CONC-${n}` })).toBe(1);
  });

  it('concurrent uploads of different content for one identifier give ordered versions without duplicates', async () => {
    const base = JSON.parse(withIdentifier(example('prescription')));
    const bodies = Array.from({ length: 8 }, (_, i) => {
      const b = structuredClone(base);
      b.entry[0].resource.title = `Rx ${i}`;
      return JSON.stringify(b);
    });
    const results = await Promise.all(bodies.map((b) => post(b, uploadHeaders('H-CONC2'))));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
    const versions = await t.collections.versions.find({ provider: 'H-CONC2' }).sort({ version: 1 }).toArray();
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(versions.map((v) => v.recordId)).size).toBe(1);
    const current = await t.collections.current.findOne({ provider: 'H-CONC2' });
    expect(current!.version).toBe(8);
  });
});

describe('bad input: 4xx OperationOutcome and nothing stored', () => {
  const valid = () => withIdentifier(example('prescription'));
  const mutate = (f: (b: any) => void) => {
    const b = JSON.parse(valid());
    f(b);
    return JSON.stringify(b);
  };

  const cases: [string, () => [string, Record<string, string>], number, string, string | undefined][] = [
    ['malformed JSON', () => ['{"resourceType": "Bundle",', uploadHeaders()], 400, 'structure', undefined],
    [
      'wrong content type',
      () => [valid(), uploadHeaders('H1', 'OP-1', { 'Content-Type': 'text/plain' })],
      415,
      'not-supported',
      undefined,
    ],
    ['empty body', () => ['', uploadHeaders()], 400, 'required', undefined],
    ['deep nesting', () => ['['.repeat(100_000) + ']'.repeat(100_000), uploadHeaders()], 400, 'too-costly', undefined],
    [
      'wrong resourceType',
      () => [JSON.stringify({ resourceType: 'Patient', id: 'p' }), uploadHeaders()],
      422,
      'structure',
      'resourceType',
    ],
    [
      'not a document',
      () => [
        mutate((b) => {
          b.type = 'collection';
        }),
        uploadHeaders(),
      ],
      422,
      'value',
      'Bundle.type',
    ],
    [
      'unknown record type',
      () => [
        mutate((b) => {
          b.entry[0].resource.type.coding[0].code = '24642003'; // no ABDM record type, and no record profile claimed
          delete b.entry[0].resource.meta.profile;
        }),
        uploadHeaders(),
      ],
      422,
      'not-supported',
      'Bundle.entry[0].resource.type',
    ],
    [
      'missing ABHA identifier',
      () => [
        mutate((b) => {
          const i = b.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
          b.entry[i].resource.identifier = [
            {
              system: 'https://hospital.example/mrn',
              value: 'MRN-1',
              type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
            },
          ];
        }),
        uploadHeaders(),
      ],
      422,
      'required',
      undefined,
    ],
    [
      'dangling reference',
      () => [
        mutate((b) => {
          b.entry[0].resource.subject.reference = 'urn:uuid:00000000-0000-4000-8000-000000000000';
        }),
        uploadHeaders(),
      ],
      422,
      'not-found',
      'Bundle.entry[0].resource.subject.reference',
    ],
    [
      'duplicate fullUrl',
      () => [
        mutate((b) => {
          b.entry[2].fullUrl = b.entry[1].fullUrl;
        }),
        uploadHeaders(),
      ],
      422,
      'duplicate',
      'Bundle.entry[2].fullUrl',
    ],
  ];

  it.each(cases)('%s', async (_name, make, status, code, expression) => {
    const before = await countStored();
    const [body, headers] = make();
    const res = await post(body, headers);
    expect(res.status).toBe(status);
    const oo = await outcome(res);
    expect(
      oo.issue.some((i) => i.code === code),
      JSON.stringify(oo.issue),
    ).toBe(true);
    if (expression)
      expect(
        oo.issue.some((i) => i.code === code && i.expression?.[0] === expression),
        JSON.stringify(oo.issue),
      ).toBe(true);
    expect(await countStored()).toBe(before);
  });

  it('missing ABHA identifier names the Patient.identifier path', async () => {
    const body = mutate((b) => {
      const i = b.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
      delete b.entry[i].resource.identifier;
    });
    const b = JSON.parse(body);
    const i = b.entry.findIndex((e: any) => e.resource.resourceType === 'Patient');
    const oo = await outcome(await post(body));
    expect(
      oo.issue.some(
        (x) =>
          x.code === 'required' &&
          x.expression?.[0] === `Bundle.entry[${i}].resource.identifier` &&
          /ABHA/.test(x.diagnostics!),
      ),
    ).toBe(true);
  });

  it('missing care context header → 400 naming X-Care-Context', async () => {
    const before = await countStored();
    const res = await post(valid(), { 'Content-Type': 'application/fhir+json' });
    expect(res.status).toBe(400);
    expect((await outcome(res)).issue[0].diagnostics).toContain('X-Care-Context');
    expect(await countStored()).toBe(before);
  });

  it('oversize body → 413', async () => {
    const small = await createTestApp({ MAX_BODY_BYTES: '2048' });
    try {
      const res = await post(valid(), uploadHeaders(), small);
      expect(res.status).toBe(413);
      expect((await outcome(res)).issue[0].code).toBe('too-long');
      expect(await small.collections.versions.countDocuments({})).toBe(0);
    } finally {
      await small.close();
    }
  });

  it('lists every problem, not only the first', async () => {
    const body = mutate((b) => {
      delete b.timestamp;
      b.entry[0].resource.status = 'bogus';
      b.entry[1].resource.foo = 1;
    });
    const res = await post(body);
    expect(res.status).toBe(422);
    const exprs = (await outcome(res)).issue.map((i) => i.expression?.[0]);
    expect(exprs).toContain('Bundle.timestamp');
    expect(exprs).toContain('Bundle.entry[0].resource.status');
    expect(exprs).toContain('Bundle.entry[1].resource.foo');
  });

  it('no token → 401, and nothing stored', async () => {
    const before = await countStored();
    const res = await t.app.request('/fhir/Bundle', { method: 'POST', body: valid(), headers: baseHeaders() });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect((await outcome(res)).issue[0].code).toBe('login');
    expect((await t.app.request('/fhir/Bundle')).status).toBe(401);
    expect(await countStored()).toBe(before);
  });
});

describe('read', () => {
  it("a provider cannot read another provider's record (404), and unknown ids are 404", async () => {
    const res = await post(withIdentifier(example('prescription')), uploadHeaders('H-OWN'));
    const id = idOf(res);
    expect((await get(`/fhir/Bundle/${id}`, 'H-OWN')).status).toBe(200);
    const other = await get(`/fhir/Bundle/${id}`, 'H-OTHER');
    expect(other.status).toBe(404);
    await outcome(other);
    expect((await get(`/fhir/Bundle/${id}/_history/1`, 'H-OTHER')).status).toBe(404);
    expect((await get(`/fhir/Bundle/${id}/_history`, 'H-OTHER')).status).toBe(404);
    expect((await get(`/fhir/Bundle/${uuidv4()}`, 'H-OWN')).status).toBe(404);
    expect((await get(`/fhir/Bundle/${id}/_history/9`, 'H-OWN')).status).toBe(404);
  });

  it('answers ETag, Last-Modified and 304 for If-None-Match', async () => {
    const res = await post(withIdentifier(example('prescription')), uploadHeaders('H-ETAG'));
    const id = idOf(res);
    const read = await get(`/fhir/Bundle/${id}`, 'H-ETAG');
    expect(read.headers.get('etag')).toBe('W/"1"');
    expect(new Date(read.headers.get('last-modified')!).getTime()).toBeGreaterThan(0);
    const cached = await t.request(`/fhir/Bundle/${id}`, {
      headers: { 'If-None-Match': 'W/"1"' },
      as: ['hip', 'H-ETAG'],
    });
    expect(cached.status).toBe(304);
  });

  it('If-None-Match understands *, lists and the strong form; another version or a malformed tag is a 200', async () => {
    const id = idOf(await post(withIdentifier(example('prescription')), uploadHeaders('H-ETAG')));
    const read = (tag: string) =>
      t.request(`/fhir/Bundle/${id}`, { headers: { 'If-None-Match': tag }, as: ['hip', 'H-ETAG'] });
    for (const tag of ['*', '"1"', 'W/"7", W/"1"', ' W/"2" ,"1" ']) expect((await read(tag)).status, tag).toBe(304);
    for (const tag of ['W/"2"', '"2", W/"3"', '1', 'W/1', '']) expect((await read(tag)).status, tag).toBe(200);
  });
});

describe('search', () => {
  const provider = 'H-SEARCH';
  const g = createGenerator(99);
  const patient = g.patient();
  const other = g.patient();
  let dates: number[] = [];

  beforeAll(async () => {
    const mine = g.records(patient, 12);
    for (const r of [...mine, ...g.records(other, 3)]) {
      const res = await post(JSON.stringify(r.bundle), uploadHeaders(provider, r.careContext.referenceNumber));
      expect(res.status).toBe(201);
    }
    dates = mine.map((r) => new Date(r.date).getTime()).sort((x, y) => x - y);
  });

  const search = async (query: string) => {
    const res = await get(`/fhir/Bundle?${query}`, provider);
    expect(res.status, await res.clone().text()).toBe(200);
    return res.json();
  };
  const ids = (p: any): string[] => (p.entry ?? []).map((e: any) => e.resource.id);
  const after = (p: any, rel: string) =>
    p.link.find((l: any) => l.relation === rel)?.url.split('?')[1] as string | undefined;

  it('by ABHA number (with or without dashes) and by ABHA address (any case)', async () => {
    const a = await search(`patient-abha=${patient.abhaNumber}`);
    expect(a.type).toBe('searchset');
    expect(a.total).toBe(12);
    expect((await search(`patient-abha=${patient.abhaNumber.replace(/-/g, '')}`)).total).toBe(12);
    expect((await search(`patient-abha=${encodeURIComponent(patient.abhaAddress.toUpperCase())}`)).total).toBe(12);
    expect((await search(`patient-abha=${other.abhaNumber}`)).total).toBe(3);
  });

  it('by type, care context and date prefixes', async () => {
    const all = await search(`patient-abha=${patient.abhaNumber}&_count=100`);
    const rx = all.entry.filter((e: any) => e.resource.entry[0].resource.type.coding[0].code === '440545006').length;
    expect((await search(`patient-abha=${patient.abhaNumber}&type=Prescription`)).total).toBe(rx);
    const cc = (await t.collections.current.findOne({ provider, abhaNumber: patient.abhaNumber.replace(/-/g, '') }))!
      .careContext;
    const expectedCc = await t.collections.current.countDocuments({ provider, careContext: cc });
    expect(expectedCc).toBeGreaterThan(0);
    expect((await search(`care-context=${encodeURIComponent(cc)}`)).total).toBe(expectedCc);
    const mid = new Date(dates[6]).toISOString();
    expect((await search(`patient-abha=${patient.abhaNumber}&date=ge${encodeURIComponent(mid)}`)).total).toBe(
      dates.filter((d) => d >= dates[6]).length,
    );
    expect((await search(`patient-abha=${patient.abhaNumber}&date=lt${encodeURIComponent(mid)}`)).total).toBe(
      dates.filter((d) => d < dates[6]).length,
    );
    const year = new Date(dates[0]).getUTCFullYear();
    expect((await search(`patient-abha=${patient.abhaNumber}&date=${year}`)).total).toBe(
      dates.filter((d) => new Date(d).getUTCFullYear() === year).length,
    );
  });

  it('pages newest first with next/previous links that stay stable when records are inserted between pages', async () => {
    const page1 = await search(`patient-abha=${patient.abhaNumber}&_count=5`);
    expect(page1.entry).toHaveLength(5);
    const times = page1.entry.map((e: any) => new Date(e.resource.entry[0].resource.date).getTime());
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    const next = after(page1, 'next')!;
    expect(after(page1, 'previous')).toBeUndefined();

    // a newer and an older record arrive between page requests
    for (const date of ['2099-01-01T10:00:00+05:30', '1990-01-01T10:00:00+05:30']) {
      const r = g.record(patient, 'Prescription', { date });
      expect((await post(JSON.stringify(r.bundle), uploadHeaders(provider, 'OP-X'))).status).toBe(201);
    }
    const page2 = await search(next);
    const page3 = await search(after(page2, 'next')!);
    const seen = [...ids(page1), ...ids(page2), ...ids(page3)];
    expect(new Set(seen).size).toBe(seen.length); // nothing repeated
    expect(page2.entry).toHaveLength(5);
    expect(page3.total).toBe(14);
    expect(seen).toHaveLength(13); // the 12 original records in order, then the 1990 one; nothing skipped
    expect(after(page3, 'next')).toBeUndefined();

    const back = await search(after(page2, 'previous')!);
    expect(ids(back)).toEqual(ids(page1));
  });

  it('bounds _count and rejects unknown or malformed parameters', async () => {
    const big = await search(`patient-abha=${patient.abhaNumber}&_count=100000`);
    expect(big.entry.length).toBe(14);
    expect(big.link[0].url).toContain('_count=100000');
    const many = await createTestApp({ SEARCH_MAX_COUNT: '3' });
    try {
      const res = await get('/fhir/Bundle?_count=50', provider, many);
      expect(res.status).toBe(200);
    } finally {
      await many.close();
    }
    const bad = await get('/fhir/Bundle?patient=x', provider);
    expect(bad.status).toBe(400);
    expect((await outcome(bad)).issue[0].diagnostics).toContain('patient');
    expect((await get('/fhir/Bundle?patient-abha=not-an-abha', provider)).status).toBe(400);
    expect((await get('/fhir/Bundle?date=yesterday', provider)).status).toBe(400);
    expect((await get('/fhir/Bundle?_count=0', provider)).status).toBe(400);
    expect((await get('/fhir/Bundle?_cursor=zzz', provider)).status).toBe(400);
  });

  it('clamps _count to SEARCH_MAX_COUNT', async () => {
    const small = await createTestApp({ SEARCH_MAX_COUNT: '3' });
    try {
      const g2 = createGenerator(3);
      const p = g2.patient();
      for (const r of g2.records(p, 5))
        expect((await post(JSON.stringify(r.bundle), uploadHeaders('H-MAX'), small)).status).toBe(201);
      const res = await get('/fhir/Bundle?_count=50', 'H-MAX', small);
      const page = await res.json();
      expect(page.total).toBe(5);
      expect(page.entry).toHaveLength(3);
    } finally {
      await small.close();
    }
  });

  it('shows a provider only its own records', async () => {
    const res = await get(`/fhir/Bundle?patient-abha=${patient.abhaNumber}`, 'H-NOBODY');
    const page = await res.json();
    expect(page.total).toBe(0);
    expect(page.entry).toBeUndefined();
  });
});

describe('metadata and health', () => {
  it('CapabilityStatement documents the search parameters', async () => {
    const res = await t.app.request('/fhir/metadata');
    expect(res.status).toBe(200);
    const cs = await res.json();
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const names = cs.rest[0].resource[0].searchParam.map((p: any) => p.name);
    expect(names).toEqual(expect.arrayContaining(['patient-abha', 'care-context', 'type', 'date', '_count']));
    // all eight ABDM record profiles, and the type parameter names every hiType a consent may carry
    const SD = 'https://nrces.in/ndhm/fhir/r4/StructureDefinition/';
    const records = ['Prescription', 'DiagnosticReport', 'OPConsult', 'DischargeSummary', 'Immunization'];
    for (const r of [...records, 'HealthDocument', 'Wellness', 'Invoice'])
      expect(cs.rest[0].resource[0].supportedProfile).toContain(`${SD}${r}Record`);
    const type = cs.rest[0].resource[0].searchParam.find((p: any) => p.name === 'type');
    for (const hiType of HI_TYPES) expect(type.documentation).toContain(hiType);
  });

  it('the store holds every hiType a consent may name, and no other', () => {
    expect(new ProfileEngine([]).profiles.map((p) => p.hiType).sort()).toEqual([...HI_TYPES].sort());
  });

  it('healthz and readyz answer 200 with the database up', async () => {
    expect((await t.app.request('/healthz')).status).toBe(200);
    expect((await t.app.request('/readyz')).status).toBe(200);
  });

  it('unknown routes answer a 404 OperationOutcome (401 without a token)', async () => {
    expect((await t.app.request('/nope')).status).toBe(401);
    const res = await t.request('/nope', { as: ['hip', 'H1'] });
    expect(res.status).toBe(404);
    await outcome(res);
  });

  it('never logs patient data', async () => {
    const g = createGenerator(5);
    const p = g.patient();
    const rec = g.record(p, 'DischargeSummary');
    expect((await post(JSON.stringify(rec.bundle), uploadHeaders('H-LOG'))).status).toBe(201);
    expect((await get(`/fhir/Bundle?patient-abha=${p.abhaNumber}`, 'H-LOG')).status).toBe(200);
    const logs = t.logs.join('');
    expect(logs).toContain('"route"');
    for (const secret of [p.abhaNumber, p.abhaNumber.replace(/-/g, ''), p.abhaAddress, p.name.family])
      expect(logs).not.toContain(secret);
  });
});

describe('response hygiene', () => {
  it('sends security headers and no CORS permission on every response, errors included', async () => {
    for (const res of [
      await t.app.request('/healthz'),
      await t.app.request('/fhir/Bundle'),
      await t.request('/fhir/Bundle/nope', { as: ['hip', 'H1'], headers: { Origin: 'https://evil.example' } }),
    ]) {
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
      expect(res.headers.get('strict-transport-security')).toBeTruthy();
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('care context and record type on search and history entries', () => {
  const ext = (code: string, display?: string) => [
    { url: CARE_CONTEXT_EXTENSION_URL, valueCoding: { code, ...(display === undefined ? {} : { display }) } },
    { url: RECORD_TYPE_EXTENSION_URL, valueCode: 'Prescription' },
  ];

  it('each entry names its care context (with its display when one was sent) and its record type', async () => {
    const text = withIdentifier(example('prescription'));
    const first = await post(text, uploadHeaders('H-CC-EXT', 'OP-EXT-1', { 'X-Care-Context-Display': 'OPD, 2 May' }));
    expect(first.status).toBe(201);
    const id = idOf(first);
    const changed = JSON.parse(text);
    changed.entry[0].resource.title = 'Prescription (amended)';
    expect((await post(JSON.stringify(changed), uploadHeaders('H-CC-EXT', 'OP-EXT-2'))).status).toBe(201);

    const search = await (await get('/fhir/Bundle', 'H-CC-EXT')).json();
    expect(search.entry).toHaveLength(1);
    expect(search.entry[0].extension).toEqual(ext('OP-EXT-2'));
    expect(search.entry[0].search).toEqual({ mode: 'match' });

    const history = await (await get(`/fhir/Bundle/${id}/_history`, 'H-CC-EXT')).json();
    expect(history.entry.map((e: any) => e.extension)).toEqual([ext('OP-EXT-2'), ext('OP-EXT-1', 'OPD, 2 May')]);
    expect(history.entry[1].request).toEqual({ method: 'POST', url: 'Bundle' });
  });
});
