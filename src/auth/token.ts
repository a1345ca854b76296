/**
 * `npm run token -- --role hip --facility H1 [--ttl 3600] [--sub name]`:
 * prints a development token signed with the local key in DATA_DIR/auth.
 */
import { parseArgs } from 'node:util';
import { SignJWT, importJWK } from 'jose';
import { loadConfig } from '../config.js';
import { ALG, localKeyPair } from './keys.js';
import { ROLES, type Role } from './caller.js';

export async function signDevToken(
  dataDir: string,
  claims: { role: Role; facility: string; sub?: string; ttlSec?: number; issuer?: string; audience?: string },
): Promise<string> {
  const keys = await localKeyPair(dataDir);
  const key = await importJWK(keys.privateJwk, ALG);
  let jwt = new SignJWT({ role: claims.role, facility: claims.facility })
    .setProtectedHeader({ alg: ALG, kid: keys.privateJwk.kid })
    .setSubject(claims.sub ?? `${claims.role}:${claims.facility}`)
    .setIssuedAt()
    .setExpirationTime(`${claims.ttlSec ?? 3600}s`);
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(key);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      facility: { type: 'string' },
      ttl: { type: 'string', default: '3600' },
      sub: { type: 'string' },
    },
  });
  if (!values.role || !(ROLES as readonly string[]).includes(values.role) || !values.facility) {
    console.error(`usage: npm run token -- --role ${ROLES.join('|')} --facility <id> [--ttl seconds] [--sub name]`);
    process.exit(2);
  }
  const config = loadConfig();
  if (config.AUTH_JWKS_URL || config.AUTH_PUBLIC_KEY_FILE)
    console.error(
      'note: the server verifies with configured keys, not the local development key this token is signed with',
    );
  console.log(
    await signDevToken(config.DATA_DIR, {
      role: values.role as Role,
      facility: values.facility,
      sub: values.sub,
      ttlSec: Number(values.ttl),
      issuer: config.AUTH_ISSUER,
      audience: config.AUTH_AUDIENCE,
    }),
  );
}
