/**
 * The consent router alone (no full app, no token keys): notifications from
 * the consent manager only, and consents read back (one, or a list) by admin or
 * by the viewer they were granted to, ended ones included.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { MongoClient } from 'mongodb';
import { v4 as uuidv4 } from 'uuid';
import { Hono } from 'hono';
import { consentRoutes } from '../../src/consents/routes.js';
import { consentNotifyRoutes } from '../../src/abdm/consent-notify.js';
import type { AppEnv } from '../../src/auth/caller.js';
import { ConsentStore } from '../../src/consents/store.js';
import { AuditLog } from '../../src/audit/log.js';
import { loadConfig } from '../../src/config.js';
import { consentDetail } from '../support/consents.js';
import { routerAlone } from '../support/router.js';

let client: MongoClient;
let router: ReturnType<typeof routerAlone>;
const db = `t_consentrouter_${process.pid}_${Date.now().toString(36)}`;
const consentId = uuidv4();

const post = (caller: [string, string] | undefined, notification: unknown) =>
  router.request('/api/v3/consent/request/hip/notify', caller, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ notification }),
  });

beforeAll(async () => {
  client = await new MongoClient(inject('mongoUri')).connect();
  const consents = new ConsentStore(client.db(db));
  const audit = new AuditLog(client.db(db));
  const config = loadConfig({ NODE_ENV: 'test', MONGODB_URI: inject('mongoUri') });
  // The consent manager's notifications (abdm/) and the consent read back (consents/), no gateway.
  router = routerAlone(
    new Hono<AppEnv>()
      .route('/', consentNotifyRoutes({ consents, audit, config, clock: () => new Date() }))
      .route('/', consentRoutes({ consents, audit })),
  );
});
afterAll(async () => {
  await client
    .db(db)
    .dropDatabase()
    .catch(() => {});
  await client.close();
});

describe('the consent routes through their router alone', () => {
  const grant = () => ({
    consentId,
    status: 'GRANTED',
    consentDetail: consentDetail({
      consentId,
      patient: 'asha@sbx',
      hip: 'HIP-R',
      hiu: 'HIU-R',
      careContexts: ['CC-1'],
    }),
  });

  it('only the consent manager may notify (no caller 401, another role 403), and its grant is stored', async () => {
    expect((await post(undefined, grant())).status).toBe(401);
    for (const role of ['hip', 'hiu', 'admin']) expect((await post([role, 'X'], grant())).status, role).toBe(403);
    const res = await post(['cm', 'sbx'], grant());
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ consentId, status: 'GRANTED', result: 'stored' });
  });

  it('admin and the consent’s own viewer read it; another viewer, a provider and the consent manager are refused', async () => {
    expect((await router.request(`/consents/${consentId}`, ['admin', 'A'])).status).toBe(200);
    const own = await router.request(`/consents/${consentId}`, ['hiu', 'HIU-R']);
    expect(own.status).toBe(200);
    expect((await own.json()).terms.patient).toBe('asha@sbx');
    expect((await router.request(`/consents/${consentId}`, ['hiu', 'HIU-OTHER'])).status).toBe(403);
    expect((await router.request(`/consents/${consentId}`, ['hip', 'HIP-R'])).status).toBe(403);
    expect((await router.request(`/consents/${consentId}`, ['cm', 'sbx'])).status).toBe(403);
    expect((await router.request(`/consents/${uuidv4()}`, ['admin', 'A'])).status).toBe(404);
  });

  it('lists a viewer’s own consents; once revoked, its viewer still reads status and history, without terms', async () => {
    const own = await router.request('/consents', ['hiu', 'HIU-R']);
    expect(own.status).toBe(200);
    expect((await own.json()).consents.map((c: { id: string }) => c.id)).toEqual([consentId]);
    expect(await (await router.request('/consents', ['hiu', 'HIU-OTHER'])).json()).toEqual({ consents: [] });
    expect((await post(['cm', 'sbx'], { consentId, status: 'REVOKED' })).status).toBe(202);
    const read = await router.request(`/consents/${consentId}`, ['hiu', 'HIU-R']);
    expect(read.status).toBe(200);
    const body = await read.json();
    expect(body).toMatchObject({ id: consentId, status: 'REVOKED', effectiveStatus: 'REVOKED', hiu: 'HIU-R' });
    expect(body.history.map((h: { status: string }) => h.status)).toEqual(['GRANTED', 'REVOKED']);
    expect(body.terms).toBeUndefined();
    expect(body.usage).toBeUndefined();
    expect((await router.request(`/consents/${consentId}`, ['hiu', 'HIU-OTHER'])).status).toBe(403);
  });
});
