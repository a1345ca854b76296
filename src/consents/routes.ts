/**
 * Consent notifications from ABDM's consent manager (role cm), and reading a
 * consent back (admin, or the consent's own HIU).
 */
import { Hono, type Context } from 'hono';
import type { Config } from '../config.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { fail, notFound } from '../fhir/outcome.js';
import { ConsentNotifyV05, ConsentNotifyV3 } from './schema.js';
import type { ConsentStore } from './store.js';
import { patientAuditKey } from './policy.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import type { Log } from '../log.js';
import { type Dialect, INBOUND, hipHeader, messageId } from '../abdm/dialect.js';

export interface ConsentDeps {
  consents: ConsentStore;
  audit: AuditLog;
  config: Config;
  clock: () => Date;
  log?: Log;
  /** Acknowledges a notification to the gateway (on-notify) in its dialect, when one is configured (app.ts wires it). */
  acknowledge?: (consentId: string, requestId: string, dialect: Dialect, hip: string | undefined) => Promise<void>;
}

export function consentRoutes(deps: ConsentDeps) {
  const { consents, audit, config, clock, acknowledge, log } = deps;
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

  r.get('/consents/:id', allow('consent.read', 'admin', 'hiu'), async (c) => {
    const id = c.req.param('id');
    const consent = id.length <= 128 ? await consents.get(id) : null;
    if (!consent) throw notFound(`Consent ${id.slice(0, 128)} not found`);
    const caller = c.var.caller;
    if (caller.role === 'hiu' && (!consent.terms?.hiu || consent.terms.hiu !== caller.facilityId)) {
      throw fail(
        'forbidden',
        'forbidden',
        'A consent can be read by admin or by the health information user it was granted to',
      );
    }
    await audit.append({
      action: 'consent.read',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      consentId: consent._id,
      requestId: c.var.requestId,
    });
    const { _id, artefact, ...rest } = consent;
    return c.json({ id: _id, ...rest, ...(artefact ? { artefact: JSON.parse(artefact) } : {}) });
  });

  return r;
}
