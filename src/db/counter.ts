/**
 * A counter of events in a time window (a consent's pulls, a patient's link
 * requests): one document per key and window, incremented by _id with an
 * upsert. The increment is atomic on MongoDB, so several server processes
 * share the count; FerretDB runs an update as a read then a write, so the
 * increments for one key are also serialised in this process (db/engine.ts).
 */
import type { Collection } from 'mongodb';
import { isDuplicateKey } from './mongo.js';
import type { KeyedLock } from './keyed-lock.js';

export interface CounterDoc {
  _id: string;
  count: number;
  /** When the window ends: the document may be removed from then on. */
  expiresAt: Date;
}

/** Counts one more event under `_id` (a key and its window) and answers the count so far. */
export function countOne(
  lock: KeyedLock,
  counters: Collection<CounterDoc>,
  _id: string,
  expiresAt: Date,
): Promise<number> {
  return lock.run(_id, async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const doc = await counters.findOneAndUpdate(
          { _id },
          { $inc: { count: 1 }, $setOnInsert: { expiresAt } },
          { upsert: true, returnDocument: 'after' },
        );
        return doc!.count;
      } catch (e) {
        if (!isDuplicateKey(e) || attempt > 2) throw e; // two first events raced to insert: update the winner's
      }
    }
  });
}
