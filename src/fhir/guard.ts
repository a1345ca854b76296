/**
 * Stage 1: the guard. The one stage every request body passes before anything
 * reads it, and the one home of every body limit; each is checked once:
 *
 *   media type (415)
 *   → size, counted while the body streams in (413)
 *   → the body arrived whole (400: it ended before Content-Length, or the client closed the connection)
 *   → strict UTF-8 (400)
 *   → not empty (400, naming what the route expects)
 *   → nesting depth and string length, in one linear scan before JSON.parse (400)
 *   → JSON.parse (400)
 *   → for an uploaded document: member names unique (422), then the entry count (422).
 *
 * Pure: no HTTP framework. `src/http/body.ts` hands it a request's media type
 * and byte stream (`checkMediaType`, `readBody`, `decodeUtf8`), then the text
 * (`parseBody`); `DocumentValidator.validateText` runs `parseBody` for an upload.
 * `guard` and `guardDocument` are the same stage for a text already in memory,
 * which no stream has measured: they check its size, then `parseBody`.
 *
 * Duplicate member names: the same linear scan finds member names given twice
 * in one object, and once JSON.parse has accepted the text (malformed JSON
 * stays a 400) such a document is refused with 422: JSON.parse keeps the last
 * of those members, other parsers the first, and the store serves the uploaded
 * text as it came, so the document would show different content to different
 * readers.
 */
import { FhirError, error, fail, shown, unprocessable } from './outcome.js';
import { type DuplicateMember, jsonPath, shape } from './json-text.js';

export interface GuardLimits {
  maxBytes: number;
  maxDepth: number;
  maxStringLength?: number;
  /** Most entries an uploaded document may carry (MAX_BUNDLE_ENTRIES); documents only. */
  maxEntries?: number;
}

/** What one route accepts, beyond the limits. */
export interface BodySpec {
  /** Named in the empty-body refusal: `Empty body: expected ${expects}`. */
  expects: string;
  /** An uploaded document: member names must be unique, and `maxEntries` bounds `Bundle.entry`. */
  document?: boolean;
}

/** The upload's body. */
export const DOCUMENT: BodySpec = { expects: 'a FHIR Bundle as JSON', document: true };

/** Most duplicate member names one refusal lists. */
export const MAX_DUPLICATES_REPORTED = 20;

const JSON_TYPES = new Set(['application/fhir+json', 'application/json']);

/** 415 unless the Content-Type is JSON (parameters such as charset are ignored). */
export function checkMediaType(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (!JSON_TYPES.has(type)) {
    throw fail(
      'unsupported-media-type',
      'not-supported',
      `Content-Type must be application/fhir+json or application/json (found '${type.slice(0, 60) || 'none'}')`,
    );
  }
}

/**
 * The size limit, the one place it is checked: 413 once `bytes` exceed it.
 * `setting` names the configuration the limit comes from, when there is one.
 */
function checkSize(bytes: number, maxBytes: number, setting?: string): void {
  if (bytes > maxBytes)
    throw fail('too-large', 'too-long', `Body exceeds the ${maxBytes}-byte limit${setting ? ` (${setting})` : ''}`);
}

/**
 * Reads a body stream whole, refusing it (413) as soon as more than `maxBytes`
 * have arrived, so no more than that is ever held. A body that fails while
 * streaming (the client closed the connection) or that ends before the
 * `declaredLength` (Content-Length) it announced is a 400: it is the client's
 * fault, never the database's, and nothing of it is used.
 */
export async function readBody(
  body: ReadableStream<Uint8Array> | null | undefined,
  maxBytes: number,
  declaredLength?: string,
): Promise<Uint8Array> {
  if (!body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await reader.read();
    } catch {
      throw incomplete('the request body ended before Content-Length, or the client closed the connection');
    }
    if (next.done) break;
    size += next.value.byteLength;
    try {
      checkSize(size, maxBytes, 'MAX_BODY_BYTES');
    } catch (e) {
      await reader.cancel().catch(() => {});
      throw e;
    }
    chunks.push(next.value);
  }
  const declared =
    declaredLength !== undefined && /^\d{1,15}$/.test(declaredLength.trim()) ? Number(declaredLength) : undefined;
  if (declared !== undefined && size < declared) {
    throw incomplete(`the request body ended after ${size} of the ${declared} bytes Content-Length announced`);
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

const incomplete = (why: string) => fail('malformed', 'structure', `Incomplete body: ${why}`);

/** Strict UTF-8 (400 on any malformed sequence); a byte order mark is dropped. */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('malformed', 'structure', 'Body is not valid UTF-8');
  }
}

/**
 * The text stage: emptiness, depth and string length (one linear scan, before
 * anything recursive sees the input), JSON.parse, and for a document the
 * duplicate member names and the entry count. Does not measure the size:
 * `readBody` bounded it while the body streamed in.
 */
export function parseBody(text: string, limits: GuardLimits, spec: BodySpec): unknown {
  if (text.trim() === '') throw fail('malformed', 'required', `Empty body: expected ${spec.expects}`);
  const found = shape(
    text,
    limits.maxDepth,
    limits.maxStringLength ?? Infinity,
    spec.document ? MAX_DUPLICATES_REPORTED : 0,
  );
  if (found.depth > limits.maxDepth) {
    throw fail('malformed', 'too-costly', `JSON nesting deeper than the limit of ${limits.maxDepth} levels`);
  }
  if (limits.maxStringLength !== undefined && found.longestString > limits.maxStringLength) {
    throw fail(
      'malformed',
      'too-long',
      `A JSON string is longer than the limit of ${limits.maxStringLength} characters (MAX_STRING_LENGTH)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw fail('malformed', 'structure', `Body is not valid JSON: ${(e as Error).message.slice(0, 200)}`);
  }
  if (found.duplicates.length > 0) throw duplicateRefusal(found.duplicates, parsed);
  if (spec.document && limits.maxEntries !== undefined) checkEntries(parsed, limits.maxEntries);
  return parsed;
}

/** A Bundle with more entries than `maxEntries`: 422 too-costly, before any later stage walks them. */
function checkEntries(parsed: unknown, maxEntries: number): void {
  const bundle = parsed as { resourceType?: unknown; entry?: unknown } | null;
  if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle) || bundle.resourceType !== 'Bundle') return;
  if (Array.isArray(bundle.entry) && bundle.entry.length > maxEntries) {
    throw unprocessable([
      error(
        'too-costly',
        `The document has ${bundle.entry.length} entries; at most ${maxEntries} are accepted (MAX_BUNDLE_ENTRIES)`,
        'Bundle.entry',
      ),
    ]);
  }
}

/** The guard for a JSON text already in memory: its size in UTF-8 bytes, then `parseBody`. */
export function guard(text: string, limits: GuardLimits, expects = 'JSON'): unknown {
  checkSize(Buffer.byteLength(text, 'utf8'), limits.maxBytes);
  return parseBody(text, limits, { expects });
}

/**
 * `guard` for an uploaded document held in memory: also refuses (422) any object that names a member twice, and too
 * many entries.
 */
export function guardDocument(text: string, limits: GuardLimits): unknown {
  checkSize(Buffer.byteLength(text, 'utf8'), limits.maxBytes);
  return parseBody(text, limits, DOCUMENT);
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
  return unprocessable(
    duplicates.map((d) => {
      const at = jsonPath(root, d.parent.map(clip));
      return error(
        'structure',
        `Member ${shown(d.key)} occurs more than once in the object at ${at}; JSON readers disagree on which one counts, so member names must be unique`,
        jsonPath(at, [clip(d.key)]),
      );
    }),
  );
}

export const isFhirError = (e: unknown): e is FhirError => e instanceof FhirError;
