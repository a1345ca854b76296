/**
 * MongoDB operator injection: query parameters, headers and JSON bodies that
 * carry `{"$ne":null}`, `$where`, bracketed `[$ne]` parameters, dotted and
 * $-prefixed keys never reach a query as operators. Each is refused (4xx) or
 * treated as the literal string it is, and never returns more than the
 * legitimate query would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, type TestApp } from '../support/app.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';

let t: TestApp;
let gw: StandInGateway;
const g = createGenerator(9090);
let p1: SyntheticPatient;
let p2: SyntheticPatient;
/** Record ids by provider, and H1's by care context. */
const ids = { H1: [] as string[], H2: [] as string[], H1_CCA: [] as string[] };
let consentId: string;

const HIU = 'HIU-INJ';
const FAR = '2099-01-01T00:00:00.000Z';

async function upload(
  hip: string,
  p: SyntheticPatient,
  kind: 'Prescription' | 'DiagnosticReport' | 'DischargeSummary',
  careContext: string,
): Promise<string> {
  const rec = g.record(p, kind, { careContext: { referenceNumber: careContext, display: careContext } });
  return t.upload(hip, rec.bundle, careContext);
}

const grantBody = (id: string, extra: Record<string, unknown> = {}) => ({
  requestId: uuidv4(),
  timestamp: new Date().toISOString(),
  notification: {
    consentId: id,
    status: 'GRANTED',
    consentDetail: {
      schemaVersion: 'v0.5',
      consentId: id,
      createdAt: '2025-01-01T00:00:00.000Z',
      patient: { id: p1.abhaAddress },
      careContexts: [{ patientReference: 'P', careContextReference: 'CC-A' }],
      purpose: { text: 'Care', code: 'CAREMGT' },
      hip: { id: 'H1' },
      hiu: { id: HIU },
      hiTypes: ['Prescription', 'DiagnosticReport', 'DischargeSummary'],
      permission: {
        accessMode: 'VIEW',
        dateRange: { from: '2000-01-01T00:00:00.000Z', to: '2030-01-01T00:00:00.000Z' },
        dataEraseAt: FAR,
        frequency: { unit: 'HOUR', value: 10_000, repeats: 0 },
      },
      ...extra,
    },
  },
});

const cmPost = (path: string, body: unknown, hip = 'H1') =>
  t.request(path, {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: { 'Content-Type': 'application/json', 'X-HIP-ID': hip },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

beforeAll(async () => {
  gw = await startStandInGateway();
  t = await createTestApp({
    GATEWAY_BASE_URL: gw.url,
    GATEWAY_CLIENT_ID: 'abha-vault',
    GATEWAY_CLIENT_SECRET: 's3cret',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  p1 = g.patient();
  p2 = g.patient();
  for (const [hip, p, kind, cc] of [
    ['H1', p1, 'Prescription', 'CC-A'],
    ['H1', p1, 'DiagnosticReport', 'CC-A'],
    ['H1', p1, 'DischargeSummary', 'CC-B'],
    ['H1', p2, 'Prescription', 'CC-C'],
    ['H2', p1, 'Prescription', 'CC-A'],
    ['H2', p2, 'DiagnosticReport', 'CC-B'],
  ] as const) {
    const id = await upload(hip, p, kind, cc);
    ids[hip].push(id);
    if (hip === 'H1' && cc === 'CC-A') ids.H1_CCA.push(id);
  }
  consentId = uuidv4();
  const res = await cmPost('/v0.5/consents/hip/notify', grantBody(consentId));
  expect(res.status).toBe(202);
});
afterAll(async () => {
  await t?.close();
  await gw?.close();
});

const search = (query: string, as: ['hip' | 'hiu', string] = ['hip', 'H1'], headers: Record<string, string> = {}) =>
  t.request(`/fhir/Bundle${query}`, { as, headers });

interface Found {
  status: number;
  total?: number;
  ids: string[];
  body: any;
}
async function found(res: Response): Promise<Found> {
  const body = await res.json();
  const entryIds = res.status === 200 ? (body.entry ?? []).map((e: any) => e.resource.id as string) : [];
  return { status: res.status, total: body.total, ids: entryIds, body };
}

const INJECTED = [
  '{"$ne":null}',
  '{"$gt":""}',
  '{"$regex":".*"}',
  '{"$in":["CC-A","CC-B"]}',
  '{"$where":"return true"}',
  '$where',
  '$ne',
  '$gt',
  '[$ne]',
  'a.b',
  'careContext.$',
  '$expr',
  "' || '1'=='1",
  'this.provider == "H2"',
  'null',
  'true',
  '.*',
  '*',
  'x'.repeat(129),
  'y'.repeat(10_000),
];
const PARAMS = ['patient-abha', 'care-context', 'type', 'date', '_count', '_cursor'] as const;

describe('GET /fhir/Bundle query parameters (hip H1)', () => {
  it('the legitimate queries find what was seeded', async () => {
    const all = await found(await search('?_count=100'));
    expect(all.status).toBe(200);
    expect(all.total).toBe(ids.H1.length);
    expect(all.ids.sort()).toEqual([...ids.H1].sort());
    const cca = await found(await search('?care-context=CC-A'));
    expect(cca.ids.sort()).toEqual([...ids.H1_CCA].sort());
  });

  it.each(PARAMS)(
    "%s: operator-like values are refused or match nothing; never another provider's record",
    async (param) => {
      for (const value of INJECTED) {
        const res = await search(`?${param}=${encodeURIComponent(value)}`);
        const f = await found(res);
        const context = `${param}=${value.slice(0, 40)} → ${res.status} ${JSON.stringify(f.body).slice(0, 200)}`;
        expect(res.status, context).toBeLessThan(500);
        if (res.status !== 200) {
          expect(res.status, context).toBe(400);
          expect(f.body.resourceType, context).toBe('OperationOutcome');
          continue;
        }
        // Only care-context takes free text: a nonsense care context matches no record at all.
        expect(param, context).toBe('care-context');
        expect(f.total, context).toBe(0);
        expect(f.ids, context).toEqual([]);
      }
    },
  );

  it.each(PARAMS)(
    '%s: bracketed and dotted parameter names ([$ne], [$gt], [], .$ne) are unknown parameters (400)',
    async (param) => {
      for (const suffix of ['[$ne]', '[$gt]', '[$regex]', '[]', '[0]', '.$ne', '[$where]']) {
        for (const value of ['x']) {
          const res = await search(`?${encodeURIComponent(param + suffix)}=${value}`);
          expect(res.status, `${param}${suffix}=${value}`).toBe(400);
          // The raw (unencoded) spelling too, as a browser or qs-style client would send it.
          const raw = await search(`?${param}${suffix}=${value}`);
          expect(raw.status, `raw ${param}${suffix}=${value}`).toBe(400);
        }
      }
    },
  );

  it('a legitimate parameter beside a bracketed one is still refused (no partial widening)', async () => {
    for (const q of [
      '?care-context=CC-A&care-context[$ne]=x',
      '?care-context[$ne]=CC-A&care-context=CC-A',
      '?care-context=CC-A&care-context=CC-B',
      '?_count=1&_count[$gt]=0',
    ]) {
      const res = await search(q);
      expect(res.status, q).toBe(400);
    }
  });

  it('a care-context search never widens beyond the exact match', async () => {
    for (const value of ['CC-A', 'CC-', 'CC-.*', 'cc-a', ' CC-A', 'CC-A ', 'CC-A\u0000', '^CC-A$']) {
      const f = await found(await search(`?care-context=${encodeURIComponent(value)}&_count=100`));
      expect(f.status, value).toBe(200);
      expect(
        f.ids.every((id) => ids.H1.includes(id)),
        value,
      ).toBe(true);
      expect(f.ids.sort(), value).toEqual(value === 'CC-A' ? [...ids.H1_CCA].sort() : []);
    }
  });

  it('_cursor carrying operators, or any cursor this server did not seal, is refused with 400', async () => {
    const cursor = (c: unknown) => Buffer.from(JSON.stringify(c)).toString('base64url');
    for (const c of [
      { d: { $gt: 0 }, i: 'x', dir: 'next' },
      { d: 0, i: { $ne: null }, dir: 'next' },
      { d: 0, i: 'x', dir: { $ne: null } },
      { $where: 'true' },
      [{ d: 0, i: 'x', dir: 'next' }],
      { d: 0, i: 'x'.repeat(65), dir: 'next' },
      { d: Date.now() + 1e12, i: 'zzzz', dir: 'next', $where: 'true', provider: { $ne: null } },
      { d: 1e300, i: 'x', dir: 'next' },
    ]) {
      const res = await search(`?_cursor=${cursor(c)}`);
      expect(res.status, JSON.stringify(c)).toBe(400);
    }
  });

  it('record ids carrying operators are not found (404), for read, history and vread', async () => {
    for (const id of ['{"$ne":null}', '{"$gt":""}', '$where', 'a.b', '[$ne]']) {
      for (const path of [
        `/fhir/Bundle/${encodeURIComponent(id)}`,
        `/fhir/Bundle/${encodeURIComponent(id)}/_history`,
        `/fhir/Bundle/${encodeURIComponent(id)}/_history/1`,
      ]) {
        const res = await t.request(path, { as: ['hip', 'H1'] });
        expect(res.status, path).toBe(404);
      }
    }
  });
});

describe('headers carrying operators', () => {
  it('a hiu with X-Consent-Id {"$ne":"x"} (or any operator text) gets 403 for search and read', async () => {
    for (const value of ['{"$ne":"x"}', '{"$gt":""}', '$where', '{"$regex":".*"}', 'a.b']) {
      const res = await search('', ['hiu', HIU], { 'X-Consent-Id': value });
      expect(res.status, value).toBe(403);
      const body = await res.json();
      expect(body.resourceType).toBe('OperationOutcome');
      const read = await t.request(`/fhir/Bundle/${ids.H1_CCA[0]}`, {
        as: ['hiu', HIU],
        headers: { 'X-Consent-Id': value },
      });
      expect(read.status, value).toBe(403);
    }
  });

  it('a hiu under a real consent with injected search values sees at most the consented records', async () => {
    const legit = await found(await search('?_count=100', ['hiu', HIU], { 'X-Consent-Id': consentId }));
    expect(legit.status).toBe(200);
    expect(legit.ids.sort()).toEqual([...ids.H1_CCA].sort());
    for (const value of INJECTED.slice(0, 14)) {
      const f = await found(
        await search(`?care-context=${encodeURIComponent(value)}`, ['hiu', HIU], { 'X-Consent-Id': consentId }),
      );
      expect(f.status, value).toBeLessThan(500);
      if (f.status === 200) {
        expect(f.total, value).toBe(0);
        expect(f.ids, value).toEqual([]);
      }
    }
  });

  it('X-Care-Context with operator text is stored as that literal string, matched only exactly', async () => {
    const cc = '{"$gt":""}';
    const id = await upload('H1', p2, 'DiagnosticReport', cc);
    const stored = await t.collections.current.findOne({ _id: id });
    expect(stored?.careContext).toBe(cc);
    const exact = await found(await search(`?care-context=${encodeURIComponent(cc)}`));
    expect(exact.ids).toEqual([id]);
    const cca = await found(await search('?care-context=CC-A&_count=100'));
    expect(cca.ids.sort()).toEqual([...ids.H1_CCA].sort());
    const link = await t.collections.careContexts.findOne({ provider: 'H1', referenceNumber: cc });
    expect(link?.referenceNumber).toBe(cc);
    ids.H1.push(id);
  });

  it('X-HIP-ID with operator text is refused (400) before any query', async () => {
    const body = { requestId: uuidv4(), transactionId: uuidv4(), patient: { id: p1.abhaAddress } };
    for (const hip of ['{"$gt":""}', '{"$ne":null}', '$where', '$ne', '[$ne]']) {
      const res = await cmPost('/v0.5/care-contexts/discover', body, hip);
      expect(res.status, hip).toBe(400);
    }
  });
});

describe('JSON bodies with operators where strings are expected (role cm)', () => {
  const OPS: unknown[] = [{ $gt: '' }, { $ne: null }, { $in: ['a'] }, { $regex: '.*' }, ['x'], { 'a.b': 1 }];

  it('consent notify: consentId, patient.id, careContextReference, hip.id, hiu.id as operators → 422, nothing stored', async () => {
    const count = await t.consents.consents.countDocuments({});
    for (const op of OPS) {
      const setters: [string, (b: any) => void][] = [
        [
          'consentId',
          (b) => {
            b.notification.consentId = op;
            b.notification.consentDetail.consentId = op;
          },
        ],
        [
          'patient.id',
          (b) => {
            b.notification.consentDetail.patient.id = op;
          },
        ],
        [
          'careContextReference',
          (b) => {
            b.notification.consentDetail.careContexts[0].careContextReference = op;
          },
        ],
        [
          'hip.id',
          (b) => {
            b.notification.consentDetail.hip.id = op;
          },
        ],
        [
          'hiu.id',
          (b) => {
            b.notification.consentDetail.hiu.id = op;
          },
        ],
      ];
      for (const [name, set] of setters) {
        const b = grantBody(uuidv4());
        set(b);
        const res = await cmPost('/v0.5/consents/hip/notify', b);
        expect(res.status, `${name}=${JSON.stringify(op)}`).toBe(422);
      }
    }
    expect(await t.consents.consents.countDocuments({})).toBe(count);
  });

  it('a revocation naming {"$ne":null} (or any operator) as consentId is refused and revokes nothing', async () => {
    for (const op of OPS) {
      for (const path of ['/v0.5/consents/hip/notify', '/api/v3/consent/request/hip/notify']) {
        const res = await cmPost(path, { requestId: uuidv4(), notification: { consentId: op, status: 'REVOKED' } });
        expect(res.status, `${path} ${JSON.stringify(op)}`).toBe(422);
      }
    }
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
  });

  it.each([
    ['a $-prefixed member', { $where: 'sleep(100)' }],
    ['a dotted member', { 'a.b': 1 }],
    ['a nested $-prefixed member', { requester: { $gt: '' } }],
    ['a nested dotted member', { requester: { 'x.y': { $ne: null } } }],
  ])('consent notify with %s in consentDetail (kept as the artefact): never a 5xx', async (_name, extra) => {
    // Unknown members are allowed in a notification (ABDM adds fields); the artefact is stored as given.
    // Such a member must either be refused (4xx) or stored without failing; the database rejecting the
    // key must not surface as a 500.
    const id = uuidv4();
    const res = await cmPost('/v0.5/consents/hip/notify', grantBody(id, extra));
    expect(res.status, await res.clone().text()).toBeLessThan(500);
    if (res.status === 202) {
      const read = await t.request(`/consents/${id}`, { as: ['admin', 'ADMIN-1'] });
      expect(read.status).toBe(200);
    } else {
      expect(res.status).toBe(422);
      expect(await t.consents.get(id)).toBeNull();
    }
  });

  it('health-information request: consent.id and transactionId as operators → 422; "$where" as an id is just an unknown consent', async () => {
    const hi = (consent: unknown, transactionId: unknown = uuidv4()) => ({
      requestId: uuidv4(),
      transactionId,
      hiRequest: {
        consent: { id: consent },
        dateRange: { from: '2020-01-01T00:00:00.000Z', to: '2030-01-01T00:00:00.000Z' },
        dataPushUrl: 'http://127.0.0.1:9/push',
        keyMaterial: {
          cryptoAlg: 'ECDH',
          curve: 'Curve25519',
          dhPublicKey: { expiry: FAR, keyValue: Buffer.alloc(32, 9).toString('base64') },
          nonce: Buffer.alloc(32, 1).toString('base64'),
        },
      },
    });
    for (const op of OPS) {
      expect((await cmPost('/v0.5/health-information/hip/request', hi(op))).status, JSON.stringify(op)).toBe(422);
      expect((await cmPost('/v0.5/health-information/hip/request', hi(consentId, op))).status, JSON.stringify(op)).toBe(
        422,
      );
    }
    for (const literal of ['$where', '{"$ne":null}', 'a.b']) {
      const res = await cmPost('/v0.5/health-information/hip/request', hi(literal));
      expect(res.status, literal).toBe(202);
      expect((await res.json()).status, literal).toBe('ERRORED');
    }
  });

  it('discover: patient.id and identifier values as operators → 422', async () => {
    for (const op of OPS) {
      const res = await cmPost('/v0.5/care-contexts/discover', {
        requestId: uuidv4(),
        transactionId: uuidv4(),
        patient: { id: op },
      });
      expect(res.status, JSON.stringify(op)).toBe(422);
      const res2 = await cmPost('/v0.5/care-contexts/discover', {
        requestId: uuidv4(),
        transactionId: uuidv4(),
        patient: { id: p1.abhaAddress, verifiedIdentifiers: [{ type: 'NDHM_HEALTH_NUMBER', value: op }] },
      });
      expect(res2.status, JSON.stringify(op)).toBe(422);
    }
  });

  it('link init: patient.id, referenceNumber and careContexts[].referenceNumber as operators → 422, no link request', async () => {
    const links = t.client.db(t.config.MONGODB_DB).collection('link_requests');
    const before = await links.countDocuments({});
    const init = (patch: (b: any) => void) => {
      const b: any = {
        requestId: uuidv4(),
        transactionId: uuidv4(),
        patient: { id: p1.abhaAddress, referenceNumber: p1.abhaAddress, careContexts: [{ referenceNumber: 'CC-A' }] },
      };
      patch(b);
      return cmPost('/v0.5/links/link/init', b);
    };
    for (const op of OPS) {
      for (const [name, patch] of [
        [
          'patient.id',
          (b: any) => {
            b.patient.id = op;
          },
        ],
        [
          'patient.referenceNumber',
          (b: any) => {
            b.patient.referenceNumber = op;
          },
        ],
        [
          'careContexts[0].referenceNumber',
          (b: any) => {
            b.patient.careContexts[0].referenceNumber = op;
          },
        ],
      ] as const) {
        const res = await init(patch);
        expect(res.status, `${name}=${JSON.stringify(op)}`).toBe(422);
      }
    }
    expect(await links.countDocuments({})).toBe(before);
  });

  it('link init: a care context reference spelled as operator text matches nothing', async () => {
    for (const literal of ['{"$ne":null}', '$where', 'CC-.*', '{"$in":["CC-A"]}']) {
      const res = await cmPost('/v0.5/links/link/init', {
        requestId: uuidv4(),
        transactionId: uuidv4(),
        patient: { id: p1.abhaAddress, referenceNumber: p1.abhaAddress, careContexts: [{ referenceNumber: literal }] },
      });
      expect(res.status, literal).toBe(202);
      expect((await res.json()).status, literal).toBe('ERRORED');
    }
  });

  it('link confirm: linkRefNumber and token as operators → 422 and a pending link stays pending', async () => {
    const init = await cmPost('/v0.5/links/link/init', {
      requestId: uuidv4(),
      transactionId: uuidv4(),
      patient: { id: p1.abhaAddress, referenceNumber: p1.abhaAddress, careContexts: [{ referenceNumber: 'CC-A' }] },
    });
    expect(init.status).toBe(202);
    const { linkRefNumber } = await init.json();
    expect(typeof linkRefNumber).toBe('string');
    const links = t.client
      .db(t.config.MONGODB_DB)
      .collection<{ _id: string; status: string; attempts: number }>('link_requests');
    for (const op of OPS) {
      const a = await cmPost('/v0.5/links/link/confirm', {
        requestId: uuidv4(),
        confirmation: { linkRefNumber: op, token: '123456' },
      });
      expect(a.status, JSON.stringify(op)).toBe(422);
      const b = await cmPost('/v0.5/links/link/confirm', {
        requestId: uuidv4(),
        confirmation: { linkRefNumber, token: op },
      });
      expect(b.status, JSON.stringify(op)).toBe(422);
    }
    const link = await links.findOne({ _id: linkRefNumber });
    expect(link?.status).toBe('PENDING');
    expect(link?.attempts).toBe(0);
    expect(await t.collections.careContexts.countDocuments({ linked: { $exists: true } })).toBe(0);
  });

  it('$-prefixed and dotted top-level members beside a valid body are ignored, not obeyed', async () => {
    const res = await cmPost(
      '/v0.5/links/link/confirm',
      JSON.stringify({
        requestId: uuidv4(),
        $where: 'true',
        'confirmation.linkRefNumber': { $ne: null },
        $set: { status: 'LINKED' },
        confirmation: { linkRefNumber: 'no-such-link', token: '123456' },
      }),
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'ERRORED', reason: 'unknown link reference' });
    expect(await t.collections.careContexts.countDocuments({ linked: { $exists: true } })).toBe(0);
    const revoke = await cmPost('/v0.5/consents/hip/notify', {
      requestId: uuidv4(),
      notification: { consentId: uuidv4(), status: 'REVOKED', $set: { status: 'GRANTED' }, 'history.0': 'x' },
    });
    expect(revoke.status).toBe(202);
    expect((await t.consents.get(consentId))?.status).toBe('GRANTED');
  });
});

describe('ids in paths', () => {
  it('GET /consents/{"$ne":null} is 404 (admin and hiu), never some consent', async () => {
    for (const id of ['{"$ne":null}', '{"$gt":""}', '$where', '{"$regex":".*"}', 'a.b']) {
      for (const as of [
        ['admin', 'ADMIN-1'],
        ['hiu', HIU],
      ] as const) {
        const res = await t.request(`/consents/${encodeURIComponent(id)}`, { as: [as[0], as[1]] });
        expect(res.status, `${as[0]} ${id}`).toBe(404);
        expect((await res.json()).resourceType).toBe('OperationOutcome');
      }
    }
    // The real id still reads.
    expect((await t.request(`/consents/${consentId}`, { as: ['admin', 'ADMIN-1'] })).status).toBe(200);
  });

  it('GET /fhir/AuditEvent with operator values or bracketed names is refused (400)', async () => {
    for (const q of [
      '?patient-abha={"$ne":null}',
      '?patient-abha[$ne]=x',
      `?patient-abha=${p1.abhaAddress}&date[$gt]=2020`,
      `?patient-abha=${p1.abhaAddress}&date={"$gt":""}`,
      '?patient-abha=$where',
    ]) {
      const res = await t.request(`/fhir/AuditEvent${q.replace(/[{}"$[\]]/g, encodeURIComponent)}`, {
        as: ['cm', 'sbx'],
      });
      expect(res.status, q).toBe(400);
    }
  });
});
