/**
 * The web page's session tokens after an OpenID Connect sign-in: short-lived
 * JWTs (HS256) the store signs itself, since a browser holds no token of the
 * store's key source. Their key is derived (HKDF-SHA256) from the paging keys
 * (auth/paging-keys.ts), which every process of one store already shares, so
 * any process verifies what another signed, and rotating those keys rotates
 * these. The `kid` names the paging key it came from; the issuer is fixed, so
 * a session token is never taken for another kind of token or the reverse.
 *
 * What a session token may be: role hip, hiu or admin (the consent manager
 * never signs in with a browser), a facility, a subject, and `exp`.
 */
import { hkdfSync } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';
import type { PagingKeys } from './paging-keys.js';
import type { Role } from './caller.js';

export const SESSION_ALG = 'HS256';
export const SESSION_ISSUER = 'urn:abha-vault:web-session';
export const SESSION_KID_PREFIX = 'web-';
/** The roles a person signs in to the page as. */
export const WEB_ROLES: readonly Role[] = ['hip', 'hiu', 'admin'];

export class SessionKeys {
  private keys: { kid: string; key: Uint8Array }[];
  /** Signs a sign-in in progress (OpenID Connect state, nonce, PKCE verifier) in its HttpOnly cookie for 10 minutes. */
  readonly flowKey: Uint8Array;

  constructor(paging: PagingKeys) {
    const derive = (secret: Buffer, info: string) =>
      new Uint8Array(hkdfSync('sha256', secret, new Uint8Array(0), info, 32));
    this.keys = paging.keys.map((k) => ({
      kid: `${SESSION_KID_PREFIX}${k.kid}`,
      key: derive(k.secret, 'abha-vault web session v1'),
    }));
    this.flowKey = derive(paging.keys[0].secret, 'abha-vault web sign-in flow v1');
  }

  /** Signs a session token with the first key. */
  sign(claims: { role: Role; facility: string; sub: string }, ttlSec: number): Promise<string> {
    const { kid, key } = this.keys[0];
    return new SignJWT({ role: claims.role, facility: claims.facility })
      .setProtectedHeader({ alg: SESSION_ALG, kid, typ: 'JWT' })
      .setIssuer(SESSION_ISSUER)
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(`${ttlSec}s`)
      .sign(key);
  }

  /** The claims of a session token this store signed (any listed key), or a jose error. */
  async verify(token: string, clockToleranceSec = 30): Promise<Record<string, unknown>> {
    const { payload } = await jwtVerify(
      token,
      (header) => {
        const found = this.keys.find((k) => k.kid === header.kid);
        if (!found) throw new Error('unknown session key');
        return found.key;
      },
      { algorithms: [SESSION_ALG], issuer: SESSION_ISSUER, clockTolerance: clockToleranceSec, requiredClaims: ['exp'] },
    );
    if (!WEB_ROLES.includes(payload.role as Role)) throw new Error('session token names no web role');
    return payload as Record<string, unknown>;
  }
}
