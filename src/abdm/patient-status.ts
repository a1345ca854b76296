/**
 * ABHA status notifications from ABDM's consent manager (role cm):
 * `POST /v0.5/patients/status/notify` with `notification.status` DEACTIVATED,
 * REACTIVATED or DELETED for the ABHA address in `notification.patient.id`,
 * acknowledged with `/v0.5/patients/status/on-notify` (v0.5 in either
 * dialect: ABDM v3 has no such message; abdm-v3.md). ABDM's rules: Milestone 2
 * HIP_INIT_ABHA_OPTOUT_DEACTIVATE (drop the address's consents and links) and
 * ABHA deletion (every reference to the address goes, the health data stays).
 * The status applies to the address at every provider this store serves.
 *
 * On DEACTIVATED and DELETED, what goes:
 * - consents: every consent of the address still GRANTED ends (REVOKED, its
 *   terms and artefact erased, exactly as a revocation; consents/store.ts
 *   endForPatient); on DELETED the ended consents also lose the patient key
 *   they keep (only id, status and times remain);
 * - link requests of the address (link_requests, every status), the records
 *   of its link/init messages (link_init_messages), and the discovery records
 *   it asked for or was returned as the reference of (link_discoveries); on
 *   DELETED also its link/init counters (link_init_usage);
 * - care contexts: `linked` taken off those linked to the address, and
 *   `abhaAddress` set to null where it is their stored address, so discovery
 *   by the address finds none of them (an ABHA number they carry still does);
 * - HIP-initiated linking state: documents with `abhaAddress` the address in
 *   hip_links and hip_link_tokens.
 * What stays: the health records and their indexes (record_versions, records,
 * record_contents, record_identifiers, patient_index: they keep the ABHA
 * address the provider uploaded them with, and the provider still reads
 * them), care contexts themselves (with their ABHA number, display, record
 * types), consents' ids, statuses and times, the audit trail (audit_events,
 * append-only and hash-chained: it keeps naming the address), and the status
 * itself (abha_status).
 *
 * The status is kept per address in abha_status `{_id: <address lower case>,
 * status, at}`, `at` the notification's timestamp (its receipt when it has none
 * or one in the future). A notification older than the status recorded changes
 * nothing (a late retry of DEACTIVATED does not undo a REACTIVATED). While the
 * address is DEACTIVATED or DELETED, discovery offers it nothing (answered as
 * not found) and link/init and link/confirm are refused, each audited
 * (abdm/linking.ts). REACTIVATED sets it back; links are not restored, the
 * patient links again.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Collection, Db } from 'mongodb';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { unprocessable } from '../fhir/outcome.js';
import { normaliseAbhaAddress } from '../fhir/abha.js';
import { parseAbdmDateTime } from '../fhir/datetime.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { ConsentStore } from '../consents/store.js';
import { patientAuditKey } from '../consents/policy.js';
import { type Engine, guardedUpdate } from '../db/engine.js';
import type { Collections } from '../records/model.js';
import type { GatewayClient } from './gateway.js';
import { INBOUND, hipHeader, inboundRequestId } from './dialect.js';
import { LinkStore } from './link-store.js';
import { HIP_LINKS, HIP_LINK_TOKENS } from './hip-linking.js';
import { regexLiteral } from '../db/mongo.js';

export const ABHA_STATUSES = ['DEACTIVATED', 'REACTIVATED', 'DELETED'] as const;
export type AbhaStatus = (typeof ABHA_STATUSES)[number];

export const PatientStatusNotify = z
  .object({
    requestId: z.string().min(1).max(128),
    // Not needed to apply the message: any value (or none) is accepted; a valid one orders notifications.
    timestamp: z.unknown().optional(),
    notification: z
      .object({
        status: z.enum(ABHA_STATUSES),
        patient: z.object({ id: z.string().min(3).max(128) }).passthrough(),
      })
      .passthrough(),
  })
  .passthrough();

export interface AbhaStatusDoc {
  _id: string; // the ABHA address, lower case
  status: AbhaStatus;
  at: Date;
}

/** HIP-initiated linking's collections: what they keep of an address is found by its `abhaAddress` field. */
const HIP_LINKING = [HIP_LINKS, HIP_LINK_TOKENS] as const;

/** The ABHA status of each address the consent manager has told the store about (abha_status). */
export class AbhaStatuses {
  readonly statuses: Collection<AbhaStatusDoc>;

  constructor(
    db: Db,
    private engine: Engine,
  ) {
    this.statuses = db.collection<AbhaStatusDoc>('abha_status');
  }

  /** DEACTIVATED or DELETED when discovery and linking must offer this address nothing; else null. */
  async blocked(address: string): Promise<Exclude<AbhaStatus, 'REACTIVATED'> | null> {
    const doc = await this.statuses.findOne({ _id: address.toLowerCase() });
    return doc && doc.status !== 'REACTIVATED' ? doc.status : null;
  }

  /**
   * Records a status as of `at`, unless the address has a status recorded as of a later time (guarded, so it holds
   * across processes). True when recorded.
   */
  record(address: string, status: AbhaStatus, at: Date): Promise<boolean> {
    return guardedUpdate(
      this.engine,
      this.statuses,
      address.toLowerCase(),
      { $or: [{ at: { $exists: false } }, { at: { $lte: at } }] },
      { $set: { status, at } },
      { upsert: true },
    );
  }
}

export interface PatientStatusDeps {
  db: Db;
  records: Collections;
  engine: Engine;
  consents: ConsentStore;
  gateway: GatewayClient;
  audit: AuditLog;
  config: Config;
  log: Log;
  clock: () => Date;
}

export function patientStatusRoutes(deps: PatientStatusDeps) {
  const { db, consents, gateway, audit, config, log, clock } = deps;
  const statuses = new AbhaStatuses(db, deps.engine);
  const links = new LinkStore(db, deps.records, deps.engine, config, log);
  const r = new Hono<AppEnv>();

  /** Drops what the store keeps of the address (the header's list); returns counts for the audit. */
  const drop = async (address: string, status: 'DEACTIVATED' | 'DELETED', now: Date): Promise<string> => {
    const deleted = status === 'DELETED';
    // Consents first: sharing stops before anything else is tidied.
    const c = await consents.endForPatient(patientAuditKey(address), 'REVOKED', now, { forget: deleted });
    const l = await links.forgetPatient(address, { counters: deleted });
    const cc = await links.unlinkPatient(address);
    // Stored by another feature, perhaps in the case it was given: matched without regard to case.
    const match = { abhaAddress: { $regex: `^${regexLiteral(address)}$`, $options: 'i' } };
    // A job for a patient known by ABHA number only has no address: it goes with the care contexts the address had.
    const [hipLinks, hipTokens] = await Promise.all(
      HIP_LINKING.map((name) =>
        db
          .collection(name)
          .deleteMany(name === HIP_LINKS ? { $or: [match, { careContextId: { $in: cc.careContextIds } }] } : match),
      ),
    );
    return [
      `consents ended ${c.ended}`,
      ...(deleted ? [`consents forgotten ${c.forgotten}`] : []),
      `link requests ${l.linkRequests}`,
      `discoveries ${l.discoveries}`,
      `link/init messages ${l.initMessages}`,
      ...(deleted ? [`link/init counters ${l.counters}`] : []),
      `care contexts unlinked ${cc.unlinked}`,
      `care contexts unkeyed ${cc.unkeyed}`,
      `HIP-initiated links ${hipLinks.deletedCount}`,
      `link tokens ${hipTokens.deletedCount}`,
    ].join(', ');
  };

  r.post(INBOUND.patientStatus['v0.5'], allow('patient.status', 'cm'), async (c) => {
    const body = await readJsonBody(c, PatientStatusNotify, config, 'a JSON ABHA status notification');
    const requestId = inboundRequestId(c, 'v0.5', body);
    const address = normaliseAbhaAddress(body.notification.patient.id);
    if (!address)
      throw unprocessable([
        {
          severity: 'error',
          code: 'value',
          diagnostics: 'notification.patient.id must be an ABHA address',
          expression: 'notification.patient.id',
        },
      ]);
    const { status } = body.notification;
    const now = clock();
    const sent = parseAbdmDateTime(body.timestamp);
    const at = sent && sent.getTime() <= now.getTime() ? sent : now;
    // The status first: from here discovery and linking offer the address nothing, while the rest is dropped.
    const applied = await statuses.record(address, status, at);
    const reason = !applied
      ? `${status}: older than the status recorded; nothing changed`
      : status === 'REACTIVATED'
        ? 'REACTIVATED: discovery and linking allowed again; links are not restored'
        : `${status}: ${await drop(address, status, now)}`;
    await audit.append({
      action: 'patient.status',
      outcome: 'success',
      status: 202,
      actor: actorOf(c),
      patients: [address],
      reason,
      requestId: c.var.requestId,
    });
    if (gateway.configured) {
      void gateway
        .send(
          'patientStatusOnNotify',
          { acknowledgement: { status: 'OK' } },
          { dialect: 'v0.5', inReplyTo: requestId, hip: hipHeader(c) },
        )
        .catch((e) => log.warn({ err: (e as Error).message.slice(0, 200) }, 'gateway patient status on-notify failed'));
    }
    return c.json({ status, applied }, 202);
  });

  return r;
}
