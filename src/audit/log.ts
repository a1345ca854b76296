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
import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
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

interface HeadDoc {
  _id: string;
  seq: number;
  hash: string;
}

interface Pending {
  input: AuditInput;
  resolve: (e: AuditEventDoc) => void;
  reject: (e: unknown) => void;
}

/** The index of the first write that failed in an ordered bulk insert, when the error says. */
function firstFailedIndex(e: MongoBulkWriteError): number | undefined {
  const errors = Array.isArray(e.writeErrors) ? e.writeErrors : [e.writeErrors];
  const indexes = errors.map((w) => w?.index).filter((i): i is number => typeof i === 'number');
  return indexes.length ? Math.min(...indexes) : undefined;
}

export const GENESIS = '0'.repeat(64);

/** The hash of an event: SHA-256 over its canonical JSON (fixed key order) including prevHash. */
export function eventHash(e: Omit<AuditEventDoc, 'hash'>): string {
  const canonical = JSON.stringify([
    e._id,
    e.time.toISOString(),
    e.action,
    e.outcome,
    e.status,
    e.actor.role,
    e.actor.facility,
    e.actor.subject,
    e.recordIds,
    e.consentId,
    e.purpose,
    e.patients,
    e.reason,
    e.requestId,
    e.prevHash,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

export class AuditLog {
  readonly events: Collection<AuditEventDoc>;
  private head: Collection<HeadDoc>;

  constructor(
    db: Db,
    private clock: () => Date = () => new Date(),
  ) {
    this.events = db.collection<AuditEventDoc>('audit_events');
    this.head = db.collection<HeadDoc>('audit_head');
  }

  async ensureIndexes(): Promise<void> {
    await this.events.createIndex({ patients: 1, time: 1 }, { name: 'patient_time' });
  }

  /**
   * Appends one event; resolves once it is stored. Appends from this process
   * are group-committed: while one batch is being written, new events wait,
   * and the next batch takes all of them (up to BATCH_MAX) as one ordered
   * insertMany, chained in memory from the remembered end. So an append costs
   * a share of one insert, and the order of the chain is the order of append
   * calls. The unique _id still guards against other processes: on a clash
   * the events stored before it stand, the end is re-read from the database,
   * and the rest are chained again from there. The head document is a hint
   * for start-up, written every HEAD_EVERY events without waiting.
   */
  append(input: AuditInput): Promise<AuditEventDoc> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private pending: Pending[] = [];
  private writing = false;
  private end?: { seq: number; hash: string };
  private static readonly HEAD_EVERY = 50;
  private static readonly BATCH_MAX = 500;

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, AuditLog.BATCH_MAX);
        try {
          await this.writeBatch(batch);
        } catch (e) {
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** Stores `batch` in order; resolves each append as its event is stored (retries after other processes' clashes). */
  private async writeBatch(batch: Pending[]): Promise<void> {
    let rest = batch;
    for (let attempt = 0; rest.length && attempt < 1000; attempt++) {
      const end = this.end ?? (this.end = await this.readEnd());
      const time = this.clock();
      let prev = end;
      const events = rest.map(({ input }) => {
        const base = {
          _id: prev.seq + 1,
          time,
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
          prevHash: prev.hash,
        };
        const event: AuditEventDoc = { ...base, hash: eventHash(base) };
        prev = { seq: event._id, hash: event.hash };
        return event;
      });
      let stored = events.length;
      try {
        await this.events.insertMany(events, { ordered: true });
      } catch (e) {
        this.end = undefined; // whatever happened, learn the end from the database again
        const failedAt = e instanceof MongoBulkWriteError ? firstFailedIndex(e) : 0;
        if (!isDuplicateKey(e) || failedAt === undefined) throw e;
        stored = failedAt; // an ordered insert stops at the first failure: the events before it are stored
      }
      for (let i = 0; i < stored; i++) rest[i].resolve(events[i]);
      if (stored === events.length) {
        this.end = prev;
        this.writeHeadHint(events);
      }
      rest = rest.slice(stored); // another process took the next number: chain the rest again from the true end
    }
    if (rest.length) throw new Error('audit log: too much contention');
  }

  private writeHeadHint(events: AuditEventDoc[]) {
    const last = events[events.length - 1];
    if (!events.some((e) => e._id % AuditLog.HEAD_EVERY === 0 || e._id === 1)) return;
    void this.head
      .updateOne(
        { _id: 'head', seq: { $lt: last._id } },
        { $set: { seq: last._id, hash: last.hash } },
        { upsert: true },
      )
      .catch(() => undefined);
  }

  /** The chain's end: from the head hint, then forward over any events stored after it. */
  private async readEnd(): Promise<{ seq: number; hash: string }> {
    const head = await this.head.findOne({ _id: 'head' });
    let seq = head?.seq ?? 0,
      hash = head?.hash ?? GENESIS;
    for (;;) {
      // the head may lag behind the log: walk forward to the true end
      const next = await this.events.findOne({ _id: seq + 1 });
      if (!next) return { seq, hash };
      seq = next._id;
      hash = next.hash;
    }
  }

  /** Checks the whole chain; reports the first event that does not verify. */
  async verify(): Promise<{ ok: true; count: number } | { ok: false; count: number; brokenAt: number; why: string }> {
    let expectedSeq = 1,
      prevHash = GENESIS,
      count = 0;
    for await (const e of this.events.find({}).sort({ _id: 1 })) {
      count++;
      if (e._id !== expectedSeq)
        return { ok: false, count, brokenAt: expectedSeq, why: `event ${expectedSeq} is missing (next is ${e._id})` };
      if (e.prevHash !== prevHash)
        return { ok: false, count, brokenAt: e._id, why: 'prevHash does not match the previous event' };
      const { hash, ...rest } = e;
      if (eventHash(rest) !== hash)
        return { ok: false, count, brokenAt: e._id, why: 'content does not match its hash (edited)' };
      prevHash = hash;
      expectedSeq++;
    }
    return { ok: true, count };
  }
}
