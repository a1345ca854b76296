/**
 * Care-context discovery and linking, answered to the gateway by callback.
 *
 * discover: a match needs a verified identifier: the ABHA address in
 * patient.id, or an ABHA number among verifiedIdentifiers (NDHM_HEALTH_NUMBER,
 * HEALTH_NUMBER, ABHA_NUMBER). Demographics never match on their own; when the
 * request carries name, gender and year of birth, a matched care context with
 * a stored demographicKey is left out unless they agree (they only narrow).
 * What discovery offered is recorded, insert-only, per (provider,
 * transactionId): the requesting patient.id, the patient reference returned,
 * the care contexts offered, and an expiry (LINK_DISCOVERY_TTL_SEC).
 *
 * link/init: with a discovery record for its transactionId, only care contexts
 * that discovery offered to the same patient.id, under the reference it
 * returned. Without one, only care contexts whose stored ABHA address is
 * patient.id, with referenceNumber that address or the care context's ABHA
 * number. Limited per patient (LINK_INIT_PER_PATIENT_PER_HOUR, counted in the
 * database) and per caller (LINK_INIT_PER_CALLER_PER_MINUTE, in process). The
 * one-time code goes through the configured notifier (otp-delivery.ts) to the
 * patient as the provider holds them; if it cannot be delivered the request
 * fails and the gateway hears so.
 *
 * link/confirm: check the code (expiry, attempt limit) and record the link on
 * care contexts not yet linked. Only the code's salted hash is stored. Each
 * confirmation first counts its attempt with a guarded increment (only while
 * PENDING and under LINK_OTP_MAX_ATTEMPTS: db/engine.ts), and only a counted
 * attempt has its code checked, so the limit holds across every server
 * process; the LINKED transition is guarded on PENDING, and each care
 * context's link on its not being linked yet.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { isDuplicateKey } from '../db/mongo.js';
import { type CareContextDoc, type Collections } from '../records/model.js';
import { type AppEnv, requireRole } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { rateLimit } from '../http/rate-limit.js';
import { badRequest, error, operationOutcome, unprocessable } from '../fhir/outcome.js';
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { GatewayClient } from './gateway.js';
import { KeyedLock } from '../db/keyed-lock.js';
import { type Engine, guardedFindOneAndUpdate, guardedUpdate } from '../db/engine.js';
import { demographicKey } from '../records/index-keys.js';
import type { OtpMessage, OtpNotifier } from './otp-delivery.js';

export { consoleNotifier, type OtpMessage, type OtpNotifier } from './otp-delivery.js';

interface LinkRequestDoc {
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

/** A link/init counter: one document per provider, patient and clock hour, incremented by _id. */
interface InitUsageDoc { _id: string; count: number; expiresAt: Date }

const DISCOVERIES = 'link_discoveries';
const INIT_USAGE = 'link_init_usage';
const HOUR_MS = 3_600_000;

const id = z.string().min(1).max(128);
export const Discover = z.object({
  requestId: id, timestamp: z.string().max(64).optional(), transactionId: id,
  patient: z.object({
    id: z.string().min(3).max(128),
    verifiedIdentifiers: z.array(z.object({ type: z.string().max(64), value: z.string().max(128) })).max(20).optional(),
    unverifiedIdentifiers: z.array(z.object({ type: z.string().max(64), value: z.string().max(128) })).max(20).optional(),
    name: z.string().max(256).optional(), gender: z.string().max(8).optional(), yearOfBirth: z.number().int().optional(),
  }).passthrough(),
}).passthrough();
export const LinkInit = z.object({
  requestId: id, timestamp: z.string().max(64).optional(), transactionId: id,
  patient: z.object({ id: z.string().min(3).max(128), referenceNumber: z.string().min(1).max(128), careContexts: z.array(z.object({ referenceNumber: id })).min(1).max(500) }),
}).passthrough();
export const LinkConfirm = z.object({
  requestId: id, timestamp: z.string().max(64).optional(),
  confirmation: z.object({ linkRefNumber: id, token: z.string().min(1).max(32) }),
}).passthrough();

/** verifiedIdentifiers types that carry an ABHA number. */
export const NUMBER_TYPES = new Set(['NDHM_HEALTH_NUMBER', 'HEALTH_NUMBER', 'ABHA_NUMBER']);
const hashOtp = (salt: string, otp: string) => createHash('sha256').update(salt).update(otp).digest();
const distinct = (xs: (string | null | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))].sort();
/** A patient reference as discovery returns it: an ABHA address (lower case) or number (digits), else as given. */
const normaliseReference = (ref: string) => normaliseAbhaAddress(ref) ?? normaliseAbhaNumber(ref) ?? ref.trim();

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

export interface LinkingDeps { records: Collections; gateway: GatewayClient; audit: AuditLog; config: Config; log: Log; clock: () => Date; notifier: OtpNotifier; db: Db; engine: Engine }

export function linkingRoutes(deps: LinkingDeps) {
  const { records, gateway, audit, config, log, clock, notifier, engine } = deps;
  const links: Collection<LinkRequestDoc> = deps.db.collection<LinkRequestDoc>('link_requests');
  const discoveries: Collection<DiscoveryDoc> = deps.db.collection<DiscoveryDoc>(DISCOVERIES);
  const initUsage: Collection<InitUsageDoc> = deps.db.collection<InitUsageDoc>(INIT_USAGE);
  const counting = new KeyedLock();
  // Per caller (token role and facility), in this process: a bucket of LINK_INIT_PER_CALLER_PER_MINUTE, refilled at that rate.
  const perCaller = rateLimit(config.LINK_INIT_PER_CALLER_PER_MINUTE, Math.max(1, config.LINK_INIT_PER_CALLER_PER_MINUTE));
  const r = new Hono<AppEnv>();
  /**
   * Removes expired discovery records and counters, at most once a minute per
   * process (MongoDB's TTL index does it too; FerretDB keeps the index but not
   * the expiry).
   */
  let swept = 0;
  const sweepExpired = (now: Date) => {
    if (now.getTime() - swept < 60_000) return;
    swept = now.getTime();
    void Promise.all([discoveries.deleteMany({ expiresAt: { $lte: now } }), initUsage.deleteMany({ expiresAt: { $lte: now } })])
      .catch((e) => log.warn({ err: (e as Error).message.slice(0, 200) }, 'linking sweep failed; will retry'));
  };

  const hipOf = (c: any): string => {
    const hip = c.req.header('x-hip-id');
    if (!hip || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(hip)) throw badRequest('X-HIP-ID header required: the provider the gateway addresses', 'X-HIP-ID');
    return hip;
  };
  /** Sends a callback in the background; a failure is logged, the request was already answered. */
  const callback = (path: string, body: Record<string, unknown>) => {
    void gateway.post(path, { ...gateway.envelope(), ...body }).catch((e) => log.warn({ path, err: (e as Error).message.slice(0, 200) }, 'gateway callback failed'));
  };
  /** Care contexts as the gateway sees them, one per referenceNumber. */
  const show = (docs: CareContextDoc[]) => {
    const seen = new Map<string, { referenceNumber: string; display: string }>();
    for (const d of docs) if (!seen.has(d.referenceNumber)) seen.set(d.referenceNumber, { referenceNumber: d.referenceNumber, display: d.display ?? d.referenceNumber });
    return [...seen.values()];
  };

  /**
   * Counts one link/init for the patient at the provider in the current clock
   * hour. The increment is atomic on MongoDB (shared by every server process)
   * and serialised per key in this process for FerretDB, which runs an update
   * as a read then a write.
   */
  const countInit = async (hip: string, address: string, now: Date): Promise<{ ok: true } | { ok: false; retryAfterSec: number }> => {
    sweepExpired(now);
    const start = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS;
    const end = new Date(start + HOUR_MS);
    const _id = `${hip}|${address}|${new Date(start).toISOString()}`;
    const count = await counting.run(_id, async () => {
      for (let attempt = 0; ; attempt++) {
        try {
          const doc = await initUsage.findOneAndUpdate({ _id }, { $inc: { count: 1 }, $setOnInsert: { expiresAt: end } }, { upsert: true, returnDocument: 'after' });
          return doc!.count;
        } catch (e) { if (!isDuplicateKey(e) || attempt > 2) throw e; } // two first inits raced to insert: update the winner's
      }
    });
    if (count <= config.LINK_INIT_PER_PATIENT_PER_HOUR) return { ok: true };
    return { ok: false, retryAfterSec: Math.max(1, Math.ceil((end.getTime() - now.getTime()) / 1000)) };
  };

  r.post('/v0.5/care-contexts/discover', requireRole('cm'), async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, Discover, config);
    const patientId = normaliseAbhaAddress(req.patient.id) ?? req.patient.id.trim().toLowerCase();
    const address = normaliseAbhaAddress(req.patient.id);
    const numbers = distinct((req.patient.verifiedIdentifiers ?? []).filter((v) => NUMBER_TYPES.has(v.type.toUpperCase())).map((v) => normaliseAbhaNumber(v.value)));
    // Only verified identifiers match; demographics never do on their own.
    const or = [...(address ? [{ abhaAddress: address }] : []), ...(numbers.length ? [{ abhaNumber: { $in: numbers } }] : [])];
    const matched = or.length ? await records.careContexts.find({ provider: hip, $or: or }).toArray() : [];
    // Demographics only narrow: with all three in the request, a care context whose stored demographics differ is left out.
    const demo = demographicKey(req.patient.name, req.patient.gender, req.patient.yearOfBirth);
    const found = demo ? matched.filter((d) => !d.demographicKey || d.demographicKey === demo) : matched;
    const byAddress = !!address && found.some((d) => d.abhaAddress === address);
    const byNumber = found.map((d) => d.abhaNumber).find((n): n is string => !!n && numbers.includes(n));
    const matchedBy = [...(byAddress ? ['HEALTH_ID'] : []), ...(byNumber ? ['NDHM_HEALTH_NUMBER'] : [])];
    // The reference is one of the request's own identifiers: nothing the consent manager did not send is disclosed.
    const patientReference = byAddress ? address! : byNumber;
    let offered = found.filter((d) => !d.linked);
    const auditPatients = distinct([address, ...numbers]);
    if (!patientReference) {
      await audit.append({ action: 'care-context.discover', outcome: 'success', status: 202, actor: actorOf(c), patients: auditPatients, reason: `no match${matched.length ? `; ${matched.length} care contexts left out: demographics disagree` : ''}`, requestId: c.var.requestId });
      callback('/v0.5/care-contexts/on-discover', { transactionId: req.transactionId, patient: null, error: { code: 1000, message: 'No patient found with these identifiers at this provider' }, resp: { requestId: req.requestId } });
      return c.json({ transactionId: req.transactionId, found: false }, 202);
    }

    // Record what was offered, insert-only; a repeated transactionId keeps its first record.
    const now = clock();
    const record: DiscoveryDoc = {
      _id: `${hip}|${req.transactionId}`, provider: hip, transactionId: req.transactionId, patientId, patientReference,
      careContextIds: offered.map((d) => d._id), referenceNumbers: distinct(offered.map((d) => d.referenceNumber)),
      createdAt: now, expiresAt: new Date(now.getTime() + config.LINK_DISCOVERY_TTL_SEC * 1000),
    };
    let reference = patientReference;
    sweepExpired(now);
    try {
      await discoveries.insertOne(record);
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      const first = await discoveries.findOne({ _id: record._id });
      if (!first || first.patientId !== patientId || now >= first.expiresAt) {
        await audit.append({ action: 'care-context.discover', outcome: 'refused', status: 202, actor: actorOf(c), patients: auditPatients, reason: 'transactionId already used by another or an expired discovery', requestId: c.var.requestId });
        callback('/v0.5/care-contexts/on-discover', { transactionId: req.transactionId, patient: null, error: { code: 1000, message: 'This transactionId was already used for a discovery; start again with a new one' }, resp: { requestId: req.requestId } });
        return c.json({ transactionId: req.transactionId, found: false }, 202);
      }
      // The same patient asking again under one transaction: the same offer (less what was linked since).
      offered = (await records.careContexts.find({ _id: { $in: first.careContextIds } }).toArray()).filter((d) => !d.linked);
      reference = first.patientReference;
    }
    await audit.append({ action: 'care-context.discover', outcome: 'success', status: 202, actor: actorOf(c), patients: auditPatients, reason: `${offered.length} unlinked care contexts${found.length < matched.length ? `; ${matched.length - found.length} left out: demographics disagree` : ''}`, requestId: c.var.requestId });
    callback('/v0.5/care-contexts/on-discover', {
      transactionId: req.transactionId,
      patient: { referenceNumber: reference, display: req.patient.name ?? reference, careContexts: show(offered), matchedBy },
      resp: { requestId: req.requestId },
    });
    return c.json({ transactionId: req.transactionId, found: true }, 202);
  });

  r.post('/v0.5/links/link/init', requireRole('cm'), perCaller, async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, LinkInit, config);
    const address = normaliseAbhaAddress(req.patient.id);
    if (!address) throw unprocessable([{ severity: 'error', code: 'value', diagnostics: 'patient.id must be an ABHA address', expression: 'patient.id' }]);
    const actor = actorOf(c);
    const requestId = c.var.requestId;

    // Per patient at this provider, across processes: every link/init naming the patient counts.
    const limit = await countInit(hip, address, clock());
    if (!limit.ok) {
      await audit.append({ action: 'link.init', outcome: 'refused', status: 429, actor, patients: [address], reason: `more than ${config.LINK_INIT_PER_PATIENT_PER_HOUR} link requests for this patient in an hour`, requestId });
      // Answered here rather than thrown, so the refusal's audit names the patient (app.onError's would not).
      const outcome = operationOutcome([error('throttled', `Too many link requests for this patient: at most ${config.LINK_INIT_PER_PATIENT_PER_HOUR} an hour`)]);
      return c.body(JSON.stringify(outcome), 429, { 'Content-Type': 'application/fhir+json; charset=utf-8', 'Retry-After': String(limit.retryAfterSec) });
    }

    const refuse = async (why: string, message: string) => {
      await audit.append({ action: 'link.init', outcome: 'refused', status: 202, actor, patients: [address], reason: why.slice(0, 300), requestId });
      callback('/v0.5/links/link/on-init', { transactionId: req.transactionId, error: { code: 1000, message }, resp: { requestId: req.requestId } });
      return c.json({ transactionId: req.transactionId, status: 'ERRORED' as const }, 202);
    };
    const wanted = [...new Set(req.patient.careContexts.map((x) => x.referenceNumber))];
    const ref = req.patient.referenceNumber;
    const discovery = await discoveries.findOne({ _id: `${hip}|${req.transactionId}` });
    let candidates: CareContextDoc[];
    if (discovery) {
      // This transaction's discovery governs: its patient, its reference, its offer.
      if (discovery.patientId !== address) return refuse('transaction discovered for another patient.id', 'Care contexts were not offered to this patient under this transaction');
      if (clock() >= discovery.expiresAt) return refuse('discovery expired', 'Discovery for this transaction has expired; discover again');
      if (normaliseReference(ref) !== discovery.patientReference) return refuse('referenceNumber is not the one discovery returned', 'patient.referenceNumber is not the one discovery returned');
      candidates = await records.careContexts.find({ _id: { $in: discovery.careContextIds }, provider: hip, referenceNumber: { $in: wanted } }).toArray();
    } else {
      // No discovery: only the care contexts stored under this very ABHA address, named by that address or their own ABHA number.
      const refAddress = normaliseAbhaAddress(ref);
      const refNumber = normaliseAbhaNumber(ref);
      candidates = (await records.careContexts.find({ provider: hip, abhaAddress: address, referenceNumber: { $in: wanted } }).toArray())
        .filter((d) => refAddress === address || (!!refNumber && d.abhaNumber === refNumber));
    }
    const docs = candidates.filter((d) => !d.linked);
    const missing = wanted.filter((w) => !docs.some((d) => d.referenceNumber === w));
    if (missing.length) return refuse(`unknown or already linked: ${missing.join(', ')}`, `Care contexts not found or already linked: ${missing.join(', ')}`);

    const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const salt = randomBytes(16).toString('hex');
    const now = clock();
    const link: LinkRequestDoc = {
      _id: uuidv4(), transactionId: req.transactionId, provider: hip, abhaAddress: address, careContextIds: docs.map((d) => d._id),
      salt, otpHash: hashOtp(salt, otp).toString('hex'), expiresAt: new Date(now.getTime() + config.LINK_OTP_TTL_SEC * 1000), attempts: 0, status: 'PENDING', createdAt: now,
    };
    await links.insertOne(link);
    // The code goes to the patient as this provider holds them, never to an address the request supplied.
    const message: OtpMessage = {
      linkRefNumber: link._id, provider: hip,
      patient: { abhaNumbers: distinct(docs.map((d) => d.abhaNumber)), abhaAddresses: distinct(docs.map((d) => d.abhaAddress)) },
      careContexts: distinct(docs.map((d) => d.referenceNumber)), otp, expiresAt: link.expiresAt,
    };
    void deliver(link, message, { actor, requestId, gatewayRequestId: req.requestId }).catch((e) => log.error({ linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) }, 'link/init delivery bookkeeping failed'));
    return c.json({ transactionId: req.transactionId, linkRefNumber: link._id }, 202);
  });

  /** Sends the code (the notifier retries as configured), then tells the gateway; a code that could not be delivered is never usable. */
  const deliver = async (link: LinkRequestDoc, message: OtpMessage, ctx: { actor: ReturnType<typeof actorOf>; requestId: string; gatewayRequestId: string }) => {
    try {
      await notifier.send(message);
    } catch (e) {
      log.warn({ linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) }, 'one-time code not delivered; link request failed');
      await guardedUpdate(engine, links, link._id, { status: 'PENDING' }, { $set: { status: 'FAILED', failure: 'one-time code delivery failed' } });
      await audit.append({ action: 'link.init', outcome: 'error', status: 202, actor: ctx.actor, patients: [link.abhaAddress], reason: `link ${link._id}: one-time code delivery failed`, requestId: ctx.requestId });
      callback('/v0.5/links/link/on-init', { transactionId: link.transactionId, error: { code: 1000, message: 'The one-time code could not be delivered; try linking again later' }, resp: { requestId: ctx.gatewayRequestId } });
      return;
    }
    await audit.append({ action: 'link.init', outcome: 'success', status: 202, actor: ctx.actor, patients: [link.abhaAddress], reason: `link ${link._id}`, requestId: ctx.requestId });
    callback('/v0.5/links/link/on-init', {
      transactionId: link.transactionId,
      link: { referenceNumber: link._id, authenticationType: 'DIRECT', meta: { communicationMedium: 'MOBILE', communicationHint: 'One-time code sent to the mobile number the provider holds', communicationExpiry: link.expiresAt.toISOString() } },
      resp: { requestId: ctx.gatewayRequestId },
    });
  };

  r.post('/v0.5/links/link/confirm', requireRole('cm'), async (c) => {
    const req = await readJsonBody(c, LinkConfirm, config);
    const { linkRefNumber, token } = req.confirmation;
    const outcome = await (async (): Promise<{ ok: true; link: LinkRequestDoc } | { ok: false; why: string; link?: LinkRequestDoc }> => {
      const found = await links.findOne({ _id: linkRefNumber });
      if (!found) return { ok: false, why: 'unknown link reference' };
      if (found.status !== 'PENDING') return { ok: false, why: `link request is ${found.status}`, link: found };
      if (clock() >= found.expiresAt) { await guardedUpdate(engine, links, found._id, { status: 'PENDING' }, { $set: { status: 'FAILED' } }); return { ok: false, why: 'one-time code expired', link: found }; }
      // Count this attempt before checking its code: at most LINK_OTP_MAX_ATTEMPTS codes are ever checked, however many processes answer.
      const link = await guardedFindOneAndUpdate(engine, links, found._id, { status: 'PENDING', attempts: { $lt: config.LINK_OTP_MAX_ATTEMPTS } }, { $inc: { attempts: 1 } });
      if (!link) {
        const now = await links.findOne({ _id: found._id });
        return { ok: false, why: !now || now.status === 'PENDING' ? 'too many wrong codes; start linking again' : `link request is ${now.status}`, link: found };
      }
      const good = /^\d{6}$/.test(token) && timingSafeEqual(hashOtp(link.salt, token), Buffer.from(link.otpHash, 'hex'));
      if (!good) {
        const failed = link.attempts >= config.LINK_OTP_MAX_ATTEMPTS;
        if (failed) await guardedUpdate(engine, links, link._id, { status: 'PENDING' }, { $set: { status: 'FAILED' } });
        return { ok: false, why: failed ? 'too many wrong codes; start linking again' : 'wrong one-time code', link };
      }
      // The right code, within the limit: LINKED only from PENDING (an expiry or a failure recorded meanwhile wins).
      if (!(await guardedUpdate(engine, links, link._id, { status: 'PENDING' }, { $set: { status: 'LINKED' } }))) return { ok: false, why: 'link request is no longer pending', link };
      const at = clock();
      // Each care context: linked only if not linked yet (by another request); by _id, guarded.
      await Promise.all(link.careContextIds.map((ccId) => guardedUpdate(engine, records.careContexts, ccId, { linked: { $exists: false } }, { $set: { linked: { abhaAddress: link.abhaAddress, at, linkRefNumber: link._id } } })));
      return { ok: true, link };
    })();
    const patients = outcome.link ? [outcome.link.abhaAddress] : [];
    await audit.append({ action: 'link.confirm', outcome: outcome.ok ? 'success' : 'refused', status: 202, actor: actorOf(c), patients, reason: outcome.ok ? `link ${linkRefNumber}` : outcome.why, requestId: c.var.requestId });
    if (outcome.ok) {
      const linked = await records.careContexts.find({ _id: { $in: outcome.link.careContextIds }, 'linked.linkRefNumber': outcome.link._id }).toArray();
      callback('/v0.5/links/link/on-confirm', { patient: { referenceNumber: outcome.link.abhaAddress, display: outcome.link.abhaAddress, careContexts: show(linked) }, resp: { requestId: req.requestId } });
    } else {
      callback('/v0.5/links/link/on-confirm', { error: { code: 1000, message: outcome.why }, resp: { requestId: req.requestId } });
    }
    return c.json({ linkRefNumber, status: outcome.ok ? 'LINKED' : 'ERRORED', ...(outcome.ok ? {} : { reason: outcome.why }) }, 202);
  });

  return r;
}
