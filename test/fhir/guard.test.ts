// Unit tests for stage 1 of the upload pipeline (src/fhir/guard.ts): size, emptiness and
// nesting depth are bounded before JSON.parse, and every refusal is a FhirError.
import { describe, it, expect } from 'vitest';
import { guard, isFhirError } from '../../src/fhir/guard.js';
import { FhirError } from '../../src/fhir/outcome.js';

const LIMITS = { maxBytes: 1024, maxDepth: 64 };

function refusal(text: string, limits = LIMITS): FhirError {
  try {
    guard(text, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error('guard accepted the input');
}

describe('guard', () => {
  it('parses an acceptable body', () => {
    expect(guard('{"resourceType":"Bundle","entry":[{"a":[1,2]}]}', LIMITS)).toEqual({
      resourceType: 'Bundle',
      entry: [{ a: [1, 2] }],
    });
    expect(guard('  [1, "x", null]  ', LIMITS)).toEqual([1, 'x', null]);
  });

  it('refuses a body over maxBytes with 413 too-long', () => {
    const e = refusal(`{"a":"${'x'.repeat(1100)}"}`);
    expect(e.status).toBe(413);
    expect(e.issues).toEqual([
      { severity: 'error', code: 'too-long', diagnostics: 'Body exceeds the 1024-byte limit' },
    ]);
    expect(isFhirError(e)).toBe(true);
  });

  it('measures the limit in UTF-8 bytes, not characters', () => {
    // 600 characters of "é" are 1,200 bytes.
    const text = `{"a":"${'é'.repeat(600)}"}`;
    expect(text.length).toBeLessThan(1024);
    expect(refusal(text).status).toBe(413);
    // Exactly at the limit is still accepted.
    const atLimit = `{"a":"${'x'.repeat(1024 - 8)}"}`;
    expect(Buffer.byteLength(atLimit)).toBe(1024);
    expect(guard(atLimit, LIMITS)).toEqual({ a: 'x'.repeat(1016) });
  });

  it('refuses an empty or all-whitespace body with 400', () => {
    for (const text of ['', '   ', '\n\t\r\n']) {
      const e = refusal(text);
      expect(e.status).toBe(400);
      expect(e.issues).toHaveLength(1);
      expect(e.issues[0].code).toBe('required');
      expect(e.issues[0].severity).toBe('error');
      expect(e.issues[0].diagnostics).toMatch(/^Empty body/);
    }
  });

  it('refuses 100,000-deep nesting with 400 too-costly before parsing', () => {
    const limits = { maxBytes: 10 * 1024 * 1024, maxDepth: 64 };
    for (const text of [
      '['.repeat(100_000) + ']'.repeat(100_000),
      '{"a":'.repeat(100_000) + '0' + '}'.repeat(100_000),
    ]) {
      const t0 = performance.now();
      const e = refusal(text, limits);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(e.status).toBe(400);
      expect(e.issues).toEqual([
        { severity: 'error', code: 'too-costly', diagnostics: 'JSON nesting deeper than the limit of 64 levels' },
      ]);
    }
  });

  it('accepts nesting exactly at the limit and refuses one level more', () => {
    const at = '['.repeat(64) + ']'.repeat(64);
    expect(() => guard(at, LIMITS)).not.toThrow();
    expect(refusal('['.repeat(65) + ']'.repeat(65)).issues[0].code).toBe('too-costly');
  });

  it('does not count brackets inside strings towards the depth', () => {
    const text = JSON.stringify({ div: '<div>' + '['.repeat(200) + '</div>' });
    expect(guard(text, LIMITS)).toEqual(JSON.parse(text));
  });

  it('refuses malformed JSON with 400 structure', () => {
    for (const text of ['{"a":1', '{a:1}', '{"a":1,}', 'not json', '{"a":"unterminated}']) {
      const e = refusal(text);
      expect(e.status).toBe(400);
      expect(e.issues).toHaveLength(1);
      expect(e.issues[0].code).toBe('structure');
      expect(e.issues[0].diagnostics).toMatch(/^Body is not valid JSON: /);
      expect(e.issues[0].diagnostics.length).toBeLessThanOrEqual('Body is not valid JSON: '.length + 200);
    }
  });

  it('isFhirError tells FhirErrors from other errors', () => {
    expect(isFhirError(new FhirError(400, []))).toBe(true);
    expect(isFhirError(new Error('x'))).toBe(false);
    expect(isFhirError({ status: 400, issues: [] })).toBe(false);
  });
});
