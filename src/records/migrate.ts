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
 */
import type { Collections, CurrentDoc } from './model.js';
import { isDuplicateKey } from '../db/mongo.js';
import { bundleIdentifierKey } from './index-keys.js';
import { currentContent } from './content.js';

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
