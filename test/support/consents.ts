/**
 * Consents in tests, as the consent manager sends them: a consent artefact
 * from a few terms, and the notification posted as role cm (v3 by default).
 */
import { v4 as uuidv4 } from 'uuid';
import type { TestApp } from './app.js';
import { v3Headers } from './stand-in-gateway.js';

export interface Terms {
  consentId?: string;
  patient: string;
  hip: string;
  hiu: string;
  careContexts: string[];
  hiTypes?: string[];
  from?: string;
  to?: string;
  dataEraseAt?: string;
  createdAt?: string;
  accessMode?: 'VIEW' | 'STORE' | 'QUERY' | 'STREAM';
  frequency?: { unit: 'HOUR' | 'DAY' | 'WEEK' | 'MONTH' | 'YEAR'; value: number };
}

/** The consentDetail of a grant with these terms (defaults: Prescription, 2020-2030, erased 2099, 100 pulls/hour). */
export function consentDetail(t: Terms & { consentId: string }) {
  return {
    consentId: t.consentId,
    createdAt: t.createdAt ?? '2024-01-01T00:00:00Z',
    patient: { id: t.patient },
    careContexts: t.careContexts.map((c) => ({ patientReference: t.patient, careContextReference: c })),
    purpose: { code: 'CAREMGT' },
    hip: { id: t.hip },
    hiu: { id: t.hiu },
    hiTypes: t.hiTypes ?? ['Prescription'],
    permission: {
      accessMode: t.accessMode ?? 'VIEW',
      dateRange: { from: t.from ?? '2020-01-01', to: t.to ?? '2030-01-01' },
      dataEraseAt: t.dataEraseAt ?? '2099-01-01T00:00:00Z',
      frequency: { ...(t.frequency ?? { unit: 'HOUR', value: 100 }), repeats: 0 },
    },
  };
}

/** Posts a consent notification as the consent manager: v3 (`{notification}`) or v0.5 (requestId, timestamp). */
export function notifyConsent(app: TestApp, notification: unknown, version: 'v3' | 'v0.5' = 'v3'): Promise<Response> {
  const v3 = version === 'v3';
  return app.request(v3 ? '/api/v3/consent/request/hip/notify' : '/v0.5/consents/hip/notify', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3 ? v3Headers() : { 'Content-Type': 'application/json' },
    body: JSON.stringify(
      v3 ? { notification } : { requestId: uuidv4(), timestamp: new Date().toISOString(), notification },
    ),
  });
}

/** Grants a consent with these terms; returns its id, and the answer (202 unless the terms are refused). */
export async function grantConsent(app: TestApp, terms: Terms): Promise<{ consentId: string; res: Response }> {
  const consentId = terms.consentId ?? uuidv4();
  const res = await notifyConsent(app, {
    consentId,
    status: 'GRANTED',
    consentDetail: consentDetail({ ...terms, consentId }),
  });
  return { consentId, res };
}
