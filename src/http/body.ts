/**
 * Reading a request body: media type first (415), then the size limit enforced
 * while streaming (413), then strict UTF-8 decoding (400).
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { type Config, guardLimits } from '../config.js';
import { guard } from '../fhir/guard.js';
import { type Issue, error, fail, unprocessable } from '../fhir/outcome.js';

const JSON_TYPES = new Set(['application/fhir+json', 'application/json']);

export async function readJsonText(c: Context, maxBytes: number): Promise<string> {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!JSON_TYPES.has(type)) {
    throw fail(415, 'not-supported', `Content-Type must be application/fhir+json or application/json (found '${type.slice(0, 60) || 'none'}')`);
  }
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
  const body = c.req.raw.body;
  if (!body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) { await reader.cancel(); throw tooLarge(maxBytes); }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw fail(400, 'structure', 'Body is not valid UTF-8');
  }
}

const tooLarge = (max: number) => fail(413, 'too-long', `Body exceeds the ${max}-byte limit (MAX_BODY_BYTES)`);

/** zod issues → OperationOutcome issues with the JSON path as expression. */
export function zodIssues(e: z.ZodError): Issue[] {
  return e.issues.slice(0, 100).map((i) => error(i.code === 'invalid_type' && i.message.includes('undefined') ? 'required' : 'value', i.message, i.path.join('.') || '(body)'));
}

/**
 * A JSON request body checked against a zod schema: media type (415), size
 * (413), depth and string length (400), then the schema (422 listing every
 * problem).
 */
export async function readJsonBody<T extends z.ZodTypeAny>(c: Context, schema: T, config: Config): Promise<z.output<T>> {
  const parsed = schema.safeParse(guard(await readJsonText(c, config.MAX_BODY_BYTES), guardLimits(config)));
  if (!parsed.success) throw unprocessable(zodIssues(parsed.error));
  return parsed.data;
}
