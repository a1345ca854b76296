/**
 * The cache of verified tokens (auth/caller.ts VerifiedTokens): the same token again is answered without another
 * signature check, never past its exp nor past the cache's own lifetime, only for the exact token text, and bounded.
 */
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { SignJWT, generateKeyPair, type CryptoKey } from 'jose';
import { type AppEnv, type Caller, VerifiedTokens, identify } from '../../src/auth/caller.js';
import type { Verifier } from '../../src/auth/keys.js';

const caller: Caller = { role: 'hip', facilityId: 'H1', subject: 's' };

describe('VerifiedTokens', () => {
  it('answers until the token expires or its lifetime ends, whichever is first', () => {
    let now = 1_000_000;
    const cache = new VerifiedTokens(10, 60_000, () => now);
    cache.set('a', caller, (now + 30_000) / 1000); // expires in 30 s
    cache.set('b', caller, (now + 600_000) / 1000); // expires in 10 min
    expect(cache.get('a')).toEqual(caller);
    now += 30_000;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toEqual(caller);
    now += 30_000;
    expect(cache.get('b')).toBeUndefined();
  });

  it('keeps nothing already expired or without exp, matches the exact text only, and is bounded', () => {
    const now = 1_000_000;
    const cache = new VerifiedTokens(3, 60_000, () => now);
    cache.set('old', caller, (now - 1) / 1000);
    cache.set('none', caller, undefined);
    expect(cache.size).toBe(0);
    for (const t of ['t1', 't2', 't3', 't4']) cache.set(t, caller, (now + 10_000) / 1000);
    expect(cache.size).toBe(3);
    expect(cache.get('t1')).toBeUndefined(); // the oldest went
    expect(cache.get('t4')).toEqual(caller);
    expect(cache.get('t4x')).toBeUndefined();
    expect(cache.get('t')).toBeUndefined();
  });
});

describe('identify with the cache', () => {
  it('checks a token’s signature once, another token again, and never believes a bad token', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    let lookups = 0;
    const verifier: Verifier = {
      keys: (async () => {
        lookups++;
        return publicKey;
      }) as unknown as Verifier['keys'],
      source: 'test',
    };
    const app = new Hono<AppEnv>();
    app.use('*', identify(verifier, { gatewayClients: [] }));
    app.get('/who', (c) => c.json(c.get('caller') ?? null));
    const sign = (facility: string, key: CryptoKey = privateKey) =>
      new SignJWT({ role: 'hip', facility }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(key);
    const who = async (token: string) =>
      (await app.request('/who', { headers: { Authorization: `Bearer ${token}` } })).json();

    const one = await sign('H1');
    expect(await who(one)).toMatchObject({ role: 'hip', facilityId: 'H1' });
    expect(await who(one)).toMatchObject({ role: 'hip', facilityId: 'H1' });
    expect(lookups).toBe(1);
    const two = await sign('H2');
    expect(await who(two)).toMatchObject({ facilityId: 'H2' });
    expect(lookups).toBe(2);
    // A token whose signature is altered is checked (and refused), however like a cached one it is.
    const forged = `${one.slice(0, -4)}${one.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect(await who(forged)).toBeNull();
    const other = await generateKeyPair('RS256');
    expect(await who(await sign('H1', other.privateKey))).toBeNull();
  });
});
