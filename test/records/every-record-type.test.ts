/**
 * All eight ABDM record types through the whole store: each generated record (fixtures/generator.ts)
 * uploads (201), searches by its type for the provider, is served to a viewer exactly under a consent
 * for its hiType and for no other, is offered by v3 discovery under its hiType, and is pushed,
 * Fidelius-encrypted, under a consent naming all eight; the viewer decrypts one record of each type.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';
import { grantConsent } from '../support/consents.js';
import { startStandInGateway, v3Headers, gatewayEnv, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, RECORD_KINDS, type SyntheticPatient } from '../../fixtures/generator.js';
import { decrypt, generateKeyMaterial } from '../../src/abdm/fidelius.js';
import { HI_TYPES } from '../../src/consents/schema.js';
import { hiRequestBody, startViewer, type Viewer } from '../support/viewer.js';

const HIP = 'HIP-ALL';
const HIU = 'HIU-ALL';
const g = createGenerator(20261202);
let t: TestApp;
let gw: StandInGateway;
let viewer: Viewer;
let patient: SyntheticPatient;
/** hiType → the id of its record; the care context of each is `CC-<hiType>`. */
const idOf = new Map<string, string>();
const ccOf = (hiType: string) => `CC-${hiType}`;

/** The Composition's record profile name of a bundle (as the store returns it). */
const recordProfile = (b: any): string =>
  String(b.entry[0].resource.meta?.profile?.[0] ?? '')
    .split('/')
    .pop() ?? '';
const PROFILE_OF: Record<string, string> = {
  Prescription: 'PrescriptionRecord',
  DiagnosticReport: 'DiagnosticReportRecord',
  OPConsultation: 'OPConsultRecord',
  DischargeSummary: 'DischargeSummaryRecord',
  ImmunizationRecord: 'ImmunizationRecord',
  HealthDocumentRecord: 'HealthDocumentRecord',
  WellnessRecord: 'WellnessRecord',
  Invoice: 'InvoiceRecord',
};

async function ids(path: string, as: [any, string], headers: Record<string, string> = {}): Promise<string[]> {
  const res = await t.request(path, { as, headers });
  expect(res.status, await res.clone().text()).toBe(200);
  const page = await res.json();
  return page.entry.map((e: any) => e.resource.id).sort();
}

beforeAll(async () => {
  gw = await startStandInGateway();
  viewer = await startViewer();
  t = await createTestApp({
    ...gatewayEnv(gw),
    HI_PUSH_ALLOWED_HOSTS: `127.0.0.1:${viewer.port}`,
    HIP_INITIATED_LINKING: 'false',
  });
  patient = g.patient();
  for (const kind of RECORD_KINDS) {
    const cc = ccOf(kind);
    const rec = g.record(patient, kind, { careContext: { referenceNumber: cc, display: `Visit ${cc}` } });
    idOf.set(kind, await t.upload(HIP, rec.bundle, cc, `Visit ${cc}`));
  }
});

afterEach(() => gw.assertClean());

afterAll(async () => {
  await viewer?.close();
  await gw?.close();
  await t?.close();
});

describe('every ABDM record type', () => {
  it('the generator makes all eight, one per hiType a consent may name', () => {
    expect([...RECORD_KINDS].sort()).toEqual([...HI_TYPES].sort());
    expect(idOf.size).toBe(8);
  });

  it('the provider finds each by its type, and reads it back as uploaded', async () => {
    for (const hiType of RECORD_KINDS) {
      const found = await ids(`/fhir/Bundle?patient-abha=${patient.abhaAddress}&type=${hiType}`, ['hip', HIP]);
      expect([hiType, found]).toEqual([hiType, [idOf.get(hiType)]]);
      const res = await t.request(`/fhir/Bundle/${idOf.get(hiType)}`, { as: ['hip', HIP] });
      expect(res.status).toBe(200);
      expect(recordProfile(await res.json())).toBe(PROFILE_OF[hiType]);
    }
  });

  it('a consent for one hiType serves exactly the records of that type (OPConsultation: the OP consultation)', async () => {
    const careContexts = RECORD_KINDS.map(ccOf);
    for (const hiType of RECORD_KINDS) {
      const { consentId, res } = await grantConsent(t, {
        patient: patient.abhaAddress,
        hip: HIP,
        hiu: HIU,
        careContexts,
        hiTypes: [hiType],
      });
      expect(res.status).toBe(202);
      const served = await ids(`/fhir/Bundle?patient-abha=${patient.abhaAddress}`, ['hiu', HIU], {
        'X-Consent-Id': consentId,
      });
      expect([hiType, served]).toEqual([hiType, [idOf.get(hiType)]]);
      // and no record of another type, by id: not found (the store does not say a record it will not show exists)
      for (const other of RECORD_KINDS.filter((k) => k !== hiType)) {
        const r = await t.request(`/fhir/Bundle/${idOf.get(other)}`, {
          as: ['hiu', HIU],
          headers: { 'X-Consent-Id': consentId },
        });
        expect([hiType, other, r.status]).toEqual([hiType, other, 404]);
      }
    }
  });

  it('v3 discovery offers each care context under its hiType', async () => {
    const requestId = uuidv4();
    const res = await t.request('/api/v3/hip/patient/care-context/discover', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: v3Headers(HIP, requestId),
      body: JSON.stringify({
        transactionId: uuidv4(),
        patient: { id: patient.abhaAddress, verifiedIdentifiers: [], unverifiedIdentifiers: [] },
      }),
    });
    expect(res.status).toBe(202);
    const answer = await gw.waitFor(
      '/user-initiated-linking/v3/patient/care-context/on-discover',
      (c) => c.body.response?.requestId === requestId,
    );
    const byType = Object.fromEntries(
      answer.body.patient.map((x: any) => [x.hiType, x.careContexts.map((cc: any) => cc.referenceNumber)]),
    );
    expect(byType).toEqual(Object.fromEntries(RECORD_KINDS.map((k) => [k, [ccOf(k)]])));
  });

  it('pushes one record of each type, encrypted, under a consent naming all eight', async () => {
    const { consentId, res } = await grantConsent(t, {
      patient: patient.abhaAddress,
      hip: HIP,
      hiu: HIU,
      careContexts: RECORD_KINDS.map(ccOf),
      hiTypes: [...RECORD_KINDS],
    });
    expect(res.status).toBe(202);
    const key = generateKeyMaterial();
    const txId = uuidv4();
    const sent = await t.request('/api/v3/hip/health-information/request', {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: v3Headers(HIP, uuidv4()),
      body: JSON.stringify(hiRequestBody({ txId, consentId, dataPushUrl: `${viewer.url}/push`, key })),
    });
    expect(sent.status, await sent.clone().text()).toBe(202);
    const notify = await gw.waitFor(
      '/data-flow/v3/health-information/notify',
      (c) => c.body?.notification?.transactionId === txId,
      15_000,
    );
    expect(notify.body.notification.notifier).toBeDefined();
    const got = new Map<string, string>();
    for (const { body: page } of viewer.pages.filter((p) => p.body.transactionId === txId))
      for (const e of page.entries) {
        const bundle = JSON.parse(
          decrypt({
            encryptedData: e.content,
            requesterNonce: key.nonce,
            senderNonce: page.keyMaterial.nonce,
            requesterPrivateKey: key.privateKey,
            senderPublicKey: page.keyMaterial.dhPublicKey.keyValue,
          }),
        );
        got.set(recordProfile(bundle), e.careContextReference);
      }
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(RECORD_KINDS.map((k) => [PROFILE_OF[k], ccOf(k)])));
  });
});
