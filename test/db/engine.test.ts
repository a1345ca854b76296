/**
 * The engine statement and its write helpers (src/db/engine.ts) on the real
 * test database: what is detected, what a guarded write does when its
 * condition holds and when it does not, with upsert, and that concurrent
 * guarded writes through one engine never pass a condition twice (on
 * FerretDB through the engine's per-document locks; on MongoDB through the
 * server's atomic conditional update).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MongoClient, type Collection, type Db } from 'mongodb';
import {
  detectEngine,
  engineOf,
  guardedFindOneAndUpdate,
  guardedUpdate,
  matchesCondition,
  UnsupportedConditionError,
  type Engine,
} from '../../src/db/engine.js';

interface Doc {
  _id: string;
  n?: number;
  status?: string;
  entries?: Record<string, { version: number }>;
  at?: Date;
  tags?: string[];
}

let client: MongoClient;
let db: Db;
let engine: Engine;
let docs: Collection<Doc>;
let seq = 0;
const fresh = () => `doc-${Date.now().toString(36)}-${seq++}`;

beforeAll(async () => {
  client = new MongoClient(inject('mongoUri'), { serverSelectionTimeoutMS: 2000 });
  await client.connect();
  db = client.db(`engine_${process.pid}_${Date.now().toString(36)}`);
  engine = await detectEngine(db);
  docs = db.collection<Doc>('guarded');
});
afterAll(async () => {
  await db?.dropDatabase().catch(() => {});
  await client?.close();
});

describe('detectEngine', () => {
  it('names the engine and what it guarantees, consistently', () => {
    const kind = inject('databaseKind');
    if (kind === 'embedded FerretDB') expect(engine.kind).toBe('ferretdb');
    if (kind.startsWith('testcontainers')) expect(engine.kind).toBe('mongodb');
    if (engine.kind === 'ferretdb') {
      expect(engine).toMatchObject({
        atomicConditionalWrites: false,
        transactions: false,
        changeStreams: false,
        multiProcess: false,
      });
    } else {
      expect(engine).toMatchObject({ atomicConditionalWrites: true, multiProcess: true });
      expect(engine.changeStreams).toBe(engine.transactions); // both from hello: replica set or mongos
    }
  });

  it('engineOf: transactions and change streams only for a clustered MongoDB', () => {
    expect(engineOf('mongodb')).toMatchObject({ transactions: false, changeStreams: false, multiProcess: true });
    expect(engineOf('mongodb', true)).toMatchObject({ transactions: true, changeStreams: true });
    expect(engineOf('ferretdb', true)).toMatchObject({
      transactions: false,
      multiProcess: false,
      atomicConditionalWrites: false,
    });
  });
});

describe('guardedUpdate', () => {
  it('applies the update when the condition holds, and not when it does not', async () => {
    const id = fresh();
    await docs.insertOne({ _id: id, n: 1, status: 'PENDING' });
    expect(await guardedUpdate(engine, docs, id, { status: 'PENDING' }, { $set: { n: 2 } })).toBe(true);
    expect(await guardedUpdate(engine, docs, id, { status: 'LINKED' }, { $set: { n: 3 } })).toBe(false);
    expect(await guardedUpdate(engine, docs, id, { n: { $lt: 2 } }, { $set: { n: 4 } })).toBe(false);
    expect((await docs.findOne({ _id: id }))!.n).toBe(2);
  });

  it('without upsert, a missing document is not created', async () => {
    const id = fresh();
    expect(await guardedUpdate(engine, docs, id, {}, { $set: { n: 1 } })).toBe(false);
    expect(await docs.findOne({ _id: id })).toBeNull();
  });

  it('with upsert, creates a missing document, and an existing one failing the condition is left alone (no second document)', async () => {
    const id = fresh();
    const older = (v: number) => ({ $or: [{ 'entries.r': { $exists: false } }, { 'entries.r.version': { $lt: v } }] });
    expect(
      await guardedUpdate(engine, docs, id, older(3), { $set: { 'entries.r': { version: 3 } } }, { upsert: true }),
    ).toBe(true);
    expect(
      await guardedUpdate(engine, docs, id, older(2), { $set: { 'entries.r': { version: 2 } } }, { upsert: true }),
    ).toBe(false);
    expect(
      await guardedUpdate(engine, docs, id, older(4), { $set: { 'entries.r': { version: 4 } } }, { upsert: true }),
    ).toBe(true);
    expect(await docs.find({ _id: id }).toArray()).toEqual([{ _id: id, entries: { r: { version: 4 } } }]);
  });

  it('concurrent guarded increments under a limit stop at the limit', async () => {
    const id = fresh();
    await docs.insertOne({ _id: id, n: 0 });
    const results = await Promise.all(
      Array.from({ length: 20 }, () => guardedUpdate(engine, docs, id, { n: { $lt: 5 } }, { $inc: { n: 1 } })),
    );
    expect(results.filter(Boolean)).toHaveLength(5);
    expect((await docs.findOne({ _id: id }))!.n).toBe(5);
  });

  it('concurrent moves of a version keep the newest, whatever the order', async () => {
    const id = fresh();
    const versions = Array.from({ length: 12 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
    await Promise.all(
      versions.map((v) =>
        guardedUpdate(
          engine,
          docs,
          id,
          { $or: [{ 'entries.r': { $exists: false } }, { 'entries.r.version': { $lt: v } }] },
          { $set: { 'entries.r': { version: v } } },
          { upsert: true },
        ),
      ),
    );
    expect((await docs.findOne({ _id: id }))!.entries).toEqual({ r: { version: 12 } });
  });

  it('unconditional writes of one document through the helpers are never lost ($addToSet, $inc)', async () => {
    const id = fresh();
    await docs.insertOne({ _id: id, n: 0, tags: [] });
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        Promise.all([
          guardedUpdate(engine, docs, id, {}, { $addToSet: { tags: `t${i}` } }),
          guardedUpdate(engine, docs, id, {}, { $inc: { n: 1 } }),
        ]),
      ),
    );
    const doc = (await docs.findOne({ _id: id }))!;
    expect(doc.n).toBe(10);
    expect([...doc.tags!].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`).sort());
  });

  it('conditions on dates compare as MongoDB does', async () => {
    const id = fresh();
    const at = new Date('2025-01-01T00:00:00Z');
    await docs.insertOne({ _id: id, at });
    expect(
      await guardedUpdate(engine, docs, id, { at: { $lte: new Date('2024-12-31T00:00:00Z') } }, { $set: { n: 1 } }),
    ).toBe(false);
    expect(await guardedUpdate(engine, docs, id, { at: { $lte: at } }, { $set: { n: 2 } })).toBe(true);
    expect((await docs.findOne({ _id: id }))!.n).toBe(2);
  });
});

describe('guardedFindOneAndUpdate', () => {
  it('returns the document as the update left it, or null when the condition failed', async () => {
    const id = fresh();
    await docs.insertOne({ _id: id, n: 2, status: 'PENDING' });
    expect(
      await guardedFindOneAndUpdate(engine, docs, id, { status: 'PENDING', n: { $lt: 3 } }, { $inc: { n: 1 } }),
    ).toEqual({ _id: id, n: 3, status: 'PENDING' });
    expect(
      await guardedFindOneAndUpdate(engine, docs, id, { status: 'PENDING', n: { $lt: 3 } }, { $inc: { n: 1 } }),
    ).toBeNull();
    expect((await docs.findOne({ _id: id }))!.n).toBe(3);
  });
});

describe('matchesCondition (the in-memory check of the FerretDB path)', () => {
  const doc = {
    _id: 'x',
    status: 'PENDING',
    attempts: 2,
    lease: { owner: 'p1', until: new Date(1000) },
    entries: { r: { version: 3 } },
  };
  it('has MongoDB meaning for the operators the stores use', () => {
    expect(matchesCondition(doc, {})).toBe(true);
    expect(matchesCondition(doc, { status: 'PENDING', attempts: { $lt: 3 } })).toBe(true);
    expect(matchesCondition(doc, { attempts: { $lt: 2 } })).toBe(false);
    expect(matchesCondition(doc, { 'lease.owner': 'p1' })).toBe(true);
    expect(matchesCondition(doc, { 'lease.until': { $lte: new Date(999) } })).toBe(false);
    expect(
      matchesCondition(doc, { $or: [{ lease: { $exists: false } }, { 'lease.until': { $lte: new Date(1000) } }] }),
    ).toBe(true);
    expect(matchesCondition(doc, { 'entries.s': { $exists: false } })).toBe(true);
    expect(matchesCondition(doc, { 'entries.r.version': { $lt: 3 } })).toBe(false);
    expect(matchesCondition(doc, { 'entries.s.version': { $lt: 3 } })).toBe(false); // a missing field compares with nothing
    expect(matchesCondition(doc, { status: { $in: ['LINKED', 'PENDING'] }, attempts: { $ne: 3 } })).toBe(true);
    expect(matchesCondition(doc, { missing: null })).toBe(true);
    expect(matchesCondition(doc, { attempts: '2' })).toBe(false); // types do not mix
  });
  it('refuses an operator it does not know, rather than guess', () => {
    expect(() => matchesCondition(doc, { status: { $regex: 'P' } })).toThrow(UnsupportedConditionError);
    expect(() => matchesCondition(doc, { $where: 'true' })).toThrow(UnsupportedConditionError);
  });
});
