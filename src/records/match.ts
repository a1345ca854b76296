/**
 * Evaluates, in memory, the database filters this store builds (search.ts,
 * consents/policy.ts consentFilter, search.ts cursorFilter) against a
 * document, with MongoDB's meaning. Used where a patient's records are listed
 * from their patient index (see patient-index.ts) instead of a collection query.
 *
 * Only the operators those builders emit are known: equality on a scalar or a
 * Date, $in, $gt, $gte, $lt, $lte, $and and $or. Any other operator throws:
 * a filter this code cannot evaluate is a programming error, never a silent
 * "matches" or "does not match".
 */

export class UnsupportedFilterError extends Error {}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !(v instanceof Date) && !Array.isArray(v);

/** Comparable value: Dates by their time, others as they are; undefined (a missing field) as null. */
const norm = (v: unknown): unknown => (v instanceof Date ? v.getTime() : v === undefined ? null : v);

/**
 * MongoDB compares across types by a type order; these filters only ever compare like with like, so unlike types never
 * match.
 */
function sameType(a: unknown, b: unknown): boolean {
  return a instanceof Date === b instanceof Date && typeof norm(a) === typeof norm(b);
}

function equal(field: unknown, value: unknown): boolean {
  if (value === null) return field === null || field === undefined;
  return sameType(field, value) && norm(field) === norm(value);
}

const COMPARISONS = new Set(['$gt', '$gte', '$lt', '$lte']);

function compare(field: unknown, op: string, value: unknown): boolean {
  if (field === null || field === undefined || !sameType(field, value)) return false;
  const a = norm(field) as number | string,
    b = norm(value) as number | string;
  switch (op) {
    case '$gt':
      return a > b;
    case '$gte':
      return a >= b;
    case '$lt':
      return a < b;
    case '$lte':
      return a <= b;
  }
  throw new UnsupportedFilterError(`operator ${op}`);
}

function fieldMatches(field: unknown, cond: unknown): boolean {
  if (!isPlainObject(cond)) return equal(field, cond);
  const ops = Object.keys(cond);
  if (ops.length === 0 || !ops.every((k) => k.startsWith('$')))
    throw new UnsupportedFilterError('embedded-document equality');
  const unknown = ops.find((op) => op !== '$in' && !COMPARISONS.has(op));
  if (unknown) throw new UnsupportedFilterError(`operator ${unknown}`);
  return ops.every((op) => {
    const v = cond[op];
    if (op === '$in') {
      if (!Array.isArray(v)) throw new UnsupportedFilterError('$in needs an array');
      return v.some((x) => equal(field, x));
    }
    return compare(field, op, v);
  });
}

export function matchesFilter(doc: object, filter: object): boolean {
  const d = doc as Record<string, unknown>;
  for (const [key, cond] of Object.entries(filter as Record<string, unknown>)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(cond)) throw new UnsupportedFilterError(`${key} needs an array`);
      const parts = cond as Record<string, unknown>[];
      const ok = key === '$and' ? parts.every((f) => matchesFilter(d, f)) : parts.some((f) => matchesFilter(d, f));
      if (!ok) return false;
      continue;
    }
    if (key.startsWith('$')) throw new UnsupportedFilterError(`operator ${key}`);
    if (key.includes('.')) throw new UnsupportedFilterError('dotted paths');
    if (!fieldMatches(d[key], cond)) return false;
  }
  return true;
}

/**
 * The value a filter requires of a field by plain equality, looking through
 * $and (a conjunction); undefined when the filter does not pin it.
 */
export function pinnedValue(filter: object, key: string): string | undefined {
  const f = filter as Record<string, unknown>;
  const v = f[key];
  if (typeof v === 'string') return v;
  if (Array.isArray(f.$and)) {
    for (const part of f.$and as object[]) {
      const p = pinnedValue(part, key);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}
