/**
 * HIP-initiated linking, context notify and SMS notify (ABDM v3;
 * ../shared/docs/abdm-v3.md "HIP functions"). After an upload stores something
 * new (records/routes.ts `onStored`, fire-and-forget: the upload's answer
 * never waits for the gateway):
 *
 * - the care context is linked already (by the patient or by the HIP):
 *   context notify, so the patient's app learns of the new record;
 * - not linked, and the Patient has an ABHA address: link it. generate-token
 *   with the Patient's demographics, read from the stored record at that
 *   moment and kept nowhere (on-generate-token brings a link token, kept in
 *   `hip_link_tokens` per provider and patient until it expires and reused
 *   for their next care contexts), then link/carecontext with X-LINK-TOKEN,
 *   grouped by hiType; on_carecontext tells the outcome;
 * - not linked, no ABHA address but a phone number: SMS notify (a deep link
 *   to the PHR app), once per care context; the number is read from the
 *   record for that call only, never stored or logged;
 * - not linked, only an ABHA number and no phone: linked by number.
 *
 * In ABDM v0.5 HIP-initiated linking needs the patient's authentication at
 * the counter (users/auth/fetch-modes, init, confirm): not offered, so with
 * GATEWAY_API_VERSION=v0.5 nothing here runs (logged once at start).
 *
 * Each piece of work is a job in `hip_links`: `link|<care context>`,
 * `sms|<care context>` or `notify|<record version>`. A job is PENDING until
 * due (nextAttemptAt), then taken by a guarded write (db/engine.ts) from
 * PENDING to SENDING with this process as owner and a lease (nextAttemptAt
 * then is the lease's end), so two processes sharing a MongoDB never both
 * send it; after a send it waits for the gateway's answer (TOKEN_REQUESTED,
 * LINK_REQUESTED; nextAttemptAt then is the answer's deadline) or is done
 * (NOTIFIED, SMS_SENT). A failure (the gateway refused or could not be
 * reached, an error answer, no answer by the deadline, a lease that ran out)
 * is retried with exponential backoff from HIP_LINK_BACKOFF_MS, up to
 * HIP_LINK_ATTEMPTS tries, then the job is FAILED with lastError for admin
 * (GET /admin/hip-links). A Patient without the demographics generate-token
 * needs fails at once. A new upload into a care context whose link job ended
 * (FAILED, SKIPPED) starts it again. An ABHA address that `abha_status` marks
 * DEACTIVATED or DELETED gets no job, and a job that meets one is SKIPPED.
 *
 * Answers name the REQUEST-ID they answer (`response.requestId`). Every call
 * is recorded before it is sent: the job chooses the call's REQUEST-ID (a UUID
 * v4) and writes it into the job (pushed to `sent`, and as `awaiting`, the
 * call in flight and then the answer due) by a guarded write that holds only
 * while this process still holds the job (SENDING, its owner); only then does
 * it call the gateway with that id (`send(..., {requestId})`). The gateway
 * cannot answer a call it has not received, so however fast an answer comes,
 * even before the send has returned, its id is in its job already: the answer
 * finds the job by it (index `sent_request_id`) and nothing is ever held. An
 * answer naming an id no job sent is ignored (202, audited; nothing stored).
 *
 * An answer to the call the job awaits is applied by a write guarded on
 * `awaiting` still naming that id, whether the job is still SENDING it or
 * already waiting for the answer. What the sender writes once its send has
 * returned (the answer's deadline, NOTIFIED / SMS_SENT, or a failed try when
 * the send failed) is guarded on the job still SENDING that id: when the
 * answer came first, that write finds the job moved on and changes nothing;
 * when the answer comes after it, the answer finds the job waiting (or a
 * notify done) and applies. A send that failed although the gateway had it is
 * a failed try once recorded; its answer, coming after that, is late. A late
 * answer (to a call the job no longer awaits) counts for no try, but a link
 * token it brings is kept for the patient's next try, and a successful link is
 * still recorded (the care context linked, the job LINKED).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Collection, Db, Filter } from 'mongodb';
import { decodeJwt } from 'jose';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type Engine, guardedFindOneAndUpdate, guardedUpdate } from '../db/engine.js';
import { isDuplicateKey } from '../db/mongo.js';
import { normaliseAbhaAddress } from '../fhir/abha.js';
import type { CareContextDoc, Collections, RecordDoc } from '../records/model.js';
import type { RecordStore } from '../records/store.js';
import type { GatewayClient } from './gateway.js';
import type { OutboundCall } from './dialect.js';

export type HipLinkKind = 'link' | 'sms' | 'notify';
export type HipLinkStatus =
  | 'PENDING'
  | 'SENDING'
  | 'TOKEN_REQUESTED'
  | 'LINK_REQUESTED'
  | 'LINKED'
  | 'NOTIFIED'
  | 'SMS_SENT'
  | 'FAILED'
  | 'SKIPPED';
export const HIP_LINK_STATUSES: readonly HipLinkStatus[] = [
  'PENDING',
  'SENDING',
  'TOKEN_REQUESTED',
  'LINK_REQUESTED',
  'LINKED',
  'NOTIFIED',
  'SMS_SENT',
  'FAILED',
  'SKIPPED',
];
/** Jobs with something still to do; nextAttemptAt says when (due, lease end or answer deadline). */
const OPEN: HipLinkStatus[] = ['PENDING', 'SENDING', 'TOKEN_REQUESTED', 'LINK_REQUESTED'];

type SentCall = Extract<OutboundCall, 'generateToken' | 'linkCareContext' | 'contextNotify' | 'smsNotify'>;

export interface HipLinkDoc {
  _id: string; // `link|<care context id>`, `sms|<care context id>`, `notify|<recordId>/<version>`
  kind: HipLinkKind;
  provider: string;
  abhaAddress: string | null;
  abhaNumber: string | null;
  /** care_contexts _id (provider|patient|referenceNumber), the care context's referenceNumber and display. */
  careContextId: string;
  referenceNumber: string;
  display: string | null;
  hiTypes: string[];
  /** The newest record stored in the care context: where the Patient's demographics and phone are read. */
  recordId: string;
  status: HipLinkStatus;
  /** Tries started (each taken from PENDING); HIP_LINK_ATTEMPTS at most. */
  attempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  /**
   * Every REQUEST-ID this job sent, each recorded before its call was sent (reset when a finished link job starts
   * again).
   */
  sent: { call: SentCall; requestId: string; at: Date }[];
  /** The call being sent (SENDING) or whose answer is awaited (TOKEN_REQUESTED, LINK_REQUESTED). */
  awaiting?: { call: SentCall; requestId: string };
  /** The process holding the job while SENDING. */
  owner?: string;
  /** hip_link_tokens _id of the patient (provider|patient). */
  tokenKey: string;
  /** SHA-256 (prefix) of the link token the last link/carecontext carried, to drop that token if it is refused. */
  tokenHash?: string;
  sentAt?: Date;
  acknowledgedAt?: Date;
  linkedAt?: Date;
  /** Finished notify jobs are deleted then (TTL index where the engine has one, and the sweeper). */
  purgeAt?: Date;
  createdAt: Date;
  updatedAt: Date;
}

export interface HipLinkTokenDoc {
  _id: string; // provider|patient (the care contexts' patient key: ABHA number, else address)
  provider: string;
  abhaAddress: string | null;
  linkToken: string;
  expiresAt: Date;
  createdAt: Date;
}

export type AnswerKind = 'token' | 'link' | 'notify' | 'sms';
/** A gateway answer as the routes hand it over (error objects flattened to text). */
export interface GatewayAnswer {
  abhaAddress?: string | null;
  linkToken?: string | null;
  status?: string | null;
  error?: string;
}
/** applied; late (to a call the job no longer awaits; a token or a link it brings is still kept); ignored. */
export type AnswerResult = 'applied' | 'late' | 'ignored';

const CALL_OF: Record<AnswerKind, SentCall> = {
  token: 'generateToken',
  link: 'linkCareContext',
  notify: 'contextNotify',
  sms: 'smsNotify',
};
/** Each call as a job's lastError names it, and the status its job awaits the answer in (none: done once sent). */
const CALLS: Record<SentCall, { name: string; awaits?: HipLinkStatus }> = {
  generateToken: { name: 'generate-token', awaits: 'TOKEN_REQUESTED' },
  linkCareContext: { name: 'link/carecontext', awaits: 'LINK_REQUESTED' },
  contextNotify: { name: 'context notify' },
  smsNotify: { name: 'SMS notify' },
};

export const HIP_LINKS = 'hip_links';
export const HIP_LINK_TOKENS = 'hip_link_tokens';
const ABHA_STATUS = 'abha_status';
const BLOCKING = new Set(['DEACTIVATED', 'DELETED']);
/** Sends per call: one retry (a refreshed session after a 401); the job's own backoff does the rest. */
const SEND_ATTEMPTS = 2;
const NOTIFY_KEPT_MS = 30 * 24 * 3_600_000;
const SWEEP_BATCH = 100;

export interface HipLinkerDeps {
  db: Db;
  records: Collections;
  store: RecordStore;
  gateway: GatewayClient;
  config: Config;
  log: Log;
  clock?: () => Date;
  /** What the database guarantees; the store's engine (its lock tables are shared with the care contexts' writes). */
  engine: Engine;
  /** This process's owner id for jobs it sends (default: random per HipLinker). */
  owner?: string;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);
/** Gateway error text as kept for admin: long digit runs (a phone or ABHA number an error might quote) masked. */
const redact = (s: string) => s.replace(/\+?\d[\d\s-]{7,}\d/g, '[number]').slice(0, 300);
const message = (e: unknown) => redact(((e as Error)?.message ?? String(e)).slice(0, 200));
/**
 * A job as log lines name it: its id without the patient's ABHA number or address (log.ts: no ABHA identifiers in
 * logs). `link|provider|patient|care context` → `link|provider|care context`.
 */
export const logRef = (id: string) => {
  const [kind, provider, , ...cc] = id.split('|');
  return kind === 'notify' ? id : [kind, provider, cc.join('|')].join('|');
};
const addMs = (d: Date, ms: number) => new Date(d.getTime() + ms);
export const careContextIdOf = (r: Pick<RecordDoc, 'provider' | 'abhaNumber' | 'abhaAddress' | 'careContext'>) =>
  `${r.provider}|${r.abhaNumber ?? r.abhaAddress}|${r.careContext}`; // as records/store.ts rememberCareContext
const patientKeyOf = (r: { provider: string; abhaNumber: string | null; abhaAddress: string | null }) =>
  `${r.provider}|${r.abhaNumber ?? r.abhaAddress}`;

/**
 * When a link token expires: its JWT `exp` claim when it is a JWT with one, else six months from now (what NHA's
 * wrapper assumes for ABDM's link tokens).
 */
export function linkTokenExpiry(token: string, now: Date): Date {
  try {
    const { exp } = decodeJwt(token);
    const at = typeof exp === 'number' ? new Date(exp * 1000) : undefined;
    if (at && Number.isFinite(at.getTime())) return at;
  } catch {
    /* not a JWT */
  }
  const d = new Date(now);
  d.setUTCMonth(d.getUTCMonth() + 6);
  return d;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);
const GENDER: Record<string, 'M' | 'F' | 'O' | 'U'> = { male: 'M', female: 'F', other: 'O', unknown: 'U' };

/** What generate-token and SMS notify need from a record; read when sending, never stored. */
export interface PatientFacts {
  name?: string;
  gender?: 'M' | 'F' | 'O' | 'U';
  yearOfBirth?: number;
  /** Patient.telecom (system phone, a mobile first) as digits with an optional leading +, when it is 10-15 digits. */
  phone?: string;
  /** Composition.custodian's display, else the custodian Organization's (or the first Organization's) name. */
  facility?: string;
}

/** The document's Patient (Composition.subject, else the first Patient) and facility, from a stored bundle's text. */
export function patientFacts(text: string): PatientFacts {
  const bundle = obj(JSON.parse(text));
  const entries = arr(bundle?.entry)
    .map(obj)
    .filter((e): e is Json => !!e);
  const resources = entries.map((e) => obj(e.resource)).filter((r): r is Json => !!r);
  const resolve = (ref: unknown, type: string): Json | undefined => {
    const reference = str(obj(ref)?.reference);
    if (!reference) return undefined;
    const hit = entries.find((e) => {
      const r = obj(e.resource);
      return e.fullUrl === reference || (!!r && `${r.resourceType}/${r.id}` === reference);
    });
    const r = obj(hit?.resource);
    return r?.resourceType === type ? r : undefined;
  };
  const composition = resources.find((r) => r.resourceType === 'Composition');
  const patient = resolve(composition?.subject, 'Patient') ?? resources.find((r) => r.resourceType === 'Patient');
  const facts: PatientFacts = {};
  if (patient) {
    const names = arr(patient.name)
      .map(obj)
      .filter((n): n is Json => !!n);
    const chosen = names.find((n) => n.use === 'official') ?? names[0];
    const full =
      str(chosen?.text) ??
      str(
        [...arr(chosen?.given), chosen?.family]
          .map(str)
          .filter((x) => !!x)
          .join(' '),
      );
    if (full) facts.name = full;
    const gender = typeof patient.gender === 'string' ? GENDER[patient.gender] : undefined;
    if (gender) facts.gender = gender;
    const birth = typeof patient.birthDate === 'string' ? /^(\d{4})/.exec(patient.birthDate) : null;
    if (birth) facts.yearOfBirth = Number(birth[1]);
    const phones = arr(patient.telecom)
      .map(obj)
      .filter((t): t is Json => !!t && t.system === 'phone' && typeof t.value === 'string');
    const ordered = [...phones.filter((t) => t.use === 'mobile'), ...phones.filter((t) => t.use !== 'mobile')];
    for (const t of ordered) {
      const digits = (t.value as string).replace(/[\s().-]/g, '');
      if (/^\+?\d{10,15}$/.test(digits)) {
        facts.phone = digits;
        break;
      }
    }
  }
  const custodian = obj(composition?.custodian);
  const organization = resolve(custodian, 'Organization') ?? resources.find((r) => r.resourceType === 'Organization');
  const facility = str(custodian?.display) ?? str(organization?.name);
  if (facility) facts.facility = facility.slice(0, 256);
  return facts;
}

/** A job as admin sees it: no demographics (none are kept), no tokens. */
export function describeHipLink(j: HipLinkDoc) {
  return {
    id: j._id,
    kind: j.kind,
    provider: j.provider,
    careContext: { id: j.careContextId, referenceNumber: j.referenceNumber, display: j.display },
    abhaAddress: j.abhaAddress,
    abhaNumber: j.abhaNumber,
    hiTypes: j.hiTypes,
    recordId: j.recordId,
    status: j.status,
    attempts: j.attempts,
    nextAttemptAt: j.nextAttemptAt,
    lastError: j.lastError,
    requestIds: j.sent.map((s) => ({ call: s.call, requestId: s.requestId, at: s.at })),
    ...(j.sentAt ? { sentAt: j.sentAt } : {}),
    ...(j.acknowledgedAt ? { acknowledgedAt: j.acknowledgedAt } : {}),
    ...(j.linkedAt ? { linkedAt: j.linkedAt } : {}),
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
  };
}

export class HipLinker {
  readonly jobs: Collection<HipLinkDoc>;
  readonly tokens: Collection<HipLinkTokenDoc>;
  private abhaStatus: Collection<{ _id: string; status?: unknown }>;
  readonly owner: string;
  /** Whether uploads are followed up: a gateway configured, HIP_INITIATED_LINKING, and the v3 dialect. */
  readonly enabled: boolean;
  private readonly clock: () => Date;
  private readonly leaseMs: number;
  private readonly backoffMs: number;
  private readonly maxAttempts: number;
  private readonly answerTimeoutMs: number;
  private readonly inFlight = new Set<Promise<void>>();
  private sweeping = false;

  constructor(private deps: HipLinkerDeps) {
    const { db, config, gateway, log } = deps;
    this.jobs = db.collection<HipLinkDoc>(HIP_LINKS);
    this.tokens = db.collection<HipLinkTokenDoc>(HIP_LINK_TOKENS);
    this.abhaStatus = db.collection(ABHA_STATUS);
    this.owner = deps.owner ?? randomUUID();
    this.clock = deps.clock ?? (() => new Date());
    // A send takes at most SEND_ATTEMPTS gateway timeouts, plus a session call and the pause between them.
    this.leaseMs = (SEND_ATTEMPTS + 2) * config.GATEWAY_TIMEOUT_MS + 5000;
    this.backoffMs = config.HIP_LINK_BACKOFF_MS;
    this.maxAttempts = config.HIP_LINK_ATTEMPTS;
    this.answerTimeoutMs = config.HIP_LINK_ANSWER_TIMEOUT_MS;
    const wanted = gateway.configured && config.HIP_INITIATED_LINKING;
    this.enabled = wanted && gateway.dialect === 'v3' && gateway.has('generateToken');
    if (wanted && !this.enabled)
      log.info(
        { dialect: gateway.dialect },
        'HIP-initiated linking, context and SMS notify not offered with GATEWAY_API_VERSION=v0.5: ' +
          "there it needs the patient's authentication at the counter; use v3",
      );
  }

  /** Indexes: due jobs, answers by REQUEST-ID, admin's status filter; expiry of tokens and notify jobs. */
  async ensureIndexes(): Promise<void> {
    const ttl = async (c: Pick<Collection, 'createIndex'>, field: string, seconds: number) => {
      try {
        await c.createIndex({ [field]: 1 }, { name: `${field}_ttl`, expireAfterSeconds: seconds });
      } catch {
        await c.createIndex({ [field]: 1 }, { name: `${field}_ttl` });
      }
    };
    await Promise.all([
      this.jobs.createIndex({ status: 1, nextAttemptAt: 1 }, { name: 'status_next_attempt' }),
      this.jobs.createIndex({ status: 1, _id: 1 }, { name: 'status_id' }),
      this.jobs.createIndex({ 'sent.requestId': 1 }, { name: 'sent_request_id' }),
      ttl(this.jobs, 'purgeAt', 0),
      ttl(this.tokens, 'expiresAt', 0),
    ]);
  }

  /**
   * An upload stored a new record or version: follow it up in the background. Never throws and never waits; the
   * upload's answer does not depend on the gateway.
   */
  stored(record: RecordDoc): void {
    if (!this.enabled) return;
    this.track(this.follow(record), { recordId: record.recordId }, 'upload not followed up');
  }

  /** Resolves once the background work started so far (and what it started) has settled: tests, shutdown. */
  async idle(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private track(p: Promise<unknown>, ctx: Record<string, unknown>, what: string): void {
    const q: Promise<void> = p
      .then(() => undefined)
      .catch((e) => this.deps.log.warn({ ...ctx, err: message(e) }, `hip-linking: ${what}`))
      .finally(() => this.inFlight.delete(q));
    this.inFlight.add(q);
  }

  private async follow(r: RecordDoc): Promise<void> {
    const cc = await this.deps.records.careContexts.findOne({ _id: careContextIdOf(r) });
    if (!cc) return; // remembered before the upload answers; absent only if erased since
    const now = this.clock();
    if (cc.linked) {
      if (await this.blocked(cc.linked.abhaAddress)) return;
      const job = this.newJob('notify', `notify|${r._id}`, r, cc, [r.hiType], now);
      if (await this.insert(job)) await this.runIfDue(job._id, now);
      return;
    }
    if (r.abhaAddress) {
      if (await this.blocked(r.abhaAddress)) return;
      return this.startLink(r, cc, now);
    }
    const text = await this.deps.store.text(r.contentId);
    const phone = text ? patientFacts(text).phone : undefined;
    if (phone) return this.startSms(r, cc, now);
    if (r.abhaNumber) return this.startLink(r, cc, now);
  }

  private newJob(
    kind: HipLinkKind,
    _id: string,
    r: RecordDoc,
    cc: CareContextDoc,
    hiTypes: string[],
    now: Date,
  ): HipLinkDoc {
    return {
      _id,
      kind,
      provider: r.provider,
      abhaAddress: r.abhaAddress,
      abhaNumber: r.abhaNumber,
      careContextId: cc._id,
      referenceNumber: cc.referenceNumber,
      display: cc.display,
      hiTypes,
      recordId: r.recordId,
      status: 'PENDING',
      attempts: 0,
      nextAttemptAt: now,
      lastError: null,
      sent: [],
      tokenKey: patientKeyOf(r),
      createdAt: now,
      updatedAt: now,
    };
  }

  private async insert(job: HipLinkDoc): Promise<boolean> {
    try {
      await this.jobs.insertOne(job);
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  }

  /** A care context's link job: new, started again when it had ended, else told of the newest record. */
  private async startLink(r: RecordDoc, cc: CareContextDoc, now: Date): Promise<void> {
    const hiTypes = [...new Set([...cc.hiTypes, r.hiType])];
    const job = this.newJob('link', `link|${cc._id}`, r, cc, hiTypes, now);
    if (await this.insert(job)) return void (await this.runIfDue(job._id, now));
    const engine = this.deps.engine;
    const restarted = await guardedUpdate(
      engine,
      this.jobs,
      job._id,
      { status: { $in: ['FAILED', 'SKIPPED', 'LINKED'] } },
      {
        $set: {
          status: 'PENDING',
          attempts: 0,
          nextAttemptAt: now,
          lastError: null,
          sent: [],
          recordId: r.recordId,
          abhaAddress: r.abhaAddress,
          abhaNumber: r.abhaNumber,
          updatedAt: now,
        },
        $addToSet: { hiTypes: r.hiType },
        $unset: { awaiting: '', owner: '', tokenHash: '' },
      },
    );
    if (restarted) return void (await this.runIfDue(job._id, now));
    await guardedUpdate(
      engine,
      this.jobs,
      job._id,
      {},
      { $set: { recordId: r.recordId, updatedAt: now }, $addToSet: { hiTypes: r.hiType } },
    );
  }

  /** A care context's SMS notify: once; again only if it was never accepted by the gateway. */
  private async startSms(r: RecordDoc, cc: CareContextDoc, now: Date): Promise<void> {
    const job = this.newJob('sms', `sms|${cc._id}`, r, cc, [...new Set([...cc.hiTypes, r.hiType])], now);
    if (await this.insert(job)) return void (await this.runIfDue(job._id, now));
    const restarted = await guardedUpdate(
      this.deps.engine,
      this.jobs,
      job._id,
      { status: 'FAILED', sentAt: { $exists: false } },
      {
        $set: {
          status: 'PENDING',
          attempts: 0,
          nextAttemptAt: now,
          lastError: null,
          recordId: r.recordId,
          updatedAt: now,
        },
      },
    );
    if (restarted) await this.runIfDue(job._id, now);
  }

  private async blocked(address: string | null | undefined): Promise<boolean> {
    if (!address) return false;
    const s = await this.abhaStatus.findOne({ _id: address.toLowerCase() }, { projection: { status: 1 } });
    return typeof s?.status === 'string' && BLOCKING.has(s.status.toUpperCase());
  }

  /**
   * Runs the jobs that are due: expired tokens and finished notify jobs deleted first, then each job whose answer is
   * overdue (or whose lease ran out) counted as a failed try, then each due PENDING job taken and run. The number run.
   */
  async sweep(now: Date = this.clock()): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    try {
      await Promise.all([
        this.tokens.deleteMany({ expiresAt: { $lte: now } }),
        this.jobs.deleteMany({ purgeAt: { $lte: now } }),
      ]);
      if (!this.enabled) return 0;
      const due = await this.jobs
        .find({ status: { $in: OPEN }, nextAttemptAt: { $lte: now } })
        .sort({ nextAttemptAt: 1, _id: 1 })
        .limit(SWEEP_BATCH)
        .toArray();
      let ran = 0;
      for (const job of due) {
        try {
          if (job.status !== 'PENDING') await this.overdue(job);
          if (await this.runIfDue(job._id, now)) ran++;
        } catch (e) {
          this.deps.log.warn({ job: logRef(job._id), err: message(e) }, 'hip-linking: job not run; will retry');
        }
      }
      return ran;
    } finally {
      this.sweeping = false;
    }
  }

  private async overdue(job: HipLinkDoc): Promise<void> {
    const why =
      job.status === 'SENDING'
        ? 'interrupted while sending (the lease ran out)'
        : `no ${job.status === 'TOKEN_REQUESTED' ? 'on-generate-token' : 'on_carecontext'} answer within ${Math.round(this.answerTimeoutMs / 1000)} s`;
    await this.failAttempt(job, { status: job.status, nextAttemptAt: job.nextAttemptAt }, why);
  }

  /** Takes a due PENDING job (a guarded write: one process wins) and runs it; whether it was taken. */
  private async runIfDue(id: string, now: Date): Promise<boolean> {
    const job = await guardedFindOneAndUpdate(
      this.deps.engine,
      this.jobs,
      id,
      { status: 'PENDING', nextAttemptAt: { $lte: now } },
      {
        $set: { status: 'SENDING', owner: this.owner, nextAttemptAt: addMs(this.clock(), this.leaseMs) },
        $inc: { attempts: 1 },
      },
    );
    if (!job) return false;
    try {
      await this.run(job);
    } catch (e) {
      // Left SENDING: the sweeper counts it as a failed try once the lease runs out.
      this.deps.log.warn({ job: logRef(id), err: message(e) }, 'hip-linking: job interrupted; will retry');
    }
    return true;
  }

  private get mine(): Filter<HipLinkDoc> {
    return { status: 'SENDING', owner: this.owner };
  }

  private async run(job: HipLinkDoc): Promise<void> {
    if (job.kind === 'notify') return this.sendNotify(job);
    if (await this.blocked(job.abhaAddress))
      return this.finish(job, this.mine, 'SKIPPED', 'the ABHA address is deactivated or deleted (abha_status)');
    if (job.kind === 'sms') return this.sendSms(job);
    const cc = await this.deps.records.careContexts.findOne({ _id: job.careContextId });
    if (!cc) return this.finish(job, this.mine, 'FAILED', 'the care context is no longer stored');
    if (cc.linked) return this.finish(job, this.mine, 'LINKED', null, { linkedAt: cc.linked.at });
    const token = await this.validToken(job.tokenKey);
    if (token) return this.sendLink(job, token.linkToken, token.abhaAddress);
    return this.requestToken(job);
  }

  private async validToken(key: string): Promise<HipLinkTokenDoc | null> {
    const now = this.clock();
    const t = await this.tokens.findOne({ _id: key });
    if (!t) return null;
    if (t.expiresAt > now) return t;
    await this.tokens.deleteOne({ _id: key, expiresAt: { $lte: now } });
    return null;
  }

  /** The Patient as the job's record now stands (the record's current version). */
  private async facts(job: HipLinkDoc): Promise<PatientFacts | string> {
    const doc = await this.deps.store.currentById(job.recordId);
    if (!doc) return 'the record is no longer stored';
    if (careContextIdOf(doc) !== job.careContextId) return "the record's newest version names another care context";
    const text = await this.deps.store.currentText(doc);
    if (text === undefined) return "the record's content is missing";
    return patientFacts(text);
  }

  private async requestToken(job: HipLinkDoc): Promise<void> {
    const facts = await this.facts(job);
    if (typeof facts === 'string') return this.finish(job, this.mine, 'FAILED', facts);
    const { name, gender, yearOfBirth } = facts;
    if (!name || !gender || yearOfBirth === undefined) {
      const missing = [!name && 'name', !gender && 'gender', yearOfBirth === undefined && 'birthDate'].filter(Boolean);
      return this.finish(
        job,
        this.mine,
        'FAILED',
        `generate-token needs the Patient's name, gender and birth year; the record's Patient has no ${missing.join(', ')}`,
      );
    }
    const body = {
      ...(job.abhaNumber ? { abhaNumber: job.abhaNumber } : {}),
      ...(job.abhaAddress ? { abhaAddress: job.abhaAddress } : {}),
      name,
      gender,
      yearOfBirth,
    };
    await this.call(job, 'generateToken', body);
  }

  /** The patient reference the HIP links under (and names in context notify): the ABHA address, else number. */
  private reference(x: { abhaAddress: string | null; abhaNumber: string | null }): string {
    return (x.abhaAddress ?? x.abhaNumber)!;
  }

  private async sendLink(job: HipLinkDoc, token: string, tokenAddress?: string | null): Promise<void> {
    const cc = await this.deps.records.careContexts.findOne({ _id: job.careContextId });
    if (!cc) return this.finish(job, this.mine, 'FAILED', 'the care context is no longer stored');
    if (cc.linked) return this.finish(job, this.mine, 'LINKED', null, { linkedAt: cc.linked.at });
    const reference = this.reference(job);
    const address = job.abhaAddress ?? normaliseAbhaAddress(tokenAddress ?? '') ?? null;
    const hiTypes = [...new Set([...cc.hiTypes, ...job.hiTypes])];
    const careContexts = [{ referenceNumber: cc.referenceNumber, display: cc.display ?? cc.referenceNumber }];
    // The patient as the PHR app shows them: the name on the record now (read for this call, not kept).
    const facts = await this.facts(job);
    const display = (typeof facts === 'string' ? undefined : facts.name) ?? reference;
    const body = {
      ...(job.abhaNumber ? { abhaNumber: job.abhaNumber } : {}),
      ...(address ? { abhaAddress: address } : {}),
      patient: hiTypes.map((hiType) => ({
        referenceNumber: reference,
        display,
        careContexts,
        hiType,
        count: careContexts.length,
      })),
    };
    await this.call(job, 'linkCareContext', body, {
      headers: { 'X-LINK-TOKEN': token },
      record: { tokenHash: sha(token), hiTypes },
      // The gateway refusing the request itself (400, 401, 403) is taken as refusing the token: ask for a new one.
      failed: async (e) => {
        if (/HTTP (400|401|403)\b/.test(message(e))) await this.dropToken(job.tokenKey, sha(token));
      },
    });
  }

  private async sendNotify(job: HipLinkDoc): Promise<void> {
    const cc = await this.deps.records.careContexts.findOne({ _id: job.careContextId });
    if (!cc?.linked) return this.finish(job, this.mine, 'FAILED', 'the care context is no longer linked');
    if (await this.blocked(cc.linked.abhaAddress))
      return this.finish(job, this.mine, 'SKIPPED', 'the ABHA address is deactivated or deleted (abha_status)');
    const now = this.clock();
    const body = {
      notification: {
        patient: { id: cc.linked.abhaAddress },
        careContext: {
          patientReference: cc.abhaAddress ?? cc.abhaNumber ?? cc.linked.abhaAddress,
          careContextReference: cc.referenceNumber,
        },
        hiTypes: job.hiTypes,
        date: now.toISOString(),
        hip: { id: job.provider },
      },
    };
    await this.call(job, 'contextNotify', body);
  }

  private async sendSms(job: HipLinkDoc): Promise<void> {
    const facts = await this.facts(job);
    if (typeof facts === 'string') return this.finish(job, this.mine, 'FAILED', facts);
    if (!facts.phone) return this.finish(job, this.mine, 'FAILED', "the record's Patient has no usable phone number");
    const body = {
      notification: { phoneNo: facts.phone, hip: { name: facts.facility ?? job.provider, id: job.provider } },
    };
    await this.call(job, 'smsNotify', body);
  }

  /**
   * One gateway call of a job this process holds (SENDING, its owner). Its REQUEST-ID is chosen here and recorded in
   * the job first (`sent`, `awaiting`, and `record`'s fields), by a write guarded on the job still being held; only
   * then is the call sent with that id, so its answer, however fast, finds the job. Once the gateway has taken the
   * call, the job awaits the answer (TOKEN_REQUESTED, LINK_REQUESTED, with the answer's deadline) or is done (NOTIFIED,
   * SMS_SENT); a send that fails is a failed try (then `failed` runs). Both writes are guarded on `awaiting` still
   * naming this call: an answer applied meanwhile (the gateway answers as fast as it likes) has moved the job on, and
   * they then change nothing.
   */
  private async call(
    job: HipLinkDoc,
    call: SentCall,
    body: Record<string, unknown>,
    opts: {
      headers?: Record<string, string>;
      record?: Partial<HipLinkDoc>;
      /** After a failed send counted as a failed try. */
      failed?: (e: unknown) => Promise<void>;
    } = {},
  ): Promise<void> {
    const engine = this.deps.engine;
    const requestId = randomUUID();
    const recordedAt = this.clock();
    const recorded = await guardedUpdate(engine, this.jobs, job._id, this.mine, {
      $set: { ...opts.record, awaiting: { call, requestId }, updatedAt: recordedAt },
      $push: { sent: { call, requestId, at: recordedAt } },
    });
    if (!recorded) {
      this.deps.log.warn({ job: logRef(job._id), call }, 'hip-linking: job taken over before sending; not sent');
      return;
    }
    const sending = this.sending(requestId);
    const { name, awaits } = CALLS[call];
    try {
      await this.deps.gateway.send(call, body, {
        hip: job.provider,
        headers: opts.headers,
        attempts: SEND_ATTEMPTS,
        requestId,
      });
    } catch (e) {
      // A failed try, unless an answer to this very call has been applied meanwhile (the gateway had it after all).
      if (await this.failAttempt(job, sending, `${name}: ${message(e)}`)) await opts.failed?.(e);
      return;
    }
    const now = this.clock();
    await guardedUpdate(
      engine,
      this.jobs,
      job._id,
      sending,
      awaits
        ? {
            $set: { status: awaits, nextAttemptAt: addMs(now, this.answerTimeoutMs), updatedAt: now },
            $unset: { owner: '' },
          }
        : { $set: { ...this.sentState(job, now), updatedAt: now }, $unset: { owner: '', awaiting: '' } },
    );
  }

  /** The job is still sending the call with this REQUEST-ID: neither an answer nor a sweep has moved it on. */
  private sending(requestId: string): Filter<HipLinkDoc> {
    return { status: 'SENDING', 'awaiting.requestId': requestId } as Filter<HipLinkDoc>;
  }

  /** The job awaits the answer to the call with this REQUEST-ID, whether or not its send has returned yet. */
  private awaiting(requestId: string): Filter<HipLinkDoc> {
    return { 'awaiting.requestId': requestId } as Filter<HipLinkDoc>;
  }

  /** A context or SMS notify the gateway has taken: done (not sent again). */
  private sentState(job: HipLinkDoc, now: Date): Partial<HipLinkDoc> {
    return {
      status: job.kind === 'notify' ? 'NOTIFIED' : 'SMS_SENT',
      sentAt: now,
      nextAttemptAt: null,
      lastError: null,
      ...(job.kind === 'notify' ? { purgeAt: addMs(now, NOTIFY_KEPT_MS) } : {}),
    };
  }

  /** A try failed: again after the backoff, or FAILED once HIP_LINK_ATTEMPTS tries are spent. */
  private async failAttempt(job: HipLinkDoc, condition: Filter<HipLinkDoc>, why: string): Promise<boolean> {
    const now = this.clock();
    const final = job.attempts >= this.maxAttempts;
    const reason = redact(why);
    const applied = await guardedUpdate(this.deps.engine, this.jobs, job._id, condition, {
      $set: {
        status: final ? 'FAILED' : 'PENDING',
        nextAttemptAt: final ? null : addMs(now, this.backoffMs * 2 ** Math.max(0, job.attempts - 1)),
        lastError: final ? `${reason} (after ${job.attempts} tries)` : reason,
        updatedAt: now,
        ...(final && job.kind === 'notify' ? { purgeAt: addMs(now, NOTIFY_KEPT_MS) } : {}),
      },
      $unset: { owner: '', awaiting: '' },
    });
    if (applied)
      this.deps.log.info(
        { job: logRef(job._id), attempts: job.attempts, final },
        final ? 'hip-linking: job failed' : 'hip-linking: try failed; will retry',
      );
    return applied;
  }

  private async finish(
    job: HipLinkDoc,
    condition: Filter<HipLinkDoc>,
    status: HipLinkStatus,
    why: string | null,
    set: Partial<HipLinkDoc> = {},
  ): Promise<void> {
    const now = this.clock();
    await guardedUpdate(this.deps.engine, this.jobs, job._id, condition, {
      $set: { ...set, status, nextAttemptAt: null, lastError: why, updatedAt: now },
      $unset: { owner: '', awaiting: '' },
    });
    if (status !== 'LINKED') this.deps.log.info({ job: logRef(job._id), status }, 'hip-linking: job ended');
  }

  private async dropToken(key: string, hash: string | undefined): Promise<void> {
    const t = await this.tokens.findOne({ _id: key });
    if (t && (!hash || sha(t.linkToken) === hash)) await this.tokens.deleteOne({ _id: key, linkToken: t.linkToken });
  }

  /**
   * An answer from the gateway naming the REQUEST-ID it answers, applied to the job that recorded that id before
   * sending it (see the file header); an id no job sent is ignored and nothing is stored. The ABHA identifiers of the
   * job's patient, for the audit trail.
   */
  async answer(
    kind: AnswerKind,
    requestId: string,
    answer: GatewayAnswer,
  ): Promise<{ result: AnswerResult; patients: string[] }> {
    const job = await this.jobs.findOne({ 'sent.requestId': requestId });
    const sent = job?.sent.find((s) => s.requestId === requestId);
    if (!job || sent?.call !== CALL_OF[kind]) {
      // No job sent it (or sent it as another call): a REQUEST-ID is not patient data, but it is the gateway's text.
      this.deps.log.info(
        { kind, requestId: redact(requestId), known: !!job },
        'hip-linking: answer to a REQUEST-ID no job sent; ignored',
      );
      return { result: 'ignored', patients: [] };
    }
    const patients = [job.abhaAddress, job.abhaNumber].filter((x): x is string => !!x);
    return { result: await this.apply(job, kind, requestId, answer), patients };
  }

  private async apply(job: HipLinkDoc, kind: AnswerKind, requestId: string, a: GatewayAnswer): Promise<AnswerResult> {
    // Read after the id was recorded (the gateway had not received the call before): what the job awaits, or did.
    const current = job.awaiting?.requestId === requestId;
    const awaiting = this.awaiting(requestId);
    const now = this.clock();
    const engine = this.deps.engine;
    const error = a.error ? redact(a.error) : undefined;
    if (kind === 'token') {
      const token = a.linkToken ?? undefined;
      if (error || !token) {
        if (!current) return 'late';
        return this.failedBy(job, awaiting, `on-generate-token: ${error ?? 'no linkToken'}`);
      }
      const expiresAt = linkTokenExpiry(token, now);
      if (expiresAt <= now) {
        // Not kept: the next try asks for another.
        if (!current) return 'late';
        return this.failedBy(job, awaiting, 'on-generate-token: the link token had already expired');
      }
      const address = normaliseAbhaAddress(a.abhaAddress ?? '') ?? job.abhaAddress;
      await guardedUpdate(
        engine,
        this.tokens,
        job.tokenKey,
        {},
        { $set: { provider: job.provider, abhaAddress: address, linkToken: token, expiresAt, createdAt: now } },
        { upsert: true },
      );
      if (!current) return 'late';
      // Taken from TOKEN_REQUESTED, or from SENDING when the answer beat the send's return (that send's own write
      // then finds `awaiting` changed and does nothing).
      const taken = await guardedFindOneAndUpdate(engine, this.jobs, job._id, awaiting, {
        $set: { status: 'SENDING', owner: this.owner, nextAttemptAt: addMs(now, this.leaseMs), updatedAt: now },
        $unset: { awaiting: '' },
      });
      if (!taken) return 'late';
      this.track(this.sendLink(taken, token, address), { job: logRef(job._id) }, 'link/carecontext not sent');
      return 'applied';
    }
    if (kind === 'link') {
      if (error) {
        if (!current) return 'late';
        if (/token/i.test(error)) await this.dropToken(job.tokenKey, job.tokenHash);
        return this.failedBy(job, awaiting, `on_carecontext: ${error}`);
      }
      // Linked, says the gateway (late or not): the care context's link is recorded once.
      const token = await this.tokens.findOne({ _id: job.tokenKey }, { projection: { abhaAddress: 1 } });
      const address =
        normaliseAbhaAddress(a.abhaAddress ?? '') ?? job.abhaAddress ?? token?.abhaAddress ?? job.abhaNumber!;
      await guardedUpdate(
        engine,
        this.deps.records.careContexts,
        job.careContextId,
        { linked: { $exists: false } },
        // A patient known only by ABHA number, whose address the gateway did not name, is linked under the number.
        { $set: { linked: { abhaAddress: address, at: now, linkRefNumber: requestId } } },
      );
      await guardedUpdate(
        engine,
        this.jobs,
        job._id,
        { status: { $ne: 'LINKED' } },
        {
          $set: { status: 'LINKED', linkedAt: now, nextAttemptAt: null, lastError: null, updatedAt: now },
          $unset: { awaiting: '', owner: '' },
        },
      );
      return current ? 'applied' : 'late';
    }
    // Context and SMS notify answers: an acknowledgement, or an error kept for admin (not sent again). Before the
    // send has returned (`awaiting` still names it) the answer also ends the send as the sender would have.
    const refused = error ? `${kind === 'sms' ? 'SMS' : 'context'} notify refused: ${error}` : undefined;
    if (
      current &&
      (await guardedUpdate(engine, this.jobs, job._id, awaiting, {
        $set: {
          ...this.sentState(job, now),
          ...(refused ? { status: 'FAILED' as const, lastError: refused } : { acknowledgedAt: now }),
          updatedAt: now,
        },
        $unset: { owner: '', awaiting: '' },
      }))
    )
      return 'applied';
    if (refused)
      await guardedUpdate(
        engine,
        this.jobs,
        job._id,
        { status: { $in: ['NOTIFIED', 'SMS_SENT'] } },
        { $set: { status: 'FAILED', lastError: refused, updatedAt: now } },
      );
    else await guardedUpdate(engine, this.jobs, job._id, {}, { $set: { acknowledgedAt: now, updatedAt: now } });
    return 'applied';
  }

  /** An error answer to the call the job awaits: a failed try, if the job still awaits it. */
  private async failedBy(job: HipLinkDoc, awaiting: Filter<HipLinkDoc>, why: string): Promise<AnswerResult> {
    return (await this.failAttempt(job, awaiting, why)) ? 'applied' : 'late';
  }

  /** Admin's page of jobs, by id, optionally of one status and kind; `after` continues after that id. */
  async list(q: { status?: HipLinkStatus; kind?: HipLinkKind; count: number; after?: string }) {
    const filter: Filter<HipLinkDoc> = {
      ...(q.status ? { status: q.status } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.after ? { _id: { $gt: q.after } } : {}),
    };
    const docs = await this.jobs
      .find(filter, { projection: { tokenHash: 0, owner: 0 } })
      .sort({ _id: 1 })
      .limit(q.count + 1)
      .toArray();
    const page = docs.slice(0, q.count);
    return { jobs: page, next: docs.length > q.count ? page[page.length - 1]._id : undefined };
  }
}
