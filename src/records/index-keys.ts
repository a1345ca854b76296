/**
 * What the store indexes beside each record, taken from a validated document.
 * Pure.
 */
import { createHash } from 'node:crypto';
import type { ValidDocument } from '../fhir/validate.js';
import { fhirDateStart } from '../fhir/datetime.js';

export interface IndexKeys {
  identifierKey: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  recordDate: Date;
  /** Hash of the patient's name, gender and year of birth, for discovery by demographics (no names are stored). */
  demographicKey: string | null;
}

export function indexKeys(doc: ValidDocument): IndexKeys {
  const { bundle, facts, profile, identity: id } = doc;
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

const GENDERS: Record<string, string> = {
  male: 'M',
  female: 'F',
  other: 'O',
  unknown: 'U',
  m: 'M',
  f: 'F',
  o: 'O',
  u: 'U',
};

/**
 * The key discovery matches on when the consent manager offers verified
 * demographics: SHA-256 of the normalised full name, gender (M/F/O/U) and year
 * of birth. Null when any of the three is missing.
 */
export function demographicKey(
  name: string | undefined,
  gender: string | undefined,
  yearOfBirth: number | string | undefined,
): string | null {
  const n = (name ?? '')
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
  const g = GENDERS[(gender ?? '').toLowerCase()];
  const y = String(yearOfBirth ?? '');
  if (!n || !g || !/^\d{4}$/.test(y)) return null;
  return createHash('sha256').update(`${n}|${g}|${y}`).digest('hex');
}

function patientDemographicKey(patient: Record<string, any>): string | null {
  const names: any[] = Array.isArray(patient.name) ? patient.name : [];
  const chosen = names.find((x) => x?.use === 'official') ?? names[0];
  const full =
    typeof chosen?.text === 'string'
      ? chosen.text
      : [...(Array.isArray(chosen?.given) ? chosen.given : []), chosen?.family]
          .filter((x) => typeof x === 'string')
          .join(' ');
  return demographicKey(
    full,
    patient.gender,
    typeof patient.birthDate === 'string' ? patient.birthDate.slice(0, 4) : undefined,
  );
}
