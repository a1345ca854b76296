/**
 * Fuzzing the upload and the consent-manager routes over HTTP on the real
 * database: valid documents (the examples and generator output) mutated at
 * random, random JSON and random bytes. Whatever arrives, the answer is never
 * a 5xx, a refusal is an OperationOutcome and stores nothing, a success is
 * given only to a document the validator accepts, and no input reaches
 * Object.prototype.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, sharedStructure, uploadHeaders, type TestApp } from '../support/app.js';
import { FIXTURES, load } from '../support/fixtures.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, RECORD_KINDS } from '../../fixtures/generator.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { validatorOptions } from '../../src/config.js';
import { FhirError } from '../../src/fhir/outcome.js';

let t: TestApp;
let gw: StandInGateway;
let oracle: DocumentValidator;
const protoKeys = Object.getOwnPropertyNames(Object.prototype).sort();
const arrayProtoKeys = Object.getOwnPropertyNames(Array.prototype).sort();

/** Runs per property: small enough that the file stays well under a minute. FUZZ_RUNS scales them. */
const RUNS = (n: number) => Math.max(1, Math.round(n * Number(process.env.FUZZ_RUNS_FACTOR ?? 1)));
const fcOptions = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: RUNS(numRuns),
  // Shrinking a failure costs one request per step: bound it, the counterexample found so far is still reported.
  interruptAfterTimeLimit: 12_000,
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
});

beforeAll(async () => {
  gw = await startStandInGateway();
  // The rate limit is tested elsewhere; here every request must reach the handler.
  t = await createTestApp({
    GATEWAY_BASE_URL: gw.url,
    GATEWAY_CLIENT_ID: 'abha-vault',
    GATEWAY_CLIENT_SECRET: 's3cret',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  oracle = new DocumentValidator(validatorOptions(t.config), sharedStructure());
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

// ---------------------------------------------------------------------------------------------
// Valid starting points
// ---------------------------------------------------------------------------------------------

const g = createGenerator(20_240_917);
const bases: { name: string; doc: any }[] = [
  ...FIXTURES.map((name) => ({ name, doc: load(name) })),
  ...RECORD_KINDS.map((kind) => {
    const p = g.patient();
    return { name: `generated ${kind}`, doc: g.record(p, kind, { entries: 8 }).bundle as any };
  }),
];

// ---------------------------------------------------------------------------------------------
// Mutations of a parsed document
// ---------------------------------------------------------------------------------------------

type Path = (string | number)[];

/** Every path in `root` (the root itself is []). */
function paths(root: unknown): Path[] {
  const out: Path[] = [[]];
  const stack: [unknown, Path][] = [[root, []]];
  while (stack.length) {
    const [node, path] = stack.pop()!;
    if (Array.isArray(node))
      node.forEach((v, i) => {
        out.push([...path, i]);
        stack.push([v, [...path, i]]);
      });
    else if (node && typeof node === 'object')
      for (const k of Object.keys(node)) {
        out.push([...path, k]);
        stack.push([(node as any)[k], [...path, k]]);
      }
  }
  return out;
}
const getAt = (root: any, path: Path) => path.reduce((n, k) => n?.[k], root);
function setAt(root: any, path: Path, value: unknown): any {
  if (path.length === 0) return value;
  const parent = getAt(root, path.slice(0, -1));
  parent[path[path.length - 1]] = value;
  return root;
}

/**
 * Keys that mean something to a JavaScript object, written into the JSON text (JSON.stringify would drop __proto__).
 */
const DANGEROUS_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '__defineGetter__',
];
/** Strings that mean something to JavaScript or to the code under test. */
const ODD_STRINGS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'Bundle',
  'Composition',
  'Patient',
  '',
  ' ',
  'null',
  'NaN',
  '-0',
  '1e999',
];
const LONE_SURROGATES = ['\ud800', '\udfff', 'a\ud83d', '\ude00b'];
const ODD_UNICODE = [
  '\u200f',
  '\u202e',
  '\u202d',
  '\u0000',
  '\ufeff',
  '\u2028',
  '\u2029',
  '🩺',
  '👩🏽‍⚕️',
  'é',
  '\uffff',
  ...LONE_SURROGATES,
];

const anyPrimitive = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);
/** A value of one of the JSON types; `retype` picks the one it will use. */
const typedValue: Record<string, fc.Arbitrary<unknown>> = {
  string: fc.oneof(fc.string(), fc.constantFrom(...ODD_STRINGS)),
  number: fc.oneof(
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 2 ** 53 + 1),
  ),
  boolean: fc.boolean(),
  object: fc.oneof(
    fc.constant({}),
    fc.dictionary(fc.string({ maxLength: 8 }), anyPrimitive, { maxKeys: 3 }),
    // Ordinary JSON members that shadow Object.prototype methods.
    fc.constantFrom(
      { toString: 0 },
      { valueOf: 0, toString: 0 },
      { constructor: 'x' },
      { hasOwnProperty: null },
      { length: -1 },
    ),
  ),
  array: fc.oneof(fc.constant([]), fc.array(anyPrimitive, { maxLength: 3 })),
  null: fc.constant(null),
};
const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Members whose values the validator reads by name: mutations aim there half of the time. */
const FOCUS = new Set([
  'resourceType',
  'type',
  'code',
  'coding',
  'reference',
  'fullUrl',
  'system',
  'value',
  'text',
  'subject',
  'section',
  'entry',
  'identifier',
  'date',
  'timestamp',
  'meta',
  'profile',
]);

type Mutation =
  | { kind: 'drop'; at: number }
  | { kind: 'duplicate'; at: number; item: number }
  | { kind: 'retype'; at: number; to: string; value: unknown }
  | { kind: 'deepen'; at: number; levels: number; arrays: boolean }
  | { kind: 'huge'; at: number; char: string }
  | { kind: 'unicode'; at: number; where: number; insert: string }
  | { kind: 'nullInArray'; at: number; where: number }
  | { kind: 'dangerousKey'; at: number; key: string; value: unknown }
  | { kind: 'oddString'; at: number; value: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), item: fc.nat() }),
  fc
    .constantFrom(...Object.keys(typedValue))
    .chain((to) =>
      fc.record({ kind: fc.constant('retype' as const), at: fc.nat(), to: fc.constant(to), value: typedValue[to] }),
    ),
  fc.record({
    kind: fc.constant('deepen' as const),
    at: fc.nat(),
    levels: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(80)),
    arrays: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('huge' as const),
    at: fc.nat(),
    char: fc.constantFrom('a', 'é', '🩺', '\u0000', '"', '\\'),
  }),
  fc.record({
    kind: fc.constant('unicode' as const),
    at: fc.nat(),
    where: fc.nat(),
    insert: fc.constantFrom(...ODD_UNICODE),
  }),
  fc.record({ kind: fc.constant('nullInArray' as const), at: fc.nat(), where: fc.nat() }),
  fc.record({
    kind: fc.constant('dangerousKey' as const),
    at: fc.nat(),
    key: fc.constantFrom(...DANGEROUS_KEYS),
    value: fc.oneof(
      fc.constant({ polluted: 'yes' }),
      fc.constant(0),
      fc.constant(null),
      fc.constant('x'),
      fc.constant([{ polluted: 'yes' }]),
    ),
  }),
  fc.record({ kind: fc.constant('oddString' as const), at: fc.nat(), value: fc.constantFrom(...ODD_STRINGS) }),
);

const MARK = '\u0001dangerous-key-';

/** Applies the mutations to a copy of `doc` and returns the JSON text to send. */
function mutate(doc: unknown, mutations: Mutation[]): string {
  let root: any = structuredClone(doc);
  const pending: string[] = [];
  for (const m of mutations) {
    const all = paths(root);
    const pick = (pred: (v: unknown, p: Path) => boolean) => {
      const candidates = all.filter((p) => pred(getAt(root, p), p));
      const focused = candidates.filter(
        (p) => FOCUS.has(String(p[p.length - 1])) || FOCUS.has(String(p[p.length - 2])),
      );
      const from = m.at % 2 === 0 && focused.length ? focused : candidates;
      return from.length ? from[Math.floor(m.at / 2) % from.length] : undefined;
    };
    switch (m.kind) {
      case 'drop': {
        const p = pick((_v, p) => p.length > 0);
        if (!p) break;
        const parent = getAt(root, p.slice(0, -1));
        if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
        else delete parent[p[p.length - 1]];
        break;
      }
      case 'duplicate': {
        const p = pick((v) => Array.isArray(v) && v.length > 0);
        if (!p) break;
        const arr = getAt(root, p) as unknown[];
        const i = m.item % arr.length;
        arr.splice(i, 0, structuredClone(arr[i]));
        break;
      }
      case 'retype': {
        const p = pick((v) => typeOf(v) !== m.to);
        if (p) root = setAt(root, p, structuredClone(m.value));
        break;
      }
      case 'deepen': {
        const p = pick(() => true)!;
        let v = getAt(root, p);
        for (let i = 0; i < m.levels; i++) v = m.arrays ? [v] : { x: v };
        root = setAt(root, p, v);
        break;
      }
      case 'huge': {
        const p = pick((v) => typeof v === 'string');
        if (p) root = setAt(root, p, m.char.repeat(Math.ceil(100_000 / m.char.length)));
        break;
      }
      case 'unicode': {
        const p = pick((v) => typeof v === 'string');
        if (!p) break;
        const s = getAt(root, p) as string;
        const at = m.where % (s.length + 1);
        // JSON.stringify writes a lone surrogate as a \udXXX escape and NUL as \u0000 in the text.
        root = setAt(root, p, s.slice(0, at) + m.insert + s.slice(at));
        break;
      }
      case 'nullInArray': {
        const p = pick((v) => Array.isArray(v));
        if (!p) break;
        const arr = getAt(root, p) as unknown[];
        arr.splice(m.where % (arr.length + 1), 0, null);
        break;
      }
      case 'dangerousKey': {
        const p = pick((v) => !!v && typeof v === 'object' && !Array.isArray(v));
        if (!p) break;
        const marker = `${MARK}${pending.length}`;
        pending.push(m.key);
        getAt(root, p)[marker] = structuredClone(m.value);
        break;
      }
      case 'oddString': {
        const p = pick((v) => typeof v === 'string');
        if (p) root = setAt(root, p, m.value);
        break;
      }
    }
  }
  let text = JSON.stringify(root) ?? 'null';
  pending.forEach((key, i) => {
    text = text.replace(JSON.stringify(`${MARK}${i}`), JSON.stringify(key));
  });
  return text;
}

// ---------------------------------------------------------------------------------------------
// Checking one answer
// ---------------------------------------------------------------------------------------------

/** What the validator (the definition of a valid upload) says of `text`: a 2xx, or the 4xx it should be. */
function expected(text: string): { valid: true } | { valid: false; status?: number } {
  try {
    // As the server reads it: UTF-8 decoded, a leading byte order mark dropped.
    oracle.validateText(new TextDecoder().decode(Buffer.from(text, 'utf8')));
    return { valid: true };
  } catch (e) {
    // An exception other than FhirError is a validator crash: the document is still not acceptable.
    return { valid: false, status: e instanceof FhirError ? e.status : undefined };
  }
}

const countVersions = () => t.collections.versions.countDocuments({});
const countContents = () => t.collections.contents.countDocuments({});
/** Counts as of the last check (only this file's sequential uploads change them), so each check counts once. */
let known: { versions: number; contents: number } | undefined;
const counts = async () => {
  const [versions, contents] = await Promise.all([countVersions(), countContents()]);
  return { versions, contents };
};

async function expectOutcome(res: Response, context: string) {
  const text = await res.text();
  expect(res.headers.get('content-type') ?? '', context).toMatch(/^application\/fhir\+json/);
  let body: any;
  expect(() => {
    body = JSON.parse(text);
  }, `${context}: answer is JSON`).not.toThrow();
  expect(body?.resourceType, `${context}: ${text.slice(0, 300)}`).toBe('OperationOutcome');
  expect(Array.isArray(body.issue) && body.issue.length > 0, context).toBe(true);
  for (const i of body.issue) {
    expect(i.severity, context).toBeTruthy();
    expect(i.code, context).toBeTruthy();
  }
}

/** An upload outside checkUpload: forgets the counts checkUpload keeps. */
const upload = (body: string | Uint8Array, contentType = 'application/fhir+json') => {
  known = undefined;
  return send(body, contentType);
};
const send = (body: string | Uint8Array, contentType = 'application/fhir+json') =>
  t.request('/fhir/Bundle', {
    method: 'POST',
    body: body as BodyInit,
    headers: { ...uploadHeaders('OP-FUZZ'), 'Content-Type': contentType },
    as: ['hip', 'H-FUZZ'],
  });

/** Uploads `body` and checks every property of the answer against the validator's verdict. */
async function checkUpload(body: string | Uint8Array, label: string): Promise<void> {
  const text = typeof body === 'string' ? body : undefined;
  const verdict = text === undefined ? undefined : expected(text);
  const before = known ?? (await counts());
  const res = await send(body);
  const context = `${label} → ${res.status}: ${(text ?? '').slice(0, 200)}`;
  expect(res.status, context).toBeLessThan(500);
  if (res.status >= 400) {
    await expectOutcome(res, context);
    const after = (known = await counts());
    expect(after.versions, `${context}: a rejected body stores no version`).toBe(before.versions);
    expect(after.contents, `${context}: a rejected body stores no content`).toBe(before.contents);
    if (verdict)
      expect(verdict.valid, `${context}: the validator accepts this body, the upload refused it`).toBe(false);
    if (verdict && !verdict.valid && verdict.status !== undefined) expect(res.status, context).toBe(verdict.status);
  } else {
    expect([200, 201], context).toContain(res.status);
    expect(verdict?.valid, `${context}: stored a body the validator rejects`).toBe(true);
    const stored = await res.json();
    expect(stored.resourceType, context).toBe('Bundle');
    const after = (known = await counts());
    expect(after.versions - before.versions, context).toBe(res.status === 201 ? 1 : 0);
  }
}

function expectNoPollution() {
  expect(({} as any).polluted).toBeUndefined();
  expect(([] as any).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoKeys);
  expect(Object.getOwnPropertyNames(Array.prototype).sort()).toEqual(arrayProtoKeys);
  expect(Object.prototype.toString.call({})).toBe('[object Object]');
}

// ---------------------------------------------------------------------------------------------
// POST /fhir/Bundle
// ---------------------------------------------------------------------------------------------

describe('POST /fhir/Bundle under fuzzing (role hip)', () => {
  it('accepts every unmutated starting document (the fuzzing starts from valid input)', async () => {
    for (const { name, doc } of bases) {
      const res = await upload(JSON.stringify(doc));
      expect([200, 201], `${name}: ${await res.clone().text()}`).toContain(res.status);
    }
  });

  it('mutated valid documents: never 5xx; 4xx is an OperationOutcome and stores nothing; 2xx only when valid', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: bases.length - 1 }),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        async (b, ms) => {
          await checkUpload(mutate(bases[b].doc, ms), `${bases[b].name} ${JSON.stringify(ms).slice(0, 300)}`);
        },
      ),
      fcOptions(100),
    );
    expectNoPollution();
  }, 60_000);

  it('one targeted mutation of each kind at every kind of place (deterministic sweep)', async () => {
    // A fixed sample: each mutation kind at evenly spread paths of the prescription example.
    const doc = bases[0].doc;
    const n = paths(doc).length;
    const kinds: Mutation[] = [];
    for (let at = 1; at < n; at += Math.ceil(n / 5)) {
      kinds.push(
        { kind: 'drop', at },
        { kind: 'retype', at, to: 'object', value: {} },
        { kind: 'retype', at, to: 'array', value: [] },
        { kind: 'retype', at, to: 'null', value: null },
        { kind: 'unicode', at, where: 3, insert: '\ud800' },
        { kind: 'dangerousKey', at, key: '__proto__', value: { polluted: 'yes' } },
        { kind: 'oddString', at, value: 'constructor' },
      );
    }
    for (const m of kinds) await checkUpload(mutate(doc, [m]), JSON.stringify(m));
    expectNoPollution();
  }, 60_000);

  it('random JSON values: never 5xx, always an OperationOutcome, nothing stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
        ),
        async (text) => {
          await checkUpload(text, 'random JSON');
        },
      ),
      fcOptions(40),
    );
    expectNoPollution();
  }, 60_000);

  it('random JSON objects that look like a Bundle: never 5xx, nothing stored', async () => {
    const bundleish = fc.record(
      {
        resourceType: fc.oneof(fc.constant('Bundle'), fc.jsonValue()),
        type: fc.oneof(fc.constant('document'), fc.jsonValue()),
        identifier: fc.oneof(fc.constant({ system: 'urn:ietf:rfc:3986', value: 'urn:uuid:0' }), fc.jsonValue()),
        timestamp: fc.oneof(fc.constant('2024-01-01T00:00:00+05:30'), fc.jsonValue()),
        entry: fc.oneof(
          fc.array(
            fc.record({
              fullUrl: fc.oneof(fc.constant(`urn:uuid:${uuidv4()}`), fc.jsonValue()),
              resource: fc.jsonValue(),
            }),
            { maxLength: 4 },
          ),
          fc.jsonValue(),
        ),
      },
      { requiredKeys: ['resourceType'] },
    );
    await fc.assert(
      fc.asyncProperty(bundleish, async (b) => {
        await checkUpload(JSON.stringify(b), 'bundle-ish');
      }),
      fcOptions(30),
    );
    expectNoPollution();
  }, 60_000);

  it('random bytes and random text: never 5xx, always an OperationOutcome, nothing stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }),
          fc.string({ unit: 'binary', maxLength: 256 }),
          fc.constantFrom(
            '',
            ' ',
            '{',
            '[',
            '"',
            '{"resourceType":"Bundle"',
            '\ufeff{}',
            '\u0000',
            'null',
            'true',
            '1e999',
            '{"a":1}{"b":2}',
            '[[[[[[[[',
            '{"__proto__":{"polluted":"yes"}}',
          ),
        ),
        async (body) => {
          await checkUpload(
            body,
            typeof body === 'string'
              ? 'random text'
              : `random bytes ${Buffer.from(body).toString('hex').slice(0, 120)}`,
          );
        },
      ),
      fcOptions(40),
    );
    expectNoPollution();
  }, 60_000);

  it('the same bodies under other media types are 415, never stored', async () => {
    const before = await countVersions();
    for (const type of [
      'text/plain',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      '',
    ]) {
      const res = await upload(JSON.stringify(bases[0].doc), type);
      expect(res.status, type).toBe(415);
      await expectOutcome(res, type);
    }
    expect(await countVersions()).toBe(before);
  });
});

/**
 * Regressions found by the fuzzer: each minimal input made the validator throw
 * a TypeError (answered 500). Each must be a 422 OperationOutcome that stores nothing.
 */
describe('upload regressions: validator crashes on hostile values (minimal inputs)', () => {
  const withEntry = (resourceType: string) => (b: any) => {
    const id = '11111111-1111-4111-8111-111111111111';
    b.entry.push({ fullUrl: `urn:uuid:${id}`, resource: { resourceType, id } });
  };
  const cases: [string, (b: any) => void | string][] = [
    [
      'Bundle.resourceType is {"toString":0} (String(resourceType) throws)',
      (b) => {
        b.resourceType = { toString: 0 };
      },
    ],
    [
      'Bundle.type is {"toString":0} (template literal throws)',
      (b) => {
        b.type = { toString: 0 };
      },
    ],
    [
      'an entry resource with resourceType "constructor" (profile.resources lookup hits Object.prototype)',
      withEntry('constructor'),
    ],
    ['an entry resource with resourceType "__proto__"', withEntry('__proto__')],
    ['an entry resource with resourceType "toString"', withEntry('toString')],
    [
      'Composition.resourceType is {"toString":0}',
      (b) => {
        b.entry[0].resource.resourceType = { toString: 0 };
      },
    ],
    [
      'Composition.type is {"text":{"toString":0}} (String(text) throws)',
      (b) => {
        b.entry[0].resource.type = { text: { toString: 0 } };
      },
    ],
    [
      'a section entry Reference.type is {"toString":0}',
      (b) => {
        b.entry[0].resource.section[0].entry[0].type = { toString: 0 };
      },
    ],
    [
      'a section code is {"toString":0} (join throws)',
      (b) => {
        b.entry[0].resource.section[0].code.coding[0].code = { toString: 0 };
      },
    ],
  ];
  it.each(cases)('%s → 422, nothing stored', async (_name, change) => {
    const b = load('prescription');
    change(b);
    const before = await countVersions();
    const res = await upload(JSON.stringify(b));
    expect(res.status, await res.clone().text()).toBe(422);
    await expectOutcome(res, _name);
    expect(await countVersions()).toBe(before);
  });

  it('a bare {"resourceType":{"toString":0}} → 422', async () => {
    const res = await upload('{"resourceType":{"toString":0}}');
    expect(res.status).toBe(422);
    await expectOutcome(res, 'bare');
  });

  it('__proto__ / constructor keys in the text are rejected as unknown elements, not obeyed', async () => {
    const text = JSON.stringify(load('prescription')).replace(
      '{"resourceType":"Bundle"',
      '{"resourceType":"Bundle","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}',
    );
    const res = await upload(text);
    expect(res.status).toBe(422);
    const body = await res.json();
    expect(JSON.stringify(body)).toMatch(/__proto__/);
    expectNoPollution();
  });
});

// ---------------------------------------------------------------------------------------------
// Consent-manager routes
// ---------------------------------------------------------------------------------------------

const FAR = '2099-01-01T00:00:00.000Z';
const validNotify = (consentId = uuidv4()) => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  notification: {
    consentId,
    status: 'GRANTED',
    consentDetail: {
      schemaVersion: 'v0.5',
      consentId,
      createdAt: '2024-01-01T10:00:00.000Z',
      patient: { id: 'fuzz.patient@sbx' },
      careContexts: [{ patientReference: 'P1', careContextReference: 'CC-1' }],
      purpose: { text: 'Care Management', code: 'CAREMGT' },
      hip: { id: 'H-FUZZ' },
      hiu: { id: 'HIU-FUZZ' },
      consentManager: { id: 'sbx' },
      hiTypes: ['Prescription'],
      permission: {
        accessMode: 'VIEW',
        dateRange: { from: '2020-01-01T00:00:00.000Z', to: '2030-12-31T23:59:59.000Z' },
        dataEraseAt: FAR,
        frequency: { unit: 'HOUR', value: 10, repeats: 0 },
      },
    },
  },
});
const validHiRequest = () => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  transactionId: uuidv4(),
  hiRequest: {
    consent: { id: uuidv4() },
    dateRange: { from: '2020-01-01T00:00:00.000Z', to: '2030-01-01T00:00:00.000Z' },
    dataPushUrl: 'http://127.0.0.1:9/push',
    keyMaterial: {
      cryptoAlg: 'ECDH',
      curve: 'Curve25519',
      dhPublicKey: {
        expiry: FAR,
        parameters: 'Curve25519/32byte random key',
        keyValue: Buffer.alloc(32, 9).toString('base64'),
      },
      nonce: Buffer.alloc(32, 1).toString('base64'),
    },
  },
});
const validDiscover = () => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  transactionId: uuidv4(),
  patient: {
    id: 'fuzz.patient@sbx',
    verifiedIdentifiers: [{ type: 'NDHM_HEALTH_NUMBER', value: '91-1111-2222-3333' }],
    name: 'F',
    gender: 'F',
    yearOfBirth: 1990,
  },
});
const validLinkInit = () => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  transactionId: uuidv4(),
  patient: {
    id: 'fuzz.patient@sbx',
    referenceNumber: 'fuzz.patient@sbx',
    careContexts: [{ referenceNumber: 'OP-FUZZ' }],
  },
});
const validLinkConfirm = () => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  confirmation: { linkRefNumber: uuidv4(), token: '123456' },
});

const CM_ROUTES: { path: string; valid: () => unknown }[] = [
  { path: '/v0.5/consents/hip/notify', valid: validNotify },
  { path: '/api/v3/consent/request/hip/notify', valid: () => ({ notification: validNotify().notification }) },
  { path: '/v0.5/health-information/hip/request', valid: validHiRequest },
  { path: '/v0.5/care-contexts/discover', valid: validDiscover },
  { path: '/v0.5/links/link/init', valid: validLinkInit },
  { path: '/v0.5/links/link/confirm', valid: validLinkConfirm },
];

const cm = (path: string, body: string | Uint8Array) =>
  t.request(path, {
    method: 'POST',
    body: body as BodyInit,
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': 'H-FUZZ' },
    as: ['cm', 'sbx'],
  });

async function checkCm(path: string, body: string | Uint8Array, label: string) {
  const res = await cm(path, body);
  const context = `${path} ${label} → ${res.status}: ${typeof body === 'string' ? body.slice(0, 300) : ''}`;
  expect(res.status, context).toBeLessThan(500);
  if (res.status >= 400) await expectOutcome(res, context);
  else expect(res.status, context).toBe(202);
}

describe('consent-manager routes under fuzzing (role cm)', () => {
  it('every valid starting body is accepted (202)', async () => {
    for (const r of CM_ROUTES) {
      const res = await cm(r.path, JSON.stringify(r.valid()));
      expect(res.status, `${r.path}: ${await res.clone().text()}`).toBe(202);
    }
  });

  it.each(CM_ROUTES.map((r) => [r.path, r] as const))(
    '%s: random JSON and bytes never give a 5xx',
    async (_p, r) => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null'),
            fc.json(),
            fc.uint8Array({ maxLength: 128 }),
          ),
          async (body) => {
            await checkCm(r.path, body, 'random');
          },
        ),
        fcOptions(15),
      );
      expectNoPollution();
    },
    60_000,
  );

  it.each(CM_ROUTES.map((r) => [r.path, r] as const))(
    '%s: mutated valid bodies never give a 5xx',
    async (_p, r) => {
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (ms) => {
          await checkCm(r.path, mutate(r.valid(), ms), JSON.stringify(ms).slice(0, 300));
        }),
        fcOptions(15),
      );
      expectNoPollution();
    },
    60_000,
  );

  it('a consent notification with __proto__ / constructor keys neither pollutes nor fails', async () => {
    const n = validNotify();
    const text = JSON.stringify(n)
      .replace(
        '"schemaVersion"',
        '"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"schemaVersion"',
      )
      .replace('"notification"', '"__proto__":{"polluted":"yes"},"notification"');
    const res = await cm('/v0.5/consents/hip/notify', text);
    expect(res.status, await res.clone().text()).toBeLessThan(500);
    expectNoPollution();
    if (res.status === 202) {
      const stored = await t.consents.get(n.notification.consentId);
      expect(stored?.status).toBe('GRANTED');
      expect((stored?.terms as any)?.polluted).toBeUndefined();
    }
  });
});

afterAll(() => {
  expectNoPollution();
});
