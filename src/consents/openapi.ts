/** The consent routes' part of the OpenAPI document (src/openapi.ts). */
import { z } from 'zod';
import { type ConsentDetail, ConsentNotifyV05, ConsentNotifyV3, STATUSES } from './schema.js';
import { type OpenApiPart, AUTHED, errors, json, post } from '../http/openapi.js';

const grantedDetail: z.input<typeof ConsentDetail> = {
  consentId: '3f2d8a4e-6b1c-4c1e-9a57-0d7c4f0e9b21',
  createdAt: '2024-05-01T10:00:00.000Z',
  patient: { id: 'ravi.kumar@sbx' },
  careContexts: [{ patientReference: 'ravi.kumar@sbx', careContextReference: 'OP-2024-0001' }],
  purpose: { text: 'Care Management', code: 'CAREMGT' },
  hip: { id: 'HIP-SBX-1', name: 'City Hospital' },
  hiu: { id: 'HIU-SBX-1' },
  consentManager: { id: 'sbx' },
  hiTypes: ['Prescription', 'OPConsultation'],
  permission: {
    accessMode: 'VIEW',
    dateRange: { from: '2023-01-01T00:00:00.000Z', to: '2024-12-31T23:59:59.000Z' },
    dataEraseAt: '2099-01-01T00:00:00.000Z',
    frequency: { unit: 'HOUR', value: 1, repeats: 0 },
  },
};

/** One valid body per request schema: what a client sends, and a seed for schemathesis. */
const EXAMPLES: {
  ConsentNotifyV05: z.input<typeof ConsentNotifyV05>;
  ConsentNotifyV3: z.input<typeof ConsentNotifyV3>;
} = {
  ConsentNotifyV05: {
    requestId: '5f7a535d-a3fd-416b-b069-c97d021fbacd',
    timestamp: '2024-05-01T10:00:01.000Z',
    notification: {
      consentId: grantedDetail.consentId,
      status: 'GRANTED',
      consentDetail: grantedDetail,
      signature: 'c2lnbmF0dXJl',
      grantAcknowledgement: false,
    },
  },
  ConsentNotifyV3: { notification: { consentId: '9b1e0c7a-2f4d-4e8b-8c3a-5d6e7f8a9b0c', status: 'REVOKED' } },
};

export const consentsOpenApi: OpenApiPart = {
  tags: [{ name: 'consent', description: 'Consent notifications and consents' }],
  paths: {
    '/v0.5/consents/hip/notify': post({
      operationId: 'consentNotifyV05',
      tag: 'consent',
      summary: 'Consent notification, ABDM v0.5 (role cm)',
      body: 'ConsentNotifyV05',
      example: EXAMPLES.ConsentNotifyV05,
      accepted: 'ConsentNotifyAccepted',
    }),
    '/api/v3/consent/request/hip/notify': post({
      operationId: 'consentNotifyV3',
      tag: 'consent',
      summary: 'Consent notification, ABDM v3 (role cm)',
      body: 'ConsentNotifyV3',
      example: EXAMPLES.ConsentNotifyV3,
      accepted: 'ConsentNotifyAccepted',
      v3: true,
      requestIdOptional: true,
      description:
        'Applied even without REQUEST-ID (a revocation is never refused for its envelope); acknowledged on /consent/v3/request/hip/on-notify when it has one.',
    }),
    '/consents/{id}': {
      get: {
        operationId: 'readConsent',
        tags: ['consent'],
        summary: 'A consent as the store holds it (role admin, or the hiu it was granted to)',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1 } }],
        responses: { '200': { description: 'The consent', ...json('Consent') }, ...errors(404, ...AUTHED) },
      },
    },
  },
  requests: {
    ConsentNotifyV05: { schema: ConsentNotifyV05, example: EXAMPLES.ConsentNotifyV05 },
    ConsentNotifyV3: { schema: ConsentNotifyV3, example: EXAMPLES.ConsentNotifyV3 },
  },
  responses: {
    ConsentNotifyAccepted: z.object({
      consentId: z.string(),
      status: z.enum(STATUSES),
      result: z.enum(['stored', 'unchanged', 'ignored-terminal']),
    }),
    Consent: z.object({ id: z.string(), status: z.enum(STATUSES) }).passthrough(),
  },
};
