/**
 * Consent notifications from the consent manager (role cm) over HTTP: grants
 * stored and read back, bad bodies refused, revocation, expiry and denial
 * terminal and immediate, the dataEraseAt sweep, and a viewer cut off at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';

const example = (name: string) =>
  readFileSync(new URL(`../../fixtures/examples/${name}.json`, import.meta.url), 'utf8');
const withIdentifier = (text: string, value = uuidv4()) => {
  const b = JSON.parse(text);
  b.identifier.value = value;
  return JSON.stringify(b);
};

interface GrantOpts {
  hip?: string;
  hiu?: string;
  patient?: string;
  careContexts?: string[];
  hiTypes?: string[];
  from?: string;
  to?: string;
  dataEraseAt?: string;
  frequency?: number;
  purpose?: string;
}
const FAR = '2099-01-01T00:00:00.000Z';
const detail = (consentId: string, o: GrantOpts = {}) => ({
  schemaVersion: 'v0.5',
  consentId,
  createdAt: '2024-01-01T10:00:00.000Z',
  patient: { id: o.patient ?? 'x@sbx' },
  careContexts: (o.careContexts ?? ['CC-1']).map((cc) => ({ patientReference: 'P1', careContextReference: cc })),
  purpose: { text: 'Care Management', code: o.purpose ?? 'CAREMGT' },
  hip: { id: o.hip ?? 'HIP-1' },
  hiu: { id: o.hiu ?? 'HIU-1' },
  consentManager: { id: 'sbx' },
  hiTypes: o.hiTypes ?? ['Prescription'],
  permission: {
    accessMode: 'VIEW',
    dateRange: { from: o.from ?? '2020-01-01T00:00:00.000Z', to: o.to ?? '2030-12-31T23:59:59.000Z' },
    dataEraseAt: o.dataEraseAt ?? FAR,
    frequency: { unit: 'HOUR', value: o.frequency ?? 10, repeats: 0 },
  },
});
const granted = (consentId: string, o: GrantOpts = {}) => ({
  consentId,
  status: 'GRANTED',
  consentDetail: detail(consentId, o),
});
const terminal = (consentId: string, status: 'REVOKED' | 'EXPIRED' | 'DENIED') => ({ consentId, status });
const v05 = (notification: unknown) => ({ requestId: uuidv4(), timestamp: new Date().toISOString(), notification });
const v3 = (notification: unknown) => ({ notification });

const V05 = '/v0.5/consents/hip/notify';
const V3 = '/api/v3/consent/request/hip/notify';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const notifyRaw = (path: string, body: string, contentType = 'application/json') =>
  t.request(path, { method: 'POST', body, headers: { 'Content-Type': contentType }, as: ['cm', 'sbx'] });
const notify = async (body: unknown, path = V05) => notifyRaw(path, JSON.stringify(body));
/** Sends and expects 202; returns the answer's body. */
const accepted = async (body: unknown, path = V05) => {
  const res = await notify(body, path);
  expect(res.status, await res.clone().text()).toBe(202);
  return res.json() as Promise<{ consentId: string; status: string; result: string }>;
};
const readConsent = (id: string, as: ['admin' | 'hiu' | 'hip' | 'cm', string] = ['admin', 'ADMIN-1']) =>
  t.request(`/consents/${encodeURIComponent(id)}`, { as });
const outcome = async (res: Response) => {
  const body = await res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  for (const i of body.issue) {
    expect(i.severity).toBe('error');
    expect(i.code).toBeTruthy();
    expect(i.diagnostics).toBeTruthy();
  }
  return body as fhir4.OperationOutcome;
};
const id = (prefix: string) => `${prefix}-${uuidv4()}`;

describe('grants', () => {
  it.each([
    ['v0.5', V05, v05],
    ['v3', V3, v3],
  ] as const)('a valid %s GRANTED notification is stored (202) and readable by admin', async (_v, path, wrap) => {
    const cid = id('GRANT');
    const body = await accepted(
      wrap(
        granted(cid, {
          hiu: 'HIU-1',
          patient: 'Ravi.Kumar@sbx',
          careContexts: ['CC-1', 'CC-2', 'CC-1'],
          hiTypes: ['Prescription', 'DiagnosticReport'],
        }),
      ),
      path,
    );
    expect(body).toEqual({ consentId: cid, status: 'GRANTED', result: 'stored' });

    const res = await readConsent(cid);
    expect(res.status).toBe(200);
    const c = await res.json();
    expect(c.id).toBe(cid);
    expect(c.status).toBe('GRANTED');
    expect(c.erasedAt).toBeNull();
    expect(c.history).toHaveLength(1);
    expect(c.history[0].status).toBe('GRANTED');
    expect(c.terms).toMatchObject({
      patient: 'Ravi.Kumar@sbx',
      hip: 'HIP-1',
      hiu: 'HIU-1',
      careContexts: ['CC-1', 'CC-2'],
      hiTypes: ['Prescription', 'DiagnosticReport'],
      purpose: 'CAREMGT',
      accessMode: 'VIEW',
      frequency: { unit: 'HOUR', value: 10, repeats: 0 },
    });
    expect(new Date(c.terms.dataEraseAt).toISOString()).toBe(FAR);
    expect(new Date(c.terms.dateFrom).toISOString()).toBe('2020-01-01T00:00:00.000Z');
    expect(c.artefact.consentId).toBe(cid);

    const stored = await t.consents.get(cid);
    expect(stored!.terms!.dataEraseAt).toBeInstanceOf(Date);
  });

  it("the consent's own hiu reads it; another hiu gets 403; hip and cm get 403", async () => {
    const cid = id('OWN');
    await accepted(v05(granted(cid, { hiu: 'HIU-OWN' })));
    const own = await readConsent(cid, ['hiu', 'HIU-OWN']);
    expect(own.status).toBe(200);
    expect((await own.json()).terms.hiu).toBe('HIU-OWN');
    for (const as of [
      ['hiu', 'HIU-OTHER'],
      ['hip', 'HIP-1'],
      ['cm', 'sbx'],
    ] as const) {
      const res = await readConsent(cid, [as[0], as[1]]);
      expect(res.status, as.join(' ')).toBe(403);
      expect((await outcome(res)).issue[0].code).toBe('forbidden');
    }
  });

  it('a consent without a hiu is readable by admin only', async () => {
    const cid = id('NOHIU');
    const n = granted(cid);
    delete (n.consentDetail as { hiu?: unknown }).hiu;
    await accepted(v05(n));
    expect((await readConsent(cid)).status).toBe(200);
    expect((await readConsent(cid, ['hiu', 'HIU-1'])).status).toBe(403);
  });

  it('an unknown consent is 404 for admin', async () => {
    const res = await readConsent(id('NOPE'));
    expect(res.status).toBe(404);
    expect((await outcome(res)).issue[0].code).toBe('not-found');
  });

  it('a repeated GRANTED is idempotent: 202 unchanged, first terms kept, one history entry', async () => {
    const cid = id('REPEAT');
    expect((await accepted(v05(granted(cid, { hiu: 'HIU-A' })))).result).toBe('stored');
    expect((await accepted(v05(granted(cid, { hiu: 'HIU-A' })))).result).toBe('unchanged');
    expect((await accepted(v3(granted(cid, { hiu: 'HIU-B', hiTypes: ['Invoice'] })), V3)).result).toBe('unchanged');
    const c = (await t.consents.get(cid))!;
    expect(c.status).toBe('GRANTED');
    expect(c.history).toHaveLength(1);
    expect(c.terms!.hiu).toBe('HIU-A');
    expect(c.terms!.hiTypes).toEqual(['Prescription']);
    expect(await t.consents.consents.countDocuments({ _id: cid })).toBe(1);
  });

  it('concurrent identical grants store exactly one consent', async () => {
    const cid = id('CONC');
    const results = await Promise.all(Array.from({ length: 10 }, () => accepted(v05(granted(cid)))));
    expect(results.filter((r) => r.result === 'stored')).toHaveLength(1);
    expect(results.filter((r) => r.result === 'unchanged')).toHaveLength(9);
    expect((await t.consents.get(cid))!.history).toHaveLength(1);
  });
});

describe('bad notifications', () => {
  const cases: [string, () => string, string | undefined, string][] = [
    [
      'GRANTED without consentDetail',
      () => JSON.stringify(v05({ consentId: id('BAD'), status: 'GRANTED' })),
      undefined,
      'notification.consentDetail',
    ],
    [
      'an unknown hiType',
      () => {
        const n = granted(id('BAD'));
        n.consentDetail.hiTypes = ['Prescription', 'XRay'];
        return JSON.stringify(v05(n));
      },
      undefined,
      'notification.consentDetail.hiTypes.1',
    ],
    [
      'dateRange.from after dateRange.to',
      () => JSON.stringify(v05(granted(id('BAD'), { from: '2025-01-01T00:00:00Z', to: '2024-01-01T00:00:00Z' }))),
      undefined,
      'notification.consentDetail.permission.dateRange',
    ],
    [
      'consentDetail.consentId differing from notification.consentId',
      () => {
        const n = granted(id('BAD'));
        n.consentDetail.consentId = 'SOMETHING-ELSE';
        return JSON.stringify(v05(n));
      },
      undefined,
      'notification.consentDetail.consentId',
    ],
    [
      'an unknown status',
      () => JSON.stringify(v05({ consentId: id('BAD'), status: 'PAUSED' })),
      undefined,
      'notification.status',
    ],
    ['no notification at all', () => JSON.stringify({ requestId: uuidv4() }), 'required', 'notification'],
    [
      'a date that is not a date',
      () => JSON.stringify(v05(granted(id('BAD'), { dataEraseAt: 'next tuesday' }))),
      undefined,
      'notification.consentDetail.permission.dataEraseAt',
    ],
    [
      'an empty careContexts list',
      () => JSON.stringify(v05(granted(id('BAD'), { careContexts: [] }))),
      undefined,
      'notification.consentDetail.careContexts',
    ],
    [
      'v3 GRANTED without consentDetail',
      () => JSON.stringify(v3({ consentId: id('BAD'), status: 'GRANTED' })),
      undefined,
      'notification.consentDetail',
    ],
  ];

  it.each(cases)('%s → 422 naming the field, nothing stored', async (name, make, code, expression) => {
    const before = await t.consents.consents.countDocuments({});
    const res = await notifyRaw(name.startsWith('v3') ? V3 : V05, make());
    expect(res.status).toBe(422);
    const oo = await outcome(res);
    const exprs = oo.issue.map((i) => i.expression?.[0]);
    expect(exprs, JSON.stringify(oo.issue)).toContain(expression);
    if (code) expect(oo.issue.find((i) => i.expression?.[0] === expression)!.code).toBe(code);
    expect(await t.consents.consents.countDocuments({})).toBe(before);
  });

  it('lists several problems at once', async () => {
    const n = granted(id('BAD'), { from: '2025-01-01T00:00:00Z', to: '2024-01-01T00:00:00Z' });
    n.consentDetail.hiTypes = ['Nope'];
    (n.consentDetail.permission.frequency as { value: number }).value = 0;
    const oo = await outcome(await notify(v05(n)));
    const exprs = oo.issue.map((i) => i.expression?.[0]);
    expect(exprs).toEqual(
      expect.arrayContaining([
        'notification.consentDetail.hiTypes.0',
        'notification.consentDetail.permission.dateRange',
        'notification.consentDetail.permission.frequency.value',
      ]),
    );
  });

  it('malformed JSON → 400 structure', async () => {
    const res = await notifyRaw(V05, '{"notification": {"consentId": "x",');
    expect(res.status).toBe(400);
    expect((await outcome(res)).issue[0].code).toBe('structure');
  });

  it('an empty body → 400', async () => {
    const res = await notifyRaw(V3, '');
    expect(res.status).toBe(400);
    await outcome(res);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', ''])(
    'content type %j → 415 not-supported',
    async (type) => {
      const cid = id('TYPE');
      const res = await t.request(V05, {
        method: 'POST',
        body: JSON.stringify(v05(granted(cid))),
        headers: type ? { 'Content-Type': type } : {},
        as: ['cm', 'sbx'],
      });
      expect(res.status).toBe(415);
      expect((await outcome(res)).issue[0].code).toBe('not-supported');
      expect(await t.consents.get(cid)).toBeNull();
    },
  );

  it('application/fhir+json and a charset parameter are accepted', async () => {
    const cid = id('TYPE-OK');
    expect(
      (await notifyRaw(V05, JSON.stringify(v05(granted(cid))), 'application/fhir+json; charset=utf-8')).status,
    ).toBe(202);
  });
});

describe('revocation, expiry and denial', () => {
  const expectErased = async (cid: string, status: string, history: string[]) => {
    const c = (await t.consents.get(cid))!;
    expect(c.status).toBe(status);
    expect(c.terms).toBeUndefined();
    expect(c.artefact).toBeUndefined();
    expect(c.erasedAt).toBeInstanceOf(Date);
    expect(c.history.map((h) => h.status)).toEqual(history);
    const res = await readConsent(cid);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.status).toBe(status);
    expect(body.terms).toBeUndefined();
    expect(body.artefact).toBeUndefined();
    // nothing of the artefact is left anywhere in the stored document, except the patient key the audit trail needs
    // and the HIU's id (so that it can still read its ended consent)
    const { patient, hiu, ...rest } = c;
    expect(JSON.stringify(rest)).not.toMatch(/HIU-|CAREMGT|Prescription|x@sbx/);
    expect(Object.keys(c).sort()).toEqual([
      '_id',
      'createdAt',
      'erasedAt',
      'history',
      'hiu',
      'patient',
      'status',
      'statusAt',
    ]);
    expect(patient === null || patient === 'x@sbx').toBe(true);
    expect(hiu === null || hiu === 'HIU-1').toBe(true);
  };

  it.each(['REVOKED', 'EXPIRED'] as const)(
    '%s takes effect at once: terms and artefact erased, history kept',
    async (status) => {
      const cid = id(status);
      await accepted(v05(granted(cid)));
      expect(await accepted(v3(terminal(cid, status)), V3)).toEqual({ consentId: cid, status, result: 'stored' });
      await expectErased(cid, status, ['GRANTED', status]);
      // the hiu the consent was granted to still reads what is left of it (no terms); another hiu cannot
      const own = await readConsent(cid, ['hiu', 'HIU-1']);
      expect(own.status).toBe(200);
      expect(await own.json()).toMatchObject({ id: cid, status, hiu: 'HIU-1', effectiveStatus: status });
      expect((await readConsent(cid, ['hiu', 'HIU-OTHER'])).status).toBe(403);
      // the same notification again changes nothing
      expect((await accepted(v05(terminal(cid, status)))).result).toBe('unchanged');
      await expectErased(cid, status, ['GRANTED', status]);
    },
  );

  it.each(['REVOKED', 'EXPIRED', 'DENIED'] as const)(
    '%s for an unknown consent is remembered; a late GRANTED cannot bring it back',
    async (status) => {
      const cid = id(`EARLY-${status}`);
      expect((await accepted(v05(terminal(cid, status)))).result).toBe('stored');
      const late = await accepted(v05(granted(cid)));
      expect(late.result).toBe('ignored-terminal');
      const lateV3 = await accepted(v3(granted(cid)), V3);
      expect(lateV3.result).toBe('ignored-terminal');
      await expectErased(cid, status, [status]);
    },
  );

  it('DENIED is recorded', async () => {
    const cid = id('DENIED');
    await accepted(v3(terminal(cid, 'DENIED')), V3);
    const c = (await t.consents.get(cid))!;
    expect(c.status).toBe('DENIED');
    expect(c.createdAt).toBeNull();
    expect(c.history.map((h) => h.status)).toEqual(['DENIED']);
  });

  it('a revoked consent stays revoked when an EXPIRED follows (first terminal status wins)', async () => {
    const cid = id('REV-EXP');
    await accepted(v05(granted(cid)));
    await accepted(v05(terminal(cid, 'REVOKED')));
    expect((await accepted(v05(terminal(cid, 'EXPIRED')))).result).toBe('unchanged');
    await expectErased(cid, 'REVOKED', ['GRANTED', 'REVOKED']);
  });

  it('a REVOKED may carry the consentDetail; it is still erased', async () => {
    const cid = id('REV-DETAIL');
    await accepted(v05(granted(cid)));
    await accepted(v05({ ...granted(cid), status: 'REVOKED' }));
    await expectErased(cid, 'REVOKED', ['GRANTED', 'REVOKED']);
  });
});

describe('sweep at dataEraseAt (injected clock)', () => {
  it('expires and erases consents whose dataEraseAt has passed, leaves the others alone', async () => {
    const sweepApp = await createTestApp();
    try {
      const send = (body: unknown) =>
        sweepApp.request(V05, {
          method: 'POST',
          body: JSON.stringify(body),
          headers: { 'Content-Type': 'application/json' },
          as: ['cm', 'sbx'],
        });
      expect((await send(v05(granted('DUE', { dataEraseAt: '2030-01-01T00:00:00Z' })))).status).toBe(202);
      expect((await send(v05(granted('DUE-EXACTLY', { dataEraseAt: '2030-06-01T00:00:00Z' })))).status).toBe(202);
      expect((await send(v05(granted('NOT-DUE', { dataEraseAt: '2030-06-01T00:00:00.001Z' })))).status).toBe(202);
      expect((await send(v05(terminal('ALREADY-REVOKED', 'REVOKED')))).status).toBe(202);
      const now = new Date('2030-06-01T00:00:00Z');

      expect(await sweepApp.consents.sweep(new Date('2029-12-31T23:59:59Z'))).toBe(0);
      expect(await sweepApp.consents.sweep(now)).toBe(2);

      for (const cid of ['DUE', 'DUE-EXACTLY']) {
        const c = (await sweepApp.consents.get(cid))!;
        expect(c.status, cid).toBe('EXPIRED');
        expect(c.terms).toBeUndefined();
        expect(c.artefact).toBeUndefined();
        expect(c.erasedAt!.getTime()).toBe(now.getTime());
        expect(c.statusAt.getTime()).toBe(now.getTime());
        expect(c.history.map((h) => h.status)).toEqual(['GRANTED', 'EXPIRED']);
      }
      const untouched = (await sweepApp.consents.get('NOT-DUE'))!;
      expect(untouched.status).toBe('GRANTED');
      expect(untouched.terms!.hiu).toBe('HIU-1');
      expect(untouched.artefact).toBeTruthy();
      expect(untouched.history).toHaveLength(1);
      expect((await sweepApp.consents.get('ALREADY-REVOKED'))!.history.map((h) => h.status)).toEqual(['REVOKED']);

      // a second sweep finds nothing more; a later one takes the rest
      expect(await sweepApp.consents.sweep(now)).toBe(0);
      expect(await sweepApp.consents.sweep(new Date('2031-01-01T00:00:00Z'))).toBe(1);
      expect((await sweepApp.consents.get('NOT-DUE'))!.status).toBe('EXPIRED');
    } finally {
      await sweepApp.close();
    }
  });
});

describe('a viewer using the consent', () => {
  const HIP = 'H-VIEW';
  let recordId: string;

  beforeAll(async () => {
    const up = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: withIdentifier(example('prescription')),
      headers: { 'Content-Type': 'application/fhir+json', 'X-Care-Context': 'OP-VIEW' },
      as: ['hip', HIP],
    });
    expect(up.status).toBe(201);
    recordId = up.headers.get('location')!.split('/')[5];
  });

  const viewerGrant = (cid: string, o: GrantOpts = {}) =>
    granted(cid, {
      hip: HIP,
      hiu: 'HIU-V',
      patient: 'ravi.kumar@sbx',
      careContexts: ['OP-VIEW'],
      hiTypes: ['Prescription'],
      from: '2024-01-01T00:00:00Z',
      to: '2024-12-31T23:59:59Z',
      frequency: 1000,
      ...o,
    });
  const search = (cid: string, hiu = 'HIU-V') =>
    t.request('/fhir/Bundle?patient-abha=ravi.kumar@sbx', { headers: { 'X-Consent-Id': cid }, as: ['hiu', hiu] });
  const read = (cid: string, hiu = 'HIU-V') =>
    t.request(`/fhir/Bundle/${recordId}`, { headers: { 'X-Consent-Id': cid }, as: ['hiu', hiu] });

  it('gets 403 right after the consent is revoked', async () => {
    const cid = id('VIEW');
    await accepted(v05(viewerGrant(cid)));
    const before = await search(cid);
    expect(before.status).toBe(200);
    expect((await before.json()).total).toBe(1);
    expect((await read(cid)).status).toBe(200);
    // another hiu cannot use it
    expect((await search(cid, 'HIU-OTHER')).status).toBe(403);

    await accepted(v3(terminal(cid, 'REVOKED')), V3);
    for (const res of [await search(cid), await read(cid)]) {
      expect(res.status).toBe(403);
      const oo = await outcome(res);
      expect(oo.issue[0].code).toBe('forbidden');
      expect(oo.issue[0].diagnostics).toContain('REVOKED');
    }
  });

  it('gets 403 once dataEraseAt has passed, and after the sweep', async () => {
    const cid = id('VIEW-EXP');
    await accepted(v05(viewerGrant(cid, { dataEraseAt: '2035-01-01T00:00:00Z' })));
    expect((await read(cid)).status).toBe(200);
    t.clock.now = new Date('2035-01-01T00:00:00Z');
    try {
      expect((await read(cid)).status).toBe(403);
    } finally {
      t.clock.now = undefined;
    }
    // the sweep here only touches consents due by 2035; the others in this file erase in 2099
    await t.consents.sweep(new Date('2035-01-01T00:00:00Z'));
    expect((await t.consents.get(cid))!.status).toBe('EXPIRED');
    const res = await read(cid);
    expect(res.status).toBe(403);
    expect((await outcome(res)).issue[0].diagnostics).toContain('EXPIRED');
  });

  it('an unknown consent id is 403 too', async () => {
    expect((await search(id('UNKNOWN'))).status).toBe(403);
  });
});
