/**
 * If-None-Match per RFC 9110 (src/http/conditional.ts): `*`, lists, weak
 * comparison, whitespace, and malformed elements that never match.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { entityTags, ifNoneMatchHits, parseEntityTag } from '../../src/http/conditional.js';

describe('ifNoneMatchHits', () => {
  it('matches the one exact weak tag, as before', () => {
    expect(ifNoneMatchHits('W/"3"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('W/"2"', 'W/"3"')).toBe(false);
  });

  it('compares weakly: W/"3" and "3" match either form of the current tag', () => {
    expect(ifNoneMatchHits('"3"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('W/"3"', '"3"')).toBe(true);
    expect(ifNoneMatchHits('"3"', '"3"')).toBe(true);
    expect(ifNoneMatchHits('"33"', 'W/"3"')).toBe(false);
    expect(ifNoneMatchHits('""', 'W/""')).toBe(true); // the empty opaque tag is a tag
  });

  it('* matches any current representation', () => {
    expect(ifNoneMatchHits('*', 'W/"1"')).toBe(true);
    expect(ifNoneMatchHits('  *  ', 'W/"7"')).toBe(true);
  });

  it('a * inside a list is not the wildcard (the grammar is "*" or a list), and never matches', () => {
    expect(ifNoneMatchHits('"1", *', 'W/"3"')).toBe(false);
    expect(ifNoneMatchHits('*, "3"', 'W/"3"')).toBe(true); // the well-formed element still counts
    expect(ifNoneMatchHits('**', 'W/"3"')).toBe(false);
  });

  it('matches any element of a comma-separated list', () => {
    expect(ifNoneMatchHits('"1", W/"2", "3"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('W/"3", "4"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('"1", "2"', 'W/"3"')).toBe(false);
  });

  it('tolerates spaces, tabs and empty elements around the tags', () => {
    expect(ifNoneMatchHits('  W/"3"  ', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('"1" ,\tW/"3"\t, "4"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits(',, "1",,W/"3",', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits(' W/"3" ', ' W/"3" ')).toBe(true);
  });

  it('a comma inside the quotes belongs to the tag', () => {
    expect(ifNoneMatchHits('"a,b"', '"a,b"')).toBe(true);
    expect(ifNoneMatchHits('"a,b"', '"a"')).toBe(false);
    expect(ifNoneMatchHits('"a,b"', '"b"')).toBe(false);
  });

  it('malformed elements never match, and do not hide the well-formed ones after them', () => {
    for (const bad of [
      '3',
      'W/3',
      'w/"3"',
      'W/ "3"',
      'W"3"',
      '"3',
      '3"',
      '"3" x',
      '"3"x',
      '"3 "',
      '"\u00013"',
      "'3'",
      'W/"3"W/"3"',
      '"3""3"',
      '"\u01003"',
    ]) {
      expect(ifNoneMatchHits(bad, '"3"'), bad).toBe(false);
      expect(ifNoneMatchHits(bad, 'W/"3"'), bad).toBe(false);
    }
    expect(ifNoneMatchHits('3, "3"', 'W/"3"')).toBe(true);
    expect(ifNoneMatchHits('W/"1" junk, W/"3"', 'W/"3"')).toBe(true);
    // A broken quote swallows the rest: nothing after it is trusted.
    expect(ifNoneMatchHits('"x y,"3"', 'W/"3"')).toBe(false);
    expect(ifNoneMatchHits('"abc, "3"', 'W/"3"')).toBe(false);
  });

  it('accepts obs-text (bytes 0x80-0xFF) and the other etagc characters inside a tag', () => {
    expect(ifNoneMatchHits('"\u00e9!#~"', '"\u00e9!#~"')).toBe(true);
  });

  it('an absent, empty or blank header matches nothing', () => {
    for (const h of [undefined, '', '   ', ',', ' , ,']) expect(ifNoneMatchHits(h, 'W/"3"')).toBe(false);
  });

  it('nothing matches a malformed current tag', () => {
    expect(ifNoneMatchHits('"3"', '3')).toBe(false);
    expect(ifNoneMatchHits('3', '3')).toBe(false);
    expect(ifNoneMatchHits('*', '3')).toBe(true); // * asks only whether a representation exists
  });

  it('property: a list of well-formed tags hits exactly when one has the current opaque tag', () => {
    const opaque = fc.stringMatching(/^[!#-~]{0,6}$/);
    const tag = fc.record({ weak: fc.boolean(), opaque });
    const ows = fc.constantFrom('', ' ', '  ', '\t');
    fc.assert(
      fc.property(fc.array(fc.tuple(tag, ows, ows), { minLength: 1, maxLength: 6 }), tag, (list, current) => {
        const header = list.map(([t, a, b]) => `${a}${t.weak ? 'W/' : ''}"${t.opaque}"${b}`).join(',');
        const etag = `${current.weak ? 'W/' : ''}"${current.opaque}"`;
        expect(ifNoneMatchHits(header, etag)).toBe(list.some(([t]) => t.opaque === current.opaque));
        expect(entityTags(header)).toEqual(list.map(([t]) => t));
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseEntityTag', () => {
  it('reads weak and strong tags, and refuses anything else', () => {
    expect(parseEntityTag('W/"3"')).toEqual({ weak: true, opaque: '3' });
    expect(parseEntityTag('"3"')).toEqual({ weak: false, opaque: '3' });
    expect(parseEntityTag(' "3" ')).toEqual({ weak: false, opaque: '3' });
    for (const bad of ['3', 'W/', '"', 'W/"3', '"3" "4"', '"a b"']) expect(parseEntityTag(bad), bad).toBeUndefined();
  });
});
