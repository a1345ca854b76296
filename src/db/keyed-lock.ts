/**
 * Serialises async work per key within this process. FerretDB 1.24 (SQLite)
 * runs a conditional update as a read then a write, so two concurrent
 * conditional updates of one document can both pass their condition and the
 * older write can land last (seen in test: 8 concurrent versions left the
 * current pointer at version 4). MongoDB applies them atomically; with the
 * embedded database, which serves one process, this lock gives the same result.
 */
export class KeyedLock {
  private tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
