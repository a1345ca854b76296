/**
 * The keys that seal paging cursors (records/cursor.ts), kept like the token
 * keys: a file named by PAGING_KEYS_FILE, or on a laptop a file created on
 * first start in DATA_DIR/auth. With NODE_ENV=production the server refuses
 * to start without PAGING_KEYS_FILE, since every process that serves one
 * store must hold the same keys.
 *
 * The file: `{"keys": [{"kid": "k2", "secret": "<base64 of 32 bytes>"}, …]}`.
 * The first key seals new cursors; every listed key opens them. To rotate,
 * put a new key first, keep the old one listed for PAGING_CURSOR_TTL_SEC
 * (cursors live no longer), then drop it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { KeyConfigError } from './keys.js';

export interface PagingKey {
  kid: string;
  secret: Buffer;
}
export interface PagingKeys {
  keys: PagingKey[];
  source: string;
}

const KID = /^[A-Za-z0-9_-]{1,32}$/;

export function loadPagingKeys(config: Config): PagingKeys {
  if (config.PAGING_KEYS_FILE)
    return { keys: readKeyFile(config.PAGING_KEYS_FILE), source: `key file ${config.PAGING_KEYS_FILE}` };
  if (config.NODE_ENV === 'production') {
    throw new KeyConfigError(
      'NODE_ENV=production needs PAGING_KEYS_FILE: the keys that seal paging cursors, the same file for every server process.',
    );
  }
  const dir = join(config.DATA_DIR, 'auth');
  const file = join(dir, 'paging-keys.json');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const body = JSON.stringify({
      keys: [{ kid: `dev-${Date.now().toString(36)}`, secret: randomBytes(32).toString('base64') }],
    });
    try {
      writeFileSync(file, body, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } // another process made it first
  }
  return { keys: readKeyFile(file), source: `local development key in ${file}` };
}

function readKeyFile(file: string): PagingKey[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new KeyConfigError(`PAGING_KEYS_FILE ${file} is not readable JSON: ${(e as Error).message.slice(0, 120)}`);
  }
  const list = (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(list) || list.length === 0)
    throw new KeyConfigError(`PAGING_KEYS_FILE ${file} must be {"keys": [{"kid", "secret"}, …]} with at least one key`);
  const seen = new Set<string>();
  return list.map((k: { kid?: unknown; secret?: unknown }, i) => {
    const secret = typeof k?.secret === 'string' ? Buffer.from(k.secret, 'base64') : Buffer.alloc(0);
    if (typeof k?.kid !== 'string' || !KID.test(k.kid) || seen.has(k.kid))
      throw new KeyConfigError(
        `PAGING_KEYS_FILE ${file}: keys[${i}].kid must be a unique id of 1-32 letters, digits, _ or -`,
      );
    if (secret.length !== 32)
      throw new KeyConfigError(`PAGING_KEYS_FILE ${file}: keys[${i}].secret must be 32 bytes, base64`);
    seen.add(k.kid);
    return { kid: k.kid, secret };
  });
}
