// Unit tests for the linear JSON-text scanners in src/fhir/json-text.ts: the nesting-depth
// guard (no recursion, strings ignored) and the top-level member spans used to return a
// stored bundle byte for byte and to compare uploads by content.
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  nestingDepth,
  topLevelMembers,
  withTopLevelMembers,
  topLevelValue,
  canonicalContent,
} from '../../src/fhir/json-text.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const example = (name: string) => readFileSync(path.join(repoRoot, 'fixtures', 'examples', `${name}.json`), 'utf8');
const ID_META = new Set(['id', 'meta']);

describe('nestingDepth', () => {
  it('counts objects and arrays', () => {
    expect(nestingDepth('1', 10)).toBe(0);
    expect(nestingDepth('"x"', 10)).toBe(0);
    expect(nestingDepth('{}', 10)).toBe(1);
    expect(nestingDepth('[]', 10)).toBe(1);
    expect(nestingDepth('{"a":[{"b":[1]}]}', 10)).toBe(4);
    expect(nestingDepth('[[1],[[2]],[3]]', 10)).toBe(3);
    expect(nestingDepth('{"a":{"b":{}},"c":{}}', 10)).toBe(3);
  });

  it('stops as soon as the limit is exceeded', () => {
    expect(nestingDepth('[[[[[[]]]]]]', 3)).toBe(4);
    expect(nestingDepth('[[[]]]', 3)).toBe(3);
  });

  it('returns quickly for 100,000-deep arrays and objects, without a stack overflow', () => {
    const arrays = '['.repeat(100_000) + ']'.repeat(100_000);
    const objects = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    const t0 = performance.now();
    expect(nestingDepth(arrays, 64)).toBe(65);
    expect(nestingDepth(objects, 64)).toBe(65);
    // With no effective limit the full depth is reported, still without recursion.
    expect(nestingDepth(arrays, Infinity)).toBe(100_000);
    expect(nestingDepth(objects, 1_000_000)).toBe(100_000);
    // Unterminated (malformed) deep text too.
    expect(nestingDepth('['.repeat(100_000), 64)).toBe(65);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('ignores brackets inside strings', () => {
    expect(nestingDepth('{"a":"[[[[{{{{"}', 2)).toBe(1);
    expect(nestingDepth('{"[[[[":"]]]]}}}}","b":[1]}', 5)).toBe(2);
    const deepInString = JSON.stringify({ text: '['.repeat(10_000) });
    expect(nestingDepth(deepInString, 64)).toBe(1);
  });

  it('ignores escaped quotes inside strings', () => {
    // "x\"[[[" is one string: the escaped quote does not end it.
    expect(nestingDepth('{"a":"x\\"[[[[","b":1}', 3)).toBe(1);
    // An even run of backslashes does end the string: "\\" then a real array.
    expect(nestingDepth('{"a":"\\\\","b":[[1]]}', 10)).toBe(3);
    // Three backslashes + quote: escaped backslash, then escaped quote; string continues.
    expect(nestingDepth('{"a":"\\\\\\"[[[[[","b":[1]}', 10)).toBe(2);
  });
});

describe('topLevelMembers', () => {
  it('gives each member span from the key quote to the last value character', () => {
    const text = ' { "a" : 1.50 ,\n  "b" : { "x" : [1, 2] } , "c":"}", "d" : null\n}  ';
    const spans = topLevelMembers(text);
    expect(spans.map((s) => s.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(spans.map((s) => text.slice(s.start, s.end))).toEqual([
      '"a" : 1.50',
      '"b" : { "x" : [1, 2] }',
      '"c":"}"',
      '"d" : null',
    ]);
  });

  it('decodes keys with escaped quotes and unicode escapes', () => {
    const text = '{"a\\"b":1,"\\u0069d":"x","c\\\\":[2]}';
    const spans = topLevelMembers(text);
    expect(spans.map((s) => s.key)).toEqual(['a"b', 'id', 'c\\']);
    expect(text.slice(spans[0].start, spans[0].end)).toBe('"a\\"b":1');
    expect(text.slice(spans[2].start, spans[2].end)).toBe('"c\\\\":[2]');
  });

  it('handles an empty object and nested commas', () => {
    expect(topLevelMembers('{}')).toEqual([]);
    expect(topLevelMembers('  {  }  ')).toEqual([]);
    const text = '{"a":[1,{"b":2,"c":3}],"d":{"e":[4,5]}}';
    expect(topLevelMembers(text).map((s) => [s.key, text.slice(s.start, s.end)])).toEqual([
      ['a', '"a":[1,{"b":2,"c":3}]'],
      ['d', '"d":{"e":[4,5]}'],
    ]);
  });

  it('lists the top-level members of a fixture in order', () => {
    const text = example('diagnostic-report');
    expect(topLevelMembers(text).map((s) => s.key)).toEqual(Object.keys(JSON.parse(text)));
  });
});

describe('topLevelValue', () => {
  it('returns the raw value text, decimals and inner whitespace preserved', () => {
    const text = '{"id" : "abc" , "n":  1.50 ,"o":{ "v" : 4.20,\n "w": [ 6.0 ] },"e\\"k":true}';
    expect(topLevelValue(text, 'id')).toBe('"abc"');
    expect(topLevelValue(text, 'n')).toBe('1.50');
    expect(topLevelValue(text, 'o')).toBe('{ "v" : 4.20,\n "w": [ 6.0 ] }');
    expect(topLevelValue(text, 'e"k')).toBe('true');
    expect(topLevelValue(text, 'missing')).toBeUndefined();
    // Only top-level members count.
    expect(topLevelValue(text, 'v')).toBeUndefined();
  });

  it('finds the colon after a key that itself contains a colon', () => {
    expect(topLevelValue('{"a:b" : [1]}', 'a:b')).toBe('[1]');
  });

  it('returns the entry array of a fixture byte for byte', () => {
    const text = example('diagnostic-report');
    const entry = topLevelValue(text, 'entry')!;
    expect(entry.startsWith('[')).toBe(true);
    expect(text.includes(entry)).toBe(true);
    expect(entry).toContain('"value": 1.50,');
    expect(entry).toContain('"value": 6.0,');
    expect(JSON.parse(entry)).toEqual(JSON.parse(text).entry);
  });
});

describe('withTopLevelMembers', () => {
  it('writes replaced members first and keeps every other member byte for byte', () => {
    const text = '{ "resourceType": "Bundle",\n  "id": "old", "v" : 1.50 , "meta": {"versionId":"1"}, "s": " a  b " }';
    const out = withTopLevelMembers(text, { id: '"new"', meta: '{"versionId":"2"}' });
    expect(out).toBe('{"id":"new","meta":{"versionId":"2"},"resourceType": "Bundle","v" : 1.50,"s": " a  b "}');
    expect(JSON.parse(out)).toEqual({
      id: 'new',
      meta: { versionId: '2' },
      resourceType: 'Bundle',
      v: 1.5,
      s: ' a  b ',
    });
  });

  it('adds members that were absent', () => {
    expect(withTopLevelMembers('{"a":1}', { id: '"x"' })).toBe('{"id":"x","a":1}');
    expect(withTopLevelMembers('{}', { id: '"x"' })).toBe('{"id":"x"}');
  });

  it('keeps keys with escaped quotes', () => {
    expect(withTopLevelMembers('{"k\\"q" : 2.50,"id":"a"}', { id: '"b"' })).toBe('{"id":"b","k\\"q" : 2.50}');
  });

  it('keeps the trailing-zero decimals of a fixture unchanged', () => {
    const text = example('diagnostic-report');
    const out = withTopLevelMembers(text, {
      id: '"stored-1"',
      meta: '{"versionId":"7","lastUpdated":"2024-05-06T09:00:00Z"}',
    });
    expect(out.startsWith('{"id":"stored-1","meta":{"versionId":"7","lastUpdated":"2024-05-06T09:00:00Z"},')).toBe(
      true,
    );
    for (const literal of ['"value": 1.50,', '"value": 4.20,', '"value": 6.0,', '"value": 0.70', '"value": 3.50']) {
      expect(out).toContain(literal);
    }
    expect(topLevelValue(out, 'entry')).toBe(topLevelValue(text, 'entry'));
    const parsed = JSON.parse(out);
    const original = JSON.parse(text);
    expect(parsed.id).toBe('stored-1');
    expect(parsed.meta).toEqual({ versionId: '7', lastUpdated: '2024-05-06T09:00:00Z' });
    expect({ ...parsed, id: original.id, meta: original.meta }).toEqual(original);
  });
});

describe('canonicalContent', () => {
  it('ignores whitespace outside strings', () => {
    const obj = { resourceType: 'Bundle', type: 'document', entry: [{ a: 1, b: [true, null, 'x'] }] };
    const compact = JSON.stringify(obj);
    const pretty = JSON.stringify(obj, null, 2);
    const tabbed = JSON.stringify(obj, null, '\t').replace(/\n/g, '\r\n');
    expect(canonicalContent(pretty, ID_META)).toBe(canonicalContent(compact, ID_META));
    expect(canonicalContent(tabbed, ID_META)).toBe(compact);
  });

  it('excludes the named top-level members only', () => {
    const a = '{"resourceType":"Bundle","id":"1","meta":{"versionId":"1"},"x":{"id":"inner","meta":1}}';
    const b = '{ "meta": {"versionId":"9"}, "resourceType":"Bundle", "id": "2", "x":{"id":"inner","meta":1}}';
    expect(canonicalContent(a, ID_META)).toBe('{"resourceType":"Bundle","x":{"id":"inner","meta":1}}');
    expect(canonicalContent(b, ID_META)).toBe(canonicalContent(a, ID_META));
    // Nested id/meta are content.
    const c = '{"resourceType":"Bundle","id":"1","x":{"id":"other","meta":1}}';
    expect(canonicalContent(c, ID_META)).not.toBe(canonicalContent(a, ID_META));
    // Without exclusions the id counts.
    expect(canonicalContent(a, new Set())).not.toBe(canonicalContent(b, new Set()));
  });

  it('keeps whitespace inside strings (including after escaped quotes)', () => {
    expect(canonicalContent('{"a" : "x  y"}', ID_META)).toBe('{"a":"x  y"}');
    expect(canonicalContent('{"a":"x y"}', ID_META)).not.toBe(canonicalContent('{"a":"xy"}', ID_META));
    expect(canonicalContent('{ "a" : "q\\" r" , "b" : 1 }', ID_META)).toBe('{"a":"q\\" r","b":1}');
  });

  it('treats 1.50 and 1.5 as different content', () => {
    expect(canonicalContent('{"v":1.50}', ID_META)).toBe('{"v":1.50}');
    expect(canonicalContent('{"v":1.50}', ID_META)).not.toBe(canonicalContent('{"v":1.5}', ID_META));
  });

  it('gives a fixture and its re-indented copy the same content, but not its re-serialised copy', () => {
    const text = example('diagnostic-report');
    const reindented = text.replace(/\n\s*/g, '\n');
    expect(canonicalContent(reindented, ID_META)).toBe(canonicalContent(text, ID_META));
    const restored = withTopLevelMembers(text, { id: '"other"', meta: '{"versionId":"3"}' });
    expect(canonicalContent(restored, ID_META)).toBe(canonicalContent(text, ID_META));
    // JSON.stringify drops the trailing zeros (1.50 -> 1.5): different bytes, different content.
    const reserialised = JSON.stringify(JSON.parse(text));
    expect(canonicalContent(reserialised, ID_META)).not.toBe(canonicalContent(text, ID_META));
  });
});
