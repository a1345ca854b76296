/**
 * Combined inserts (src/db/batcher.ts) on the real test database: concurrent
 * inserts travel as few insertMany commands, each caller learns its own
 * document's fate (a taken _id is that caller's duplicate-key error, the rest
 * of the batch is stored), and a lone insert is stored at once.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MongoClient, type Collection, type Db } from 'mongodb';
import { InsertBatcher, UpdateBatcher } from '../../src/db/batcher.js';
import { asUnavailable, isDuplicateKey } from '../../src/db/mongo.js';
import type { FhirError } from '../../src/fhir/outcome.js';

interface Doc {
  _id: string;
  n: number;
}
let client: MongoClient;
let db: Db;
let docs: Collection<Doc>;
const inserts: number[] = []; // documents per insert command
const updates: number[] = []; // statements per update command
let seq = 0;

beforeAll(async () => {
  client = new MongoClient(inject('mongoUri'), { serverSelectionTimeoutMS: 2000, monitorCommands: true });
  client.on('commandStarted', (e) => {
    if (e.commandName === 'insert') inserts.push((e.command.documents as unknown[]).length);
    if (e.commandName === 'update') updates.push((e.command.updates as unknown[]).length);
  });
  await client.connect();
  db = client.db(`batcher_${process.pid}_${Date.now().toString(36)}`);
  docs = db.collection<Doc>('docs');
});
afterAll(async () => {
  await db?.dropDatabase();
  await client?.close();
});

describe('InsertBatcher', () => {
  it('combines concurrent inserts into few commands, and stores every document', async () => {
    const b = new InsertBatcher(docs, 50);
    inserts.length = 0;
    const ids = Array.from({ length: 120 }, () => `c-${seq++}`);
    await Promise.all(ids.map((_id, n) => b.insert({ _id, n })));
    expect(await docs.countDocuments({ _id: { $in: ids } })).toBe(120);
    expect(inserts.reduce((a, x) => a + x, 0)).toBe(120);
    expect(inserts.length).toBeLessThanOrEqual(4); // 50 + 50 + 20 at most, plus the first turn's
    expect(Math.max(...inserts)).toBeLessThanOrEqual(50);
  });

  it('rejects only the taken ids, each with its duplicate-key error, and stores the rest of the batch', async () => {
    const b = new InsertBatcher(docs);
    const taken = `t-${seq++}`;
    await docs.insertOne({ _id: taken, n: 0 });
    const fresh = [`f-${seq++}`, `f-${seq++}`];
    const results = await Promise.allSettled([
      b.insert({ _id: fresh[0], n: 1 }),
      b.insert({ _id: taken, n: 2 }),
      b.insert({ _id: fresh[1], n: 3 }),
      b.insert({ _id: fresh[1], n: 4 }), // the same id twice in one batch: the second loses
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    for (const r of results) if (r.status === 'rejected') expect(isDuplicateKey(r.reason)).toBe(true);
    expect((await docs.findOne({ _id: taken }))?.n).toBe(0);
    expect((await docs.findOne({ _id: fresh[1] }))?.n).toBe(3);
  });

  it('stores a lone insert in one command of one document', async () => {
    const b = new InsertBatcher(docs);
    inserts.length = 0;
    await b.insert({ _id: `l-${seq++}`, n: 1 });
    expect(inserts).toEqual([1]);
  });

  it('fails each caller with the error insertOne gives it when the database is gone', async () => {
    const gone = new MongoClient('mongodb://127.0.0.1:9/', { serverSelectionTimeoutMS: 300 });
    const b = new InsertBatcher(gone.db('x').collection<Doc>('docs'));
    const results = await Promise.allSettled([b.insert({ _id: 'a', n: 1 }), b.insert({ _id: 'b', n: 2 })]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    // each caller's own connectivity error, which the app answers as 503
    for (const r of results)
      if (r.status === 'rejected') expect((asUnavailable(r.reason) as FhirError).status).toBe(503);
    await gone.close();
  });
});

describe('UpdateBatcher', () => {
  it('combines concurrent updates into few commands, in the order given for one document', async () => {
    const b = new UpdateBatcher<Doc & { f?: Record<string, number> }>(docs as never);
    updates.length = 0;
    const ids = Array.from({ length: 30 }, () => `u-${seq++}`);
    await Promise.all(
      ids.flatMap((id, i) => [
        b.update(id, { $set: { n: i, 'f.a': 1 } }, { upsert: true }),
        b.update(id, { $set: { 'f.b': 2, n: i + 1000 } }, { upsert: true }),
      ]),
    );
    const stored = await docs.find({ _id: { $in: ids } }).toArray();
    expect(stored).toHaveLength(30);
    for (const d of stored as any[]) {
      expect(d.f).toEqual({ a: 1, b: 2 });
      expect(d.n).toBe(ids.indexOf(d._id) + 1000); // the second update of each document landed last
    }
    expect(updates.reduce((a, x) => a + x, 0)).toBe(60);
    expect(updates.length).toBeLessThanOrEqual(3);
  });

  it('gives a failing update its own error and applies the others', async () => {
    const b = new UpdateBatcher<Doc>(docs);
    const id = `x-${seq++}`;
    await docs.insertOne({ _id: id, n: 1 });
    const results = await Promise.allSettled([
      b.update(id, { $set: { n: 2 } }),
      b.update(id, { $inc: { n: 'not a number' as never } }), // the server refuses it
      b.update(id, { $set: { n: 3 } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((await docs.findOne({ _id: id }))?.n).toBe(3);
  });
});
