/**
 * Who is asking: a bearer JWT verified with jose against the configured keys.
 * Claims: `role` (hip | hiu | cm | admin) and `facility` (the caller's facility
 * or client id). ABDM gateway tokens carry no `role`: one whose client id
 * (`clientId` or `azp`) is in AUTH_GATEWAY_CLIENTS is `cm`. A token verified
 * by the gateway's own keys (GATEWAY_JWKS_URL) is that or nothing: ABDM signs
 * tokens for every client it has, so a role claim in one is never believed.
 * No or bad token: 401; a valid token with the wrong role: 403.
 *
 * `identify` runs once for every request and only learns who is asking;
 * `allow(action, ...roles)` stands first in each route's declaration and
 * makes the decision: it names the interaction (the audit action every
 * answer of that route is recorded under), then refuses a request without a
 * valid token (401) or with another role (403).
 */
import type { MiddlewareHandler } from 'hono';
import { decodeProtectedHeader, jwtVerify, errors } from 'jose';
import { FhirError, fail } from '../fhir/outcome.js';
import { ALG, type Verifier } from './keys.js';
import { SESSION_ALG, SESSION_KID_PREFIX, type SessionKeys } from './session-keys.js';

export const ROLES = ['hip', 'hiu', 'cm', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Caller {
  role: Role;
  facilityId: string;
  subject: string;
}
export type AppEnv = {
  Variables: {
    caller: Caller;
    requestId: string;
    /** The interaction, as its route declares it (allow): what the audit trail records the answer under. */
    action: string;
    /** Why the request's token was not accepted (identify), for allow to answer 401. */
    authFailure: ReturnType<typeof fail>;
  };
};

/** A facility or client id as a token may name it. */
export const FACILITY_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export interface AuthOptions {
  issuer?: string;
  audience?: string;
  gatewayClients: readonly string[];
  clockToleranceSec?: number;
  /** The web page's session tokens (auth/session-keys.ts): HS256 under a `web-` key id, checked by these only. */
  sessions?: SessionKeys;
  /** Tokens verified lately (identify keeps one per app); unset: every token is checked. */
  verified?: VerifiedTokens;
}

const unauthorized = (msg: string) => fail('unauthenticated', 'login', msg);

/** Learns who is asking from the bearer token, if any; refuses nothing (see allow). */
export function identify(verifier: Verifier, opts: AuthOptions): MiddlewareHandler<AppEnv> {
  const withCache = { verified: new VerifiedTokens(), ...opts };
  return async (c, next) => {
    try {
      c.set('caller', await verify(c.req.header('authorization'), verifier, withCache));
    } catch (e) {
      c.set('authFailure', e as ReturnType<typeof fail>);
    }
    await next();
  };
}

/**
 * Tokens this process verified lately, by their exact text: the same token again is answered from here, without
 * another signature check, until its `exp` and for at most `ttlMs` (so a key withdrawn from a JWKS stops being
 * believed within that). Bounded: the oldest entry goes when it is full. Nothing here is shared between processes,
 * and nothing needs to be: a token is the same token in every process.
 */
export class VerifiedTokens {
  private entries = new Map<string, { caller: Caller; until: number }>();
  constructor(
    private max = 10_000,
    private ttlMs = 60_000,
    private now: () => number = Date.now,
  ) {}

  get(token: string): Caller | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    if (e.until <= this.now()) {
      this.entries.delete(token);
      return undefined;
    }
    return e.caller;
  }

  set(token: string, caller: Caller, expSec: unknown): void {
    if (typeof expSec !== 'number') return;
    const until = Math.min(expSec * 1000, this.now() + this.ttlMs);
    if (until <= this.now()) return;
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { caller, until });
  }

  get size(): number {
    return this.entries.size;
  }
}

/** The caller an Authorization header names, or the 401 FhirError saying why not. */
export async function verify(header: string | undefined, verifier: Verifier, opts: AuthOptions): Promise<Caller> {
  if (!header) throw withChallenge(unauthorized('Authorization: Bearer <token> required'));
  const m = /^Bearer ([A-Za-z0-9_.-]+)$/i.exec(header.trim());
  if (!m) throw withChallenge(unauthorized('Authorization header must be "Bearer <JWT>"'));
  const cached = opts.verified?.get(m[1]);
  if (cached) return cached;
  const { caller, exp } = await verifyToken(m[1], verifier, opts);
  opts.verified?.set(m[1], caller, exp);
  return caller;
}

/** The caller a token names and its `exp`, or the 401 FhirError saying why not. */
async function verifyToken(
  token: string,
  verifier: Verifier,
  opts: AuthOptions,
): Promise<{ caller: Caller; exp: unknown }> {
  let payload: Record<string, unknown>;
  try {
    if (opts.sessions && isSessionToken(token)) {
      const claims = await opts.sessions.verify(token);
      return { caller: callerFrom(claims, opts), exp: claims.exp };
    }
    const options = {
      algorithms: [ALG],
      issuer: opts.issuer,
      audience: opts.audience,
      clockTolerance: opts.clockToleranceSec ?? 30,
      requiredClaims: ['exp'],
    };
    const keys = verifier.keys; // a key set (JWKS) or one key: jwtVerify has an overload for each
    try {
      const verified =
        typeof keys === 'function' ? await jwtVerify(token, keys, options) : await jwtVerify(token, keys, options);
      payload = verified.payload as Record<string, unknown>;
    } catch (e) {
      // Not one of ours: perhaps ABDM's gateway (its own issuer and audience; exp still required).
      if (!verifier.gatewayKeys || !isKeyMismatch(e)) throw e;
      const verified = await jwtVerify(token, verifier.gatewayKeys, {
        algorithms: [ALG],
        clockTolerance: options.clockTolerance,
        requiredClaims: ['exp'],
      });
      return { caller: gatewayCaller(verified.payload as Record<string, unknown>, opts), exp: verified.payload.exp };
    }
  } catch (e) {
    if (e instanceof FhirError) throw e;
    const why = e instanceof errors.JWTExpired ? 'token expired' : 'token not valid';
    throw withChallenge(unauthorized(`Bearer ${why}`));
  }
  return { caller: callerFrom(payload, opts), exp: payload.exp };
}

/** A web session token by its header (HS256 under a `web-` key id); only the session keys may verify it. */
function isSessionToken(token: string): boolean {
  try {
    const h = decodeProtectedHeader(token);
    return h.alg === SESSION_ALG && typeof h.kid === 'string' && h.kid.startsWith(SESSION_KID_PREFIX);
  } catch {
    return false;
  }
}

/** The token was signed by a key the store's own key source does not have (so another source may). */
const isKeyMismatch = (e: unknown) =>
  e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWSSignatureVerificationFailed;

/** A token ABDM's gateway signed: the consent manager when its client id is listed, else no one. */
function gatewayCaller(p: Record<string, unknown>, opts: AuthOptions): Caller {
  const clientId = typeof p.clientId === 'string' ? p.clientId : typeof p.azp === 'string' ? p.azp : undefined;
  if (!clientId || !opts.gatewayClients.includes(clientId) || !FACILITY_ID.test(clientId))
    throw withChallenge(unauthorized('A gateway token must come from one of AUTH_GATEWAY_CLIENTS'));
  if (p.role !== undefined && p.role !== 'cm')
    throw withChallenge(unauthorized('A gateway token can only act as the consent manager (role cm)'));
  return { role: 'cm', facilityId: clientId, subject: typeof p.sub === 'string' && p.sub ? p.sub : clientId };
}

function callerFrom(p: Record<string, unknown>, opts: AuthOptions): Caller {
  const subject = typeof p.sub === 'string' ? p.sub : '';
  const clientId = typeof p.clientId === 'string' ? p.clientId : typeof p.azp === 'string' ? p.azp : undefined;
  let role = p.role as Role | undefined;
  let facility = typeof p.facility === 'string' ? p.facility : undefined;
  if (role === undefined && clientId && opts.gatewayClients.includes(clientId)) {
    role = 'cm';
    facility = clientId;
  }
  if (!role || !(ROLES as readonly string[]).includes(role))
    throw withChallenge(unauthorized('Token names no known role (hip, hiu, cm, admin)'));
  if (!facility || !FACILITY_ID.test(facility)) throw withChallenge(unauthorized('Token names no valid facility'));
  return { role, facilityId: facility, subject: subject || facility };
}

function withChallenge(e: ReturnType<typeof fail>) {
  e.headers['WWW-Authenticate'] = 'Bearer';
  return e;
}

/**
 * A route's authorisation rule, first in its declaration: the interaction it
 * is (its audit action), and the roles that may call it. 401 without a valid
 * token, 403 for another role.
 */
/** The rule an allow() middleware carries, so tests can list every route's rule (test/auth/every-route.test.ts). */
export const RULE = Symbol('authorisation rule');
export type AllowMiddleware = MiddlewareHandler<AppEnv> & { [RULE]: { action: string; roles: readonly Role[] } };

export function allow(action: string, ...roles: Role[]): AllowMiddleware {
  const middleware: MiddlewareHandler<AppEnv> = async (c, next) => {
    c.set('action', action);
    const failure = c.get('authFailure');
    const caller = c.get('caller');
    if (!caller) throw failure ?? withChallenge(unauthorized('Authorization: Bearer <token> required'));
    if (!roles.includes(caller.role))
      throw fail(
        'forbidden',
        'forbidden',
        `This operation is for role ${roles.join(' or ')}; the token's role is ${caller.role}`,
      );
    await next();
  };
  return Object.assign(middleware, { [RULE]: { action, roles } as const });
}
