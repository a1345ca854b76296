/**
 * The repository is the one home of "is it allowed": a viewer's search, a
 * viewer's read and the health-information push of the same consent see the
 * same records, every refusal is audited once where it is made, and a
 * provider sees only its own records. Through the repository alone, no HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { type FhirError } from '../../src/fhir/outcome.js';
import type { Caller } from '../../src/auth/caller.js';

let t: TestApp;
const g = createGenerator(8181);
let p: SyntheticPatient;
const HIP = 'HIP-REPO',
  HIU = 'HIU-REPO';
const viewer: Caller = { role: 'hiu', facilityId: HIU, subject: HIU };
const provider: Caller = { role: 'hip', facilityId: HIP, subject: HIP };
const ids: string[] = [];

beforeAll(async () => {
  t = await createTestApp();
  p = g.patient();
  const plan: [string, 'Prescription' | 'DiagnosticReport' | 'DischargeSummary', string][] = [
    ['CC-1', 'Prescription', '2023-02-01T10:00:00Z'],
    ['CC-1', 'DiagnosticReport', '2023-05-01T10:00:00Z'],
    ['CC-2', 'Prescription', '2024-01-01T10:00:00Z'],
    ['CC-3', 'Prescription', '2024-03-01T10:00:00Z'],
    ['CC-2', 'DischargeSummary', '2024-06-01T10:00:00Z'],
    ['CC-1', 'Prescription', '2019-01-01T10:00:00Z'],
  ];
  for (const [cc, kind, date] of plan) {
    const rec = g.record(p, kind, { date, careContext: { referenceNumber: cc, display: cc } });
    const res = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(rec.bundle),
      headers: uploadHeaders(cc),
      as: ['hip', HIP],
    });
    expect(res.status).toBe(201);
    ids.push((await res.json()).id);
  }
});
afterAll(async () => {
  await t?.close();
});

async function grant(): Promise<string> {
  const consentId = uuidv4();
  await t.consents.apply(
    {
      consentId,
      status: 'GRANTED',
      consentDetail: {
        consentId,
        createdAt: '2024-01-01T00:00:00Z',
        patient: { id: p.abhaAddress },
        careContexts: [{ careContextReference: 'CC-1' }, { careContextReference: 'CC-2' }],
        purpose: { code: 'CAREMGT' },
        hip: { id: HIP },
        hiu: { id: HIU },
        hiTypes: ['Prescription', 'DiagnosticReport'],
        permission: {
          accessMode: 'VIEW',
          dateRange: { from: '2020-01-01', to: '2030-01-01' },
          dataEraseAt: '2099-01-01T00:00:00Z',
          frequency: { unit: 'HOUR', value: 100 },
        },
      },
    } as never,
    new Date(),
  );
  return consentId;
}

describe('one home for what a consent allows', () => {
  it("a viewer's search, a viewer's reads and the push of the same consent see exactly the same records", async () => {
    const consentId = await grant();
    const repo = await t.repositories.forRequest(viewer, consentId, uuidv4());
    const searched = (await repo.search(new URLSearchParams('_count=100'))).page.map((s) => s.doc._id);
    // CC-3, the discharge summary and the 2019 record are outside
    expect(searched.sort()).toEqual([ids[0], ids[1], ids[2]].sort());
    const readable: string[] = [];
    for (const id of ids) {
      try {
        readable.push((await repo.read(id)).doc._id);
      } catch (e) {
        expect((e as FhirError).status).toBe(404);
      }
    }
    expect(readable.sort()).toEqual([...searched].sort());
    const consent = (await t.consents.get(consentId))!;
    const push = t.repositories.forPush(consent, { from: new Date('2000-01-01'), to: new Date('2100-01-01') });
    const selected = await push.select();
    expect([...selected].sort()).toEqual([...searched].sort());
    expect(selected).toEqual([ids[0], ids[1], ids[2]]); // oldest first
    for (const id of ids) expect((await push.covered(id)) !== null, id).toBe(searched.includes(id));
    // the requested dateRange narrows the push, never widens it
    expect(
      await t.repositories.forPush(consent, { from: new Date('2023-03-01'), to: new Date('2023-12-31') }).select(),
    ).toEqual([ids[1]]);
  });

  it('a refusal is audited once, where it is made, and marked so', async () => {
    const consentId = await grant();
    await t.consents.apply({ consentId, status: 'REVOKED' } as never, new Date());
    const before = await t.audit.events.countDocuments({});
    const repo = await t.repositories.forRequest(viewer, consentId, uuidv4());
    const e = await repo.search(new URLSearchParams()).then(
      () => undefined,
      (x) => x as FhirError,
    );
    expect(e?.status).toBe(403);
    expect(e?.audited).toBe(true);
    expect(await t.audit.events.countDocuments({})).toBe(before + 1);
    const event = await t.audit.events.find({}).sort({ _id: -1 }).limit(1).next();
    expect(event).toMatchObject({
      action: 'record.search',
      outcome: 'refused',
      consentId,
      patients: [p.abhaAddress.toLowerCase()],
    });
  });

  it("a provider's repository sees only its own records; another's is not found", async () => {
    const mine = await t.repositories.forRequest(provider, null, uuidv4());
    expect((await mine.read(ids[0])).doc._id).toBe(ids[0]);
    const other = await t.repositories.forRequest(
      { role: 'hip', facilityId: 'HIP-ELSE', subject: 'x' },
      null,
      uuidv4(),
    );
    await expect(other.read(ids[0])).rejects.toMatchObject({ status: 404, audited: true });
    expect((await other.search(new URLSearchParams())).total).toBe(0);
    await expect(other.history(ids[0], new URLSearchParams())).rejects.toMatchObject({ status: 404 });
  });

  it('a viewer without a consent id is told to send one', async () => {
    await expect(t.repositories.forRequest(viewer, null, uuidv4())).rejects.toMatchObject({ status: 400 });
  });
});
