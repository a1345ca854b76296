/**
 * Storage of records: one immutable document per version (record_versions),
 * the newest version of each record (records: what search and read serve),
 * and the exact uploaded text (record_contents, addressed by its SHA-256).
 *
 * Write order makes every step safe to repeat and nothing visible half-done:
 * content (insert; a duplicate is the same text) → version (the commit point,
 * unique per record and version) → current pointer → patient index → care
 * context. A retry of the same upload repairs any step a crash left undone.
 */
import { createHash } from 'node:crypto';
import { v4 as uuidv4 } from 'uuid';
import type { Binary, Filter } from 'mongodb';
import { isDuplicateKey as isDuplicate } from '../db/mongo.js';
import {
  type CareContextDoc,
  type Collections,
  type ContentDoc,
  type CurrentDoc,
  type IdentifierDoc,
  type RecordDoc,
} from './model.js';
import { InsertBatcher } from '../db/batcher.js';
import { storedSpans } from './render.js';
import { type MemberSpan, canonicalContent, topLevelMembers, topLevelValue } from '../fhir/json-text.js';
import type { IndexKeys } from './index-keys.js';
import { cursorFilter, type SearchQuery } from './search.js';
import { type Engine, guardedUpdate } from '../db/engine.js';
import { PatientIndex, indexKeyOf, keysOf, newestFirst } from './patient-index.js';
import { matchesFilter } from './match.js';
import { currentContent, packContent, readContent } from './content.js';
import type { ListedRecord } from './model.js';

const SERVER_SET = new Set(['id', 'meta']);
/** Concurrent upserts of one _id may race to insert; the loser's write is already done by the winner. */
async function ignoreDuplicate(write: Promise<unknown>): Promise<void> {
  try {
    await write;
  } catch (e) {
    if (!isDuplicate(e)) throw e;
  }
}
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * The caller's own Bundle.meta (all but the server-set versionId and lastUpdated), as a hash independent of key order
 * and whitespace.
 */
function metaFingerprint(text: string, members?: MemberSpan[]): string {
  const raw = topLevelValue(text, 'meta', members);
  let meta: unknown = {};
  try {
    meta = raw === undefined ? {} : JSON.parse(raw);
  } catch {
    /* validated at upload */
  }
  const {
    versionId: _v,
    lastUpdated: _l,
    ...own
  } = meta && typeof meta === 'object' && !Array.isArray(meta) ? (meta as Record<string, unknown>) : {};
  return sha256(stableJson(own));
}
const stableJson = (v: unknown): string =>
  Array.isArray(v)
    ? `[${v.map(stableJson).join(',')}]`
    : v && typeof v === 'object'
      ? `{${Object.keys(v)
          .sort()
          .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
          .join(',')}}`
      : JSON.stringify(v);

export interface UploadInput {
  text: string;
  keys: IndexKeys;
  provider: string;
  careContext: string;
  careContextDisplay: string | null;
  now: Date;
}

export interface UploadResult {
  created: boolean;
  record: RecordDoc;
}

export interface SearchPage {
  total: number;
  page: CurrentDoc[];
  hasNext: boolean;
  hasPrev: boolean;
}

/** A page of a listing without content (`_summary`, `_elements`): each record as the store keeps it beside it. */
export interface ListedPage extends Omit<SearchPage, 'page'> {
  page: ListedRecord[];
}

/** Whether pages exist after and before this one, given whether the query found more than a page in its direction. */
function neighbours(q: SearchQuery, more: boolean): Pick<SearchPage, 'hasNext' | 'hasPrev'> {
  const backwards = q.cursor?.dir === 'prev';
  return { hasNext: backwards ? true : more, hasPrev: backwards ? more : q.cursor !== undefined };
}

export class RecordStore {
  private index: PatientIndex;

  /**
   * `engine`: what the database guarantees (db/engine.ts). Every update here
   * is a guarded write through it, so a new version's pointer, its patient
   * index entries and its care context stay right with several processes on
   * MongoDB, and under this process's per-document locks on FerretDB.
   */
  constructor(
    private c: Collections,
    readonly engine: Engine,
  ) {
    this.index = new PatientIndex(c.patientIndex, c.meta, engine);
    this.inserts = {
      contents: new InsertBatcher(c.contents),
      identifiers: new InsertBatcher(c.identifiers),
      versions: new InsertBatcher(c.versions),
      current: new InsertBatcher(c.current),
      careContexts: new InsertBatcher(c.careContexts),
    };
  }

  /**
   * The upload path's inserts, combined across concurrent uploads (db/batcher.ts): an upload's writes are inserts
   * wherever they can be, so under load (and in an import) they travel as a few batched commands.
   */
  private inserts: {
    contents: InsertBatcher<ContentDoc>;
    identifiers: InsertBatcher<IdentifierDoc>;
    versions: InsertBatcher<RecordDoc>;
    current: InsertBatcher<CurrentDoc>;
    careContexts: InsertBatcher<CareContextDoc>;
  };

  async upload(input: UploadInput): Promise<UploadResult> {
    const { keys, provider } = input;
    const members = topLevelMembers(input.text); // one scan of the text serves both hashes
    const contentHash = sha256(canonicalContent(input.text, SERVER_SET, members));
    const metaHash = metaFingerprint(input.text, members);
    const contentId = sha256(input.text);
    const packed = packContent(contentId, input.text);
    const [, { recordId, fresh }] = await Promise.all([
      ignoreDuplicate(this.inserts.contents.insert(packed)), // content-addressed: a duplicate is the same text
      this.recordIdFor(provider, keys.identifierKey),
    ]);
    for (let attempt = 0; attempt < 50; attempt++) {
      // A record id assigned just now has no versions yet, unless a concurrent upload of the same identifier adds one
      // (then the insert below clashes and the next attempt looks).
      const latest = fresh && attempt === 0 ? null : await this.latestVersion(recordId);
      if (latest && (await this.sameRecord(latest, input, contentHash, metaHash))) {
        await this.publish(latest, undefined, true); // repairs what a crash after the version insert left undone
        await this.rememberCareContext(latest, keys.demographicKey);
        return { created: false, record: latest };
      }
      const version = (latest?.version ?? 0) + 1;
      const record: RecordDoc = {
        _id: `${recordId}/${version}`,
        recordId,
        version,
        provider,
        identifierKey: keys.identifierKey,
        contentHash,
        contentId,
        metaHash,
        hiType: keys.hiType,
        abhaNumber: keys.abhaNumber,
        abhaAddress: keys.abhaAddress,
        careContext: input.careContext,
        careContextDisplay: input.careContextDisplay,
        recordDate: keys.recordDate,
        receivedAt: input.now,
        bytes: Buffer.byteLength(input.text),
        title: keys.title,
        author: keys.author,
        members: storedSpans(members),
      };
      const commit = async (): Promise<boolean> => {
        try {
          await this.inserts.versions.insert(record);
          return true;
        } catch (e) {
          if (isDuplicate(e)) return false; // another upload took this version: look again
          throw e;
        }
      };
      // A record id assigned just now: its first version is published under the index's firstVersion (no entry of it
      // can exist yet, so on FerretDB the entries are written without a read).
      const committed =
        fresh && attempt === 0
          ? await this.index.firstVersion(record, async (put) => {
              if (!(await commit())) return false;
              await this.publish(record, packed.z, false, put);
              return true;
            })
          : (await commit()) && (await this.publish(record, packed.z), true);
      if (!committed) continue;
      await this.rememberCareContext(record, keys.demographicKey);
      return { created: true, record };
    }
    throw new Error('Too many concurrent versions of one document');
  }

  /**
   * Whether an upload repeats the stored version: the same content (ignoring
   * whitespace, id and meta), the same meta elements the caller sets
   * (security labels, tags, profiles, source: all but versionId and
   * lastUpdated), the same care context, and the same care-context display
   * when one is given. Anything else is a new version, so a changed care
   * context or security label is never silently dropped.
   */
  private async sameRecord(
    latest: RecordDoc,
    input: UploadInput,
    contentHash: string,
    metaHash: string,
  ): Promise<boolean> {
    if (latest.contentHash !== contentHash || latest.careContext !== input.careContext) return false;
    if (input.careContextDisplay !== null && input.careContextDisplay !== latest.careContextDisplay) return false;
    // Versions stored before metaHash existed: compare with the stored text's meta.
    const stored = latest.metaHash ?? metaFingerprint((await this.text(latest.contentId)) ?? '');
    return stored === metaHash;
  }

  /**
   * The record id of a provider's bundle identifier, assigned on first sight:
   * an insert of a new id first (most uploads are new documents), and a read
   * only when the identifier is taken. Every lookup on the upload path is by
   * _id, and every write is an insert where it can be (see publish).
   */
  private async recordIdFor(provider: string, identifierKey: string): Promise<{ recordId: string; fresh: boolean }> {
    const _id = `${provider}|${identifierKey}`;
    const recordId = uuidv4();
    try {
      await this.inserts.identifiers.insert({ _id, recordId });
      return { recordId, fresh: true };
    } catch (e) {
      if (!isDuplicate(e)) throw e;
    } // known already (or another upload assigned it first)
    return { recordId: (await this.c.identifiers.findOne({ _id }))!.recordId, fresh: false };
  }

  /**
   * The newest stored version: from the current pointer, then forward by version number (the pointer may lag by one
   * write).
   */
  private async latestVersion(recordId: string): Promise<RecordDoc | null> {
    const cur = await this.c.current.findOne({ _id: recordId }, { projection: { z: 0 } });
    let latest: RecordDoc | null = null;
    if (cur) {
      const { versionId, ...rest } = cur;
      latest = { ...rest, _id: versionId };
    }
    for (let v = (cur?.version ?? 0) + 1; ; v++) {
      const next = await this.c.versions.findOne({ _id: `${recordId}/${v}` });
      if (!next) return latest;
      latest = next;
    }
  }

  /**
   * Makes committed version `v` visible: first in the patient index (after
   * taking the record out of a former patient's index documents), then as
   * the record's current entry (with its compressed content), unless a newer
   * version is already there.
   *
   * The index goes first so that it never lags a committed version: an index
   * entry always describes a stored version (listings from the index alone,
   * `_summary`, show nothing uncommitted), and it is at most one write ahead
   * of the current pointer, which full pages and reads re-check. A crash in
   * between is mended by sending the upload again (the repeat path publishes).
   *
   * A first version is an insert, a repeat of the current version writes
   * nothing, and only a new version of an existing record updates the
   * pointer: a guarded write "only over an older version" (db/engine.ts),
   * atomic on MongoDB, and by _id under the per-document lock on FerretDB,
   * where a further condition would be neither atomic nor indexed.
   * `repair`: called for a repeat, which may find everything in place. `put`: how the index entries are written
   * (PatientIndex.firstVersion's for a record id just assigned).
   */
  private async publish(
    v: RecordDoc,
    z?: Binary,
    repair = false,
    put = (d: CurrentDoc) => this.index.put(d, { readFirst: repair }),
  ): Promise<void> {
    const { _id, ...fields } = v;
    const doc: CurrentDoc = { ...fields, _id: v.recordId, versionId: _id };
    if (v.version > 1) await this.leaveFormerPatient(doc);
    await put(doc);
    const withContent = async (): Promise<CurrentDoc> => {
      // The content travels with the pointer; a repair (no content at hand) reads it once.
      const packed = z ?? (await this.c.contents.findOne({ _id: v.contentId }))?.z;
      return packed ? { ...doc, z: packed } : doc;
    };
    // Usually the first sight of a record: insert, and look only if that clashes.
    const cur =
      v.version === 1 ? null : await this.c.current.findOne({ _id: v.recordId }, { projection: { version: 1 } });
    if (cur && cur.version >= v.version) return;
    if (!cur) {
      try {
        await this.inserts.current.insert(await withContent());
        return;
      } catch (e) {
        if (!isDuplicate(e)) throw e;
      }
    }
    // The whole pointer, field by field: a replacement with a condition, which guardedUpdate expresses as $set (and
    // $unset of a content it lacks).
    const { _id: _r, ...next } = await withContent();
    await guardedUpdate(
      this.engine,
      this.c.current,
      v.recordId,
      { version: { $lt: v.version } },
      { $set: next, ...(next.z ? {} : { $unset: { z: '' as const } }) },
    );
  }

  /**
   * A new version may name another patient (a provider correcting a record
   * filed under the wrong person): the record then leaves the index documents
   * of the patient its previous version named, so that patient's totals and
   * pages no longer count it. Runs on every publish, repairs included, so a
   * crash between the two writes is mended by sending the upload again; a
   * listing also drops such an entry when it meets it (searchIndexed).
   */
  private async leaveFormerPatient(doc: CurrentDoc): Promise<void> {
    const previous = await this.c.versions.findOne(
      { _id: `${doc.recordId}/${doc.version - 1}` },
      { projection: { provider: 1, abhaNumber: 1, abhaAddress: 1 } },
    );
    if (!previous) return;
    const now = new Set(keysOf(doc));
    await Promise.all(
      keysOf(previous)
        .filter((k) => !now.has(k))
        .map((k) => this.index.remove(k, doc._id, doc.version)),
    );
  }

  /**
   * Remembers the care context for discovery and linking: inserted at first
   * sight, updated only when it gains a record type (`$addToSet`, so two
   * processes adding two types keep both), a display or demographics (a
   * guarded write: an upload older than the last one seen does not overwrite
   * what a newer one set).
   */
  private async rememberCareContext(r: RecordDoc, demographicKey: string | null): Promise<void> {
    const patientKey = r.abhaNumber ?? r.abhaAddress;
    const _id = `${r.provider}|${patientKey}|${r.careContext}`;
    // Insert first: a care context's first record is the commonest case, and a clash is one read more.
    try {
      await this.inserts.careContexts.insert({
        _id,
        provider: r.provider,
        abhaNumber: r.abhaNumber,
        abhaAddress: r.abhaAddress,
        referenceNumber: r.careContext,
        display: r.careContextDisplay,
        hiTypes: [r.hiType],
        firstSeen: r.receivedAt,
        lastSeen: r.receivedAt,
        ...(demographicKey ? { demographicKey } : {}),
      });
      return;
    } catch (e) {
      if (!isDuplicate(e)) throw e;
    }
    const current = (await this.c.careContexts.findOne({ _id }))!;
    if (!current.hiTypes.includes(r.hiType)) {
      await guardedUpdate(
        this.engine,
        this.c.careContexts,
        _id,
        {},
        { $addToSet: { hiTypes: r.hiType }, $max: { lastSeen: r.receivedAt } },
      );
    }
    const changes = {
      ...(r.careContextDisplay && r.careContextDisplay !== current.display ? { display: r.careContextDisplay } : {}),
      ...(demographicKey && demographicKey !== current.demographicKey ? { demographicKey } : {}),
    };
    if (Object.keys(changes).length) {
      await guardedUpdate(
        this.engine,
        this.c.careContexts,
        _id,
        { lastSeen: { $lte: r.receivedAt } },
        { $set: { ...changes, lastSeen: r.receivedAt } },
      );
    }
  }

  async text(contentId: string): Promise<string | undefined> {
    return readContent(this.c.contents, contentId);
  }

  /** The text of a current record (see content.ts currentContent). */
  async currentText(doc: CurrentDoc): Promise<string | undefined> {
    return currentContent(this.c.contents, doc);
  }

  async current(provider: string, recordId: string): Promise<CurrentDoc | null> {
    const doc = await this.currentById(recordId);
    return doc?.provider === provider ? doc : null;
  }

  /** A current record by id whoever its provider (for consent-checked reads). */
  async currentById(recordId: string): Promise<CurrentDoc | null> {
    return this.c.current.findOne({ _id: recordId });
  }

  async version(provider: string, recordId: string, version: number): Promise<RecordDoc | null> {
    const doc = await this.c.versions.findOne({ _id: `${recordId}/${version}` });
    return doc?.provider === provider ? doc : null;
  }

  /** Versions `from`, from-1, … of a record, at most `limit`, newest first (each read by _id). */
  async versionsDown(recordId: string, from: number, limit: number): Promise<RecordDoc[]> {
    const wanted = Array.from({ length: Math.max(0, Math.min(limit, from)) }, (_, i) => `${recordId}/${from - i}`);
    const found = await Promise.all(wanted.map((_id) => this.c.versions.findOne({ _id })));
    return found.filter((v): v is RecordDoc => v !== null);
  }

  /**
   * One page of current records matching `scope` and the query, newest first,
   * with the total and whether pages exist before and after it. A search that
   * names one provider and one patient (every viewer's; a provider's with
   * patient-abha) is answered from the patient index; others query the
   * records collection.
   */
  async search(scope: Filter<CurrentDoc>, q: SearchQuery): Promise<SearchPage> {
    const filter = { $and: [q.filter, scope] } as Filter<CurrentDoc>;
    const key = indexKeyOf(filter);
    return key !== undefined ? this.searchIndexed(key, filter, q) : this.searchCollection(filter, q);
  }

  /**
   * The ids of every current record matching `filter`, newest first. The
   * filter must pin one provider and one patient (a consent's always does):
   * it is answered from that patient's index document, so its cost follows
   * the patient's records. Served records are re-checked by the caller.
   */
  async listIds(filter: Filter<CurrentDoc>): Promise<string[]> {
    const key = indexKeyOf(filter);
    if (key === undefined) throw new Error('listIds needs a filter naming one provider and one patient');
    return (await this.matchingEntries(key, filter)).map((e) => e._id);
  }

  /** The entries of one patient index document that match `filter`, newest first. */
  private async matchingEntries(key: string, filter: Filter<CurrentDoc>) {
    return (await this.index.entries(key)).filter((e) => matchesFilter(e, filter)).sort(newestFirst);
  }

  private async searchIndexed(key: string, filter: Filter<CurrentDoc>, q: SearchQuery): Promise<SearchPage> {
    const matching = await this.matchingEntries(key, filter);
    const backwards = q.cursor?.dir === 'prev';
    const after = q.cursor ? matching.filter((e) => matchesFilter(e, cursorFilter(q.cursor!))) : matching;
    const more = after.length > q.count;
    const window = backwards ? after.slice(-q.count) : after.slice(0, q.count);
    let stale = 0;
    const docs = await Promise.all(
      window.map(async (e) => {
        const doc = await this.c.current.findOne({ _id: e._id });
        if (doc && !keysOf(doc).includes(key)) {
          // the record has moved to another patient: drop the leftover entry
          stale++;
          await this.index.remove(key, e._id, doc.version);
        }
        // The record itself decides: an entry lagging its record shortens the page, it never widens what is served.
        return doc && matchesFilter(doc, filter) ? doc : null;
      }),
    );
    return {
      total: matching.length - stale,
      page: docs.filter((d): d is CurrentDoc => d !== null),
      ...neighbours(q, more),
    };
  }

  private async searchCollection(filter: Filter<CurrentDoc>, q: SearchQuery): Promise<SearchPage> {
    const paged = q.cursor ? ({ $and: [filter, cursorFilter(q.cursor)] } as Filter<CurrentDoc>) : filter;
    const backwards = q.cursor?.dir === 'prev';
    const sort = backwards ? ({ recordDate: 1, _id: 1 } as const) : ({ recordDate: -1, _id: -1 } as const);
    const [total, rows] = await Promise.all([
      this.c.current.countDocuments(filter),
      this.c.current
        .find(paged, { projection: { z: 0 } })
        .sort(sort)
        .limit(q.count + 1)
        .toArray(), // a scan: leave the contents behind
    ]);
    const more = rows.length > q.count;
    const page = rows.slice(0, q.count);
    if (backwards) page.reverse();
    return { total, page, ...neighbours(q, more) };
  }

  /**
   * One page as `search` finds it, without reading any content: a search that names one provider and one patient is
   * answered from that patient's index document alone (one read by _id; no read of the records collection), its
   * entries re-checked against `scope` and the query (matchesFilter) as `search` does; others from the records
   * collection without the content (searchCollection). An index entry is written after the version insert (the
   * commit point) and always describes a committed version; publish writes the entries before the pointer, so an entry
   * is never behind it (it may be ahead by one write). A page from the index alone therefore never shows a record or
   * facts that are not committed. An entry a crash left under a former patient (before publish took it out) is
   * listed as the pointer, not yet moved either, would still serve it.
   */
  async searchListed(scope: Filter<CurrentDoc>, q: SearchQuery): Promise<ListedPage> {
    const filter = { $and: [q.filter, scope] } as Filter<CurrentDoc>;
    const key = indexKeyOf(filter);
    if (key === undefined) return this.searchCollection(filter, q); // already without the content
    const matching = await this.matchingEntries(key, filter);
    const after = q.cursor ? matching.filter((e) => matchesFilter(e, cursorFilter(q.cursor!))) : matching;
    const window = q.cursor?.dir === 'prev' ? after.slice(-q.count) : after.slice(0, q.count);
    return { total: matching.length, page: window, ...neighbours(q, after.length > q.count) };
  }

  /**
   * How many current records match `scope` and the query (`_summary=count`), reading no record: from the patient
   * index document for a search naming one provider and one patient (with those entries, so the audit can name their
   * patients), else a count of the records collection.
   */
  async countMatching(scope: Filter<CurrentDoc>, q: SearchQuery): Promise<{ total: number; matched: ListedRecord[] }> {
    const filter = { $and: [q.filter, scope] } as Filter<CurrentDoc>;
    const key = indexKeyOf(filter);
    if (key === undefined) return { total: await this.c.current.countDocuments(filter), matched: [] };
    const matched = await this.matchingEntries(key, filter);
    return { total: matched.length, matched };
  }

  async ping(): Promise<void> {
    await this.c.current.db.command({ ping: 1 });
  }
}
