/**
 * Fidelius (src/abdm/fidelius.ts) against the reference Fidelius CLI 1.2.0
 * vectors in ../shared/test-vectors/fidelius.json beside the repository (path
 * overridable with FIDELIUS_VECTORS), plus properties, edge cases and the CLI.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
  CURVE,
  Point,
  decrypt,
  encrypt,
  generateKeyMaterial,
  getPublicKey,
  parsePublicKey,
  sharedSecret,
  toX509PublicKey,
} from '../../src/abdm/fidelius.js';

interface Party {
  privateKey: string;
  publicKey: string;
  x509PublicKey: string;
  nonce: string;
}
interface Vector {
  plaintext: string;
  sender: Party;
  requester: Party;
  requesterKeyFormUsedToEncrypt: 'raw' | 'x509';
  encryptedData: string;
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VECTORS_PATH =
  process.env.FIDELIUS_VECTORS ?? path.resolve(REPO_ROOT, '..', 'shared', 'test-vectors', 'fidelius.json');
const { vectors } = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as { vectors: Vector[] };

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const toBig = (bytes: Uint8Array): bigint => (bytes.length ? BigInt(`0x${Buffer.from(bytes).toString('hex')}`) : 0n);
const to32 = (v: bigint): Uint8Array => new Uint8Array(Buffer.from(v.toString(16).padStart(64, '0'), 'hex'));

/** Independent, tiny DER walker (test-only) to read the curve out of an X.509 key. */
interface Tlv {
  tag: number;
  content: Uint8Array;
  children?: Tlv[];
}
function parseDer(buf: Uint8Array): Tlv[] {
  const out: Tlv[] = [];
  let i = 0;
  while (i < buf.length) {
    const tag = buf[i++];
    let len = buf[i++];
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + buf[i++];
    }
    const content = buf.subarray(i, i + len);
    i += len;
    out.push({ tag, content, children: tag & 0x20 ? parseDer(content) : undefined });
  }
  return out;
}

function curveFromX509(x509: string) {
  const [spki] = parseDer(unb64(x509));
  const [alg, bitString] = spki.children!;
  const [oid, params] = alg.children!;
  const [version, fieldId, curve, base, order, cofactor] = params.children!;
  const [fieldType, prime] = fieldId.children!;
  const [a, b] = curve.children!;
  return {
    oid: Buffer.from(oid.content).toString('hex'),
    version: toBig(version.content),
    fieldType: Buffer.from(fieldType.content).toString('hex'),
    p: toBig(prime.content),
    a: toBig(a.content),
    b: toBig(b.content),
    G: base.content,
    n: toBig(order.content),
    h: toBig(cofactor.content),
    curveFields: curve.children!.length,
    point: bitString.content,
  };
}

function encryptVector(v: Vector, requesterPublicKey: string): string {
  return encrypt({
    plaintext: v.plaintext,
    senderNonce: v.sender.nonce,
    requesterNonce: v.requester.nonce,
    senderPrivateKey: v.sender.privateKey,
    requesterPublicKey,
  });
}

function decryptVector(v: Vector, senderPublicKey: string, encryptedData = v.encryptedData): string {
  return decrypt({
    encryptedData,
    requesterNonce: v.requester.nonce,
    senderNonce: v.sender.nonce,
    requesterPrivateKey: v.requester.privateKey,
    senderPublicKey,
  });
}

describe('curve parameters', () => {
  it('the vectors carry at least one vector per key form and some unicode', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(10);
    expect(vectors.some((v) => v.requesterKeyFormUsedToEncrypt === 'x509')).toBe(true);
    // eslint-disable-next-line no-control-regex -- \x00-\x7f is the ASCII range on purpose: finds non-ASCII plaintext
    expect(vectors.some((v) => /[^\x00-\x7f]/.test(v.plaintext))).toBe(true);
  });

  it('every X.509 key in the vectors embeds exactly our p, a, b, G, n, h', () => {
    const G = Buffer.concat([Buffer.of(4), to32(CURVE.Gx), to32(CURVE.Gy)]);
    for (const v of vectors) {
      for (const party of [v.sender, v.requester]) {
        const c = curveFromX509(party.x509PublicKey);
        expect(c.oid).toBe('2a8648ce3d0201'); // id-ecPublicKey
        expect(c.fieldType).toBe('2a8648ce3d0101'); // prime-field
        expect(c.version).toBe(1n);
        expect(c.p).toBe(CURVE.p);
        expect(c.a).toBe(CURVE.a);
        expect(c.b).toBe(CURVE.b);
        expect(Buffer.from(c.G).equals(G)).toBe(true);
        expect(c.n).toBe(CURVE.n);
        expect(c.h).toBe(CURVE.h);
        expect(c.curveFields).toBe(2); // no seed
        expect(Buffer.from(c.point).equals(Buffer.concat([Buffer.of(0), unb64(party.publicKey)]))).toBe(true);
      }
    }
  });

  it('G is on the curve and has order n; p = 2^255 - 19', () => {
    const { p, a, b, Gx, Gy, n } = CURVE;
    expect(p).toBe(2n ** 255n - 19n);
    expect((((Gy * Gy - (Gx ** 3n + a * Gx + b)) % p) + p) % p).toBe(0n);
    expect(
      Point.BASE.multiplyUnsafe(n - 1n)
        .add(Point.BASE)
        .is0(),
    ).toBe(true);
    expect(Point.BASE.multiplyUnsafe(n - 1n).equals(Point.BASE.negate())).toBe(true);
  });
});

describe('reference vectors', () => {
  it.each(vectors.map((v, i) => [i, v] as const))('vector %i: keys derive and encode like the reference', (_i, v) => {
    for (const party of [v.sender, v.requester]) {
      expect(getPublicKey(party.privateKey)).toBe(party.publicKey);
      expect(toX509PublicKey(party.publicKey)).toBe(party.x509PublicKey);
      expect(toX509PublicKey(party.x509PublicKey)).toBe(party.x509PublicKey);
      expect(b64(parsePublicKey(party.x509PublicKey))).toBe(party.publicKey);
      expect(b64(parsePublicKey(party.publicKey))).toBe(party.publicKey);
    }
  });

  it.each(vectors.map((v, i) => [i, v] as const))('vector %i: decrypts with raw and X.509 sender key', (_i, v) => {
    expect(decryptVector(v, v.sender.publicKey)).toBe(v.plaintext);
    expect(decryptVector(v, v.sender.x509PublicKey)).toBe(v.plaintext);
  });

  it.each(vectors.map((v, i) => [i, v] as const))(
    'vector %i: re-encrypts byte for byte with raw and X.509 requester key',
    (_i, v) => {
      expect(encryptVector(v, v.requester.publicKey)).toBe(v.encryptedData);
      expect(encryptVector(v, v.requester.x509PublicKey)).toBe(v.encryptedData);
    },
  );

  it.each(vectors.map((v, i) => [i, v] as const))('vector %i: ECDH is symmetric and 32 bytes', (_i, v) => {
    const s1 = sharedSecret(v.sender.privateKey, v.requester.publicKey);
    const s2 = sharedSecret(v.requester.privateKey, v.sender.x509PublicKey);
    expect(s1).toHaveLength(32);
    expect(Buffer.from(s1).equals(Buffer.from(s2))).toBe(true);
  });

  it('the nonce roles are symmetric (XOR), swapping them still decrypts', () => {
    const v = vectors[0];
    expect(
      decrypt({
        encryptedData: v.encryptedData,
        requesterNonce: v.sender.nonce,
        senderNonce: v.requester.nonce,
        requesterPrivateKey: v.requester.privateKey,
        senderPublicKey: v.sender.publicKey,
      }),
    ).toBe(v.plaintext);
  });

  it('decrypts the example from the reference CLI README', () => {
    // github.com/mgrmtech/fidelius-cli README ("Wormtail" example, CLI 1.x).
    // The README's prose says "...have been the Potter cottage's...", but its
    // ciphertext authenticates (GCM) and decrypts to the text without "the":
    // a typo in the README, not in the scheme.
    expect(
      decrypt({
        encryptedData:
          'pzMvVZNNVtJzqPkkxcCbBUWgDEBy/mBXIeT2dJWI16ZAQnnXUb9lI+S4k8XK6mgZSKKSRIHkcNvJpllnBg548wUgavBa0vCRRwdL6kY6Yw==',
        requesterNonce: '6uj1RdDUbcpI3lVMZvijkMC8Te20O4Bcyz0SyivX8Eg=',
        senderNonce: 'lmXgblZwotx+DfBgKJF0lZXtAXgBEYr5khh79Zytr2Y=',
        requesterPrivateKey: 'DMxHPri8d7IT23KgLk281zZenMfVHSdeamq0RhwlIBk=',
        senderPublicKey: 'BABVt+mpRLMXiQpIfEq6bj8hlXsdtXIxLsspmMgLNI1SR5mHgDVbjHO2A+U4QlMddGzqyEidzm1AkhtSxSO2Ahg=',
      }),
    ).toBe("Wormtail should never have been Potter cottage's secret keeper.");
  });
});

describe('properties', () => {
  const plaintexts = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ unit: 'grapheme', maxLength: 100 }),
    fc.json({ maxDepth: 3 }),
  );

  it('encrypt → decrypt round-trips with fresh key pairs and nonces (raw and X.509 keys)', () => {
    fc.assert(
      fc.property(plaintexts, fc.boolean(), (plaintext, useX509) => {
        const sender = generateKeyMaterial();
        const requester = generateKeyMaterial();
        const encryptedData = encrypt({
          plaintext,
          senderNonce: sender.nonce,
          requesterNonce: requester.nonce,
          senderPrivateKey: sender.privateKey,
          requesterPublicKey: useX509 ? requester.x509PublicKey : requester.publicKey,
        });
        expect(unb64(encryptedData)).toHaveLength(Buffer.byteLength(plaintext, 'utf8') + 16);
        const out = decrypt({
          encryptedData,
          requesterNonce: requester.nonce,
          senderNonce: sender.nonce,
          requesterPrivateKey: requester.privateKey,
          senderPublicKey: useX509 ? sender.publicKey : sender.x509PublicKey,
        });
        expect(out).toBe(plaintext);
      }),
      { numRuns: 60 },
    );
  });

  it('a shared secret with a leading 0x00 byte is kept at 32 bytes and round-trips', () => {
    // Deterministic search: scalars from sha256(label || counter), until the
    // ECDH X coordinate starts with 0x00 (about 1 in 256).
    const scalar = (label: string, i: number): string => {
      const bytes = createHash('sha256').update(`${label}:${i}`).digest();
      bytes[0] &= 0x0f; // < 2^252 < n
      return bytes.toString('base64');
    };
    const requesterPrivateKey = scalar('fidelius-test-requester', 0);
    const requesterPublicKey = getPublicKey(requesterPrivateKey);
    let found: { senderPrivateKey: string; counter: number } | undefined;
    for (let i = 0; i < 20_000 && !found; i++) {
      const senderPrivateKey = scalar('fidelius-test-sender', i);
      if (sharedSecret(senderPrivateKey, requesterPublicKey)[0] === 0) found = { senderPrivateKey, counter: i };
    }
    expect(found).toBeDefined();
    const { senderPrivateKey } = found!;
    const senderPublicKey = getPublicKey(senderPrivateKey);

    const s = sharedSecret(senderPrivateKey, requesterPublicKey);
    expect(s).toHaveLength(32);
    expect(s[0]).toBe(0);
    const s2 = sharedSecret(requesterPrivateKey, toX509PublicKey(senderPublicKey));
    expect(Buffer.from(s2).equals(Buffer.from(s))).toBe(true);
    // Independent check against the curve arithmetic: X of d·Q, 32 bytes.
    const d = toBig(unb64(senderPrivateKey));
    const x = Point.fromBytes(unb64(requesterPublicKey)).multiply(d).toAffine().x;
    expect(Buffer.from(s).equals(Buffer.from(to32(x)))).toBe(true);

    const senderNonce = b64(createHash('sha256').update('n1').digest());
    const requesterNonce = b64(createHash('sha256').update('n2').digest());
    const plaintext = '{"resourceType":"Bundle","type":"document"} ✓';
    const encryptedData = encrypt({ plaintext, senderNonce, requesterNonce, senderPrivateKey, requesterPublicKey });
    expect(decrypt({ encryptedData, requesterNonce, senderNonce, requesterPrivateKey, senderPublicKey })).toBe(
      plaintext,
    );
  });
});

describe('generateKeyMaterial', () => {
  it('gives fresh, well-formed keys and nonces on every call', () => {
    const prefix = unb64(vectors[0].sender.x509PublicKey).subarray(0, -65);
    const all = Array.from({ length: 20 }, () => generateKeyMaterial());
    for (const km of all) {
      const priv = unb64(km.privateKey);
      expect(priv).toHaveLength(32);
      const d = toBig(priv);
      expect(d >= 1n && d < CURVE.n).toBe(true);
      expect(unb64(km.publicKey)).toHaveLength(65);
      expect(unb64(km.nonce)).toHaveLength(32);
      expect(getPublicKey(km.privateKey)).toBe(km.publicKey);
      expect(toX509PublicKey(km.publicKey)).toBe(km.x509PublicKey);
      const x509 = unb64(km.x509PublicKey);
      expect(Buffer.from(x509.subarray(0, -65)).equals(Buffer.from(prefix))).toBe(true);
      expect(b64(x509.subarray(-65))).toBe(km.publicKey);
    }
    for (const field of ['privateKey', 'publicKey', 'x509PublicKey', 'nonce'] as const) {
      expect(new Set(all.map((km) => km[field])).size).toBe(all.length);
    }
  });
});

describe('rejections', () => {
  const v = vectors[0];

  it('tampered ciphertext or tag throws', () => {
    const data = unb64(v.encryptedData);
    for (const index of [0, data.length - 17, data.length - 16, data.length - 1]) {
      const t = Uint8Array.from(data);
      t[index] ^= 0x01;
      expect(() => decryptVector(v, v.sender.publicKey, b64(t))).toThrow(/authentication/);
    }
    expect(() => decryptVector(v, v.sender.publicKey, b64(data.subarray(0, data.length - 1)))).toThrow(
      /authentication/,
    );
    expect(() => decryptVector(v, v.sender.publicKey, b64(data.subarray(0, 15)))).toThrow(/shorter/);
    expect(() => decryptVector(v, v.sender.publicKey, 'not base64!')).toThrow(/base64/);
  });

  it('wrong keys or nonces throw', () => {
    const other = generateKeyMaterial();
    expect(() => decryptVector(v, other.publicKey)).toThrow(/authentication/);
    expect(() =>
      decrypt({
        encryptedData: v.encryptedData,
        requesterNonce: v.requester.nonce,
        senderNonce: v.sender.nonce,
        requesterPrivateKey: other.privateKey,
        senderPublicKey: v.sender.publicKey,
      }),
    ).toThrow(/authentication/);
    expect(() =>
      decrypt({
        encryptedData: v.encryptedData,
        requesterNonce: other.nonce,
        senderNonce: v.sender.nonce,
        requesterPrivateKey: v.requester.privateKey,
        senderPublicKey: v.sender.publicKey,
      }),
    ).toThrow(/authentication/);
  });

  it('nonces must be 32 bytes', () => {
    expect(() =>
      encrypt({
        plaintext: 'x',
        senderNonce: b64(new Uint8Array(31)),
        requesterNonce: v.requester.nonce,
        senderPrivateKey: v.sender.privateKey,
        requesterPublicKey: v.requester.publicKey,
      }),
    ).toThrow(/32 bytes/);
  });

  it('invalid private keys throw', () => {
    for (const bad of [b64(new Uint8Array(32)), b64(to32(CURVE.n)), b64(new Uint8Array(34).fill(1)), '', '%%%']) {
      expect(() => sharedSecret(bad, v.requester.publicKey)).toThrow(/private key/);
    }
  });

  it("accepts the reference CLI's BigInteger.toByteArray() private-key forms", () => {
    // A key below 2^248 is emitted by the reference as 31 bytes; a 33-byte
    // form with a 0x00 sign byte is accepted too.
    const party = vectors.flatMap((x) => [x.sender, x.requester]).find((p) => unb64(p.privateKey)[0] === 0);
    expect(party).toBeDefined();
    const priv = unb64(party!.privateKey);
    expect(getPublicKey(b64(priv.subarray(1)))).toBe(party!.publicKey);
    expect(getPublicKey(b64(Uint8Array.from([0, ...priv])))).toBe(party!.publicKey);
  });

  it('invalid public keys throw', () => {
    const raw = unb64(v.requester.publicKey);
    const x509 = unb64(v.requester.x509PublicKey);
    const bad: Record<string, Uint8Array | string> = {
      'wrong length 64': raw.subarray(0, 64),
      'wrong length 66': Uint8Array.from([...raw, 0]),
      'compressed point': Uint8Array.from([2 + Number(toBig(raw.subarray(33)) & 1n), ...raw.subarray(1, 33)]),
      'bad prefix': Uint8Array.from([5, ...raw.subarray(1)]),
      'not on curve': Uint8Array.from([...raw.subarray(0, 64), raw[64] ^ 1]),
      'x ≥ p': Uint8Array.from([4, ...to32(CURVE.p + 1n), ...raw.subarray(33)]),
      'all zero': new Uint8Array(65).fill(0).fill(4, 0, 1),
      'garbage DER': Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01]),
      'truncated DER': x509.subarray(0, x509.length - 1),
      'DER trailing byte': Uint8Array.from([...x509, 0]),
      'DER point not on curve': Uint8Array.from([...x509.subarray(0, -1), x509[x509.length - 1] ^ 1]),
      'DER wrong p': (() => {
        const t = Uint8Array.from(x509);
        t[66] ^= 0x02; // last byte of p (offset 35 + 31)
        return t;
      })(),
      'DER wrong order': (() => {
        const t = Uint8Array.from(x509);
        t[237] ^= 0x02; // last byte of n
        return t;
      })(),
      'not base64': '!!!!',
      empty: '',
    };
    for (const [name, value] of Object.entries(bad)) {
      const s = typeof value === 'string' ? value : b64(value);
      expect(() => parsePublicKey(s), name).toThrow(Error);
      expect(() => sharedSecret(v.sender.privateKey, s), name).toThrow(/public key|base64|empty/);
    }
  });

  it('a point on the curve but outside the prime-order subgroup throws', () => {
    const { Fp } = Point;
    let pointBytes: Uint8Array | undefined;
    for (let x = 1n; !pointBytes; x++) {
      const rhs = Fp.add(Fp.add(Fp.pow(x, 3n), Fp.mul(CURVE.a, x)), CURVE.b);
      let y: bigint;
      try {
        y = Fp.sqrt(rhs);
      } catch {
        continue;
      }
      const candidate = Uint8Array.from([4, ...to32(x), ...to32(y)]);
      const P = Point.fromAffine({ x, y });
      if (
        !P.multiplyUnsafe(CURVE.n - 1n)
          .add(P)
          .is0()
      )
        pointBytes = candidate;
    }
    expect(() => parsePublicKey(b64(pointBytes!))).toThrow(/subgroup/);
  });
});

describe('CLI', () => {
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/abdm/fidelius-cli.ts', ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  // eslint-disable-next-line no-control-regex -- \x00-\x7f is the ASCII range on purpose: finds non-ASCII plaintext
  const unicode = vectors.find((x) => /[^\x00-\x7f]/.test(x.plaintext)) ?? vectors[0];

  it('gkm prints fresh key material', () => {
    const r = cli('gkm');
    expect(r.status).toBe(0);
    const km = JSON.parse(r.stdout) as Record<string, string>;
    expect(Object.keys(km).sort()).toEqual(['nonce', 'privateKey', 'publicKey', 'x509PublicKey']);
    expect(getPublicKey(km.privateKey)).toBe(km.publicKey);
    expect(toX509PublicKey(km.publicKey)).toBe(km.x509PublicKey);
    expect(unb64(km.nonce)).toHaveLength(32);
  });

  it('e reproduces a vector (raw and X.509 requester key)', () => {
    for (const key of [unicode.requester.publicKey, unicode.requester.x509PublicKey]) {
      const r = cli(
        'e',
        unicode.plaintext,
        unicode.sender.nonce,
        unicode.requester.nonce,
        unicode.sender.privateKey,
        key,
      );
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ encryptedData: unicode.encryptedData });
    }
  });

  it('se takes the plaintext as base64', () => {
    const r = cli(
      'se',
      Buffer.from(unicode.plaintext, 'utf8').toString('base64'),
      unicode.sender.nonce,
      unicode.requester.nonce,
      unicode.sender.privateKey,
      unicode.requester.publicKey,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ encryptedData: unicode.encryptedData });
  });

  it('d decrypts a vector', () => {
    const r = cli(
      'd',
      unicode.encryptedData,
      unicode.requester.nonce,
      unicode.sender.nonce,
      unicode.requester.privateKey,
      unicode.sender.x509PublicKey,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ decryptedData: unicode.plaintext });
  });

  it('bad input: one error line, exit 1 or 2, no stack trace', () => {
    const cases: Array<[string[], number]> = [
      [[], 2],
      [['nope'], 2],
      [['e', 'only', 'three'], 2],
      [['d', 'AAAA', unicode.requester.nonce, unicode.sender.nonce, unicode.requester.privateKey, 'BAAA'], 1],
      [
        [
          'd',
          unicode.encryptedData,
          unicode.requester.nonce,
          unicode.sender.nonce,
          unicode.sender.privateKey,
          unicode.sender.publicKey,
        ],
        1,
      ],
      [['e', 'x', unicode.sender.nonce, unicode.requester.nonce, unicode.sender.privateKey, 'garbage'], 1],
    ];
    for (const [args, status] of cases) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(status);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^fidelius: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
