/**
 * Consents read back through createApp on the real database: GET /consents (a viewer's own, or all for admin,
 * filtered and paged) and GET /consents/{id} of an ended consent; each answer's effectiveStatus and usage (what is
 * left of the frequency, read without counting a pull); and the care context on each search entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { grantConsent, notifyConsent } from '../support/consents.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';
import { CARE_CONTEXT_EXTENSION_URL, RECORD_TYPE_EXTENSION_URL } from '../../src/records/render.js';
import { keysetCursor } from '../../src/http/keyset.js';

const HIP = 'HIP-LIST';
const HIU_A = 'HIU-LIST-A';
const HIU_B = 'HIU-LIST-B';

let t: TestApp;
const g = createGenerator(2718);
let patient: SyntheticPatient;
let other: SyntheticPatient;
/** Consent ids by name. */
const ids: Record<string, string> = {};

const asA = (path: string) => t.request(path, { as: ['hiu', HIU_A] });
const asAdmin = (path: string) => t.request(path, { as: ['admin', 'ADMIN-LIST'] });
const list = async (path: string, send = asAdmin) => {
  const res = await send(path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { consents: any[]; next?: string };
};
/** Every consent a list gives, following `next` from `path` to the end. */
const walk = async (path: string, send = asAdmin) => {
  const seen: any[] = [];
  let pages = 0;
  for (let next: string | undefined = path; next; pages++) {
    const page = await list(next, send);
    seen.push(...page.consents);
    const sep = path.includes('?') ? '&' : '?';
    next = page.next ? `${path}${sep}_cursor=${page.next}` : undefined;
  }
  return { seen, pages };
};
const revoke = async (consentId: string) =>
  expect((await notifyConsent(t, { consentId, status: 'REVOKED' })).status).toBe(202);
const grant = async (name: string, terms: Partial<Parameters<typeof grantConsent>[1]> = {}) => {
  const { consentId, res } = await grantConsent(t, {
    patient: patient.abhaAddress,
    hip: HIP,
    hiu: HIU_A,
    careContexts: ['CC-LIST-1'],
    ...terms,
  });
  expect(res.status).toBe(202);
  ids[name] = consentId;
  return consentId;
};
const outcome = async (res: Response, status: number) => {
  expect(res.status, await res.clone().text()).toBe(status);
  const body = await res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  return body;
};
/** The audit events a response left, found by its X-Request-Id. */
const eventsOf = (res: Response) => t.audit.events.find({ requestId: res.headers.get('x-request-id')! }).toArray();

beforeAll(async () => {
  t = await createTestApp();
  patient = g.patient();
  other = g.patient();
  const rec = g.record(patient, 'Prescription', {
    date: '2024-03-01T10:00:00+05:30',
    careContext: { referenceNumber: 'CC-LIST-1', display: 'OPD visit, 1 March' },
  });
  await t.upload(HIP, rec.bundle, 'CC-LIST-1', 'OPD visit, 1 March');
  await grant('live', { frequency: { unit: 'HOUR', value: 5 } });
  await grant('revoked');
  await revoke(ids.revoked);
  await grant('otherPatient', { patient: other.abhaNumber });
  await grant('ofB', { hiu: HIU_B });
  await grant('revokedOfB', { hiu: HIU_B });
  await revoke(ids.revokedOfB);
  for (let i = 0; i < 5; i++) await grant(`more${i}`);
  ids.deniedFirst = uuidv4(); // ended before any grant: no HIU known, so no viewer's
  expect((await notifyConsent(t, { consentId: ids.deniedFirst, status: 'DENIED' })).status).toBe(202);
});
afterAll(async () => {
  await t?.close();
});

const OWN_A = () => [ids.live, ids.revoked, ids.otherPatient, ...[0, 1, 2, 3, 4].map((i) => ids[`more${i}`])];

describe('GET /consents', () => {
  it('a hiu sees only the consents granted to it, ended ones included, newest status first', async () => {
    const { consents } = await list('/consents?_count=100', asA);
    expect(consents.map((c) => c.id).sort()).toEqual(OWN_A().sort());
    for (const c of consents) expect(c.hiu).toBe(HIU_A);
    expect(consents.map((c) => c.id)).not.toContain(ids.ofB);
    const order = consents.map((c) => [new Date(c.statusAt).getTime(), c.id] as const);
    const sorted = [...order].sort((x, y) => y[0] - x[0] || (x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0));
    expect(order).toEqual(sorted);
    // the other viewer sees its own two, never A's
    const b = await list('/consents', (p) => t.request(p, { as: ['hiu', HIU_B] }));
    expect(b.consents.map((c) => c.id).sort()).toEqual([ids.ofB, ids.revokedOfB].sort());
    // a viewer with none sees none
    expect((await list('/consents', (p) => t.request(p, { as: ['hiu', 'HIU-NONE'] }))).consents).toEqual([]);
  });

  it('admin sees all, and filters by status (repeated or comma list) and by patient (number or address)', async () => {
    const all = (await list('/consents?_count=100')).consents.map((c) => c.id);
    expect(all.sort()).toEqual(Object.values(ids).sort());
    const revoked = (await list('/consents?status=REVOKED')).consents.map((c) => c.id);
    expect(revoked.sort()).toEqual([ids.revoked, ids.revokedOfB].sort());
    for (const q of ['status=REVOKED,DENIED', 'status=REVOKED&status=DENIED', 'status=DENIED,REVOKED,DENIED']) {
      const ended = (await list(`/consents?${q}`)).consents.map((c) => c.id);
      expect(ended.sort(), q).toEqual([ids.revoked, ids.revokedOfB, ids.deniedFirst].sort());
    }
    const ofOther = (await list(`/consents?patient=${other.abhaNumber.replace(/-/g, '')}`)).consents;
    expect(ofOther.map((c) => c.id)).toEqual([ids.otherPatient]);
    const byAddress = await list(`/consents?patient=${encodeURIComponent(patient.abhaAddress.toUpperCase())}`);
    expect(byAddress.consents.map((c) => c.id).sort()).toEqual(
      Object.entries(ids)
        .filter(([name]) => name !== 'otherPatient' && name !== 'deniedFirst')
        .map(([, id]) => id)
        .sort(),
    );
    const liveOfPatient = await list(`/consents?patient=${encodeURIComponent(patient.abhaAddress)}&status=GRANTED`);
    expect(liveOfPatient.consents.every((c) => c.status === 'GRANTED')).toBe(true);
    expect(liveOfPatient.consents.map((c) => c.id)).not.toContain(ids.revoked);
  });

  it('answers each consent as GET /consents/{id} does', async () => {
    const { consents } = await list('/consents?_count=100');
    for (const id of [ids.live, ids.revoked, ids.deniedFirst]) {
      const one = await (await asAdmin(`/consents/${id}`)).json();
      expect(consents.find((c) => c.id === id)).toEqual(one);
    }
  });

  it('pages with _cursor: every consent once, for admin and for a hiu', async () => {
    const admin = await walk('/consents?_count=3');
    expect(admin.seen.map((c) => c.id).sort()).toEqual(Object.values(ids).sort());
    expect(new Set(admin.seen.map((c) => c.id)).size).toBe(admin.seen.length);
    expect(admin.pages).toBe(Math.ceil(Object.keys(ids).length / 3));
    const viewer = await walk('/consents?_count=1', asA);
    expect(viewer.seen.map((c) => c.id).sort()).toEqual(OWN_A().sort());
    expect(viewer.pages).toBe(OWN_A().length);
    const filtered = await walk('/consents?status=GRANTED&_count=2');
    expect(filtered.seen.every((c) => c.status === 'GRANTED')).toBe(true);
    expect(filtered.seen).toHaveLength(Object.keys(ids).length - 3);
    // a cursor says where to continue, not what may be seen: a viewer's walk stays within its own consents
    const b = await list(`/consents?_cursor=${keysetCursor({ at: new Date('2999-01-01'), id: 'z' })}`, (p) =>
      t.request(p, { as: ['hiu', HIU_B] }),
    );
    expect(b.consents.map((c) => c.id).sort()).toEqual([ids.ofB, ids.revokedOfB].sort());
  });

  it('answers 400 OperationOutcome to a bad cursor, status, _count or parameter', async () => {
    const json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const q of [
      '_cursor=garbage!',
      '_cursor=',
      `_cursor=${json({ at: 'yesterday', id: 'x' })}`,
      `_cursor=${json({ at: '2024-01-01T00:00:00.000Z' })}`,
      `_cursor=${json({ at: '2024-01-01T00:00:00.000Z', id: 'x', more: 1 })}`,
      `_cursor=${json(['2024-01-01T00:00:00.000Z', 'x'])}`,
      `_cursor=${Buffer.from('{not json').toString('base64url')}`,
      'status=ACTIVE',
      'status=granted',
      'status=GRANTED,',
      '_count=0',
      '_count=-1',
      '_count=ten',
      '_count=1.5',
      '_count=5&_count=6',
      'patient=',
      'hiu=HIU-LIST-B',
      '_sort=status',
    ]) {
      const body = await outcome(await asAdmin(`/consents?${q}`), 400);
      expect(body.issue[0].code, q).toBe('invalid');
    }
    // _count past the most is served as the most
    expect((await asAdmin('/consents?_count=1000')).status).toBe(200);
  });

  it('a hiu may not filter by patient (403); cm and hip are refused (403), no token 401', async () => {
    await outcome(await asA(`/consents?patient=${encodeURIComponent(patient.abhaAddress)}`), 403);
    await outcome(await t.request('/consents', { as: ['cm', 'sbx'] }), 403);
    await outcome(await t.request('/consents', { as: ['hip', HIP] }), 403);
    const anonymous = await t.request('/consents');
    await outcome(anonymous, 401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('audits each list answer once, and each refusal', async () => {
    const res = await asA('/consents?status=GRANTED&_count=2');
    expect(res.status).toBe(200);
    const events = await eventsOf(res);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: 'consent.search',
      outcome: 'success',
      status: 200,
      actor: { role: 'hiu', facility: HIU_A, subject: `hiu:${HIU_A}` },
      consentId: null,
      requestId: res.headers.get('x-request-id'),
    });
    // the listed consents' patient, so that the patient's access history shows the listing
    const listed = (await res.json()).consents as { patient: string | null }[];
    expect(listed.length).toBeGreaterThan(0);
    expect(events[0].patients).toEqual([...new Set(listed.map((x) => x.patient).filter(Boolean))]);
    expect(events[0].patients).toEqual([patient.abhaAddress.toLowerCase()]);
    const refused = await t.request('/consents', { as: ['hip', HIP] });
    expect(await eventsOf(refused)).toMatchObject([{ action: 'consent.search', outcome: 'refused', status: 403 }]);
    const rejected = await asAdmin('/consents?_cursor=nope!');
    expect(await eventsOf(rejected)).toMatchObject([{ action: 'consent.search', outcome: 'rejected', status: 400 }]);
  });
});

describe('GET /consents/{id} of an ended consent', () => {
  it('its own hiu reads its status and history (no terms); another hiu gets 403', async () => {
    const res = await asA(`/consents/${ids.revoked}`);
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({ id: ids.revoked, status: 'REVOKED', effectiveStatus: 'REVOKED', hiu: HIU_A });
    expect(body.history.map((h: any) => h.status)).toEqual(['GRANTED', 'REVOKED']);
    expect(body.statusAt).toBe(body.history[1].at);
    expect(body.terms).toBeUndefined();
    expect(body.artefact).toBeUndefined();
    expect(body.usage).toBeUndefined();
    await outcome(await t.request(`/consents/${ids.revoked}`, { as: ['hiu', HIU_B] }), 403);
    // a consent ended before any grant names no HIU: admin only
    await outcome(await asA(`/consents/${ids.deniedFirst}`), 403);
    expect((await asAdmin(`/consents/${ids.deniedFirst}`)).status).toBe(200);
  });

  it('a consent stored before the HIU was kept top-level is still its HIU’s (from its terms)', async () => {
    const id = await grant('legacy');
    await t.consents.consents.updateOne({ _id: id }, { $unset: { hiu: '' } });
    expect((await t.consents.get(id))!.hiu).toBeUndefined();
    const res = await asA(`/consents/${id}`);
    expect(res.status).toBe(200);
    expect((await res.json()).hiu).toBe(HIU_A);
    expect((await list('/consents?_count=100', asA)).consents.map((c) => c.id)).toContain(id);
    await outcome(await t.request(`/consents/${id}`, { as: ['hiu', HIU_B] }), 403);
    expect((await list('/consents?_count=100', (p) => t.request(p, { as: ['hiu', HIU_B] }))).consents).toHaveLength(2);
    // Revoked, it keeps its HIU (taken from the terms as they are erased): still its HIU's to see, ended.
    expect((await notifyConsent(t, { consentId: id, status: 'REVOKED' })).status).toBe(202);
    const ended = await asA(`/consents/${id}`);
    expect(ended.status).toBe(200);
    expect(await ended.json()).toMatchObject({ status: 'REVOKED', hiu: HIU_A });
    expect((await t.consents.get(id))!.terms).toBeUndefined();
    expect((await list('/consents?status=REVOKED&_count=100', asA)).consents.map((c) => c.id)).toContain(id);
  });
});

describe('usage and effectiveStatus', () => {
  const search = () =>
    t.request(`/fhir/Bundle?patient-abha=${encodeURIComponent(patient.abhaAddress)}`, {
      headers: { 'X-Consent-Id': ids.live },
      as: ['hiu', HIU_A],
    });
  const usageOf = async () => {
    const res = await asA(`/consents/${ids.live}`);
    expect(res.status).toBe(200);
    return (await res.json()).usage;
  };

  it('shows what is left of the frequency; a search under the consent uses one, reading the consent none', async () => {
    const before = await usageOf();
    expect(before).toMatchObject({ unit: 'HOUR', value: 5, used: 0, remaining: 5 });
    const start = new Date(before.windowStart);
    expect(start.getUTCMinutes()).toBe(0);
    expect(new Date(before.windowEnd).getTime() - start.getTime()).toBe(3600_000);
    expect(Date.now()).toBeGreaterThanOrEqual(start.getTime());

    const res = await search();
    expect(res.status, await res.clone().text()).toBe(200);
    // the search's entries name the care context (and its display) each record belongs to
    const bundle = await res.json();
    expect(bundle.entry).toHaveLength(1);
    expect(bundle.entry[0].extension).toEqual([
      { url: CARE_CONTEXT_EXTENSION_URL, valueCoding: { code: 'CC-LIST-1', display: 'OPD visit, 1 March' } },
      { url: RECORD_TYPE_EXTENSION_URL, valueCode: 'Prescription' },
    ]);

    expect(await usageOf()).toMatchObject({ used: 1, remaining: 4, windowStart: before.windowStart });
    // reading it (by id, or in a list, as admin or as the hiu) counts nothing
    await asAdmin(`/consents/${ids.live}`);
    await list('/consents', asA);
    await list('/consents');
    expect(await usageOf()).toMatchObject({ used: 1, remaining: 4 });
    const inList = (await list('/consents?_count=100', asA)).consents.find((c) => c.id === ids.live);
    expect(inList.usage).toMatchObject({ used: 1, remaining: 4 });
    // past the limit: used stops at value, remaining at 0
    for (let i = 0; i < 5; i++) await search();
    expect(await usageOf()).toMatchObject({ used: 5, remaining: 0 });
  });

  it('effectiveStatus is EXPIRED for a consent still GRANTED whose dataEraseAt has come (sweep not yet run)', async () => {
    const id = await grant('lapsed');
    const live = await (await asA(`/consents/${id}`)).json();
    expect(live).toMatchObject({ status: 'GRANTED', effectiveStatus: 'GRANTED' });
    expect(live.usage).toMatchObject({ used: 0, remaining: 100 });
    await t.consents.consents.updateOne({ _id: id }, { $set: { 'terms.dataEraseAt': new Date(Date.now() - 1000) } });
    const lapsed = await (await asA(`/consents/${id}`)).json();
    expect(lapsed).toMatchObject({ status: 'GRANTED', effectiveStatus: 'EXPIRED' });
    const inList = (await list('/consents?_count=100')).consents.find((c) => c.id === id);
    expect(inList.effectiveStatus).toBe('EXPIRED');
    await t.consents.sweep(new Date());
    expect(await (await asA(`/consents/${id}`)).json()).toMatchObject({
      status: 'EXPIRED',
      effectiveStatus: 'EXPIRED',
    });
  });
});
