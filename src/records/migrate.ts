/**
 * One-time rewrites of stores written by earlier versions, run at start
 * (db/mongo.ts ensureIndexes) before the server serves, each marked done in
 * store_meta and safe to run again after an interruption.
 *
 * identifier-key-v2: Bundle.identifier keys were `system|value`, which two
 * different identifiers could share ("…/a|b" + "c" and "…/a" + "b|c"). Each
 * record's key is rebuilt from the identifier in its current content
 * (bundleIdentifierKey), in record_identifiers (the upload path's lookup), in
 * records and in record_versions. Records that the old key had already merged
 * stay one record under the identifier of their current version; from now on
 * the other identifier gets a record of its own.
 *
 * summary-fields-v1: listings without bodies (`_summary`, `_elements`) are
 * served from what the store keeps beside each record: Composition.title and
 * the authors' names (kept since index-keys.ts took them at upload), and in
 * each patient index entry the identifier key, received time and care-context
 * display besides. See migrateSummaryFields.
 */
import type { Filter } from 'mongodb';
import type { Collections, CurrentDoc, PatientIndexDoc } from './model.js';
import { isDuplicateKey } from '../db/mongo.js';
import { type Engine, guardedUpdate } from '../db/engine.js';
import { bundleIdentifierKey, documentLabels } from './index-keys.js';
import { currentContent } from './content.js';
import { entryOf, keysOf } from './patient-index.js';

const IDENTIFIER_KEYS = 'identifier-key-v2';
const isLegacy = (key: string) => !key.startsWith('["');

export async function migrateIdentifierKeys(c: Collections): Promise<void> {
  if (await c.meta.findOne({ _id: IDENTIFIER_KEYS })) return;
  const newKeys = new Map<string, string>(); // recordId → new key
  let records = 0;
  for await (const cur of c.current.find(
    {},
    { projection: { _id: 1, provider: 1, identifierKey: 1, contentId: 1, z: 1 } },
  )) {
    if (!isLegacy(cur.identifierKey)) {
      newKeys.set(cur._id, cur.identifierKey);
      continue;
    } // done by an interrupted run: its versions may not be
    const text = await currentContent(c.contents, cur as CurrentDoc);
    const identifier =
      text === undefined
        ? undefined
        : (JSON.parse(text) as { identifier?: { system?: unknown; value?: unknown } }).identifier;
    if (typeof identifier?.system !== 'string' || typeof identifier.value !== 'string') continue; // every stored record has one (validated at upload)
    const key = bundleIdentifierKey(identifier.system, identifier.value);
    newKeys.set(cur._id, key);
    try {
      await c.identifiers.insertOne({ _id: `${cur.provider}|${key}`, recordId: cur._id });
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
    }
    await c.current.updateOne({ _id: cur._id }, { $set: { identifierKey: key } });
    await c.identifiers.deleteOne({ _id: `${cur.provider}|${cur.identifierKey}` });
    records++;
  }
  if (newKeys.size > 0) {
    for await (const v of c.versions.find({}, { projection: { _id: 1, recordId: 1, identifierKey: 1 } })) {
      const key = newKeys.get(v.recordId);
      if (key && isLegacy(v.identifierKey))
        await c.versions.updateOne({ _id: v._id }, { $set: { identifierKey: key } });
    }
  }
  await c.meta.updateOne({ _id: IDENTIFIER_KEYS }, { $set: { builtAt: new Date(), records } }, { upsert: true });
}

const SUMMARY_FIELDS = 'summary-fields-v1';

/**
 * Once per store: each current record stored before `title` and `author` were kept has them computed from its content
 * (read once, with the upload's own code: index-keys.ts documentLabels) and set on its records document; then each of
 * its patient index entries is rewritten from that document (patient-index.ts entryOf, which adds what older entries
 * lack: identifierKey, receivedAt, careContextDisplay, title, author). Every write is guarded on the version it was
 * computed from (db/engine.ts guardedUpdate), so a newer version published meanwhile, by this process or another, is
 * never overwritten, and an entry is only rewritten, never created (a missing one is the index's own repair). Runs
 * before the patient index is built for a store that has none (model.ts ensureIndexes), so a build then takes the
 * new fields too. Idempotent: an interrupted run starts again and rewrites the same values.
 */
export async function migrateSummaryFields(c: Collections, engine: Engine): Promise<void> {
  if (await c.meta.findOne({ _id: SUMMARY_FIELDS })) return;
  let records = 0;
  for await (const found of c.current.find({}, { projection: { z: 0 } })) {
    let cur: CurrentDoc = found;
    if (cur.title === undefined) {
      const stored = await c.current.findOne({ _id: cur._id }, { projection: { z: 1, contentId: 1 } });
      const text = stored ? await currentContent(c.contents, { ...cur, ...stored } as CurrentDoc) : undefined;
      if (text === undefined) continue; // no content: nothing to take the labels from (never expected)
      let labels: ReturnType<typeof documentLabels>;
      try {
        labels = documentLabels(JSON.parse(text) as Record<string, unknown>);
      } catch {
        continue; // validated at upload, so never expected; a record the start cannot read must not stop it
      }
      const set = await guardedUpdate(engine, c.current, cur._id, { version: cur.version }, { $set: labels });
      if (!set) continue; // a newer version arrived meanwhile: it has its labels, and wrote its own entries
      cur = { ...cur, ...labels };
      records++;
    }
    const field = `entries.${cur._id}`;
    await Promise.all(
      keysOf(cur).map((key) =>
        guardedUpdate(
          engine,
          c.patientIndex,
          key,
          { [`${field}.version`]: { $lte: cur.version } } as Filter<PatientIndexDoc>,
          { $set: { [field]: entryOf(cur) } },
        ),
      ),
    );
  }
  await c.meta.updateOne({ _id: SUMMARY_FIELDS }, { $set: { builtAt: new Date(), records } }, { upsert: true });
}
