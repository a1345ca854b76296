/**
 * Stage 1: the guard. Bounds size and nesting depth before anything recursive
 * sees the input, then parses. Pure.
 */
import { FhirError, fail } from './outcome.js';
import { shape } from './json-text.js';

export interface GuardLimits { maxBytes: number; maxDepth: number; maxStringLength?: number }

export function guard(text: string, limits: GuardLimits): unknown {
  if (Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    throw fail(413, 'too-long', `Body exceeds the ${limits.maxBytes}-byte limit`);
  }
  if (text.trim() === '') throw fail(400, 'required', 'Empty body: expected a FHIR Bundle as JSON');
  const found = shape(text, limits.maxDepth, limits.maxStringLength ?? Infinity);
  if (found.depth > limits.maxDepth) {
    throw fail(400, 'too-costly', `JSON nesting deeper than the limit of ${limits.maxDepth} levels`);
  }
  if (limits.maxStringLength !== undefined && found.longestString > limits.maxStringLength) {
    throw fail(400, 'too-long', `A JSON string is longer than the limit of ${limits.maxStringLength} characters (MAX_STRING_LENGTH)`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw fail(400, 'structure', `Body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
}

export const isFhirError = (e: unknown): e is FhirError => e instanceof FhirError;
