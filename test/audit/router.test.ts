/**
 * The AuditEvent router alone (no full app, no token keys): who may query,
 * what a query answers, and that the query is itself audited.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { MongoClient } from 'mongodb';
import { auditRoutes } from '../../src/audit/routes.js';
import { AuditLog } from '../../src/audit/log.js';
import { routerAlone } from '../support/router.js';

let client: MongoClient;
let audit: AuditLog;
let router: ReturnType<typeof routerAlone>;
const db = `t_auditrouter_${process.pid}_${Date.now().toString(36)}`;

beforeAll(async () => {
  client = await new MongoClient(inject('mongoUri')).connect();
  audit = new AuditLog(client.db(db));
  await audit.ensureIndexes();
  await audit.append({
    action: 'record.read',
    outcome: 'success',
    status: 200,
    actor: { role: 'hiu', facility: 'HIU-R', subject: 'HIU-R' },
    recordIds: ['r1'],
    patients: ['asha@sbx'],
  });
  router = routerAlone(auditRoutes(audit, () => new Date()));
});
afterAll(async () => {
  await client
    .db(db)
    .dropDatabase()
    .catch(() => {});
  await client.close();
});

describe('GET /fhir/AuditEvent through its router alone', () => {
  it('the consent manager gets the patient’s events, and its query is audited', async () => {
    const res = await router.request('/fhir/AuditEvent?patient-abha=asha@sbx', ['cm', 'sbx']);
    expect(res.status).toBe(200);
    const b = await res.json();
    expect(b.entry.map((e: any) => e.resource.subtype[0].code)).toEqual(['record.read']);
    const last = await audit.events.find({}).sort({ _id: -1 }).limit(1).next();
    expect(last).toMatchObject({
      action: 'audit.query',
      patients: ['asha@sbx'],
      actor: { role: 'cm', facility: 'sbx' },
    });
  });

  it.each([
    ['hip', 'H'],
    ['hiu', 'HIU-R'],
    ['admin', 'A'],
  ])('role %s is refused (403)', async (role, facility) => {
    expect((await router.request('/fhir/AuditEvent?patient-abha=asha@sbx', [role, facility])).status).toBe(403);
  });

  it('no caller is 401; a query without a patient is 400', async () => {
    expect((await router.request('/fhir/AuditEvent?patient-abha=asha@sbx')).status).toBe(401);
    expect((await router.request('/fhir/AuditEvent', ['cm', 'sbx'])).status).toBe(400);
  });
});
