/**
 * Care-context discovery and linking, answered to the gateway by callback.
 *
 * discover: find the patient among this provider's records by ABHA address
 * (patient.id) or a verified ABHA number, and return the care contexts not yet
 * linked. link/init: issue a one-time code through a pluggable notifier
 * (console in development) for the care contexts the patient chose.
 * link/confirm: check the code (expiry, attempt limit) and record the link.
 * Only the code's salted hash is stored.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import { z } from 'zod';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import type { CareContextDoc, Collections } from '../db/mongo.js';
import { type AppEnv, requireRole } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { badRequest, unprocessable } from '../fhir/outcome.js';
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { GatewayClient } from './gateway.js';
import { KeyedLock } from '../db/keyed-lock.js';
import { demographicKey } from '../records/index-keys.js';

/** Delivers a one-time code to the patient. */
export interface OtpNotifier { send(message: { linkRefNumber: string; patient: string; otp: string; expiresAt: Date }): Promise<void> }

/** Development notifier: prints the code on the server's console (not to the log). */
export const consoleNotifier: OtpNotifier = {
  async send(m) { console.log(`[link] one-time code for link request ${m.linkRefNumber}: ${m.otp} (expires ${m.expiresAt.toISOString()})`); },
};

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
  createdAt: Date;
}

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

const NUMBER_TYPES = new Set(['NDHM_HEALTH_NUMBER', 'HEALTH_NUMBER', 'ABHA_NUMBER']);
const hashOtp = (salt: string, otp: string) => createHash('sha256').update(salt).update(otp).digest();

export interface LinkingDeps { records: Collections; gateway: GatewayClient; audit: AuditLog; config: Config; log: Log; clock: () => Date; notifier: OtpNotifier; db: Db }

export function linkingRoutes(deps: LinkingDeps) {
  const { records, gateway, audit, config, log, clock, notifier } = deps;
  const links: Collection<LinkRequestDoc> = deps.db.collection<LinkRequestDoc>('link_requests');
  const confirming = new KeyedLock();
  const r = new Hono<AppEnv>();

  const hipOf = (c: any): string => {
    const hip = c.req.header('x-hip-id');
    if (!hip || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(hip)) throw badRequest('X-HIP-ID header required: the provider the gateway addresses', 'X-HIP-ID');
    return hip;
  };
  /** Sends a callback in the background; a failure is logged, the request was already answered. */
  const callback = (path: string, body: Record<string, unknown>) => {
    void gateway.post(path, { ...gateway.envelope(), ...body }).catch((e) => log.warn({ path, err: (e as Error).message.slice(0, 200) }, 'gateway callback failed'));
  };
  const show = (d: CareContextDoc) => ({ referenceNumber: d.referenceNumber, display: d.display ?? d.referenceNumber });

  r.post('/v0.5/care-contexts/discover', requireRole('cm'), async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, Discover, config);
    const address = normaliseAbhaAddress(req.patient.id);
    const number = (req.patient.verifiedIdentifiers ?? []).filter((v) => NUMBER_TYPES.has(v.type)).map((v) => normaliseAbhaNumber(v.value)).find(Boolean);
    const or = [...(address ? [{ abhaAddress: address }] : []), ...(number ? [{ abhaNumber: number }] : [])];
    let found = or.length ? await records.careContexts.find({ provider: hip, $or: or }).toArray() : [];
    let matchedBy = [...(found.some((d) => address && d.abhaAddress === address) ? ['HEALTH_ID'] : []), ...(found.some((d) => number && d.abhaNumber === number) ? ['NDHM_HEALTH_NUMBER'] : [])];
    if (found.length === 0) {
      // No identifier matched: the verified demographics (name, gender, year of birth) the consent manager sent.
      const key = demographicKey(req.patient.name, req.patient.gender, req.patient.yearOfBirth);
      if (key) {
        found = await records.careContexts.find({ provider: hip, demographicKey: key }).toArray();
        // Demographics must point to one patient; several ABHA identities under one name are not disclosed.
        if (new Set(found.map((d) => d.abhaAddress ?? d.abhaNumber)).size > 1) found = [];
        matchedBy = found.length ? ['DEMOGRAPHICS'] : [];
      }
    }
    const unlinked = found.filter((d) => !d.linked);
    await audit.append({ action: 'care-context.discover', outcome: 'success', status: 202, actor: actorOf(c), patients: [address, number].filter((x): x is string => !!x), reason: `${unlinked.length} unlinked care contexts`, requestId: c.var.requestId });
    callback('/v0.5/care-contexts/on-discover', {
      transactionId: req.transactionId,
      ...(found.length
        ? { patient: { referenceNumber: found[0].abhaAddress ?? found[0].abhaNumber, display: req.patient.name ?? found[0].abhaAddress ?? found[0].abhaNumber, careContexts: unlinked.map(show), matchedBy } }
        : { patient: null, error: { code: 1000, message: 'No patient found with these identifiers at this provider' } }),
      resp: { requestId: req.requestId },
    });
    return c.json({ transactionId: req.transactionId, found: found.length > 0 }, 202);
  });

  r.post('/v0.5/links/link/init', requireRole('cm'), async (c) => {
    const hip = hipOf(c);
    const req = await readJsonBody(c, LinkInit, config);
    const address = normaliseAbhaAddress(req.patient.id);
    if (!address) throw unprocessable([{ severity: 'error', code: 'value', diagnostics: 'patient.id must be an ABHA address', expression: 'patient.id' }]);
    const wanted = [...new Set(req.patient.careContexts.map((x) => x.referenceNumber))];
    // The patient is named by their ABHA address, and by the referenceNumber discovery returned (an ABHA address or number).
    const ref = req.patient.referenceNumber;
    const who = [{ abhaAddress: address }, { abhaAddress: normaliseAbhaAddress(ref) ?? '-' }, { abhaNumber: normaliseAbhaNumber(ref) ?? '-' }];
    const docs = await records.careContexts.find({ provider: hip, referenceNumber: { $in: wanted }, $or: who }).toArray();
    const missing = wanted.filter((w) => !docs.some((d) => d.referenceNumber === w && !d.linked));
    if (missing.length) {
      await audit.append({ action: 'link.init', outcome: 'refused', status: 202, actor: actorOf(c), patients: [address], reason: `unknown or already linked: ${missing.join(', ').slice(0, 200)}`, requestId: c.var.requestId });
      callback('/v0.5/links/link/on-init', { transactionId: req.transactionId, error: { code: 1000, message: `Care contexts not found or already linked: ${missing.join(', ')}` }, resp: { requestId: req.requestId } });
      return c.json({ transactionId: req.transactionId, status: 'ERRORED' }, 202);
    }
    const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const salt = randomBytes(16).toString('hex');
    const now = clock();
    const link: LinkRequestDoc = {
      _id: uuidv4(), transactionId: req.transactionId, provider: hip, abhaAddress: address, careContextIds: docs.map((d) => d._id),
      salt, otpHash: hashOtp(salt, otp).toString('hex'), expiresAt: new Date(now.getTime() + config.LINK_OTP_TTL_SEC * 1000), attempts: 0, status: 'PENDING', createdAt: now,
    };
    await links.insertOne(link);
    await notifier.send({ linkRefNumber: link._id, patient: address, otp, expiresAt: link.expiresAt });
    await audit.append({ action: 'link.init', outcome: 'success', status: 202, actor: actorOf(c), patients: [address], reason: `link ${link._id}`, requestId: c.var.requestId });
    callback('/v0.5/links/link/on-init', {
      transactionId: req.transactionId,
      link: { referenceNumber: link._id, authenticationType: 'DIRECT', meta: { communicationMedium: 'MOBILE', communicationHint: 'One-time code sent to the registered mobile number', communicationExpiry: link.expiresAt.toISOString() } },
      resp: { requestId: req.requestId },
    });
    return c.json({ transactionId: req.transactionId, linkRefNumber: link._id }, 202);
  });

  r.post('/v0.5/links/link/confirm', requireRole('cm'), async (c) => {
    const req = await readJsonBody(c, LinkConfirm, config);
    const { linkRefNumber, token } = req.confirmation;
    const outcome = await confirming.run(linkRefNumber, async (): Promise<{ ok: true; link: LinkRequestDoc } | { ok: false; why: string; link?: LinkRequestDoc }> => {
      const link = await links.findOne({ _id: linkRefNumber });
      if (!link) return { ok: false, why: 'unknown link reference' };
      if (link.status !== 'PENDING') return { ok: false, why: `link request is ${link.status}`, link };
      if (clock() >= link.expiresAt) { await links.updateOne({ _id: link._id }, { $set: { status: 'FAILED' } }); return { ok: false, why: 'one-time code expired', link }; }
      const attempts = link.attempts + 1;
      const good = /^\d{6}$/.test(token) && timingSafeEqual(hashOtp(link.salt, token), Buffer.from(link.otpHash, 'hex'));
      if (!good) {
        const failed = attempts >= config.LINK_OTP_MAX_ATTEMPTS;
        await links.updateOne({ _id: link._id }, { $set: { attempts, ...(failed ? { status: 'FAILED' as const } : {}) } });
        return { ok: false, why: failed ? 'too many wrong codes; start linking again' : 'wrong one-time code', link };
      }
      const at = clock();
      await records.careContexts.updateMany({ _id: { $in: link.careContextIds } }, { $set: { linked: { abhaAddress: link.abhaAddress, at, linkRefNumber: link._id } } });
      await links.updateOne({ _id: link._id }, { $set: { status: 'LINKED', attempts } });
      return { ok: true, link };
    });
    const patients = outcome.link ? [outcome.link.abhaAddress] : [];
    await audit.append({ action: 'link.confirm', outcome: outcome.ok ? 'success' : 'refused', status: 202, actor: actorOf(c), patients, reason: outcome.ok ? `link ${linkRefNumber}` : outcome.why, requestId: c.var.requestId });
    if (outcome.ok) {
      const linked = await records.careContexts.find({ _id: { $in: outcome.link.careContextIds } }).toArray();
      callback('/v0.5/links/link/on-confirm', { patient: { referenceNumber: outcome.link.abhaAddress, display: outcome.link.abhaAddress, careContexts: linked.map(show) }, resp: { requestId: req.requestId } });
    } else {
      callback('/v0.5/links/link/on-confirm', { error: { code: 1000, message: outcome.why }, resp: { requestId: req.requestId } });
    }
    return c.json({ linkRefNumber, status: outcome.ok ? 'LINKED' : 'ERRORED', ...(outcome.ok ? {} : { reason: outcome.why }) }, 202);
  });

  return r;
}
