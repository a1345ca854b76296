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
 */
import { createHash } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { type Engine, detectEngine, guardedUpdate } from '../db/engine.js';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { Collections } from '../records/model.js';
import type { ConsentStore, ConsentDoc } from '../consents/store.js';
import { encrypt, generateKeyMaterial } from './fidelius.js';
import { abdmInstant } from '../fhir/datetime.js';
import type { Repositories, PushRepository } from '../records/repository.js';
import { type GatewayClient, sleep } from './gateway.js';

export type SessionStatus = 'ACKNOWLEDGED' | 'TRANSFERRING' | 'TRANSFERRED' | 'FAILED';
export type HiStatus = 'DELIVERED' | 'ERRORED';

export interface HiTransaction {
  _id: string; // transactionId
  requestId: string;
  consentId: string;
  hip: string;
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
  keyMaterial: { dhPublicKey: { expiry: string; keyValue: string }; nonce: string };
}

const FINAL: SessionStatus[] = ['TRANSFERRED', 'FAILED']; // resume() skips these once notified

export interface TransferOptions {
  /** What the database guarantees; detected from `db` when not given. */
  engine?: Engine;
  /** How long a lease holds without renewal (default 60 s). */
  leaseMs?: number;
  /** This process's lease owner id (default: random, per HiTransfers; main.ts makes one per process). */
  owner?: string;
}

/** This process's lease on a transaction is gone (it expired and another process took it): that process carries on. */
export class LeaseLost extends Error {}

export class HiTransfers {
  readonly transactions: Collection<HiTransaction>;
  /** Transactions this process runs: whether it got the lease, and the run. */
  private running = new Map<string, { claimed: Promise<boolean>; done: Promise<void> }>();
  /** This process's lease owner id. */
  readonly owner: string;
  private readonly leaseMs: number;
  private engineOnce?: Promise<Engine>;

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
  }

  /** Records a new transaction (idempotent per transactionId). */
  async accept(input: HiRequestInput, consent: ConsentDoc): Promise<HiTransaction> {
    const now = this.clock();
    const key = generateKeyMaterial();
    const tx: HiTransaction = {
      _id: input.transactionId,
      requestId: input.requestId,
      consentId: consent._id,
      hip: consent.terms!.hip,
      dateRange: { from: abdmInstant(input.dateRange.from, 'start'), to: abdmInstant(input.dateRange.to, 'end') },
      dataPushUrl: input.dataPushUrl,
      requester: {
        publicKey: input.keyMaterial.dhPublicKey.keyValue,
        nonce: input.keyMaterial.nonce,
        expiry: abdmInstant(input.keyMaterial.dhPublicKey.expiry),
      },
      sender: { privateKey: key.privateKey, publicKey: key.x509PublicKey, nonce: key.nonce },
      status: 'ACKNOWLEDGED',
      consentCareContexts: [...consent.terms!.careContexts],
      recordIds: [],
      pageCount: 0,
      pagesSent: 0,
      careContexts: {},
      error: null,
      notified: false,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.transactions.insertOne(tx);
      return tx;
    } catch (e) {
      const existing = await this.transactions.findOne({ _id: input.transactionId });
      if (existing) return existing;
      throw e;
    }
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
        else
          this.log.error(
            { transactionId: id, err: (e as Error).message.slice(0, 200) },
            'health-information transfer failed',
          );
      })
      .finally(() => this.running.delete(id));
    const job = { claimed, done };
    this.running.set(id, job);
    return job;
  }

  /** Resumes every transaction left unfinished whose lease is free or expired; the number taken. */
  async resume(): Promise<number> {
    const open = await this.transactions
      .find({ $or: [{ status: { $nin: FINAL } }, { notified: false }] }, { projection: { _id: 1 } })
      .toArray();
    const mine = await Promise.all(open.map((t) => this.launch(t._id).claimed));
    return mine.filter(Boolean).length;
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
    if (tx.status === 'ACKNOWLEDGED') tx = await this.start(tx);
    if (tx.status === 'TRANSFERRING') tx = await this.push(tx);
    if (!tx.notified) await this.notify(tx);
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
        checksum: createHash('md5').update(plaintext).digest('hex'),
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

  /** POSTs one page with retries and exponential backoff; true or why it failed. */
  private async deliver(url: string, body: unknown): Promise<true | string> {
    let why = '';
    for (let attempt = 0; attempt < this.config.HI_PUSH_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(this.config.HI_PUSH_BACKOFF_MS * 2 ** (attempt - 1));
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.config.HI_PUSH_TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        why = `dataPushUrl answered HTTP ${res.status}`;
        // the viewer refused: retrying will not help
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break;
      } catch (e) {
        why = `dataPushUrl unreachable: ${(e as Error).name === 'TimeoutError' ? 'timed out' : (e as Error).message.slice(0, 100)}`;
      }
    }
    return why;
  }

  /** Records the session's end and the care contexts' statuses in one write, dropping the private key. */
  private async finish(tx: HiTransaction, status: SessionStatus, error: string | null): Promise<HiTransaction> {
    await this.save(tx._id, { status, error, careContexts: tx.careContexts }, { sender: '' });
    this.log.info({ transactionId: tx._id, status }, 'health-information transfer finished');
    return (await this.transactions.findOne({ _id: tx._id }))!;
  }

  private async notify(tx: HiTransaction): Promise<void> {
    const statusResponses = Object.entries(tx.careContexts).map(([careContextReference, hiStatus]) => ({
      careContextReference,
      hiStatus,
      description: hiStatus === 'DELIVERED' ? 'Delivered' : (tx.error ?? 'Not delivered'),
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
      { dialect: 'v0.5', hip: tx.hip },
    );
    await this.save(tx._id, { notified: true });
  }

  /** The transaction as admin sees it: no key material. */
  async describe(id: string): Promise<Omit<HiTransaction, 'sender'> | null> {
    const tx = await this.transactions.findOne({ _id: id }, { projection: { sender: 0 } });
    return tx;
  }
}
