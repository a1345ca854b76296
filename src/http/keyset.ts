/**
 * Paging of the JSON lists (GET /consents, GET /admin/health-information/transactions): newest first by one time
 * field, then by _id, a page at a time. A `_cursor` names the last item of a page (its time and _id) as base64url
 * JSON. It is not sealed, unlike the records' cursors (records/cursor.ts): it only says where to continue, and every
 * page is filtered by the caller's own scope again, so an edited cursor moves the position and reveals nothing else.
 * A cursor that does not decode to that shape is a 400.
 *
 * An item whose time field changes during a walk (a consent revoked: its statusAt) moves to the front of the list: a
 * walk already past the front does not see it again, one that has not reached it yet does not see it at its old place.
 */
import type { Document, Filter } from 'mongodb';
import { badRequest } from '../fhir/outcome.js';

/** Where a page ended: the last item's time and id. */
export interface Keyset {
  at: Date;
  id: string;
}

export const DEFAULT_LIST_COUNT = 20;
export const MAX_LIST_COUNT = 100;

const MAX_CURSOR_CHARS = 512;

/** The `_cursor` of the page after the one ending at `k`. */
export function keysetCursor(k: Keyset): string {
  return Buffer.from(JSON.stringify({ at: k.at.toISOString(), id: k.id }), 'utf8').toString('base64url');
}

/** The position a `_cursor` names; 400 when it is not one this store writes. */
export function readKeysetCursor(text: string, param = '_cursor'): Keyset {
  const bad = () => badRequest(`${param} is not a cursor of this list; start again from the first page`, param);
  if (text.length === 0 || text.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) throw bad();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad();
  const { at, id, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length || typeof at !== 'string' || typeof id !== 'string') throw bad();
  if (id.length === 0 || id.length > 128) throw bad();
  const date = new Date(at);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== at) throw bad();
  return { at: date, id };
}

/** What comes after `k` in (`field` desc, _id desc) order. */
export function afterKeyset<T extends Document>(field: string, k: Keyset): Filter<T> {
  return { $or: [{ [field]: { $lt: k.at } }, { [field]: k.at, _id: { $lt: k.id } }] } as Filter<T>;
}

/**
 * The query of a list route: every parameter one of `allowed`, each given once unless `repeatable`; `_count` (default
 * DEFAULT_LIST_COUNT, clamped to MAX_LIST_COUNT) and `_cursor` read. 400 otherwise.
 */
export function listQuery(
  params: URLSearchParams,
  allowed: readonly string[],
  repeatable: readonly string[] = [],
): { count: number; after?: Keyset } {
  const names = [...allowed, '_count', '_cursor'];
  for (const k of new Set(params.keys())) {
    const shown = k.slice(0, 40);
    if (!names.includes(k)) throw badRequest(`Unknown parameter '${shown}'; supported: ${names.join(', ')}`, shown);
    if (!repeatable.includes(k) && params.getAll(k).length > 1)
      throw badRequest(`Parameter '${shown}' may be given once`, shown);
  }
  const rawCount = params.get('_count');
  let count = DEFAULT_LIST_COUNT;
  if (rawCount !== null) {
    if (!/^\d{1,6}$/.test(rawCount) || Number(rawCount) < 1)
      throw badRequest(`_count must be a whole number from 1 (at most ${MAX_LIST_COUNT} are served)`, '_count');
    count = Math.min(Number(rawCount), MAX_LIST_COUNT);
  }
  const cursor = params.get('_cursor');
  return { count, ...(cursor !== null ? { after: readKeysetCursor(cursor) } : {}) };
}

/** The values of a parameter that may be repeated or given as a comma list, each one of `values`; 400 otherwise. */
export function enumList<T extends string>(params: URLSearchParams, name: string, values: readonly T[]): T[] {
  const given = params.getAll(name).flatMap((v) => v.split(','));
  for (const v of given)
    if (!(values as readonly string[]).includes(v))
      throw badRequest(`${name} must be one of ${values.join(', ')} (repeated or comma-separated)`, name);
  return [...new Set(given as T[])];
}

/** One page of `rows` (read with a limit of count + 1): the page, and where the next one starts when there is one. */
export function pageOf<T>(rows: T[], count: number, key: (row: T) => Keyset): { page: T[]; next?: string } {
  const page = rows.slice(0, count);
  return rows.length > count ? { page, next: keysetCursor(key(page[page.length - 1])) } : { page };
}
