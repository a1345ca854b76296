/**
 * Deny by default, checked on the app as built: every route the app serves
 * (Hono's own route table, so a route added anywhere is included) either
 * carries an allow(action, ...roles) rule or is one of the few public ones;
 * and for every rule, a request without a token is 401 and a token of every
 * role the rule does not name is 403, before any body is read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.js';
import { openApiDocument } from '../../src/openapi.js';
import { ROLES, RULE, type AllowMiddleware, type Role } from '../../src/auth/caller.js';

/**
 * Routes anyone may call: health, the OpenAPI document, FHIR's CapabilityStatement, the web page's files (which hold
 * no data) and its sign-in (which gives a browser its token; test/web/sign-in.test.ts).
 */
const PAGE = new Set(['GET /', 'GET /app', 'GET /app/', 'GET /app/assets/:name']);
const PUBLIC = new Set([
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /fhir/metadata',
  ...PAGE,
  'GET /auth/options',
  'GET /auth/oidc/start',
  'GET /auth/callback',
  'GET /auth/session',
  'POST /auth/dev-sign-in',
  'POST /auth/sign-out',
]);
const FACILITY: Record<Role, string> = { hip: 'H-EVERY', hiu: 'HIU-EVERY', cm: 'sbx', admin: 'ADMIN-EVERY' };

let t: TestApp;
const rules = new Map<string, { action: string; roles: readonly Role[] } | null>();

beforeAll(async () => {
  t = await createTestApp({ GATEWAY_BASE_URL: 'http://127.0.0.1:9', HIP_INITIATED_LINKING: 'false' });
  for (const r of t.app.routes) {
    if (r.method === 'ALL') continue; // middleware (app.use)
    const key = `${r.method} ${r.path}`;
    const rule = (r.handler as Partial<AllowMiddleware>)[RULE];
    if (rule) rules.set(key, rule);
    else if (!rules.has(key)) rules.set(key, null);
  }
});
afterAll(async () => t?.close());

/** A concrete path for a route pattern (`:id` and friends filled in). */
const concrete = (path: string) => path.replace(/:[^/]+/g, 'x-route-param');

describe('every route', () => {
  it('the table is the real one (it has the routes of every router)', () => {
    const keys = [...rules.keys()];
    for (const expected of [
      'POST /fhir/Bundle',
      'POST /api/v3/consent/request/hip/notify',
      'POST /api/v3/hip/health-information/request',
      'POST /api/v3/hip/patient/care-context/discover',
      'POST /v0.5/patients/status/notify',
      'POST /api/v3/hip/token/on-generate-token',
      'GET /admin/hip-links',
      'GET /fhir/AuditEvent',
    ])
      expect(keys).toContain(expected);
    expect(keys.length).toBeGreaterThan(25);
  });

  it('outside /fhir (described by the CapabilityStatement) and /metrics, is in the OpenAPI document', () => {
    const paths = (openApiDocument() as { paths: Record<string, Record<string, unknown>> }).paths;
    const missing = [...rules.keys()].filter((key) => {
      const [method, path] = key.split(' ');
      if (path.startsWith('/fhir/') || path === '/metrics' || PAGE.has(key)) return false;
      return !paths[path.replace(/:([A-Za-z]+)[^/]*/g, '{$1}')]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
  });

  it('has an authorisation rule unless it is public', () => {
    const open = [...rules].filter(([key, rule]) => !rule && !PUBLIC.has(key)).map(([key]) => key);
    expect(open).toEqual([]);
  });

  it('refuses a caller without a token (401) and every role its rule does not name (403)', async () => {
    const seen: string[] = [];
    for (const [key, rule] of rules) {
      if (!rule) continue;
      const [method, path] = key.split(' ');
      const init = {
        method,
        headers: { 'Content-Type': 'application/json' },
        ...(method === 'GET' ? {} : { body: '{}' }),
      };
      const anonymous = await t.request(concrete(path), init);
      expect(anonymous.status, `${key} without a token`).toBe(401);
      for (const role of ROLES.filter((r) => !rule.roles.includes(r))) {
        const res = await t.request(concrete(path), { ...init, as: [role, FACILITY[role]] });
        expect(res.status, `${key} as ${role}`).toBe(403);
        expect((await res.json()).resourceType).toBe('OperationOutcome');
        seen.push(`${key} ${role}`);
      }
    }
    expect(seen.length).toBeGreaterThan(40);
  });
});
