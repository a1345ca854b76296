/**
 * Who is asking: a bearer JWT verified with jose against the configured keys.
 * Claims: `role` (hip | hiu | cm | admin) and `facility` (the caller's facility
 * or client id). ABDM gateway tokens carry no `role`; when they are verified by
 * the gateway keys (AUTH_GATEWAY_CLIENTS lists their client ids) they are `cm`.
 * No or bad token: 401; a valid token with the wrong role: 403.
 */
import type { MiddlewareHandler } from 'hono';
import { jwtVerify, errors } from 'jose';
import { fail } from '../fhir/outcome.js';
import { ALG, type Verifier } from './keys.js';

export const ROLES = ['hip', 'hiu', 'cm', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Caller { role: Role; facilityId: string; subject: string }
export type AppEnv = { Variables: { caller: Caller; requestId: string } };

const FACILITY_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

export interface AuthOptions { issuer?: string; audience?: string; gatewayClients: readonly string[]; clockToleranceSec?: number }

const unauthorized = (msg: string) => fail(401, 'login', msg);

export function authenticate(verifier: Verifier, opts: AuthOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (!header) throw withChallenge(unauthorized('Authorization: Bearer <token> required'));
    const m = /^Bearer ([A-Za-z0-9_.-]+)$/i.exec(header.trim());
    if (!m) throw withChallenge(unauthorized('Authorization header must be "Bearer <JWT>"'));
    let payload: Record<string, unknown>;
    try {
      const verified = await jwtVerify(m[1], verifier.keys as any, {
        algorithms: [ALG],
        issuer: opts.issuer,
        audience: opts.audience,
        clockTolerance: opts.clockToleranceSec ?? 30,
        requiredClaims: ['exp'],
      });
      payload = verified.payload as Record<string, unknown>;
    } catch (e) {
      const why = e instanceof errors.JWTExpired ? 'token expired' : e instanceof errors.JOSEError ? 'token not valid' : 'token not valid';
      throw withChallenge(unauthorized(`Bearer ${why}`));
    }
    c.set('caller', callerFrom(payload, opts));
    await next();
  };
}

function callerFrom(p: Record<string, unknown>, opts: AuthOptions): Caller {
  const subject = typeof p.sub === 'string' ? p.sub : '';
  const clientId = typeof p.clientId === 'string' ? p.clientId : typeof p.azp === 'string' ? p.azp : undefined;
  let role = p.role as Role | undefined;
  let facility = typeof p.facility === 'string' ? p.facility : undefined;
  if (role === undefined && clientId && opts.gatewayClients.includes(clientId)) { role = 'cm'; facility = clientId; }
  if (!role || !(ROLES as readonly string[]).includes(role)) throw withChallenge(unauthorized('Token names no known role (hip, hiu, cm, admin)'));
  if (!facility || !FACILITY_ID.test(facility)) throw withChallenge(unauthorized('Token names no valid facility'));
  return { role, facilityId: facility, subject: subject || facility };
}

function withChallenge(e: ReturnType<typeof fail>) {
  e.headers['WWW-Authenticate'] = 'Bearer';
  return e;
}

/** 403 unless the caller has one of `roles`. */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const caller = c.get('caller');
    if (!roles.includes(caller.role)) throw fail(403, 'forbidden', `This operation is for role ${roles.join(' or ')}; the token's role is ${caller.role}`);
    await next();
  };
}
