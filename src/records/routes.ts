/**
 * /fhir/Bundle, one small handler per interaction. Each parses the request,
 * makes one call on the repository built for its caller (records/repository.ts:
 * scope, consent decision, pull count, cursors and audit live there), and
 * answers as FHIR.
 *
 *   POST /                    hip        upload (create, or a new version)
 *   GET  /                    hip, hiu   search (a viewer under X-Consent-Id)
 *   GET  /:id                 hip, hiu   read the current version
 *   GET  /:id/_history        hip        the versions, newest first
 *   GET  /:id/_history/:vid   hip        one version
 *
 * Each searchset and history entry names the record's care context in an
 * extension (render.ts CARE_CONTEXT_EXTENSION_URL). A search with `_summary`
 * or `_elements` (records/search.ts ListingView) lists subsetted resources,
 * and its entries also carry the record date, title and authors (render.ts
 * summaryExtension); `_summary=count` lists none.
 */
import { Hono, type Context } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { DocumentValidator } from '../fhir/validate.js';
import { badRequest } from '../fhir/outcome.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonText } from '../http/body.js';
import { ifNoneMatchHits } from '../http/conditional.js';
import { indexKeys } from './index-keys.js';
import { bundleText, careContextExtension, etag, summaryExtension } from './render.js';
import type { Repositories } from './repository.js';
import type { RecordDoc } from './model.js';

export interface RecordDeps {
  repositories: Repositories;
  validator: DocumentValidator;
  config: Config;
  clock: () => Date;
  /** The base URL every link is built on (config, never the request's Host). */
  baseUrl: () => string;
  /** Told of each upload that stored a new record or version, once its answer is decided; must not block or throw. */
  onStored?: (record: RecordDoc) => void;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const PRINTABLE = /^[\x20-\x7e]+$/;

export function recordRoutes(deps: RecordDeps) {
  const { repositories, validator, config, clock } = deps;
  const base = () => deps.baseUrl();
  const r = new Hono<AppEnv>();
  const repo = (c: Context<AppEnv>) => repositories.forRequest(c.var.caller, consentIdOf(c), c.var.requestId);
  const fhir = (c: Context, body: string, status: 200 | 201 = 200) =>
    c.body(body, status, { 'Content-Type': FHIR_JSON });
  const bundle = (type: string, head: Record<string, unknown>, entries: Parameters<typeof bundleText>[1]) =>
    bundleText(
      { resourceType: 'Bundle', id: uuidv4(), meta: { lastUpdated: clock().toISOString() }, type, ...head },
      entries,
    );

  r.post('/', allow('record.upload', 'hip'), async (c) => {
    const { careContext, careContextDisplay } = careContextOf(c);
    const text = await readJsonText(c, config.MAX_BODY_BYTES);
    const keys = indexKeys(validator.validateText(text));
    const minimal = preferMinimal(c.req.header('prefer'));
    const {
      created,
      record,
      text: body,
    } = await (await repo(c)).upload({ text, keys, careContext, careContextDisplay }, { render: !minimal });
    if (created) deps.onStored?.(record); // fire-and-forget (abdm/hip-linking.ts): the answer does not wait
    versionHeaders(c, record);
    c.header('Location', `${base()}/fhir/Bundle/${record.recordId}/_history/${record.version}`);
    if (minimal) {
      c.header('Preference-Applied', 'return=minimal');
      return c.body(null, created ? 201 : 200);
    }
    return fhir(c, body!, created ? 201 : 200);
  });

  r.get('/', allow('record.search', 'hip', 'hiu'), async (c) => {
    const url = new URL(c.req.url);
    const result = await (await repo(c)).search(url.searchParams);
    const link = (relation: string, cursor: string) => {
      const p = new URLSearchParams(url.searchParams);
      p.set('_count', String(result.count));
      p.set('_cursor', cursor);
      return { relation, url: `${base()}/fhir/Bundle?${p}` };
    };
    const links = [
      { relation: 'self', url: `${base()}/fhir/Bundle${url.search}` },
      ...(result.next ? [link('next', result.next)] : []),
      ...(result.previous ? [link('previous', result.previous)] : []),
    ];
    // A listing without bodies (_summary, _elements) names in extensions what its entries' resources leave out.
    const extension = result.view ? summaryExtension : careContextExtension;
    const entries = result.page.map(({ doc, text }) => ({
      fullUrl: `${base()}/fhir/Bundle/${doc._id}`,
      resource: text,
      extra: { extension: extension(doc), search: { mode: 'match' } },
    }));
    return fhir(c, bundle('searchset', { total: result.total, link: links }, entries));
  });

  r.get('/:id', allow('record.read', 'hip', 'hiu'), async (c) => {
    const { doc, text } = await (await repo(c)).read(c.req.param('id'));
    if (ifNoneMatchHits(c.req.header('if-none-match'), etag(doc.version))) return c.body(null, 304);
    versionHeaders(c, doc);
    return fhir(c, text);
  });

  r.get('/:id/_history', allow('record.history', 'hip'), async (c) => {
    const url = new URL(c.req.url);
    const { current, versions, count, next } = await (await repo(c)).history(c.req.param('id'), url.searchParams);
    const entries = versions.map(({ doc: v, text }) => ({
      fullUrl: `${base()}/fhir/Bundle/${v.recordId}`,
      resource: text,
      extra: {
        extension: careContextExtension(v),
        request: { method: v.version === 1 ? 'POST' : 'PUT', url: v.version === 1 ? 'Bundle' : `Bundle/${v.recordId}` },
        response: {
          status: v.version === 1 ? '201' : '200',
          etag: etag(v.version),
          lastModified: v.receivedAt.toISOString(),
        },
      },
    }));
    const links = [{ relation: 'self', url: `${base()}${url.pathname}${url.search}` }];
    if (next) {
      const p = new URLSearchParams(url.searchParams);
      p.set('_count', String(count));
      p.set('_cursor', next);
      links.push({ relation: 'next', url: `${base()}${url.pathname}?${p}` });
    }
    return fhir(c, bundle('history', { total: current.version, link: links }, entries));
  });

  r.get('/:id/_history/:vid', allow('record.vread', 'hip'), async (c) => {
    const { doc, text } = await (await repo(c)).version(c.req.param('id'), c.req.param('vid'));
    versionHeaders(c, doc);
    return fhir(c, text);
  });

  return r;
}

/** The consent a viewer names in X-Consent-Id (null when absent; the repository decides whether one is needed). */
function consentIdOf(c: Context<AppEnv>): string | null {
  const id = c.req.header('x-consent-id');
  if (id === undefined || c.var.caller.role !== 'hiu') return null;
  if (id.length === 0 || id.length > 128 || !PRINTABLE.test(id))
    throw badRequest('X-Consent-Id is not a consent id', 'X-Consent-Id');
  return id;
}

/** The care context an upload belongs to, from X-Care-Context and X-Care-Context-Display. */
function careContextOf(c: Context): { careContext: string; careContextDisplay: string | null } {
  const careContext = c.req.header('x-care-context');
  if (!careContext)
    throw badRequest(
      'X-Care-Context header required: the care context (referenceNumber) this record belongs to',
      'X-Care-Context',
    );
  const display = c.req.header('x-care-context-display') ?? null;
  const problem = careContextProblem(careContext, display);
  if (problem) throw badRequest(`${problem.field} ${problem.message}`, problem.field);
  return { careContext, careContextDisplay: display };
}

/** What is wrong with a care context and its display (an upload's headers, an import item's members), if anything. */
export function careContextProblem(
  careContext: string,
  display: string | null,
): { field: 'X-Care-Context' | 'X-Care-Context-Display'; message: string } | undefined {
  if (careContext.length > 128 || !PRINTABLE.test(careContext))
    return { field: 'X-Care-Context', message: 'must be 1-128 printable ASCII characters' };
  if (display !== null && (display.length > 256 || display.trim() === ''))
    return { field: 'X-Care-Context-Display', message: 'must be 1-256 characters' };
  return undefined;
}

/**
 * FHIR's `Prefer: return=minimal` (RESTful API, "Managing Return Content"): the client wants no body, only the
 * status, Location and ETag. Any other return preference, or none, gets the stored Bundle.
 */
function preferMinimal(prefer: string | undefined): boolean {
  if (!prefer) return false;
  return prefer.split(',').some((p) => p.split(';')[0].trim().toLowerCase().replace(/\s+/g, '') === 'return=minimal');
}

function versionHeaders(c: Context, v: { version: number; receivedAt: Date }) {
  c.header('ETag', etag(v.version));
  c.header('Last-Modified', v.receivedAt.toUTCString());
}
