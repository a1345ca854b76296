/**
 * The health-information push. The gateway relays a viewer's request; the
 * store checks the consent, acknowledges, then in the background selects the
 * records the consent allows within the requested dateRange, encrypts each
 * bundle (Fidelius, with a key pair and nonce made for this transaction), and
 * POSTs them to the viewer's dataPushUrl in pages; finally it tells the
 * gateway each care context's status (DELIVERED or ERRORED) and the session's.
 *
 * Each transaction is one document in `hi_transactions`, updated after every
 * page, so a restart resumes where it stopped. The store's private key lives
 * there only until the transaction ends.
 *
 * Several server processes may share a MongoDB, so a transaction is run only
 * under a lease: `lease: {owner, until}` in its document, taken by a guarded
 * write (db/engine.ts) when it is free, expired, or already this process's;
 * renewed with every save (after each page) and by a heartbeat while it runs;
 * released at the end. A live lease of another process means "not mine": run
 * and resume() leave that transaction alone. A process that finds its lease
 * taken (it stalled past the expiry) stops at its next save. So no page and
 * no notify is sent by two processes, except after a lease expired under a
 * stalled process (then at most the page it was sending).
 *
 * Answers go in the dialect of the request (dialect.ts): the transaction
 * keeps it, and the notify uses it. A refused request is recorded too, as a
 * FAILED transaction, so that its notify is sent (and resumed) like any
 * other's. Requests are deduplicated: one transaction per request id (a
 * unique index), and each transaction keeps a fingerprint of the request it
 * was made for; the same request again is a repeat (answered again, nothing
 * pushed again), a different one under a used transaction or request id is a
 * conflict (refused, the original untouched).
 *
 * Once acknowledged, a transaction always ends TRANSFERRED or FAILED with a
 * notify: any failure in the run (a record unreadable, encryption throwing,
 * the database erring mid-way) ends it FAILED, except losing the lease, when
 * the process that took it carries on. The push itself goes through
 * http/outbound.ts: only to public addresses (or those HI_PUSH_ALLOWED_HOSTS
 * names), no redirects, at most 4 KiB of any answer read.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Histogram } from 'prom-client';
import { type Engine, detectEngine, guardedUpdate } from '../db/engine.js';
import type { Collection, Db, Filter } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { Collections } from '../records/model.js';
import type { ConsentStore, ConsentDoc } from '../consents/store.js';
import { encrypt, generateKeyMaterial } from './fidelius.js';
import { abdmInstant } from '../fhir/datetime.js';
import type { Repositories, PushRepository } from '../records/repository.js';
import { type GatewayClient, sleep } from './gateway.js';
import type { Dialect } from './dialect.js';
import { isDuplicateKey } from '../db/mongo.js';
import { type Keyset, afterKeyset, pageOf } from '../http/keyset.js';
import { hiTransferSeconds } from '../http/metrics.js';
import { type OutboundPolicy, OutboundRefused, checkDestination, postJson, pushPolicy } from '../http/outbound.js';

export const SESSION_STATUSES = ['ACKNOWLEDGED', 'TRANSFERRING', 'TRANSFERRED', 'FAILED'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];
export type HiStatus = 'DELIVERED' | 'ERRORED';

export interface HiTransaction {
  _id: string; // transactionId
  /** The id of the request that made it (unique: one transaction per request). */
  requestId: string;
  /** The dialect of that request, which its answers use; absent on transactions stored before v3: v0.5. */
  dialect?: Dialect;
  /** A hash of what was requested (consent, dateRange, dataPushUrl, key material), to tell a repeat from a change. */
  fingerprint?: string;
  /** The request was refused (its on-request was an error): recorded FAILED so that its notify is sent. */
  refused?: boolean;
  consentId: string;
  /** The HIP the notify is from: the consent's, or the one the gateway addressed; null when neither is known. */
  hip: string | null;
  dateRange: { from: Date; to: Date };
  dataPushUrl: string;
  requester: { publicKey: string; nonce: string; expiry: Date };
  sender?: { privateKey: string; publicKey: string; nonce: string };
  status: SessionStatus;
  /** The consent's care contexts, kept so they can be reported even after the consent is erased. */
  consentCareContexts: string[];
  recordIds: string[];
  pageCount: number;
  pagesSent: number;
  careContexts: Record<string, HiStatus>;
  error: string | null;
  notified: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** The process running this transaction, until when (see the file header); absent when none does. */
  lease?: { owner: string; until: Date };
}

export interface HiRequestInput {
  requestId: string;
  transactionId: string;
  consentId: string;
  dateRange: { from: string; to: string };
  dataPushUrl: string;
  keyMaterial: {
    cryptoAlg?: string;
    curve?: string;
    dhPublicKey: { expiry: string; parameters?: string; keyValue: string };
    nonce: string;
  };
  /** The dialect of the request, which its answers use (default v0.5). */
  dialect?: Dialect;
  /** The HIP the gateway addressed (X-HIP-ID): the notify's sender when the consent names none. */
  hip?: string;
}

/** A transaction as admin reads it (describe, list): without the sender's key material. */
export type Described = Omit<HiTransaction, 'sender'>;
/** The projection every admin read uses: the sender's keys (the private key while the transfer runs) left out. */
const WITHOUT_KEY = { sender: 0 } as const;

/** What became of a request: a new transaction, a repeat of one, or a conflict with one (refused; nothing stored). */
export type Accepted = { outcome: 'new' | 'repeat'; tx: HiTransaction } | { outcome: 'conflict'; reason: string };

/** The request's fingerprint: everything that decides what is pushed where, and how it is encrypted. */
export function fingerprintOf(input: HiRequestInput): string {
  const k = input.keyMaterial;
  const fields = [
    input.consentId,
    input.dateRange.from,
    input.dateRange.to,
    input.dataPushUrl,
    k.cryptoAlg ?? 'ECDH',
    k.curve ?? 'Curve25519',
    k.dhPublicKey.expiry,
    k.dhPublicKey.parameters ?? null,
    k.dhPublicKey.keyValue,
    k.nonce,
  ];
  return createHash('sha256').update(JSON.stringify(fields)).digest('base64url');
}

const FINAL: SessionStatus[] = ['TRANSFERRED', 'FAILED']; // resume() skips these once notified
/** When a run that failed is tried again (retryLater). */
const RETRY_DELAYS_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000];

export interface TransferOptions {
  /** What the database guarantees; detected from `db` when not given. */
  engine?: Engine;
  /** How long a lease holds without renewal (default 60 s). */
  leaseMs?: number;
  /** This process's lease owner id (default: random, per HiTransfers; main.ts makes one per process). */
  owner?: string;
  /** Where the push may go (http/outbound.ts); default: from the configuration (pushPolicy). */
  pushPolicy?: OutboundPolicy;
  /** Transfer durations by outcome; default: the process's histogram (http/metrics.ts). */
  transferSeconds?: Histogram<'outcome'>;
}

/** This process's lease on a transaction is gone (it expired and another process took it): that process carries on. */
export class LeaseLost extends Error {}

export class HiTransfers {
  readonly transactions: Collection<HiTransaction>;
  /** Transactions this process runs: whether it got the lease, and the run. */
  private running = new Map<string, { claimed: Promise<boolean>; done: Promise<void> }>();
  /** Runs tried again after a failure (retryLater), and how often so far. */
  private retries = new Map<string, number>();
  /** This process's lease owner id. */
  readonly owner: string;
  private readonly leaseMs: number;
  private engineOnce?: Promise<Engine>;
  private indexed?: Promise<void>;
  /** Where the push may go. */
  readonly pushPolicy: OutboundPolicy;
  private readonly transferSeconds: Histogram<'outcome'>;

  constructor(
    db: Db,
    private records: Collections,
    private consents: ConsentStore,
    private gateway: GatewayClient,
    private repositories: Repositories,
    private config: Config,
    private log: Log,
    private clock: () => Date = () => new Date(),
    opts: TransferOptions = {},
  ) {
    this.transactions = db.collection<HiTransaction>('hi_transactions');
    this.owner = opts.owner ?? randomUUID();
    this.leaseMs = opts.leaseMs ?? 60_000;
    this.engine = () => (this.engineOnce ??= opts.engine ? Promise.resolve(opts.engine) : detectEngine(db));
    this.pushPolicy = opts.pushPolicy ?? pushPolicy(config);
    this.transferSeconds = opts.transferSeconds ?? hiTransferSeconds;
  }

  /**
   * The unique request id index (once per HiTransfers; main.ts and the tests need not call it), and those of the
   * admin list (list(): newest first, all or one consent's). Transactions stored before the unique index may share a
   * request id: then it is not made, the lookups in accept() still deduplicate.
   */
  ensureIndexes(): Promise<void> {
    const make = (what: string, index: Promise<string>) =>
      index.then(
        () => true,
        (e: Error) => {
          this.log.warn({ err: e.message.slice(0, 200) }, `hi_transactions: ${what} index not made`);
          return false;
        },
      );
    return (this.indexed ??= Promise.all([
      make('unique request id', this.transactions.createIndex({ requestId: 1 }, { unique: true, name: 'request_id' })),
      make('list', this.transactions.createIndex({ createdAt: -1, _id: -1 }, { name: 'created_at' })),
      make(
        'consent list',
        this.transactions.createIndex({ consentId: 1, createdAt: -1, _id: -1 }, { name: 'consent_created_at' }),
      ),
    ]).then((made) => {
      if (!made.every(Boolean)) this.indexed = undefined; // tried again next time
    }));
  }

  /** Why the push may not go to this URL, as far as can be told before resolving its name (http/outbound.ts). */
  destinationRefusal(dataPushUrl: string): string | undefined {
    const d = checkDestination(dataPushUrl, this.pushPolicy);
    return d.ok ? undefined : d.reason;
  }

  /**
   * Takes a request: a repeat of a known one (same transaction, same request) is that transaction again; a used
   * request id under another transaction, or a used transaction with a different request, is a conflict (nothing is
   * stored or changed); else a new transaction: ACKNOWLEDGED, or FAILED when `refusal` says why it is refused.
   */
  async accept(input: HiRequestInput, consent: ConsentDoc | null, refusal?: string): Promise<Accepted> {
    await this.ensureIndexes();
    const fingerprint = fingerprintOf(input);
    const why =
      refusal ?? (consent?.terms ? undefined : `consent ${input.consentId} is ${consent?.status ?? 'unknown'}`);
    for (let attempt = 0; ; attempt++) {
      const known = await this.known(input, fingerprint);
      if (known) return known;
      const tx = this.transaction(input, consent, fingerprint, why);
      try {
        await this.transactions.insertOne(tx);
        return { outcome: 'new', tx };
      } catch (e) {
        if (!isDuplicateKey(e) || attempt >= 2) throw e; // a racing twin won: what it stored decides
      }
    }
  }

  /** A repeat of, or a conflict with, a transaction already stored; undefined when the request is new. */
  private async known(input: HiRequestInput, fingerprint: string): Promise<Accepted | undefined> {
    const [byTx, byRequest] = await Promise.all([
      this.transactions.findOne({ _id: input.transactionId }),
      this.transactions.findOne({ requestId: input.requestId }, { projection: { _id: 1 } }),
    ]);
    if (byRequest && byRequest._id !== input.transactionId)
      return {
        outcome: 'conflict',
        reason: `request ${input.requestId.slice(0, 128)} was already made for another transaction`,
      };
    if (!byTx) return undefined;
    const same = byTx.fingerprint
      ? byTx.fingerprint === fingerprint
      : // stored before fingerprints: compare what it kept
        byTx.consentId === input.consentId &&
        byTx.dataPushUrl === input.dataPushUrl &&
        byTx.requester.publicKey === input.keyMaterial.dhPublicKey.keyValue &&
        byTx.requester.nonce === input.keyMaterial.nonce;
    return same
      ? { outcome: 'repeat', tx: byTx }
      : {
          outcome: 'conflict',
          reason: `transaction ${input.transactionId.slice(0, 128)} exists for a different request (consent, dateRange, dataPushUrl or key material changed)`,
        };
  }

  private transaction(
    input: HiRequestInput,
    consent: ConsentDoc | null,
    fingerprint: string,
    refusal: string | undefined,
  ): HiTransaction {
    const now = this.clock();
    // A consent of another HIP than the one addressed lends the transaction nothing: its HIP, its care contexts.
    const own = !!consent?.terms && (!input.hip || input.hip === consent.terms.hip);
    const careContexts = own ? [...consent!.terms!.careContexts] : [];
    const key = refusal ? undefined : generateKeyMaterial();
    return {
      _id: input.transactionId,
      requestId: input.requestId,
      dialect: input.dialect ?? 'v0.5',
      fingerprint,
      ...(refusal ? { refused: true } : {}),
      consentId: input.consentId,
      hip: input.hip ?? consent?.terms?.hip ?? null,
      dateRange: { from: abdmInstant(input.dateRange.from, 'start'), to: abdmInstant(input.dateRange.to, 'end') },
      dataPushUrl: input.dataPushUrl,
      requester: {
        publicKey: input.keyMaterial.dhPublicKey.keyValue,
        nonce: input.keyMaterial.nonce,
        expiry: abdmInstant(input.keyMaterial.dhPublicKey.expiry),
      },
      ...(key ? { sender: { privateKey: key.privateKey, publicKey: key.x509PublicKey, nonce: key.nonce } } : {}),
      status: refusal ? 'FAILED' : 'ACKNOWLEDGED',
      consentCareContexts: careContexts,
      recordIds: [],
      pageCount: 0,
      pagesSent: 0,
      careContexts: refusal ? Object.fromEntries(careContexts.map((cc) => [cc, 'ERRORED' as const])) : {},
      error: refusal ?? null,
      notified: false,
      createdAt: now,
      updatedAt: now,
    };
  }

  /**
   * Forgets a transaction accept() just made, before anything was done with it (its request could not be audited, so
   * it is answered 503 and taken when the gateway sends it again).
   */
  async discard(id: string, fingerprint: string): Promise<void> {
    await this.transactions.deleteOne({
      _id: id,
      fingerprint,
      notified: false,
      pagesSent: 0,
      lease: { $exists: false },
      status: { $in: ['ACKNOWLEDGED', 'FAILED'] },
    });
  }

  private engine: () => Promise<Engine>;

  /**
   * Runs (or joins the run of) a transaction to its end, if this process gets its lease; another process's live lease:
   * nothing is done here.
   */
  run(id: string): Promise<void> {
    return this.launch(id).done;
  }

  private launch(id: string): { claimed: Promise<boolean>; done: Promise<void> } {
    const current = this.running.get(id);
    if (current) return current;
    const claimed = this.claim(id).catch((e) => {
      this.log.error(
        { transactionId: id, err: (e as Error).message.slice(0, 200) },
        'health-information transfer: lease not taken',
      );
      return false;
    });
    const done = claimed
      .then(async (mine) => {
        if (!mine) {
          this.log.info({ transactionId: id }, 'health-information transfer held by another process; left to it');
          return;
        }
        const heartbeat = setInterval(
          () => {
            void this.renew(id).catch(() => undefined);
          },
          Math.max(1000, Math.floor(this.leaseMs / 3)),
        );
        heartbeat.unref();
        try {
          await this.execute(id);
        } finally {
          clearInterval(heartbeat);
          await this.release(id).catch(() => undefined); // or let it expire
        }
      })
      .catch((e) => {
        if (e instanceof LeaseLost)
          this.log.warn({ transactionId: id }, 'health-information transfer lease lost; another process carries on');
        else {
          this.log.error(
            { transactionId: id, err: (e as Error).message.slice(0, 200) },
            'health-information transfer failed; trying again later',
          );
          this.retryLater(id);
        }
      })
      .finally(() => this.running.delete(id));
    const job = { claimed, done };
    this.running.set(id, job);
    return job;
  }

  /**
   * A run that stopped on a failure it could not record (the gateway or the database unreachable for the notify, or
   * for the FAILED write) is tried again a few times with growing delays; resume() at the next start covers the rest.
   */
  private retryLater(id: string): void {
    const n = this.retries.get(id) ?? 0;
    if (n >= RETRY_DELAYS_MS.length) {
      this.retries.delete(id);
      return;
    }
    this.retries.set(id, n + 1);
    setTimeout(() => void this.run(id), RETRY_DELAYS_MS[n]).unref();
  }

  /** Resumes every transaction left unfinished whose lease is free or expired; the number taken. */
  async resume(): Promise<number> {
    await this.ensureIndexes();
    const open = await this.transactions
      .find({ $or: [{ status: { $nin: FINAL } }, { notified: false }] }, { projection: { _id: 1 } })
      .toArray();
    const mine = await Promise.all(open.map((t) => this.launch(t._id).claimed));
    return mine.filter(Boolean).length;
  }

  /**
   * Resumes unfinished transactions every `everyMs` (main.ts), so one whose lease belonged to a process that died
   * (including this process's previous run, restarted within the lease) is taken over once that lease expires, not
   * only at the next start. Returns the stop function.
   */
  keepResuming(everyMs: number): () => void {
    const timer = setInterval(() => {
      this.resume().then(
        (n) => {
          if (n) this.log.info({ resumed: n }, 'resuming health-information transfers');
        },
        (e: Error) => this.log.warn({ err: e.message.slice(0, 200) }, 'health-information resume failed; will retry'),
      );
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Takes the lease when it is free, expired or already this process's (a guarded write: one winner across processes).
   */
  private async claim(id: string): Promise<boolean> {
    const now = this.clock();
    const free = {
      $or: [{ lease: { $exists: false } }, { 'lease.owner': this.owner }, { 'lease.until': { $lte: now } }],
    };
    return guardedUpdate(await this.engine(), this.transactions, id, free, { $set: { lease: this.leaseFrom(now) } });
  }

  private leaseFrom(now: Date) {
    return { owner: this.owner, until: new Date(now.getTime() + this.leaseMs) };
  }

  private async renew(id: string): Promise<boolean> {
    return guardedUpdate(
      await this.engine(),
      this.transactions,
      id,
      { 'lease.owner': this.owner },
      { $set: { lease: this.leaseFrom(this.clock()) } },
    );
  }

  private async release(id: string): Promise<void> {
    await guardedUpdate(
      await this.engine(),
      this.transactions,
      id,
      { 'lease.owner': this.owner },
      { $unset: { lease: '' } },
    );
  }

  /** Saves progress and renews the lease, only while this process holds it; LeaseLost otherwise. */
  private async save(id: string, set: Partial<HiTransaction>, unset: Record<string, ''> = {}) {
    const now = this.clock();
    const saved = await guardedUpdate(
      await this.engine(),
      this.transactions,
      id,
      { 'lease.owner': this.owner },
      {
        $set: { ...set, updatedAt: now, lease: this.leaseFrom(now) },
        ...(Object.keys(unset).length ? { $unset: unset } : {}),
      },
    );
    if (!saved) throw new LeaseLost(`transaction ${id}: lease lost`);
  }

  private async execute(id: string): Promise<void> {
    let tx = await this.transactions.findOne({ _id: id });
    if (!tx) return;
    try {
      if (tx.status === 'ACKNOWLEDGED') tx = await this.start(tx);
      if (tx.status === 'TRANSFERRING') tx = await this.push(tx);
    } catch (e) {
      if (e instanceof LeaseLost) throw e; // the process that took the lease carries on
      tx = await this.abort(id, e as Error);
    }
    if (!tx.notified) await this.notify(tx);
    this.retries.delete(id);
  }

  /**
   * Ends a transaction FAILED after an unexpected failure in its run: every care context with a record not yet
   * pushed (all of the consent's, before the selection) is ERRORED. The error is named by its kind only: its message
   * may quote a record.
   */
  private async abort(id: string, e: Error): Promise<HiTransaction> {
    const kind = (e?.name ?? 'Error').slice(0, 60);
    this.log.error(
      {
        transactionId: id,
        err: {
          name: kind,
          code: (e as { code?: unknown })?.code,
          message: e instanceof SyntaxError ? undefined : e?.message?.slice(0, 200),
        },
      },
      'health-information transfer failed unexpectedly; ending it FAILED',
    );
    const tx = (await this.transactions.findOne({ _id: id }))!;
    if (tx.status === 'TRANSFERRED' || tx.status === 'FAILED') return tx; // it ended before the failure
    const careContexts = { ...tx.careContexts };
    const errored = (cc: string) => (careContexts[cc] = 'ERRORED');
    if (tx.status === 'TRANSFERRING') {
      const rest = tx.recordIds.slice(tx.pagesSent * this.config.HI_PAGE_SIZE);
      try {
        const docs = await this.records.current
          .find({ _id: { $in: rest } }, { projection: { careContext: 1 } })
          .toArray();
        for (const d of docs) errored(d.careContext);
      } catch {
        for (const cc of tx.consentCareContexts) if (careContexts[cc] !== 'DELIVERED') errored(cc);
      }
    } else for (const cc of tx.consentCareContexts) errored(cc); // failed before the selection
    return this.finish({ ...tx, careContexts }, 'FAILED', `the transfer failed: internal error (${kind})`);
  }

  /** Selects the records to push, or ends the transaction when the consent is no longer live. */
  private async start(tx: HiTransaction): Promise<HiTransaction> {
    const consent = await this.consents.get(tx.consentId);
    const live = this.live(consent, tx);
    if (live !== true) {
      const careContexts = Object.fromEntries(tx.consentCareContexts.map((cc) => [cc, 'ERRORED' as const]));
      return this.finish({ ...tx, careContexts }, 'FAILED', live);
    }
    const selected = await this.repository(consent!, tx).select();
    await this.save(tx._id, {
      status: 'TRANSFERRING',
      recordIds: selected,
      pageCount: Math.ceil(selected.length / this.config.HI_PAGE_SIZE),
      careContexts: {},
    });
    return (await this.transactions.findOne({ _id: tx._id }))!;
  }

  private live(consent: ConsentDoc | null, tx: HiTransaction): true | string {
    const now = this.clock();
    if (!consent || consent.status !== 'GRANTED' || !consent.terms) return `consent is ${consent?.status ?? 'unknown'}`;
    if (now >= consent.terms.dataEraseAt) return 'consent expired';
    if (now >= tx.requester.expiry) return 'requester key material expired';
    return true;
  }

  /** What this transaction may push (records/repository.ts): the consent's records within the requested dateRange. */
  private repository(consent: ConsentDoc, tx: HiTransaction): PushRepository {
    return this.repositories.forPush(consent, tx.dateRange);
  }

  private async push(tx: HiTransaction): Promise<HiTransaction> {
    const size = this.config.HI_PAGE_SIZE;
    const careContexts = { ...tx.careContexts };
    /** Ends the session FAILED, reporting the care contexts of every record not yet pushed as ERRORED. */
    const fail = async (fromRecord: number, why: string) => {
      for (const rid of tx.recordIds.slice(fromRecord)) {
        const d = await this.records.current.findOne({ _id: rid }, { projection: { careContext: 1 } });
        if (d) careContexts[d.careContext] = 'ERRORED';
      }
      return this.finish({ ...tx, careContexts }, 'FAILED', why);
    };
    for (let page = tx.pagesSent; page < tx.pageCount; page++) {
      const consent = await this.consents.get(tx.consentId); // a revocation mid-transfer stops the push
      const live = this.live(consent, tx);
      if (live !== true) return fail(page * size, live);
      // Each record is read again as it stands now and pushed only if the consent still covers it.
      const ids = tx.recordIds.slice(page * size, (page + 1) * size);
      const repo = this.repository(consent!, tx);
      const served = (await Promise.all(ids.map((rid) => repo.covered(rid)))).filter((d) => d !== null);
      const docs = served.map((d) => d.doc);
      const entries = served.map(({ doc: d, text: plaintext }) => ({
        content: encrypt({
          plaintext,
          senderNonce: tx.sender!.nonce,
          requesterNonce: tx.requester.nonce,
          senderPrivateKey: tx.sender!.privateKey,
          requesterPublicKey: tx.requester.publicKey,
        }),
        media: 'application/fhir+json',
        checksum: createHash('md5').update(plaintext).digest('base64'), // ABDM: "base64 value of MD5"
        careContextReference: d.careContext,
      }));
      const body = {
        pageNumber: page + 1,
        pageCount: tx.pageCount,
        transactionId: tx._id,
        entries,
        keyMaterial: {
          cryptoAlg: 'ECDH',
          curve: 'Curve25519',
          dhPublicKey: {
            expiry: tx.requester.expiry.toISOString(),
            parameters: 'Curve25519/32byte random key',
            keyValue: tx.sender!.publicKey,
          },
          nonce: tx.sender!.nonce,
        },
      };
      const ok = await this.deliver(tx.dataPushUrl, body);
      await repo.pushed(docs, tx._id, page + 1, tx.pageCount, ok);
      for (const d of docs)
        careContexts[d.careContext] =
          ok === true && careContexts[d.careContext] !== 'ERRORED' ? 'DELIVERED' : 'ERRORED';
      if (ok !== true) return fail((page + 1) * size, ok);
      await this.save(tx._id, { pagesSent: page + 1, careContexts });
    }
    return this.finish({ ...tx, careContexts }, 'TRANSFERRED', null);
  }

  /**
   * POSTs one page with retries and exponential backoff (http/outbound.ts: the destination checked as it is connected
   * to, no redirects, at most 4 KiB of the answer read); true or why it failed.
   */
  private async deliver(url: string, body: unknown): Promise<true | string> {
    const text = JSON.stringify(body);
    let why = '';
    for (let attempt = 0; attempt < this.config.HI_PUSH_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(this.config.HI_PUSH_BACKOFF_MS * 2 ** (attempt - 1));
      try {
        const res = await postJson(url, text, { policy: this.pushPolicy, timeoutMs: this.config.HI_PUSH_TIMEOUT_MS });
        if (res.status >= 200 && res.status < 300) return true;
        why =
          res.status >= 300 && res.status < 400
            ? `dataPushUrl answered HTTP ${res.status} (a redirect: not followed)`
            : `dataPushUrl answered HTTP ${res.status}`;
        // the viewer refused (or redirected): retrying will not help
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (e) {
        if (e instanceof OutboundRefused) {
          why = `dataPushUrl refused: ${e.message.slice(0, 200)}`;
          break;
        }
        why = `dataPushUrl unreachable: ${(e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message.slice(0, 100)}`;
      }
    }
    return why;
  }

  /** Records the session's end and the care contexts' statuses in one write, dropping the private key. */
  private async finish(tx: HiTransaction, status: SessionStatus, error: string | null): Promise<HiTransaction> {
    await this.save(tx._id, { status, error, careContexts: tx.careContexts }, { sender: '' });
    const seconds = Math.max(0, (this.clock().getTime() - tx.createdAt.getTime()) / 1000);
    this.transferSeconds.observe({ outcome: status }, seconds);
    this.log.info({ transactionId: tx._id, status, seconds }, 'health-information transfer finished');
    return (await this.transactions.findOne({ _id: tx._id }))!;
  }

  /** Tells the gateway how the session ended, in the request's dialect, from the HIP the consent names. */
  private async notify(tx: HiTransaction): Promise<void> {
    if (!tx.hip) {
      // Neither a consent nor the gateway named a HIP (X-HIP-ID): there is no one to notify as.
      this.log.warn({ transactionId: tx._id }, 'health-information notify not sent: no HIP id known');
      await this.save(tx._id, { notified: true });
      return;
    }
    const statusResponses = Object.entries(tx.careContexts).map(([careContextReference, hiStatus]) => ({
      careContextReference,
      hiStatus,
      description: hiStatus === 'DELIVERED' ? 'Delivered' : (tx.error ?? 'Not delivered').slice(0, 300),
    }));
    await this.gateway.send(
      'hiNotify',
      {
        notification: {
          consentId: tx.consentId,
          transactionId: tx._id,
          doneAt: this.clock().toISOString(),
          notifier: { type: 'HIP', id: tx.hip },
          statusNotification: { sessionStatus: tx.status, hipId: tx.hip, statusResponses },
        },
      },
      { dialect: tx.dialect ?? 'v0.5', hip: tx.hip },
    );
    await this.save(tx._id, { notified: true });
  }

  /** The transaction as admin sees it: no key material (the sender's private key is never read). */
  async describe(id: string): Promise<Described | null> {
    return this.transactions.findOne<Described>({ _id: id }, { projection: WITHOUT_KEY });
  }

  /**
   * A page of transactions as describe() gives them, newest first (createdAt, then id, descending), after `after`
   * (http/keyset.ts); `consentId` those of one consent, `statuses` those in one of these states.
   */
  async list(q: {
    consentId?: string;
    statuses?: SessionStatus[];
    count: number;
    after?: Keyset;
  }): Promise<{ transactions: Described[]; next?: string }> {
    const and: Filter<HiTransaction>[] = [];
    if (q.consentId !== undefined) and.push({ consentId: q.consentId });
    if (q.statuses?.length) and.push({ status: { $in: q.statuses } });
    if (q.after) and.push(afterKeyset<HiTransaction>('createdAt', q.after));
    const rows = await this.transactions
      .find<Described>(and.length ? { $and: and } : {}, { projection: WITHOUT_KEY })
      .sort({ createdAt: -1, _id: -1 })
      .limit(q.count + 1)
      .toArray();
    const { page, next } = pageOf(rows, q.count, (tx) => ({ at: tx.createdAt, id: tx._id }));
    return { transactions: page, ...(next ? { next } : {}) };
  }
}
