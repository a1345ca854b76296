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
 * re-sending the upload) can shorten a page, never widen what is served.
 */
import type { Collection, Filter } from 'mongodb';
import type { CurrentDoc, MetaDoc, PatientIndexDoc, IndexEntry } from './model.js';
import { type Engine, guardedUpdate } from '../db/engine.js';
import { pinnedValue } from './match.js';

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

const entryOf = (r: CurrentDoc): IndexEntry => ({
  version: r.version,
  provider: r.provider,
  abhaNumber: r.abhaNumber,
  abhaAddress: r.abhaAddress,
  careContext: r.careContext,
  hiType: r.hiType,
  recordDate: r.recordDate,
});

export class PatientIndex {
  constructor(
    private docs: Collection<PatientIndexDoc>,
    private meta: Collection<MetaDoc>,
    private engine: Engine,
  ) {}

  /**
   * Records `r` (a current record) under each of its patient keys, unless an
   * entry as new is there already: guarded on the entry's version, so two
   * processes publishing versions 2 and 3 leave 3 whatever the order.
   */
  async put(r: CurrentDoc): Promise<void> {
    const field = `entries.${r._id}`;
    const older = {
      $or: [{ [field]: { $exists: false } }, { [`${field}.version`]: { $lt: r.version } }],
    } as Filter<PatientIndexDoc>;
    await Promise.all(
      keysOf(r).map(async (key) => {
        // Most puts are repeats or moves forward: read first, and write only when the entry would move.
        const have = (await this.docs.findOne({ _id: key }, { projection: { [field]: 1 } }))?.entries?.[r._id]?.version;
        if (have !== undefined && have >= r.version) return;
        await guardedUpdate(this.engine, this.docs, key, older, { $set: { [field]: entryOf(r) } }, { upsert: true });
      }),
    );
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
