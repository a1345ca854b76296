/**
 * Reading a consent back (admin, or the consent's own HIU). The consent
 * manager's notifications arrive through the gateway: abdm/consent-notify.ts.
 */
import { Hono } from 'hono';
import { type AppEnv, allow } from '../auth/caller.js';
import { fail, notFound } from '../fhir/outcome.js';
import type { ConsentStore } from './store.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';

export interface ConsentDeps {
  consents: ConsentStore;
  audit: AuditLog;
}

export function consentRoutes(deps: ConsentDeps) {
  const { consents, audit } = deps;
  const r = new Hono<AppEnv>();

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
