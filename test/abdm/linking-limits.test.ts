/**
 * link/init limits (per patient, counted in the database; per caller, in
 * process) and the production start refusing console delivery of one-time
 * codes.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { startServer } from '../support/server.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';

let gw: StandInGateway;
const g = createGenerator(4242);
const gatewayEnv = () => ({
  GATEWAY_BASE_URL: gw.url,
  GATEWAY_CLIENT_ID: 'abha-vault',
  GATEWAY_CLIENT_SECRET: 's3cret',
});

beforeAll(async () => {
  gw = await startStandInGateway();
});
afterAll(async () => {
  await gw?.close();
});

async function upload(t: TestApp, p: SyntheticPatient, cc: string) {
  const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: cc, display: cc } });
  await t.upload('HIP-R', rec.bundle, cc);
}

const init = (t: TestApp, p: SyntheticPatient, cc: string, facility = 'sbx') =>
  t.request('/v0.5/links/link/init', {
    method: 'POST',
    as: ['cm', facility],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-R' },
    body: JSON.stringify({
      requestId: uuidv4(),
      timestamp: new Date().toISOString(),
      transactionId: uuidv4(),
      patient: { id: p.abhaAddress, referenceNumber: p.abhaAddress, careContexts: [{ referenceNumber: cc }] },
    }),
  });

const linkInitAudits = (t: TestApp, status: number) =>
  t.client.db(t.config.MONGODB_DB).collection('audit_events').find({ action: 'link.init', status }).toArray();

describe('link/init per patient (LINK_INIT_PER_PATIENT_PER_HOUR, shared through the database)', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await createTestApp({
      ...gatewayEnv(),
      LINK_INIT_PER_PATIENT_PER_HOUR: '3',
      LINK_INIT_PER_CALLER_PER_MINUTE: '0',
    });
    // A second server process on the same database: its own memory, the same counters.
    b = await createTestApp({
      ...gatewayEnv(),
      LINK_INIT_PER_PATIENT_PER_HOUR: '3',
      LINK_INIT_PER_CALLER_PER_MINUTE: '0',
      MONGODB_DB: a.config.MONGODB_DB,
    });
  });
  afterAll(async () => {
    await b?.client.close();
    if (b) rmSync(b.config.DATA_DIR, { recursive: true, force: true });
    await a?.close();
  });

  it('past the limit for one patient, across processes, answers 429 with Retry-After, audits a refusal and issues no code', async () => {
    const p = g.patient();
    await upload(a, p, 'OPD-R1');
    for (const t of [a, b, a]) expect((await init(t, p, 'OPD-R1')).status).toBe(202);
    await expect.poll(() => a.otps.length + b.otps.length).toBe(3);
    const over = await init(b, p, 'OPD-R1');
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
    const outcome = await over.json();
    expect(outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.issue[0].code).toBe('throttled');
    expect((await init(a, p, 'OPD-R1')).status).toBe(429);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.otps.length + b.otps.length).toBe(3); // no code past the limit
    const refused = await linkInitAudits(a, 429);
    expect(refused).toHaveLength(2);
    expect(refused.every((e) => e.outcome === 'refused' && e.patients.includes(p.abhaAddress.toLowerCase()))).toBe(
      true,
    );
    // Another patient is not held back.
    const q = g.patient();
    await upload(a, q, 'OPD-R2');
    expect((await init(a, q, 'OPD-R2')).status).toBe(202);
  });

  it('concurrent link/inits for one patient issue at most the limit of codes', async () => {
    const p = g.patient();
    await upload(a, p, 'OPD-R3');
    const before = a.otps.length;
    const statuses = await Promise.all(Array.from({ length: 12 }, () => init(a, p, 'OPD-R3').then((r) => r.status)));
    expect(statuses.filter((s) => s === 202)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(9);
    await expect.poll(() => a.otps.length - before).toBe(3);
  });
});

describe('link/init per caller (LINK_INIT_PER_CALLER_PER_MINUTE, per token facility)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({
      ...gatewayEnv(),
      LINK_INIT_PER_CALLER_PER_MINUTE: '3',
      LINK_INIT_PER_PATIENT_PER_HOUR: '100',
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('past the limit for one caller answers 429 with Retry-After, audits a refusal and issues no code; other callers go on', async () => {
    const patients = Array.from({ length: 5 }, () => g.patient());
    for (const [i, p] of patients.entries()) await upload(t, p, `OPD-C${i}`);
    for (let i = 0; i < 3; i++) expect((await init(t, patients[i], `OPD-C${i}`)).status).toBe(202);
    const over = await init(t, patients[3], 'OPD-C3');
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await over.json()).issue[0].code).toBe('throttled');
    await expect.poll(() => t.otps.length).toBe(3);
    const refused = await linkInitAudits(t, 429);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ outcome: 'refused', actor: { role: 'cm', facility: 'sbx' } });
    expect((await init(t, patients[4], 'OPD-C4', 'sbx-other')).status).toBe(202);
  });
});

describe('production start and one-time code delivery', () => {
  it('the server refuses to start with NODE_ENV=production and console delivery, naming LINK_OTP_DELIVERY', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-otp-prod-'));
    try {
      // Keys configured, so that nothing else stops a production start.
      const keyFile = join(dataDir, 'verify.pem');
      writeFileSync(
        keyFile,
        generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
      );
      const env = {
        NODE_ENV: 'production',
        MONGODB_URI: inject('mongoUri'),
        MONGODB_DB: `otp_prod_${process.pid}`,
        DATA_DIR: dataDir,
        AUTH_PUBLIC_KEY_FILE: keyFile,
        PUBLIC_BASE_URL: 'https://vault.example.in',
      };
      for (const delivery of [{ LINK_OTP_DELIVERY: 'console' }, {}] as Record<string, string>[]) {
        let started: Awaited<ReturnType<typeof startServer>> | undefined;
        const outcome = await startServer({ ...env, ...delivery }).then(
          (s) => {
            started = s;
            return 'started';
          },
          (e: Error) => e.message,
        );
        await started?.stop();
        expect(outcome).toMatch(/LINK_OTP_DELIVERY/);
        expect(outcome).toMatch(/server exited 1/);
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
