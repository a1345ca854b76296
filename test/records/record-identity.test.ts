/**
 * Which upload is which record: two different Bundle.identifiers never merge
 * (also in a store written with the old `system|value` keys, rewritten at
 * start), and a re-upload that changes only the care context, its display or
 * a meta element such as a security label is a new version, never a silent 200.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { collections, ensureIndexes } from '../../src/records/model.js';

let t: TestApp;
const HIP = 'HIP-IDENT';
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const example = () =>
  JSON.parse(readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'));
const upload = (body: unknown, careContext = 'OP-1', extra: Record<string, string> = {}) =>
  t.request('/fhir/Bundle', {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: uploadHeaders(careContext, extra),
    as: ['hip', HIP],
  });

describe('two different Bundle.identifiers never merge into one record', () => {
  it('{system "…/a|b", value "c"} and {system "…/a", value "b|c"} are two records', async () => {
    const tag = uuidv4();
    const one = example(),
      two = example();
    one.identifier = { system: `https://docs.example.in/${tag}/a|b`, value: 'c' };
    two.identifier = { system: `https://docs.example.in/${tag}/a`, value: 'b|c' };
    const r1 = await upload(one),
      r2 = await upload(two);
    expect(r1.status).toBe(201);
    expect(r2.status).toBe(201);
    const [b1, b2] = [await r1.json(), await r2.json()];
    expect(b1.id).not.toBe(b2.id);
    expect(b2.meta.versionId).toBe('1');
    // each still answers for itself
    expect((await upload(one)).status).toBe(200);
    expect((await (await upload(two)).json()).id).toBe(b2.id);
  });

  it('a store with the old system|value keys is rewritten at start: its records keep answering to their identifiers', async () => {
    const b = example();
    b.identifier = { system: 'https://docs.example.in/legacy', value: uuidv4() };
    const first = await upload(b);
    expect(first.status).toBe(201);
    const id = (await first.json()).id;
    // Make it look as an earlier version of the store wrote it.
    const c = t.collections;
    const legacy = `${b.identifier.system}|${b.identifier.value}`;
    const key = JSON.stringify([b.identifier.system, b.identifier.value]);
    await c.identifiers.deleteOne({ _id: `${HIP}|${key}` });
    await c.identifiers.insertOne({ _id: `${HIP}|${legacy}`, recordId: id });
    await c.current.updateOne({ _id: id }, { $set: { identifierKey: legacy } });
    await c.versions.updateOne({ _id: `${id}/1` }, { $set: { identifierKey: legacy } });
    await c.meta.deleteOne({ _id: 'identifier-key-v2' });

    await ensureIndexes(collections(t.client.db(t.config.MONGODB_DB)));
    expect(await c.identifiers.findOne({ _id: `${HIP}|${legacy}` })).toBeNull();
    expect((await c.identifiers.findOne({ _id: `${HIP}|${key}` }))?.recordId).toBe(id);
    expect((await c.current.findOne({ _id: id }))?.identifierKey).toBe(key);
    expect((await c.versions.findOne({ _id: `${id}/1` }))?.identifierKey).toBe(key);
    const again = await upload(b);
    expect(again.status).toBe(200);
    expect((await again.json()).id).toBe(id);
  });
});

describe('a re-upload that changes only the care context or meta is a new version', () => {
  const fresh = () => {
    const b = example();
    b.identifier.value = uuidv4();
    return b;
  };

  it('identical content under another X-Care-Context: 201 version 2 in the new care context', async () => {
    const b = fresh();
    const v1 = await upload(b, 'OP-1');
    const id = (await v1.json()).id;
    const v2 = await upload(b, 'OP-2');
    expect(v2.status).toBe(201);
    expect(v2.headers.get('etag')).toBe('W/"2"');
    const found = await (await t.request('/fhir/Bundle?care-context=OP-2', { as: ['hip', HIP] })).json();
    expect(found.entry.map((e: { resource: { id: string } }) => e.resource.id)).toContain(id);
    const old = await (await t.request('/fhir/Bundle?care-context=OP-1&_count=100', { as: ['hip', HIP] })).json();
    expect((old.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id)).not.toContain(id);
    // the same again is a repeat
    expect((await upload(b, 'OP-2')).status).toBe(200);
  });

  it('a changed meta.security label: 201 version 2 carrying it; versionId/lastUpdated changes alone are a repeat', async () => {
    const b = fresh();
    expect((await upload(b)).status).toBe(201);
    expect(
      (await upload({ ...b, meta: { ...b.meta, versionId: '7', lastUpdated: '2020-01-01T00:00:00Z' } })).status,
    ).toBe(200);
    const labelled = {
      ...b,
      meta: {
        ...b.meta,
        security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }],
      },
    };
    const v2 = await upload(labelled);
    expect(v2.status).toBe(201);
    const body = await v2.json();
    expect(body.meta.versionId).toBe('2');
    expect(body.meta.security[0].code).toBe('R');
    // meta keys in another order and other whitespace are the same meta
    const reordered = JSON.stringify({ ...labelled, meta: { security: labelled.meta.security, ...b.meta } }, null, 2);
    expect((await upload(reordered)).status).toBe(200);
  });

  it('a changed care-context display is a new version; leaving the display header out is not a change', async () => {
    const b = fresh();
    expect((await upload(b, 'OP-9', { 'X-Care-Context-Display': 'OPD visit' })).status).toBe(201);
    expect((await upload(b, 'OP-9')).status).toBe(200);
    expect((await upload(b, 'OP-9', { 'X-Care-Context-Display': 'OPD visit, cardiology' })).status).toBe(201);
  });
});
