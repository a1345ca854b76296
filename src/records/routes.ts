/**
 * /fhir/Bundle: a provider's upload, read, history and search of its own
 * records. Each handler parses, calls the core, writes, answers.
 */
import { Hono, type Context } from 'hono';
import type { Config } from '../config.js';
import type { DocumentValidator } from '../fhir/validate.js';
import { badRequest, notFound } from '../fhir/outcome.js';
import { type AppEnv, facilityCaller } from '../http/caller.js';
import { readJsonText } from '../http/body.js';
import { indexKeys } from './index-keys.js';
import { RecordStore } from './store.js';
import { encodeCursor, parseSearch } from './search.js';
import { bundleText, etag, renderRecord } from './render.js';
import type { CurrentDoc, RecordDoc } from '../db/mongo.js';
import { v4 as uuidv4 } from 'uuid';

export interface RecordDeps {
  store: RecordStore;
  validator: DocumentValidator;
  config: Config;
  clock: () => Date;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const ID = /^[A-Za-z0-9-]{1,64}$/;
const PRINTABLE = /^[\x20-\x7e]+$/;

export function recordRoutes(deps: RecordDeps) {
  const { store, validator, config, clock } = deps;
  const hiTypes = validator.profiles.profiles.map((p) => p.hiType);
  const r = new Hono<AppEnv>();
  r.use('*', facilityCaller);

  r.post('/', async (c) => {
    const careContext = c.req.header('x-care-context');
    if (!careContext) throw badRequest('X-Care-Context header required: the care context (referenceNumber) this record belongs to', 'X-Care-Context');
    if (careContext.length > 128 || !PRINTABLE.test(careContext)) throw badRequest('X-Care-Context must be 1-128 printable ASCII characters', 'X-Care-Context');
    const display = c.req.header('x-care-context-display') ?? null;
    if (display !== null && (display.length > 256 || display.trim() === '')) throw badRequest('X-Care-Context-Display must be 1-256 characters', 'X-Care-Context-Display');

    const text = await readJsonText(c, config.MAX_BODY_BYTES);
    const valid = validator.validateText(text);
    const { created, record } = await store.upload({
      text,
      keys: indexKeys(valid, config.ABHA_IDENTIFIER_SYSTEMS),
      provider: c.var.caller.facilityId,
      careContext,
      careContextDisplay: display,
      now: clock(),
    });
    const body = await versionText(record);
    setVersionHeaders(c, record);
    c.header('Location', `${base(c)}/fhir/Bundle/${record.recordId}/_history/${record.version}`);
    return c.body(body, created ? 201 : 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/', async (c) => {
    const url = new URL(c.req.url);
    const q = parseSearch(url.searchParams, { defaultCount: config.SEARCH_DEFAULT_COUNT, maxCount: config.SEARCH_MAX_COUNT, hiTypes });
    const result = await store.search({ provider: c.var.caller.facilityId }, q);
    const link = (relation: string, cursor?: string) => {
      const p = new URLSearchParams(url.searchParams);
      p.delete('_cursor');
      p.set('_count', String(q.count));
      if (cursor) p.set('_cursor', cursor);
      return { relation, url: `${base(c)}/fhir/Bundle?${p}` };
    };
    const links = [{ relation: 'self', url: `${base(c)}/fhir/Bundle${url.search}` }];
    const first = result.page[0], last = result.page[result.page.length - 1];
    if (result.hasNext && last) links.push(link('next', encodeCursor({ d: last.recordDate.getTime(), i: last._id, dir: 'next' })));
    if (result.hasPrev && first) links.push(link('previous', encodeCursor({ d: first.recordDate.getTime(), i: first._id, dir: 'prev' })));
    const entries = await Promise.all(result.page.map(async (doc) => ({
      fullUrl: `${base(c)}/fhir/Bundle/${doc._id}`,
      resource: await currentText(doc),
      extra: { search: { mode: 'match' } },
    })));
    return c.body(bundleText({ resourceType: 'Bundle', id: uuidv4(), meta: { lastUpdated: clock().toISOString() }, type: 'searchset', total: result.total, link: links }, entries), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id', async (c) => {
    const doc = await findCurrent(c);
    if (c.req.header('if-none-match') === etag(doc.version)) return c.body(null, 304);
    setVersionHeaders(c, doc);
    return c.body(await currentText(doc), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id/_history', async (c) => {
    const doc = await findCurrent(c);
    const versions = await store.history(c.var.caller.facilityId, doc.recordId, config.SEARCH_MAX_COUNT);
    const entries = await Promise.all(versions.map(async (v) => ({
      fullUrl: `${base(c)}/fhir/Bundle/${v.recordId}`,
      resource: await versionText(v),
      extra: {
        request: { method: v.version === 1 ? 'POST' : 'PUT', url: v.version === 1 ? 'Bundle' : `Bundle/${v.recordId}` },
        response: { status: v.version === 1 ? '201' : '200', etag: etag(v.version), lastModified: v.receivedAt.toISOString() },
      },
    })));
    return c.body(bundleText({ resourceType: 'Bundle', id: uuidv4(), meta: { lastUpdated: clock().toISOString() }, type: 'history', total: doc.version }, entries), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id/_history/:vid', async (c) => {
    const id = c.req.param('id'), vid = c.req.param('vid');
    if (!ID.test(id) || !/^[1-9]\d{0,8}$/.test(vid)) throw notFound(`Bundle/${id.slice(0, 64)}/_history/${vid.slice(0, 16)} not found`);
    const v = await store.version(c.var.caller.facilityId, id, Number(vid));
    if (!v) throw notFound(`Bundle/${id}/_history/${vid} not found`);
    setVersionHeaders(c, v);
    return c.body(await versionText(v), 200, { 'Content-Type': FHIR_JSON });
  });

  async function findCurrent(c: Context<AppEnv>): Promise<CurrentDoc> {
    const id = c.req.param('id') ?? '';
    if (!ID.test(id)) throw notFound(`Bundle/${id.slice(0, 64)} not found`);
    const doc = await store.current(c.var.caller.facilityId, id);
    if (!doc) throw notFound(`Bundle/${id} not found`); // another provider's record is not found either
    return doc;
  }

  async function textOf(contentId: string): Promise<string> {
    const text = await store.text(contentId);
    if (text === undefined) throw new Error('record content missing'); // written before the version: never expected
    return text;
  }
  const versionText = async (v: RecordDoc) => renderRecord(await textOf(v.contentId), v);
  const currentText = async (d: CurrentDoc) => renderRecord(await textOf(d.contentId), d);

  const base = (c: Context) => config.PUBLIC_BASE_URL?.replace(/\/$/, '') ?? new URL(c.req.url).origin;
  return r;
}

function setVersionHeaders(c: Context, v: { version: number; receivedAt: Date }) {
  c.header('ETag', etag(v.version));
  c.header('Last-Modified', v.receivedAt.toUTCString());
}
