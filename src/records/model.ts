/**
 * The records feature's model: the documents it stores (one immutable
 * version per upload, the current pointer, the exact content, the bundle
 * identifier lookup, care contexts, the patient index), their collections and
 * their indexes, created at start, idempotently, with the one-time rewrites of
 * older stores. See README "Storage" and db/engine.ts for what each engine
 * guarantees.
 */
import type { Binary, Collection, Db } from 'mongodb';
import { detectEngine, type Engine } from '../db/engine.js';
import { PatientIndex } from './patient-index.js';
import { migrateIdentifierKeys, migrateSummaryFields } from './migrate.js';

export interface RecordDoc {
  _id: string; // `${recordId}/${version}`
  recordId: string;
  version: number;
  provider: string;
  identifierKey: string; // Bundle.identifier as JSON [system, value] (records/index-keys.ts bundleIdentifierKey)
  contentHash: string; // SHA-256 of the content without id/meta and insignificant whitespace
  contentId: string; // SHA-256 of the exact uploaded text (record_contents._id)
  /**
   * SHA-256 of the caller's Bundle.meta without versionId/lastUpdated (records/store.ts metaFingerprint); absent in
   * versions stored before it.
   */
  metaHash?: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  careContext: string;
  careContextDisplay: string | null;
  recordDate: Date;
  receivedAt: Date;
  bytes: number;
  /**
   * Where the exact text's top-level members are, in UTF-16 units (records/render.ts StoredSpans, spansOf), so a read
   * renders the record without scanning it; absent in versions stored before them.
   */
  members?: { keys: string[]; at: number[] };
  /** Composition.title and its authors' names (records/index-keys.ts); absent in versions stored before them. */
  title?: string | null;
  author?: string[];
}

/** The newest version of each record: what search and read-by-id serve. */
export type CurrentDoc = Omit<RecordDoc, '_id'> & {
  _id: string /* recordId */;
  versionId: string;
  /**
   * This version's content, compressed as in record_contents (records/content.ts): a read by id or a page of a
   * patient's records needs no second lookup. Absent in documents written before it was kept here.
   */
  z?: Binary;
};

/**
 * The exact uploaded text: `z` its raw DEFLATE (records/content.ts); `text` in documents written before compression.
 */
export interface ContentDoc {
  _id: string /* SHA-256 of text */;
  z?: Binary;
  text?: string;
}

export interface CareContextDoc {
  _id: string;
  provider: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  referenceNumber: string;
  display: string | null;
  hiTypes: string[];
  firstSeen: Date;
  lastSeen: Date;
  /** See records/index-keys.ts demographicKey. */
  demographicKey?: string | null;
  /** Set when the patient linked this care context to their ABHA address (discovery and linking). */
  linked?: { abhaAddress: string; at: Date; linkRefNumber: string };
}

/** A provider's bundle identifier → its record id (the upload path's entry point, looked up by _id). */
export interface IdentifierDoc {
  _id: string /* `${provider}|${identifierKey}` */;
  recordId: string;
}

/**
 * A record's facts in the patient index (records/patient-index.ts): what searches and consents filter on, and what a
 * listing without content shows (`_summary`).
 */
export type IndexEntry = Pick<
  RecordDoc,
  | 'version'
  | 'provider'
  | 'abhaNumber'
  | 'abhaAddress'
  | 'careContext'
  | 'hiType'
  | 'recordDate'
  | 'careContextDisplay'
  | 'receivedAt'
  | 'title'
  | 'author'
  | 'identifierKey'
>;

/**
 * A record as a listing without content shows it (`_summary`, `_elements`: records/render.ts renderListed): its patient
 * index entry, or its records document without the content. A CurrentDoc is one.
 */
export type ListedRecord = IndexEntry & { _id: string /* recordId */ };

/** One provider's patient (by ABHA number or address) and their current records. */
export interface PatientIndexDoc {
  _id: string /* `${provider}|n:${number}` or `${provider}|a:${address}` */;
  entries: Record<string /* recordId */, IndexEntry>;
}

/** Markers of one-time work done on a database (e.g. the patient index built). */
export interface MetaDoc {
  _id: string;
  builtAt: Date;
  records: number;
}

export interface Collections {
  identifiers: Collection<IdentifierDoc>;
  versions: Collection<RecordDoc>;
  current: Collection<CurrentDoc>;
  contents: Collection<ContentDoc>;
  careContexts: Collection<CareContextDoc>;
  patientIndex: Collection<PatientIndexDoc>;
  meta: Collection<MetaDoc>;
}

export function collections(db: Db): Collections {
  return {
    identifiers: db.collection<IdentifierDoc>('record_identifiers'),
    versions: db.collection<RecordDoc>('record_versions'),
    current: db.collection<CurrentDoc>('records'),
    contents: db.collection<ContentDoc>('record_contents'),
    careContexts: db.collection<CareContextDoc>('care_contexts'),
    patientIndex: db.collection<PatientIndexDoc>('patient_index'),
    meta: db.collection<MetaDoc>('store_meta'),
  };
}

/** Search keys: each search the API offers is served by one of these (newest first, then id). */
export async function ensureIndexes(c: Collections, engine?: Engine): Promise<void> {
  const detected = engine ?? (await detectEngine(c.meta.db));
  const order = { recordDate: -1, _id: -1 } as const;
  await Promise.all([
    c.versions.createIndex(
      { provider: 1, identifierKey: 1, version: 1 },
      { unique: true, name: 'provider_identifier_version' },
    ),
    c.versions.createIndex({ recordId: 1, version: 1 }, { unique: true, name: 'record_version' }),
    c.current.createIndex({ provider: 1, identifierKey: 1 }, { unique: true, name: 'provider_identifier' }),
  ]);
  // The search keys serve queries only where the engine plans secondary indexes (db/engine.ts): on FerretDB 1.24 they
  // would cost every upload their upkeep (measured: six of them add about half to a records insert) and serve no
  // query, so they are not made there, and a store that has them from an earlier version loses them.
  const searchKeys: [Pick<Collection, 'createIndex' | 'dropIndex' | 'listIndexes'>, Record<string, 1 | -1>, string][] =
    [
      [c.current, { provider: 1, ...order }, 'provider_date'],
      [c.current, { provider: 1, abhaNumber: 1, ...order }, 'provider_abha_number_date'],
      [c.current, { provider: 1, abhaAddress: 1, ...order }, 'provider_abha_address_date'],
      [c.current, { provider: 1, careContext: 1, ...order }, 'provider_care_context_date'],
      [c.current, { provider: 1, hiType: 1, ...order }, 'provider_hitype_date'],
      [c.careContexts, { provider: 1, abhaNumber: 1 }, 'provider_abha_number'],
      [c.careContexts, { provider: 1, abhaAddress: 1 }, 'provider_abha_address'],
      [c.careContexts, { provider: 1, demographicKey: 1 }, 'provider_demographics'],
    ];
  await Promise.all(
    searchKeys.map(([coll, keys, name]) =>
      detected.plansSecondaryIndexes ? coll.createIndex(keys, { name }) : dropIndexIfThere(coll, name),
    ),
  );
  // Once per store, before it serves: identifier keys of older stores rewritten, the title and authors of records
  // stored before they were kept (and the index entries' summary fields), and the patient index built for a store
  // created before it existed.
  await migrateIdentifierKeys(c);
  await migrateSummaryFields(c, detected); // before the build below, so an index built now has the fields too
  await new PatientIndex(c.patientIndex, c.meta, detected).ensureBuilt(c.current);
}

async function dropIndexIfThere(coll: Pick<Collection, 'dropIndex' | 'listIndexes'>, name: string): Promise<void> {
  const there = (
    await coll
      .listIndexes()
      .toArray()
      .catch(() => [])
  ).some((i) => i.name === name);
  if (there) await coll.dropIndex(name);
}
