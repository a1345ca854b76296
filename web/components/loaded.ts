/** A record as the page keeps it: the stored document Bundle, its care context, record type and summary. */
import { type RecordSummary, recordSummary } from '../record/summary.js';

export const CARE_CONTEXT_EXTENSION = 'urn:abha-vault:care-context';
export const RECORD_TYPE_EXTENSION = 'urn:abha-vault:record-type';

export type Summary = RecordSummary;

export interface LoadedRecord {
  recordId: string;
  bundle: fhir4.Bundle;
  careContext: { code: string; display?: string } | undefined;
  hiType: string;
  summary: Summary;
  /** The record's date as a number, for ordering (0 when it has none). */
  time: number;
}

const EMPTY: Summary = {
  title: '',
  hiType: null,
  typeLabel: '',
  date: null,
  authors: [],
  facility: null,
  patientName: null,
  abhaNumber: null,
  abhaAddress: null,
};

function summaryOf(bundle: fhir4.Bundle): Summary {
  try {
    return recordSummary(bundle);
  } catch {
    return EMPTY;
  }
}

/** A searchset or history entry as a LoadedRecord (null when it holds no Bundle). */
export function loadedFromEntry(entry: fhir4.BundleEntry): LoadedRecord | null {
  const resource = entry.resource;
  if (!resource || resource.resourceType !== 'Bundle') return null;
  const bundle = resource as fhir4.Bundle;
  const ext = entry.extension ?? [];
  const coding = ext.find((e) => e.url === CARE_CONTEXT_EXTENSION)?.valueCoding;
  const type = ext.find((e) => e.url === RECORD_TYPE_EXTENSION)?.valueCode;
  return loadedFromBundle(
    bundle,
    coding?.code ? { code: coding.code, ...(coding.display ? { display: coding.display } : {}) } : undefined,
    type,
  );
}

export function loadedFromBundle(
  bundle: fhir4.Bundle,
  careContext?: LoadedRecord['careContext'],
  hiType?: string,
): LoadedRecord {
  const summary = summaryOf(bundle);
  const time = summary.date ? Date.parse(summary.date) : NaN;
  return {
    recordId: bundle.id ?? '',
    bundle,
    careContext,
    hiType: hiType || summary.hiType || '',
    summary,
    time: Number.isNaN(time) ? 0 : time,
  };
}

/** Newest first (by record date, then id). */
export const newestFirst = (a: LoadedRecord, b: LoadedRecord) =>
  b.time - a.time || (a.recordId < b.recordId ? 1 : a.recordId > b.recordId ? -1 : 0);
