/**
 * End to end: the real server on a free port, driven by fhir-kit-client as a
 * hospital integrator would: upload, read, re-upload, version, search, page.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Client } from 'fhir-kit-client';
import { v4 as uuidv4 } from 'uuid';
import { startServer, type RunningServer } from '../support/server.js';
import { createGenerator } from '../../fixtures/generator.js';
import { signDevToken } from '../../src/auth/token.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let server: RunningServer;
let token: string;
const db = `e2e_${process.pid}_${Date.now().toString(36)}`;
const dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-e2e-'));
beforeAll(async () => {
  server = await startServer({ MONGODB_URI: inject('mongoUri'), MONGODB_DB: db, DATA_DIR: dataDir });
  // the server made its development key pair in DATA_DIR; `npm run token` signs with the same key
  token = await signDevToken(dataDir, { role: 'hip', facility: 'HOSP-E2E' });
});
afterAll(async () => {
  expect(await server?.stop()).toBe(0);
  rmSync(dataDir, { recursive: true, force: true });
});

const client = (careContext = 'IPD-2024-0001') =>
  new Client({
    baseUrl: `${server.url}/fhir`,
    customHeaders: { Authorization: `Bearer ${token}`, 'X-Care-Context': careContext },
  });

describe('a hospital integrator with fhir-kit-client', () => {
  const g = createGenerator(2024);
  const patient = g.patient();

  it('reads the CapabilityStatement', async () => {
    const cs: any = await client().capabilityStatement();
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.rest[0].resource[0].type).toBe('Bundle');
  });

  it('uploads, reads, re-uploads idempotently, versions, reads history and old versions', async () => {
    const rec = g.record(patient, 'DischargeSummary', { entries: 30 });
    const created: any = await client().create({ resourceType: 'Bundle', body: rec.bundle as any });
    expect(created.meta.versionId).toBe('1');
    const id = created.id as string;

    const read: any = await client().read({ resourceType: 'Bundle', id });
    expect(read.identifier).toEqual(rec.bundle.identifier);
    expect(read.entry).toHaveLength(30);

    const again: any = await client().create({ resourceType: 'Bundle', body: rec.bundle as any });
    expect(again.id).toBe(id);
    expect(again.meta.versionId).toBe('1');

    const amended = structuredClone(rec.bundle);
    (amended.entry![0].resource as any).title = 'Discharge summary (amended)';
    const v2: any = await client().create({ resourceType: 'Bundle', body: amended as any });
    expect(v2.id).toBe(id);
    expect(v2.meta.versionId).toBe('2');

    const history: any = await client().history({ resourceType: 'Bundle', id });
    expect(history.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);
    const v1: any = await client().vread({ resourceType: 'Bundle', id, version: '1' });
    expect(v1.entry[0].resource.title).toBe((rec.bundle.entry![0].resource as any).title);
  });

  it('searches by ABHA, type and date and follows next links', async () => {
    for (const r of g.records(patient, 7))
      await client(r.careContext.referenceNumber).create({ resourceType: 'Bundle', body: r.bundle as any });
    const first: any = await client().search({
      resourceType: 'Bundle',
      searchParams: { 'patient-abha': patient.abhaAddress, _count: 3 },
    });
    expect(first.total).toBe(8);
    const seen = first.entry.map((e: any) => e.resource.id);
    let page = first;
    while ((page = (await client().nextPage({ bundle: page })) as any))
      seen.push(...page.entry.map((e: any) => e.resource.id));
    expect(seen).toHaveLength(8);
    expect(new Set(seen).size).toBe(8);
    const ds: any = await client().search({
      resourceType: 'Bundle',
      searchParams: { 'patient-abha': patient.abhaNumber, type: 'DischargeSummary', date: 'ge1900-01-01' },
    });
    expect(ds.entry.every((e: any) => e.resource.entry[0].resource.type.coding[0].code === '373942005')).toBe(true);
  });

  it('gets a 422 OperationOutcome for an invalid document', async () => {
    const rec = g.record(patient, 'Prescription');
    const bad: any = structuredClone(rec.bundle);
    bad.identifier.value = uuidv4();
    delete bad.timestamp;
    const err: any = await client()
      .create({ resourceType: 'Bundle', body: bad })
      .catch((e: unknown) => e);
    expect(err.response.status).toBe(422);
    expect(err.response.data.resourceType).toBe('OperationOutcome');
    expect(err.response.data.issue.some((i: any) => i.expression?.[0] === 'Bundle.timestamp')).toBe(true);
  });
});
