/** The shapes of the API's JSON answers the page reads (consents and transfers; FHIR is typed by @types/fhir). */

export type ConsentStatus = 'GRANTED' | 'REVOKED' | 'EXPIRED' | 'DENIED';
export const CONSENT_STATUSES: readonly ConsentStatus[] = ['GRANTED', 'REVOKED', 'EXPIRED', 'DENIED'];

export interface ConsentTerms {
  patient: string;
  hip: string;
  hiu: string | null;
  careContexts: string[];
  hiTypes: string[];
  purpose: string;
  accessMode: string;
  dateFrom: string;
  dateTo: string;
  dataEraseAt: string;
  frequency: { unit: string; value: number; repeats: number | null };
}

export interface ConsentUsage {
  unit: string;
  value: number;
  used: number;
  remaining: number;
  windowStart: string;
  windowEnd: string;
}

export interface Consent {
  id: string;
  status: ConsentStatus;
  effectiveStatus: ConsentStatus;
  statusAt: string;
  history: { status: ConsentStatus; at: string }[];
  createdAt?: string | null;
  /** The patient's key (ABHA number digits or address), kept after the terms are erased. */
  patient?: string | null;
  hiu?: string | null;
  terms?: ConsentTerms;
  usage?: ConsentUsage;
}

export interface ConsentPage {
  consents: Consent[];
  next?: string;
}

export const TRANSFER_STATUSES = ['ACKNOWLEDGED', 'TRANSFERRING', 'TRANSFERRED', 'FAILED'] as const;
export type TransferStatus = (typeof TRANSFER_STATUSES)[number];

export interface Transfer {
  transactionId: string;
  consentId: string;
  status: TransferStatus;
  hip: string | null;
  dateRange?: { from: string; to: string };
  careContexts?: Record<string, string>;
  consentCareContexts?: string[];
  pageCount?: number;
  pagesSent?: number;
  error?: string | null;
  createdAt: string;
  updatedAt: string;
  dialect?: string;
}

export interface TransferPage {
  transactions: Transfer[];
  next?: string;
}

/** The next page of a JSON list: its `next` is a cursor (or, should it become one, a link). */
export function nextPath(path: string, next: string): string {
  if (next.startsWith('/') || /^https?:/.test(next)) return next;
  const url = new URL(path, location.origin);
  url.searchParams.set('_cursor', next);
  return url.pathname + url.search;
}
