/**
 * A consent covering 1,000 records is transferred completely (ABDM's
 * HIP_INIT_SHARE_CARECONTEXT expects a transfer within 2 hours): every entry
 * reaches the viewer and decrypts with its key, the notify says TRANSFERRED
 * with every care context DELIVERED, and the transfer's duration is observed
 * in `abha_vault_hi_transfer_seconds` (http/metrics.ts). The duration is
 * printed; nothing is asserted about it beyond the test's own timeout.
 *
 * The records are seeded through the store's own upload path (validation,
 * index keys, versions, current pointers and contents, as bench/run.ts does),
 * without HTTP, a few at a time; only the patient index is written once at
 * the end instead of after each upload: on the embedded FerretDB each put
 * rewrites the patient's whole index document, so 1,000 puts for one patient
 * take minutes (quadratic), which is the seed's cost, not the transfer's.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import { hiRequestBody, startViewer, type Viewer } from '../support/viewer.js';
import { createTestApp, sharedStructure, type TestApp } from '../support/app.js';
import { grantConsent } from '../support/consents.js';
import { startStandInGateway, v3Headers, type StandInGateway, gatewayEnv } from '../support/stand-in-gateway.js';
import { createGenerator, type RecordKind } from '../../fixtures/generator.js';
import { decrypt, generateKeyMaterial } from '../../src/abdm/fidelius.js';
import { validatorOptions } from '../../src/config.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { RecordStore } from '../../src/records/store.js';
import { indexKeys } from '../../src/records/index-keys.js';
import { entryOf, keysOf } from '../../src/records/patient-index.js';
import type { CurrentDoc, IndexEntry } from '../../src/records/model.js';

const HIP = 'HIP-SCALE';
const HIU = 'HIU-SCALE';
const RECORDS = 1000;
const CARE_CONTEXTS = Array.from({ length: 10 }, (_, i) => `CC-${String(i).padStart(2, '0')}`);
const NOTIFY = '/data-flow/v3/health-information/notify';

let gw: StandInGateway;
let viewer: Viewer;
let t: TestApp;
/** The pages the viewer received. */
const pages = (): any[] => viewer.pages.map((p) => p.body);
let abhaAddress: string;

beforeAll(async () => {
  gw = await startStandInGateway();
  viewer = await startViewer();
  const port = viewer.port;
  t = await createTestApp({
    ...gatewayEnv(gw),
    HI_PAGE_SIZE: '100',
    HI_PUSH_TIMEOUT_MS: '60000',
    HI_PUSH_ALLOWED_HOSTS: `127.0.0.1:${port}`,
    HIP_INITIATED_LINKING: 'false',
  });

  // Seed: one patient, 1,000 records over 10 care contexts, 2023 to 2024, through the store's upload path.
  const g = createGenerator(1000_2026);
  const patient = g.patient();
  abhaAddress = patient.abhaAddress;
  const validator = new DocumentValidator(validatorOptions(t.config), sharedStructure());
  const store = new RecordStore(t.collections, t.engine);
  // The patient index, collected here and written once below (see the file header).
  const published: CurrentDoc[] = [];
  const put = async (d: CurrentDoc) => void published.push(d);
  type Index = { put: typeof put; firstVersion<T>(r: unknown, work: (p: typeof put) => Promise<T>): Promise<T> };
  (store as unknown as { index: Index }).index = { put, firstVersion: (_r, work) => work(put) };
  const kinds: RecordKind[] = ['Prescription', 'DiagnosticReport'];
  const started = Date.now();
  const one = async (i: number) => {
    const careContext = CARE_CONTEXTS[i % CARE_CONTEXTS.length];
    const day = new Date(Date.UTC(2023, 0, 1) + i * 12 * 3600_000).toISOString().slice(0, 10);
    const rec = g.record(patient, kinds[i % 2], {
      date: `${day}T09:00:00+05:30`,
      careContext: { referenceNumber: careContext, display: careContext },
      entries: 6,
    });
    const text = JSON.stringify(rec.bundle);
    const result = await store.upload({
      text,
      keys: indexKeys(validator.validateText(text)),
      provider: HIP,
      careContext,
      careContextDisplay: careContext,
      now: new Date(),
    });
    expect(result.created).toBe(true);
  };
  const PARALLEL = 8;
  for (let i = 0; i < RECORDS; i += PARALLEL)
    await Promise.all(Array.from({ length: Math.min(PARALLEL, RECORDS - i) }, (_, k) => one(i + k)));
  const index = new Map<string, Record<string, IndexEntry>>();
  for (const d of published)
    for (const key of keysOf(d)) {
      const entry: IndexEntry = entryOf(d);
      index.set(key, { ...index.get(key), [d._id]: entry });
    }
  await t.collections.patientIndex.insertMany([...index].map(([_id, entries]) => ({ _id, entries })));
  console.log(`[push-scale] seeded ${RECORDS} records in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 600_000);

afterAll(async () => {
  await viewer?.close();
  await gw?.close();
  await t?.close();
});

async function transferCount(): Promise<number> {
  const res = await t.request('/metrics', { as: ['admin', 'ops'] });
  expect(res.status).toBe(200);
  const m = /^abha_vault_hi_transfer_seconds_count\{outcome="TRANSFERRED"\} (\d+)$/m.exec(await res.text());
  return m ? Number(m[1]) : 0;
}

it('a consent covering 1,000 records: every entry delivered and decrypted, TRANSFERRED, the duration observed', async () => {
  const { consentId, res: granted } = await grantConsent(t, {
    patient: abhaAddress,
    hip: HIP,
    hiu: HIU,
    careContexts: CARE_CONTEXTS,
    hiTypes: ['Prescription', 'DiagnosticReport'],
    from: '2020-01-01',
    to: '2030-01-01',
  });
  expect(granted.status).toBe(202);
  const before = await transferCount();
  const key = generateKeyMaterial();
  const txId = uuidv4();
  const started = performance.now();
  const res = await t.request('/api/v3/hip/health-information/request', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(HIP),
    body: JSON.stringify(
      hiRequestBody({
        txId,
        consentId,
        dataPushUrl: `${viewer.url}/push/${txId}`,
        key,
        range: { from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' },
      }),
    ),
  });
  expect(await res.json()).toMatchObject({ transactionId: txId, status: 'ACKNOWLEDGED' });
  const notify = await gw.waitFor(NOTIFY, (c) => c.body.notification.transactionId === txId, 540_000);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `[push-scale] ${RECORDS} records in ${pages().length} pages: request to notify ${seconds.toFixed(1)} s (ABDM: within 2 h)`,
  );

  expect(notify.body.notification.statusNotification.sessionStatus).toBe('TRANSFERRED');
  expect(
    Object.fromEntries(
      notify.body.notification.statusNotification.statusResponses.map((s: any) => [s.careContextReference, s.hiStatus]),
    ),
  ).toEqual(Object.fromEntries(CARE_CONTEXTS.map((cc) => [cc, 'DELIVERED'])));
  expect(pages().map((p: any) => p.pageNumber)).toEqual(Array.from({ length: RECORDS / 100 }, (_, i) => i + 1));

  const decryptStarted = performance.now();
  const ids = new Set<string>();
  for (const page of pages())
    for (const e of page.entries) {
      const plaintext = decrypt({
        encryptedData: e.content,
        requesterNonce: key.nonce,
        senderNonce: page.keyMaterial.nonce,
        requesterPrivateKey: key.privateKey,
        senderPublicKey: page.keyMaterial.dhPublicKey.keyValue,
      });
      expect(e.checksum).toBe(createHash('md5').update(plaintext).digest('base64'));
      ids.add(JSON.parse(plaintext).id);
    }
  expect(ids.size).toBe(RECORDS);
  console.log(
    `[push-scale] the viewer decrypted ${ids.size} entries in ${((performance.now() - decryptStarted) / 1000).toFixed(1)} s`,
  );

  await expect.poll(transferCount).toBe(before + 1);
  gw.assertClean();
}, 600_000);
