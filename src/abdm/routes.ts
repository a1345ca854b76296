/**
 * ABDM gateway-facing routes: the health-information request (role cm) in
 * both dialects, v0.5 `POST /v0.5/health-information/hip/request` (message id
 * in the body) and v3 `POST /api/v3/hip/health-information/request` (message
 * id in the REQUEST-ID header), one handler for both; and the admin views of
 * transfers (one by id, or a page of them newest first), never with key
 * material. Answers come at once (202); the gateway is told the outcome by
 * callback in the request's dialect: on-request (`hiRequest.sessionStatus`
 * ACKNOWLEDGED, or an `error` object for a refusal), then notify (TRANSFERRED
 * or FAILED), both from the consent's HIP (X-HIP-ID in v3).
 *
 * Before acknowledging, the request is checked: the consent live and for the
 * HIP addressed, the key material usable (a Curve25519 public key, a 32-byte
 * nonce, an expiry to come), the dateRange ordered, and the dataPushUrl a
 * destination the push may use (http/outbound.ts). A refusal is recorded as a
 * FAILED transaction and notified like any other; a repeat of a request is
 * answered again and pushes nothing again; a request that conflicts with an
 * earlier one (transfer.ts, "deduplicated") is refused and changes nothing.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { badRequest, fail, notFound } from '../fhir/outcome.js';
import type { ConsentDoc, ConsentStore } from '../consents/store.js';
import { isoDateTime, orderedRange } from '../consents/schema.js';
import { abdmInstant } from '../fhir/datetime.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import { parsePublicKey } from './fidelius.js';
import type { GatewayClient } from './gateway.js';
import { type Described, type HiRequestInput, type HiTransfers, SESSION_STATUSES } from './transfer.js';
import { enumList, listQuery } from '../http/keyset.js';
import { type Dialect, INBOUND, abdmError, inboundRequestId, requireHip } from './dialect.js';

const base64 = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

/** The `hiRequest` of both dialects. */
const hiRequestBody = z.object({
  consent: z.object({ id: z.string().min(1).max(128) }),
  dateRange: z.object({ from: isoDateTime, to: isoDateTime }),
  dataPushUrl: z
    .string()
    .url()
    .max(2048)
    .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL'),
  keyMaterial: z.object({
    cryptoAlg: z.literal('ECDH'),
    curve: z.literal('Curve25519'),
    dhPublicKey: z.object({ expiry: isoDateTime, parameters: z.string().max(256).optional(), keyValue: base64 }),
    nonce: base64,
  }),
});

/** v0.5: the message id and time in the body. */
export const HiRequest = z
  .object({
    requestId: z.string().min(1).max(128),
    timestamp: z.unknown().optional(), // an envelope field the store does not need: never a reason to refuse
    transactionId: z.string().min(1).max(128),
    hiRequest: hiRequestBody,
  })
  .passthrough();

/** v3: the message id in the REQUEST-ID header (dialect.ts), the body only the request. */
export const HiRequestV3 = z
  .object({
    transactionId: z.string().min(1).max(128),
    hiRequest: hiRequestBody,
  })
  .passthrough();

/** GET /admin/health-information/transactions's parameters besides _count and _cursor. */
export const HI_TRANSACTION_LIST_PARAMS = ['consentId', 'status'] as const;

/** ABDM's error code for a refused request (as NHA's wrapper answers). */
const REFUSED = 1000;

const CANONICAL_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Why the key material cannot be used, or undefined (cryptoAlg and curve are the schema's). */
function keyMaterialRefusal(k: z.output<typeof hiRequestBody>['keyMaterial'], now: Date): string | undefined {
  try {
    parsePublicKey(k.dhPublicKey.keyValue);
  } catch {
    return 'keyMaterial.dhPublicKey.keyValue is not a Curve25519 public key';
  }
  if (!CANONICAL_BASE64.test(k.nonce) || Buffer.from(k.nonce, 'base64').length !== 32)
    return 'keyMaterial.nonce is not base64 of exactly 32 bytes';
  if (now >= abdmInstant(k.dhPublicKey.expiry)) return 'key material has expired (keyMaterial.dhPublicKey.expiry)';
  return undefined;
}

export interface AbdmDeps {
  transfers: HiTransfers;
  consents: ConsentStore;
  gateway: GatewayClient;
  audit: AuditLog;
  config: Config;
  log: Log;
  clock: () => Date;
}

export function abdmRoutes(deps: AbdmDeps) {
  const { transfers, consents, gateway, audit, config, log, clock } = deps;
  const r = new Hono<AppEnv>();

  /** Why a request is refused before it is acknowledged, or undefined. */
  const refusalOf = (
    hi: z.output<typeof hiRequestBody>,
    consent: ConsentDoc | null,
    addressed: string | undefined,
  ): string | undefined => {
    const now = clock();
    if (!consent || consent.status !== 'GRANTED' || !consent.terms)
      return `consent ${hi.consent.id} is ${consent?.status ?? 'unknown'}`;
    if (now >= consent.terms.dataEraseAt) return 'consent has expired';
    if (addressed && addressed !== consent.terms.hip) return `consent ${hi.consent.id} is not for HIP ${addressed}`;
    return (
      keyMaterialRefusal(hi.keyMaterial, now) ??
      (orderedRange(hi.dateRange) ? undefined : 'dateRange.from is after dateRange.to') ??
      transfers.destinationRefusal(hi.dataPushUrl)
    );
  };

  const hiRequest = (dialect: Dialect) => async (c: Context<AppEnv>) => {
    if (!gateway.configured)
      throw fail('unavailable', 'not-supported', 'The ABDM gateway is not configured (GATEWAY_BASE_URL)');
    const req =
      dialect === 'v3'
        ? await readJsonBody(c, HiRequestV3, config, 'a JSON health-information request')
        : await readJsonBody(c, HiRequest, config, 'a JSON health-information request');
    const requestId = inboundRequestId(c, dialect, req);
    const hi = req.hiRequest;
    // The HIP the gateway addresses: required in v3; when sent, a well-formed facility id that must be the consent's.
    const addressed = dialect === 'v3' || c.req.header('x-hip-id') !== undefined ? requireHip(c) : undefined;
    const consent = await consents.get(hi.consent.id);
    const input: HiRequestInput = {
      requestId,
      transactionId: req.transactionId,
      consentId: hi.consent.id,
      dateRange: hi.dateRange,
      dataPushUrl: hi.dataPushUrl,
      keyMaterial: hi.keyMaterial,
      dialect,
      hip: addressed,
    };
    const accepted = await transfers.accept(input, consent, refusalOf(hi, consent, addressed));
    const tx = accepted.outcome === 'conflict' ? undefined : accepted.tx;
    const refusal =
      accepted.outcome === 'conflict' ? accepted.reason : tx!.refused ? (tx!.error ?? 'refused') : undefined;

    try {
      await audit.append({
        action: 'health-information.request',
        outcome: refusal ? 'refused' : 'success',
        status: 202,
        actor: actorOf(c),
        consentId: hi.consent.id,
        purpose: consent?.terms?.purpose ?? null,
        reason: (
          refusal ?? `transaction ${req.transactionId}${accepted.outcome === 'repeat' ? ' (repeated)' : ''}`
        ).slice(0, 300),
        requestId: c.var.requestId,
      });
    } catch (e) {
      // Not audited, not taken: the gateway's retry of this request is taken as new.
      if (accepted.outcome === 'new') await transfers.discard(tx!._id, tx!.fingerprint!).catch(() => undefined);
      throw e;
    }

    // Answer the gateway (in the request's dialect, as the consent's HIP), then transfer in the background.
    const hip = addressed ?? tx?.hip ?? consent?.terms?.hip;
    void (async () => {
      try {
        await gateway.send(
          'hiOnRequest',
          refusal
            ? abdmError(REFUSED, refusal)
            : { hiRequest: { transactionId: req.transactionId, sessionStatus: 'ACKNOWLEDGED' } },
          { dialect, inReplyTo: requestId, ...(hip ? { hip } : {}) },
        );
      } catch (e) {
        log.warn(
          { transactionId: req.transactionId, err: (e as Error).message.slice(0, 200) },
          'gateway on-request failed',
        );
      }
      if (tx) await transfers.run(tx._id);
    })();
    return c.json(
      {
        transactionId: req.transactionId,
        status: refusal ? 'ERRORED' : 'ACKNOWLEDGED',
        ...(refusal ? { reason: refusal } : {}),
      },
      202,
    );
  };

  r.post(INBOUND.hiRequest['v0.5'], allow('health-information.request', 'cm'), hiRequest('v0.5'));
  r.post(INBOUND.hiRequest.v3, allow('health-information.request', 'cm'), hiRequest('v3'));

  /** A transaction as admin reads it: by its transactionId, never with the sender's key material. */
  const described = ({ _id, sender: _key, ...rest }: Described & { sender?: unknown }) => ({
    transactionId: _id,
    ...rest,
  });

  r.get('/admin/health-information/transactions', allow('health-information.search', 'admin'), async (c) => {
    const params = new URL(c.req.url).searchParams;
    const { count, after } = listQuery(params, HI_TRANSACTION_LIST_PARAMS, ['status']);
    const statuses = enumList(params, 'status', SESSION_STATUSES);
    const consentId = params.get('consentId') ?? undefined;
    if (consentId !== undefined && (consentId.length === 0 || consentId.length > 128))
      throw badRequest('consentId must be a consent id (1-128 characters)', 'consentId');
    const page = await transfers.list({ consentId, statuses, count, after });
    await audit.append({
      action: 'health-information.search',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      consentId: consentId ?? null,
      reason: [
        `${page.transactions.length} transactions`,
        ...(statuses.length ? [`status ${statuses.join(',')}`] : []),
        ...(after ? ['a later page'] : []),
      ].join(', '),
      requestId: c.var.requestId,
    });
    return c.json({ transactions: page.transactions.map(described), ...(page.next ? { next: page.next } : {}) });
  });

  r.get('/admin/health-information/transactions/:id', allow('health-information.read', 'admin'), async (c) => {
    const tx = await transfers.describe(c.req.param('id').slice(0, 128));
    if (!tx) throw notFound(`Transaction ${c.req.param('id').slice(0, 128)} not found`);
    await audit.append({
      action: 'health-information.read',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      consentId: tx.consentId,
      requestId: c.var.requestId,
    });
    return c.json(described(tx));
  });

  return r;
}
