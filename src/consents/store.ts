/**
 * The consent registry. One document per consent id. A grant is insert-only,
 * so a revocation, expiry or denial seen first (even for an unknown consent)
 * is remembered and a late or repeated grant cannot bring the consent back.
 * On revocation, expiry or at dataEraseAt the terms and artefact are erased,
 * keeping only id, status and times for the audit, with the patient's key and
 * the HIU's id (so the HIU can still read its ended consent).
 */
import { type CounterDoc, countOne } from '../db/counter.js';
import type { Collection, Db, Filter } from 'mongodb';
import { isDuplicateKey as isDuplicate } from '../db/mongo.js';
import type { ConsentNotification } from './schema.js';
import { frequencyWindow, patientAuditKey } from './policy.js';
import { abdmInstant } from '../fhir/datetime.js';
import { KeyedLock } from '../db/keyed-lock.js';
import { type Keyset, afterKeyset, pageOf } from '../http/keyset.js';

export type ConsentStatus = 'GRANTED' | 'REVOKED' | 'EXPIRED' | 'DENIED';

export interface ConsentTerms {
  patient: string;
  hip: string;
  hiu: string | null;
  careContexts: string[];
  hiTypes: string[];
  purpose: string;
  accessMode: string;
  dateFrom: Date;
  dateTo: Date;
  dataEraseAt: Date;
  frequency: { unit: string; value: number; repeats: number | null };
}

export interface ConsentDoc {
  _id: string;
  status: ConsentStatus;
  statusAt: Date;
  history: { status: ConsentStatus; at: Date }[];
  createdAt: Date | null;
  erasedAt: Date | null;
  /**
   * The consent's patient as the audit trail names them (patientAuditKey), kept
   * after the terms are erased so that refused attempts under an ended consent
   * still reach the patient's access history. Null when the consent was never
   * granted here.
   */
  patient?: string | null;
  /**
   * The consent's HIU (`hiu.id`), kept after the terms are erased so that it can still read its ended consent. Null
   * when the grant named none or the consent was never granted here; absent in documents stored before it was kept
   * (then the terms' `hiu`, while they last: hiuOf).
   */
  hiu?: string | null;
  terms?: ConsentTerms;
  /**
   * The consent artefact as received, kept as JSON text: its keys are the sender's, and may not be storable as document
   * keys.
   */
  artefact?: string;
}

export type ApplyResult = 'stored' | 'unchanged' | 'ignored-terminal';

/** What is left of a consent's frequency in the window containing `now` (ConsentStore.usage). */
export interface ConsentUsage {
  unit: string;
  value: number;
  /** Pulls counted in this window, at most `value` (a pull refused past the limit is counted, not shown). */
  used: number;
  remaining: number;
  windowStart: Date;
  windowEnd: Date;
}

/** The consent's HIU: kept top-level from its grant on; older documents have it only in their terms. */
export function hiuOf(consent: ConsentDoc): string | null {
  return consent.hiu ?? consent.terms?.hiu ?? null;
}

/**
 * The consent's status as access sees it: EXPIRED also for a consent still GRANTED whose dataEraseAt has come (the
 * sweep, every CONSENT_SWEEP_MS, has not ended it yet; consentUsable already refuses it).
 */
export function effectiveStatus(consent: ConsentDoc, now: Date): ConsentStatus {
  const t = consent.terms;
  return consent.status === 'GRANTED' && t && now.getTime() >= t.dataEraseAt.getTime() ? 'EXPIRED' : consent.status;
}

/** The counter document of one consent's pulls in the window starting at `start` (db/counter.ts). */
const counterId = (consentId: string, start: Date) => `${consentId}|${start.toISOString()}`;

export class ConsentStore {
  readonly consents: Collection<ConsentDoc>;
  private counters: Collection<CounterDoc>;
  private counting = new KeyedLock();
  private applying = new KeyedLock();

  constructor(db: Db) {
    this.consents = db.collection<ConsentDoc>('consents');
    this.counters = db.collection<CounterDoc>('consent_usage');
  }

  async ensureIndexes(): Promise<void> {
    await Promise.all([
      this.consents.createIndex({ status: 1, 'terms.dataEraseAt': 1 }, { name: 'status_erase_at' }),
      // An ABHA status notification ends a patient's consents (abdm/patient-status.ts).
      this.consents.createIndex({ patient: 1, status: 1 }, { name: 'patient_status' }),
      // The consent list (GET /consents): a viewer's consents, and all of them, newest status first.
      this.consents.createIndex({ hiu: 1, statusAt: -1, _id: -1 }, { name: 'hiu_status_at' }),
      this.consents.createIndex({ statusAt: -1, _id: -1 }, { name: 'status_at' }),
      this.counters.createIndex({ expiresAt: 1 }, { name: 'expires_at' }),
    ]);
  }

  get(id: string): Promise<ConsentDoc | null> {
    return this.consents.findOne({ _id: id });
  }

  /**
   * Applies one notification. Terminal statuses win whatever the arrival
   * order, on every engine and with several processes, because every write is
   * either an insert (the unique _id decides) or an update conditioned on
   * status GRANTED:
   * - GRANTED inserts the consent; if the id exists (granted or ended), nothing changes.
   * - REVOKED / EXPIRED / DENIED first insert an ended consent (no terms): if
   *   that wins, a grant arriving later finds the id taken and is ignored. If
   *   the id exists, a GRANTED consent is moved to the terminal status and its
   *   terms and artefact erased (conditioned on status GRANTED); an ended one
   *   stays as it is.
   * On FerretDB, where a conditional update is a read then a write, the steps
   * for one consent id are also serialised in this process (db/keyed-lock.ts);
   * the only writes that race there set the same terminal fields.
   */
  async apply(n: ConsentNotification, now: Date): Promise<ApplyResult> {
    return this.applying.run(n.consentId, () =>
      n.status === 'GRANTED'
        ? this.grant(n, now)
        : this.end(n.consentId, n.status as Exclude<ConsentStatus, 'GRANTED'>, now),
    );
  }

  private async grant(n: ConsentNotification, now: Date): Promise<ApplyResult> {
    const d = n.consentDetail!;
    const terms: ConsentTerms = {
      patient: d.patient.id,
      hip: d.hip.id,
      hiu: d.hiu?.id ?? null,
      careContexts: [...new Set(d.careContexts.map((c) => c.careContextReference))],
      hiTypes: [...new Set(d.hiTypes)],
      purpose: d.purpose.code,
      accessMode: d.permission.accessMode,
      dateFrom: abdmInstant(d.permission.dateRange.from, 'start'),
      dateTo: abdmInstant(d.permission.dateRange.to, 'end'),
      dataEraseAt: abdmInstant(d.permission.dataEraseAt, 'start'),
      frequency: {
        unit: d.permission.frequency.unit,
        value: d.permission.frequency.value,
        repeats: d.permission.frequency.repeats ?? null,
      },
    };
    const doc: ConsentDoc = {
      _id: n.consentId,
      status: 'GRANTED',
      statusAt: now,
      history: [{ status: 'GRANTED', at: now }],
      createdAt: abdmInstant(d.createdAt),
      erasedAt: null,
      patient: patientAuditKey(d.patient.id),
      hiu: d.hiu?.id ?? null,
      terms,
      artefact: JSON.stringify(d),
    };
    try {
      await this.consents.insertOne(doc);
      return 'stored';
    } catch (e) {
      if (!isDuplicate(e)) throw e;
      const existing = await this.get(n.consentId);
      return existing?.status === 'GRANTED' ? 'unchanged' : 'ignored-terminal';
    }
  }

  private async end(id: string, status: Exclude<ConsentStatus, 'GRANTED'>, now: Date): Promise<ApplyResult> {
    try {
      await this.consents.insertOne({
        _id: id,
        status,
        statusAt: now,
        history: [{ status, at: now }],
        createdAt: null,
        erasedAt: now,
        patient: null,
        hiu: null,
      });
      return 'stored';
    } catch (e) {
      if (!isDuplicate(e)) throw e;
    } // the consent exists: granted (end it below) or already ended
    return (await this.endGranted(id, status, now)) ? 'stored' : 'unchanged';
  }

  /** Moves a GRANTED consent to a terminal status, erasing its terms (conditioned on GRANTED). True when it did. */
  private async endGranted(id: string, status: Exclude<ConsentStatus, 'GRANTED'>, now: Date): Promise<boolean> {
    // A consent granted before the HIU was kept beside the terms keeps it now, so its HIU still sees it ended. The
    // value read is the grant's own, which never changes, so the read racing another process's write is harmless.
    const granted = await this.consents.findOne(
      { _id: id, status: 'GRANTED' },
      { projection: { hiu: 1, 'terms.hiu': 1 } },
    );
    if (!granted) return false;
    const r = await this.consents.updateOne(
      { _id: id, status: 'GRANTED' },
      {
        $set: { status, statusAt: now, erasedAt: now, hiu: hiuOf(granted as ConsentDoc) },
        $unset: { terms: '', artefact: '' },
        $push: { history: { status, at: now } },
      },
    );
    return r.modifiedCount === 1;
  }

  /**
   * Ends every consent of one patient that is still GRANTED, as a REVOKED notification ends one (endGranted: a
   * terminal status, terms and artefact erased, conditioned on GRANTED so it holds across processes). `patient` is
   * the key ended consents keep (patientAuditKey). With `forget`, the patient key is also taken off every ended
   * consent of theirs (ABHA deletion), leaving id, status and times. Returns how many were ended and forgotten.
   */
  async endForPatient(
    patient: string,
    status: Exclude<ConsentStatus, 'GRANTED'>,
    now: Date,
    opts: { forget?: boolean } = {},
  ): Promise<{ ended: number; forgotten: number }> {
    const granted = await this.consents.find({ patient, status: 'GRANTED' }, { projection: { _id: 1 } }).toArray();
    let ended = 0;
    for (const { _id } of granted) {
      if (await this.applying.run(_id, () => this.endGranted(_id, status, now))) ended++;
    }
    let forgotten = 0;
    if (opts.forget) {
      // Only ended consents: a GRANTED consent keeps its patient (a grant that raced this stays whole and usable).
      const r = await this.consents.updateMany(
        { patient, status: { $in: ['REVOKED', 'EXPIRED', 'DENIED'] } },
        { $set: { patient: null } },
      );
      forgotten = r.modifiedCount;
    }
    return { ended, forgotten };
  }

  /** Expires consents whose dataEraseAt has come, erasing their terms. Returns how many. */
  async sweep(now: Date): Promise<number> {
    const due = await this.consents
      .find({ status: 'GRANTED', 'terms.dataEraseAt': { $lte: now } }, { projection: { _id: 1 } })
      .toArray();
    let n = 0;
    for (const { _id } of due) {
      if (await this.applying.run(_id, () => this.endGranted(_id, 'EXPIRED', now))) n++;
    }
    await this.counters.deleteMany({ expiresAt: { $lte: now } });
    return n;
  }

  /**
   * Counts one data pull against the consent's frequency (value per unit) and
   * says whether it is within it; when not, when the window ends. One counter
   * document per consent and window (db/counter.ts).
   */
  async countPull(consent: ConsentDoc, now: Date): Promise<{ ok: true } | { ok: false; retryAfterSec: number }> {
    const f = consent.terms!.frequency;
    const w = frequencyWindow(f.unit, now);
    const count = await countOne(this.counting, this.counters, counterId(consent._id, w.start), w.end);
    if (count <= f.value) return { ok: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((w.end.getTime() - now.getTime()) / 1000)) };
  }

  /**
   * What is left of each consent's frequency now, read from the counters countPull writes (nothing is counted), all in
   * one query: by consent id, for the consents with terms (an ended one, or one never granted here, has none).
   */
  async usages(consents: ConsentDoc[], now: Date): Promise<Map<string, ConsentUsage>> {
    const live = consents.flatMap((c) => {
      if (!c.terms) return [];
      const w = frequencyWindow(c.terms.frequency.unit, now);
      return [{ id: c._id, frequency: c.terms.frequency, w, counter: counterId(c._id, w.start) }];
    });
    const out = new Map<string, ConsentUsage>();
    if (live.length === 0) return out;
    const counts = new Map(
      (await this.counters.find({ _id: { $in: live.map((l) => l.counter) } }).toArray()).map((d) => [d._id, d.count]),
    );
    for (const { id, frequency, w, counter } of live) {
      const used = Math.min(counts.get(counter) ?? 0, frequency.value);
      out.set(id, {
        unit: frequency.unit,
        value: frequency.value,
        used,
        remaining: frequency.value - used,
        windowStart: w.start,
        windowEnd: w.end,
      });
    }
    return out;
  }

  /**
   * A page of consents, newest status first (statusAt, then id, descending), after `after` (http/keyset.ts):
   * `hiu` those granted to that HIU (the top-level hiu, or the terms' in documents stored before it was kept),
   * `statuses` those with one of these stored statuses, `patient` those of that patient (patientAuditKey).
   */
  async list(q: {
    hiu?: string;
    statuses?: ConsentStatus[];
    patient?: string;
    count: number;
    after?: Keyset;
  }): Promise<{ consents: ConsentDoc[]; next?: string }> {
    const and: Filter<ConsentDoc>[] = [];
    if (q.hiu !== undefined) and.push({ $or: [{ hiu: q.hiu }, { hiu: { $exists: false }, 'terms.hiu': q.hiu }] });
    if (q.statuses?.length) and.push({ status: { $in: q.statuses } });
    if (q.patient !== undefined) and.push({ patient: q.patient });
    if (q.after) and.push(afterKeyset<ConsentDoc>('statusAt', q.after));
    const rows = await this.consents
      .find(and.length ? { $and: and } : {})
      .sort({ statusAt: -1, _id: -1 })
      .limit(q.count + 1)
      .toArray();
    const { page, next } = pageOf(rows, q.count, (c) => ({ at: c.statusAt, id: c._id }));
    return { consents: page, ...(next ? { next } : {}) };
  }
}
