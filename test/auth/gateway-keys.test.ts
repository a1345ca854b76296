/**
 * ABDM's gateway keys (GATEWAY_JWKS_URL, served here by a loopback JWKS
 * server) beside the store's own: a token the gateway signed is the consent
 * manager when its client id is in AUTH_GATEWAY_CLIENTS, and never anything
 * else, whatever role or facility it claims (ABDM signs tokens for every
 * client it has). The store's own tokens keep working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { v4 as uuidv4 } from 'uuid';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { createTestApp, type TestApp } from '../support/app.js';
import { consentDetail } from '../support/consents.js';
import { v3Headers } from '../support/stand-in-gateway.js';

let jwks: Server;
let gatewayKey: CryptoKey;
let t: TestApp;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  gatewayKey = pair.privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'abdm-gw-1', alg: 'RS256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ keys: [publicJwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  t = await createTestApp({
    GATEWAY_JWKS_URL: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/gateway/v3/certs`,
    AUTH_GATEWAY_CLIENTS: 'abdm-gateway',
  });
});
afterAll(async () => {
  await t?.close();
  await new Promise<void>((r) => jwks?.close(() => r()));
});

const gatewayToken = (claims: Record<string, unknown>) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: 'abdm-gw-1' })
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(gatewayKey);
const notify = (authorization: string) => {
  const consentId = uuidv4();
  return t.app.request('/api/v3/consent/request/hip/notify', {
    method: 'POST',
    headers: { ...v3Headers('HIP-G'), Authorization: authorization },
    body: JSON.stringify({
      notification: {
        consentId,
        status: 'GRANTED',
        consentDetail: consentDetail({
          consentId,
          patient: 'g.k@sbx',
          hip: 'HIP-G',
          hiu: 'HIU-G',
          careContexts: ['CC'],
        }),
      },
    }),
  });
};
const search = (authorization: string) => t.app.request('/fhir/Bundle', { headers: { Authorization: authorization } });

describe('tokens signed by ABDM’s gateway', () => {
  it('a listed gateway client is the consent manager', async () => {
    const res = await notify(`Bearer ${await gatewayToken({ clientId: 'abdm-gateway' })}`);
    expect(res.status).toBe(202);
    // ... and only that: a provider's route is 403 to it.
    expect((await search(`Bearer ${await gatewayToken({ clientId: 'abdm-gateway' })}`)).status).toBe(403);
  });

  it('a role or facility it claims is never believed: 401', async () => {
    for (const claims of [
      { clientId: 'abdm-gateway', role: 'hip', facility: 'HOSP-1' },
      { clientId: 'abdm-gateway', role: 'admin', facility: 'ops' },
      { role: 'hip', facility: 'HOSP-1' },
    ]) {
      const bearer = `Bearer ${await gatewayToken(claims)}`;
      expect((await search(bearer)).status, JSON.stringify(claims)).toBe(401);
      expect((await notify(bearer)).status, JSON.stringify(claims)).toBe(401);
    }
  });

  it('another ABDM client’s token is refused: 401', async () => {
    expect((await notify(`Bearer ${await gatewayToken({ clientId: 'some-other-hiu' })}`)).status).toBe(401);
  });

  it('an expired gateway token is refused: 401', async () => {
    const expired = await new SignJWT({ clientId: 'abdm-gateway' })
      .setProtectedHeader({ alg: 'RS256', kid: 'abdm-gw-1' })
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 600)
      .sign(gatewayKey);
    expect((await notify(`Bearer ${expired}`)).status).toBe(401);
  });

  it("the store's own tokens keep working beside them", async () => {
    expect((await search(`Bearer ${await t.token('hip', 'HOSP-1')}`)).status).toBe(200);
    expect((await notify(`Bearer ${await t.token('cm', 'sbx')}`)).status).toBe(202);
  });
});
