/**
 * One-time code delivery by webhook to the provider's own system (a tiny
 * HTTP server on loopback standing in for it), and the configuration rules
 * of LINK_OTP_DELIVERY.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { loadConfig } from '../../src/config.js';
import {
  checkLinkingConfig,
  LinkingConfigError,
  assertLinkingConfig,
  otpNotifierFor,
  consoleNotifier,
} from '../../src/abdm/otp-delivery.js';

const SECRET = 'provider-shared-secret-0123456789abcdef';
const g = createGenerator(9090);

/** The provider's system: answers each POST with the next scripted status (200 when the script runs out). */
interface ProviderSystem {
  url: string;
  received: { headers: IncomingHttpHeaders; raw: string }[];
  script: number[];
  close(): Promise<void>;
}
async function startProviderSystem(): Promise<ProviderSystem> {
  const received: ProviderSystem['received'] = [];
  const script: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(script.shift() ?? 200);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/abdm/otp`,
    received,
    script,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Verifies the documented scheme: sha256=hex(HMAC-SHA256(secret, timestamp + "." + body)). */
function verifies(headers: IncomingHttpHeaders, raw: string, secret = SECRET): boolean {
  const ts = String(headers['x-abha-vault-timestamp'] ?? '');
  const sig = String(headers['x-abha-vault-signature'] ?? '');
  const expected = `sha256=${createHmac('sha256', secret).update(`${ts}.${raw}`).digest('hex')}`;
  return /^\d+$/.test(ts) && sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected));
}

describe('webhook delivery of one-time codes', () => {
  let gw: StandInGateway;
  let provider: ProviderSystem;
  let t: TestApp;
  let patient: SyntheticPatient;

  beforeAll(async () => {
    gw = await startStandInGateway();
    provider = await startProviderSystem();
    t = await createTestApp({
      GATEWAY_BASE_URL: gw.url,
      GATEWAY_CLIENT_ID: 'abha-vault',
      GATEWAY_CLIENT_SECRET: 's3cret',
      LINK_OTP_DELIVERY: 'webhook',
      LINK_OTP_WEBHOOK_URL: provider.url,
      LINK_OTP_WEBHOOK_SECRET: SECRET,
      LINK_OTP_WEBHOOK_ATTEMPTS: '3',
      LINK_OTP_WEBHOOK_BACKOFF_MS: '20',
      LINK_OTP_WEBHOOK_TIMEOUT_MS: '2000',
      LINK_INIT_PER_PATIENT_PER_HOUR: '100',
    });
    patient = g.patient();
    for (const cc of ['OPD-W1', 'OPD-W2']) {
      const rec = g.record(patient, 'Prescription', { careContext: { referenceNumber: cc, display: cc } });
      expect(
        (
          await t.request('/fhir/Bundle', {
            method: 'POST',
            body: JSON.stringify(rec.bundle),
            headers: uploadHeaders(cc),
            as: ['hip', 'HIP-W'],
          })
        ).status,
      ).toBe(201);
    }
  });
  afterAll(async () => {
    await t?.close();
    await provider?.close();
    await gw?.close();
  });
  beforeEach(() => {
    provider.received.length = 0;
    provider.script.length = 0;
  });

  const cm = (path: string, body: unknown) =>
    t.request(path, {
      method: 'POST',
      as: ['cm', 'sbx'],
      headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-W' },
      body: JSON.stringify(body),
    });
  async function linkInit(refs: string[]) {
    const requestId = uuidv4();
    const res = await cm('/v0.5/links/link/init', {
      requestId,
      transactionId: uuidv4(),
      patient: {
        id: patient.abhaAddress,
        referenceNumber: patient.abhaAddress,
        careContexts: refs.map((referenceNumber) => ({ referenceNumber })),
      },
    });
    expect(res.status).toBe(202);
    return {
      accepted: await res.json(),
      onInit: (await gw.waitFor('/v0.5/links/link/on-init', (c) => c.body.resp.requestId === requestId)).body,
    };
  }
  async function confirm(linkRefNumber: string, token: string) {
    const requestId = uuidv4();
    await cm('/v0.5/links/link/confirm', { requestId, confirmation: { linkRefNumber, token } });
    return (await gw.waitFor('/v0.5/links/link/on-confirm', (c) => c.body.resp.requestId === requestId)).body;
  }

  it("POSTs a signed message with the provider's own patient identifiers; a 500 is retried, and the delivered code links", async () => {
    provider.script.push(500);
    const { onInit } = await linkInit(['OPD-W1', 'OPD-W2']);
    expect(onInit.error).toBeUndefined();
    const ref = onInit.link.referenceNumber;
    expect(provider.received).toHaveLength(2); // 500, then 200
    for (const r of provider.received) {
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      expect(verifies(r.headers, r.raw)).toBe(true);
      expect(verifies(r.headers, r.raw, 'some-other-secret-of-enough-length-000')).toBe(false);
      expect(Math.abs(Number(r.headers['x-abha-vault-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    }
    expect(provider.received[1].raw).toBe(provider.received[0].raw); // the same bytes on every attempt
    const body = JSON.parse(provider.received[1].raw);
    expect(body).toEqual({
      linkRefNumber: ref,
      provider: 'HIP-W',
      patient: {
        abhaNumbers: [patient.abhaNumber.replace(/-/g, '')],
        abhaAddresses: [patient.abhaAddress.toLowerCase()],
      },
      careContexts: [{ referenceNumber: 'OPD-W1' }, { referenceNumber: 'OPD-W2' }],
      otp: expect.stringMatching(/^\d{6}$/),
      expiresAt: onInit.link.meta.communicationExpiry,
    });
    // A tampered body does not verify.
    expect(verifies(provider.received[1].headers, provider.received[1].raw.replace('HIP-W', 'HIP-X'))).toBe(false);
    expect(t.logs.join('')).not.toContain(body.otp);
    const done = await confirm(ref, body.otp);
    expect(done.patient.careContexts.map((c: any) => c.referenceNumber)).toEqual(['OPD-W1', 'OPD-W2']);
    expect(t.logs.join('')).not.toContain(body.otp);
  });

  it('when delivery finally fails, the link request is FAILED, the gateway gets an on-init error, and the code is not usable', async () => {
    const other = g.patient();
    const rec = g.record(other, 'Prescription', { careContext: { referenceNumber: 'OPD-W3', display: 'W3' } });
    expect(
      (
        await t.request('/fhir/Bundle', {
          method: 'POST',
          body: JSON.stringify(rec.bundle),
          headers: uploadHeaders('OPD-W3'),
          as: ['hip', 'HIP-W'],
        })
      ).status,
    ).toBe(201);
    patient = other;
    provider.script.push(500, 503, 429);
    const { accepted, onInit } = await linkInit(['OPD-W3']);
    expect(onInit.link).toBeUndefined();
    expect(onInit.error.message).toMatch(/could not be delivered/);
    expect(provider.received).toHaveLength(3); // LINK_OTP_WEBHOOK_ATTEMPTS
    const stored = await t.client
      .db(t.config.MONGODB_DB)
      .collection('link_requests')
      .findOne({ _id: accepted.linkRefNumber });
    expect(stored?.status).toBe('FAILED');
    const otp = JSON.parse(provider.received[0].raw).otp;
    expect((await confirm(accepted.linkRefNumber, otp)).error.message).toMatch(/FAILED/);
    expect(
      await t.collections.careContexts.countDocuments({
        provider: 'HIP-W',
        referenceNumber: 'OPD-W3',
        linked: { $exists: true },
      }),
    ).toBe(0);
    expect(t.logs.join('')).not.toContain(otp);
    const audited = await t.client
      .db(t.config.MONGODB_DB)
      .collection('audit_events')
      .findOne({ action: 'link.init', reason: { $regex: 'delivery failed' } });
    expect(audited?.outcome).toBe('error');
  });

  it('an answer other than 2xx, 5xx or 429 is not retried', async () => {
    provider.script.push(400);
    const { onInit } = await linkInit(['OPD-W3']);
    expect(onInit.error.message).toMatch(/could not be delivered/);
    expect(provider.received).toHaveLength(1);
  });

  it('an unreachable system is retried, then fails', async () => {
    const closed = await startProviderSystem();
    await closed.close(); // nothing listens there any more
    const u = await createTestApp({
      GATEWAY_BASE_URL: gw.url,
      GATEWAY_CLIENT_ID: 'abha-vault',
      GATEWAY_CLIENT_SECRET: 's3cret',
      LINK_OTP_DELIVERY: 'webhook',
      LINK_OTP_WEBHOOK_URL: closed.url,
      LINK_OTP_WEBHOOK_SECRET: SECRET,
      LINK_OTP_WEBHOOK_ATTEMPTS: '2',
      LINK_OTP_WEBHOOK_BACKOFF_MS: '10',
    });
    try {
      const p = g.patient();
      const rec = g.record(p, 'Prescription', { careContext: { referenceNumber: 'OPD-U1', display: 'U1' } });
      expect(
        (
          await u.request('/fhir/Bundle', {
            method: 'POST',
            body: JSON.stringify(rec.bundle),
            headers: uploadHeaders('OPD-U1'),
            as: ['hip', 'HIP-W'],
          })
        ).status,
      ).toBe(201);
      const requestId = uuidv4();
      const res = await u.request('/v0.5/links/link/init', {
        method: 'POST',
        as: ['cm', 'sbx'],
        headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'HIP-W' },
        body: JSON.stringify({
          requestId,
          transactionId: uuidv4(),
          patient: { id: p.abhaAddress, referenceNumber: p.abhaAddress, careContexts: [{ referenceNumber: 'OPD-U1' }] },
        }),
      });
      const { linkRefNumber } = await res.json();
      expect(
        (await gw.waitFor('/v0.5/links/link/on-init', (c) => c.body.resp.requestId === requestId)).body.error,
      ).toBeTruthy();
      expect(
        (await u.client.db(u.config.MONGODB_DB).collection('link_requests').findOne({ _id: linkRefNumber }))?.status,
      ).toBe('FAILED');
      expect(u.logs.filter((l) => l.includes('one-time code delivery attempt failed'))).toHaveLength(2);
    } finally {
      await u.close();
    }
  });
});

describe('LINK_OTP_DELIVERY configuration', () => {
  const base = { DATA_DIR: '/nonexistent', PUBLIC_BASE_URL: 'https://vault.example.in' };

  it('NODE_ENV=production refuses console delivery, set or by default, naming LINK_OTP_DELIVERY', () => {
    for (const env of [
      { ...base, NODE_ENV: 'production', LINK_OTP_DELIVERY: 'console' },
      { ...base, NODE_ENV: 'production' },
    ]) {
      const config = loadConfig(env);
      expect(checkLinkingConfig(config)).toEqual([expect.stringMatching(/^LINK_OTP_DELIVERY: .*production/)]);
      expect(() => assertLinkingConfig(config)).toThrow(LinkingConfigError);
      expect(() => otpNotifierFor(config)).toThrow(/LINK_OTP_DELIVERY/);
    }
  });

  it('webhook delivery needs both LINK_OTP_WEBHOOK_URL and LINK_OTP_WEBHOOK_SECRET, in any environment', () => {
    for (const NODE_ENV of ['production', 'development']) {
      expect(checkLinkingConfig(loadConfig({ ...base, NODE_ENV, LINK_OTP_DELIVERY: 'webhook' }))).toEqual([
        expect.stringMatching(/^LINK_OTP_WEBHOOK_URL: required/),
        expect.stringMatching(/^LINK_OTP_WEBHOOK_SECRET: required/),
      ]);
      expect(() =>
        assertLinkingConfig(
          loadConfig({
            ...base,
            NODE_ENV,
            LINK_OTP_DELIVERY: 'webhook',
            LINK_OTP_WEBHOOK_URL: 'https://hospital.example.in/otp',
          }),
        ),
      ).toThrow(/LINK_OTP_WEBHOOK_SECRET/);
      expect(
        checkLinkingConfig(
          loadConfig({
            ...base,
            NODE_ENV,
            LINK_OTP_DELIVERY: 'webhook',
            LINK_OTP_WEBHOOK_URL: 'https://hospital.example.in/otp',
            LINK_OTP_WEBHOOK_SECRET: SECRET,
          }),
        ),
      ).toEqual([]);
    }
    expect(() => loadConfig({ ...base, LINK_OTP_WEBHOOK_SECRET: 'short' })).toThrow(/LINK_OTP_WEBHOOK_SECRET/);
    expect(() => loadConfig({ ...base, LINK_OTP_DELIVERY: 'sms' })).toThrow(/LINK_OTP_DELIVERY/);
  });

  it('outside production the default is console delivery', () => {
    expect(otpNotifierFor(loadConfig({ ...base, NODE_ENV: 'development' }))).toBe(consoleNotifier);
    expect(otpNotifierFor(loadConfig({ ...base, NODE_ENV: 'test' }))).toBe(consoleNotifier);
  });
});
