/**
 * /fhir/Bundle: a provider (hip) uploads, reads, searches and reads the history
 * of its own records; a viewer (hiu) searches and reads a patient's records
 * only as far as the live consent it names in X-Consent-Id allows. Every
 * success is audited here; refusals are audited by the app's error handler.
 */
import { Hono, type Context } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import type { DocumentValidator } from '../fhir/validate.js';
import { type FhirError, badRequest, fail, notFound } from '../fhir/outcome.js';
import { type AppEnv, requireRole } from '../auth/caller.js';
import { readJsonText } from '../http/body.js';
import { indexKeys } from './index-keys.js';
import type { RecordStore } from './store.js';
import { parseSearch } from './search.js';
import { type CursorBinding, type CursorSealer, type Pull } from './cursor.js';
import { bundleText, etag, renderRecord } from './render.js';
import type { CurrentDoc, RecordDoc } from '../db/mongo.js';
import type { ConsentStore, ConsentDoc } from '../consents/store.js';
import { consentFilter, consentUsable, decide, patientAuditKey } from '../consents/policy.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';

export interface RecordDeps {
  store: RecordStore;
  consents: ConsentStore;
  audit: AuditLog;
  validator: DocumentValidator;
  config: Config;
  clock: () => Date;
  cursors: CursorSealer;
  /** The base URL every link is built on (config, never the request's Host). */
  baseUrl: () => string;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const ID = /^[A-Za-z0-9-]{1,64}$/;
const PRINTABLE = /^[\x20-\x7e]+$/;
const patientsOf = (docs: { abhaAddress: string | null; abhaNumber: string | null }[]) =>
  [...new Set(docs.flatMap((d) => [d.abhaAddress, d.abhaNumber].filter((x): x is string => !!x)))];

export function recordRoutes(deps: RecordDeps) {
  const { store, consents, audit, validator, config, clock, cursors } = deps;
  const hiTypes = validator.profiles.profiles.map((p) => p.hiType);
  const r = new Hono<AppEnv>();

  r.post('/', requireRole('hip'), async (c) => {
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
    // A new version's content is the text just uploaded; a repeat answers with the stored version's own text.
    const body = created ? renderRecord(text, record) : await versionText(record);
    await audit.append({ action: 'record.upload', outcome: 'success', status: created ? 201 : 200, actor: actorOf(c), recordIds: [record.recordId], patients: patientsOf([record]), requestId: c.var.requestId });
    setVersionHeaders(c, record);
    c.header('Location', `${base()}/fhir/Bundle/${record.recordId}/_history/${record.version}`);
    return c.body(body, created ? 201 : 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/', requireRole('hip', 'hiu'), async (c) => {
    const url = new URL(c.req.url);
    const q = parseSearch(url.searchParams, { defaultCount: config.SEARCH_DEFAULT_COUNT, maxCount: config.SEARCH_MAX_COUNT, hiTypes });
    const caller = c.var.caller;
    const binding: CursorBinding = { role: caller.role, facility: caller.facilityId, subject: caller.subject, consentId: caller.role === 'hiu' ? consentIdOf(c) : null, params: url.searchParams };
    // A cursor continues the pull it was sealed for (records/cursor.ts); without one, this is a new pull, counted against the consent's frequency.
    const opened = q.cursorToken === undefined ? undefined : cursors.open(q.cursorToken, binding, clock());
    q.cursor = opened?.position;
    const consent = caller.role === 'hiu' ? await liveConsent(c, opened === undefined) : undefined;
    const pull: Pull = opened?.pull ?? cursors.startPull(clock());
    const scope = consent ? consentFilter(consent) : { provider: caller.facilityId };
    const result = await store.search(scope, q);
    const link = (relation: string, cursor?: string) => {
      const p = new URLSearchParams(url.searchParams);
      p.delete('_cursor');
      p.set('_count', String(q.count));
      if (cursor) p.set('_cursor', cursor);
      return { relation, url: `${base()}/fhir/Bundle?${p}` };
    };
    const links = [{ relation: 'self', url: `${base()}/fhir/Bundle${url.search}` }];
    const first = result.page[0], last = result.page[result.page.length - 1];
    if (result.hasNext && last) links.push(link('next', cursors.seal({ d: last.recordDate.getTime(), i: last._id, dir: 'next' }, pull, binding)));
    if (result.hasPrev && first) links.push(link('previous', cursors.seal({ d: first.recordDate.getTime(), i: first._id, dir: 'prev' }, pull, binding)));
    const entries = await Promise.all(result.page.map(async (doc) => ({
      fullUrl: `${base()}/fhir/Bundle/${doc._id}`,
      resource: await currentText(doc),
      extra: { search: { mode: 'match' } },
    })));
    await audit.append({
      action: 'record.search', outcome: 'success', status: 200, actor: actorOf(c), recordIds: result.page.map((d) => d._id),
      patients: patientsOf(result.page), consentId: consent?._id ?? null, purpose: consent?.terms?.purpose ?? null, reason: `pull ${pull.id}`, requestId: c.var.requestId,
    });
    return c.body(bundleText({ resourceType: 'Bundle', id: uuidv4(), meta: { lastUpdated: clock().toISOString() }, type: 'searchset', total: result.total, link: links }, entries), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id', requireRole('hip', 'hiu'), async (c) => {
    const id = c.req.param('id');
    let doc: CurrentDoc | null = null;
    let consent: ConsentDoc | undefined;
    if (c.var.caller.role === 'hiu') {
      consent = await liveConsent(c, true);
      doc = ID.test(id) ? await store.currentById(id) : null;
      const d = doc ? decide(consent, doc, c.var.caller, clock()) : { allow: false as const, reason: 'no such record' };
      if (!d.allow) throw forPatientOf(consent, notFound(`Bundle/${id.slice(0, 64)} not found under consent ${consent._id}`, d.reason));
    } else doc = ID.test(id) ? await store.current(c.var.caller.facilityId, id) : null; // another provider's record is not found either
    if (!doc) throw notFound(`Bundle/${id.slice(0, 64)} not found`);
    await audit.append({ action: 'record.read', outcome: 'success', status: 200, actor: actorOf(c), recordIds: [doc._id], patients: patientsOf([doc]), consentId: consent?._id ?? null, purpose: consent?.terms?.purpose ?? null, requestId: c.var.requestId });
    if (c.req.header('if-none-match') === etag(doc.version)) return c.body(null, 304);
    setVersionHeaders(c, doc);
    return c.body(await currentText(doc), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id/_history', requireRole('hip'), async (c) => {
    const id = c.req.param('id');
    const doc = ID.test(id) ? await store.current(c.var.caller.facilityId, id) : null;
    if (!doc) throw notFound(`Bundle/${id.slice(0, 64)} not found`);
    const versions = await store.history(c.var.caller.facilityId, doc.recordId, config.SEARCH_MAX_COUNT);
    const entries = await Promise.all(versions.map(async (v) => ({
      fullUrl: `${base()}/fhir/Bundle/${v.recordId}`,
      resource: await versionText(v),
      extra: {
        request: { method: v.version === 1 ? 'POST' : 'PUT', url: v.version === 1 ? 'Bundle' : `Bundle/${v.recordId}` },
        response: { status: v.version === 1 ? '201' : '200', etag: etag(v.version), lastModified: v.receivedAt.toISOString() },
      },
    })));
    await audit.append({ action: 'record.history', outcome: 'success', status: 200, actor: actorOf(c), recordIds: [doc._id], patients: patientsOf([doc]), requestId: c.var.requestId });
    return c.body(bundleText({ resourceType: 'Bundle', id: uuidv4(), meta: { lastUpdated: clock().toISOString() }, type: 'history', total: doc.version }, entries), 200, { 'Content-Type': FHIR_JSON });
  });

  r.get('/:id/_history/:vid', requireRole('hip'), async (c) => {
    const id = c.req.param('id'), vid = c.req.param('vid');
    const v = ID.test(id) && /^[1-9]\d{0,8}$/.test(vid) ? await store.version(c.var.caller.facilityId, id, Number(vid)) : null;
    if (!v) throw notFound(`Bundle/${id.slice(0, 64)}/_history/${vid.slice(0, 16)} not found`);
    await audit.append({ action: 'record.vread', outcome: 'success', status: 200, actor: actorOf(c), recordIds: [v.recordId], patients: patientsOf([v]), requestId: c.var.requestId });
    setVersionHeaders(c, v);
    return c.body(await versionText(v), 200, { 'Content-Type': FHIR_JSON });
  });

  /**
   * The consent named in X-Consent-Id, read fresh from the database (no cache,
   * so a revocation is effective at the next request), checked live and this
   * viewer's, and (for a new pull) counted against its frequency.
   */
  async function liveConsent(c: Context<AppEnv>, newPull: boolean): Promise<ConsentDoc> {
    const id = consentIdOf(c);
    const consent = await consents.get(id);
    const now = clock();
    const usable = consentUsable(consent, c.var.caller, now);
    if (!usable.allow) throw forPatientOf(consent, fail(403, 'forbidden', `Access under consent ${id} refused: ${usable.reason}`));
    if (newPull) {
      const pull = await consents.countPull(consent!, now);
      if (!pull.ok) {
        const e = fail(429, 'throttled', `Consent ${id} allows ${consent!.terms!.frequency.value} fetch(es) per ${consent!.terms!.frequency.unit}; try again later`);
        e.headers['Retry-After'] = String(pull.retryAfterSec);
        throw forPatientOf(consent, e);
      }
    }
    return consent!;
  }

  const present = (text: string | undefined): string => {
    if (text === undefined) throw new Error('record content missing'); // written before the version: never expected
    return text;
  };
  const versionText = async (v: RecordDoc) => renderRecord(present(await store.text(v.contentId)), v);
  const currentText = async (d: CurrentDoc) => renderRecord(present(await store.currentText(d)), d);

  const base = deps.baseUrl;
  return r;
}

/** The consent named in X-Consent-Id (a viewer's every request names one). */
function consentIdOf(c: Context<AppEnv>): string {
  const id = c.req.header('x-consent-id');
  if (!id) throw badRequest('X-Consent-Id header required: a viewer fetches records under a consent', 'X-Consent-Id');
  if (id.length > 128 || !PRINTABLE.test(id)) throw badRequest('X-Consent-Id is not a consent id', 'X-Consent-Id');
  return id;
}

/** A refusal under a consent names the consent's patient in the audit trail, so the patient sees the attempt. */
function forPatientOf(consent: ConsentDoc | null, e: FhirError): FhirError {
  const patient = consent?.patient ?? (consent?.terms ? patientAuditKey(consent.terms.patient) : null);
  if (patient) e.auditPatients = [patient];
  return e;
}

function setVersionHeaders(c: Context, v: { version: number; receivedAt: Date }) {
  c.header('ETag', etag(v.version));
  c.header('Last-Modified', v.receivedAt.toUTCString());
}
