/**
 * Verification keys for bearer tokens, from configuration: a JWKS URL, or a
 * key file (PEM public key, PEM X.509 certificate as ABDM's gateway publishes,
 * or a JWKS JSON file); and, apart from them, ABDM's gateway JWKS
 * (GATEWAY_JWKS_URL), whose tokens can only ever be the consent manager's.
 * On a laptop with none configured, a local RS256 key pair is created in
 * DATA_DIR/auth and `npm run token` signs with it; in production the server
 * refuses to start without configured keys.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  importSPKI,
  importX509,
  type JWTVerifyGetKey,
  type CryptoKey,
  type JWK,
} from 'jose';
import type { Config } from '../config.js';

export const ALG = 'RS256';

export interface Verifier {
  /** Key lookup for jose.jwtVerify: the store's own callers (providers, viewers, admin). */
  keys: JWTVerifyGetKey | CryptoKey;
  /**
   * ABDM's gateway keys (GATEWAY_JWKS_URL, `{base}/gateway/v3/certs`): a token they verify is the consent manager's
   * (role cm) when its client id is one of AUTH_GATEWAY_CLIENTS, and nothing else (auth/caller.ts).
   */
  gatewayKeys?: JWTVerifyGetKey;
  /** Where the keys come from, for the start-up log. */
  source: string;
}

export class KeyConfigError extends Error {}

export async function loadVerifier(config: Config): Promise<Verifier> {
  const own = await ownKeys(config);
  if (!config.GATEWAY_JWKS_URL) return own;
  return {
    ...own,
    gatewayKeys: createRemoteJWKSet(new URL(config.GATEWAY_JWKS_URL)),
    source: `${own.source}; ABDM gateway JWKS ${config.GATEWAY_JWKS_URL}`,
  };
}

async function ownKeys(config: Config): Promise<Verifier> {
  if (config.AUTH_JWKS_URL)
    return { keys: createRemoteJWKSet(new URL(config.AUTH_JWKS_URL)), source: `JWKS ${config.AUTH_JWKS_URL}` };
  if (config.AUTH_PUBLIC_KEY_FILE)
    return { keys: await keyFromFile(config.AUTH_PUBLIC_KEY_FILE), source: `key file ${config.AUTH_PUBLIC_KEY_FILE}` };
  if (config.NODE_ENV === 'production') {
    throw new KeyConfigError(
      'NODE_ENV=production needs token verification keys: set AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE.',
    );
  }
  const local = await localKeyPair(config.DATA_DIR);
  return { keys: createLocalJWKSet({ keys: [local.publicJwk] }), source: `local development key in ${local.dir}` };
}

async function keyFromFile(file: string): Promise<JWTVerifyGetKey | CryptoKey> {
  const text = readFileSync(file, 'utf8');
  if (text.includes('BEGIN CERTIFICATE')) return importX509(text, ALG);
  if (text.includes('BEGIN PUBLIC KEY')) return importSPKI(text, ALG);
  const json = JSON.parse(text);
  if (Array.isArray(json.keys)) return createLocalJWKSet(json);
  return (await importJWK(json, ALG)) as CryptoKey;
}

export interface LocalKeys {
  dir: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

/** The development key pair in `${dataDir}/auth`, created on first use (private key file mode 0600). */
export async function localKeyPair(dataDir: string): Promise<LocalKeys> {
  const dir = join(dataDir, 'auth');
  const privatePath = join(dir, 'dev-signing-key.private.jwk.json');
  const publicPath = join(dir, 'dev-signing-key.public.jwk.json');
  if (!existsSync(privatePath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true, modulusLength: 2048 });
    const kid = `dev-${Date.now().toString(36)}`;
    writeFileSync(privatePath, JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' }), {
      mode: 0o600,
      flag: 'wx',
    });
    writeFileSync(publicPath, JSON.stringify({ ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' }));
  }
  return {
    dir,
    privateJwk: JSON.parse(readFileSync(privatePath, 'utf8')),
    publicJwk: JSON.parse(readFileSync(publicPath, 'utf8')),
  };
}
