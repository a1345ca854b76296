/**
 * Who is asking. Until authentication lands, a provider (HIP) names its
 * facility in the X-Facility-Id header; this middleware is the one place that
 * reads it, and the one the token verification will replace.
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from '../fhir/outcome.js';

export interface Caller { role: 'hip'; facilityId: string }
export type AppEnv = { Variables: { caller: Caller; requestId: string } };

const FACILITY_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const facilityCaller: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = c.req.header('x-facility-id');
  if (id === undefined || id === '') throw fail(401, 'login', 'X-Facility-Id header required: the calling provider facility');
  if (!FACILITY_ID.test(id)) throw fail(400, 'invalid', 'X-Facility-Id must be 1-128 characters of letters, digits and . _ : -');
  c.set('caller', { role: 'hip', facilityId: id });
  await next();
};
