/**
 * Recognising a patient's ABHA number and ABHA address among Patient.identifier.
 *
 * The IG fixes no single identifier system (its own examples use v2-0203 `MR`
 * or `NNIND` with https://healthid.ndhm.gov.in), so the rule is:
 *
 * 1. An identifier is *claimed* ABHA when its type has a coding `ABHA` or `HIN`
 *    from the IG's identifier-type CodeSystem (NDHM_IDENTIFIER_TYPE), or its
 *    `system` (a trailing slash ignored) is one of the configured ABHA systems
 *    (ABHA_IDENTIFIER_SYSTEMS). A claim wins whatever other type codings say.
 * 2. An identifier that is not claimed but has a `system` (any other one) or a
 *    `type` (e.g. v2-0203 `MR`) is never ABHA, whatever its value looks like: a
 *    hospital MRN shaped like an ABHA number is still an MRN.
 * 3. Only a bare identifier (no system, no type) is recognised by the shape of
 *    its value alone: `XX-XXXX-XXXX-XXXX` or 14 digits as a number, `name@abdm`
 *    or `name@sbx` as an address.
 * 4. Claimed identifiers come first: bare ones count for a kind (number or
 *    address) only when no claimed identifier gives a value of that kind.
 * 5. Among the identifiers that count, two different numbers (or two
 *    different addresses) are a conflict, reported with both positions; the
 *    same number written twice (dashed and plain) is not.
 *
 * 6. A patient left with neither an ABHA number nor an ABHA address is not
 *    identified (the profile stage reports both that and the conflicts).
 *
 * A claimed identifier whose value has neither shape is reported as malformed.
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
  /**
   * Identifiers that count (rule 4) and give a number or address different from
   * the first one of that kind; `first` is that first one. Empty when the identity is unambiguous.
   */
  conflicts: AbhaConflict[];
}

export interface AbhaConflict {
  kind: 'number' | 'address';
  first: { index: number; value: string };
  second: { index: number; value: string };
}

interface IdentifierLike {
  system?: unknown;
  value?: unknown;
  type?: { coding?: unknown };
}
interface Candidate {
  index: number;
  value: string;
  normalised: string;
}

/** True when `raw` claims to be ABHA by its type coding or its system (rule 1). */
function claimsAbha(raw: IdentifierLike, systems: readonly string[]): boolean {
  const coding = raw.type && typeof raw.type === 'object' ? raw.type.coding : undefined;
  const typed =
    Array.isArray(coding) &&
    coding.some(
      (c) =>
        !!c && typeof c === 'object' && c.system === NDHM_IDENTIFIER_TYPE && (c.code === 'ABHA' || c.code === 'HIN'),
    );
  return typed || (typeof raw.system === 'string' && systems.includes(raw.system.replace(/\/$/, '')));
}

export function abhaIdentity(identifiers: unknown, systems: readonly string[]): AbhaIdentity {
  const out: AbhaIdentity = { malformed: [], conflicts: [] };
  if (!Array.isArray(identifiers)) return out;
  const claimed = { number: [] as Candidate[], address: [] as Candidate[] };
  const bare = { number: [] as Candidate[], address: [] as Candidate[] };
  identifiers.forEach((raw: IdentifierLike, index) => {
    if (!raw || typeof raw !== 'object' || typeof raw.value !== 'string') return;
    const value = raw.value;
    const isClaimed = claimsAbha(raw, systems);
    // Rule 2: any system or type that is not a claim makes this some other identifier.
    if (!isClaimed && (raw.system != null || raw.type != null)) return;
    const to = isClaimed ? claimed : bare;
    const number = normaliseAbhaNumber(value);
    const address = number ? undefined : normaliseAbhaAddress(value);
    if (number) to.number.push({ index, value, normalised: number });
    else if (address) to.address.push({ index, value, normalised: address });
    else if (isClaimed) out.malformed.push({ index, value });
  });
  for (const kind of ['number', 'address'] as const) {
    const counted = claimed[kind].length > 0 ? claimed[kind] : bare[kind];
    if (counted.length === 0) continue;
    const first = counted[0];
    if (kind === 'number') out.abhaNumber = first.normalised;
    else out.abhaAddress = first.normalised;
    for (const c of counted) {
      if (c.normalised !== first.normalised)
        out.conflicts.push({
          kind,
          first: { index: first.index, value: first.value },
          second: { index: c.index, value: c.value },
        });
    }
  }
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
