/**
 * Recognising a patient's ABHA number and ABHA address among Patient.identifier.
 *
 * The IG fixes no single identifier system (its own examples use v2-0203 `MR`
 * with https://healthid.ndhm.gov.in), so an identifier counts as ABHA when its
 * type is `ABHA`/`HIN` from the IG's identifier-type CodeSystem, or its system
 * is one of the configured ABHA systems, or its value has a shape only ABHA
 * uses (`XX-XXXX-XXXX-XXXX`, or `name@abdm` / `name@sbx`).
 */

export const NDHM_IDENTIFIER_TYPE = 'https://nrces.in/ndhm/fhir/r4/CodeSystem/ndhm-identifier-type-code';
export const DEFAULT_ABHA_SYSTEMS = [
  'https://healthid.ndhm.gov.in',
  'https://healthid.abdm.gov.in',
  'https://abha.abdm.gov.in',
];

const NUMBER_DASHED = /^\d{2}-\d{4}-\d{4}-\d{4}$/;
const NUMBER_PLAIN = /^\d{14}$/;
const ADDRESS = /^[a-zA-Z0-9][a-zA-Z0-9_.]+[a-zA-Z0-9]@(abdm|sbx)$/i;

/** Digits of an ABHA number given with or without dashes, else undefined. */
export function normaliseAbhaNumber(value: string): string | undefined {
  const v = value.trim();
  if (NUMBER_DASHED.test(v) || NUMBER_PLAIN.test(v)) return v.replace(/-/g, '');
  return undefined;
}

/** Lower-cased ABHA address, else undefined. */
export function normaliseAbhaAddress(value: string): string | undefined {
  const v = value.trim();
  return ADDRESS.test(v) ? v.toLowerCase() : undefined;
}

export interface AbhaIdentity {
  abhaNumber?: string;
  abhaAddress?: string;
  /** Identifiers that claim to be ABHA (by type or system) but whose value is neither shape. */
  malformed: { index: number; value: string }[];
}

interface IdentifierLike { system?: string; value?: string; type?: { coding?: { system?: string; code?: string }[] } }

export function abhaIdentity(identifiers: unknown, systems: readonly string[]): AbhaIdentity {
  const out: AbhaIdentity = { malformed: [] };
  if (!Array.isArray(identifiers)) return out;
  identifiers.forEach((raw: IdentifierLike, index) => {
    if (!raw || typeof raw !== 'object' || typeof raw.value !== 'string') return;
    const codings = Array.isArray(raw.type?.coding) ? raw.type!.coding! : [];
    const typed = codings.some((c) => c?.system === NDHM_IDENTIFIER_TYPE && (c.code === 'ABHA' || c.code === 'HIN'));
    const claimed = typed || (typeof raw.system === 'string' && systems.includes(raw.system.replace(/\/$/, '')));
    const number = normaliseAbhaNumber(raw.value);
    const address = normaliseAbhaAddress(raw.value);
    if (number && (claimed || NUMBER_DASHED.test(raw.value.trim()))) out.abhaNumber ??= number;
    else if (address) out.abhaAddress ??= address;
    else if (claimed) out.malformed.push({ index, value: raw.value });
  });
  return out;
}

/** For search: classify a `patient-abha` parameter value. */
export function parseAbhaParam(value: string): { abhaNumber: string } | { abhaAddress: string } | undefined {
  const n = normaliseAbhaNumber(value);
  if (n) return { abhaNumber: n };
  const a = normaliseAbhaAddress(value);
  return a ? { abhaAddress: a } : undefined;
}

/** ABHA numbers are identifiers of people: mask them wherever they might be logged. */
export const maskAbhaNumber = (digits: string) => `xx-xxxx-xxxx-${digits.slice(-4)}`;
