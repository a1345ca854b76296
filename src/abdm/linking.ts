/**
 * Care-context discovery and linking routes, answered to the gateway by
 * callback. What they keep is in link-store.ts, the one-time codes in
 * link-codes.ts, their delivery in otp-delivery.ts.
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
import { badRequest, error, operationOutcome, unprocessable } from '../fhir/outcome.js';
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { GatewayClient } from './gateway.js';
import type { OutboundCall } from './dialect.js';
import type { Engine } from '../db/engine.js';
import { demographicKey } from '../records/index-keys.js';
import type { OtpMessage, OtpNotifier } from './otp-delivery.js';
import { type DiscoveryDoc, type LinkRequestDoc, LinkStore } from './link-store.js';
import { newCode } from './link-codes.js';

export type { OtpMessage, OtpNotifier } from './otp-delivery.js';
export { ensureLinkingIndexes } from './link-store.js';

const id = z.string().min(1).max(128);
export const Discover = z
  .object({
    requestId: id,
    timestamp: z.string().max(64).optional(),
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
    timestamp: z.string().max(64).optional(),
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
    timestamp: z.string().max(64).optional(),
    confirmation: z.object({ linkRefNumber: id, token: z.string().min(1).max(32) }),
  })
  .passthrough();

/** verifiedIdentifiers types that carry an ABHA number. */
export const NUMBER_TYPES = new Set(['NDHM_HEALTH_NUMBER', 'HEALTH_NUMBER', 'ABHA_NUMBER']);
const distinct = (xs: (string | null | undefined)[]) => [...new Set(xs.filter((x): x is string => !!x))].sort();
/** A patient reference as discovery returns it: an ABHA address (lower case) or number (digits), else as given. */
const normaliseReference = (ref: string) => normaliseAbhaAddress(ref) ?? normaliseAbhaNumber(ref) ?? ref.trim();

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
}

export function linkingRoutes(deps: LinkingDeps) {
  const { records, gateway, audit, config, log, clock, notifier, engine } = deps;
  const store = new LinkStore(deps.db, records, engine, config, log);
  // Per caller (token role and facility), in this process: a bucket of LINK_INIT_PER_CALLER_PER_MINUTE,
  // refilled at that rate.
  const perCaller = rateLimit(
    config.LINK_INIT_PER_CALLER_PER_MINUTE,
    Math.max(1, config.LINK_INIT_PER_CALLER_PER_MINUTE),
  );
  const r = new Hono<AppEnv>();
  const hipOf = (c: Context): string => {
    const hip = c.req.header('x-hip-id');
    if (!hip || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(hip))
      throw badRequest('X-HIP-ID header required: the provider the gateway addresses', 'X-HIP-ID');
    return hip;
  };
  /** Sends a callback in the background; a failure is logged, the request was already answered. */
  const callback = (path: OutboundCall, body: Record<string, unknown>) => {
    void gateway
      .send(path, body, { dialect: 'v0.5' })
      .catch((e) => log.warn({ path, err: (e as Error).message.slice(0, 200) }, 'gateway callback failed'));
  };
  /** Care contexts as the gateway sees them, one per referenceNumber. */
  const show = (docs: CareContextDoc[]) => {
    const seen = new Map<string, { referenceNumber: string; display: string }>();
    for (const d of docs)
      if (!seen.has(d.referenceNumber))
        seen.set(d.referenceNumber, { referenceNumber: d.referenceNumber, display: d.display ?? d.referenceNumber });
    return [...seen.values()];
  };

  r.post('/v0.5/care-contexts/discover', allow('care-context.discover', 'cm'), async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, Discover, config, 'a JSON care-context discovery request');
    const patientId = normaliseAbhaAddress(req.patient.id) ?? req.patient.id.trim().toLowerCase();
    const address = normaliseAbhaAddress(req.patient.id);
    const numbers = distinct(
      (req.patient.verifiedIdentifiers ?? [])
        .filter((v) => NUMBER_TYPES.has(v.type.toUpperCase()))
        .map((v) => normaliseAbhaNumber(v.value)),
    );
    // Only verified identifiers match; demographics never do on their own.
    const or = [
      ...(address ? [{ abhaAddress: address }] : []),
      ...(numbers.length ? [{ abhaNumber: { $in: numbers } }] : []),
    ];
    const matched = or.length ? await records.careContexts.find({ provider: hip, $or: or }).toArray() : [];
    // Demographics only narrow: with all three in the request, a care context whose stored demographics
    // differ is left out.
    const demo = demographicKey(req.patient.name, req.patient.gender, req.patient.yearOfBirth);
    const found = demo ? matched.filter((d) => !d.demographicKey || d.demographicKey === demo) : matched;
    const byAddress = !!address && found.some((d) => d.abhaAddress === address);
    const byNumber = found.map((d) => d.abhaNumber).find((n): n is string => !!n && numbers.includes(n));
    const matchedBy = [...(byAddress ? ['HEALTH_ID'] : []), ...(byNumber ? ['NDHM_HEALTH_NUMBER'] : [])];
    // The reference is one of the request's own identifiers: nothing the consent manager did not send is disclosed.
    const patientReference = byAddress ? address! : byNumber;
    let offered = found.filter((d) => !d.linked);
    const auditPatients = distinct([address, ...numbers]);
    /** No discovery to offer: audited, and the gateway told so; nothing of any patient is disclosed. */
    const nothing = async (outcome: 'success' | 'refused', reason: string, message: string) => {
      await audit.append({
        action: 'care-context.discover',
        outcome,
        status: 202,
        actor: actorOf(c),
        patients: auditPatients,
        reason,
        requestId: c.var.requestId,
      });
      callback('onDiscover', {
        transactionId: req.transactionId,
        patient: null,
        error: { code: 1000, message },
        resp: { requestId: req.requestId },
      });
      return c.json({ transactionId: req.transactionId, found: false }, 202);
    };
    if (!patientReference) {
      const leftOut = matched.length ? `; ${matched.length} care contexts left out: demographics disagree` : '';
      return nothing('success', `no match${leftOut}`, 'No patient found with these identifiers at this provider');
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
    callback('onDiscover', {
      transactionId: req.transactionId,
      patient: {
        referenceNumber: reference,
        display: req.patient.name ?? reference,
        careContexts: show(offered),
        matchedBy,
      },
      resp: { requestId: req.requestId },
    });
    return c.json({ transactionId: req.transactionId, found: true }, 202);
  });

  r.post('/v0.5/links/link/init', allow('link.init', 'cm'), perCaller, async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, LinkInit, config, 'a JSON link request');
    const address = normaliseAbhaAddress(req.patient.id);
    if (!address)
      throw unprocessable([
        {
          severity: 'error',
          code: 'value',
          diagnostics: 'patient.id must be an ABHA address',
          expression: 'patient.id',
        },
      ]);
    const actor = actorOf(c);
    const requestId = c.var.requestId;

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

    const refuse = async (why: string, message: string) => {
      await audit.append({
        action: 'link.init',
        outcome: 'refused',
        status: 202,
        actor,
        patients: [address],
        reason: why.slice(0, 300),
        requestId,
      });
      callback('onInit', {
        transactionId: req.transactionId,
        error: { code: 1000, message },
        resp: { requestId: req.requestId },
      });
      return c.json({ transactionId: req.transactionId, status: 'ERRORED' as const }, 202);
    };
    const wanted = [...new Set(req.patient.careContexts.map((x) => x.referenceNumber))];
    const ref = req.patient.referenceNumber;
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
      if (normaliseReference(ref) !== discovery.patientReference)
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
      _id: uuidv4(),
      transactionId: req.transactionId,
      provider: hip,
      abhaAddress: address,
      careContextIds: docs.map((d) => d._id),
      salt,
      otpHash,
      expiresAt: new Date(now.getTime() + config.LINK_OTP_TTL_SEC * 1000),
      attempts: 0,
      status: 'PENDING',
      createdAt: now,
    };
    await store.insertLink(link);
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
    void deliver(link, message, { actor, requestId, gatewayRequestId: req.requestId }).catch((e) =>
      log.error(
        { linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) },
        'link/init delivery bookkeeping failed',
      ),
    );
    return c.json({ transactionId: req.transactionId, linkRefNumber: link._id }, 202);
  });

  /**
   * Sends the code (the notifier retries as configured), then tells the gateway; a code that could not be
   * delivered is never usable.
   */
  const deliver = async (
    link: LinkRequestDoc,
    message: OtpMessage,
    ctx: { actor: ReturnType<typeof actorOf>; requestId: string; gatewayRequestId: string },
  ) => {
    try {
      await notifier.send(message);
    } catch (e) {
      log.warn(
        { linkRefNumber: link._id, err: (e as Error).message.slice(0, 200) },
        'one-time code not delivered; link request failed',
      );
      await store.fail(link._id, 'one-time code delivery failed');
      await audit.append({
        action: 'link.init',
        outcome: 'error',
        status: 202,
        actor: ctx.actor,
        patients: [link.abhaAddress],
        reason: `link ${link._id}: one-time code delivery failed`,
        requestId: ctx.requestId,
      });
      callback('onInit', {
        transactionId: link.transactionId,
        error: { code: 1000, message: 'The one-time code could not be delivered; try linking again later' },
        resp: { requestId: ctx.gatewayRequestId },
      });
      return;
    }
    await audit.append({
      action: 'link.init',
      outcome: 'success',
      status: 202,
      actor: ctx.actor,
      patients: [link.abhaAddress],
      reason: `link ${link._id}`,
      requestId: ctx.requestId,
    });
    callback('onInit', {
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
      resp: { requestId: ctx.gatewayRequestId },
    });
  };

  r.post('/v0.5/links/link/confirm', allow('link.confirm', 'cm'), async (c) => {
    const req = await readJsonBody(c, LinkConfirm, config, 'a JSON link confirmation');
    const { linkRefNumber, token } = req.confirmation;
    const outcome = await store.confirm(linkRefNumber, token, clock());
    const patients = outcome.link ? [outcome.link.abhaAddress] : [];
    await audit.append({
      action: 'link.confirm',
      outcome: outcome.ok ? 'success' : 'refused',
      status: 202,
      actor: actorOf(c),
      patients,
      reason: outcome.ok ? `link ${linkRefNumber}` : outcome.why,
      requestId: c.var.requestId,
    });
    if (outcome.ok) {
      const linked = await records.careContexts
        .find({ _id: { $in: outcome.link.careContextIds }, 'linked.linkRefNumber': outcome.link._id })
        .toArray();
      callback('onConfirm', {
        patient: {
          referenceNumber: outcome.link.abhaAddress,
          display: outcome.link.abhaAddress,
          careContexts: show(linked),
        },
        resp: { requestId: req.requestId },
      });
    } else {
      callback('onConfirm', {
        error: { code: 1000, message: outcome.why },
        resp: { requestId: req.requestId },
      });
    }
    return c.json(
      { linkRefNumber, status: outcome.ok ? 'LINKED' : 'ERRORED', ...(outcome.ok ? {} : { reason: outcome.why }) },
      202,
    );
  });

  return r;
}
