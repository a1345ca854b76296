/**
 * The consent manager asks who accessed the records of a patient (ABHA
 * address or number) between two dates: FHIR AuditEvent resources (role cm).
 */
import { Hono } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import { type AppEnv, allow } from '../auth/caller.js';
import { badRequest } from '../fhir/outcome.js';
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import { fhirDateRange } from '../fhir/datetime.js';
import type { AuditEventDoc, AuditLog } from './log.js';
import { actorOf } from './http.js';

const ACTION_CODES: Record<string, { code: string; display: string }> = {
  'record.read': { code: 'R', display: 'Read' },
  'record.search': { code: 'E', display: 'Execute' },
  'record.history': { code: 'R', display: 'Read' },
  'record.vread': { code: 'R', display: 'Read' },
  'record.upload': { code: 'C', display: 'Create' },
  'health-information.push': { code: 'R', display: 'Read' },
};

export function toAuditEvent(e: AuditEventDoc): fhir4.AuditEvent {
  const action = ACTION_CODES[e.action];
  return {
    resourceType: 'AuditEvent',
    id: String(e._id),
    type: {
      system: 'http://terminology.hl7.org/CodeSystem/audit-event-type',
      code: 'rest',
      display: 'RESTful Operation',
    },
    subtype: [{ system: 'urn:abha-vault:audit-action', code: e.action }],
    ...(action ? { action: action.code as fhir4.AuditEvent['action'] } : {}),
    recorded: e.time.toISOString(),
    outcome: e.outcome === 'success' ? '0' : '4',
    ...(e.reason ? { outcomeDesc: e.reason } : {}),
    ...(e.purpose
      ? { purposeOfEvent: [{ coding: [{ system: 'urn:abha-vault:consent-purpose', code: e.purpose }] }] }
      : {}),
    agent: [
      {
        type: { coding: [{ system: 'urn:abha-vault:role', code: e.actor.role ?? 'anonymous' }] },
        who: { identifier: { system: 'urn:abha-vault:facility', value: e.actor.facility ?? 'unknown' } },
        requestor: true,
      },
    ],
    source: { observer: { display: 'abha-vault' } },
    entity: [
      ...e.recordIds.map((id) => ({ what: { reference: `Bundle/${id}` } })),
      ...(e.consentId
        ? [
            {
              what: { identifier: { system: 'urn:abha-vault:consent-id', value: e.consentId } },
              type: { code: 'consent' },
            },
          ]
        : []),
    ],
  };
}

export function auditRoutes(audit: AuditLog, clock: () => Date) {
  const r = new Hono<AppEnv>();
  r.get('/fhir/AuditEvent', allow('audit.query', 'cm'), async (c) => {
    const url = new URL(c.req.url);
    for (const k of url.searchParams.keys())
      if (k !== 'patient-abha' && k !== 'date' && k !== '_count')
        throw badRequest(`Unknown parameter '${k.slice(0, 40)}'; supported: patient-abha, date, _count`, k);
    const who = url.searchParams.get('patient-abha') ?? '';
    const patient = normaliseAbhaNumber(who) ?? normaliseAbhaAddress(who);
    if (!patient) throw badRequest('patient-abha (an ABHA address or number) is required', 'patient-abha');
    const time: Record<string, Date> = {};
    for (const raw of url.searchParams.getAll('date')) {
      const m = /^(ge|le|gt|lt)(.+)$/.exec(raw);
      const range = m ? fhirDateRange(m[2]) : undefined;
      if (!m || !range)
        throw badRequest(
          'date must be ge/gt/le/lt followed by a FHIR date, e.g. date=ge2024-01-01&date=le2024-12-31',
          'date',
        );
      if (m[1] === 'ge') time.$gte = range.start;
      else if (m[1] === 'gt') time.$gte = range.end;
      else if (m[1] === 'le') time.$lt = range.end;
      else time.$lt = range.start;
    }
    const countParam = url.searchParams.get('_count');
    if (countParam !== null && !/^[1-9]\d{0,5}$/.test(countParam))
      throw badRequest('_count must be a positive integer', '_count');
    const count = Math.min(Number(countParam ?? 100), 1000);
    const events = await audit.events
      .find({ patients: patient, ...(Object.keys(time).length ? { time } : {}) })
      .sort({ time: 1, _id: 1 })
      .limit(count)
      .toArray();
    await audit.append({
      action: 'audit.query',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      patients: [patient],
      requestId: c.var.requestId,
    });
    return c.json(
      {
        resourceType: 'Bundle',
        id: uuidv4(),
        type: 'searchset',
        total: events.length,
        meta: { lastUpdated: clock().toISOString() },
        entry: events.map((e) => ({
          fullUrl: `urn:uuid:${uuidv4()}`,
          resource: toAuditEvent(e),
          search: { mode: 'match' },
        })),
      },
      200,
      { 'Content-Type': 'application/fhir+json; charset=utf-8' },
    );
  });
  return r;
}
