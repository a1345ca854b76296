/**
 * What the store indexes beside each record, taken from a validated document.
 * Pure.
 */
import type { ValidDocument } from '../fhir/validate.js';
import { abhaIdentity } from '../fhir/abha.js';

export interface IndexKeys {
  identifierKey: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  recordDate: Date;
}

export function indexKeys(doc: ValidDocument, abhaSystems: readonly string[]): IndexKeys {
  const { bundle, facts, profile } = doc;
  const id = abhaIdentity(facts.patient.resource.identifier, abhaSystems);
  return {
    identifierKey: `${bundle.identifier.system}|${bundle.identifier.value}`,
    hiType: profile.hiType,
    abhaNumber: id.abhaNumber ?? null,
    abhaAddress: id.abhaAddress ?? null,
    recordDate: fhirDateStart(facts.composition.date) ?? new Date(bundle.timestamp),
  };
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
  if (h !== undefined) {
    const iso = `${y}-${mo}-${d}T${h}:${mi}:${s ?? '00'}${frac ?? ''}${tz ?? 'Z'}`;
    const start = new Date(iso);
    if (Number.isNaN(start.getTime())) return undefined;
    const step = s === undefined ? 60_000 : frac === undefined ? 1000 : 1;
    return { start, end: new Date(start.getTime() + step) };
  }
  const year = Number(y), month = mo ? Number(mo) - 1 : 0, day = d ? Number(d) : 1;
  if (month > 11 || day < 1 || day > 31) return undefined;
  const start = new Date(Date.UTC(year, month, day));
  if (start.getUTCMonth() !== month) return undefined; // e.g. 2024-02-30
  const end = d ? new Date(Date.UTC(year, month, day + 1)) : mo ? new Date(Date.UTC(year, month + 1, 1)) : new Date(Date.UTC(year + 1, 0, 1));
  return { start, end };
}

export const fhirDateStart = (value: unknown) => (typeof value === 'string' ? fhirDateRange(value)?.start : undefined);
