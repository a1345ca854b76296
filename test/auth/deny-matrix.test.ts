/**
 * Who may call what: every authenticated route × every kind of bad token
 * (401 with a Bearer challenge) and × every role (allowed, or 403), through
 * createApp on the real database. The route table is the one in src/app.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { v4 as uuidv4 } from 'uuid';
import { SignJWT, generateKeyPair, importJWK, base64url } from 'jose';
import { createTestApp, type TestApp } from '../support/app.js';
import { localKeyPair, ALG } from '../../src/auth/keys.js';
import { ROLES, type Role } from '../../src/auth/caller.js';

const example = (name: string) =>
  readFileSync(new URL(`../../fixtures/examples/${name}.json`, import.meta.url), 'utf8');
const withIdentifier = (text: string, value = uuidv4()) => {
  const b = JSON.parse(text);
  b.identifier.value = value;
  return JSON.stringify(b);
};

const HIP = 'H-MATRIX';
const HIU = 'HIU-MATRIX';
const CARE_CONTEXT = 'OP-MATRIX';
const CONSENT = 'C-MATRIX';
const NOTIFY_CONSENT = 'C-MATRIX-NOTIFY';
/** The facility each role's token names. */
const FACILITY: Record<Role, string> = { hip: HIP, hiu: HIU, cm: 'sbx', admin: 'ADMIN-1' };

const detail = (consentId: string) => ({
  schemaVersion: 'v0.5',
  consentId,
  createdAt: '2024-01-01T00:00:00.000Z',
  patient: { id: 'ravi.kumar@sbx' },
  careContexts: [{ patientReference: 'P1', careContextReference: CARE_CONTEXT }],
  purpose: { text: 'Care Management', code: 'CAREMGT' },
  hip: { id: HIP },
  hiu: { id: HIU },
  consentManager: { id: 'sbx' },
  hiTypes: ['Prescription'],
  permission: {
    accessMode: 'VIEW',
    dateRange: { from: '2024-01-01T00:00:00.000Z', to: '2024-12-31T23:59:59.000Z' },
    dataEraseAt: '2099-01-01T00:00:00.000Z',
    frequency: { unit: 'HOUR', value: 100_000, repeats: 0 },
  },
});
const grantV05 = (consentId: string) =>
  JSON.stringify({
    requestId: uuidv4(),
    timestamp: new Date().toISOString(),
    notification: { consentId, status: 'GRANTED', consentDetail: detail(consentId) },
  });
const grantV3 = (consentId: string) =>
  JSON.stringify({ notification: { consentId, status: 'GRANTED', consentDetail: detail(consentId) } });

let t: TestApp;
let recordId: string;

beforeAll(async () => {
  t = await createTestApp();
  const up = await t.request('/fhir/Bundle', {
    method: 'POST',
    body: withIdentifier(example('prescription')),
    headers: { 'Content-Type': 'application/fhir+json', 'X-Care-Context': CARE_CONTEXT },
    as: ['hip', HIP],
  });
  expect(up.status).toBe(201);
  recordId = up.headers.get('location')!.split('/')[5];
  const grant = await t.request('/v0.5/consents/hip/notify', {
    method: 'POST',
    body: grantV05(CONSENT),
    headers: { 'Content-Type': 'application/json' },
    as: ['cm', 'sbx'],
  });
  expect(grant.status).toBe(202);
});
afterAll(async () => {
  await t?.close();
});

interface RouteCase {
  method: 'GET' | 'POST';
  path: () => string;
  body?: () => string;
  headers?: Record<string, string>;
  /** Status for each role: 403 when the role may not call the route, else the answer to this (valid) request. */
  roles: Record<Role, number>;
}

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const ROUTES: Record<string, RouteCase> = {
  'POST /fhir/Bundle': {
    method: 'POST',
    path: () => '/fhir/Bundle',
    body: () => withIdentifier(example('prescription')),
    headers: { 'Content-Type': 'application/fhir+json', 'X-Care-Context': 'OP-UPLOADS' },
    roles: { hip: 201, hiu: 403, cm: 403, admin: 403 },
  },
  'GET /fhir/Bundle': {
    method: 'GET',
    path: () => '/fhir/Bundle?patient-abha=ravi.kumar@sbx',
    headers: { 'X-Consent-Id': CONSENT },
    roles: { hip: 200, hiu: 200, cm: 403, admin: 403 },
  },
  'GET /fhir/Bundle/{id}': {
    method: 'GET',
    path: () => `/fhir/Bundle/${recordId}`,
    headers: { 'X-Consent-Id': CONSENT },
    roles: { hip: 200, hiu: 200, cm: 403, admin: 403 },
  },
  'GET /fhir/Bundle/{id}/_history': {
    method: 'GET',
    path: () => `/fhir/Bundle/${recordId}/_history`,
    headers: { 'X-Consent-Id': CONSENT },
    roles: { hip: 200, hiu: 403, cm: 403, admin: 403 },
  },
  'GET /fhir/Bundle/{id}/_history/1': {
    method: 'GET',
    path: () => `/fhir/Bundle/${recordId}/_history/1`,
    headers: { 'X-Consent-Id': CONSENT },
    roles: { hip: 200, hiu: 403, cm: 403, admin: 403 },
  },
  'POST /v0.5/consents/hip/notify': {
    method: 'POST',
    path: () => '/v0.5/consents/hip/notify',
    body: () => grantV05(NOTIFY_CONSENT),
    headers: JSON_HEADERS,
    roles: { hip: 403, hiu: 403, cm: 202, admin: 403 },
  },
  'POST /api/v3/consent/request/hip/notify': {
    method: 'POST',
    path: () => '/api/v3/consent/request/hip/notify',
    body: () => grantV3(NOTIFY_CONSENT),
    headers: JSON_HEADERS,
    roles: { hip: 403, hiu: 403, cm: 202, admin: 403 },
  },
  'GET /consents/{id}': {
    method: 'GET',
    path: () => `/consents/${CONSENT}`,
    roles: { hip: 403, hiu: 200, cm: 403, admin: 200 },
  },
  'GET /fhir/AuditEvent': {
    method: 'GET',
    path: () => '/fhir/AuditEvent?patient-abha=ravi.kumar@sbx&date=ge2000-01-01&date=le2100-12-31',
    roles: { hip: 403, hiu: 403, cm: 200, admin: 403 },
  },
};

/** A role allowed on the route, so that a 401 can only come from the token itself. */
const allowedRole = (r: RouteCase) => ROLES.find((role) => r.roles[role] !== 403)!;

const send = (r: RouteCase, authorization?: string) => {
  const headers = new Headers(r.headers);
  if (authorization !== undefined) headers.set('Authorization', authorization);
  return t.app.request(r.path(), { method: r.method, headers, ...(r.body ? { body: r.body() } : {}) });
};

const outcomeCode = async (res: Response) => {
  expect(res.headers.get('content-type')).toContain('application/fhir+json');
  const body = await res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  expect(body.issue.length).toBeGreaterThan(0);
  for (const i of body.issue) {
    expect(i.severity).toBe('error');
    expect(i.diagnostics).toBeTruthy();
  }
  return body.issue[0].code as string;
};

let foreign: ReturnType<typeof generateKeyPair> | undefined;
/** One key pair the app has never seen (RSA generation is slow, so made once). */
const foreignKey = async () => (await (foreign ??= generateKeyPair(ALG))).privateKey;

const localKey = async () => {
  const keys = await localKeyPair(t.config.DATA_DIR);
  return { key: await importJWK(keys.privateJwk, ALG), kid: keys.privateJwk.kid! };
};
/** A token signed with the app's own key, with the claims given (exp in an hour unless `exp` says otherwise). */
const localToken = async (claims: Record<string, unknown>, exp: string | null = '3600s') => {
  const { key, kid } = await localKey();
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: ALG, kid }).setIssuedAt().setSubject('matrix');
  if (exp !== null) jwt = jwt.setExpirationTime(exp);
  return jwt.sign(key);
};

/** Ways a bearer credential can be bad; each gets the route's allowed role where a role is involved. */
const BAD_CREDENTIALS: Record<string, (role: Role) => Promise<string | undefined>> = {
  'no Authorization header': async () => undefined,
  'Basic credentials': async () => 'Basic dXNlcjpwYXNzd29yZA==',
  'bare "Bearer"': async () => 'Bearer',
  'token without the Bearer scheme': async (role) => t.token(role, FACILITY[role]),
  'Bearer with two tokens': async (role) =>
    `Bearer ${await t.token(role, FACILITY[role])} ${await t.token(role, FACILITY[role])}`,
  'Bearer with a non-JWT': async () => 'Bearer not-a-jwt',
  'Bearer with characters outside base64url': async () => 'Bearer abc.d$f.ghi',
  'token signed by another key (same kid)': async (role) => {
    const { kid } = await localKey();
    return `Bearer ${await new SignJWT({ role, facility: FACILITY[role] })
      .setProtectedHeader({ alg: ALG, kid })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(await foreignKey())}`;
  },
  'token signed by another key (no kid)': async (role) => {
    return `Bearer ${await new SignJWT({ role, facility: FACILITY[role] })
      .setProtectedHeader({ alg: ALG })
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(await foreignKey())}`;
  },
  'unsigned token (alg none)': async (role) => {
    const part = (o: object) => base64url.encode(JSON.stringify(o));
    return `Bearer ${part({ alg: 'none' })}.${part({ role, facility: FACILITY[role], exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
  },
  'token with a tampered payload': async () => {
    const [h, , s] = (await t.token('hip', HIP)).split('.');
    const forged = base64url.encode(
      JSON.stringify({ role: 'admin', facility: 'ADMIN-1', exp: Math.floor(Date.now() / 1000) + 3600 }),
    );
    return `Bearer ${h}.${forged}.${s}`;
  },
  'expired token (ttlSec -3600)': async (role) => `Bearer ${await t.token(role, FACILITY[role], { ttlSec: -3600 })}`,
  'expired token (exp in the past, signed directly)': async (role) =>
    `Bearer ${await localToken({ role, facility: FACILITY[role] }, '-2 minutes')}`,
  'token without exp': async (role) => `Bearer ${await localToken({ role, facility: FACILITY[role] }, null)}`,
  'token with an unknown role': async () => `Bearer ${await localToken({ role: 'superuser', facility: 'X-1' })}`,
  'token with no role': async () => `Bearer ${await localToken({ facility: 'X-1' })}`,
  'token with no facility': async (role) => `Bearer ${await localToken({ role })}`,
  'token with a malformed facility': async (role) => `Bearer ${await localToken({ role, facility: 'bad facility/1' })}`,
};

const routeNames = Object.keys(ROUTES);

describe.each(routeNames)('%s', (name) => {
  const route = ROUTES[name];

  it.each(Object.keys(BAD_CREDENTIALS))('%s → 401 login with a Bearer challenge', async (why) => {
    const res = await send(route, await BAD_CREDENTIALS[why](allowedRole(route)));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(await outcomeCode(res)).toBe('login');
  });

  it.each(ROLES.map((role) => [role, route.roles[role]] as const))('role %s → %i', async (role, status) => {
    const res = await send(route, `Bearer ${await t.token(role, FACILITY[role])}`);
    expect(res.status, await res.clone().text()).toBe(status);
    expect(res.headers.get('www-authenticate')).toBeNull();
    if (status === 403) expect(await outcomeCode(res)).toBe('forbidden');
    else {
      const body = await res.json();
      expect(body.resourceType ?? body.consentId ?? body.id).toBeTruthy();
      expect(body.resourceType).not.toBe('OperationOutcome');
    }
  });
});

describe('the table covers the route table', () => {
  it('every role is allowed somewhere, and every route refuses some role', () => {
    for (const role of ROLES)
      expect(
        routeNames.some((n) => ROUTES[n].roles[role] !== 403),
        role,
      ).toBe(true);
    for (const n of routeNames)
      expect(
        ROLES.some((role) => ROUTES[n].roles[role] === 403),
        n,
      ).toBe(true);
  });

  it('an unknown route still needs a token (401), and then is a 404 OperationOutcome', async () => {
    const anon = await t.app.request('/fhir/Patient');
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Bearer');
    const res = await t.request('/fhir/Patient', { as: ['admin', 'ADMIN-1'] });
    expect(res.status).toBe(404);
    expect(await outcomeCode(res)).toBe('not-found');
  });
});

describe('public routes', () => {
  it.each(['/healthz', '/readyz', '/fhir/metadata'])('%s answers 200 without a token', async (path) => {
    const res = await t.app.request(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('www-authenticate')).toBeNull();
    const body = await res.json();
    if (path === '/fhir/metadata') expect(body.resourceType).toBe('CapabilityStatement');
    else expect(body.status).toBeTruthy();
  });
});
