/**
 * What linking keeps: discovery records (what a discovery offered, insert-only
 * per provider and transaction), link requests (the one-time code's salted
 * hash, its expiry and attempts), and the link/init counters, plus the care
 * contexts they link. Every write that must hold across server processes is
 * an insert (the unique _id decides) or a guarded write (db/engine.ts): the
 * attempt counter, each status change, and each care context's link. What an
 * ABHA address leaves here is forgotten when it is deactivated or deleted
 * (forgetPatient, unlinkPatient; abdm/patient-status.ts).
 */
import { type CounterDoc, countOne } from '../db/counter.js';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { isDuplicateKey } from '../db/mongo.js';
import { KeyedLock } from '../db/keyed-lock.js';
import { type Engine, guardedFindOneAndUpdate, guardedUpdate } from '../db/engine.js';
import type { Collections } from '../records/model.js';
import { codeMatches } from './link-codes.js';

export interface LinkRequestDoc {
  _id: string; // linkRefNumber
  transactionId: string;
  provider: string;
  abhaAddress: string;
  careContextIds: string[];
  salt: string;
  otpHash: string;
  expiresAt: Date;
  attempts: number;
  status: 'PENDING' | 'LINKED' | 'FAILED';
  /** Why a request failed other than by its code (e.g. the code could not be delivered). */
  failure?: string;
  /** The patient reference the care contexts are linked under (what discovery returned); absent in older requests. */
  patientReference?: string;
  createdAt: Date;
}

/** What a discovery offered, keyed by provider and transaction; written once (insert-only). */
export interface DiscoveryDoc {
  _id: string; // `${provider}|${transactionId}`
  provider: string;
  transactionId: string;
  /** patient.id of the discovery request: the ABHA address, lower case. */
  patientId: string;
  /** The patient referenceNumber on-discover returned. */
  patientReference: string;
  /** care_contexts _ids offered, and their referenceNumbers. */
  careContextIds: string[];
  referenceNumbers: string[];
  createdAt: Date;
  expiresAt: Date;
}

const LINK_REQUESTS = 'link_requests';
const DISCOVERIES = 'link_discoveries';
const INIT_USAGE = 'link_init_usage';
const HOUR_MS = 3_600_000;

/** Indexes for the linking collections: expiry of discovery records and link/init counters (TTL where supported). */
export async function ensureLinkingIndexes(db: Db): Promise<void> {
  for (const name of [DISCOVERIES, INIT_USAGE]) {
    try {
      await db.collection(name).createIndex({ expiresAt: 1 }, { name: 'expires_at', expireAfterSeconds: 0 });
    } catch {
      await db.collection(name).createIndex({ expiresAt: 1 }, { name: 'expires_at' });
    }
  }
}

export type ConfirmOutcome = { ok: true; link: LinkRequestDoc } | { ok: false; why: string; link?: LinkRequestDoc };

export class LinkStore {
  readonly links: Collection<LinkRequestDoc>;
  readonly discoveries: Collection<DiscoveryDoc>;
  private initUsage: Collection<CounterDoc>;
  private counting = new KeyedLock();
  private swept = 0;

  constructor(
    db: Db,
    private records: Collections,
    private engine: Engine,
    private config: Config,
    private log: Log,
  ) {
    this.links = db.collection<LinkRequestDoc>(LINK_REQUESTS);
    this.discoveries = db.collection<DiscoveryDoc>(DISCOVERIES);
    this.initUsage = db.collection<CounterDoc>(INIT_USAGE);
  }

  /**
   * Removes expired discovery records and counters, at most once a minute per
   * process (MongoDB's TTL index does it too; FerretDB keeps the index but not
   * the expiry).
   */
  sweepExpired(now: Date): void {
    if (now.getTime() - this.swept < 60_000) return;
    this.swept = now.getTime();
    void Promise.all([
      this.discoveries.deleteMany({ expiresAt: { $lte: now } }),
      this.initUsage.deleteMany({ expiresAt: { $lte: now } }),
    ]).catch((e) => this.log.warn({ err: (e as Error).message.slice(0, 200) }, 'linking sweep failed; will retry'));
  }

  /**
   * Counts one link/init for the patient at the provider in the current clock
   * hour (db/counter.ts: shared by every server process on MongoDB).
   */
  async countInit(
    hip: string,
    address: string,
    now: Date,
  ): Promise<{ ok: true } | { ok: false; retryAfterSec: number }> {
    this.sweepExpired(now);
    const start = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS;
    const end = new Date(start + HOUR_MS);
    const _id = `${hip}|${address}|${new Date(start).toISOString()}`;
    const count = await countOne(this.counting, this.initUsage, _id, end);
    if (count <= this.config.LINK_INIT_PER_PATIENT_PER_HOUR) return { ok: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000)) };
  }

  /** Records what a discovery offered; when the transaction already has a record, that first one (insert-only). */
  async recordDiscovery(record: DiscoveryDoc): Promise<{ first: DiscoveryDoc | null } | { stored: true }> {
    this.sweepExpired(record.createdAt);
    try {
      await this.discoveries.insertOne(record);
      return { stored: true };
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      return { first: await this.discoveries.findOne({ _id: record._id }) };
    }
  }

  discovery(hip: string, transactionId: string): Promise<DiscoveryDoc | null> {
    return this.discoveries.findOne({ _id: `${hip}|${transactionId}` });
  }

  async insertLink(link: LinkRequestDoc): Promise<void> {
    await this.links.insertOne(link);
  }

  /** Ends a pending link request as FAILED (guarded on PENDING). */
  async fail(id: string, failure?: string): Promise<boolean> {
    return guardedUpdate(
      this.engine,
      this.links,
      id,
      { status: 'PENDING' },
      { $set: { status: 'FAILED', ...(failure ? { failure } : {}) } },
    );
  }

  /**
   * Checks a confirmation's code. Each attempt is counted first, with a
   * guarded increment (only while PENDING and under LINK_OTP_MAX_ATTEMPTS),
   * and only a counted attempt has its code checked, so the limit holds
   * across every server process; LINKED is guarded on PENDING, and each care
   * context is linked only if not linked yet.
   */
  async confirm(linkRefNumber: string, token: string, now: Date, provider?: string): Promise<ConfirmOutcome> {
    const max = this.config.LINK_OTP_MAX_ATTEMPTS;
    const found = await this.links.findOne({ _id: linkRefNumber });
    // A confirmation addressed to another provider (X-HIP-ID) is not this request's: nothing is counted.
    if (!found || (provider !== undefined && found.provider !== provider))
      return { ok: false, why: 'unknown link reference' };
    if (found.status !== 'PENDING') return { ok: false, why: `link request is ${found.status}`, link: found };
    if (now >= found.expiresAt) {
      await this.fail(found._id);
      return { ok: false, why: 'one-time code expired', link: found };
    }
    const link = await guardedFindOneAndUpdate(
      this.engine,
      this.links,
      found._id,
      { status: 'PENDING', attempts: { $lt: max } },
      { $inc: { attempts: 1 } },
    );
    if (!link) {
      const latest = await this.links.findOne({ _id: found._id });
      return {
        ok: false,
        why:
          !latest || latest.status === 'PENDING'
            ? 'too many wrong codes; start linking again'
            : `link request is ${latest.status}`,
        link: found,
      };
    }
    if (!codeMatches(link, token)) {
      const failed = link.attempts >= max;
      if (failed) await this.fail(link._id);
      return { ok: false, why: failed ? 'too many wrong codes; start linking again' : 'wrong one-time code', link };
    }
    // The right code, within the limit: LINKED only from PENDING (an expiry or a failure recorded meanwhile wins).
    if (
      !(await guardedUpdate(this.engine, this.links, link._id, { status: 'PENDING' }, { $set: { status: 'LINKED' } }))
    )
      return { ok: false, why: 'link request is no longer pending', link };
    await Promise.all(
      link.careContextIds.map((ccId) =>
        guardedUpdate(
          this.engine,
          this.records.careContexts,
          ccId,
          { linked: { $exists: false } },
          { $set: { linked: { abhaAddress: link.abhaAddress, at: now, linkRefNumber: link._id } } },
        ),
      ),
    );
    return { ok: true, link };
  }

  /**
   * Takes back a link just made (LINKED → FAILED, guarded on LINKED; each care context unlinked only if this request
   * linked it): the patient's ABHA address was deactivated or deleted while it was being confirmed.
   */
  async undo(link: LinkRequestDoc, failure: string): Promise<void> {
    await guardedUpdate(
      this.engine,
      this.links,
      link._id,
      { status: 'LINKED' },
      { $set: { status: 'FAILED', failure } },
    );
    await Promise.all(
      link.careContextIds.map((ccId) =>
        guardedUpdate(
          this.engine,
          this.records.careContexts,
          ccId,
          { 'linked.linkRefNumber': link._id },
          { $unset: { linked: '' } },
        ),
      ),
    );
  }

  /**
   * Forgets what linking keeps of one ABHA address (lower case; abdm/patient-status.ts): its link requests (every
   * status) and the discovery records it asked for or was returned as the reference of; with `counters`, also its
   * link/init counters. The care contexts are unlinkPatient's.
   */
  async forgetPatient(
    address: string,
    opts: { counters?: boolean } = {},
  ): Promise<{ linkRequests: number; discoveries: number; counters: number }> {
    const [links, discoveries, counters] = await Promise.all([
      this.links.deleteMany({ abhaAddress: address }),
      this.discoveries.deleteMany({ $or: [{ patientId: address }, { patientReference: address }] }),
      opts.counters
        ? // Counter ids are `${hip}|${address}|${hour}` (countInit); a facility id has no '|'.
          this.initUsage.deleteMany({ _id: { $regex: `^[^|]*\\|${escapeRegex(address)}\\|` } })
        : Promise.resolve({ deletedCount: 0 }),
    ]);
    return { linkRequests: links.deletedCount, discoveries: discoveries.deletedCount, counters: counters.deletedCount };
  }

  /**
   * Takes one ABHA address off the care contexts: unlinks those linked to it, and sets abhaAddress null where it is
   * their stored address (discovery by it then finds nothing; an ABHA number they carry still finds them). Each
   * write is guarded on the address still being there.
   */
  async unlinkPatient(address: string): Promise<{ unlinked: number; unkeyed: number; careContextIds: string[] }> {
    const docs = await this.records.careContexts
      .find(
        { $or: [{ abhaAddress: address }, { 'linked.abhaAddress': address }] },
        { projection: { _id: 1, abhaAddress: 1, linked: 1 } },
      )
      .toArray();
    const results = await Promise.all(
      docs.map(async (d) => ({
        unlinked:
          d.linked?.abhaAddress === address &&
          (await guardedUpdate(
            this.engine,
            this.records.careContexts,
            d._id,
            { 'linked.abhaAddress': address },
            { $unset: { linked: '' } },
          )),
        unkeyed:
          d.abhaAddress === address &&
          (await guardedUpdate(
            this.engine,
            this.records.careContexts,
            d._id,
            { abhaAddress: address },
            { $set: { abhaAddress: null } },
          )),
      })),
    );
    return {
      unlinked: results.filter((r) => r.unlinked).length,
      unkeyed: results.filter((r) => r.unkeyed).length,
      careContextIds: docs.map((d) => d._id),
    };
  }
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
