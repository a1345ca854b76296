/** Audit helpers for HTTP handlers: who the caller is, as the audit records it. */
import type { Context } from 'hono';
import type { AppEnv } from '../auth/caller.js';
import type { AuditInput } from './log.js';

export function actorOf(c: Context<AppEnv>): AuditInput['actor'] {
  const caller = c.get('caller');
  return caller ? { role: caller.role, facility: caller.facilityId, subject: caller.subject } : { role: null, facility: null, subject: null };
}

/** The audit action for a route, e.g. `GET /fhir/Bundle/:id` → `record.read`. */
export function actionOf(method: string, routePath: string): string {
  const table: Record<string, string> = {
    'POST /fhir/Bundle': 'record.upload',
    'GET /fhir/Bundle': 'record.search',
    'GET /fhir/Bundle/:id': 'record.read',
    'GET /fhir/Bundle/:id/_history': 'record.history',
    'GET /fhir/Bundle/:id/_history/:vid': 'record.vread',
    'POST /v0.5/consents/hip/notify': 'consent.notify',
    'POST /api/v3/consent/request/hip/notify': 'consent.notify',
    'GET /consents/:id': 'consent.read',
    'GET /fhir/AuditEvent': 'audit.query',
    'POST /v0.5/health-information/hip/request': 'health-information.request',
    'GET /admin/health-information/transactions/:id': 'health-information.read',
    'POST /v0.5/care-contexts/discover': 'care-context.discover',
    'GET /metrics': 'metrics.read',
    'POST /v0.5/links/link/init': 'link.init',
    'POST /v0.5/links/link/confirm': 'link.confirm',
  };
  return table[`${method} ${routePath}`] ?? `http ${method} ${routePath}`;
}
