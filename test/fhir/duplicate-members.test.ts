// Unit tests of the duplicate member-name scan (src/fhir/json-text.ts shape with maxDuplicates,
// duplicateMembers, jsonPath) and of the guard's refusal built on it (src/fhir/guard.ts
// guardDocument), including its place in DocumentValidator.validateText: after JSON.parse has
// accepted the text (malformed text stays a 400), before any structure validation.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { duplicateMembers, jsonPath, shape } from '../../src/fhir/json-text.js';
import { MAX_DUPLICATES_REPORTED, guard, guardDocument } from '../../src/fhir/guard.js';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { DEFAULT_ABHA_SYSTEMS } from '../../src/fhir/abha.js';
import { FhirError } from '../../src/fhir/outcome.js';
import { sharedStructure } from '../support/app.js';

const prescription = () => readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8');
/** The prescription example with a second `identifier` member spliced into its Patient (entry 1). */
const withTwoPatientIdentifiers = () => {
  const b = JSON.parse(prescription());
  expect(b.entry[1].resource.resourceType).toBe('Patient');
  const patient = JSON.stringify(b.entry[1].resource);
  const text = JSON.stringify(b);
  expect(text.split(patient)).toHaveLength(2);
  const other = JSON.stringify([
    {
      type: {
        coding: [
          { system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR', display: 'Medical record number' },
        ],
      },
      system: 'https://healthid.abdm.gov.in',
      value: '22-3333-4444-5555',
    },
  ]);
  return text.replace(patient, patient.replace('"identifier":', `"identifier":${other},"identifier":`));
};

const refusal = (f: () => unknown): FhirError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error('accepted');
};

describe('duplicateMembers', () => {
  it('finds nothing in text without repeated names', () => {
    for (const t of [
      '{}',
      '[]',
      '1',
      '"a"',
      'null',
      '{"a":1,"b":{"a":2},"c":[{"a":3}]}',
      readFileSync(new URL('../../fixtures/examples/discharge-summary.json', import.meta.url), 'utf8'),
    ]) {
      expect(duplicateMembers(t)).toEqual([]);
    }
  });

  it('finds a name repeated in the top-level object', () => {
    expect(duplicateMembers('{"a":1,"b":2,"a":3}')).toEqual([{ key: 'a', parent: [] }]);
  });

  it('finds names repeated in nested objects and in objects inside arrays, with the path to their object', () => {
    expect(duplicateMembers('{"x":{"y":{"k":1,"k":2}}}')).toEqual([{ key: 'k', parent: ['x', 'y'] }]);
    expect(
      duplicateMembers('{"entry":[{"r":1},{"r":2},{"resource":{"id":"1","identifier":[],"identifier":[]}}]}'),
    ).toEqual([{ key: 'identifier', parent: ['entry', 2, 'resource'] }]);
    expect(duplicateMembers('[[1,{"a":0}],[{},{"b":1,"b":2}]]')).toEqual([{ key: 'b', parent: [1, 1] }]);
  });

  it('gives the path through a duplicated member to a duplicate inside its value', () => {
    expect(duplicateMembers('{"a":1,"b":2,"a":{"x":1,"x":2}}')).toEqual([
      { key: 'a', parent: [] },
      { key: 'x', parent: ['a'] },
    ]);
  });

  it('keeps the path right after nested containers and values that are closed before the duplicate', () => {
    const t = '{"a":[{"q":[1,[2,3],{"r":{}}]},"s,{"],"b":{"c":1,"d":{"e":[]},"c":2}}';
    expect(duplicateMembers(t)).toEqual([{ key: 'c', parent: ['b'] }]);
  });

  it('does not count the same name in sibling objects, or a name that is also a string value', () => {
    expect(duplicateMembers('[{"a":1},{"a":2},{"a":{"a":{"a":3}}}]')).toEqual([]);
    expect(duplicateMembers('{"a":"a","b":["a","a"],"c":{"a":"b"}}')).toEqual([]);
  });

  it('compares decoded names: an escaped spelling of a name is the same name', () => {
    expect(duplicateMembers('{"a":1,"\\u0061":2}')).toEqual([{ key: 'a', parent: [] }]);
    expect(duplicateMembers('{"identifier":1,"ident\\u0069fier":2}')).toEqual([{ key: 'identifier', parent: [] }]);
    expect(duplicateMembers('{"a\\"b":1,"a\\u0022b":2}')).toEqual([{ key: 'a"b', parent: [] }]);
    expect(duplicateMembers('{"a\\\\":1,"a\\\\\\\\":2}')).toEqual([]); // a\ and a\\ differ
    expect(duplicateMembers('{"\\u00e9":1,"é":2}')).toEqual([{ key: 'é', parent: [] }]);
  });

  it('is not misled by strings holding braces, brackets, commas, colons, quotes and backslashes', () => {
    const t = '{"a":"}{,\\"a\\":1","b":"[\\\\","c\\\\":"\\"","d":{"e":"{\\"e\\":1,\\"e\\":2}"},"x":1,"x":2}';
    expect(JSON.parse(t)).toBeTruthy();
    expect(duplicateMembers(t)).toEqual([{ key: 'x', parent: [] }]);
  });

  it('reports each further occurrence, in text order, and stops at the limit', () => {
    expect(duplicateMembers('{"a":1,"a":2,"b":[{"c":1,"c":2}],"a":3}')).toEqual([
      { key: 'a', parent: [] },
      { key: 'c', parent: ['b', 0] },
      { key: 'a', parent: [] },
    ]);
    const many = '{' + Array.from({ length: 50 }, (_, i) => `"k${i}":1,"k${i}":2`).join(',') + '}';
    expect(duplicateMembers(many, 20)).toHaveLength(20);
    expect(duplicateMembers(many)).toHaveLength(20);
  });

  it('finds a repeat in an object with many members, before and after it switches to a Set', () => {
    const keys = Array.from({ length: 40 }, (_, i) => `"m${i}":${i}`);
    for (const at of [3, 20, 39]) {
      expect(duplicateMembers(`{${keys.join(',')},"m${at}":0,"z":1}`)).toEqual([{ key: `m${at}`, parent: [] }]);
      expect(duplicateMembers(`{"o":{${keys.join(',')},"m${at}":0}}`)).toEqual([{ key: `m${at}`, parent: ['o'] }]);
    }
    expect(duplicateMembers(`{${keys.join(',')},"x":{${keys.join(',')}},"y":[{${keys.join(',')}}]}`)).toEqual([]);
  });

  it('forgets nothing between calls: a scan starts clean after a deep or wide text', () => {
    duplicateMembers(
      '{"a":'.repeat(1000) +
        '{' +
        Array.from({ length: 100_000 }, (_, i) => `"k${i}":1`).join(',') +
        '}' +
        '}'.repeat(1000),
    );
    expect(duplicateMembers('{"b":[{"c":1},{"c":2,"d":{"c":3}}],"c":{"c":1,"c":2}}')).toEqual([
      { key: 'c', parent: ['c'] },
    ]);
  });

  it('handles names such as __proto__ and the empty name', () => {
    expect(duplicateMembers('{"__proto__":1,"__proto__":2,"":1,"":2}')).toEqual([
      { key: '__proto__', parent: [] },
      { key: '', parent: [] },
    ]);
  });

  it('does not recurse: 200,000 levels of nesting are scanned without exhausting the stack', () => {
    const deep = '{"a":'.repeat(200_000) + '{"k":1,"k":2}' + '}'.repeat(200_000);
    const found = duplicateMembers(deep);
    expect(found).toHaveLength(1);
    expect(found[0].parent).toHaveLength(200_000);
  });

  it('stays linear with many escaped strings and no escaped keys', () => {
    const values = Array.from({ length: 20_000 }, (_, i) => `"v${i}":"x\\ny"`).join(',');
    const t = `{${values}}`;
    const start = performance.now();
    expect(duplicateMembers(t)).toEqual([]);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe('duplicateMembers against a recursive reference', () => {
  // A JSON tree whose objects are lists of [name, value] pairs, so names can repeat.
  type Tree = null | number | string | Tree[] | { pairs: [string, Tree][] };
  const names = fc.constantFrom('a', 'b', 'ab', 'é', '"', '\\', '}', '{"a":1}', '', 'resourceType');
  const { tree } = fc.letrec<{ tree: Tree }>((t) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom(null, 1, 'a', '}{', '"a":', '\\'),
      fc.array(t('tree'), { maxLength: 4 }),
      fc.array(fc.tuple(names, t('tree')), { maxLength: 5 }).map((pairs) => ({ pairs })),
    ),
  }));
  /** Serialises, writing some names with \u escapes (chosen by `escape`). */
  const write = (x: Tree, escape: () => boolean): string => {
    if (Array.isArray(x)) return '[' + x.map((v) => write(v, escape)).join(',') + ']';
    if (x && typeof x === 'object') {
      return (
        '{' +
        x.pairs
          .map(([k, v]) => {
            const name = escape()
              ? '"' + [...k].map((ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0')).join('') + '"'
              : JSON.stringify(k);
            return name + ':' + write(v, escape);
          })
          .join(',') +
        '}'
      );
    }
    return JSON.stringify(x);
  };
  const reference = (x: Tree, path: (string | number)[], out: { key: string; parent: (string | number)[] }[]) => {
    if (Array.isArray(x)) x.forEach((v, i) => reference(v, [...path, i], out));
    else if (x && typeof x === 'object') {
      const seen = new Set<string>();
      for (const [k, v] of x.pairs) {
        if (seen.has(k)) out.push({ key: k, parent: path });
        else seen.add(k);
        reference(v, [...path, k], out);
      }
    }
    return out;
  };

  it('finds exactly the repeated names, in text order, with their paths', () => {
    fc.assert(
      fc.property(tree, fc.infiniteStream(fc.boolean()), (x, flips) => {
        const it = flips[Symbol.iterator]();
        const text = write(x, () => it.next().value as boolean);
        expect(() => JSON.parse(text)).not.toThrow();
        expect(duplicateMembers(text, 1000)).toEqual(reference(x, [], []));
      }),
      { numRuns: 500 },
    );
  });
});

describe('jsonPath', () => {
  it('writes plain names as .name, indexes as [i], other names as ["..."]', () => {
    expect(jsonPath('Bundle', ['entry', 2, 'resource', 'identifier'])).toBe('Bundle.entry[2].resource.identifier');
    expect(jsonPath('$', ['a b', 0, 'x.y', '"'])).toBe('$["a b"][0]["x.y"]["\\""]');
    expect(jsonPath('Bundle', [])).toBe('Bundle');
  });
});

describe('shape', () => {
  it('finds duplicates in the same pass as depth and string length, only when asked', () => {
    const t = '{"a":[{"b":"xyz","b":1}],"a":2}';
    expect(shape(t, 64, Infinity)).toEqual({ depth: 3, longestString: 3, duplicates: [] });
    expect(shape(t, 64, Infinity, 20)).toEqual({
      depth: 3,
      longestString: 3,
      duplicates: [
        { key: 'b', parent: ['a', 0] },
        { key: 'a', parent: [] },
      ],
    });
    // After the last duplicate it can report, it still measures depth and strings.
    expect(shape('{"a":1,"a":2,"b":[[["long string"]]]}', 64, Infinity, 1)).toEqual({
      depth: 4,
      longestString: 11,
      duplicates: [{ key: 'a', parent: [] }],
    });
  });

  it('does not throw on malformed text, escaped keys included (JSON.parse reports it)', () => {
    for (const t of ['{"\\x":1,"\\x":2}', '}}{"a', '{"a":1,"a', ']]"\\u12":{', '{"a":{"b":1}}},"a":1,"a":2']) {
      expect(() => shape(t, 64, Infinity, 20)).not.toThrow();
    }
  });
});

describe('guardDocument', () => {
  const LIMITS = { maxBytes: 1 << 20, maxDepth: 64 };

  it('refuses with 422 structure, naming the member, the expression at its path from the resource type', () => {
    const text = withTwoPatientIdentifiers();
    const e = refusal(() => guardDocument(text, LIMITS));
    expect(e.status).toBe(422);
    expect(e.issues).toEqual([
      {
        severity: 'error',
        code: 'structure',
        diagnostics: expect.stringContaining(
          "Member 'identifier' occurs more than once in the object at Bundle.entry[1].resource",
        ),
        expression: 'Bundle.entry[1].resource.identifier',
      },
    ]);
  });

  it('starts paths at $ when the top-level value has no resource type, and lists at most the limit', () => {
    const many = '{' + Array.from({ length: 30 }, (_, i) => `"k${i}":1,"k${i}":2`).join(',') + '}';
    const e = refusal(() => guardDocument(many, LIMITS));
    expect(e.issues).toHaveLength(MAX_DUPLICATES_REPORTED);
    expect(e.issues[0].expression).toBe('$.k0');
  });

  it('clips a long name in the answer', () => {
    const key = 'k'.repeat(5000);
    const text = `{"resourceType":"Bundle","${key}":1,"${key}":2}`;
    const e = refusal(() => guardDocument(text, LIMITS));
    expect(e.issues[0].expression!.length).toBeLessThan(100);
    expect(e.issues[0].diagnostics.length).toBeLessThan(300);
  });

  it('accepts text without duplicates, and parses it as guard does', () => {
    expect(guardDocument(prescription(), LIMITS)).toEqual(JSON.parse(prescription()));
  });

  it('answers malformed JSON with 400 even when it repeats a name, and keeps the depth limit', () => {
    for (const t of ['{"a":1,"a":2', '{"\\x":1,"\\x":2}']) {
      const e = refusal(() => guardDocument(t, LIMITS));
      expect([e.status, e.issues[0].diagnostics]).toEqual([400, expect.stringMatching(/^Body is not valid JSON/)]);
    }
    expect(refusal(() => guardDocument('{"a":1,"a":' + '['.repeat(70) + ']'.repeat(70) + '}', LIMITS)).status).toBe(
      400,
    );
  });

  it('is not applied by the plain guard other JSON bodies go through', () => {
    expect(guard('{"a":1,"a":2}', LIMITS)).toEqual({ a: 2 });
  });
});

describe('DocumentValidator.validateText and duplicate names', () => {
  const validator = new DocumentValidator(
    { maxBytes: 10 * 1024 * 1024, maxDepth: 64, abhaSystems: DEFAULT_ABHA_SYSTEMS },
    sharedStructure(),
  );

  it('refuses a valid prescription whose Patient has two identifier members, and reports only that', () => {
    const text = withTwoPatientIdentifiers();
    // JSON.parse alone sees a valid document (it keeps the last identifier member).
    expect(validator.validate(JSON.parse(text)).profile.hiType).toBe('Prescription');
    const e = refusal(() => validator.validateText(text));
    expect(e.status).toBe(422);
    expect(e.issues.map((i) => [i.code, i.expression])).toEqual([['structure', 'Bundle.entry[1].resource.identifier']]);
  });

  it('still answers malformed JSON with the guard 400', () => {
    const e = refusal(() => validator.validateText('{"a":1,"a":2'));
    expect(e.status).toBe(400);
    expect(e.issues[0].diagnostics).toMatch(/^Body is not valid JSON/);
  });
});
