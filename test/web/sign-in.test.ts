/**
 * Signing in to the web page (src/web/sign-in.ts), over HTTP: OpenID Connect
 * through a real issuer on loopback (oidc-provider, test/support/oidc-issuer.ts),
 * the development form, the session cookie, and the token the page then uses
 * against the same API as every client, with the same rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { createTestApp, type TestApp } from '../support/app.js';
import { startTestIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { SessionKeys } from '../../src/auth/session-keys.js';
import { loadPagingKeys } from '../../src/auth/paging-keys.js';
import { APP_CSP } from '../../src/http/security-headers.js';

const STORE = 'http://127.0.0.1:9'; // links and the redirect target; the test calls the app in-process
const REDIRECT = `${STORE}/auth/callback`;

/** Cookies as a browser keeps them for one site: name → value, from Set-Cookie. */
class Jar {
  cookies = new Map<string, string>();
  take(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, ...rest] = pair.split('=');
      const value = rest.join('=');
      const expired = attrs.some((a) => /max-age=0\b/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(name.trim());
      else this.cookies.set(name.trim(), value);
    }
    return res;
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

let issuer: TestIssuer;
let t: TestApp;

beforeAll(async () => {
  issuer = await startTestIssuer(REDIRECT);
  issuer.accounts.set('dr.mehta', { sub: 'u-101', name: 'Dr. Asha Mehta', abdm_role: 'hiu', abdm_facility: 'HIU-1' });
  issuer.accounts.set('clerk', { sub: 'u-102', name: 'Records clerk', abdm_role: 'hip', abdm_facility: 'HIP-1' });
  issuer.accounts.set('norole', { sub: 'u-103', name: 'No role' });
  issuer.accounts.set('gateway', { sub: 'u-104', name: 'Gateway', abdm_role: 'cm', abdm_facility: 'sbx' });
  issuer.accounts.set('badfacility', { sub: 'u-105', name: 'X', abdm_role: 'hip', abdm_facility: 'has spaces' });
  t = await createTestApp({
    OIDC_ISSUER: issuer.url,
    OIDC_CLIENT_ID: issuer.clientId,
    OIDC_CLIENT_SECRET: issuer.clientSecret,
    OIDC_REDIRECT_URL: REDIRECT,
    PUBLIC_BASE_URL: STORE,
  });
});
afterAll(async () => {
  await t?.close();
  await issuer?.close();
});

/** The development sign-in form's POST to `url` on `app`, as `who` (the admin of OPS-1 unless told). */
const devSignIn = (
  app: TestApp,
  url: string,
  headers: Record<string, string> = {},
  who: { role: string; facility: string } = { role: 'admin', facility: 'OPS-1' },
) =>
  app.request(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(who),
  });

/** The issuer's side of a sign-in, as a browser walks it: to its login form, signing in as `login`, and back. */
async function atIssuer(authorizationUrl: string, login: string): Promise<URL> {
  const jar = new Jar();
  let url = authorizationUrl;
  for (let hop = 0; hop < 10; hop++) {
    const res = jar.take(await fetch(url, { redirect: 'manual', headers: { Cookie: jar.header() } }));
    if (res.status === 200 && url.includes('/interaction/')) {
      const posted = jar.take(
        await fetch(url, {
          method: 'POST',
          redirect: 'manual',
          headers: { Cookie: jar.header(), 'Content-Type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ login }),
        }),
      );
      url = new URL(posted.headers.get('location')!, url).href;
      continue;
    }
    expect([302, 303], `${url}: ${res.status}`).toContain(res.status);
    const next = new URL(res.headers.get('location')!, url);
    if (next.href.startsWith(REDIRECT)) return next;
    url = next.href;
  }
  throw new Error('the issuer never sent the browser back');
}

/** A whole OpenID Connect sign-in as `login`; the store's answer to the callback, and the browser's cookies. */
async function signIn(login: string, tamper?: (callback: URL) => void) {
  const jar = new Jar();
  const start = jar.take(await t.request(`${STORE}/auth/oidc/start`));
  expect(start.status).toBe(302);
  const back = await atIssuer(start.headers.get('location')!, login);
  tamper?.(back);
  const callback = jar.take(
    await t.request(`${STORE}${back.pathname}${back.search}`, { headers: { Cookie: jar.header() } }),
  );
  return { start, callback, jar };
}

const session = async (jar: Jar) =>
  (await t.request(`${STORE}/auth/session`, { headers: { Cookie: jar.header() } })).json();

describe('OpenID Connect sign-in (a real issuer on loopback)', () => {
  it('is the authorization-code flow with PKCE S256, state and nonce, scoped to the configured client', async () => {
    const start = await t.request(`${STORE}/auth/oidc/start`);
    const url = new URL(start.headers.get('location')!);
    expect(url.origin).toBe(issuer.url);
    expect(url.searchParams.get('response_type')).toBe('code');
    expect(url.searchParams.get('client_id')).toBe(issuer.clientId);
    expect(url.searchParams.get('redirect_uri')).toBe(REDIRECT);
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('state')).toBeTruthy();
    expect(url.searchParams.get('nonce')).toBeTruthy();
    const flow = start.headers.getSetCookie().find((c) => c.startsWith('av_oidc='))!;
    expect(flow).toMatch(/HttpOnly/i);
    expect(flow).toMatch(/Path=\/auth\/callback/);
    expect(flow).toMatch(/SameSite=Lax/i);
    // The verifier is in the sealed cookie, never in the URL.
    expect(url.href).not.toContain('code_verifier');
  });

  it("signs a clinician in with the role and facility of the issuer's claims; the token works on the API", async () => {
    const { callback, jar } = await signIn('dr.mehta');
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe('/app/');
    const cookie = callback.headers.getSetCookie().find((c) => c.startsWith('av_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/auth/);
    const s = await session(jar);
    expect(s).toMatchObject({
      signedIn: true,
      role: 'hiu',
      facility: 'HIU-1',
      subject: 'oidc:u-101',
      apiOrigin: STORE,
    });
    expect(Date.parse(s.expiresAt) - Date.now()).toBeGreaterThan(3000_000);
    // The page's bearer token: the API decides as for any hiu (a search must name its consent).
    const res = await t.request('/fhir/Bundle', { headers: { Authorization: `Bearer ${s.token}` } });
    expect(res.status).toBe(400);
    expect((await res.json()).issue[0].diagnostics).toMatch(/X-Consent-Id/);
    // and a route of another role is 403, like any other hiu token.
    const upload = await t.request('/fhir/Bundle', {
      method: 'POST',
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/fhir+json', 'X-Care-Context': 'C' },
      body: '{}',
    });
    expect(upload.status).toBe(403);
    const events = await t.audit.events.find({ action: 'web.sign-in', 'actor.subject': 'oidc:u-101' }).toArray();
    expect(events.map((e) => [e.outcome, e.actor.role, e.actor.facility])).toEqual([['success', 'hiu', 'HIU-1']]);
  });

  it('a provider signs in as hip and searches its own records with the session token', async () => {
    const { jar } = await signIn('clerk');
    const s = await session(jar);
    expect(s).toMatchObject({ role: 'hip', facility: 'HIP-1' });
    const res = await t.request('/fhir/Bundle', { headers: { Authorization: `Bearer ${s.token}` } });
    expect(res.status).toBe(200);
    expect((await res.json()).type).toBe('searchset');
  });

  it('refuses an account without a usable role or facility, and never the consent manager', async () => {
    for (const [login, why] of [
      ['norole', 'role'],
      ['gateway', 'role'],
      ['badfacility', 'facility'],
    ] as const) {
      const { callback, jar } = await signIn(login);
      expect(callback.status, login).toBe(302);
      expect(callback.headers.get('location')).toBe(`/app/#/sign-in?error=${why}`);
      expect(jar.cookies.has('av_session')).toBe(false);
    }
    const refused = await t.audit.events.find({ action: 'web.sign-in', outcome: 'refused' }).toArray();
    expect(refused.length).toBeGreaterThanOrEqual(3);
  });

  it('refuses a callback whose state is not the one it sent, or without its sign-in cookie, or replayed', async () => {
    const tampered = await signIn('dr.mehta', (u) => u.searchParams.set('state', 'not-the-state'));
    expect(tampered.callback.headers.get('location')).toBe('/app/#/sign-in?error=failed');
    expect(tampered.jar.cookies.has('av_session')).toBe(false);

    const jar = new Jar();
    const start = jar.take(await t.request(`${STORE}/auth/oidc/start`));
    const back = await atIssuer(start.headers.get('location')!, 'dr.mehta');
    const noCookie = await t.request(`${STORE}${back.pathname}${back.search}`);
    expect(noCookie.headers.get('location')).toBe('/app/#/sign-in?error=expired');
    const first = await t.request(`${STORE}${back.pathname}${back.search}`, { headers: { Cookie: jar.header() } });
    expect(first.headers.get('location')).toBe('/app/');
    // The same code and flow again (a stolen redirect replayed): the code is spent.
    const replay = await t.request(`${STORE}${back.pathname}${back.search}`, { headers: { Cookie: jar.header() } });
    expect(replay.headers.get('location')).not.toBe('/app/');
  });

  it('signing out forgets the session', async () => {
    const { jar } = await signIn('clerk');
    expect((await session(jar)).signedIn).toBe(true);
    const out = jar.take(await t.request(`${STORE}/auth/sign-out`, { method: 'POST' }));
    expect(out.status).toBe(204);
    expect(jar.cookies.has('av_session')).toBe(false);
    expect(await session(jar)).toEqual({ signedIn: false });
  });

  it('offers OpenID Connect and, outside production, the development form', async () => {
    const res = await t.request(`${STORE}/auth/options`);
    expect(await res.json()).toMatchObject({ oidc: true, devSignIn: true, roles: ['hip', 'hiu', 'admin'] });
  });
});

describe('session tokens', () => {
  it('only the store signs them: another key, the consent manager role or an expired one is 401 on the API', async () => {
    const keys = new SessionKeys(loadPagingKeys(t.config));
    const good = await keys.sign({ role: 'hip', facility: 'HIP-1', sub: 'oidc:x' }, 60);
    expect((await t.request('/fhir/Bundle', { headers: { Authorization: `Bearer ${good}` } })).status).toBe(200);
    const [h] = good.split('.');
    const kid = JSON.parse(Buffer.from(h, 'base64url').toString()).kid as string;
    const forged = await new SignJWT({ role: 'admin', facility: 'A' })
      .setProtectedHeader({ alg: 'HS256', kid })
      .setIssuer('urn:abha-vault:web-session')
      .setExpirationTime('1h')
      .sign(randomBytes(32));
    const cm = await keys.sign({ role: 'cm' as 'hip', facility: 'sbx', sub: 'x' }, 60);
    const expired = await keys.sign({ role: 'hip', facility: 'HIP-1', sub: 'x' }, -120);
    for (const token of [forged, cm, expired]) {
      const res = await t.request('/fhir/Bundle', { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(401);
    }
  });
});

describe('development sign-in', () => {
  it('mints a short-lived development-key token for the chosen role and facility', async () => {
    const jar = new Jar();
    const res = jar.take(await devSignIn(t, `${STORE}/auth/dev-sign-in`));
    expect(res.status).toBe(204);
    const s = await session(jar);
    expect(s).toMatchObject({ signedIn: true, role: 'admin', facility: 'OPS-1', subject: 'dev:admin:OPS-1' });
    const header = JSON.parse(Buffer.from(s.token.split('.')[0], 'base64url').toString());
    expect(header.alg).toBe('RS256'); // the development key, as `npm run token`
    expect(Date.parse(s.expiresAt) - Date.now()).toBeLessThanOrEqual(3600_000 + 5000);
    const metrics = await t.request('/metrics', { headers: { Authorization: `Bearer ${s.token}` } });
    expect(metrics.status).toBe(200);
  });

  it('refuses a body that is not a role and facility, and the consent manager role', async () => {
    for (const body of ['{', '{}', '{"role":"cm","facility":"sbx"}', '{"role":"hiu","facility":"a b"}']) {
      const res = await t.request(`${STORE}/auth/dev-sign-in`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      expect(res.status, body).toBe(400);
      expect((await res.json()).resourceType).toBe('OperationOutcome');
    }
  });

  it('is refused with WEB_DEV_SIGN_IN=false', async () => {
    const off = await createTestApp({ WEB_DEV_SIGN_IN: 'false' });
    try {
      const res = await devSignIn(
        off,
        'http://127.0.0.1:8080/auth/dev-sign-in',
        {},
        { role: 'hiu', facility: 'HIU-1' },
      );
      expect(res.status).toBe(403);
      expect(res.headers.getSetCookie()).toEqual([]);
      expect(await (await off.request('http://127.0.0.1:8080/auth/options')).json()).toMatchObject({
        oidc: false,
        devSignIn: false,
      });
    } finally {
      await off.close();
    }
  });

  it('is refused with NODE_ENV=production', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'abha-vault-web-prod-'));
    try {
      const keyFile = join(dir, 'verify.pem');
      writeFileSync(
        keyFile,
        generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }),
      );
      const pagingFile = join(dir, 'paging.json');
      writeFileSync(pagingFile, JSON.stringify({ keys: [{ kid: 'p1', secret: randomBytes(32).toString('base64') }] }));
      const prod = await createTestApp({
        NODE_ENV: 'production',
        PUBLIC_BASE_URL: 'https://vault.example.in',
        AUTH_PUBLIC_KEY_FILE: keyFile,
        PAGING_KEYS_FILE: pagingFile,
      });
      try {
        const res = await devSignIn(prod, 'https://vault.example.in/auth/dev-sign-in');
        expect(res.status).toBe(403);
        expect((await res.json()).issue[0].diagnostics).toMatch(/NODE_ENV=production/);
        // Behind a proxy that sends its own Host, the page and sign-in still answer (a redirect to
        // PUBLIC_BASE_URL could loop there), and a POST is still held to the page's own Origin.
        const internal = 'http://10.0.0.5:8080';
        expect((await prod.request(`${internal}/app/`)).status).toBe(200);
        expect((await prod.request(`${internal}/auth/options`)).status).toBe(200);
        const foreign = await prod.request(`${internal}/auth/sign-out`, {
          method: 'POST',
          headers: { Origin: 'https://evil.example' },
        });
        expect(foreign.status).toBe(403);
        expect(res.headers.getSetCookie()).toEqual([]);
      } finally {
        await prod.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("only under the store's own origin", () => {
  it('refuses sign-in under another host name (a DNS-rebound page cannot mint or read a token)', async () => {
    const rebound = 'http://rebind.attacker.example:3000';
    const minted = await devSignIn(t, `${rebound}/auth/dev-sign-in`, { Origin: rebound });
    expect(minted.status).toBe(403);
    expect(minted.headers.getSetCookie()).toEqual([]);
    const read = await t.request(`${rebound}/auth/session`);
    expect(read.status).toBe(403);
    // The page itself, opened under another name, sends the browser to the store's own origin.
    const page = await t.request(`${rebound}/app/`);
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe(`${STORE}/app/`);
  });

  it("refuses a POST from another site's page (Origin or Sec-Fetch-Site), sign-out included", async () => {
    expect((await devSignIn(t, `${STORE}/auth/dev-sign-in`, { Origin: 'https://evil.example' })).status).toBe(403);
    expect((await devSignIn(t, `${STORE}/auth/dev-sign-in`, { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    const out = await t.request(`${STORE}/auth/sign-out`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example' },
    });
    expect(out.status).toBe(403);
    expect(out.headers.getSetCookie()).toEqual([]);
    // From the page itself: accepted.
    expect(
      (await devSignIn(t, `${STORE}/auth/dev-sign-in`, { Origin: STORE, 'Sec-Fetch-Site': 'same-origin' })).status,
    ).toBe(204);
  });

  it('/auth/session names only a role that signs in to the page, whatever token the cookie holds', async () => {
    const cm = await t.token('cm', 'sbx');
    const s = await (await t.request(`${STORE}/auth/session`, { headers: { Cookie: `av_session=${cm}` } })).json();
    expect(s).toEqual({ signedIn: false });
  });

  it('sign-out is audited with who signed out', async () => {
    const jar = new Jar();
    jar.take(await devSignIn(t, `${STORE}/auth/dev-sign-in`));
    const out = await t.request(`${STORE}/auth/sign-out`, { method: 'POST', headers: { Cookie: jar.header() } });
    expect(out.status).toBe(204);
    const events = await t.audit.events
      .find({ action: 'web.sign-out', requestId: out.headers.get('x-request-id') })
      .toArray();
    expect(events.map((e) => [e.outcome, e.actor.role, e.actor.facility])).toEqual([['success', 'admin', 'OPS-1']]);
  });

  it('over https the session cookie is Secure and __Secure- prefixed', async () => {
    const https = await createTestApp({ PUBLIC_BASE_URL: 'https://vault.example.in' });
    try {
      const res = await devSignIn(
        https,
        'https://vault.example.in/auth/dev-sign-in',
        {},
        { role: 'hiu', facility: 'HIU-1' },
      );
      expect(res.status).toBe(204);
      const [cookie] = res.headers.getSetCookie();
      expect(cookie).toMatch(/^__Secure-av_session=/);
      expect(cookie).toMatch(/; Secure/);
      const s = await (
        await https.request('https://vault.example.in/auth/session', { headers: { Cookie: cookie.split(';')[0] } })
      ).json();
      expect(s).toMatchObject({ signedIn: true, role: 'hiu' });
    } finally {
      await https.close();
    }
  });

  it('the development form is refused when the server listens beyond this machine', async () => {
    const wide = await createTestApp({ HOST: '0.0.0.0', PUBLIC_BASE_URL: STORE });
    try {
      const res = await devSignIn(wide, `${STORE}/auth/dev-sign-in`);
      expect(res.status).toBe(403);
      expect(await (await wide.request(`${STORE}/auth/options`)).json()).toMatchObject({ devSignIn: false });
    } finally {
      await wide.close();
    }
  });
});

describe('the page', () => {
  it('/ sends a browser to /app/, whose page carries the strict page policy and no inline script', async () => {
    const root = await t.request(`${STORE}/`);
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/app/');
    const page = await t.request(`${STORE}/app/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(APP_CSP);
    expect(APP_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    const html = await page.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    expect(scripts[0][1]).toMatch(/src="\/app\/assets\/[^"]+\.js"/);
    expect(scripts[0][2]).toBe('');
    expect(html).not.toMatch(/\sstyle=|\son\w+=|https?:\/\//);
    const asset = /src="(\/app\/assets\/[^"]+\.js)"/.exec(html)![1];
    const js = await t.request(`${STORE}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    const missing = await t.request(`${STORE}/app/assets/nothing.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('cache-control')).toBe('no-store');
  });

  it('the API keeps its own policy (nothing may load from it)', async () => {
    const res = await t.request('/healthz');
    expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});
