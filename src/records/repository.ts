/**
 * The one home of "is it allowed". A repository is built per request from
 * who is asking, and every read, search, history and push goes through it:
 *
 *   provider (hip)   its own records: scope = { provider: its facility }
 *   viewer (hiu)     a patient's records under the consent it names: the
 *                    consent is checked here (live, granted to this viewer,
 *                    a mode that allows a direct fetch), its scope is
 *                    consentFilter(consent), each record read is decided by
 *                    decide(), and each new pull is counted against the
 *                    consent's frequency
 *   push             the records of one health-information transaction: the
 *                    same consentFilter, narrowed to the requested dateRange
 *
 * Inside each method: the scope, the consent decision, the pull count, the
 * paging cursor (sealed and bound: records/cursor.ts) and the audit event,
 * success or refusal. A refusal is audited where it is made and thrown as a
 * FhirError marked audited, so app.onError only answers it. Handlers parse,
 * call one method and answer.
 */
import type { Caller } from '../auth/caller.js';
import type { Config } from '../config.js';
import type { AuditInput, AuditLog } from '../audit/log.js';
import { type FhirError, badRequest, fail, notFound } from '../fhir/outcome.js';
import type { ConsentDoc, ConsentStore } from '../consents/store.js';
import { consentFilter, consentUsable, decide, patientAuditKey } from '../consents/policy.js';
import type { CurrentDoc, ListedRecord, RecordDoc } from './model.js';
import type { ListedPage, RecordStore, UploadInput, UploadResult } from './store.js';
import { type ListingView, parseSearch, type SearchQuery } from './search.js';
import type { CursorBinding, CursorSealer, Pull } from './cursor.js';
import { renderListed, renderRecord, renderSubset } from './render.js';
import { matchesFilter } from './match.js';

export interface RepositoryDeps {
  store: RecordStore;
  consents: ConsentStore;
  audit: AuditLog;
  cursors: CursorSealer;
  config: Config;
  clock: () => Date;
  /** The record types the store accepts (search `type`). */
  hiTypes: readonly string[];
}

/** A record as served: its current (or requested) version and that version's rendered text. */
export interface Served<D extends RecordDoc | CurrentDoc = CurrentDoc> {
  doc: D;
  text: string;
}

export interface SearchResult {
  total: number;
  /** Whole records; with `view`, each cut as it asks (records/render.ts renderListed, renderSubset). */
  page: { doc: ListedRecord; text: string }[];
  count: number;
  /** From `_summary` and `_elements` (records/search.ts); absent: whole records. `count`: no page. */
  view?: ListingView;
  /** Sealed cursors for the next and previous pages, when there are such pages. */
  next?: string;
  previous?: string;
}

const ID = /^[A-Za-z0-9-]{1,64}$/;
const VID = /^[1-9]\d{0,8}$/;

/** The patients a set of records belongs to, as the audit trail names them. */
export const patientsOf = (docs: { abhaAddress: string | null; abhaNumber: string | null }[]) => [
  ...new Set(docs.flatMap((d) => [d.abhaAddress, d.abhaNumber].filter((x): x is string => !!x))),
];

const actor = (caller: Caller): AuditInput['actor'] => ({
  role: caller.role,
  facility: caller.facilityId,
  subject: caller.subject,
});

export class Repositories {
  constructor(private deps: RepositoryDeps) {}

  /**
   * The repository for one request. A provider gets its own records. A
   * viewer names a consent (read fresh, never cached, so a revocation takes
   * effect at the next request); each method checks it before anything else.
   */
  async forRequest(caller: Caller, consentId: string | null, requestId: string): Promise<RecordRepository> {
    if (caller.role !== 'hiu') return new RecordRepository(this.deps, caller, requestId, null);
    if (consentId === null)
      throw badRequest('X-Consent-Id header required: a viewer fetches records under a consent', 'X-Consent-Id');
    return new RecordRepository(this.deps, caller, requestId, {
      id: consentId,
      doc: await this.deps.consents.get(consentId),
    });
  }

  /**
   * The records one health-information transaction may push: what the consent allows, within the requested dateRange.
   */
  forPush(consent: ConsentDoc, dateRange: { from: Date; to: Date }): PushRepository {
    return new PushRepository(this.deps, consent, dateRange);
  }
}

export class RecordRepository {
  /** Under a consent (a viewer): the consent as read for this request. */
  private readonly consent: ConsentDoc | null;

  constructor(
    private deps: RepositoryDeps,
    private caller: Caller,
    private requestId: string,
    private under: { id: string; doc: ConsentDoc | null } | null,
  ) {
    this.consent = under?.doc ?? null;
  }

  /** What this caller may see, as a filter: a provider's own records, or what the consent allows. */
  private scope(): Record<string, unknown> {
    return this.consent ? consentFilter(this.consent) : { provider: this.caller.facilityId };
  }

  /**
   * A viewer's consent must be live and this viewer's before anything is read: else 403, audited under the consent's
   * patient.
   */
  private async admit(action: string): Promise<void> {
    if (!this.under) return;
    const usable = consentUsable(this.under.doc, this.caller, this.deps.clock());
    if (!usable.allow)
      throw await this.refuse(
        action,
        fail('forbidden', 'forbidden', `Access under consent ${this.under.id} refused: ${usable.reason}`),
      );
  }

  /** A provider's upload, stored and audited. */
  async upload(
    input: Omit<UploadInput, 'provider' | 'now'>,
    opts: { render?: boolean } = {},
  ): Promise<UploadResult & { text?: string }> {
    this.providerOnly();
    const result = await this.deps.store.upload({ ...input, provider: this.caller.facilityId, now: this.deps.clock() });
    // A new version's content is the text just uploaded; a repeat answers with the stored version's own text. No text
    // when the caller wants none (Prefer: return=minimal, an import).
    const text =
      opts.render === false
        ? undefined
        : result.created
          ? renderRecord(input.text, result.record)
          : await this.versionText(result.record);
    await this.log({
      action: 'record.upload',
      outcome: 'success',
      status: result.created ? 201 : 200,
      recordIds: [result.record.recordId],
      patients: patientsOf([result.record]),
    });
    return { ...result, text };
  }

  /** One record's current version, if this caller may see it; else 404 (audited, with the reason). */
  async read(id: string): Promise<Served> {
    await this.admit('record.read');
    const doc = ID.test(id) ? await this.deps.store.currentById(id) : null;
    let why: string | undefined;
    if (!doc) why = 'no such record';
    else if (this.consent) {
      const d = decide(this.consent, doc, this.caller, this.deps.clock());
      if (!d.allow) why = d.reason;
    } else if (doc.provider !== this.caller.facilityId) why = "another provider's record"; // not found either, so ids reveal nothing
    if (why !== undefined) {
      const shown = this.under
        ? `Bundle/${id.slice(0, 64)} not found under consent ${this.under.id}`
        : `Bundle/${id.slice(0, 64)} not found`;
      throw await this.refuse('record.read', notFound(shown, `${shown}: ${why}`)); // the reason goes to the audit trail, never to the caller
    }
    if (this.consent) await this.countPull('record.read');
    await this.log({
      action: 'record.read',
      outcome: 'success',
      status: 200,
      recordIds: [doc!._id],
      patients: patientsOf([doc!]),
    });
    return { doc: doc!, text: await this.currentText(doc!) };
  }

  /**
   * One page of the records this caller may see that match the search
   * parameters, newest first, with the total and sealed cursors. Without a
   * cursor this is a new pull (counted under a consent); a cursor continues
   * the pull it was sealed for and must open for this caller, consent and
   * query (else 400). `_summary` and `_elements` (q.view) change only what each entry carries and what is read for it
   * (records/search.ts ListingView); the consent, pull, cursors and audit are the same. A subset of only the elements
   * the store keeps reads no content (store.searchListed: a patient's listing is one read of their index document),
   * and `_summary=count` reads no record.
   */
  async search(params: URLSearchParams): Promise<SearchResult> {
    await this.admit('record.search');
    const { config, cursors, clock } = this.deps;
    const q: SearchQuery = parseSearch(params, {
      defaultCount: config.SEARCH_DEFAULT_COUNT,
      maxCount: config.SEARCH_MAX_COUNT,
      hiTypes: this.deps.hiTypes,
    });
    const binding: CursorBinding = {
      role: this.caller.role,
      facility: this.caller.facilityId,
      subject: this.caller.subject,
      consentId: this.under?.id ?? null,
      params,
    };
    const opened = q.cursorToken === undefined ? undefined : cursors.open(q.cursorToken, binding, clock());
    q.cursor = opened?.position;
    if (this.consent && !opened) await this.countPull('record.search');
    const pull: Pull = opened?.pull ?? cursors.startPull(clock());
    const view = q.view;
    if (view?.kind === 'count') {
      const { total, matched } = await this.deps.store.countMatching(this.scope(), q);
      await this.log({
        action: 'record.search',
        outcome: 'success',
        status: 200,
        recordIds: [], // no record is served, only how many there are: of these patients' records
        patients: patientsOf(matched),
        reason: `pull ${pull.id}`,
      });
      return { total, page: [], count: q.count, view };
    }
    let result: ListedPage;
    let page: SearchResult['page'];
    if (view?.kind === 'subset' && !view.fromContent) {
      result = await this.deps.store.searchListed(this.scope(), q);
      page = result.page.map((doc) => ({ doc, text: renderListed(doc, view.elements) }));
    } else {
      const found = await this.deps.store.search(this.scope(), q);
      result = found;
      page = await Promise.all(
        found.page.map(async (doc) => ({
          doc,
          text: view ? await this.subsetText(doc, view.elements) : await this.currentText(doc),
        })),
      );
    }
    const first = result.page[0],
      last = result.page[result.page.length - 1];
    await this.log({
      action: 'record.search',
      outcome: 'success',
      status: 200,
      recordIds: result.page.map((d) => d._id),
      patients: patientsOf(result.page),
      reason: `pull ${pull.id}`,
    });
    return {
      total: result.total,
      page,
      count: q.count,
      ...(view ? { view } : {}),
      ...(result.hasNext && last
        ? { next: cursors.seal({ d: last.recordDate.getTime(), i: last._id, dir: 'next' }, pull, binding) }
        : {}),
      ...(result.hasPrev && first
        ? { previous: cursors.seal({ d: first.recordDate.getTime(), i: first._id, dir: 'prev' }, pull, binding) }
        : {}),
    };
  }

  /**
   * A provider's record's versions, newest first, a page at a time: `_count`
   * (default SEARCH_DEFAULT_COUNT, at most SEARCH_MAX_COUNT) and a sealed
   * `_cursor` for the next page, bound to this caller, record and query.
   * Any other parameter is 400.
   */
  async history(
    id: string,
    params: URLSearchParams,
  ): Promise<{ current: CurrentDoc; versions: Served<RecordDoc>[]; count: number; next?: string }> {
    this.providerOnly();
    const { config, cursors, clock } = this.deps;
    for (const k of new Set(params.keys())) {
      if (k !== '_count' && k !== '_cursor')
        throw badRequest(`Unknown parameter '${k.slice(0, 40)}' for _history; supported: _count, _cursor`, k);
      if (params.getAll(k).length > 1) throw badRequest(`Parameter '${k}' may be given once`, k);
    }
    const raw = params.get('_count');
    if (raw !== null && (!/^\d{1,6}$/.test(raw) || Number(raw) < 1))
      throw badRequest('_count must be a positive integer', '_count');
    const count = Math.min(raw === null ? config.SEARCH_DEFAULT_COUNT : Number(raw), config.SEARCH_MAX_COUNT);
    const current = ID.test(id) ? await this.deps.store.current(this.caller.facilityId, id) : null;
    if (!current) throw await this.refuse('record.history', notFound(`Bundle/${id.slice(0, 64)} not found`));
    const bound = new URLSearchParams(params);
    bound.set('_history', current._id); // a cursor pages this record's history only
    const binding: CursorBinding = {
      role: this.caller.role,
      facility: this.caller.facilityId,
      subject: this.caller.subject,
      consentId: null,
      params: bound,
    };
    const token = params.get('_cursor');
    const opened = token === null ? undefined : cursors.open(token, binding, clock());
    const from = opened ? opened.position.d - 1 : current.version;
    const versions = await this.deps.store.versionsDown(current.recordId, from, count);
    const served = await Promise.all(versions.map(async (v) => ({ doc: v, text: await this.versionText(v) })));
    await this.log({
      action: 'record.history',
      outcome: 'success',
      status: 200,
      recordIds: [current._id],
      patients: patientsOf([current]),
    });
    const lowest = versions[versions.length - 1]?.version ?? 1;
    const pull = opened?.pull ?? cursors.startPull(clock());
    return {
      current,
      versions: served,
      count,
      ...(lowest > 1 ? { next: cursors.seal({ d: lowest, i: current._id, dir: 'next' }, pull, binding) } : {}),
    };
  }

  /** One version of a provider's record. */
  async version(id: string, vid: string): Promise<Served<RecordDoc>> {
    this.providerOnly();
    const v =
      ID.test(id) && VID.test(vid) ? await this.deps.store.version(this.caller.facilityId, id, Number(vid)) : null;
    if (!v)
      throw await this.refuse(
        'record.vread',
        notFound(`Bundle/${id.slice(0, 64)}/_history/${vid.slice(0, 16)} not found`),
      );
    await this.log({
      action: 'record.vread',
      outcome: 'success',
      status: 200,
      recordIds: [v.recordId],
      patients: patientsOf([v]),
    });
    return { doc: v, text: await this.versionText(v) };
  }

  /**
   * Audits a refusal made here (under a consent: for the consent's patient) and returns the error, marked audited, to
   * throw.
   */
  async refuse(action: string, e: FhirError): Promise<FhirError> {
    const c = this.consent;
    const patient = c?.patient ?? (c?.terms ? patientAuditKey(c.terms.patient) : null);
    await this.log({
      action,
      outcome: 'refused',
      status: e.status,
      patients: patient ? [patient] : [],
      reason: (e.auditReason ?? e.issues[0]?.diagnostics ?? '').slice(0, 300),
    });
    e.audited = true;
    return e;
  }

  /** Audits a rejected request of this caller (an import's item: the upload it would have been). */
  async rejected(action: string, e: FhirError, reason: string): Promise<void> {
    await this.log({
      action,
      outcome: 'rejected',
      status: e.status,
      reason: `${reason}: ${e.issues[0]?.diagnostics ?? ''}`.slice(0, 300),
    });
  }

  /** Counts one pull against the consent's frequency; past it, 429 with Retry-After (audited). */
  private async countPull(action: string): Promise<void> {
    const consent = this.consent!;
    const pull = await this.deps.consents.countPull(consent, this.deps.clock());
    if (pull.ok) return;
    const f = consent.terms!.frequency;
    const e = fail(
      'throttled',
      'throttled',
      `Consent ${consent._id} allows ${f.value} fetch(es) per ${f.unit}; try again later`,
    );
    e.headers['Retry-After'] = String(pull.retryAfterSec);
    throw await this.refuse(action, e);
  }

  private providerOnly() {
    if (this.caller.role !== 'hip') throw fail('forbidden', 'forbidden', 'Only the provider (role hip) does this'); // routes require the role already
  }

  private log(e: Omit<AuditInput, 'actor' | 'requestId' | 'consentId' | 'purpose'>) {
    return this.deps.audit.append({
      ...e,
      actor: actor(this.caller),
      consentId: this.under?.id ?? null,
      purpose: this.consent?.terms?.purpose ?? null,
      requestId: this.requestId,
    });
  }

  private versionText = async (v: RecordDoc) => renderRecord(present(await this.deps.store.text(v.contentId)), v);
  private currentText = async (d: CurrentDoc) => renderRecord(present(await this.deps.store.currentText(d)), d);
  private subsetText = async (d: CurrentDoc, elements: readonly string[]) =>
    renderSubset(present(await this.deps.store.currentText(d)), d, elements);
}

/**
 * What one health-information transaction may push: the consent's records
 * (consentFilter, the same scope a viewer's search has) within the requested
 * dateRange. The transfer checks that the consent is still live before each
 * page; each record is re-read as it stands and pushed only if still covered.
 */
export class PushRepository {
  private readonly filter: Record<string, unknown>;

  constructor(
    private deps: RepositoryDeps,
    private consent: ConsentDoc,
    dateRange: { from: Date; to: Date },
  ) {
    this.filter = { $and: [consentFilter(consent), { recordDate: { $gte: dateRange.from, $lte: dateRange.to } }] };
  }

  /** The ids of the records to push, oldest first. */
  async select(): Promise<string[]> {
    return (await this.deps.store.listIds(this.filter)).reverse();
  }

  /** A selected record as it stands now, with its text, if the consent and dateRange still cover it. */
  async covered(recordId: string): Promise<Served | null> {
    const doc = await this.deps.store.currentById(recordId);
    if (!doc || !matchesFilter(doc, this.filter)) return null;
    return { doc, text: renderRecord(present(await this.deps.store.currentText(doc)), doc) };
  }

  /**
   * Every page pushed (or that failed to be) is in the audit trail with its
   * records and their patients, under the viewer it went to, so the patient
   * sees health-information pushes in their access history.
   */
  async pushed(
    docs: CurrentDoc[],
    transactionId: string,
    page: number,
    pageCount: number,
    ok: true | string,
  ): Promise<void> {
    const t = this.consent.terms!;
    const patients = [...new Set([patientAuditKey(t.patient), ...patientsOf(docs)])];
    await this.deps.audit.append({
      action: 'health-information.push',
      outcome: ok === true ? 'success' : 'error',
      status: ok === true ? 200 : 502,
      actor: { role: 'hiu', facility: t.hiu, subject: null },
      recordIds: docs.map((d) => d._id),
      consentId: this.consent._id,
      purpose: t.purpose,
      patients,
      reason: `transaction ${transactionId} page ${page} of ${pageCount}${ok === true ? '' : `: ${ok}`}`.slice(0, 300),
    });
  }
}

function present(text: string | undefined): string {
  if (text === undefined) throw new Error('record content missing'); // written before the version: never expected
  return text;
}
