/**
 * POST /fhir/$import (role hip): a provider's existing records, many in one
 * streamed request. The body is NDJSON, one item per line:
 *
 *   {"careContext": "VISIT-1", "careContextDisplay": "OPD 2024-03-01", "bundle": { …document Bundle… }}
 *
 * and the answer (200, application/x-ndjson) is one line per non-blank input
 * line, in input order, written as each item is decided:
 *
 *   {"item": 1, "status": 201, "id": "…", "version": 1, "location": "…/fhir/Bundle/…/_history/1"}
 *   {"item": 2, "status": 422, "outcome": { …OperationOutcome… }}
 *
 * Each item is exactly an upload (POST /fhir/Bundle with X-Care-Context and
 * X-Care-Context-Display): the same guard and validation on the bundle's own
 * text, the same store path (201 stored, 200 an unchanged repeat), the same
 * audit event before its answer line is written, and a rejected item is
 * audited as a rejected upload and stores nothing. Items are stored up to
 * IMPORT_CONCURRENCY at a time, so the store's writes of concurrent items are
 * combined into batched database commands (db/batcher.ts).
 *
 * A failure of the store itself (database unavailable) ends the answer after
 * that item's 5xx line: items without an answer line were not processed and
 * are sent again by the client (`npm run import` resumes from its
 * checkpoint); a repeat of a stored item is answered 200, so delivery is
 * at least once and safe.
 *
 * Memory is bounded by the window of items in flight: the body is read as a
 * stream, a line longer than MAX_BODY_BYTES is rejected (413) without being
 * held, and the answer is produced as the client reads it.
 */
import { Hono } from 'hono';
import type { AppEnv } from '../auth/caller.js';
import { allow } from '../auth/caller.js';
import type { Config } from '../config.js';
import type { DocumentValidator } from '../fhir/validate.js';
import { FhirError, STATUS, badRequest, error, fail, operationOutcome } from '../fhir/outcome.js';
import { topLevelMembers } from '../fhir/json-text.js';
import type { Metrics } from '../http/metrics.js';
import { indexKeys } from './index-keys.js';
import { careContextProblem } from './routes.js';
import type { Repositories, RecordRepository } from './repository.js';
import type { RecordDoc } from './model.js';

export interface ImportDeps {
  repositories: Repositories;
  validator: DocumentValidator;
  config: Config;
  baseUrl: () => string;
  metrics?: Metrics;
  onStored?: (record: RecordDoc) => void;
  /** Unexpected failures, by kind only (never item content). */
  log: { error(obj: object, msg: string): void };
}

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson', 'application/fhir+ndjson']);
const ITEM_MEMBERS = new Set(['careContext', 'careContextDisplay', 'bundle']);
const NEWLINE = 0x0a;

/** One answer line. */
type Result =
  | { item: number; status: 200 | 201; id: string; version: number; location: string }
  | { item: number; status: number; outcome: fhir4.OperationOutcome };

export function importRoutes(deps: ImportDeps) {
  const r = new Hono<AppEnv>();
  r.post('/fhir/$import', allow('record.import', 'hip'), async (c) => {
    const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
    if (!NDJSON_TYPES.has(type))
      throw fail(
        'unsupported-media-type',
        'not-supported',
        `Content-Type must be application/x-ndjson (one {"careContext", "careContextDisplay", "bundle"} per line; found '${type.slice(0, 60) || 'none'}')`,
      );
    if (!c.req.raw.body) throw fail('malformed', 'required', 'Empty body: expected NDJSON import items');
    const repo = await deps.repositories.forRequest(c.var.caller, null, c.var.requestId);
    const results = answers(deps, repo, lines(c.req.raw.body, deps.config.MAX_BODY_BYTES));
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await results.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(JSON.stringify(next.value) + '\n'));
      },
      async cancel() {
        await results.return(undefined);
      },
    });
    return c.body(body, 200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store' });
  });
  return r;
}

/** A line of the body: its text, or why it cannot be read (too long, not UTF-8). */
type Line = { text: string } | { refused: FhirError };

/**
 * The non-blank lines of a body stream. A line longer than `maxBytes` is refused (413) as soon as it passes the limit
 * and skipped to its end without being held.
 */
async function* lines(body: ReadableStream<Uint8Array>, maxBytes: number): AsyncGenerator<Line> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const reader = body.getReader();
  let parts: Uint8Array[] = [];
  let size = 0;
  let skipping = false;
  const finish = (): Line | undefined => {
    const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    parts = [];
    size = 0;
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return { refused: fail('malformed', 'structure', 'Item is not valid UTF-8') };
    }
    return text.trim() === '' ? undefined : { text };
  };
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch {
        return; // the client went away: what was answered stands, the rest was never read
      }
      if (chunk.done) break;
      let bytes = chunk.value;
      for (let nl = bytes.indexOf(NEWLINE); ; nl = bytes.indexOf(NEWLINE)) {
        const piece = nl < 0 ? bytes : bytes.subarray(0, nl);
        if (!skipping) {
          size += piece.byteLength;
          if (size > maxBytes) {
            skipping = true;
            parts = [];
            yield {
              refused: fail('too-large', 'too-long', `Item exceeds the ${maxBytes}-byte limit (MAX_BODY_BYTES)`),
            };
          } else parts.push(piece);
        }
        if (nl < 0) break;
        if (skipping) {
          skipping = false;
          size = 0;
        } else {
          const line = finish();
          if (line) yield line;
        }
        bytes = bytes.subarray(nl + 1);
      }
    }
    if (!skipping && size > 0) {
      const line = finish();
      if (line) yield line;
    }
  } finally {
    reader.releaseLock();
  }
}

/** One item's care context and the exact text of its bundle, or the 4xx that rejects it. */
function parseItem(text: string): { careContext: string; careContextDisplay: string | null; bundleText: string } {
  let members: ReturnType<typeof topLevelMembers>;
  let head: Record<string, unknown>;
  const bundle = () => members.find((m) => m.key === 'bundle');
  try {
    if (!text.trimStart().startsWith('{')) throw new SyntaxError('not an object');
    members = topLevelMembers(text);
    const b = bundle();
    // The item without its bundle must itself be well-formed JSON (the bundle is checked by the upload's guard).
    head = JSON.parse(b ? `${text.slice(0, b.start)}"bundle":0${text.slice(b.end)}` : text);
  } catch {
    throw badRequest(
      'Item is not a JSON object: expected {"careContext": "…", "careContextDisplay": "…", "bundle": {…}} on one line',
      '(item)',
    );
  }
  if (!head || typeof head !== 'object' || Array.isArray(head)) throw badRequest('Item is not a JSON object', '(item)');
  const unknown = Object.keys(head).filter((k) => !ITEM_MEMBERS.has(k));
  if (unknown.length)
    throw badRequest(
      `Unknown item member '${unknown[0].slice(0, 40)}'; an item has careContext, careContextDisplay and bundle`,
      unknown[0].slice(0, 40),
    );
  if (new Set(members!.map((m) => m.key)).size !== members!.length)
    throw badRequest('An item member is given twice', '(item)');
  const { careContext, careContextDisplay } = head;
  if (typeof careContext !== 'string' || careContext === '')
    throw badRequest('careContext required: the care context (referenceNumber) this record belongs to', 'careContext');
  if (careContextDisplay !== undefined && careContextDisplay !== null && typeof careContextDisplay !== 'string')
    throw badRequest('careContextDisplay must be a string', 'careContextDisplay');
  const display = (careContextDisplay as string | null | undefined) ?? null;
  const problem = careContextProblem(careContext, display);
  if (problem) {
    const member = problem.field === 'X-Care-Context' ? 'careContext' : 'careContextDisplay';
    throw badRequest(`${member} ${problem.message}`, member);
  }
  const b = bundle();
  if (!b) throw fail('malformed', 'required', 'bundle required: the FHIR document Bundle to store', 'bundle');
  const value = text.slice(text.indexOf(':', b.start + '"bundle"'.length) + 1, b.end);
  return { careContext, careContextDisplay: display, bundleText: value.trimStart() };
}

/**
 * The answers to a stream of lines: each validated as it is read, stored up to IMPORT_CONCURRENCY at a time, yielded in
 * input order. Stops after the first failure of the store itself.
 */
async function* answers(deps: ImportDeps, repo: RecordRepository, input: AsyncGenerator<Line>): AsyncGenerator<Result> {
  const window: Promise<Result>[] = [];
  const max = Math.max(1, deps.config.IMPORT_CONCURRENCY);
  let item = 0;
  let failed = false;
  const settle = async (): Promise<Result> => {
    const result = await window.shift()!;
    if (result.status >= 500) failed = true;
    return result;
  };
  try {
    for await (const line of input) {
      const n = ++item;
      window.push(decideItem(deps, repo, n, line));
      while (window.length >= max || (window.length && failed)) {
        yield await settle();
        if (failed) return;
      }
    }
    while (window.length) {
      yield await settle();
      if (failed) return;
    }
  } finally {
    await input.return(undefined);
    await Promise.allSettled(window); // items already in flight finish (stored and audited) before the answer ends
  }
}

async function decideItem(deps: ImportDeps, repo: RecordRepository, item: number, line: Line): Promise<Result> {
  try {
    if ('refused' in line) throw line.refused;
    const { careContext, careContextDisplay, bundleText } = parseItem(line.text);
    const keys = indexKeys(deps.validator.validateText(bundleText));
    const { created, record } = await repo.upload(
      { text: bundleText, keys, careContext, careContextDisplay },
      { render: false },
    );
    if (created) deps.onStored?.(record);
    return {
      item,
      status: created ? 201 : 200,
      id: record.recordId,
      version: record.version,
      location: `${deps.baseUrl()}/fhir/Bundle/${record.recordId}/_history/${record.version}`,
    };
  } catch (e) {
    return rejection(deps, repo, item, e);
  }
}

/** A rejected item's answer line, audited as a rejected upload; a failure of the store: a 503 that ends the answer. */
async function rejection(deps: ImportDeps, repo: RecordRepository, item: number, e: unknown): Promise<Result> {
  if (e instanceof FhirError && e.status < 500) {
    if (e.status === STATUS.unprocessable) deps.metrics?.rejected(e.issues);
    try {
      await repo.rejected('record.upload', e, `import item ${item}`);
    } catch {
      return unavailableAt(item); // a rejection that cannot be audited is not answered as one
    }
    return { item, status: e.status, outcome: operationOutcome(e.issues) };
  }
  if (!(e instanceof FhirError))
    deps.log.error({ err: { name: (e as Error)?.name, code: (e as { code?: unknown })?.code } }, 'import item failed');
  return e instanceof FhirError ? { item, status: e.status, outcome: operationOutcome(e.issues) } : unavailableAt(item);
}

const unavailableAt = (item: number): Result => ({
  item,
  status: 503,
  outcome: operationOutcome([
    error(
      'transient',
      'The store could not take this item; it and the items after it were not processed: send them again',
    ),
  ]),
});
