/**
 * What the store indexes beside each record, taken from a validated document.
 * Pure.
 */
import { createHash } from 'node:crypto';
import type { ValidDocument } from '../fhir/validate.js';
import { type DocumentFacts, documentRules } from '../fhir/document.js';
import { fhirDateStart } from '../fhir/datetime.js';

export interface IndexKeys {
  identifierKey: string;
  hiType: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  recordDate: Date;
  /** Hash of the patient's name, gender and year of birth, for discovery by demographics (no names are stored). */
  demographicKey: string | null;
  /** Composition.title (1..1 in R4), for listings without bodies (`_summary`). */
  title: string | null;
  /**
   * Who wrote it: each Composition.author's display, else the name of the Practitioner or Organization it resolves
   * to.
   */
  author: string[];
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
    ...labelsOf(facts),
  };
}

const MAX_LABEL = 256;

/** The title and authors of a document, from its facts (fhir/document.ts documentRules). */
const labelsOf = (facts: DocumentFacts): Pick<IndexKeys, 'title' | 'author'> => ({
  title: typeof facts.composition.title === 'string' ? facts.composition.title.slice(0, MAX_LABEL) : null,
  author: authorsOf(facts),
});

/**
 * The title and authors of a parsed document bundle as an upload indexes them (the same code): for records stored
 * before the store kept them (records/migrate.ts). Null and none when the bundle is not a document documentRules can
 * read (every stored one is: validated at upload).
 */
export function documentLabels(bundle: Record<string, any>): Pick<IndexKeys, 'title' | 'author'> {
  const { facts } = documentRules(bundle);
  return facts ? labelsOf(facts) : { title: null, author: [] };
}

/** The names of a Composition's authors, as a listing shows them (at most 10, each at most 256 characters). */
function authorsOf(facts: DocumentFacts): string[] {
  const refs: unknown[] = Array.isArray(facts.composition.author) ? facts.composition.author : [];
  const names = refs.map((ref) => {
    const r = ref as { display?: unknown; reference?: unknown };
    if (typeof r?.display === 'string' && r.display.trim()) return r.display.trim();
    const target = typeof r?.reference === 'string' ? facts.resolve(r.reference, 0)?.resource : undefined;
    return target ? nameOf(target) : undefined;
  });
  return names
    .filter((n): n is string => !!n)
    .map((n) => n.slice(0, MAX_LABEL))
    .slice(0, 10);
}

/** A Practitioner's (HumanName) or Organization's (string) name, as text. */
function nameOf(resource: Record<string, any>): string | undefined {
  if (typeof resource.name === 'string') return resource.name.trim() || undefined;
  const names: any[] = Array.isArray(resource.name) ? resource.name : [];
  const n = names.find((x) => x?.use === 'official') ?? names[0];
  if (typeof n?.text === 'string' && n.text.trim()) return n.text.trim();
  const parts = [
    ...(Array.isArray(n?.prefix) ? n.prefix : []),
    ...(Array.isArray(n?.given) ? n.given : []),
    n?.family,
  ].filter((x) => typeof x === 'string' && x.trim());
  return parts.length ? parts.join(' ') : undefined;
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
