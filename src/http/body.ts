/**
 * Reading a request body: the Hono side of the guard (src/fhir/guard.ts), which
 * owns every check and its answer. This file only hands it the request's
 * Content-Type, Content-Length and body stream; each route names what it
 * expects.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { type Config, guardLimits } from '../config.js';
import { checkMediaType, decodeUtf8, parseBody, readBody } from '../fhir/guard.js';
import { type Issue, error, unprocessable } from '../fhir/outcome.js';

/**
 * The body as text: media type (415), size while streaming (413), the body
 * complete (400), strict UTF-8 (400). The upload then gives the text to
 * `DocumentValidator.validateText`, the rest of the guard.
 */
export async function readJsonText(c: Context, maxBytes: number): Promise<string> {
  checkMediaType(c.req.header('content-type'));
  return decodeUtf8(await readBody(c.req.raw.body, maxBytes, c.req.header('content-length')));
}

/** zod issues → OperationOutcome issues with the JSON path as expression. */
export function zodIssues(e: z.ZodError): Issue[] {
  return e.issues
    .slice(0, 100)
    .map((i) =>
      error(
        i.code === 'invalid_type' && i.message.includes('undefined') ? 'required' : 'value',
        i.message,
        i.path.join('.') || '(body)',
      ),
    );
}

/**
 * What each JSON route's body is, as its empty-body refusal names it
 * ("Empty body: expected a JSON consent notification"). A route may also pass
 * its own wording to `readJsonBody`.
 */
/**
 * A JSON request body checked against a zod schema: the guard (media type 415,
 * size 413, incomplete body, UTF-8, emptiness, depth and string length 400),
 * then the schema (422 listing every problem). `expects` names the body in the
 * empty-body refusal (e.g. 'a JSON consent notification').
 */
export async function readJsonBody<T extends z.ZodTypeAny>(
  c: Context,
  schema: T,
  config: Config,
  expects: string,
): Promise<z.output<T>> {
  const text = await readJsonText(c, config.MAX_BODY_BYTES);
  const value = parseBody(text, guardLimits(config), {
    expects,
  });
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw unprocessable(zodIssues(parsed.error));
  return parsed.data;
}
