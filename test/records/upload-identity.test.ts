// Uploads through createApp on the real database where the text or the identifiers could make one
// record mean two patients: a hospital MRN shaped like an ABHA number must not become the patient
// key, two different ABHA numbers are refused, and a member name given twice in one object (which
// JSON readers resolve differently) is refused before anything is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';

const V2 = 'http://terminology.hl7.org/CodeSystem/v2-0203';
const MR = { system: V2, code: 'MR', display: 'Medical record number' };
const HOSPITAL = 'HOSP-1';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

/** fixtures/examples/prescription.json with a fresh Bundle.identifier and the Patient's identifiers replaced. */
function prescription(identifiers: unknown[]): Record<string, any> {
  const b = JSON.parse(readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'));
  b.identifier.value = uuidv4();
  expect(b.entry[1].resource.resourceType).toBe('Patient');
  b.entry[1].resource.identifier = identifiers;
  return b;
}
const post = (body: string, careContext = 'OP-ID-1') =>
  t.request('/fhir/Bundle', { method: 'POST', body, headers: uploadHeaders(careContext), as: ['hip', HOSPITAL] });
const search = async (query: string) => {
  const res = await t.request(`/fhir/Bundle?${query}`, { as: ['hip', HOSPITAL] });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
};

describe('a hospital MRN shaped like an ABHA number', () => {
  it('is not the patient key: the record is found by the ABHA-system number and not by the MRN', async () => {
    const b = prescription([
      { type: { coding: [MR] }, system: 'https://hospital.example.in/mrn', value: '22-3333-4444-5555' },
      { type: { coding: [MR] }, system: 'https://healthid.abdm.gov.in', value: '91-4417-2093-5586' },
    ]);
    const res = await post(JSON.stringify(b));
    expect(res.status, await res.clone().text()).toBe(201);
    const id = res.headers.get('location')!.split('/')[5];

    const byAbha = await search('patient-abha=91-4417-2093-5586');
    expect(byAbha.total).toBe(1);
    expect(byAbha.entry.map((e: any) => e.resource.id)).toEqual([id]);
    expect((await search('patient-abha=91441720935586')).total).toBe(1);
    expect((await search('patient-abha=22-3333-4444-5555')).total).toBe(0);
    // Consents match records on this stored key, so a consent naming the MRN value matches nothing.
    const current = await t.collections.current.findOne({ _id: id } as any);
    expect(current).toMatchObject({ abhaNumber: '91441720935586', abhaAddress: null });
  });
});

describe('two different ABHA numbers for one patient', () => {
  it('are refused with 422 naming both, and nothing is stored', async () => {
    const b = prescription([
      { type: { coding: [MR] }, system: 'https://healthid.abdm.gov.in', value: '55-1111-2222-3333' },
      { type: { coding: [MR] }, system: 'https://hospital.example.in/mrn', value: 'MRN-77' },
      {
        type: {
          coding: [
            {
              system: 'https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code',
              code: 'HIN',
              display: 'Health ID number',
            },
          ],
        },
        value: '55-4444-5555-6666',
      },
    ]);
    const res = await post(JSON.stringify(b), 'OP-ID-2');
    expect(res.status).toBe(422);
    const oo = await res.json();
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue).toEqual([
      {
        severity: 'error',
        code: 'business-rule',
        diagnostics: expect.stringMatching(
          /identifier\[0\] \('55-1111-2222-3333'\) and .*identifier\[2\] \('55-4444-5555-6666'\) are two different ABHA numbers/,
        ),
        expression: ['Bundle.entry[1].resource.identifier[2].value'],
      },
    ]);
    for (const q of ['55-1111-2222-3333', '55-4444-5555-6666'])
      expect((await search(`patient-abha=${q}`)).total).toBe(0);
  });
});

describe('a member name given twice in one object', () => {
  it('is refused with 422 naming the member at its path, and nothing is stored', async () => {
    const b = prescription([
      { type: { coding: [MR] }, system: 'https://healthid.abdm.gov.in', value: '66-1111-2222-3333' },
    ]);
    const patient = JSON.stringify(b.entry[1].resource);
    const text = JSON.stringify(b);
    expect(text.split(patient)).toHaveLength(2);
    // A reader that keeps the first member sees patient 66-7777-8888-9999; JSON.parse keeps the last,
    // 66-1111-2222-3333.
    const first = JSON.stringify([
      { type: { coding: [MR] }, system: 'https://healthid.abdm.gov.in', value: '66-7777-8888-9999' },
    ]);
    const body = text.replace(patient, patient.replace('"identifier":', `"identifier":${first},"identifier":`));
    expect(JSON.parse(body).entry[1].resource.identifier[0].value).toBe('66-1111-2222-3333');

    const before = await t.collections.versions.countDocuments({});
    const res = await post(body, 'OP-ID-3');
    expect(res.status).toBe(422);
    const oo = await res.json();
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue).toHaveLength(1);
    expect(oo.issue[0]).toMatchObject({
      severity: 'error',
      code: 'structure',
      expression: ['Bundle.entry[1].resource.identifier'],
    });
    expect(oo.issue[0].diagnostics).toContain("Member 'identifier' occurs more than once");
    expect(await t.collections.versions.countDocuments({})).toBe(before);
    for (const q of ['66-1111-2222-3333', '66-7777-8888-9999'])
      expect((await search(`patient-abha=${q}`)).total).toBe(0);
  });
});
