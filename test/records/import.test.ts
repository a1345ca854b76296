// POST /fhir/$import through createApp on the real database: each NDJSON item is an upload (validated, stored,
// indexed under its care context, audited), answered by one line in input order; rejected items store nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';

const HOSPITAL = 'HOSP-IMPORT';
let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const g = createGenerator(4242);
const NDJSON = { 'Content-Type': 'application/x-ndjson' };
const importBody = (lines: string[]) => lines.join('\n') + '\n';
const item = (bundle: unknown, careContext: string, careContextDisplay?: string) =>
  JSON.stringify({ careContext, ...(careContextDisplay ? { careContextDisplay } : {}), bundle });
async function post(body: string, as: [any, string] = ['hip', HOSPITAL], headers: Record<string, string> = NDJSON) {
  const res = await t.request('/fhir/$import', { method: 'POST', body, headers, as });
  return res;
}
const answerLines = async (res: Response) =>
  (await res.text())
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));

describe('POST /fhir/$import', () => {
  it('stores each item as an upload under its care context, answering one line per item in order', async () => {
    const p = g.patient();
    const recs = g.records(p, 6);
    const res = await post(importBody(recs.map((r) => item(r.bundle, r.careContext.referenceNumber, 'Visit'))));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const answers = await answerLines(res);
    expect(answers.map((a) => [a.item, a.status])).toEqual(recs.map((_, i) => [i + 1, 201]));
    for (const [i, a] of answers.entries()) {
      expect(a.location).toMatch(new RegExp(`/fhir/Bundle/${a.id}/_history/1$`));
      const read = await t.request(`/fhir/Bundle/${a.id}`, { as: ['hip', HOSPITAL] });
      expect(read.status).toBe(200);
      const stored = await read.json();
      expect(stored.identifier).toEqual(recs[i].bundle.identifier);
    }
    // indexed exactly as an upload: the provider's search by care context finds them, with the care context named
    const cc = recs[0].careContext.referenceNumber;
    const search = await (await t.request(`/fhir/Bundle?care-context=${cc}`, { as: ['hip', HOSPITAL] })).json();
    expect(search.total).toBe(recs.filter((r) => r.careContext.referenceNumber === cc).length);
    expect(search.entry[0].extension[0].valueCoding).toEqual({ code: cc, display: 'Visit' });
    // each stored item audited as an upload
    const events = await t.audit.events.find({ action: 'record.upload', recordIds: answers[0].id }).toArray();
    expect(events.map((e) => e.outcome)).toEqual(['success']);
  });

  it('answers a repeated item 200 unchanged, and stores nothing of a rejected one (reported with its outcome)', async () => {
    const p = g.patient();
    const [a, b] = g.records(p, 2);
    const bad = structuredClone(b.bundle) as any;
    delete bad.entry[0].resource.title; // Composition.title is 1..1
    const before = await t.collections.versions.countDocuments();
    const res = await post(
      importBody([
        item(a.bundle, 'CC-A'),
        item(a.bundle, 'CC-A'),
        item(bad, 'CC-B'),
        '{"careContext": "CC-C", "bundle": ',
        JSON.stringify({ careContext: 'CC-D' }),
        JSON.stringify({ careContext: 'CC-E', bundle: b.bundle, extra: 1 }),
        JSON.stringify({ careContext: 'bad\u0001cc', bundle: b.bundle }),
      ]),
    );
    const answers = await answerLines(res);
    expect(answers.map((x) => x.status)).toEqual([201, 200, 422, 400, 400, 400, 400]);
    expect(answers[1].id).toBe(answers[0].id);
    expect(answers[2].outcome.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(answers[2].outcome)).toMatch(/title/);
    expect(answers[4].outcome.issue[0].diagnostics).toMatch(/bundle required/);
    expect(answers[5].outcome.issue[0].diagnostics).toMatch(/Unknown item member 'extra'/);
    expect(await t.collections.versions.countDocuments()).toBe(before + 1);
    const rejected = await t.audit.events.find({ action: 'record.upload', outcome: 'rejected' }).toArray();
    expect(rejected.filter((e) => /^import item 3:/.test(e.reason ?? ''))).toHaveLength(1);
  });

  it('keeps the bundle text exactly as sent (decimal precision, member order)', async () => {
    const p = g.patient();
    const [r] = g.records(p, 1);
    const text = JSON.stringify(r.bundle, null, 1).replace(/\n/g, ' ');
    const res = await post(`{"bundle": ${text}, "careContext": "CC-EXACT"}\n`);
    const [answer] = await answerLines(res);
    expect(answer.status).toBe(201);
    const stored = await t.collections.versions.findOne({ _id: `${answer.id}/1` });
    expect(stored?.bytes).toBe(Buffer.byteLength(text));
    // the member spans kept with the version fit the exact text: a read renders from them without a scan
    expect(stored?.members?.keys).toEqual(
      ['resourceType', 'id', 'meta', 'identifier', 'type', 'timestamp', 'entry'].filter((k) => k in r.bundle),
    );
    const read = await (await t.request(`/fhir/Bundle/${answer.id}`, { as: ['hip', HOSPITAL] })).json();
    expect(read.entry).toEqual(r.bundle.entry);
  });

  it('refuses the wrong caller, a wrong media type and an oversized item', async () => {
    for (const role of ['hiu', 'cm', 'admin'] as const) expect((await post('{}\n', [role, 'X'])).status).toBe(403);
    expect((await t.request('/fhir/$import', { method: 'POST', body: '{}', headers: NDJSON })).status).toBe(401);
    const wrongType = await post('{}\n', ['hip', HOSPITAL], { 'Content-Type': 'application/fhir+json' });
    expect(wrongType.status).toBe(415);
    const big = JSON.stringify({ careContext: 'X', bundle: { pad: 'x'.repeat(t.config.MAX_BODY_BYTES + 10) } });
    const [p] = [g.patient()];
    const [ok] = g.records(p, 1);
    const answers = await answerLines(await post(importBody([big, item(ok.bundle, 'CC-AFTER-BIG')])));
    expect(answers.map((a) => a.status)).toEqual([413, 201]);
  });

  it('ignores blank lines and answers an empty body with no lines', async () => {
    const res = await post('\n\n  \n');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});
