/**
 * The consent policy, pure: may this caller, now, see this record under this
 * consent? `decide` answers for one record, with the reason; `consentFilter`
 * is the same rule as a database filter, so counting and paging only ever see
 * allowed records. The two are tested against each other.
 *
 * Interpretations (documented in README "Consent rules"):
 * - dateRange is inclusive at both ends: from <= record date <= to.
 * - access ends at dataEraseAt: allowed while now < dataEraseAt.
 * - the patient is matched by ABHA address, or by ABHA number when the
 *   consent names a number (ABHA addresses compared case-insensitively).
 * - care contexts are matched by careContextReference (patientReference is the
 *   HIP's own patient id, which this store does not hold separately).
 * - accessMode: a direct fetch is a VIEW, QUERY or STORE; a STREAM consent is
 *   served only through the health-information push.
 */
import { normaliseAbhaAddress, normaliseAbhaNumber } from '../fhir/abha.js';
import type { ConsentDoc } from './store.js';

export interface RecordFacts {
  provider: string;
  abhaNumber: string | null;
  abhaAddress: string | null;
  careContext: string;
  hiType: string;
  recordDate: Date;
}

export interface Viewer {
  role: string;
  facilityId: string;
}

export type Decision = { allow: true } | { allow: false; reason: string };

const FETCH_MODES = new Set(['VIEW', 'QUERY', 'STORE']);
const deny = (reason: string): Decision => ({ allow: false, reason });

/** Checks that do not depend on a record: the consent is live, and this viewer's. */
export function consentUsable(consent: ConsentDoc | null, viewer: Viewer, now: Date): Decision {
  if (!consent) return deny('consent not found');
  if (consent.status !== 'GRANTED') return deny(`consent is ${consent.status}`);
  const t = consent.terms;
  if (!t) return deny('consent has been erased');
  if (!(now.getTime() < t.dataEraseAt.getTime())) return deny('consent has expired (dataEraseAt reached)');
  if (viewer.role !== 'hiu') return deny('only a health information user (role hiu) fetches under a consent');
  if (!t.hiu || viewer.facilityId !== t.hiu) return deny('consent was granted to another health information user');
  if (!FETCH_MODES.has(t.accessMode)) return deny(`consent accessMode ${t.accessMode} does not allow a direct fetch`);
  return { allow: true };
}

export function decide(consent: ConsentDoc | null, record: RecordFacts, viewer: Viewer, now: Date): Decision {
  const usable = consentUsable(consent, viewer, now);
  if (!usable.allow) return usable;
  const t = consent!.terms!;
  if (record.provider !== t.hip) return deny("record is not the consent's provider's");
  const p = patientKey(t.patient);
  if (p.abhaNumber !== undefined ? record.abhaNumber !== p.abhaNumber : record.abhaAddress !== p.abhaAddress)
    return deny("record is not the consent's patient's");
  if (!t.careContexts.includes(record.careContext)) return deny('care context not in the consent');
  if (!t.hiTypes.includes(record.hiType)) return deny('record type not in the consent');
  const d = record.recordDate.getTime();
  if (d < t.dateFrom.getTime() || d > t.dateTo.getTime()) return deny("record date outside the consent's dateRange");
  return { allow: true };
}

/** The record-level rules of `decide` as a filter on the records collection. */
export function consentFilter(consent: ConsentDoc): Record<string, unknown> {
  const t = consent.terms!;
  const p = patientKey(t.patient);
  return {
    provider: t.hip,
    ...(p.abhaNumber !== undefined ? { abhaNumber: p.abhaNumber } : { abhaAddress: p.abhaAddress }),
    careContext: { $in: t.careContexts },
    hiType: { $in: t.hiTypes },
    recordDate: { $gte: t.dateFrom, $lte: t.dateTo },
  };
}

/** The consent's patient id as the index key it matches: an ABHA number, else an ABHA address (lower case). */
export function patientKey(
  id: string,
): { abhaNumber: string; abhaAddress?: undefined } | { abhaAddress: string; abhaNumber?: undefined } {
  const n = normaliseAbhaNumber(id);
  if (n) return { abhaNumber: n };
  return { abhaAddress: normaliseAbhaAddress(id) ?? id.trim().toLowerCase() };
}

/** The consent's patient as the audit trail records patients: ABHA number digits, else the lower-cased address. */
export function patientAuditKey(id: string): string {
  const p = patientKey(id);
  return p.abhaNumber ?? p.abhaAddress!;
}

/** Start and end of the frequency window containing `now` (UTC calendar units). */
export function frequencyWindow(unit: string, now: Date): { start: Date; end: Date } {
  const y = now.getUTCFullYear(),
    m = now.getUTCMonth(),
    d = now.getUTCDate(),
    h = now.getUTCHours();
  switch (unit) {
    case 'HOUR':
      return { start: new Date(Date.UTC(y, m, d, h)), end: new Date(Date.UTC(y, m, d, h + 1)) };
    case 'DAY':
      return { start: new Date(Date.UTC(y, m, d)), end: new Date(Date.UTC(y, m, d + 1)) };
    case 'WEEK': {
      const dow = (now.getUTCDay() + 6) % 7;
      return { start: new Date(Date.UTC(y, m, d - dow)), end: new Date(Date.UTC(y, m, d - dow + 7)) };
    }
    case 'MONTH':
      return { start: new Date(Date.UTC(y, m, 1)), end: new Date(Date.UTC(y, m + 1, 1)) };
    default:
      return { start: new Date(Date.UTC(y, 0, 1)), end: new Date(Date.UTC(y + 1, 0, 1)) };
  }
}
