/**
 * OpenID Connect sign-in when the issuer is down or answers as no issuer
 * does (src/web/sign-in.ts): the person is sent back to the sign-in screen
 * with a reason, the server logs an issuer problem (not a database outage),
 * and nothing crashes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestApp, type TestApp } from '../support/app.js';

const STORE = 'http://127.0.0.1:9';
let mode: 'down500' | 'garbage' | 'ok' = 'ok';
let stub: Server;
let stubUrl: string;
let t: TestApp;

beforeAll(async () => {
  stub = createServer((req, res) => {
    if (mode === 'down500') {
      res.writeHead(500, { 'content-type': 'application/json' });
      return res.end('{"error":"server_error","error_description":"maintenance"}');
    }
    if (mode === 'garbage') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html>captive portal</html>');
    }
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(
        JSON.stringify({
          issuer: stubUrl,
          authorization_endpoint: `${stubUrl}authorize`,
          token_endpoint: `${stubUrl}token`,
          jwks_uri: `${stubUrl}jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
    }
    res.writeHead(200, { 'content-type': 'application/json' }); // the token endpoint: not a token response
    res.end('[1,2,3]');
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  stubUrl = `http://127.0.0.1:${(stub.address() as AddressInfo).port}/`;
  t = await createTestApp({
    OIDC_ISSUER: stubUrl,
    OIDC_CLIENT_ID: 'c',
    OIDC_CLIENT_SECRET: 's',
    PUBLIC_BASE_URL: STORE,
  });
});
afterAll(async () => {
  await t?.close();
  await new Promise((r) => stub?.close(r));
});

describe('an issuer down or answering garbage', () => {
  for (const m of ['down500', 'garbage'] as const)
    it(`${m === 'down500' ? 'answering 500' : 'answering HTML'}: back to sign-in with "unavailable", logged as the issuer's`, async () => {
      mode = m;
      const before = t.logs.length;
      const res = await t.request(`${STORE}/auth/oidc/start`);
      expect(res.status).toBe(302);
      expect(res.headers.get('location')).toBe('/app/#/sign-in?error=unavailable');
      const lines = t.logs.slice(before).join('');
      expect(lines).toMatch(/oidc issuer unavailable/);
      expect(lines).not.toMatch(/database unavailable/);
    });

  it('a token endpoint answering garbage: back to sign-in with "failed"', async () => {
    mode = 'ok';
    const start = await t.request(`${STORE}/auth/oidc/start`);
    expect(start.status).toBe(302);
    const flow = start.headers.getSetCookie()[0].split(';')[0];
    const state = new URL(start.headers.get('location')!).searchParams.get('state');
    const res = await t.request(`${STORE}/auth/callback?code=abc&state=${state}`, { headers: { Cookie: flow } });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/app/#/sign-in?error=failed');
  });
});
