/**
 * What linking keeps: discovery records (what a discovery offered, insert-only
 * per provider and transaction), link requests (the one-time code's salted
 * hash, its expiry and attempts), the link/init messages (one per provider and
 * message id: what the message asked and what it was answered), and the
 * link/init counters, plus the care contexts they link. Every write that must
 * hold across server processes is an insert (the unique _id decides) or a
 * guarded write (db/engine.ts): the claim of a link/init message, its
 * decision, the attempt counter, each status change, and each care context's
 * link. What an ABHA address leaves here is forgotten when it is deactivated
 * or deleted (forgetPatient, unlinkPatient; abdm/patient-status.ts).
 *
 * The gateway retries a message under its id, so both link/init and
 * link/confirm answer a repeat as they answered the first:
 *
 * - link/init: the first delivery of a message claims it by inserting its
 *   InitMessageDoc (`${provider}|${messageId}`); a second delivery, in this or
 *   another process, finds the claim (or loses the insert) and creates
 *   nothing. The claim names the link request the message creates before it
 *   exists; the decision (`link` once that request is written, or `refused`
 *   with the error) is a guarded write on the claim, so one decision stands.
 *   A claim its owner gave up (`released`, on a failure before deciding) or
 *   left undecided for CLAIM_STALE_MS (a process that died) is taken over by
 *   a guarded write, and an owner that lost its claim sends nothing.
 * - link/confirm: a LINKED request answers a confirmation with its code again
 *   as a repeat (the same message that confirmed it, at any time; another
 *   message, while the code is unexpired), and nothing is written.
 */
import { type CounterDoc, countOne } from '../db/counter.js';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { insertFirst, regexLiteral } from '../db/mongo.js';
import { KeyedLock } from '../db/keyed-lock.js';
import { type Engine, guardedFindOneAndUpdate, guardedUpdate } from '../db/engine.js';
import type { Collections } from '../records/model.js';
import { codeMatches } from './link-codes.js';
import { createHash } from 'node:crypto';

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
  /** The id of the link/init message that created it (REQUEST-ID, or the v0.5 requestId); absent in older requests. */
  messageId?: string;
  /** When the one-time code was handed to the notifier (the gateway was then told the reference). */
  deliveredAt?: Date;
  /** The id of the link/confirm message that linked it, and when; absent in older requests. */
  confirmedBy?: string;
  linkedAt?: Date;
  /** When every care context of the request had been linked (or found linked already) after LINKED. */
  careContextsLinkedAt?: Date;
  createdAt: Date;
}

/**
 * One link/init message, per provider and message id: claimed by inserting it (the unique _id decides which
 * delivery of the message is the first), then decided once.
 */
export interface InitMessageDoc {
  _id: string; // `${provider}|${messageId}`
  provider: string;
  messageId: string;
  /** The ABHA address the message named (lower case): forgotten with it. */
  patient: string;
  /** A hash of what the message asked (initFingerprint): a repeat asks the same. */
  fingerprint: string;
  /** The link request this message creates (its _id), if it creates one. */
  linkRefNumber: string;
  /** link: the link request was written; refused: answered with `refusal`; released: given up before deciding. */
  decided?: 'link' | 'refused' | 'released';
  refusal?: { reason: string; message: string };
  createdAt: Date;
  expiresAt: Date;
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
const INIT_MESSAGES = 'link_init_messages';
const HOUR_MS = 3_600_000;
/** How long a link/init message is remembered: its retries within that are repeats. */
const INIT_MESSAGE_TTL_MS = 24 * HOUR_MS;
/** An undecided claim this old was left by a process that stopped: a repeat may take it over. */
export const CLAIM_STALE_MS = 60_000;
/** How long a repeated confirmation waits for the first to finish linking its care contexts. */
const LINKING_WAIT_MS = 5_000;

/**
 * Indexes for the linking collections: expiry of discovery records, link/init messages and counters (TTL where
 * supported); link requests by the message that created them, link/init messages by patient.
 */
export async function ensureLinkingIndexes(db: Db): Promise<void> {
  for (const name of [DISCOVERIES, INIT_USAGE, INIT_MESSAGES]) {
    try {
      await db.collection(name).createIndex({ expiresAt: 1 }, { name: 'expires_at', expireAfterSeconds: 0 });
    } catch {
      await db.collection(name).createIndex({ expiresAt: 1 }, { name: 'expires_at' });
    }
  }
  await db.collection(LINK_REQUESTS).createIndex({ provider: 1, messageId: 1 }, { name: 'provider_message' });
  await db.collection(INIT_MESSAGES).createIndex({ patient: 1 }, { name: 'patient' });
}

/** What a link/init message asked, as a hash: the same message delivered again has the same. */
export function initFingerprint(parts: {
  dialect: string;
  transactionId: string;
  address: string;
  references: string[];
  wanted: string[];
}): string {
  const sorted = (xs: string[]) => [...new Set(xs)].sort();
  const text = JSON.stringify([
    parts.dialect,
    parts.transactionId,
    parts.address,
    sorted(parts.references),
    sorted(parts.wanted),
  ]);
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * Whether a link/init message's claim may be taken over by another delivery of it: expired (the message is new
 * again), released by its owner, or undecided for CLAIM_STALE_MS.
 */
export const claimable = (m: InitMessageDoc, now: Date): boolean =>
  now >= m.expiresAt ||
  m.decided === 'released' ||
  (!m.decided && now.getTime() - m.createdAt.getTime() >= CLAIM_STALE_MS);

/** `repeat`: a confirmation of a request already LINKED (confirmAgain), for which nothing was written. */
export type ConfirmOutcome =
  { ok: true; link: LinkRequestDoc; repeat?: boolean } | { ok: false; why: string; link?: LinkRequestDoc };

export class LinkStore {
  readonly links: Collection<LinkRequestDoc>;
  readonly discoveries: Collection<DiscoveryDoc>;
  readonly initMessages: Collection<InitMessageDoc>;
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
    this.initMessages = db.collection<InitMessageDoc>(INIT_MESSAGES);
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
      this.initMessages.deleteMany({ expiresAt: { $lte: now } }),
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
    const r = await insertFirst(this.discoveries, record);
    return 'inserted' in r ? { stored: true } : { first: r.existing };
  }

  discovery(hip: string, transactionId: string): Promise<DiscoveryDoc | null> {
    return this.discoveries.findOne({ _id: `${hip}|${transactionId}` });
  }

  async insertLink(link: LinkRequestDoc): Promise<void> {
    await this.links.insertOne(link);
  }

  link(id: string): Promise<LinkRequestDoc | null> {
    return this.links.findOne({ _id: id });
  }

  /** The link/init message `messageId` at the provider, if it was seen (and not forgotten; perhaps expired). */
  initMessage(provider: string, messageId: string): Promise<InitMessageDoc | null> {
    return this.initMessages.findOne({ _id: `${provider}|${messageId}` });
  }

  /** A new claim of a link/init message (not yet written): it names the link request the message would create. */
  newInitMessage(
    parts: Pick<InitMessageDoc, 'provider' | 'messageId' | 'patient' | 'fingerprint' | 'linkRefNumber'>,
    now: Date,
  ): InitMessageDoc {
    return {
      _id: `${parts.provider}|${parts.messageId}`,
      ...parts,
      createdAt: now,
      expiresAt: new Date(now.getTime() + INIT_MESSAGE_TTL_MS),
    };
  }

  /**
   * Claims a link/init message for this delivery: inserted when it is new (the unique _id decides between two
   * deliveries at once, in any process), or taken over when `seen` (the claim as read, claimable) is still as read
   * (a guarded write). `{ claimed }` when this delivery is now the message's first; else the claim that stands.
   */
  async claimInit(
    claim: InitMessageDoc,
    seen: InitMessageDoc | null,
  ): Promise<{ claimed: InitMessageDoc } | { existing: InitMessageDoc | null }> {
    this.sweepExpired(claim.createdAt);
    if (!seen) {
      const r = await insertFirst(this.initMessages, claim);
      return 'inserted' in r ? { claimed: claim } : { existing: r.existing };
    }
    const { _id, ...fresh } = claim;
    const taken = await guardedFindOneAndUpdate(
      this.engine,
      this.initMessages,
      _id,
      {
        linkRefNumber: seen.linkRefNumber,
        createdAt: seen.createdAt,
        decided: seen.decided ?? { $exists: false },
      },
      { $set: fresh, $unset: { decided: '', refusal: '' } },
    );
    return taken ? { claimed: taken } : { existing: await this.initMessages.findOne({ _id }) };
  }

  /**
   * Decides a claimed link/init message, once: only while undecided and still this claim (its link reference); false
   * when another delivery took it over, which then answers.
   */
  async decideInit(
    claim: InitMessageDoc,
    decided: 'link' | 'refused' | 'released',
    refusal?: { reason: string; message: string },
  ): Promise<boolean> {
    return guardedUpdate(
      this.engine,
      this.initMessages,
      claim._id,
      { linkRefNumber: claim.linkRefNumber, decided: { $exists: false } },
      { $set: { decided, ...(refusal ? { refusal } : {}) } },
    );
  }

  /** Records that the request's code was handed to the notifier (guarded with the request's other writes). */
  async markDelivered(id: string, now: Date): Promise<void> {
    await guardedUpdate(
      this.engine,
      this.links,
      id,
      { deliveredAt: { $exists: false } },
      { $set: { deliveredAt: now } },
    );
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
  async confirm(
    linkRefNumber: string,
    token: string,
    now: Date,
    provider?: string,
    messageId?: string,
  ): Promise<ConfirmOutcome> {
    const max = this.config.LINK_OTP_MAX_ATTEMPTS;
    const found = await this.links.findOne({ _id: linkRefNumber });
    // A confirmation addressed to another provider (X-HIP-ID) is not this request's: nothing is counted.
    if (!found || (provider !== undefined && found.provider !== provider))
      return { ok: false, why: 'unknown link reference' };
    if (found.status === 'LINKED') return this.confirmAgain(found, token, now, messageId);
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
      if (latest?.status === 'LINKED') return this.confirmAgain(latest, token, now, messageId);
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
    // The right code, within the limit: LINKED only from PENDING (an expiry or a failure recorded meanwhile wins; a
    // confirmation that linked it meanwhile makes this one a repeat).
    const linked = { status: 'LINKED' as const, linkedAt: now, ...(messageId ? { confirmedBy: messageId } : {}) };
    if (!(await guardedUpdate(this.engine, this.links, link._id, { status: 'PENDING' }, { $set: linked }))) {
      const latest = await this.links.findOne({ _id: link._id });
      if (latest?.status === 'LINKED') return this.confirmAgain(latest, token, now, messageId);
      return { ok: false, why: 'link request is no longer pending', link };
    }
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
    await guardedUpdate(
      this.engine,
      this.links,
      link._id,
      { status: 'LINKED' },
      { $set: { careContextsLinkedAt: now } },
    );
    return { ok: true, link: { ...link, ...linked } };
  }

  /**
   * A confirmation of a request already LINKED: a repeat when its code is the request's, and it is the message that
   * confirmed it or the code has not expired; then, once the first confirmation has linked the care contexts, the
   * request as it stands. Anything else is a wrong (or expired) code, as for a pending request, and says nothing of
   * the link. Nothing is written.
   */
  private async confirmAgain(
    found: LinkRequestDoc,
    token: string,
    now: Date,
    messageId?: string,
  ): Promise<ConfirmOutcome> {
    const sameMessage = !!messageId && found.confirmedBy === messageId;
    if (!sameMessage && now >= found.expiresAt) return { ok: false, why: 'one-time code expired', link: found };
    if (!codeMatches(found, token)) return { ok: false, why: 'wrong one-time code', link: found };
    let link = found;
    // The first confirmation may still be linking the care contexts (in this or another process): wait for it, a
    // while (a request linked before this was recorded has no linkedAt).
    const recent = !!link.linkedAt && now.getTime() - link.linkedAt.getTime() <= LINKING_WAIT_MS;
    const deadline = Date.now() + LINKING_WAIT_MS;
    for (let wait = 10; recent && !link.careContextsLinkedAt && Date.now() < deadline; wait = Math.min(wait * 2, 250)) {
      await new Promise((r) => setTimeout(r, wait));
      const latest = await this.links.findOne({ _id: found._id });
      if (!latest || latest.status !== 'LINKED')
        return { ok: false, why: `link request is ${latest?.status ?? 'gone'}`, link: found };
      link = latest;
    }
    return { ok: true, link, repeat: true };
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
   * status), its link/init messages, and the discovery records it asked for or was returned as the reference of; with
   * `counters`, also its link/init counters. The care contexts are unlinkPatient's.
   */
  async forgetPatient(
    address: string,
    opts: { counters?: boolean } = {},
  ): Promise<{ linkRequests: number; discoveries: number; counters: number; initMessages: number }> {
    const [links, discoveries, counters, messages] = await Promise.all([
      this.links.deleteMany({ abhaAddress: address }),
      this.discoveries.deleteMany({ $or: [{ patientId: address }, { patientReference: address }] }),
      opts.counters
        ? // Counter ids are `${hip}|${address}|${hour}` (countInit); a facility id has no '|'.
          this.initUsage.deleteMany({ _id: { $regex: `^[^|]*\\|${regexLiteral(address)}\\|` } })
        : Promise.resolve({ deletedCount: 0 }),
      this.initMessages.deleteMany({ patient: address }),
    ]);
    return {
      linkRequests: links.deletedCount,
      discoveries: discoveries.deletedCount,
      counters: counters.deletedCount,
      initMessages: messages.deletedCount,
    };
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
