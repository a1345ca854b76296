/** The consent routes' part of the OpenAPI document (src/openapi.ts). */
import { z } from 'zod';
import { type ConsentDetail, ConsentNotifyV05, ConsentNotifyV3, STATUSES } from './schema.js';
import { type OpenApiPart, AUTHED, errors, json, listParameters, post } from '../http/openapi.js';

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

/** A consent as GET /consents/{id} and GET /consents answer it (consents/routes.ts). */
const Consent = z
  .object({
    id: z.string(),
    status: z.enum(STATUSES),
    /** EXPIRED also for a consent still GRANTED whose dataEraseAt has come (before the sweep ends it). */
    effectiveStatus: z.enum(STATUSES),
    statusAt: z.string(),
    history: z.array(z.object({ status: z.enum(STATUSES), at: z.string() })),
    hiu: z.string().nullable(),
    patient: z.string().nullable().optional(),
    /** While the consent is GRANTED: what is left of its frequency in the current window. */
    usage: z
      .object({
        unit: z.string(),
        value: z.number().int(),
        used: z.number().int(),
        remaining: z.number().int(),
        windowStart: z.string(),
        windowEnd: z.string(),
      })
      .optional(),
    /** Kept only while the consent is GRANTED. */
    terms: z.object({}).passthrough().optional(),
    artefact: z.object({}).passthrough().optional(),
  })
  .passthrough();

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
    '/consents': {
      get: {
        operationId: 'listConsents',
        tags: ['consent'],
        summary: 'Consents, newest status first (role admin: all; role hiu: those granted to it)',
        description:
          'Each as GET /consents/{id} answers it. Paged with _count and the opaque _cursor of `next`; reading consents never counts a pull.',
        parameters: [
          {
            name: 'status',
            in: 'query',
            required: false,
            description: 'Only consents with one of these stored statuses; repeatable, or a comma-separated list',
            schema: { type: 'array', items: { type: 'string', enum: [...STATUSES] } },
            style: 'form',
            explode: true,
          },
          {
            name: 'patient',
            in: 'query',
            required: false,
            description: "Only this patient's consents (role admin only): an ABHA number or ABHA address",
            schema: { type: 'string', minLength: 1, maxLength: 256 },
            examples: { address: { value: 'ravi.kumar@sbx' }, number: { value: '91-1234-5678-9012' } },
          },
          ...listParameters,
        ],
        responses: {
          '200': { description: 'A page of consents', ...json('Consents') },
          ...errors(400, ...AUTHED),
        },
      },
    },
    '/consents/{id}': {
      get: {
        operationId: 'readConsent',
        tags: ['consent'],
        summary: 'A consent as the store holds it (role admin, or the hiu it was granted to, ended or not)',
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
    Consent,
    Consents: z.object({ consents: z.array(Consent), next: z.string().optional() }),
  },
};
