/**
 * What the store indexes beside each record, taken from a validated document.
 * Pure.
 */
import { createHash } from 'node:crypto';
import type { ValidDocument } from '../fhir/validate.js';
import { abhaIdentity } from '../fhir/abha.js';

export interface IndexKeys {
  identifierKey: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  recordDate: Date;
  /** Hash of the patient's name, gender and year of birth, for discovery by demographics (no names are stored). */
  demographicKey: string | null;
}

export function indexKeys(doc: ValidDocument, abhaSystems: readonly string[]): IndexKeys {
  const { bundle, facts, profile } = doc;
  const id = abhaIdentity(facts.patient.resource.identifier, abhaSystems);
  return {
    identifierKey: bundleIdentifierKey(bundle.identifier.system, bundle.identifier.value),
    hiType: profile.hiType,
    abhaNumber: id.abhaNumber ?? null,
    abhaAddress: id.abhaAddress ?? null,
    recordDate: fhirDateStart(facts.composition.date) ?? new Date(bundle.timestamp),
    demographicKey: patientDemographicKey(facts.patient.resource),
  };
}

/**
 * The key of a Bundle.identifier: the JSON array [system, value], which no
 * other pair writes the same way ("a|b" + "c" and "a" + "b|c" stay apart).
 * Stores written before it used `system|value` (records/migrate.ts).
 */
export const bundleIdentifierKey = (system: string, value: string): string => JSON.stringify([system, value]);

const GENDERS: Record<string, string> = { male: 'M', female: 'F', other: 'O', unknown: 'U', m: 'M', f: 'F', o: 'O', u: 'U' };

/**
 * The key discovery matches on when the consent manager offers verified
 * demographics: SHA-256 of the normalised full name, gender (M/F/O/U) and year
 * of birth. Null when any of the three is missing.
 */
export function demographicKey(name: string | undefined, gender: string | undefined, yearOfBirth: number | string | undefined): string | null {
  const n = (name ?? '').normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  const g = GENDERS[(gender ?? '').toLowerCase()];
  const y = String(yearOfBirth ?? '');
  if (!n || !g || !/^\d{4}$/.test(y)) return null;
  return createHash('sha256').update(`${n}|${g}|${y}`).digest('hex');
}

function patientDemographicKey(patient: Record<string, any>): string | null {
  const names: any[] = Array.isArray(patient.name) ? patient.name : [];
  const chosen = names.find((x) => x?.use === 'official') ?? names[0];
  const full = typeof chosen?.text === 'string' ? chosen.text
    : [...(Array.isArray(chosen?.given) ? chosen.given : []), chosen?.family].filter((x) => typeof x === 'string').join(' ');
  return demographicKey(full, patient.gender, typeof patient.birthDate === 'string' ? patient.birthDate.slice(0, 4) : undefined);
}

/**
 * The instant a FHIR date/dateTime starts at; its end (exclusive) is the start
 * of the next year, month, day or instant at the value's precision. Dates
 * without a time are taken in UTC.
 */
export function fhirDateRange(value: string): { start: Date; end: Date } | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y), month = mo ? Number(mo) - 1 : 0, day = d ? Number(d) : 1;
  if (month < 0 || month > 11 || day < 1 || day > daysIn(year, month)) return undefined; // e.g. 2024-02-30
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
const daysIn = (year: number, month: number) => [31, (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month];

export const fhirDateStart = (value: unknown) => (typeof value === 'string' ? fhirDateRange(value)?.start : undefined);
