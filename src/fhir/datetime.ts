/**
 * ABDM date-times, parsed explicitly: never through `Date.parse`, whose reading
 * of a value without an offset depends on the server's TZ.
 *
 * Accepted: `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm`, `…:ss`, `…:ss.fraction`
 * (any number of fraction digits; ABDM's gateway sends microseconds), each
 * with an optional offset `Z`, `±hh:mm` or `±hhmm`. Rules:
 * - a value without an offset is UTC (ABDM's gateway sends its timestamps so);
 * - impossible calendar values (`2024-02-30`, `25:00`, `"0"`) are refused,
 *   never rolled over;
 * - as the start of a range a value means its first instant; as the end of an
 *   inclusive range it means its last millisecond at its own precision, so a
 *   date-only `to` covers that whole day, as the search's partial dates do.
 * Pure. Below: FHIR date/dateTime values (records' dates, search and audit
 * date parameters) as the period they cover.
 */

const FORM = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export type Bound = 'start' | 'end';

const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysIn = (y: number, m: number) => [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];

/** The instant an ABDM date-time names (see the header), or undefined when it is not one. */
export function parseAbdmDateTime(value: unknown, bound: Bound = 'start'): Date | undefined {
  if (typeof value !== 'string' || value.length > 64) return undefined;
  const m = FORM.exec(value);
  if (!m) return undefined;
  const [, ys, mos, ds, hs, mis, ss, frac, tz] = m;
  const y = Number(ys),
    mo = Number(mos),
    d = Number(ds);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) return undefined;
  const h = Number(hs ?? 0),
    mi = Number(mis ?? 0),
    s = Number(ss ?? 0);
  if (h > 23 || mi > 59 || s > 59) return undefined;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  let offsetMin = 0;
  if (tz && tz !== 'Z') {
    const oh = Number(tz.slice(1, 3)),
      om = Number(tz.slice(-2));
    if (oh > 14 || om > 59) return undefined;
    offsetMin = (tz[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // setUTCFullYear keeps years 1-99 as given (Date.UTC would map them to 19xx)
  t.setUTCHours(h, mi, s, ms);
  let at = t.getTime() - offsetMin * 60_000;
  if (bound === 'end' && !frac) {
    const step = hs === undefined ? 86_400_000 : ss === undefined ? 60_000 : 1000;
    at += step - 1;
  }
  return new Date(at);
}

/** Like parseAbdmDateTime, for values a schema has already checked. */
export function abdmInstant(value: string, bound: Bound = 'start'): Date {
  const d = parseAbdmDateTime(value, bound);
  if (!d) throw new Error('not an ABDM date-time'); // schemas refuse such values before this is reached
  return d;
}

/**
 * The instant a FHIR date/dateTime starts at; its end (exclusive) is the start
 * of the next year, month, day or instant at the value's precision. Dates
 * without a time are taken in UTC.
 */
export function fhirDateRange(value: string): { start: Date; end: Date } | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(
    value,
  );
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y),
    month = mo ? Number(mo) - 1 : 0,
    day = d ? Number(d) : 1;
  if (month < 0 || month > 11 || day < 1 || day > daysIn(year, month + 1)) return undefined; // e.g. 2024-02-30
  if (h !== undefined) {
    const iso = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${tz ?? 'Z'}`;
    const start = new Date(iso);
    if (Number.isNaN(start.getTime()) || Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return undefined;
    const step = s === undefined ? 60_000 : frac === undefined ? 1000 : 1;
    return { start, end: new Date(start.getTime() + step) };
  }
  const start = utc(year, month, day);
  const end = d ? utc(year, month, day + 1) : mo ? utc(year, month + 1, 1) : utc(year + 1, 0, 1);
  return { start, end };
}

/** Date.UTC without its mapping of years 0-99 to 1900-1999. */
function utc(year: number, month: number, day: number): Date {
  const d = new Date(Date.UTC(2000, month, day));
  d.setUTCFullYear(year + (d.getUTCFullYear() - 2000));
  return d;
}

export const fhirDateStart = (value: unknown) => (typeof value === 'string' ? fhirDateRange(value)?.start : undefined);
