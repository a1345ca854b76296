/**
 * Stage 1: the guard. Bounds size and nesting depth before anything recursive
 * sees the input, then parses. Pure.
 *
 * For uploaded documents (`guardDocument`), the same linear scan also finds
 * member names given twice in one object, and once JSON.parse has accepted the
 * text (malformed JSON stays a 400) such a document is refused with 422:
 * JSON.parse keeps the last of those members, other parsers the first, and the
 * store serves the uploaded text as it came, so the document would show
 * different content to different readers.
 */
import { FhirError, error, fail, shown, unprocessable } from './outcome.js';
import { type DuplicateMember, jsonPath, shape } from './json-text.js';

export interface GuardLimits { maxBytes: number; maxDepth: number; maxStringLength?: number }

/** Most duplicate member names one refusal lists. */
export const MAX_DUPLICATES_REPORTED = 20;

/** Bounds and parses any JSON body. */
export function guard(text: string, limits: GuardLimits): unknown {
  return guarded(text, limits, 0);
}

/** `guard` for an uploaded document: also refuses (422) any object that names a member twice. */
export function guardDocument(text: string, limits: GuardLimits): unknown {
  return guarded(text, limits, MAX_DUPLICATES_REPORTED);
}

function guarded(text: string, limits: GuardLimits, maxDuplicates: number): unknown {
  if (Buffer.byteLength(text, 'utf8') > limits.maxBytes) {
    throw fail(413, 'too-long', `Body exceeds the ${limits.maxBytes}-byte limit`);
  }
  if (text.trim() === '') throw fail(400, 'required', 'Empty body: expected a FHIR Bundle as JSON');
  const found = shape(text, limits.maxDepth, limits.maxStringLength ?? Infinity, maxDuplicates);
  if (found.depth > limits.maxDepth) {
    throw fail(400, 'too-costly', `JSON nesting deeper than the limit of ${limits.maxDepth} levels`);
  }
  if (limits.maxStringLength !== undefined && found.longestString > limits.maxStringLength) {
    throw fail(400, 'too-long', `A JSON string is longer than the limit of ${limits.maxStringLength} characters (MAX_STRING_LENGTH)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw fail(400, 'structure', `Body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (found.duplicates.length > 0) throw duplicateRefusal(found.duplicates, parsed);
  return parsed;
}

/**
 * 422, one `structure` issue per duplicate, each with the path of the member
 * from the resource type of the top-level object (`Bundle.entry[2].resource.identifier`).
 */
export function duplicateRefusal(duplicates: readonly DuplicateMember[], parsed: unknown): FhirError {
  const type = (parsed as { resourceType?: unknown } | null)?.resourceType;
  const root = typeof type === 'string' && /^[A-Z][A-Za-z]{0,63}$/.test(type) ? type : '$';
  // Keys are clipped so a refusal stays small whatever the keys are.
  const clip = (s: string | number) => (typeof s === 'string' && s.length > 64 ? s.slice(0, 61) + '...' : s);
  return unprocessable(duplicates.map((d) => {
    const at = jsonPath(root, d.parent.map(clip));
    return error('structure', `Member ${shown(d.key)} occurs more than once in the object at ${at}; JSON readers disagree on which one counts, so member names must be unique`, jsonPath(at, [clip(d.key)]));
  }));
}

export const isFhirError = (e: unknown): e is FhirError => e instanceof FhirError;
