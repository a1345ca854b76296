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
 */
import { createHash } from 'node:crypto';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { Collections, CurrentDoc } from '../db/mongo.js';
import type { ConsentStore, ConsentDoc } from '../consents/store.js';
import { consentFilter } from '../consents/policy.js';
import { renderRecord } from '../records/render.js';
import { currentContent } from '../records/content.js';
import { PatientIndex, indexKeyOf, newestFirst } from '../records/patient-index.js';
import { matchesFilter } from '../records/match.js';
import { encrypt, generateKeyMaterial } from './fidelius.js';
import { abdmInstant } from '../fhir/datetime.js';
import type { AuditLog } from '../audit/log.js';
import { patientAuditKey } from '../consents/policy.js';
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

export class HiTransfers {
  readonly transactions: Collection<HiTransaction>;
  private running = new Map<string, Promise<void>>();

  constructor(db: Db, private records: Collections, private consents: ConsentStore, private gateway: GatewayClient, private audit: AuditLog, private config: Config, private log: Log, private clock: () => Date = () => new Date()) {
    this.transactions = db.collection<HiTransaction>('hi_transactions');
    this.index = new PatientIndex(records.patientIndex, records.meta);
  }

  private index: PatientIndex;

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
      requester: { publicKey: input.keyMaterial.dhPublicKey.keyValue, nonce: input.keyMaterial.nonce, expiry: abdmInstant(input.keyMaterial.dhPublicKey.expiry) },
      sender: { privateKey: key.privateKey, publicKey: key.x509PublicKey, nonce: key.nonce },
      status: 'ACKNOWLEDGED',
      consentCareContexts: [...consent.terms!.careContexts],
      recordIds: [], pageCount: 0, pagesSent: 0, careContexts: {},
      error: null, notified: false, createdAt: now, updatedAt: now,
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

  /** Runs (or joins the run of) a transaction to its end. */
  run(id: string): Promise<void> {
    const current = this.running.get(id);
    if (current) return current;
    const job = this.execute(id).catch((e) => {
      this.log.error({ transactionId: id, err: (e as Error).message.slice(0, 200) }, 'health-information transfer failed');
    }).finally(() => this.running.delete(id));
    this.running.set(id, job);
    return job;
  }

  /** Resumes every transaction a previous process left unfinished. */
  async resume(): Promise<number> {
    const open = await this.transactions.find({ $or: [{ status: { $nin: FINAL } }, { notified: false }] }, { projection: { _id: 1 } }).toArray();
    for (const t of open) void this.run(t._id);
    return open.length;
  }

  private async save(id: string, set: Partial<HiTransaction>, unset: Record<string, ''> = {}) {
    await this.transactions.updateOne({ _id: id }, { $set: { ...set, updatedAt: this.clock() }, ...(Object.keys(unset).length ? { $unset: unset } : {}) });
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
    const selected = await this.select(consent!, tx);
    await this.save(tx._id, { status: 'TRANSFERRING', recordIds: selected, pageCount: Math.ceil(selected.length / this.config.HI_PAGE_SIZE), careContexts: {} });
    return (await this.transactions.findOne({ _id: tx._id }))!;
  }

  private live(consent: ConsentDoc | null, tx: HiTransaction): true | string {
    const now = this.clock();
    if (!consent || consent.status !== 'GRANTED' || !consent.terms) return `consent is ${consent?.status ?? 'unknown'}`;
    if (now >= consent.terms.dataEraseAt) return 'consent expired';
    if (now >= tx.requester.expiry) return 'requester key material expired';
    return true;
  }

  /** What the consent and the requested dateRange cover, as one filter. */
  private scope(consent: ConsentDoc, tx: HiTransaction) {
    return { $and: [consentFilter(consent), { recordDate: { $gte: tx.dateRange.from, $lte: tx.dateRange.to } }] };
  }

  /**
   * The ids of the records to push, oldest first: from the patient's index
   * document (a consent always names one provider and one patient), filtered
   * in memory, so the cost follows the patient's records, not the store's.
   */
  private async select(consent: ConsentDoc, tx: HiTransaction): Promise<string[]> {
    const filter = this.scope(consent, tx);
    const key = indexKeyOf(filter);
    if (key === undefined) throw new Error('a consent filter names one provider and one patient'); // consentFilter always does
    return (await this.index.entries(key)).filter((e) => matchesFilter(e, filter)).sort((a, b) => newestFirst(b, a)).map((e) => e._id);
  }

  /** The current version of a selected record, if the consent and the requested dateRange still cover it (read by _id, checked in memory). */
  private async covered(recordId: string, consent: ConsentDoc, tx: HiTransaction): Promise<CurrentDoc | null> {
    const doc = await this.records.current.findOne({ _id: recordId });
    return doc && matchesFilter(doc, this.scope(consent, tx)) ? doc : null;
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
      const docs = (await Promise.all(ids.map((rid) => this.covered(rid, consent!, tx)))).filter((d): d is CurrentDoc => !!d);
      const entries = await Promise.all(docs.map(async (d) => {
        const text = await currentContent(this.records.contents, d);
        if (text === undefined) throw new Error(`record content ${d.contentId} is missing`);
        const plaintext = renderRecord(text, d);
        return {
          content: encrypt({ plaintext, senderNonce: tx.sender!.nonce, requesterNonce: tx.requester.nonce, senderPrivateKey: tx.sender!.privateKey, requesterPublicKey: tx.requester.publicKey }),
          media: 'application/fhir+json',
          checksum: createHash('md5').update(plaintext).digest('hex'),
          careContextReference: d.careContext,
        };
      }));
      const body = {
        pageNumber: page + 1,
        pageCount: tx.pageCount,
        transactionId: tx._id,
        entries,
        keyMaterial: {
          cryptoAlg: 'ECDH', curve: 'Curve25519',
          dhPublicKey: { expiry: tx.requester.expiry.toISOString(), parameters: 'Curve25519/32byte random key', keyValue: tx.sender!.publicKey },
          nonce: tx.sender!.nonce,
        },
      };
      const ok = await this.deliver(tx.dataPushUrl, body);
      await this.auditPage(tx, consent!, docs, page, ok);
      for (const d of docs) careContexts[d.careContext] = ok === true && careContexts[d.careContext] !== 'ERRORED' ? 'DELIVERED' : 'ERRORED';
      if (ok !== true) return fail((page + 1) * size, ok);
      await this.save(tx._id, { pagesSent: page + 1, careContexts });
    }
    return this.finish({ ...tx, careContexts }, 'TRANSFERRED', null);
  }

  /**
   * Every page pushed (or that failed to be) is in the audit trail with its
   * records and their patients, under the viewer it went to, so the patient
   * sees health-information pushes in their access history.
   */
  private async auditPage(tx: HiTransaction, consent: ConsentDoc, docs: CurrentDoc[], page: number, ok: true | string): Promise<void> {
    const t = consent.terms!;
    const patients = [...new Set([patientAuditKey(t.patient), ...docs.flatMap((d) => [d.abhaNumber, d.abhaAddress].filter((x): x is string => !!x))])];
    await this.audit.append({
      action: 'health-information.push', outcome: ok === true ? 'success' : 'error', status: ok === true ? 200 : 502,
      actor: { role: 'hiu', facility: t.hiu, subject: null }, recordIds: docs.map((d) => d._id), consentId: consent._id, purpose: t.purpose, patients,
      reason: `transaction ${tx._id} page ${page + 1} of ${tx.pageCount}${ok === true ? '' : `: ${ok}`}`.slice(0, 300),
    });
  }

  /** POSTs one page with retries and exponential backoff; true or why it failed. */
  private async deliver(url: string, body: unknown): Promise<true | string> {
    let why = '';
    for (let attempt = 0; attempt < this.config.HI_PUSH_ATTEMPTS; attempt++) {
      if (attempt > 0) await sleep(this.config.HI_PUSH_BACKOFF_MS * 2 ** (attempt - 1));
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(this.config.HI_PUSH_TIMEOUT_MS) });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        why = `dataPushUrl answered HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break; // the viewer refused: retrying will not help
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
      careContextReference, hiStatus, description: hiStatus === 'DELIVERED' ? 'Delivered' : (tx.error ?? 'Not delivered'),
    }));
    await this.gateway.post('/v0.5/health-information/notify', {
      ...this.gateway.envelope(),
      notification: {
        consentId: tx.consentId,
        transactionId: tx._id,
        doneAt: this.clock().toISOString(),
        notifier: { type: 'HIP', id: tx.hip },
        statusNotification: { sessionStatus: tx.status, hipId: tx.hip, statusResponses },
      },
    });
    await this.save(tx._id, { notified: true });
  }

  /** The transaction as admin sees it: no key material. */
  async describe(id: string): Promise<Omit<HiTransaction, 'sender'> | null> {
    const tx = await this.transactions.findOne({ _id: id }, { projection: { sender: 0 } });
    return tx;
  }
}

