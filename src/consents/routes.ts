/**
 * Reading consents back (admin, or the consent's own HIU): one by id, or a
 * page of them. The consent manager's notifications arrive through the
 * gateway: abdm/consent-notify.ts.
 *
 *   GET /consents/:id   admin, hiu   consent.read
 *   GET /consents       admin, hiu   consent.search
 *
 * A HIU sees only the consents granted to it, ended ones included (their
 * status and history: the terms are erased). Each consent is answered with its
 * `effectiveStatus` and, while granted, its `usage` (what is left of its
 * frequency, read without counting a pull). Reading consents never counts a
 * pull.
 */
import { Hono } from 'hono';
import { type AppEnv, allow } from '../auth/caller.js';
import { badRequest, fail, notFound } from '../fhir/outcome.js';
import { type ConsentDoc, type ConsentStore, type ConsentUsage, effectiveStatus, hiuOf } from './store.js';
import { patientAuditKey } from './policy.js';
import { STATUSES } from './schema.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import { enumList, listQuery } from '../http/keyset.js';

export interface ConsentDeps {
  consents: ConsentStore;
  audit: AuditLog;
  /** Now, for effectiveStatus and usage; default the system clock. */
  clock?: () => Date;
}

/** GET /consents's parameters besides _count and _cursor. */
export const CONSENT_LIST_PARAMS = ['status', 'patient'] as const;

export function consentRoutes(deps: ConsentDeps) {
  const { consents, audit } = deps;
  const clock = deps.clock ?? (() => new Date());
  const r = new Hono<AppEnv>();

  /** A consent as it is answered: as stored (artefact parsed), with its HIU, effectiveStatus and usage. */
  const answer = (consent: ConsentDoc, now: Date, usages: Map<string, ConsentUsage>) => {
    const { _id, artefact, hiu: _hiu, ...rest } = consent;
    const usage = consent.status === 'GRANTED' ? usages.get(_id) : undefined;
    return {
      id: _id,
      ...rest,
      hiu: hiuOf(consent),
      effectiveStatus: effectiveStatus(consent, now),
      ...(usage ? { usage } : {}),
      ...(artefact ? { artefact: JSON.parse(artefact) } : {}),
    };
  };

  r.get('/consents', allow('consent.search', 'admin', 'hiu'), async (c) => {
    const params = new URL(c.req.url).searchParams;
    const { count, after } = listQuery(params, CONSENT_LIST_PARAMS, ['status']);
    const statuses = enumList(params, 'status', STATUSES);
    const caller = c.var.caller;
    const rawPatient = params.get('patient');
    let patient: string | undefined;
    if (rawPatient !== null) {
      if (caller.role !== 'admin') throw fail('forbidden', 'forbidden', 'Only role admin may list consents by patient');
      if (rawPatient.trim() === '' || rawPatient.length > 256)
        throw badRequest('patient must be an ABHA number or ABHA address', 'patient');
      patient = patientAuditKey(rawPatient);
    }
    const page = await consents.list({
      ...(caller.role === 'hiu' ? { hiu: caller.facilityId } : {}),
      statuses,
      patient,
      count,
      after,
    });
    const now = clock();
    const usages = await consents.usages(page.consents, now); // one query for the page's counters
    const items = page.consents.map((consent) => answer(consent, now, usages));
    await audit.append({
      action: 'consent.search',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      consentId: null,
      // The patients whose consents were listed, so each can learn who saw them (GET /fhir/AuditEvent).
      patients: [...new Set(page.consents.map((x) => x.patient).filter((p): p is string => Boolean(p)))],
      reason: [
        `${items.length} consents`,
        ...(statuses.length ? [`status ${statuses.join(',')}`] : []),
        ...(patient ? ['of one patient'] : []),
        ...(after ? ['a later page'] : []),
      ].join(', '),
      requestId: c.var.requestId,
    });
    return c.json({ consents: items, ...(page.next ? { next: page.next } : {}) });
  });

  r.get('/consents/:id', allow('consent.read', 'admin', 'hiu'), async (c) => {
    const id = c.req.param('id');
    const consent = id.length <= 128 ? await consents.get(id) : null;
    if (!consent) throw notFound(`Consent ${id.slice(0, 128)} not found`);
    const caller = c.var.caller;
    const hiu = hiuOf(consent);
    if (caller.role === 'hiu' && (!hiu || hiu !== caller.facilityId)) {
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
    const now = clock();
    return c.json(answer(consent, now, await consents.usages([consent], now)));
  });

  return r;
}
