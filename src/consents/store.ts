/**
 * The consent registry. One document per consent id. A grant is insert-only,
 * so a revocation, expiry or denial seen first (even for an unknown consent)
 * is remembered and a late or repeated grant cannot bring the consent back.
 * On revocation, expiry or at dataEraseAt the terms and artefact are erased,
 * keeping only id, status and times for the audit.
 */
import { MongoServerError, type Collection, type Db } from 'mongodb';
import type { ConsentNotification } from './schema.js';
import { frequencyWindow } from './policy.js';

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
  terms?: ConsentTerms;
  /** The consent artefact as received, kept as JSON text: its keys are the sender's, and may not be storable as document keys. */
  artefact?: string;
}

interface UsageDoc { _id: string; window: string; expiresAt: Date }

export type ApplyResult = 'stored' | 'unchanged' | 'ignored-terminal';

export class ConsentStore {
  readonly consents: Collection<ConsentDoc>;
  private usage: Collection<UsageDoc>;

  constructor(db: Db) {
    this.consents = db.collection<ConsentDoc>('consents');
    this.usage = db.collection<UsageDoc>('consent_usage');
  }

  async ensureIndexes(): Promise<void> {
    await Promise.all([
      this.consents.createIndex({ status: 1, 'terms.dataEraseAt': 1 }, { name: 'status_erase_at' }),
      this.usage.createIndex({ window: 1 }, { name: 'window' }),
    ]);
  }

  get(id: string): Promise<ConsentDoc | null> {
    return this.consents.findOne({ _id: id });
  }

  async apply(n: ConsentNotification, now: Date): Promise<ApplyResult> {
    if (n.status === 'GRANTED') {
      const d = n.consentDetail!;
      const terms: ConsentTerms = {
        patient: d.patient.id,
        hip: d.hip.id,
        hiu: d.hiu?.id ?? null,
        careContexts: [...new Set(d.careContexts.map((c) => c.careContextReference))],
        hiTypes: [...new Set(d.hiTypes)],
        purpose: d.purpose.code,
        accessMode: d.permission.accessMode,
        dateFrom: new Date(d.permission.dateRange.from),
        dateTo: new Date(d.permission.dateRange.to),
        dataEraseAt: new Date(d.permission.dataEraseAt),
        frequency: { unit: d.permission.frequency.unit, value: d.permission.frequency.value, repeats: d.permission.frequency.repeats ?? null },
      };
      const doc: ConsentDoc = { _id: n.consentId, status: 'GRANTED', statusAt: now, history: [{ status: 'GRANTED', at: now }], createdAt: new Date(d.createdAt), erasedAt: null, terms, artefact: JSON.stringify(d) };
      try {
        await this.consents.insertOne(doc);
        return 'stored';
      } catch (e) {
        if (!isDuplicate(e)) throw e;
        const existing = await this.get(n.consentId);
        return existing?.status === 'GRANTED' ? 'unchanged' : 'ignored-terminal';
      }
    }
    // REVOKED, EXPIRED, DENIED: terminal, take effect at once, erase the terms.
    const r = await this.consents.updateOne(
      { _id: n.consentId, status: 'GRANTED' },
      { $set: { status: n.status, statusAt: now, erasedAt: now }, $unset: { terms: '', artefact: '' }, $push: { history: { status: n.status, at: now } } },
    );
    if (r.modifiedCount === 1) return 'stored';
    try {
      await this.consents.insertOne({ _id: n.consentId, status: n.status, statusAt: now, history: [{ status: n.status, at: now }], createdAt: null, erasedAt: now });
      return 'stored';
    } catch (e) {
      if (!isDuplicate(e)) throw e;
      return 'unchanged'; // already terminal (or granted and revoked concurrently: the update above wins next time)
    }
  }

  /** Expires consents whose dataEraseAt has come, erasing their terms. Returns how many. */
  async sweep(now: Date): Promise<number> {
    const due = await this.consents.find({ status: 'GRANTED', 'terms.dataEraseAt': { $lte: now } }, { projection: { _id: 1 } }).toArray();
    let n = 0;
    for (const { _id } of due) {
      const r = await this.consents.updateOne(
        { _id, status: 'GRANTED' },
        { $set: { status: 'EXPIRED', statusAt: now, erasedAt: now }, $unset: { terms: '', artefact: '' }, $push: { history: { status: 'EXPIRED', at: now } } },
      );
      n += r.modifiedCount;
    }
    await this.usage.deleteMany({ expiresAt: { $lte: now } });
    return n;
  }

  /**
   * Counts one data pull against the consent's frequency (value per unit) and
   * says whether it is within it; when not, when the window ends. Each pull
   * claims a numbered slot by inserting it (unique _id), which is atomic on
   * MongoDB and on FerretDB alike; a count-and-increment would not be.
   */
  async countPull(consent: ConsentDoc, now: Date): Promise<{ ok: true } | { ok: false; retryAfterSec: number }> {
    const f = consent.terms!.frequency;
    const w = frequencyWindow(f.unit, now);
    const window = `${consent._id}|${w.start.toISOString()}`;
    let slot = (await this.usage.countDocuments({ window })) + 1;
    for (; slot <= f.value; slot++) {
      try {
        await this.usage.insertOne({ _id: `${window}|${slot}`, window, expiresAt: w.end });
        return { ok: true };
      } catch (e) { if (!isDuplicate(e)) throw e; }
    }
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((w.end.getTime() - now.getTime()) / 1000)) };
  }
}

const isDuplicate = (e: unknown) => e instanceof MongoServerError && e.code === 11000;
