/**
 * Signing in to the web page (/app/). A browser holds no bearer token from
 * `npm run token`, so these routes give it one, kept in an HttpOnly,
 * SameSite=Strict cookie scoped to /auth. The page asks GET /auth/session for
 * the token and sends it as a bearer token to the same API every client uses;
 * the API itself never reads a cookie, so it cannot be driven by another
 * site's form (no CSRF on the API). The page's own script does hold the token
 * (its strict CSP is what keeps other script out); signing out forgets the
 * cookie, and the token ends at its expiry (WEB_SESSION_TTL_SEC, at most an
 * hour).
 *
 * A POST whose Origin or Sec-Fetch-Site names another site is refused. In
 * development (the development form offered, or no PUBLIC_BASE_URL), every
 * /auth route also answers only under the store's own host, so that a page of
 * another name resolving here (DNS rebinding) cannot mint a token. Behind a
 * proxy in production the Host the store sees may be the proxy's choice, so
 * it is not checked there.
 *
 *   GET  /auth/options       public  which sign-ins this server offers
 *   GET  /auth/oidc/start    public  OpenID Connect: to the issuer (authorization code, PKCE S256, state, nonce)
 *   GET  /auth/callback      public  OpenID Connect: back from the issuer; role and facility from the configured claims
 *   POST /auth/dev-sign-in   public  development only: a token from the development key for a chosen role and facility
 *   GET  /auth/session       cookie  the session's token, role, facility and expiry
 *   POST /auth/sign-out      public  forgets the session cookie
 *
 * With OIDC, the token is a session token the store signs (auth/session-keys.ts):
 * role hip, hiu or admin and the facility, from OIDC_ROLE_CLAIM and
 * OIDC_FACILITY_CLAIM of the ID token. The development form is refused with
 * NODE_ENV=production, with WEB_DEV_SIGN_IN=false, when the store verifies
 * tokens with configured keys (the development key would not be believed), and
 * when it listens on other than a loopback address. Every sign-in and
 * sign-out, and every refused sign-in, is audited.
 */
import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import * as oidc from 'openid-client';
import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { AuditLog } from '../audit/log.js';
import { type AppEnv, type AuthOptions, type Caller, FACILITY_ID, type Role, verify } from '../auth/caller.js';
import type { Verifier } from '../auth/keys.js';
import { signDevToken } from '../auth/token.js';
import { FhirError, badRequest, fail, notFound } from '../fhir/outcome.js';
import { readJsonText } from '../http/body.js';
import { type SessionKeys, WEB_ROLES } from '../auth/session-keys.js';

export interface SignInDeps {
  config: Config;
  verifier: Verifier;
  /** How tokens are checked (the same options identify is given), with the session keys that sign and check them. */
  auth: AuthOptions & { sessions: SessionKeys };
  audit: AuditLog;
  baseUrl: () => string;
  log: Log;
}

const SESSION_COOKIE = 'av_session';
const OIDC_COOKIE = 'av_oidc';
/** Over https the cookies carry the __Secure- prefix, so a sibling subdomain over http cannot plant one. */
const cookieName = (name: string, secure: boolean) => (secure ? `__Secure-${name}` : name);
const OIDC_FLOW_SEC = 600;

export const DevSignIn = z.object({
  role: z.enum(WEB_ROLES as [Role, ...Role[]]),
  facility: z.string().regex(FACILITY_ID, 'a facility id: letters, digits and ._:@- (at most 128)'),
});

/**
 * Whether the development form is offered: never in production, nor when the development key is not the verifier,
 * nor when the server listens beyond this machine (anyone who reaches the form may sign in as anyone).
 */
export function devSignInOffered(config: Config): boolean {
  return (
    config.NODE_ENV !== 'production' &&
    config.WEB_DEV_SIGN_IN &&
    !config.AUTH_JWKS_URL &&
    !config.AUTH_PUBLIC_KEY_FILE &&
    isLoopbackName(config.HOST)
  );
}

/** A loopback name or address, as HOST gives it or as a URL's hostname (IPv6 in brackets) does. */
const isLoopbackName = (host: string) => ['127.0.0.1', '::1', 'localhost'].includes(host.replace(/^\[(.*)\]$/, '$1'));

/**
 * Development: the development form is offered, or there is no PUBLIC_BASE_URL (links are built on the address the
 * server listens on). There the page and its sign-in answer under the store's own host only. In production the Host
 * the store sees may be a proxy's choice, so it is not held to PUBLIC_BASE_URL's (a redirect could loop).
 */
export const pageOnlyAtBase = (config: Config) => devSignInOffered(config) || !config.PUBLIC_BASE_URL;

export function signInRoutes(deps: SignInDeps) {
  const { config, audit, log, auth } = deps;
  const sessions = auth.sessions;
  const r = new Hono<AppEnv>();
  const secure = () => deps.baseUrl().startsWith('https:');
  const sessionCookie = () => cookieName(SESSION_COOKIE, secure());
  const flowCookie = () => cookieName(OIDC_COOKIE, secure());
  const redirectUrl = () => config.OIDC_REDIRECT_URL ?? `${deps.baseUrl()}/auth/callback`;

  // A POST only from the store's own page. In development (pageOnlyAtBase), also only under the
  // store's own host: a page of another name resolving here (DNS rebinding) cannot use the development form.
  r.use('/auth/*', async (c, next) => {
    const own = new URL(deps.baseUrl());
    if (pageOnlyAtBase(config) && new URL(c.req.url).host !== own.host)
      throw fail('forbidden', 'forbidden', `Sign-in is served at ${own.origin} only`);
    if (c.req.method === 'POST') {
      const origin = c.req.header('origin');
      const site = c.req.header('sec-fetch-site');
      if ((origin !== undefined && origin !== own.origin) || (site !== undefined && site !== 'same-origin'))
        throw fail('forbidden', 'forbidden', "A sign-in request must come from this store's own page");
    }
    await next();
  });

  let discovered: Promise<oidc.Configuration> | undefined;
  const issuer = () => {
    if (!config.OIDC_ISSUER || !config.OIDC_CLIENT_ID || !config.OIDC_CLIENT_SECRET)
      throw notFound('OpenID Connect sign-in is not configured (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET)');
    const url = new URL(config.OIDC_ISSUER);
    // Plain http only to an issuer on this machine, outside production (a development or test issuer).
    const insecure = url.protocol === 'http:' && isLoopbackName(url.hostname) && config.NODE_ENV !== 'production';
    discovered ??= oidc
      .discovery(url, config.OIDC_CLIENT_ID, config.OIDC_CLIENT_SECRET, undefined, {
        timeout: 10,
        ...(insecure ? { execute: [oidc.allowInsecureRequests] } : {}),
      })
      .catch((e) => {
        discovered = undefined; // asked again at the next sign-in
        throw e;
      });
    return discovered;
  };

  /** Who the session cookie's token names, when it is valid and a role that signs in to the page. */
  const sessionCaller = async (token: string | undefined): Promise<Caller | undefined> => {
    if (!token || token.length > 8192) return undefined;
    const caller = await verify(`Bearer ${token}`, deps.verifier, auth).catch(() => undefined);
    return caller && WEB_ROLES.includes(caller.role) ? caller : undefined;
  };

  const signedIn = async (c: Context<AppEnv>, token: string, caller: Caller, via: string) => {
    setCookie(c, sessionCookie(), token, {
      httpOnly: true,
      secure: secure(),
      sameSite: 'Strict',
      path: '/auth',
      maxAge: config.WEB_SESSION_TTL_SEC,
    });
    await audit.append({
      action: 'web.sign-in',
      outcome: 'success',
      status: 200,
      actor: { role: caller.role, facility: caller.facilityId, subject: caller.subject },
      reason: via,
      requestId: c.var.requestId,
    });
  };
  const refusedSignIn = async (c: Context<AppEnv>, reason: string) => {
    await audit.append({
      action: 'web.sign-in',
      outcome: 'refused',
      status: 403,
      actor: { role: null, facility: null, subject: null },
      reason: reason.slice(0, 300),
      requestId: c.var.requestId,
    });
  };

  r.get('/auth/options', (c) =>
    c.json({
      oidc: Boolean(config.OIDC_ISSUER),
      devSignIn: devSignInOffered(config),
      roles: WEB_ROLES,
      sessionSeconds: config.WEB_SESSION_TTL_SEC,
    }),
  );

  r.post('/auth/dev-sign-in', async (c) => {
    c.set('action', 'web.sign-in');
    if (!devSignInOffered(config))
      throw fail(
        'forbidden',
        'forbidden',
        config.NODE_ENV === 'production'
          ? 'Development sign-in is refused with NODE_ENV=production; sign in through OpenID Connect'
          : 'Development sign-in is off: WEB_DEV_SIGN_IN=false, tokens are verified with configured keys, or the server listens beyond loopback (HOST)',
      );
    const text = await readJsonText(c, 4096);
    let parsed;
    try {
      parsed = DevSignIn.safeParse(JSON.parse(text));
    } catch {
      throw badRequest('Body is not JSON', 'body');
    }
    if (!parsed.success)
      throw badRequest(
        `Development sign-in needs {"role": "${WEB_ROLES.join('" | "')}", "facility": "<id>"}: ${parsed.error.issues[0].path.join('.')} ${parsed.error.issues[0].message}`,
        parsed.error.issues[0].path.join('.') || 'body',
      );
    const { role, facility } = parsed.data;
    const subject = `dev:${role}:${facility}`;
    const token = await signDevToken(config.DATA_DIR, {
      role,
      facility,
      sub: subject,
      ttlSec: config.WEB_SESSION_TTL_SEC,
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
    });
    await signedIn(c, token, { role, facilityId: facility, subject }, 'development sign-in');
    return c.body(null, 204);
  });

  r.get('/auth/oidc/start', async (c) => {
    let configuration: oidc.Configuration;
    try {
      configuration = await issuer();
    } catch (e) {
      if (e instanceof FhirError) throw e; // not configured
      // The issuer did not answer, or not as one: the person is told, and may try again.
      log.warn({ err: { name: (e as Error).name, code: (e as { code?: unknown }).code } }, 'oidc issuer unavailable');
      return c.redirect('/app/#/sign-in?error=unavailable', 302);
    }
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const flow = await new SignJWT({ state, nonce, verifier })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(`${OIDC_FLOW_SEC}s`)
      .sign(sessions.flowKey);
    setCookie(c, flowCookie(), flow, {
      httpOnly: true,
      secure: secure(),
      sameSite: 'Lax', // it must come back on the issuer's redirect to /auth/callback
      path: '/auth/callback',
      maxAge: OIDC_FLOW_SEC,
    });
    const url = oidc.buildAuthorizationUrl(configuration, {
      redirect_uri: redirectUrl(),
      scope: config.OIDC_SCOPE,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return c.redirect(url.href, 302);
  });

  r.get('/auth/callback', async (c) => {
    const flowText = getCookie(c, flowCookie());
    deleteCookie(c, flowCookie(), { path: '/auth/callback', secure: secure() });
    const back = (error: string) => c.redirect(`/app/#/sign-in?error=${encodeURIComponent(error)}`, 302);
    let flow: { state: string; nonce: string; verifier: string };
    try {
      if (!flowText) throw new Error('no sign-in in progress');
      flow = (await jwtVerify(flowText, sessions.flowKey, { algorithms: ['HS256'] })).payload as typeof flow;
    } catch {
      await refusedSignIn(c, 'OpenID Connect callback without a sign-in in progress (or after 10 minutes)');
      return back('expired');
    }
    let claims: Record<string, unknown> | undefined;
    try {
      const configuration = await issuer();
      const current = new URL(redirectUrl());
      current.search = new URL(c.req.url).search;
      const tokens = await oidc.authorizationCodeGrant(configuration, current, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
        expectedNonce: flow.nonce,
        idTokenExpected: true,
      });
      claims = tokens.claims() as Record<string, unknown> | undefined;
    } catch (e) {
      const name = (e as Error).name;
      const code = (e as { error?: unknown }).error;
      await refusedSignIn(c, `OpenID Connect sign-in failed: ${name}${typeof code === 'string' ? ` (${code})` : ''}`);
      return back(code === 'access_denied' ? 'denied' : 'failed');
    }
    const role = claims?.[config.OIDC_ROLE_CLAIM];
    const facility = claims?.[config.OIDC_FACILITY_CLAIM];
    const sub = typeof claims?.sub === 'string' ? claims.sub : '';
    if (typeof role !== 'string' || !WEB_ROLES.includes(role as Role)) {
      await refusedSignIn(c, `ID token claim ${config.OIDC_ROLE_CLAIM} is not one of ${WEB_ROLES.join(', ')}`);
      return back('role');
    }
    if (typeof facility !== 'string' || !FACILITY_ID.test(facility)) {
      await refusedSignIn(c, `ID token claim ${config.OIDC_FACILITY_CLAIM} is not a facility id`);
      return back('facility');
    }
    const subject = `oidc:${sub}`.slice(0, 200);
    const token = await sessions.sign({ role: role as Role, facility, sub: subject }, config.WEB_SESSION_TTL_SEC);
    await signedIn(c, token, { role: role as Role, facilityId: facility, subject }, 'OpenID Connect');
    return c.redirect('/app/', 302);
  });

  // Anonymous visits are not refusals: no session (or an expired one) answers {signedIn: false}.
  r.get('/auth/session', async (c) => {
    const token = getCookie(c, sessionCookie());
    const caller = await sessionCaller(token);
    if (!token || !caller) {
      if (token) deleteCookie(c, sessionCookie(), { path: '/auth', secure: secure() });
      return c.json({ signedIn: false });
    }
    const { exp } = decodeJwt(token);
    return c.json({
      signedIn: true,
      token,
      role: caller.role,
      facility: caller.facilityId,
      subject: caller.subject,
      expiresAt: new Date((exp ?? 0) * 1000).toISOString(),
      // The origin the API builds its links on (PUBLIC_BASE_URL's); the page may be open under another name for it.
      apiOrigin: new URL(deps.baseUrl()).origin,
    });
  });

  r.post('/auth/sign-out', async (c) => {
    const caller = await sessionCaller(getCookie(c, sessionCookie()));
    deleteCookie(c, sessionCookie(), { path: '/auth', secure: secure() });
    if (caller)
      await audit.append({
        action: 'web.sign-out',
        outcome: 'success',
        status: 204,
        actor: { role: caller.role, facility: caller.facilityId, subject: caller.subject },
        requestId: c.var.requestId,
      });
    return c.body(null, 204);
  });

  return r;
}
