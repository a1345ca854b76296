/**
 * ABDM gateway-facing routes: the health-information request (role cm) and
 * the admin view of a transfer. Answers come at once (202); the gateway is
 * told the outcome by callback (on-request, then notify).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { fail, notFound } from '../fhir/outcome.js';
import type { ConsentStore } from '../consents/store.js';
import { isoDateTime, orderedRange } from '../consents/schema.js';
import { abdmInstant } from '../fhir/datetime.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import { parsePublicKey } from './fidelius.js';
import type { GatewayClient } from './gateway.js';
import type { HiTransfers } from './transfer.js';

const base64 = z
  .string()
  .max(1024)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64');

export const HiRequest = z
  .object({
    requestId: z.string().min(1).max(128),
    timestamp: z.string().max(64).optional(),
    transactionId: z.string().min(1).max(128),
    hiRequest: z.object({
      consent: z.object({ id: z.string().min(1).max(128) }),
      dateRange: z.object({ from: isoDateTime, to: isoDateTime }),
      dataPushUrl: z
        .string()
        .url()
        .max(2048)
        .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL'),
      keyMaterial: z.object({
        cryptoAlg: z.literal('ECDH'),
        curve: z.literal('Curve25519'),
        dhPublicKey: z.object({ expiry: isoDateTime, parameters: z.string().max(256).optional(), keyValue: base64 }),
        nonce: base64,
      }),
    }),
  })
  .passthrough();

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

  r.post('/v0.5/health-information/hip/request', allow('health-information.request', 'cm'), async (c) => {
    if (!gateway.configured)
      throw fail('unavailable', 'not-supported', 'The ABDM gateway is not configured (GATEWAY_BASE_URL)');
    const req = await readJsonBody(c, HiRequest, config, 'a JSON health-information request');
    const hi = req.hiRequest;

    // Refusals that need no transaction: the request is acknowledged as ERRORED.
    const now = clock();
    const consent = await consents.get(hi.consent.id);
    let refusal: string | undefined;
    if (!consent || consent.status !== 'GRANTED' || !consent.terms)
      refusal = `consent ${hi.consent.id} is ${consent?.status ?? 'unknown'}`;
    else if (now >= consent.terms.dataEraseAt) refusal = 'consent has expired';
    else if (now >= abdmInstant(hi.keyMaterial.dhPublicKey.expiry)) refusal = 'key material has expired';
    else if (!orderedRange(hi.dateRange)) refusal = 'dateRange.from is after dateRange.to';
    else {
      try {
        parsePublicKey(hi.keyMaterial.dhPublicKey.keyValue);
      } catch {
        refusal = 'dhPublicKey.keyValue is not a Curve25519 public key';
      }
    }

    await audit.append({
      action: 'health-information.request',
      outcome: refusal ? 'refused' : 'success',
      status: 202,
      actor: actorOf(c),
      consentId: hi.consent.id,
      purpose: consent?.terms?.purpose ?? null,
      reason: refusal ?? `transaction ${req.transactionId}`,
      requestId: c.var.requestId,
    });
    const tx = refusal
      ? undefined
      : await transfers.accept(
          {
            requestId: req.requestId,
            transactionId: req.transactionId,
            consentId: hi.consent.id,
            dateRange: hi.dateRange,
            dataPushUrl: hi.dataPushUrl,
            keyMaterial: hi.keyMaterial,
          },
          consent!,
        );

    // Acknowledge to the gateway, then transfer in the background.
    void (async () => {
      try {
        await gateway.send(
          'hiOnRequest',
          {
            hiRequest: { transactionId: req.transactionId, sessionStatus: refusal ? 'ERRORED' : 'ACKNOWLEDGED' },
            ...(refusal ? { error: { code: 1000, message: refusal } } : {}),
          },
          { dialect: 'v0.5', inReplyTo: req.requestId },
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
    const { _id, ...rest } = tx;
    return c.json({ transactionId: _id, ...rest });
  });

  return r;
}
