/**
 * The patient index: for each provider and patient key (ABHA number, ABHA
 * address), one document listing that patient's current records at that
 * provider with the facts search and consent filters look at. A patient's
 * listing (a viewer's history under a consent, a provider's search by
 * patient-abha) reads one document by _id and filters it in memory
 * (match.ts), instead of querying the records collection.
 *
 * Why: the embedded FerretDB 1.24 (SQLite) evaluates every query other than
 * an _id lookup by reading the whole collection, so a patient's history cost
 * grew with the whole store (about 150 µs a stored record). Lookups by _id use
 * an index (see src/db/ferretdb/idindex.go). With MongoDB the same documents
 * work unchanged; each update of one is a single-document $set.
 *
 * Consistency: an entry is written after the record's current pointer
 * (records/store.ts publish) and only ever moves to a newer version: every
 * write is a guarded write on the entry's version (db/engine.ts), so this
 * holds with several server processes on MongoDB too. A listing never shows
 * a record that is not stored. The page is re-read from
 * the records collection and re-checked against the filter before it is
 * served, so an entry that lags (a crash between the two writes, repaired by
 * re-sending the upload) can shorten a page, never widen what is served. A
 * listing without bodies (`_summary`, `_elements`) is answered from the
 * entries alone (records/store.ts searchListed), so an entry also keeps what
 * such a listing shows (model.ts IndexEntry).
 */
import type { Collection, Filter } from 'mongodb';
import type { CurrentDoc, MetaDoc, PatientIndexDoc, IndexEntry } from './model.js';
import { type Engine, guardedUpdate, lockKeyOf } from '../db/engine.js';
import { pinnedValue } from './match.js';
import { UpdateBatcher } from '../db/batcher.js';

const BUILT = 'patient-index-v1';

export const patientIndexKey = (provider: string, patient: { abhaNumber: string } | { abhaAddress: string }): string =>
  'abhaNumber' in patient ? `${provider}|n:${patient.abhaNumber}` : `${provider}|a:${patient.abhaAddress}`;

/** The index document that answers a filter, when the filter pins one provider and one patient (by plain equality). */
export function indexKeyOf(filter: object): string | undefined {
  const provider = pinnedValue(filter, 'provider');
  const abhaNumber = pinnedValue(filter, 'abhaNumber'),
    abhaAddress = pinnedValue(filter, 'abhaAddress');
  if (provider === undefined) return undefined;
  if (abhaNumber !== undefined) return patientIndexKey(provider, { abhaNumber });
  if (abhaAddress !== undefined) return patientIndexKey(provider, { abhaAddress });
  return undefined;
}

/** Search order: record date, newest first, then id descending (as the collection query sorts). */
export const newestFirst = (a: { recordDate: Date; _id: string }, b: { recordDate: Date; _id: string }): number =>
  b.recordDate.getTime() - a.recordDate.getTime() || (a._id < b._id ? 1 : a._id > b._id ? -1 : 0);

/** The index documents a record belongs in: one per patient identifier it carries. */
export function keysOf(r: Pick<CurrentDoc, 'provider' | 'abhaNumber' | 'abhaAddress'>): string[] {
  return [
    ...(r.abhaNumber ? [patientIndexKey(r.provider, { abhaNumber: r.abhaNumber })] : []),
    ...(r.abhaAddress ? [patientIndexKey(r.provider, { abhaAddress: r.abhaAddress })] : []),
  ];
}

/** What the index keeps of a current record. */
export const entryOf = (r: CurrentDoc): IndexEntry => ({
  version: r.version,
  provider: r.provider,
  abhaNumber: r.abhaNumber,
  abhaAddress: r.abhaAddress,
  careContext: r.careContext,
  hiType: r.hiType,
  recordDate: r.recordDate,
  careContextDisplay: r.careContextDisplay,
  receivedAt: r.receivedAt,
  title: r.title ?? null,
  author: r.author ?? [],
  identifierKey: r.identifierKey,
});

export class PatientIndex {
  /** firstVersion's writes, combined across concurrent uploads (db/batcher.ts). */
  private updates: UpdateBatcher<PatientIndexDoc>;

  constructor(
    private docs: Collection<PatientIndexDoc>,
    private meta: Collection<MetaDoc>,
    private engine: Engine,
  ) {
    this.updates = new UpdateBatcher(docs);
  }

  /**
   * Records `r` (a current record) under each of its patient keys, unless an
   * entry as new is there already: guarded on the entry's version, so two
   * processes publishing versions 2 and 3 leave 3 whatever the order.
   */
  async put(r: CurrentDoc, opts: { readFirst?: boolean } = { readFirst: true }): Promise<void> {
    const field = `entries.${r._id}`;
    const older = {
      $or: [{ [field]: { $exists: false } }, { [`${field}.version`]: { $lt: r.version } }],
    } as Filter<PatientIndexDoc>;
    await Promise.all(
      keysOf(r).map(async (key) => {
        // A repeat (a repair, the build) usually finds the entry in place: read first, write only when it would move.
        if (opts.readFirst) {
          const doc = await this.docs.findOne({ _id: key }, { projection: { [field]: 1 } });
          const have = doc?.entries?.[r._id]?.version;
          if (have !== undefined && have >= r.version) return;
        }
        await guardedUpdate(this.engine, this.docs, key, older, { $set: { [field]: entryOf(r) } }, { upsert: true });
      }),
    );
  }

  /**
   * For the first version of a record id this process has just assigned, so
   * that no entry of it exists anywhere yet: runs `work` (the version's
   * insert, the commit point, then its publishing) holding the locks of the
   * record's index documents, and gives it the `put` to publish with. On
   * FerretDB that put writes the entries without the read a guarded write
   * makes: every other write of these entries (a later version's, a repair's,
   * a removal) needs the committed version first and takes the same locks,
   * so it comes after this one and its own condition sees it. On MongoDB the
   * guarded write is one atomic command already: no locks, the usual put.
   */
  async firstVersion<T>(
    r: Pick<CurrentDoc, 'provider' | 'abhaNumber' | 'abhaAddress'>,
    work: (put: (doc: CurrentDoc) => Promise<void>) => Promise<T>,
  ): Promise<T> {
    if (this.engine.atomicConditionalWrites) return work((doc) => this.put(doc, { readFirst: false }));
    const keys = [...new Set(keysOf(r))].sort(); // one order for every holder of two: no deadlock
    const put = async (doc: CurrentDoc) => {
      await Promise.all(
        keysOf(doc).map((key) =>
          this.updates.update(key, { $set: { [`entries.${doc._id}`]: entryOf(doc) } }, { upsert: true }),
        ),
      );
    };
    const hold = (i: number): Promise<T> =>
      i === keys.length ? work(put) : this.engine.locks.run(lockKeyOf(this.docs, keys[i]), () => hold(i + 1));
    return hold(0);
  }

  /**
   * Takes record `recordId` out of the index document `key` when its entry
   * there is older than `version` (the record now belongs to another patient
   * from that version on). Guarded on the entry's version.
   */
  async remove(key: string, recordId: string, version: number): Promise<void> {
    const field = `entries.${recordId}`;
    await guardedUpdate(
      this.engine,
      this.docs,
      key,
      { [`${field}.version`]: { $lt: version } } as Filter<PatientIndexDoc>,
      { $unset: { [field]: '' } },
    );
  }

  /** The entries of one provider's patient, as documents (_id = recordId) the search filters can be evaluated on. */
  async entries(key: string): Promise<(IndexEntry & { _id: string })[]> {
    const doc = await this.docs.findOne({ _id: key });
    return doc ? Object.entries(doc.entries).map(([_id, e]) => ({ _id, ...e })) : [];
  }

  /**
   * Builds the index from the records collection once per database (a store
   * created before the index existed); a no-op when it is marked built.
   * Idempotent: an interrupted build runs again at the next start.
   */
  async ensureBuilt(current: Collection<CurrentDoc>): Promise<void> {
    if (await this.meta.findOne({ _id: BUILT })) return;
    let records = 0;
    for await (const r of current.find({}, { projection: { z: 0 } })) {
      await this.put(r);
      records++;
    }
    await this.meta.updateOne({ _id: BUILT }, { $set: { builtAt: new Date(), records } }, { upsert: true });
  }
}
