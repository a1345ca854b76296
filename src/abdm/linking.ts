/**
 * Care-context discovery and linking routes (user-initiated linking), in both
 * of ABDM's dialects (dialect.ts: INBOUND.discover, linkInit, linkConfirm),
 * answered to the gateway by callback in the dialect of the request. One
 * handler per function serves both: each dialect's body is read into one
 * request (`read*`), and the answer is written back in the request's dialect
 * (`answer*`). What they keep is in link-store.ts, the one-time codes in
 * link-codes.ts, their delivery in otp-delivery.ts. The ABHA status
 * notification route (patient-status.ts) is mounted here too.
 *
 * Dialects: the message id is `requestId` in a v0.5 body, the REQUEST-ID header
 * in v3; X-HIP-ID names the provider (required for discovery and link/init in
 * both, and for v3 link/confirm) and goes back on the answer. v3 bodies:
 * discover `{transactionId, patient {id, name, gender, yearOfBirth,
 * verifiedIdentifiers, unverifiedIdentifiers}}`, answered with the care
 * contexts grouped by hiType (`patient: [{referenceNumber, display,
 * careContexts, hiType, count}]`, a care context of two types in both groups)
 * and `matchedBy` (abhaAddress, ABHA_NUMBER), or error ABDM-1010; link/init
 * `{transactionId, abhaAddress, patient: [hiType groups]}` (every group's care
 * contexts together are the request, every group under the one patient
 * reference); link/confirm `{confirmation {linkRefNumber, token}}`, answered
 * with the linked care contexts as hiType groups. v0.5 answers are as ever
 * (matchedBy HEALTH_ID, NDHM_HEALTH_NUMBER).
 *
 * discover: a match needs a verified identifier: the ABHA address in
 * patient.id, or an ABHA number among verifiedIdentifiers (NDHM_HEALTH_NUMBER,
 * HEALTH_NUMBER, ABHA_NUMBER). Demographics never match on their own; when the
 * request carries name, gender and year of birth, a matched care context with
 * a stored demographicKey is left out unless they agree (they only narrow).
 * What discovery offered is recorded, insert-only, per (provider,
 * transactionId): the requesting patient.id, the patient reference returned,
 * the care contexts offered, and an expiry (LINK_DISCOVERY_TTL_SEC). An ABHA
 * address the consent manager has reported DEACTIVATED or DELETED
 * (patient-status.ts) is answered as not found.
 *
 * link/init: with a discovery record for its transactionId, only care contexts
 * that discovery offered to the same patient.id, under the reference it
 * returned. Without one, only care contexts whose stored ABHA address is
 * patient.id, with referenceNumber that address or the care context's ABHA
 * number. Limited per patient (LINK_INIT_PER_PATIENT_PER_HOUR, counted in the
 * database) and per caller (LINK_INIT_PER_CALLER_PER_MINUTE, in process, both
 * dialects together). A DEACTIVATED or DELETED address is refused. The
 * one-time code goes through the configured notifier (otp-delivery.ts) to the
 * patient as the provider holds them; if it cannot be delivered the request
 * fails and the gateway hears so. Idempotent under the gateway's retries: the
 * message id is claimed per provider, insert-first (link-store.ts), so a
 * repeat of the message (in this or another process) creates nothing, counts
 * nothing and sends no code; it is answered as the first was (the same link
 * reference once the code was delivered, or the same error), audited as a
 * repeat. The same id with another body is refused and changes nothing.
 *
 * link/confirm: check the code (expiry, attempt limit) and record the link on
 * care contexts not yet linked. Only the code's salted hash is stored. Each
 * confirmation first counts its attempt with a guarded increment (only while
 * PENDING and under LINK_OTP_MAX_ATTEMPTS: db/engine.ts), and only a counted
 * attempt has its code checked, so the limit holds across every server
 * process; the LINKED transition is guarded on PENDING, and each care
 * context's link on its not being linked yet. A confirmation naming another
 * provider (X-HIP-ID) than the request's is an unknown reference. A link made
 * while its address was being deactivated is taken back (the status is
 * written before the address's links are dropped, and checked after linking).
 * A confirmation of a request already LINKED with its code (the message that
 * confirmed it, or another while the code is unexpired) is a repeat: answered
 * with the same linked care contexts, audited as a repeat, nothing written. A
 * wrong code for it is "wrong one-time code", as for a pending request.
 */
import { Hono, type Context } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import type { Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type CareContextDoc, type Collections } from '../records/model.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { rateLimit } from '../http/rate-limit.js';
import { error, operationOutcome, unavailable, unprocessable } from '../fhir/outcome.js';
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { GatewayClient } from './gateway.js';
import {
  type Dialect,
  INBOUND,
  type OutboundCall,
  abdmError,
  hipHeader,
  inboundRequestId,
  requireHip,
} from './dialect.js';
import type { Engine } from '../db/engine.js';
import type { ConsentStore } from '../consents/store.js';
import { demographicKey } from '../records/index-keys.js';
import type { OtpMessage, OtpNotifier } from './otp-delivery.js';
import {
  type DiscoveryDoc,
  type InitMessageDoc,
  type LinkRequestDoc,
  LinkStore,
  claimable,
  initFingerprint,
} from './link-store.js';
import { newCode } from './link-codes.js';
import { AbhaStatuses, patientStatusRoutes } from './patient-status.js';

export type { OtpMessage, OtpNotifier } from './otp-delivery.js';
export { ensureLinkingIndexes } from './link-store.js';

const id = z.string().min(1).max(128);
const identifier = z.object({ type: z.string().max(64), value: z.string().max(128) });
export const Discover = z
  .object({
    requestId: id,
    timestamp: z.unknown().optional(), // an envelope field the store does not need: never a reason to refuse
    transactionId: id,
    patient: z
      .object({
        id: z.string().min(3).max(128),
        verifiedIdentifiers: z
          .array(z.object({ type: z.string().max(64), value: z.string().max(128) }))
          .max(20)
          .optional(),
        unverifiedIdentifiers: z
          .array(z.object({ type: z.string().max(64), value: z.string().max(128) }))
          .max(20)
          .optional(),
        name: z.string().max(256).optional(),
        gender: z.string().max(8).optional(),
        yearOfBirth: z.number().int().optional(),
      })
      .passthrough(),
  })
  .passthrough();
export const LinkInit = z
  .object({
    requestId: id,
    timestamp: z.unknown().optional(), // an envelope field the store does not need: never a reason to refuse
    transactionId: id,
    patient: z.object({
      id: z.string().min(3).max(128),
      referenceNumber: z.string().min(1).max(128),
      careContexts: z
        .array(z.object({ referenceNumber: id }))
        .min(1)
        .max(500),
    }),
  })
  .passthrough();
export const LinkConfirm = z
  .object({
    requestId: id,
    timestamp: z.unknown().optional(), // an envelope field the store does not need: never a reason to refuse
    confirmation: z.object({ linkRefNumber: id, token: z.string().min(1).max(32) }),
  })
  .passthrough();

/** v3 discovery (the id is the REQUEST-ID header). yearOfBirth as a number or its four digits (senders differ). */
export const DiscoverV3 = z
  .object({
    transactionId: id,
    patient: z
      .object({
        id: z.string().min(3).max(128),
        name: z.string().max(256).nullish(),
        gender: z.string().max(8).nullish(),
        yearOfBirth: z.union([z.number().int(), z.string().regex(/^\d{4}$/, 'four digits')]).nullish(),
        verifiedIdentifiers: z.array(identifier).max(20).nullish(),
        unverifiedIdentifiers: z.array(identifier).max(20).nullish(),
      })
      .passthrough(),
  })
  .passthrough();
/** v3 link/init: the care contexts grouped by hiType, every group under the patient reference discovery returned. */
export const LinkInitV3 = z
  .object({
    transactionId: id,
    abhaAddress: z.string().min(3).max(128),
    patient: z
      .array(
        z
          .object({
            referenceNumber: z.string().min(1).max(128),
            careContexts: z
              .array(z.object({ referenceNumber: id }).passthrough())
              .min(1)
              .max(500),
            hiType: z.string().max(64).nullish(),
            count: z.number().int().nullish(),
          })
          .passthrough(),
      )
      .min(1)
      .max(50),
  })
  .passthrough()
  .refine((b) => b.patient.reduce((n, g) => n + g.careContexts.length, 0) <= 500, {
    message: 'at most 500 care contexts in one link request',
    path: ['patient'],
  });
export const LinkConfirmV3 = z
  .object({ confirmation: z.object({ linkRefNumber: id, token: z.string().min(1).max(32) }) })
  .passthrough();

const DIALECTS: readonly Dialect[] = ['v0.5', 'v3'];
/** verifiedIdentifiers types that carry an ABHA number (v0.5 and v3 names). */
export const NUMBER_TYPES = new Set(['NDHM_HEALTH_NUMBER', 'HEALTH_NUMBER', 'ABHA_NUMBER']);
/** What matched, in each dialect's enum. */
const MATCHED_BY = {
  'v0.5': { address: 'HEALTH_ID', number: 'NDHM_HEALTH_NUMBER' },
  v3: { address: 'abhaAddress', number: 'ABHA_NUMBER' },
} as const;
/** Error codes: v3 names "patient not found" and "wrong code" (ABDM-1010, ABDM-1035); anything else is 1000. */
const CODES = {
  'v0.5': { notFound: 1000, wrongCode: 1000, other: 1000 },
  v3: { notFound: 'ABDM-1010', wrongCode: 'ABDM-1035', other: 1000 },
} as const;
const distinct = (xs: (string | null | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))].sort();
/** A patient reference as discovery returns it: an ABHA address (lower case) or number (digits), else as given. */
const normaliseReference = (ref: string) => normaliseAbhaAddress(ref) ?? normaliseAbhaNumber(ref) ?? ref.trim();

/** A discovery request, whatever its dialect. */
interface DiscoverRequest {
  messageId: string;
  transactionId: string;
  patientId: string;
  verified: { type: string; value: string }[];
  name?: string;
  gender?: string;
  yearOfBirth?: number | string;
}
/** A link request, whatever its dialect: the patient's address, the patient references named, the care contexts. */
interface LinkInitRequest {
  messageId: string;
  transactionId: string;
  patientId: string;
  /** Where the address is in the body, for the refusal of one that is not an ABHA address. */
  patientField: string;
  references: string[];
  wanted: string[];
}
interface ConfirmRequest {
  messageId: string;
  linkRefNumber: string;
  token: string;
}

/** What link/init knows of one delivery of a message, for its first handling or its repeat. */
interface InitContext {
  dialect: Dialect;
  req: LinkInitRequest;
  address: string;
  actor: ReturnType<typeof actorOf>;
  requestId: string;
  to: { dialect: Dialect; inReplyTo: string; hip: string };
  fingerprint: string;
}

/** The failure a link request records when its code could not be delivered. */
const DELIVERY_FAILED = 'one-time code delivery failed';
/** How long a repeat of a link/init message waits for the first delivery to decide (a few reads and writes). */
const DECISION_WAIT_MS = 5_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LinkingDeps {
  records: Collections;
  gateway: GatewayClient;
  audit: AuditLog;
  config: Config;
  log: Log;
  clock: () => Date;
  notifier: OtpNotifier;
  db: Db;
  engine: Engine;
  /** The consent registry, for ABHA status notifications (patient-status.ts) to end a patient's consents. */
  consents: ConsentStore;
}

export function linkingRoutes(deps: LinkingDeps) {
  const { records, gateway, audit, config, log, clock, notifier, engine } = deps;
  const store = new LinkStore(deps.db, records, engine, config, log);
  const statuses = new AbhaStatuses(deps.db, engine);
  // Per caller (token role and facility), in this process: a bucket of LINK_INIT_PER_CALLER_PER_MINUTE,
  // refilled at that rate.
  const perCaller = rateLimit(
    config.LINK_INIT_PER_CALLER_PER_MINUTE,
    Math.max(1, config.LINK_INIT_PER_CALLER_PER_MINUTE),
  );
  const r = new Hono<AppEnv>();
  /**
   * Sends an answer in the background, in the dialect of what it answers (send adds `resp` or `response`); a failure
   * is logged, the request was already answered.
   */
  const callback = (
    call: OutboundCall,
    body: Record<string, unknown>,
    to: { dialect: Dialect; inReplyTo: string; hip?: string },
  ) => {
    void gateway
      .send(call, body, to)
      .catch((e) => log.warn({ call, err: (e as Error).message.slice(0, 200) }, 'gateway callback failed'));
  };
  /** Care contexts as the gateway sees them, one per referenceNumber. */
  const show = (docs: CareContextDoc[]) => {
    const seen = new Map<string, { referenceNumber: string; display: string }>();
    for (const d of docs)
      if (!seen.has(d.referenceNumber))
        seen.set(d.referenceNumber, { referenceNumber: d.referenceNumber, display: d.display || d.referenceNumber });
    return [...seen.values()];
  };
  /** v3's patient array: one group per record type among the care contexts (none left empty), sorted by type. */
  const groups = (reference: string, display: string, docs: CareContextDoc[]) =>
    distinct(docs.flatMap((d) => d.hiTypes))
      .map((hiType) => {
        const careContexts = show(docs.filter((d) => d.hiTypes.includes(hiType)));
        return { referenceNumber: reference, display, careContexts, hiType, count: careContexts.length };
      })
      .filter((g) => g.count > 0);

  // ---- discover ----

  const readDiscover = async (c: Context<AppEnv>, dialect: Dialect): Promise<DiscoverRequest> => {
    const expects = 'a JSON care-context discovery request';
    const body =
      dialect === 'v3'
        ? await readJsonBody(c, DiscoverV3, config, expects)
        : await readJsonBody(c, Discover, config, expects);
    const p = body.patient;
    return {
      messageId: inboundRequestId(c, dialect, body),
      transactionId: body.transactionId,
      patientId: p.id,
      verified: p.verifiedIdentifiers ?? [],
      name: p.name ?? undefined,
      gender: p.gender ?? undefined,
      yearOfBirth: p.yearOfBirth ?? undefined,
    };
  };
  /** on-discover with what is offered, in the request's dialect; v3 has no empty offer, so that is "not found". */
  const answerDiscovered = (
    dialect: Dialect,
    req: DiscoverRequest,
    reference: string,
    offered: CareContextDoc[],
    matchedBy: string[],
  ): Record<string, unknown> => {
    const display = req.name || reference;
    if (dialect === 'v0.5')
      return {
        transactionId: req.transactionId,
        patient: { referenceNumber: reference, display, careContexts: show(offered), matchedBy },
      };
    const patient = groups(reference, display, offered);
    return patient.length
      ? { transactionId: req.transactionId, patient, matchedBy }
      : {
          transactionId: req.transactionId,
          ...abdmError(CODES.v3.notFound, 'No care contexts left to link for this patient at this provider'),
        };
  };
  const answerNotDiscovered = (dialect: Dialect, req: DiscoverRequest, code: number | string, message: string) =>
    dialect === 'v0.5'
      ? { transactionId: req.transactionId, patient: null, ...abdmError(code, message) }
      : { transactionId: req.transactionId, ...abdmError(code, message) };

  const discover = (dialect: Dialect) => async (c: Context<AppEnv>) => {
    const hip = requireHip(c);
    const req = await readDiscover(c, dialect);
    const to = { dialect, inReplyTo: req.messageId, hip };
    const patientId = normaliseAbhaAddress(req.patientId) ?? req.patientId.trim().toLowerCase();
    const address = normaliseAbhaAddress(req.patientId);
    const numbers = distinct(
      req.verified.filter((v) => NUMBER_TYPES.has(v.type.toUpperCase())).map((v) => normaliseAbhaNumber(v.value)),
    );
    const auditPatients = distinct([address, ...numbers]);
    /** No discovery to offer: audited, and the gateway told so; nothing of any patient is disclosed. */
    const nothing = async (outcome: 'success' | 'refused', reason: string, message: string, notFound = true) => {
      await audit.append({
        action: 'care-context.discover',
        outcome,
        status: 202,
        actor: actorOf(c),
        patients: auditPatients,
        reason,
        requestId: c.var.requestId,
      });
      const code = notFound ? CODES[dialect].notFound : CODES[dialect].other;
      callback('onDiscover', answerNotDiscovered(dialect, req, code, message), to);
      return c.json({ transactionId: req.transactionId, found: false }, 202);
    };
    const notFoundMessage = 'No patient found with these identifiers at this provider';
    // An address the consent manager reported deactivated or deleted is offered nothing (and told only "not found").
    const blocked = await statuses.blocked(patientId);
    if (blocked) return nothing('refused', `ABHA address is ${blocked}`, notFoundMessage);

    // Only verified identifiers match; demographics never do on their own.
    const or = [
      ...(address ? [{ abhaAddress: address }] : []),
      ...(numbers.length ? [{ abhaNumber: { $in: numbers } }] : []),
    ];
    const matched = or.length ? await records.careContexts.find({ provider: hip, $or: or }).toArray() : [];
    // Demographics only narrow: with all three in the request, a care context whose stored demographics
    // differ is left out.
    const demo = demographicKey(req.name, req.gender, req.yearOfBirth);
    const found = demo ? matched.filter((d) => !d.demographicKey || d.demographicKey === demo) : matched;
    const byAddress = !!address && found.some((d) => d.abhaAddress === address);
    const byNumber = found.map((d) => d.abhaNumber).find((n): n is string => !!n && numbers.includes(n));
    const matchedBy = [
      ...(byAddress ? [MATCHED_BY[dialect].address] : []),
      ...(byNumber ? [MATCHED_BY[dialect].number] : []),
    ];
    // The reference is one of the request's own identifiers: nothing the consent manager did not send is disclosed.
    const patientReference = byAddress ? address! : byNumber;
    let offered = found.filter((d) => !d.linked);
    if (!patientReference) {
      const leftOut = matched.length ? `; ${matched.length} care contexts left out: demographics disagree` : '';
      return nothing('success', `no match${leftOut}`, notFoundMessage);
    }

    // Record what was offered, insert-only; a repeated transactionId keeps its first record.
    const now = clock();
    const record: DiscoveryDoc = {
      _id: `${hip}|${req.transactionId}`,
      provider: hip,
      transactionId: req.transactionId,
      patientId,
      patientReference,
      careContextIds: offered.map((d) => d._id),
      referenceNumbers: distinct(offered.map((d) => d.referenceNumber)),
      createdAt: now,
      expiresAt: new Date(now.getTime() + config.LINK_DISCOVERY_TTL_SEC * 1000),
    };
    let reference = patientReference;
    const recorded = await store.recordDiscovery(record);
    if ('first' in recorded) {
      const { first } = recorded;
      if (!first || first.patientId !== patientId || now >= first.expiresAt) {
        return nothing(
          'refused',
          'transactionId already used by another or an expired discovery',
          'This transactionId was already used for a discovery; start again with a new one',
          false,
        );
      }
      // The same patient asking again under one transaction: the same offer (less what was linked since).
      offered = (await records.careContexts.find({ _id: { $in: first.careContextIds } }).toArray()).filter(
        (d) => !d.linked,
      );
      reference = first.patientReference;
    }
    await audit.append({
      action: 'care-context.discover',
      outcome: 'success',
      status: 202,
      actor: actorOf(c),
      patients: auditPatients,
      reason: `${offered.length} unlinked care contexts${found.length < matched.length ? `; ${matched.length - found.length} left out: demographics disagree` : ''}`,
      requestId: c.var.requestId,
    });
    callback('onDiscover', answerDiscovered(dialect, req, reference, offered, matchedBy), to);
    return c.json({ transactionId: req.transactionId, found: true }, 202);
  };

  // ---- link/init ----

  const readLinkInit = async (c: Context<AppEnv>, dialect: Dialect): Promise<LinkInitRequest> => {
    const expects = 'a JSON link request';
    if (dialect === 'v3') {
      const body = await readJsonBody(c, LinkInitV3, config, expects);
      return {
        messageId: inboundRequestId(c, dialect, body),
        transactionId: body.transactionId,
        patientId: body.abhaAddress,
        patientField: 'abhaAddress',
        references: body.patient.map((g) => g.referenceNumber),
        wanted: body.patient.flatMap((g) => g.careContexts.map((x) => x.referenceNumber)),
      };
    }
    const body = await readJsonBody(c, LinkInit, config, expects);
    return {
      messageId: inboundRequestId(c, dialect, body),
      transactionId: body.transactionId,
      patientId: body.patient.id,
      patientField: 'patient.id',
      references: [body.patient.referenceNumber],
      wanted: body.patient.careContexts.map((x) => x.referenceNumber),
    };
  };

  const linkInit = (dialect: Dialect) => async (c: Context<AppEnv>) => {
    const hip = requireHip(c);
    const req = await readLinkInit(c, dialect);
    const to = { dialect, inReplyTo: req.messageId, hip };
    const address = normaliseAbhaAddress(req.patientId);
    if (!address)
      throw unprocessable([
        {
          severity: 'error',
          code: 'value',
          diagnostics: `${req.patientField} must be an ABHA address`,
          expression: req.patientField,
        },
      ]);
    const actor = actorOf(c);
    const requestId = c.var.requestId;
    const references = [...new Set(req.references.map(normaliseReference))];
    const wanted = [...new Set(req.wanted)];
    const fingerprint = initFingerprint({
      dialect,
      transactionId: req.transactionId,
      address,
      references,
      wanted,
    });
    const ctx: InitContext = { dialect, req, address, actor, requestId, to, fingerprint };

    // The same message again (the gateway retries under its id): answered as the first was; nothing is counted or
    // created. A claim that is expired, released or stale is this delivery's to take over.
    const seen = await store.initMessage(hip, req.messageId);
    if (seen) {
      const now = clock();
      const otherBody = now < seen.expiresAt && seen.fingerprint !== fingerprint;
      if (otherBody || !claimable(seen, now)) return repeatInit(c, ctx, seen);
    }

    // Per patient at this provider, across processes: every link/init naming the patient counts.
    const limit = await store.countInit(hip, address, clock());
    if (!limit.ok) {
      await audit.append({
        action: 'link.init',
        outcome: 'refused',
        status: 429,
        actor,
        patients: [address],
        reason: `more than ${config.LINK_INIT_PER_PATIENT_PER_HOUR} link requests for this patient in an hour`,
        requestId,
      });
      // Answered here rather than thrown, so the refusal's audit names the patient (app.onError's would not).
      const outcome = operationOutcome([
        error(
          'throttled',
          `Too many link requests for this patient: at most ${config.LINK_INIT_PER_PATIENT_PER_HOUR} an hour`,
        ),
      ]);
      return c.body(JSON.stringify(outcome), 429, {
        'Content-Type': 'application/fhir+json; charset=utf-8',
        'Retry-After': String(limit.retryAfterSec),
      });
    }

    // This delivery claims the message (insert-first, per provider and message id): one delivery in any process wins.
    const fresh = store.newInitMessage(
      { provider: hip, messageId: req.messageId, patient: address, fingerprint, linkRefNumber: uuidv4() },
      clock(),
    );
    const claimed = await store.claimInit(fresh, seen);
    if (!('claimed' in claimed)) return repeatInit(c, ctx, claimed.existing);
    const claim = claimed.claimed;
    try {
      return await firstInit(c, ctx, claim, references, wanted);
    } catch (e) {
      // Given up before deciding (a failure, e.g. of the database): a retry of the message is its first delivery.
      await store.decideInit(claim, 'released').catch(() => undefined);
      throw e;
    }
  };

  /** The first delivery of a link/init message: decided once on its claim (refused, or the link request written). */
  const firstInit = async (
    c: Context<AppEnv>,
    ctx: InitContext,
    claim: InitMessageDoc,
    references: string[],
    wanted: string[],
  ) => {
    const { dialect, req, address, actor, requestId, to } = ctx;
    const hip = to.hip;
    const errored = () => c.json({ transactionId: req.transactionId, status: 'ERRORED' as const }, 202);
    /** Another delivery of the message took this claim over (this one was too slow): that one answers. */
    const superseded = () => {
      log.warn({ linkRefNumber: claim.linkRefNumber }, 'link/init message taken over by another delivery of it');
      return errored();
    };
    const refuse = async (why: string, message: string) => {
      const reason = why.slice(0, 300);
      if (!(await store.decideInit(claim, 'refused', { reason, message }))) return superseded();
      await audit.append({
        action: 'link.init',
        outcome: 'refused',
        status: 202,
        actor,
        patients: [address],
        reason,
        requestId,
      });
      callback('onInit', { transactionId: req.transactionId, ...abdmError(CODES[dialect].other, message) }, to);
      return errored();
    };
    const blocked = await statuses.blocked(address);
    if (blocked)
      return refuse(`ABHA address is ${blocked}`, 'This ABHA address cannot link care contexts at this provider');
    if (references.length > 1)
      return refuse(
        'care contexts under more than one patient reference',
        'All care contexts must be under the one patient reference discovery returned',
      );
    const ref = req.references[0];
    const discovery = await store.discovery(hip, req.transactionId);
    let candidates: CareContextDoc[];
    if (discovery) {
      // This transaction's discovery governs: its patient, its reference, its offer.
      if (discovery.patientId !== address)
        return refuse(
          'transaction discovered for another patient.id',
          'Care contexts were not offered to this patient under this transaction',
        );
      if (clock() >= discovery.expiresAt)
        return refuse('discovery expired', 'Discovery for this transaction has expired; discover again');
      if (references[0] !== discovery.patientReference)
        return refuse(
          'referenceNumber is not the one discovery returned',
          'patient.referenceNumber is not the one discovery returned',
        );
      candidates = await records.careContexts
        .find({ _id: { $in: discovery.careContextIds }, provider: hip, referenceNumber: { $in: wanted } })
        .toArray();
    } else {
      // No discovery: only the care contexts stored under this very ABHA address, named by that address
      // or their own ABHA number.
      const refAddress = normaliseAbhaAddress(ref);
      const refNumber = normaliseAbhaNumber(ref);
      candidates = (
        await records.careContexts
          .find({ provider: hip, abhaAddress: address, referenceNumber: { $in: wanted } })
          .toArray()
      ).filter((d) => refAddress === address || (!!refNumber && d.abhaNumber === refNumber));
    }
    const docs = candidates.filter((d) => !d.linked);
    const missing = wanted.filter((w) => !docs.some((d) => d.referenceNumber === w));
    if (missing.length)
      return refuse(
        `unknown or already linked: ${missing.join(', ')}`,
        `Care contexts not found or already linked: ${missing.join(', ')}`,
      );

    const { otp, salt, otpHash } = newCode();
    const now = clock();
    const link: LinkRequestDoc = {
      _id: claim.linkRefNumber,
      transactionId: req.transactionId,
      provider: hip,
      abhaAddress: address,
      careContextIds: docs.map((d) => d._id),
      salt,
      otpHash,
      expiresAt: new Date(now.getTime() + config.LINK_OTP_TTL_SEC * 1000),
      attempts: 0,
      status: 'PENDING',
      patientReference: discovery?.patientReference ?? references[0],
      messageId: req.messageId,
      createdAt: now,
    };
    await store.insertLink(link);
    // Decided: the link request is written. Lost only to a delivery that took the claim over: this one is dropped.
    if (!(await store.decideInit(claim, 'link'))) {
      await store.fail(link._id, 'superseded by another delivery of its link/init message');
      return superseded();
    }
    // The code goes to the patient as this provider holds them, never to an address the request supplied.
    const message: OtpMessage = {
      linkRefNumber: link._id,
      provider: hip,
      patient: {
        abhaNumbers: distinct(docs.map((d) => d.abhaNumber)),
        abhaAddresses: distinct(docs.map((d) => d.abhaAddress)),
      },
      careContexts: distinct(docs.map((d) => d.referenceNumber)),
      otp,
      expiresAt: link.expiresAt,
    };
    void deliver(link, message, ctx).catch((e) =>
      log.error(
        { linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) },
        'link/init delivery bookkeeping failed',
      ),
    );
    return c.json({ transactionId: req.transactionId, linkRefNumber: link._id }, 202);
  };

  /**
   * A repeat of a link/init message: answered as the first delivery was, once that one has decided, and audited as a
   * repeat; nothing is created, counted or sent to the patient. The same id with another body is refused.
   */
  const repeatInit = async (c: Context<AppEnv>, ctx: InitContext, seen: InitMessageDoc | null) => {
    const { dialect, req, address, actor, requestId, to } = ctx;
    const audited = (outcome: 'success' | 'refused' | 'error', reason: string) =>
      audit.append({
        action: 'link.init',
        outcome,
        status: 202,
        actor,
        patients: [address],
        reason: `repeat of message ${req.messageId}: ${reason}`.slice(0, 400),
        requestId,
      });
    const errored = () => c.json({ transactionId: req.transactionId, status: 'ERRORED' as const }, 202);
    if (seen && seen.fingerprint !== ctx.fingerprint) {
      await audited('refused', 'message id already used for another link request');
      callback(
        'onInit',
        {
          transactionId: req.transactionId,
          ...abdmError(
            CODES[dialect].other,
            'This message id was already used for another link request; send this one under a new id',
          ),
        },
        to,
      );
      return errored();
    }
    // The first delivery decides in a few reads and writes: wait for it, a while.
    let m = seen;
    const deadline = Date.now() + DECISION_WAIT_MS;
    for (
      let wait = 10;
      m && !m.decided && !claimable(m, clock()) && Date.now() < deadline;
      wait = Math.min(wait * 2, 250)
    ) {
      await sleep(wait);
      m = await store.initMessage(to.hip, req.messageId);
    }
    if (!m || !m.decided || m.decided === 'released' || m.fingerprint !== ctx.fingerprint)
      throw unavailable('The first delivery of this link request is still being handled; send it again shortly');
    if (m.decided === 'refused') {
      const refusal = m.refusal ?? { reason: 'refused', message: 'The link request was refused' };
      await audited('refused', refusal.reason);
      callback('onInit', { transactionId: req.transactionId, ...abdmError(CODES[dialect].other, refusal.message) }, to);
      return errored();
    }
    const linkRefNumber = m.linkRefNumber;
    void answerInitAgain(linkRefNumber, audited, to).catch((e) =>
      log.error({ linkRefNumber, err: (e as Error).message.slice(0, 200) }, 'link/init repeat bookkeeping failed'),
    );
    return c.json({ transactionId: req.transactionId, linkRefNumber }, 202);
  };

  /**
   * The first delivery's answer again, once its code's delivery is settled (the code handed to the notifier, or its
   * delivery failed); nothing when the code expires first, or the request is gone (its patient forgotten).
   */
  const answerInitAgain = async (
    id: string,
    audited: (outcome: 'success' | 'error', reason: string) => Promise<unknown>,
    to: InitContext['to'],
  ) => {
    const deadline = Date.now() + config.LINK_OTP_TTL_SEC * 1000;
    for (let wait = 20; Date.now() < deadline; wait = Math.min(wait * 2, 1000)) {
      const link = await store.link(id);
      if (!link) break;
      if (link.deliveredAt || link.status === 'LINKED') {
        await audited('success', `link ${id}`);
        callback('onInit', onInitLinked(link), to);
        return;
      }
      if (link.status === 'FAILED' && link.failure === DELIVERY_FAILED) {
        await audited('error', `link ${id}: ${DELIVERY_FAILED}`);
        callback('onInit', onInitUndelivered(to.dialect, link), to);
        return;
      }
      if (link.status !== 'PENDING' || clock() >= link.expiresAt) break;
      await sleep(wait);
    }
    log.warn({ linkRefNumber: id }, 'link/init repeat not answered: the first delivery settled no answer in time');
  };

  /** on-init for a link request whose code was delivered. */
  const onInitLinked = (link: LinkRequestDoc) => ({
    transactionId: link.transactionId,
    link: {
      referenceNumber: link._id,
      authenticationType: 'DIRECT',
      meta: {
        communicationMedium: 'MOBILE',
        communicationHint: 'One-time code sent to the mobile number the provider holds',
        communicationExpiry: link.expiresAt.toISOString(),
      },
    },
  });
  /** on-init for a link request whose code could not be delivered. */
  const onInitUndelivered = (dialect: Dialect, link: LinkRequestDoc) => ({
    transactionId: link.transactionId,
    ...abdmError(CODES[dialect].other, 'The one-time code could not be delivered; try linking again later'),
  });

  /**
   * Sends the code (the notifier retries as configured), then tells the gateway; a code that could not be
   * delivered is never usable.
   */
  const deliver = async (
    link: LinkRequestDoc,
    message: OtpMessage,
    ctx: Pick<InitContext, 'actor' | 'requestId' | 'to'>,
  ) => {
    try {
      await notifier.send(message);
    } catch (e) {
      log.warn(
        { linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) },
        'one-time code not delivered; link request failed',
      );
      await store.fail(link._id, DELIVERY_FAILED);
      await audit.append({
        action: 'link.init',
        outcome: 'error',
        status: 202,
        actor: ctx.actor,
        patients: [link.abhaAddress],
        reason: `link ${link._id}: ${DELIVERY_FAILED}`,
        requestId: ctx.requestId,
      });
      callback('onInit', onInitUndelivered(ctx.to.dialect, link), ctx.to);
      return;
    }
    // Recorded before the gateway is told, so that a repeat of the message answers the same.
    await store.markDelivered(link._id, clock());
    await audit.append({
      action: 'link.init',
      outcome: 'success',
      status: 202,
      actor: ctx.actor,
      patients: [link.abhaAddress],
      reason: `link ${link._id}`,
      requestId: ctx.requestId,
    });
    callback('onInit', onInitLinked(link), ctx.to);
  };

  // ---- link/confirm ----

  const readConfirm = async (c: Context<AppEnv>, dialect: Dialect): Promise<ConfirmRequest> => {
    const expects = 'a JSON link confirmation';
    const body =
      dialect === 'v3'
        ? await readJsonBody(c, LinkConfirmV3, config, expects)
        : await readJsonBody(c, LinkConfirm, config, expects);
    return { messageId: inboundRequestId(c, dialect, body), ...body.confirmation };
  };
  /** on-confirm with the linked care contexts, in the request's dialect (v3: hiType groups; none is an error). */
  const answerLinked = (dialect: Dialect, link: LinkRequestDoc, linked: CareContextDoc[]) => {
    if (dialect === 'v0.5')
      return {
        patient: { referenceNumber: link.abhaAddress, display: link.abhaAddress, careContexts: show(linked) },
      };
    const reference = link.patientReference ?? link.abhaAddress;
    const patient = groups(reference, reference, linked);
    return patient.length
      ? { patient }
      : abdmError(CODES.v3.other, 'The care contexts were linked by another request meanwhile');
  };

  const confirm = (dialect: Dialect) => async (c: Context<AppEnv>) => {
    // v3 messages name the provider (and its answer carries it back); a v0.5 confirmation may.
    const hip = dialect === 'v3' ? requireHip(c) : hipHeader(c);
    const req = await readConfirm(c, dialect);
    const { linkRefNumber, token } = req;
    let outcome = await store.confirm(linkRefNumber, token, clock(), hip, req.messageId);
    if (outcome.ok) {
      // The address may have been deactivated or deleted while this was confirmed: then the link is taken back.
      const blocked = await statuses.blocked(outcome.link.abhaAddress);
      if (blocked) {
        await store.undo(outcome.link, `ABHA address ${blocked}`);
        outcome = { ok: false, why: `ABHA address is ${blocked}`, link: outcome.link };
      }
    }
    const patients = outcome.link ? [outcome.link.abhaAddress] : [];
    await audit.append({
      action: 'link.confirm',
      outcome: outcome.ok ? 'success' : 'refused',
      status: 202,
      actor: actorOf(c),
      patients,
      reason: outcome.ok ? `link ${linkRefNumber}${outcome.repeat ? ': repeat, already linked' : ''}` : outcome.why,
      requestId: c.var.requestId,
    });
    const to = { dialect, inReplyTo: req.messageId, hip: hip ?? outcome.link?.provider };
    if (outcome.ok) {
      const linked = await records.careContexts
        .find({ _id: { $in: outcome.link.careContextIds }, 'linked.linkRefNumber': outcome.link._id })
        .toArray();
      callback('onConfirm', answerLinked(dialect, outcome.link, linked), to);
    } else {
      const code = /wrong|too many|expired/.test(outcome.why) ? CODES[dialect].wrongCode : CODES[dialect].other;
      callback('onConfirm', abdmError(code, outcome.why), to);
    }
    // LINKED: this confirmation linked it; ALREADY_LINKED: a repeat, answered the same and nothing written.
    const status = outcome.ok ? (outcome.repeat ? 'ALREADY_LINKED' : 'LINKED') : 'ERRORED';
    return c.json({ linkRefNumber, status, ...(outcome.ok ? {} : { reason: outcome.why }) }, 202);
  };

  for (const dialect of DIALECTS) {
    r.post(INBOUND.discover[dialect], allow('care-context.discover', 'cm'), discover(dialect));
    r.post(INBOUND.linkInit[dialect], allow('link.init', 'cm'), perCaller, linkInit(dialect));
    r.post(INBOUND.linkConfirm[dialect], allow('link.confirm', 'cm'), confirm(dialect));
  }
  // ABHA status notifications (patient-status.ts): they end what linking and consents keep of an address.
  r.route(
    '/',
    patientStatusRoutes({
      db: deps.db,
      records,
      engine,
      consents: deps.consents,
      gateway,
      audit,
      config,
      log,
      clock,
    }),
  );

  return r;
}
