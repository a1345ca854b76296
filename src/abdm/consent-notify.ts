/**
 * Consent notifications from ABDM's consent manager through the gateway (role
 * cm), in both dialects (dialect.ts): v3 `/api/v3/consent/request/hip/notify`,
 * v0.5 `/v0.5/consents/hip/notify`. Each is applied (consents/store.ts),
 * audited, answered 202, and acknowledged to the gateway in its own dialect
 * (`on-notify` with `acknowledgement {status: OK, consentId}`) when a gateway
 * is configured and the message has an id to echo.
 */
import { Hono, type Context } from 'hono';
import type { Config } from '../config.js';
import type { Log } from '../log.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { ConsentNotifyV05, ConsentNotifyV3 } from '../consents/schema.js';
import type { ConsentStore } from '../consents/store.js';
import { patientAuditKey } from '../consents/policy.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { GatewayClient } from './gateway.js';
import { type Dialect, INBOUND, hipHeader, messageId } from './dialect.js';

export interface ConsentNotifyDeps {
  consents: ConsentStore;
  audit: AuditLog;
  config: Config;
  clock: () => Date;
  log?: Log;
  /** The gateway the acknowledgements go to; none, or not configured: none are sent. */
  gateway?: GatewayClient;
}

export function consentNotifyRoutes(deps: ConsentNotifyDeps) {
  const { consents, audit, config, clock, log, gateway } = deps;
  const acknowledge =
    gateway?.configured === true
      ? (consentId: string, requestId: string, dialect: Dialect, hip: string | undefined) =>
          gateway.send(
            'consentOnNotify',
            { acknowledgement: { status: 'OK', consentId } },
            {
              dialect,
              inReplyTo: requestId,
              hip,
            },
          )
      : undefined;
  const r = new Hono<AppEnv>();

  const notify = (dialect: Dialect) => async (c: Context<AppEnv>) => {
    const schema = dialect === 'v3' ? ConsentNotifyV3 : ConsentNotifyV05;
    const body = await readJsonBody(c, schema, config, 'a JSON consent notification');
    const requestId = messageId(c, dialect, body);
    const n = body.notification;
    // Whose consent it is (v3 X-HIP-ID on the acknowledgement): the grant's, or the stored consent's before it ends.
    const hip = acknowledge
      ? (n.consentDetail?.hip.id ?? (await consents.get(n.consentId))?.terms?.hip ?? hipHeader(c))
      : undefined;
    const result = await consents.apply(n, clock());
    // The patient as the audit trail names them (a number in either form is found by either):
    // from the grant, or the consent as stored.
    const patient = n.consentDetail
      ? patientAuditKey(n.consentDetail.patient.id)
      : (await consents.get(n.consentId))?.patient;
    await audit.append({
      action: 'consent.notify',
      outcome: 'success',
      status: 202,
      actor: actorOf(c),
      consentId: n.consentId,
      purpose: n.consentDetail?.purpose.code ?? null,
      patients: patient ? [patient] : [],
      reason: `${n.status}: ${result}`,
      requestId: c.var.requestId,
    });
    // Acknowledge to the gateway (on-notify, in the notification's dialect) when one is configured.
    if (acknowledge && requestId) {
      void acknowledge(n.consentId, requestId, dialect, hip).catch((e) =>
        log?.warn({ err: (e as Error).message.slice(0, 200) }, 'gateway on-notify failed'),
      );
    }
    return c.json({ consentId: n.consentId, status: n.status, result }, 202);
  };

  r.post(INBOUND.consentNotify['v0.5'], allow('consent.notify', 'cm'), notify('v0.5'));
  r.post(INBOUND.consentNotify.v3, allow('consent.notify', 'cm'), notify('v3'));
  return r;
}
