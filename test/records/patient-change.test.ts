/**
 * A record that changes patient (a new version of the same Bundle.identifier
 * naming another patient, as a provider correcting a misfiled record sends)
 * leaves the former patient: totals always equal what paging serves, for the
 * provider and for a viewer under either patient's consent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { grantConsent } from '../support/consents.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { patientIndexKey } from '../../src/records/patient-index.js';

let t: TestApp;
const g = createGenerator(6060);
let a: SyntheticPatient, b: SyntheticPatient;
const HIP = 'HIP-MOVE',
  HIU = 'HIU-MOVE';

beforeAll(async () => {
  t = await createTestApp();
  a = g.patient();
  b = g.patient();
});
afterAll(async () => {
  await t?.close();
});

/** A record for `p` with the given Bundle.identifier value. */
const bundleFor = (p: SyntheticPatient, identifier: string) => {
  const rec = g.record(p, 'Prescription', {
    date: '2024-05-01T10:00:00+05:30',
    careContext: { referenceNumber: 'CC-M', display: 'CC-M' },
  });
  rec.bundle.identifier = { system: 'https://hip-move.example.in/documents', value: identifier };
  return JSON.stringify(rec.bundle);
};
const upload = (body: string) =>
  t.request('/fhir/Bundle', { method: 'POST', body, headers: uploadHeaders('CC-M'), as: ['hip', HIP] });

/** Walks every page; returns the totals seen and the ids served. */
async function walk(first: string, init: { as: [any, string]; headers?: Record<string, string> }) {
  const totals: number[] = [],
    ids: string[] = [];
  let url: string | undefined = first;
  while (url) {
    const res = await t.request(url, init);
    expect(res.status, await res.clone().text()).toBe(200);
    const page = await res.json();
    totals.push(page.total);
    ids.push(...(page.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id));
    const next: string | undefined = page.link.find((l: { relation: string }) => l.relation === 'next')?.url;
    url = next ? next.slice(next.indexOf('/fhir/')) : undefined;
  }
  return { totals, ids };
}

async function grant(patientId: string) {
  const { consentId, res } = await grantConsent(t, { patient: patientId, hip: HIP, hiu: HIU, careContexts: ['CC-M'] });
  expect(res.status).toBe(202);
  return consentId;
}

describe('a record that changes patient leaves the former patient', () => {
  it('version 2 naming patient B: searches for A count and serve nothing, B gets the record, for the provider and under consents', async () => {
    const identifier = uuidv4();
    const v1 = await upload(bundleFor(a, identifier));
    expect(v1.status).toBe(201);
    const v2 = await upload(bundleFor(b, identifier));
    expect(v2.status).toBe(201);
    const id = (await v2.json()).id;
    expect(v2.headers.get('etag')).toBe('W/"2"');

    for (const who of [a.abhaAddress, a.abhaNumber]) {
      expect(await walk(`/fhir/Bundle?patient-abha=${encodeURIComponent(who)}&_count=1`, { as: ['hip', HIP] })).toEqual(
        { totals: [0], ids: [] },
      );
    }
    expect(
      await walk(`/fhir/Bundle?patient-abha=${encodeURIComponent(b.abhaNumber)}&_count=1`, { as: ['hip', HIP] }),
    ).toEqual({ totals: [1], ids: [id] });

    const underA = await grant(a.abhaAddress),
      underB = await grant(b.abhaAddress);
    expect(await walk('/fhir/Bundle?_count=1', { as: ['hiu', HIU], headers: { 'X-Consent-Id': underA } })).toEqual({
      totals: [0],
      ids: [],
    });
    expect(await walk('/fhir/Bundle?_count=1', { as: ['hiu', HIU], headers: { 'X-Consent-Id': underB } })).toEqual({
      totals: [1],
      ids: [id],
    });
    // the former patient's index documents no longer hold it
    for (const key of [
      patientIndexKey(HIP, { abhaAddress: a.abhaAddress }),
      patientIndexKey(HIP, { abhaNumber: a.abhaNumber.replace(/-/g, '') }),
    ]) {
      const doc = await t.collections.patientIndex.findOne({ _id: key });
      expect(doc?.entries?.[id], key).toBeUndefined();
    }
    // the old version stays readable in the history
    expect((await t.request(`/fhir/Bundle/${id}/_history/1`, { as: ['hip', HIP] })).status).toBe(200);
  });

  it('an entry a crash left under the former patient is not counted, and the listing drops it', async () => {
    const identifier = uuidv4();
    const v1 = await upload(bundleFor(a, identifier));
    const id = (await v1.json()).id;
    const key = patientIndexKey(HIP, { abhaAddress: a.abhaAddress });
    const entry = (await t.collections.patientIndex.findOne({ _id: key }))!.entries[id];
    const v2 = await upload(bundleFor(b, identifier));
    expect(v2.status).toBe(201);
    expect(v2.headers.get('etag')).toBe('W/"2"');
    // As a crash between the pointer and the index writes would leave it: the old entry is back.
    await t.collections.patientIndex.updateOne({ _id: key }, { $set: { [`entries.${id}`]: entry } });
    const before = await walk(`/fhir/Bundle?patient-abha=${encodeURIComponent(a.abhaAddress)}&_count=50`, {
      as: ['hip', HIP],
    });
    expect(before.ids).not.toContain(id);
    expect(before.totals[0]).toBe(before.ids.length);
    expect((await t.collections.patientIndex.findOne({ _id: key }))!.entries[id]).toBeUndefined();
  });
});
