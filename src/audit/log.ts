/**
 * The audit trail: append-only and hash-chained. Event n stores the hash of
 * event n-1; its own hash covers its content and that link, so editing,
 * removing or reordering any stored event breaks verification from there on.
 *
 * Appends need a total order without transactions: each event's _id is its
 * sequence number (unique), so two appends racing for one number cannot both
 * win; the loser moves to the next. Within a process appends are queued and
 * the chain's end is remembered; a small head document lets a new process find
 * the end without scanning the log.
 */
import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import { isDuplicateKey } from '../db/mongo.js';

export interface AuditInput {
  action: string; // e.g. record.upload, record.read, record.search, consent.notify, audit.query
  outcome: 'success' | 'refused' | 'rejected' | 'error';
  status: number;
  actor: { role: string | null; facility: string | null; subject: string | null };
  recordIds?: string[];
  consentId?: string | null;
  purpose?: string | null;
  /** The patient whose records were touched (ABHA address or number), so they can ask who saw what. */
  patients?: string[];
  reason?: string;
  requestId?: string;
}

export interface AuditEventDoc extends Required<Omit<AuditInput, 'reason' | 'requestId'>> {
  _id: number;
  time: Date;
  reason: string | null;
  requestId: string | null;
  prevHash: string;
  hash: string;
}

interface HeadDoc { _id: string; seq: number; hash: string }

export const GENESIS = '0'.repeat(64);

/** The hash of an event: SHA-256 over its canonical JSON (fixed key order) including prevHash. */
export function eventHash(e: Omit<AuditEventDoc, 'hash'>): string {
  const canonical = JSON.stringify([e._id, e.time.toISOString(), e.action, e.outcome, e.status, e.actor.role, e.actor.facility, e.actor.subject,
    e.recordIds, e.consentId, e.purpose, e.patients, e.reason, e.requestId, e.prevHash]);
  return createHash('sha256').update(canonical).digest('hex');
}

export class AuditLog {
  readonly events: Collection<AuditEventDoc>;
  private head: Collection<HeadDoc>;

  constructor(db: Db, private clock: () => Date = () => new Date()) {
    this.events = db.collection<AuditEventDoc>('audit_events');
    this.head = db.collection<HeadDoc>('audit_head');
  }

  async ensureIndexes(): Promise<void> {
    await this.events.createIndex({ patients: 1, time: 1 }, { name: 'patient_time' });
  }

  /**
   * Appends one event. Appends from this process go one at a time through a
   * queue and remember the chain's end, so an append is one insert; the
   * unique _id still guards against other processes (on a clash the end is
   * re-read from the database and the append retried). The head document is
   * a hint for start-up, written every HEAD_EVERY appends without waiting.
   */
  append(input: AuditInput): Promise<AuditEventDoc> {
    const run = this.queue.then(() => this.appendNow(input));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private queue: Promise<unknown> = Promise.resolve();
  private end?: { seq: number; hash: string };
  private static readonly HEAD_EVERY = 50;

  private async appendNow(input: AuditInput): Promise<AuditEventDoc> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      if (!this.end) {
        const head = await this.head.findOne({ _id: 'head' });
        let seq = head?.seq ?? 0, hash = head?.hash ?? GENESIS;
        for (;;) { // the head may lag behind the log: walk forward to the true end
          const next = await this.events.findOne({ _id: seq + 1 });
          if (!next) break;
          seq = next._id; hash = next.hash;
        }
        this.end = { seq, hash };
      }
      const base = {
        _id: this.end.seq + 1,
        time: this.clock(),
        action: input.action,
        outcome: input.outcome,
        status: input.status,
        actor: input.actor,
        recordIds: input.recordIds ?? [],
        consentId: input.consentId ?? null,
        purpose: input.purpose ?? null,
        patients: input.patients ?? [],
        reason: input.reason ?? null,
        requestId: input.requestId ?? null,
        prevHash: this.end.hash,
      };
      const event: AuditEventDoc = { ...base, hash: eventHash(base) };
      try {
        await this.events.insertOne(event);
      } catch (e) {
        this.end = undefined; // whatever happened, learn the end from the database again
        if (isDuplicateKey(e)) continue; // another process took this number
        throw e;
      }
      this.end = { seq: event._id, hash: event.hash };
      if (event._id % AuditLog.HEAD_EVERY === 0 || event._id === 1) {
        void this.head.updateOne({ _id: 'head', seq: { $lt: event._id } }, { $set: { seq: event._id, hash: event.hash } }, { upsert: true }).catch(() => undefined);
      }
      return event;
    }
    throw new Error('audit log: too much contention');
  }

  /** Checks the whole chain; reports the first event that does not verify. */
  async verify(): Promise<{ ok: true; count: number } | { ok: false; count: number; brokenAt: number; why: string }> {
    let expectedSeq = 1, prevHash = GENESIS, count = 0;
    for await (const e of this.events.find({}).sort({ _id: 1 })) {
      count++;
      if (e._id !== expectedSeq) return { ok: false, count, brokenAt: expectedSeq, why: `event ${expectedSeq} is missing (next is ${e._id})` };
      if (e.prevHash !== prevHash) return { ok: false, count, brokenAt: e._id, why: 'prevHash does not match the previous event' };
      const { hash, ...rest } = e;
      if (eventHash(rest) !== hash) return { ok: false, count, brokenAt: e._id, why: 'content does not match its hash (edited)' };
      prevHash = hash; expectedSeq++;
    }
    return { ok: true, count };
  }
}
