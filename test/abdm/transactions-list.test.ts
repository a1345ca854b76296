/**
 * GET /admin/health-information/transactions through createApp on the real database: the transfers newest first,
 * filtered by consent and state, paged, audited, and never with the sender's private key. The transactions are made
 * by HiTransfers.accept (as the health-information request route does), not run: nothing is pushed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { grantConsent } from '../support/consents.js';
import { createTestApp, type TestApp } from '../support/app.js';
import { generateKeyMaterial } from '../../src/abdm/fidelius.js';
import type { HiRequestInput } from '../../src/abdm/transfer.js';

const HIP = 'HIP-TXL';
const HIU = 'HIU-TXL';
const PATH = '/admin/health-information/transactions';

let t: TestApp;
let consentA: string;
let consentB: string;
/** Transaction ids in the order they were made (createdAt ascending). */
const made: string[] = [];

const asAdmin = (path: string) => t.request(path, { as: ['admin', 'ADMIN-TXL'] });
const list = async (path: string) => {
  const res = await asAdmin(path);
  expect(res.status, await res.clone().text()).toBe(200);
  return { text: await res.clone().text(), ...((await res.json()) as { transactions: any[]; next?: string }) };
};
const outcome = async (res: Response, status: number) => {
  expect(res.status, await res.clone().text()).toBe(status);
  const body = await res.json();
  expect(body.resourceType).toBe('OperationOutcome');
  return body;
};

/** Makes a transaction for `consentId` at `at` (refused: FAILED, without key material). */
async function accept(consentId: string, at: string, refusal?: string): Promise<string> {
  const key = generateKeyMaterial();
  const input: HiRequestInput = {
    requestId: uuidv4(),
    transactionId: uuidv4(),
    consentId,
    dateRange: { from: '2020-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' },
    dataPushUrl: 'https://hiu.example.org/data/push',
    keyMaterial: {
      cryptoAlg: 'ECDH',
      curve: 'Curve25519',
      dhPublicKey: { expiry: '2099-01-01T00:00:00Z', keyValue: key.x509PublicKey },
      nonce: key.nonce,
    },
  };
  t.clock.now = new Date(at);
  try {
    const accepted = await t.transfers.accept(input, await t.consents.get(consentId), refusal);
    expect(accepted.outcome).toBe('new');
  } finally {
    t.clock.now = undefined;
  }
  made.push(input.transactionId);
  return input.transactionId;
}

beforeAll(async () => {
  t = await createTestApp();
  const terms = { patient: 'asha.txl@sbx', hip: HIP, hiu: HIU, careContexts: ['CC-TXL'] };
  consentA = (await grantConsent(t, terms)).consentId;
  consentB = (await grantConsent(t, terms)).consentId;
  await accept(consentA, '2024-05-01T10:00:00Z');
  await accept(consentB, '2024-05-01T11:00:00Z', 'requester key material expired');
  await accept(consentA, '2024-05-01T12:00:00Z');
  await accept(consentB, '2024-05-01T13:00:00Z');
  await accept(consentA, '2024-05-01T13:00:00Z'); // the same time: ordered by id
  await accept(consentA, '2024-05-01T14:00:00Z');
  // one finished as a run would finish it: TRANSFERRED, its private key dropped
  await t.transfers.transactions.updateOne(
    { _id: made[2] },
    { $set: { status: 'TRANSFERRED', notified: true }, $unset: { sender: '' } },
  );
});
afterAll(async () => {
  await t?.close();
});

/** The ids newest first, as the list orders them: createdAt, then id, descending. */
const newestFirst = async (ids: string[]) => {
  const docs = await t.transfers.transactions.find({ _id: { $in: ids } }).toArray();
  return docs
    .sort((x, y) => y.createdAt.getTime() - x.createdAt.getTime() || (x._id < y._id ? 1 : x._id > y._id ? -1 : 0))
    .map((d) => d._id);
};

describe('GET /admin/health-information/transactions', () => {
  it('lists every transfer newest first, each as the by-id route answers it', async () => {
    const { transactions, next } = await list(PATH);
    expect(next).toBeUndefined();
    expect(transactions.map((tx) => tx.transactionId)).toEqual(await newestFirst(made));
    expect(transactions[0].transactionId).toBe(made[5]);
    for (const tx of transactions) {
      const one = await asAdmin(`${PATH}/${tx.transactionId}`);
      expect(one.status).toBe(200);
      expect(tx).toEqual(await one.json());
      expect(tx).toMatchObject({
        consentId: expect.any(String),
        status: expect.any(String),
        createdAt: expect.any(String),
      });
      expect(tx._id).toBeUndefined();
    }
  });

  it('never answers the sender’s key material (by id or in the list), though the store holds it while it runs', async () => {
    const running = await t.transfers.transactions.find({ sender: { $exists: true } }).toArray();
    expect(running.length).toBe(4);
    const { text, transactions } = await list(PATH);
    for (const tx of transactions) expect(tx.sender).toBeUndefined();
    expect(text).not.toMatch(/privateKey|"sender"/);
    for (const doc of running) {
      expect(text).not.toContain(doc.sender!.privateKey);
      const one = await (await asAdmin(`${PATH}/${doc._id}`)).text();
      expect(one).not.toContain(doc.sender!.privateKey);
      expect(one).not.toMatch(/privateKey|"sender"/);
    }
    // describe() and list() themselves never read it
    expect(await t.transfers.describe(running[0]._id)).not.toHaveProperty('sender');
    for (const tx of (await t.transfers.list({ count: 100 })).transactions) expect(tx).not.toHaveProperty('sender');
  });

  it('filters by consentId and by status (repeated or comma list)', async () => {
    const ofA = (await list(`${PATH}?consentId=${consentA}`)).transactions;
    expect(ofA.map((tx) => tx.transactionId)).toEqual(await newestFirst([made[0], made[2], made[4], made[5]]));
    expect(ofA.every((tx) => tx.consentId === consentA)).toBe(true);
    expect((await list(`${PATH}?consentId=${uuidv4()}`)).transactions).toEqual([]);
    const failed = (await list(`${PATH}?status=FAILED`)).transactions;
    expect(failed.map((tx) => [tx.transactionId, tx.error])).toEqual([[made[1], 'requester key material expired']]);
    for (const q of ['status=FAILED,TRANSFERRED', 'status=FAILED&status=TRANSFERRED']) {
      const ended = (await list(`${PATH}?${q}`)).transactions.map((tx) => tx.transactionId);
      expect(ended, q).toEqual([made[2], made[1]]);
    }
    const bAcked = (await list(`${PATH}?consentId=${consentB}&status=ACKNOWLEDGED`)).transactions;
    expect(bAcked.map((tx) => tx.transactionId)).toEqual([made[3]]);
  });

  it('pages with _count and _cursor: every transfer once, in order', async () => {
    const seen: string[] = [];
    let pages = 0;
    for (let path: string | undefined = `${PATH}?_count=2`; path; pages++) {
      const page = await list(path);
      expect(page.transactions.length).toBeLessThanOrEqual(2);
      seen.push(...page.transactions.map((tx) => tx.transactionId));
      path = page.next ? `${PATH}?_count=2&_cursor=${page.next}` : undefined;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(await newestFirst(made));
    const ofA: string[] = [];
    for (let path: string | undefined = `${PATH}?consentId=${consentA}&_count=1`; path;) {
      const page = await list(path);
      ofA.push(...page.transactions.map((tx) => tx.transactionId));
      path = page.next ? `${PATH}?consentId=${consentA}&_count=1&_cursor=${page.next}` : undefined;
    }
    expect(ofA).toEqual(await newestFirst([made[0], made[2], made[4], made[5]]));
  });

  it('answers 400 OperationOutcome to a bad cursor, status, _count, consentId or parameter', async () => {
    for (const q of [
      '_cursor=not-a-cursor',
      `_cursor=${Buffer.from(JSON.stringify({ at: 1, id: 'x' })).toString('base64url')}`,
      'status=DONE',
      'status=FAILED,',
      '_count=0',
      '_count=x',
      'consentId=',
      `consentId=${'x'.repeat(129)}`,
      `consentId=${consentA}&consentId=${consentB}`,
      'transactionId=x',
    ]) {
      const body = await outcome(await asAdmin(`${PATH}?${q}`), 400);
      expect(body.issue[0].code, q).toBe('invalid');
    }
  });

  it('is for admin only: hip, hiu and cm get 403, no token 401', async () => {
    for (const as of [
      ['hip', HIP],
      ['hiu', HIU],
      ['cm', 'sbx'],
    ] as const)
      await outcome(await t.request(PATH, { as: [as[0], as[1]] }), 403);
    await outcome(await t.request(PATH), 401);
  });

  it('audits each answer once, naming the consent filtered on', async () => {
    const res = await asAdmin(`${PATH}?consentId=${consentA}&_count=2`);
    expect(res.status).toBe(200);
    const events = await t.audit.events.find({ requestId: res.headers.get('x-request-id')! }).toArray();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: 'health-information.search',
      outcome: 'success',
      status: 200,
      actor: { role: 'admin', facility: 'ADMIN-TXL' },
      consentId: consentA,
    });
    const all = await asAdmin(PATH);
    const [event] = await t.audit.events.find({ requestId: all.headers.get('x-request-id')! }).toArray();
    expect(event).toMatchObject({ action: 'health-information.search', consentId: null });
  });
});
