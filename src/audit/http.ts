/** Audit helpers for HTTP handlers: who the caller is, as the audit records it. */
import type { Context } from 'hono';
import type { AppEnv } from '../auth/caller.js';
import type { AuditInput } from './log.js';

export function actorOf(c: Context<AppEnv>): AuditInput['actor'] {
  const caller = c.get('caller');
  return caller
    ? { role: caller.role, facility: caller.facilityId, subject: caller.subject }
    : { role: null, facility: null, subject: null };
}
