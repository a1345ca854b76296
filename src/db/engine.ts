/* eslint-disable @stylistic/max-len -- the guarantees table below is read as a table: its rows stay whole */
/**
 * What the database engine guarantees, and the few write helpers every store
 * uses so that none of them has an engine branch of its own.
 *
 * Detected once at connect (detectEngine), from `buildInfo` and `hello`:
 *
 * | Guarantee                              | MongoDB                         | FerretDB 1.24 (SQLite; the embedded default) |
 * | -------------------------------------- | ------------------------------- | -------------------------------------------- |
 * | single-document write is atomic        | yes                             | yes (one SQLite statement)                   |
 * | unique index (incl. `_id`) holds       | yes, across processes           | yes, across connections                      |
 * | conditional update (`{_id, cond}`)     | atomic, across processes        | a read then a write: NOT atomic; a condition beyond `_id` also scans the collection |
 * | concurrent updates of one document     | serialised by the server        | may lose one (read-modify-write of the document) |
 * | secondary indexes serve queries        | yes (planned)                   | no: only `_id` equality is pushed down, so they only slow writes; the store makes none there but unique ones |
 * | multi-document transactions            | replica set / sharded only      | no                                            |
 * | change streams                         | replica set / sharded only      | no                                            |
 * | several server processes on one store  | yes                             | no: one process (DATA_DIR lock, db/embedded.ts) |
 *
 * What the store relies on, and nothing more:
 *
 * 1. Unique indexes: the commit point of a record version, the record id of
 *    an identifier, content addressing and first inserts (an E11000 means
 *    "someone else did it first").
 * 2. Guarded writes (`guardedUpdate`, `guardedFindOneAndUpdate` below): "apply
 *    this update to document `_id` only if it still satisfies `condition`".
 *    On MongoDB that is one `updateOne({_id, ...condition})`, atomic across
 *    every process sharing the database. On FerretDB the same decision is
 *    made under this process's per-document lock (`engine.locks`, keyed by
 *    collection and `_id`): read by `_id`, check the condition in memory,
 *    write by `_id`. That is only correct because FerretDB serves one
 *    process, and only if every write of that document in the process goes
 *    through these helpers (they share the lock).
 * 3. No transactions and no change streams: `transactions` and
 *    `changeStreams` are reported for operators and future use, not relied on.
 *
 * Anything that must stay right with several server processes (a patient
 * index entry never moving back, the link attempt limit, a transfer's lease)
 * is written as a guarded write.
 */
/* eslint-enable @stylistic/max-len */
import type { Collection, Db, Document, Filter, UpdateFilter } from 'mongodb';
import { MongoServerError } from 'mongodb';
import { KeyedLock } from './keyed-lock.js';

export interface Engine {
  kind: 'mongodb' | 'ferretdb';
  /** A write's condition is checked and applied atomically, across processes (MongoDB). */
  atomicConditionalWrites: boolean;
  /**
   * Queries use secondary indexes (MongoDB). False on FerretDB 1.24 (SQLite), which pushes down only `_id` equality:
   * there a secondary index is upkeep on every write and serves nothing, so the store makes only unique ones.
   */
  plansSecondaryIndexes: boolean;
  /** Multi-document transactions are available (MongoDB replica set or sharded cluster). Not used by the store. */
  transactions: boolean;
  /** Change streams are available (as transactions). Not used by the store. */
  changeStreams: boolean;
  /**
   * Several server processes may share this database (MongoDB). False on FerretDB: the embedded database serves one
   * process.
   */
  multiProcess: boolean;
  /**
   * This process's per-document locks, used by the helpers where the engine is not atomic. One per engine object, so
   * per process.
   */
  locks: KeyedLock;
}

/**
 * Whether the server is FerretDB (embedded or not). Only engine detection
 * asks; stores read `Engine` instead.
 */
export async function isFerretDB(db: Db): Promise<boolean> {
  const info = await db.admin().command({ buildInfo: 1 });
  return 'ferretdbVersion' in info || JSON.stringify(info).toLowerCase().includes('ferretdb');
}

/** What the database behind `db` guarantees (see the table above). */
export async function detectEngine(db: Db): Promise<Engine> {
  if (await isFerretDB(db)) return engineOf('ferretdb');
  const hello = await db
    .admin()
    .command({ hello: 1 })
    .catch(() => ({}) as Document);
  const clustered = typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
  return engineOf('mongodb', clustered);
}

/** An engine object of a known kind (tests; detectEngine for real use). */
export function engineOf(kind: Engine['kind'], clustered = false): Engine {
  const mongo = kind === 'mongodb';
  return {
    kind,
    atomicConditionalWrites: mongo,
    plansSecondaryIndexes: mongo,
    transactions: mongo && clustered,
    changeStreams: mongo && clustered,
    multiProcess: mongo,
    locks: new KeyedLock(),
  };
}

export interface GuardedOptions {
  /** Insert the document when it does not exist (the condition is then checked against an empty document). */
  upsert?: boolean;
  /**
   * The in-process lock key on FerretDB; `${collection}|${_id}` by default, shared with every other helper write of the
   * document.
   */
  lockKey?: string;
}

type IdDoc = { _id: string };
/** The in-process lock of document `id` that every helper write of it takes on FerretDB (see GuardedOptions). */
export const lockKeyOf = (c: Pick<Collection, 'collectionName'>, id: string, opts: GuardedOptions = {}) =>
  opts.lockKey ?? `${c.collectionName}|${id}`;
const isDuplicate = (e: unknown) => e instanceof MongoServerError && e.code === 11000;

/**
 * Applies `update` to document `id` if it satisfies `condition` (a filter of
 * the operators `matchesCondition` knows); true when it was applied. See the
 * file header for how each engine makes this hold.
 */
export async function guardedUpdate<T extends IdDoc>(
  engine: Engine,
  c: Collection<T>,
  id: string,
  condition: Filter<T>,
  update: UpdateFilter<T>,
  opts: GuardedOptions = {},
): Promise<boolean> {
  return (await guarded(engine, c, id, condition, update, opts, false)) !== null;
}

/** As guardedUpdate, returning the document as the update left it (null when the condition did not hold). */
export async function guardedFindOneAndUpdate<T extends IdDoc>(
  engine: Engine,
  c: Collection<T>,
  id: string,
  condition: Filter<T>,
  update: UpdateFilter<T>,
  opts: GuardedOptions = {},
): Promise<T | null> {
  return (await guarded(engine, c, id, condition, update, opts, true)) as T | null;
}

async function guarded<T extends IdDoc>(
  engine: Engine,
  c: Collection<T>,
  id: string,
  condition: Filter<T>,
  update: UpdateFilter<T>,
  opts: GuardedOptions,
  wantDoc: boolean,
): Promise<T | true | null> {
  const byId = { _id: id } as Filter<T>;
  if (engine.atomicConditionalWrites) {
    const filter = { ...condition, _id: id } as Filter<T>;
    // An upsert whose condition fails on an existing document tries to insert a second one: E11000. Then the document
    // exists: try once more without upsert.
    for (let upsert = !!opts.upsert; ; upsert = false) {
      try {
        if (wantDoc) return (await c.findOneAndUpdate(filter, update, { upsert, returnDocument: 'after' })) as T | null;
        const r = await c.updateOne(filter, update, { upsert });
        return r.matchedCount > 0 || r.upsertedCount > 0 ? true : null;
      } catch (e) {
        if (!upsert || !isDuplicate(e)) throw e;
      }
    }
  }
  return engine.locks.run(lockKeyOf(c, id, opts), async () => {
    const doc = await c.findOne(byId);
    if (!doc && !opts.upsert) return null;
    if (!matchesCondition(doc ?? { _id: id }, condition as object)) return null;
    await c.updateOne(byId, update, { upsert: !doc });
    return wantDoc ? ((await c.findOne(byId)) as T | null) : true;
  });
}

export class UnsupportedConditionError extends Error {}

const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !(v instanceof Date) && !Array.isArray(v);
const norm = (v: unknown) => (v instanceof Date ? v.getTime() : v);

function valueAt(doc: unknown, path: string): unknown {
  let v: unknown = doc;
  for (const part of path.split('.')) {
    if (!isPlain(v)) return undefined;
    v = v[part];
  }
  return v;
}

function same(a: unknown, b: unknown): boolean {
  if (b === null) return a === null || a === undefined;
  return a instanceof Date === b instanceof Date && typeof norm(a) === typeof norm(b) && norm(a) === norm(b);
}

function compare(a: unknown, op: string, b: unknown): boolean {
  if (a === null || a === undefined || a instanceof Date !== b instanceof Date || typeof norm(a) !== typeof norm(b))
    return false;
  const x = norm(a) as number | string,
    y = norm(b) as number | string;
  return op === '$lt' ? x < y : op === '$lte' ? x <= y : op === '$gt' ? x > y : x >= y;
}

function fieldHolds(value: unknown, cond: unknown): boolean {
  if (!isPlain(cond)) return same(value, cond);
  return Object.entries(cond).every(([op, arg]) => {
    switch (op) {
      case '$eq':
        return same(value, arg);
      case '$ne':
        return !same(value, arg);
      case '$in':
        return (arg as unknown[]).some((x) => same(value, x));
      case '$exists':
        return (value !== undefined) === !!arg;
      case '$lt':
      case '$lte':
      case '$gt':
      case '$gte':
        return compare(value, op, arg);
      default:
        throw new UnsupportedConditionError(`condition operator ${op}`);
    }
  });
}

/**
 * A guarded write's condition evaluated in memory, with MongoDB's meaning for
 * what it supports: dotted paths, equality, $eq, $ne, $in, $exists, $lt,
 * $lte, $gt, $gte, $and, $or. Anything else throws (a programming error, not
 * a silent answer).
 */
export function matchesCondition(doc: object, condition: object): boolean {
  return Object.entries(condition).every(([key, cond]) => {
    if (key === '$and') return (cond as object[]).every((c) => matchesCondition(doc, c));
    if (key === '$or') return (cond as object[]).some((c) => matchesCondition(doc, c));
    if (key.startsWith('$')) throw new UnsupportedConditionError(`condition operator ${key}`);
    return fieldHolds(valueAt(doc, key), cond);
  });
}
