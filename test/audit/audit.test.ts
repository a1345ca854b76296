/**
 * The audit trail: every upload, read, search, consent notification and
 * refusal leaves a hash-chained event; tampering is found at the event
 * tampered with; concurrent appends stay a chain; the consent manager's
 * GET /fhir/AuditEvent; and the `audit:verify` CLI.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, sharedStructure, type TestApp } from '../support/app.js';
import { createGenerator, type GeneratedRecord, type SyntheticPatient } from '../../fixtures/generator.js';
import { AuditLog, eventHash, GENESIS, type AuditEventDoc } from '../../src/audit/log.js';
import type { Role } from '../../src/auth/caller.js';
import type { Issue } from '../../src/fhir/outcome.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const example = (name: string) =>
  readFileSync(new URL(`../../fixtures/examples/${name}.json`, import.meta.url), 'utf8');
const withIdentifier = (text: string, value = uuidv4()) => {
  const b = JSON.parse(text);
  b.identifier.value = value;
  return JSON.stringify(b);
};
const uploadHeaders = (careContext: string) => ({
  'Content-Type': 'application/fhir+json',
  'X-Care-Context': careContext,
});
const idOf = (res: Response) => res.headers.get('location')!.split('/')[5];

const grant = (
  consentId: string,
  o: { hip: string; hiu: string; patient: string; careContexts: string[]; hiTypes: string[] },
) => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  notification: {
    consentId,
    status: 'GRANTED',
    consentDetail: {
      schemaVersion: 'v0.5',
      consentId,
      createdAt: '2024-01-01T00:00:00.000Z',
      patient: { id: o.patient },
      careContexts: o.careContexts.map((cc) => ({ patientReference: 'P1', careContextReference: cc })),
      purpose: { text: 'Care Management', code: 'CAREMGT' },
      hip: { id: o.hip },
      hiu: { id: o.hiu },
      consentManager: { id: 'sbx' },
      hiTypes: o.hiTypes,
      permission: {
        accessMode: 'VIEW',
        dateRange: { from: '1900-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' },
        dataEraseAt: '2099-01-01T00:00:00Z',
        frequency: { unit: 'HOUR', value: 1000, repeats: 0 },
      },
    },
  },
});
const notify = (app: TestApp, body: unknown) =>
  app.request('/v0.5/consents/hip/notify', {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' },
    as: ['cm', 'sbx'],
  });

/** The audit event a response left, found by its X-Request-Id. */
const eventOf = async (app: TestApp, res: Response) => {
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
  const events = await app.audit.events.find({ requestId }).toArray();
  expect(events, `audit events for ${requestId}`).toHaveLength(1);
  return events[0];
};
const actor = (role: Role, facility: string) => ({ role, facility, subject: `${role}:${facility}` });
const NOBODY = { role: null, facility: null, subject: null };

describe('what is audited', () => {
  let t: TestApp;
  const HIP = 'H-AUD';
  const HIU = 'HIU-AUD';
  const CONSENT = 'C-AUD';
  const CONSENT_PATIENT = 'ravi.kumar@sbx'; // the consent's patient, as the audit trail names them
  let recordId: string;
  let otherCareContextId: string;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('an upload: record.upload, success, 201, the provider, the record and patient', async () => {
    const res = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: withIdentifier(example('prescription')),
      headers: uploadHeaders('OP-AUD'),
      as: ['hip', HIP],
    });
    expect(res.status).toBe(201);
    recordId = idOf(res);
    const e = await eventOf(t, res);
    expect(e).toMatchObject({
      action: 'record.upload',
      outcome: 'success',
      status: 201,
      actor: actor('hip', HIP),
      consentId: null,
      recordIds: [recordId],
      purpose: null,
    });
    expect(e.patients.sort()).toEqual(['91441720935586', 'ravi.kumar@sbx']);
    expect(e.time).toBeInstanceOf(Date);
    expect(e.hash).toMatch(/^[0-9a-f]{64}$/);

    const other = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: withIdentifier(example('prescription')),
      headers: uploadHeaders('OP-ELSEWHERE'),
      as: ['hip', HIP],
    });
    otherCareContextId = idOf(other);
    // the same content again is a 200, audited as such
    const again = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'),
      headers: uploadHeaders('OP-AUD2'),
      as: ['hip', HIP],
    });
    const again2 = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'),
      headers: uploadHeaders('OP-AUD2'),
      as: ['hip', HIP],
    });
    expect([again.status, again2.status]).toEqual([201, 200]);
    expect(await eventOf(t, again2)).toMatchObject({ action: 'record.upload', outcome: 'success', status: 200 });
  });

  it('a read, a search, a history and a version read by the provider', async () => {
    const cases: [string, string, number][] = [
      [`/fhir/Bundle/${recordId}`, 'record.read', 200],
      ['/fhir/Bundle?patient-abha=ravi.kumar@sbx&care-context=OP-AUD', 'record.search', 200],
      [`/fhir/Bundle/${recordId}/_history`, 'record.history', 200],
      [`/fhir/Bundle/${recordId}/_history/1`, 'record.vread', 200],
    ];
    for (const [path, action, status] of cases) {
      const res = await t.request(path, { as: ['hip', HIP] });
      expect(res.status, path).toBe(status);
      const e = await eventOf(t, res);
      expect(e, path).toMatchObject({
        action,
        outcome: 'success',
        status,
        actor: actor('hip', HIP),
        consentId: null,
        recordIds: [recordId],
      });
      expect(e.patients).toContain('ravi.kumar@sbx');
    }
  });

  it('a consent notification: consent.notify, success, 202, the consent id, purpose and patient', async () => {
    const res = await notify(
      t,
      grant(CONSENT, {
        hip: HIP,
        hiu: HIU,
        patient: 'Ravi.Kumar@sbx',
        careContexts: ['OP-AUD'],
        hiTypes: ['Prescription'],
      }),
    );
    expect(res.status).toBe(202);
    expect(await eventOf(t, res)).toMatchObject({
      action: 'consent.notify',
      outcome: 'success',
      status: 202,
      actor: actor('cm', 'sbx'),
      consentId: CONSENT,
      purpose: 'CAREMGT',
      patients: ['ravi.kumar@sbx'],
      reason: 'GRANTED: stored',
    });
    const revoke = await t.request('/api/v3/consent/request/hip/notify', {
      method: 'POST',
      body: JSON.stringify({ notification: { consentId: 'C-AUD-REV', status: 'REVOKED' } }),
      headers: { 'Content-Type': 'application/json' },
      as: ['cm', 'sbx'],
    });
    expect(await eventOf(t, revoke)).toMatchObject({
      action: 'consent.notify',
      outcome: 'success',
      status: 202,
      consentId: 'C-AUD-REV',
      purpose: null,
      patients: [],
      reason: 'REVOKED: stored',
    });
  });

  it('a read and a search by a viewer under the consent carry the consent id and purpose; reading the consent is audited', async () => {
    const read = await t.request(`/fhir/Bundle/${recordId}`, {
      headers: { 'X-Consent-Id': CONSENT },
      as: ['hiu', HIU],
    });
    expect(read.status).toBe(200);
    expect(await eventOf(t, read)).toMatchObject({
      action: 'record.read',
      outcome: 'success',
      status: 200,
      actor: actor('hiu', HIU),
      consentId: CONSENT,
      purpose: 'CAREMGT',
      recordIds: [recordId],
    });
    const search = await t.request('/fhir/Bundle?patient-abha=ravi.kumar@sbx', {
      headers: { 'X-Consent-Id': CONSENT },
      as: ['hiu', HIU],
    });
    expect(search.status).toBe(200);
    expect(await eventOf(t, search)).toMatchObject({
      action: 'record.search',
      outcome: 'success',
      status: 200,
      actor: actor('hiu', HIU),
      consentId: CONSENT,
      purpose: 'CAREMGT',
      recordIds: [recordId],
    });
    const consent = await t.request(`/consents/${CONSENT}`, { as: ['admin', 'ADMIN-1'] });
    expect(consent.status).toBe(200);
    expect(await eventOf(t, consent)).toMatchObject({
      action: 'consent.read',
      outcome: 'success',
      status: 200,
      actor: actor('admin', 'ADMIN-1'),
      consentId: CONSENT,
    });
  });

  describe('refusals and rejections', () => {
    const refusals: [string, () => Response | Promise<Response>, Partial<AuditEventDoc>, string?][] = [
      [
        '401 without a token',
        () => t.app.request(`/fhir/Bundle/${recordId}`, { headers: { 'X-Consent-Id': CONSENT } }),
        { action: 'record.read', outcome: 'refused', status: 401, actor: NOBODY, consentId: CONSENT },
        'Bearer',
      ],
      [
        '401 with an expired token',
        async () =>
          t.app.request('/v0.5/consents/hip/notify', {
            method: 'POST',
            body: '{}',
            headers: {
              'Content-Type': 'application/json',
              Authorization: `Bearer ${await t.token('cm', 'sbx', { ttlSec: -3600 })}`,
            },
          }),
        { action: 'consent.notify', outcome: 'refused', status: 401, actor: NOBODY, consentId: null },
        'expired',
      ],
      [
        '403 wrong role',
        () =>
          t.request('/fhir/Bundle', {
            method: 'POST',
            body: withIdentifier(example('prescription')),
            headers: uploadHeaders('OP-X'),
            as: ['hiu', HIU],
          }),
        { action: 'record.upload', outcome: 'refused', status: 403, actor: actor('hiu', HIU), consentId: null },
        'role',
      ],
      [
        '403 consent of another viewer',
        () =>
          t.request('/fhir/Bundle?patient-abha=ravi.kumar@sbx', {
            headers: { 'X-Consent-Id': CONSENT },
            as: ['hiu', 'HIU-OTHER'],
          }),
        {
          action: 'record.search',
          outcome: 'refused',
          status: 403,
          actor: actor('hiu', 'HIU-OTHER'),
          consentId: CONSENT,
          patients: [CONSENT_PATIENT],
        },
        'another health information user',
      ],
      [
        '403 revoked consent',
        () => t.request(`/fhir/Bundle/${recordId}`, { headers: { 'X-Consent-Id': 'C-AUD-REV' }, as: ['hiu', HIU] }),
        { action: 'record.read', outcome: 'refused', status: 403, actor: actor('hiu', HIU), consentId: 'C-AUD-REV' },
        'REVOKED',
      ],
      [
        '403 reading a consent granted to another viewer',
        () => t.request(`/consents/${CONSENT}`, { as: ['hiu', 'HIU-OTHER'] }),
        { action: 'consent.read', outcome: 'refused', status: 403, actor: actor('hiu', 'HIU-OTHER'), consentId: null },
      ],
      [
        '404 unknown record',
        () => t.request(`/fhir/Bundle/${uuidv4()}`, { as: ['hip', HIP] }),
        { action: 'record.read', outcome: 'refused', status: 404, actor: actor('hip', HIP), consentId: null },
        'not found',
      ],
      [
        '404 record outside the consent (reason kept for the audit)',
        () =>
          t.request(`/fhir/Bundle/${otherCareContextId}`, { headers: { 'X-Consent-Id': CONSENT }, as: ['hiu', HIU] }),
        {
          action: 'record.read',
          outcome: 'refused',
          status: 404,
          actor: actor('hiu', HIU),
          consentId: CONSENT,
          patients: [CONSENT_PATIENT],
        },
        'care context not in the consent',
      ],
      [
        "404 another provider's version",
        () => t.request(`/fhir/Bundle/${recordId}/_history/1`, { as: ['hip', 'H-OTHER'] }),
        { action: 'record.vread', outcome: 'refused', status: 404, actor: actor('hip', 'H-OTHER') },
      ],
      [
        '422 invalid consent notification',
        () => notify(t, { notification: { consentId: 'C-BAD', status: 'GRANTED' } }),
        { action: 'consent.notify', outcome: 'rejected', status: 422, actor: actor('cm', 'sbx'), consentId: null },
        'consentDetail',
      ],
      [
        '422 invalid document',
        () =>
          t.request('/fhir/Bundle', {
            method: 'POST',
            body: JSON.stringify({ resourceType: 'Patient' }),
            headers: uploadHeaders('OP-X'),
            as: ['hip', HIP],
          }),
        { action: 'record.upload', outcome: 'rejected', status: 422, actor: actor('hip', HIP) },
      ],
      [
        '400 malformed search',
        () => t.request('/fhir/Bundle?date=yesterday', { as: ['hip', HIP] }),
        { action: 'record.search', outcome: 'rejected', status: 400, actor: actor('hip', HIP) },
      ],
      [
        '415 wrong content type',
        () =>
          t.request('/v0.5/consents/hip/notify', {
            method: 'POST',
            body: '{}',
            headers: { 'Content-Type': 'text/plain' },
            as: ['cm', 'sbx'],
          }),
        { action: 'consent.notify', outcome: 'rejected', status: 415, actor: actor('cm', 'sbx') },
      ],
    ];

    it.each(refusals)('%s', async (_name, send, expected, reason) => {
      const before = await t.audit.events.countDocuments({});
      const res = await send();
      expect(res.status).toBe(expected.status);
      const e = await eventOf(t, res);
      expect(e).toMatchObject(expected);
      expect(e.recordIds).toEqual([]);
      expect(e.patients).toEqual(expected.patients ?? []);
      expect(e.reason).toBeTruthy();
      if (reason) expect(e.reason).toContain(reason);
      expect(await t.audit.events.countDocuments({})).toBe(before + 1);
    });
  });

  it('the whole trail verifies, one event per request, numbered 1..n', async () => {
    const result = await t.audit.verify();
    expect(result).toEqual({ ok: true, count: await t.audit.events.countDocuments({}) });
    const ids = (
      await t.audit.events
        .find({}, { projection: { _id: 1 } })
        .sort({ _id: 1 })
        .toArray()
    ).map((e) => e._id);
    expect(ids).toEqual(ids.map((_, i) => i + 1));
  });
});

describe('tampering', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    for (let i = 0; i < 8; i++) {
      await t.audit.append({
        action: 'record.read',
        outcome: 'success',
        status: 200,
        actor: actor('hip', 'H-T'),
        recordIds: [`r${i}`],
        patients: ['p@sbx'],
        requestId: uuidv4(),
      });
    }
  });
  afterAll(async () => {
    await t?.close();
  });
  const raw = () => t.client.db(t.config.MONGODB_DB).collection<AuditEventDoc>('audit_events');

  it('an intact chain verifies, and links each event to the one before', async () => {
    expect(await t.audit.verify()).toEqual({ ok: true, count: 8 });
    const events = await raw().find({}).sort({ _id: 1 }).toArray();
    expect(events[0].prevHash).toBe(GENESIS);
    for (let i = 1; i < events.length; i++) expect(events[i].prevHash).toBe(events[i - 1].hash);
  });

  it.each([
    ['status', { status: 299 }],
    ['outcome', { outcome: 'refused' }],
    ['actor', { 'actor.facility': 'H-SOMEONE-ELSE' }],
    ['consent id', { consentId: 'C-FORGED' }],
    ['patients', { patients: [] }],
    ['time', { time: new Date('2020-01-01T00:00:00Z') }],
    ['recordIds', { recordIds: [] }],
  ] as const)('editing one event (%s) breaks verification at that event', async (_field, set) => {
    const original = (await raw().findOne({ _id: 4 }))!;
    await raw().updateOne({ _id: 4 }, { $set: set as Record<string, unknown> });
    try {
      const r = await t.audit.verify();
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.brokenAt).toBe(4);
        expect(r.why).toContain('edited');
      }
    } finally {
      await raw().replaceOne({ _id: 4 }, original);
    }
    expect(await t.audit.verify()).toEqual({ ok: true, count: 8 });
  });

  it('editing an event and recomputing its hash breaks verification at the next event', async () => {
    const original = (await raw().findOne({ _id: 5 }))!;
    const { hash: _h, ...rest } = original;
    const forged = { ...rest, status: 403 };
    await raw().replaceOne({ _id: 5 }, { ...forged, hash: eventHash(forged) });
    try {
      const r = await t.audit.verify();
      expect(r).toMatchObject({ ok: false, brokenAt: 6 });
    } finally {
      await raw().replaceOne({ _id: 5 }, original);
    }
    expect((await t.audit.verify()).ok).toBe(true);
  });

  it('deleting one event breaks verification there', async () => {
    const original = (await raw().findOne({ _id: 3 }))!;
    await raw().deleteOne({ _id: 3 });
    try {
      const r = await t.audit.verify();
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.brokenAt).toBe(3);
        expect(r.why).toContain('missing');
      }
    } finally {
      await raw().insertOne(original);
    }
    expect(await t.audit.verify()).toEqual({ ok: true, count: 8 });
  });

  it('deleting the first event breaks verification at 1', async () => {
    const original = (await raw().findOne({ _id: 1 }))!;
    await raw().deleteOne({ _id: 1 });
    try {
      expect(await t.audit.verify()).toMatchObject({ ok: false, brokenAt: 1 });
    } finally {
      await raw().insertOne(original);
    }
  });

  it('swapping two events breaks verification', async () => {
    const a = (await raw().findOne({ _id: 6 }))!;
    const b = (await raw().findOne({ _id: 7 }))!;
    const { _id: _a, ...aContent } = a;
    const { _id: _b, ...bContent } = b;
    await raw().replaceOne({ _id: 6 }, bContent);
    await raw().replaceOne({ _id: 7 }, aContent);
    try {
      expect(await t.audit.verify()).toMatchObject({ ok: false, brokenAt: 6 });
    } finally {
      await raw().replaceOne({ _id: 6 }, a);
      await raw().replaceOne({ _id: 7 }, b);
    }
    expect((await t.audit.verify()).ok).toBe(true);
  });
});

describe('concurrent appends', () => {
  it('30 concurrent appends get 30 consecutive ids and a valid chain', async () => {
    const t = await createTestApp();
    try {
      const events = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.audit.append({
            action: 'record.read',
            outcome: 'success',
            status: 200,
            actor: actor('hip', 'H-C'),
            recordIds: [`r${i}`],
            requestId: `req-${i}`,
          }),
        ),
      );
      expect(events.map((e) => e._id).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      expect(await t.audit.verify()).toEqual({ ok: true, count: 30 });
      // every input made it, once
      const stored = await t.audit.events.find({}).toArray();
      expect(new Set(stored.map((e) => e.requestId)).size).toBe(30);
    } finally {
      await t.close();
    }
  });

  it('two writers on one database (two processes) racing for numbers: every append stored once, one valid chain', async () => {
    const t = await createTestApp();
    try {
      const other = new AuditLog(t.client.db(t.config.MONGODB_DB)); // a second process's log, its own remembered end
      const append = (log: AuditLog, i: number) =>
        log.append({
          action: 'record.read',
          outcome: 'success',
          status: 200,
          actor: actor('hip', 'H-C'),
          requestId: `two-${i}`,
        });
      // Waves, so both writers batch several events and keep clashing on the next numbers.
      for (let wave = 0; wave < 4; wave++) {
        const events = await Promise.all(
          Array.from({ length: 40 }, (_, i) => append(i % 2 ? other : t.audit, wave * 40 + i)),
        );
        expect(new Set(events.map((e) => e._id)).size).toBe(40);
      }
      expect(await t.audit.verify()).toEqual({ ok: true, count: 160 });
      const stored = await t.audit.events.find({}).toArray();
      expect(new Set(stored.map((e) => e.requestId)).size).toBe(160);
    } finally {
      await t.close();
    }
  });

  it('a batch that meets a number another process took keeps what it stored and chains the rest after that event', async () => {
    const t = await createTestApp();
    try {
      const input = (i: number) => ({
        action: 'record.read',
        outcome: 'success' as const,
        status: 200,
        actor: actor('hip', 'H-C'),
        requestId: `gap-${i}`,
      });
      expect((await t.audit.append(input(0)))._id).toBe(1); // this process now remembers the end as 1
      // Another process's event 4, written behind this one's back.
      const base = {
        _id: 4,
        time: new Date(),
        action: 'record.read',
        outcome: 'success' as const,
        status: 200,
        actor: actor('hip', 'H-OTHER'),
        recordIds: [],
        consentId: null,
        purpose: null,
        patients: [],
        reason: null,
        requestId: 'other',
        prevHash: 'f'.repeat(64),
      };
      const theirs: AuditEventDoc = { ...base, hash: eventHash(base) };
      await t.audit.events.insertOne(theirs);
      const events = await Promise.all([1, 2, 3, 4, 5].map((i) => t.audit.append(input(i))));
      expect(events.map((e) => e._id)).toEqual([2, 3, 5, 6, 7]);
      expect(events.map((e) => e.requestId)).toEqual(['gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5']);
      expect(events[1].prevHash).toBe(events[0].hash);
      expect(events[2].prevHash).toBe(theirs.hash); // chained after the event it met
      expect(await t.audit.events.countDocuments({})).toBe(7);
    } finally {
      await t.close();
    }
  });

  it('events of one process are chained in the order append was called', async () => {
    const t = await createTestApp();
    try {
      const events = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          t.audit.append({
            action: 'record.read',
            outcome: 'success',
            status: 200,
            actor: actor('hip', 'H-C'),
            requestId: `order-${i}`,
          }),
        ),
      );
      expect(events.map((e) => e.requestId)).toEqual(Array.from({ length: 25 }, (_, i) => `order-${i}`));
      expect(events.map((e) => e._id)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    } finally {
      await t.close();
    }
  });

  it('30 concurrent requests (successes and refusals) leave 30 more consecutive events and a valid chain', async () => {
    const t = await createTestApp();
    try {
      const up = await t.request('/fhir/Bundle', {
        method: 'POST',
        body: withIdentifier(example('prescription')),
        headers: uploadHeaders('OP-C'),
        as: ['hip', 'H-C'],
      });
      const id = idOf(up);
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 3 === 0
            ? t.request(`/fhir/Bundle/${id}`, { as: ['hip', 'H-C'] })
            : i % 3 === 1
              ? t.request(`/fhir/Bundle/${id}`, { as: ['cm', 'sbx'] })
              : t.request('/fhir/Bundle?patient-abha=ravi.kumar@sbx', { as: ['hip', 'H-C'] }),
        ),
      );
      expect(responses.map((r) => r.status).sort()).toEqual([...Array(20).fill(200), ...Array(10).fill(403)]);
      expect(await t.audit.verify()).toEqual({ ok: true, count: 31 });
      const requestIds = new Set(responses.map((r) => r.headers.get('x-request-id')));
      expect(await t.audit.events.countDocuments({ requestId: { $in: [...requestIds] as string[] } })).toBe(30);
    } finally {
      await t.close();
    }
  });
});

describe('GET /fhir/AuditEvent (role cm)', () => {
  let t: TestApp;
  const HIP = 'H-Q';
  const HIU = 'HIU-Q';
  const g = createGenerator(4242);
  let a: SyntheticPatient, b: SyntheticPatient;
  let a1: GeneratedRecord, a2: GeneratedRecord, b1: GeneratedRecord;
  const ids: Record<string, string> = {};
  const at = (iso: string) => {
    t.clock.now = new Date(iso);
  };

  beforeAll(async () => {
    t = await createTestApp();
    a = g.patient();
    b = g.patient();
    a1 = g.record(a, 'Prescription', { careContext: { referenceNumber: 'OP-A1', display: 'A1' } });
    a2 = g.record(a, 'DiagnosticReport', { careContext: { referenceNumber: 'OP-A2', display: 'A2' } });
    b1 = g.record(b, 'Prescription', { careContext: { referenceNumber: 'OP-B1', display: 'B1' } });
    at('2024-01-10T10:00:00Z');
    for (const [name, r] of [
      ['a1', a1],
      ['a2', a2],
      ['b1', b1],
    ] as const) {
      const res = await t.request('/fhir/Bundle', {
        method: 'POST',
        body: JSON.stringify(r.bundle),
        headers: uploadHeaders(r.careContext.referenceNumber),
        as: ['hip', HIP],
      });
      expect(res.status, await res.clone().text()).toBe(201);
      ids[name] = idOf(res);
    }
    at('2024-02-15T10:00:00Z');
    expect((await t.request(`/fhir/Bundle/${ids.a1}`, { as: ['hip', HIP] })).status).toBe(200);
    expect((await t.request(`/fhir/Bundle/${ids.b1}`, { as: ['hip', HIP] })).status).toBe(200);
    at('2024-03-20T10:00:00Z');
    expect((await t.request(`/fhir/Bundle?patient-abha=${a.abhaNumber}`, { as: ['hip', HIP] })).status).toBe(200);
    expect((await t.request(`/fhir/Bundle?patient-abha=${b.abhaNumber}`, { as: ['hip', HIP] })).status).toBe(200);
    at('2024-03-25T10:00:00Z');
    expect(
      (
        await notify(
          t,
          grant('C-Q', {
            hip: HIP,
            hiu: HIU,
            patient: a.abhaAddress,
            careContexts: ['OP-A1'],
            hiTypes: ['Prescription'],
          }),
        )
      ).status,
    ).toBe(202);
    expect(
      (await t.request(`/fhir/Bundle/${ids.a1}`, { headers: { 'X-Consent-Id': 'C-Q' }, as: ['hiu', HIU] })).status,
    ).toBe(200);
    // a refusal under a consent names the consent's patient, so the patient sees the attempt
    expect(
      (await t.request(`/fhir/Bundle/${ids.a2}`, { headers: { 'X-Consent-Id': 'C-Q' }, as: ['hiu', HIU] })).status,
    ).toBe(404);
    at('2025-06-01T00:00:00Z'); // the queries themselves happen later, outside every range asked below
  });
  afterAll(async () => {
    t.clock.now = undefined;
    await t?.close();
  });

  const query = async (params: string, as: [Role, string] = ['cm', 'sbx']) => {
    const res = await t.request(`/fhir/AuditEvent?${params}`, { as });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    const bundle = await res.json();
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('searchset');
    const resources: fhir4.AuditEvent[] = (bundle.entry ?? []).map((e: any) => e.resource);
    expect(bundle.total).toBe(resources.length);
    return resources;
  };
  const subtypes = (r: fhir4.AuditEvent[]) => r.map((e) => e.subtype![0].code);
  const references = (r: fhir4.AuditEvent[]) =>
    r.flatMap((e) => (e.entity ?? []).map((x) => x.what?.reference).filter(Boolean));
  const range = 'date=ge2024-02-01&date=le2024-03-31';

  it("returns the reads and searches of the patient's records between two dates, as FHIR AuditEvents", async () => {
    const all = await query(`patient-abha=${encodeURIComponent(a.abhaAddress)}&${range}`);
    expect(subtypes(all)).toEqual(['record.read', 'record.search', 'consent.notify', 'record.read', 'record.read']);
    const refused = all[4];
    expect(refused.outcome).toBe('4');
    expect(refused.entity).toEqual([
      { what: { identifier: { system: 'urn:abha-vault:consent-id', value: 'C-Q' } }, type: { code: 'consent' } },
    ]);
    const events = all.slice(0, 4);
    for (const e of all) {
      expect(e.resourceType).toBe('AuditEvent');
      expect(e.type.code).toBe('rest');
      if (e !== refused) expect(e.outcome).toBe('0');
      expect(Date.parse(e.recorded)).toBeGreaterThanOrEqual(Date.parse('2024-02-01T00:00:00Z'));
      expect(Date.parse(e.recorded)).toBeLessThan(Date.parse('2024-04-01T00:00:00Z'));
      expect(e.agent[0].requestor).toBe(true);
      // each is a valid R4 AuditEvent
      const issues: Issue[] = [];
      sharedStructure().validateResource(e, 'AuditEvent', issues);
      expect(issues, JSON.stringify(issues)).toEqual([]);
    }
    const [hipRead, hipSearch, , hiuRead] = events;
    expect(hipRead).toMatchObject({
      action: 'R',
      recorded: '2024-02-15T10:00:00.000Z',
      entity: [{ what: { reference: `Bundle/${ids.a1}` } }],
    });
    expect(hipRead.agent[0]).toMatchObject({
      type: { coding: [{ code: 'hip' }] },
      who: { identifier: { value: HIP } },
    });
    expect(hipSearch.action).toBe('E');
    expect(references([hipSearch]).sort()).toEqual([`Bundle/${ids.a1}`, `Bundle/${ids.a2}`].sort());
    expect(hiuRead.agent[0].who!.identifier!.value).toBe(HIU);
    expect(hiuRead.purposeOfEvent![0].coding![0].code).toBe('CAREMGT');
    expect(hiuRead.entity).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ what: { identifier: { system: 'urn:abha-vault:consent-id', value: 'C-Q' } } }),
      ]),
    );
    // nothing of the other patient
    expect(references(events)).not.toContain(`Bundle/${ids.b1}`);
  });

  it('is the same for the ABHA number, with or without dashes (consent notifications name the address only)', async () => {
    const dashed = await query(`patient-abha=${a.abhaNumber}&${range}`);
    const plain = await query(`patient-abha=${a.abhaNumber.replace(/-/g, '')}&${range}`);
    expect(subtypes(dashed)).toEqual(['record.read', 'record.search', 'record.read']);
    expect(plain.map((e) => e.id)).toEqual(dashed.map((e) => e.id));
  });

  it("shows the other patient only their own records' events", async () => {
    const events = await query(`patient-abha=${b.abhaNumber}&date=ge2024-01-01&date=le2024-03-31`);
    expect(subtypes(events)).toEqual(['record.upload', 'record.read', 'record.search']);
    expect(new Set(references(events))).toEqual(new Set([`Bundle/${ids.b1}`]));
    expect(events[0].action).toBe('C');
  });

  it('filters by date: ge, le, gt, lt and one day', async () => {
    const addr = encodeURIComponent(a.abhaAddress);
    expect(subtypes(await query(`patient-abha=${addr}&date=le2024-01-31`))).toEqual(['record.upload', 'record.upload']);
    expect(subtypes(await query(`patient-abha=${addr}&date=ge2024-03-01&date=le2024-03-31`))).toEqual([
      'record.search',
      'consent.notify',
      'record.read',
      'record.read',
    ]); // the last one refused under C-Q
    expect(subtypes(await query(`patient-abha=${addr}&date=ge2024-02-15&date=le2024-02-15`))).toEqual(['record.read']);
    expect(subtypes(await query(`patient-abha=${addr}&date=gt2024-02-15&date=lt2024-03-25`))).toEqual([
      'record.search',
    ]);
    expect(
      subtypes(await query(`patient-abha=${addr}&date=ge2024-03-20T10:00:00Z&date=lt2024-03-20T10:00:01Z`)),
    ).toEqual(['record.search']);
    expect(await query(`patient-abha=${addr}&date=ge2023-01-01&date=le2023-12-31`)).toEqual([]);
    expect(await query(`patient-abha=${addr}&date=ge2024-04-01&date=le2024-12-31`)).toEqual([]);
  });

  it('the query is itself audited (audit.query, by the cm, for the patient)', async () => {
    const res = await t.request(`/fhir/AuditEvent?patient-abha=${encodeURIComponent(a.abhaAddress)}&${range}`, {
      as: ['cm', 'sbx'],
    });
    expect(await eventOf(t, res)).toMatchObject({
      action: 'audit.query',
      outcome: 'success',
      status: 200,
      actor: actor('cm', 'sbx'),
      patients: [a.abhaAddress.toLowerCase()],
    });
  });

  it.each([
    ['hip', HIP],
    ['hiu', HIU],
    ['admin', 'ADMIN-1'],
  ] as const)('role %s gets 403', async (role, facility) => {
    const res = await t.request(`/fhir/AuditEvent?patient-abha=${encodeURIComponent(a.abhaAddress)}&${range}`, {
      as: [role, facility],
    });
    expect(res.status).toBe(403);
    const oo = await res.json();
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0].code).toBe('forbidden');
  });

  it.each([
    ['no patient', 'date=ge2024-01-01'],
    ['a patient that is not an ABHA', 'patient-abha=bob'],
    ['a malformed date', `patient-abha=${encodeURIComponent('x.y.z@sbx')}&date=2024-01-01`],
    ['an impossible date', `patient-abha=${encodeURIComponent('x.y.z@sbx')}&date=ge2024-02-30`],
    ['an unknown parameter', `patient-abha=${encodeURIComponent('x.y.z@sbx')}&patient=1`],
  ])('%s → 400', async (_name, params) => {
    const res = await t.request(`/fhir/AuditEvent?${params}`, { as: ['cm', 'sbx'] });
    expect(res.status).toBe(400);
    expect((await res.json()).resourceType).toBe('OperationOutcome');
  });
});

describe('npm run audit:verify (the CLI)', () => {
  const run = (env: Record<string, string>) =>
    new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/audit/verify.ts'], {
        cwd: ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.stderr.on('data', (d) => {
        out += d;
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });

  it('exits 0 and says "intact" for a good chain, 1 and "BROKEN at event N" after tampering', async () => {
    const t = await createTestApp();
    try {
      for (let i = 0; i < 5; i++)
        await t.audit.append({
          action: 'record.read',
          outcome: 'success',
          status: 200,
          actor: actor('hip', 'H-CLI'),
          requestId: `cli-${i}`,
        });
      const env = {
        MONGODB_URI: inject('mongoUri'),
        MONGODB_DB: t.config.MONGODB_DB,
        NODE_ENV: 'test',
        DATA_DIR: t.config.DATA_DIR,
      };
      const good = await run(env);
      expect(good.code, good.out).toBe(0);
      expect(good.out).toContain('intact');
      expect(good.out).toContain('5 events');

      await t.client
        .db(t.config.MONGODB_DB)
        .collection('audit_events')
        .updateOne({ _id: 3 as any }, { $set: { status: 500 } });
      const bad = await run(env);
      expect(bad.code, bad.out).toBe(1);
      expect(bad.out).toContain('BROKEN at event 3');
    } finally {
      await t.close();
    }
  }, 60_000);
});
