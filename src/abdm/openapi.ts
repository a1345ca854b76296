/** The ABDM gateway routes' part of the OpenAPI document (src/openapi.ts): health information, discovery, linking. */
import { z } from 'zod';
import { HiRequest } from './routes.js';
import { Discover, LinkConfirm, LinkInit } from './linking.js';
import { type OpenApiPart, AUTHED, errors, json, post } from '../http/openapi.js';

/** One valid body per request schema: what a client sends, and a seed for schemathesis. */
const EXAMPLES: {
  HiRequest: z.input<typeof HiRequest>;
  CareContextDiscover: z.input<typeof Discover>;
  LinkInit: z.input<typeof LinkInit>;
  LinkConfirm: z.input<typeof LinkConfirm>;
} = {
  HiRequest: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000001',
    timestamp: '2024-05-02T09:00:00.000Z',
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000aa',
    hiRequest: {
      consent: { id: 'c0ffee00-0000-4000-8000-000000000000' },
      dateRange: { from: '2023-01-01T00:00:00.000Z', to: '2024-12-31T23:59:59.000Z' },
      dataPushUrl: 'https://hiu.example.org/data/push',
      keyMaterial: {
        cryptoAlg: 'ECDH',
        curve: 'Curve25519',
        dhPublicKey: {
          expiry: '2099-01-01T00:00:00.000Z',
          parameters: 'Curve25519/32byte random key',
          keyValue: 'BEVdUHqirzS4dcL7gdc0E4BMnIyby6UHgSimVNweWSxIZkgRJ8HLAfZosEyFm/hJ7sFlmI36DI0S6FORVMlUH5Y=',
        },
        nonce: 'Qg/UIgb4t75oncoTaYwur8HgLngu6p7drEBBYKKCjxs=',
      },
    },
  },
  CareContextDiscover: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000002',
    timestamp: '2024-05-02T09:00:00.000Z',
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000bb',
    patient: {
      id: 'ravi.kumar@sbx',
      verifiedIdentifiers: [{ type: 'NDHM_HEALTH_NUMBER', value: '91-1234-5678-9012' }],
      name: 'Ravi Kumar',
      gender: 'M',
      yearOfBirth: 1980,
    },
  },
  LinkInit: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000003',
    timestamp: '2024-05-02T09:01:00.000Z',
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000bb',
    patient: {
      id: 'ravi.kumar@sbx',
      referenceNumber: 'ravi.kumar@sbx',
      careContexts: [{ referenceNumber: 'OP-2024-0001' }],
    },
  },
  LinkConfirm: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000004',
    timestamp: '2024-05-02T09:02:00.000Z',
    confirmation: { linkRefNumber: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', token: '123456' },
  },
};

export const abdmOpenApi: OpenApiPart = {
  tags: [
    { name: 'health-information', description: 'Health-information requests and transfers' },
    { name: 'linking', description: 'Care-context discovery and linking' },
  ],
  paths: {
    '/v0.5/health-information/hip/request': post({
      operationId: 'healthInformationRequest',
      tag: 'health-information',
      summary: 'Health-information request (role cm)',
      body: 'HiRequest',
      example: EXAMPLES.HiRequest,
      accepted: 'HiRequestAccepted',
      description:
        'Answered at once; refusals (unknown or expired consent, expired key) are acknowledged as ERRORED. The transfer runs in the background.',
    }),
    '/admin/health-information/transactions/{id}': {
      get: {
        operationId: 'readHiTransaction',
        tags: ['health-information'],
        summary: 'A health-information transfer, without key material (role admin)',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', minLength: 1 } }],
        responses: { '200': { description: 'The transfer', ...json('HiTransaction') }, ...errors(404, ...AUTHED) },
      },
    },
    '/v0.5/care-contexts/discover': post({
      operationId: 'careContextDiscover',
      tag: 'linking',
      summary: 'Care-context discovery (role cm)',
      body: 'CareContextDiscover',
      example: EXAMPLES.CareContextDiscover,
      accepted: 'DiscoverAccepted',
      hipHeader: true,
    }),
    '/v0.5/links/link/init': post({
      operationId: 'linkInit',
      tag: 'linking',
      summary: 'Start linking care contexts: sends a one-time code (role cm)',
      body: 'LinkInit',
      example: EXAMPLES.LinkInit,
      accepted: 'LinkInitAccepted',
      hipHeader: true,
    }),
    '/v0.5/links/link/confirm': post({
      operationId: 'linkConfirm',
      tag: 'linking',
      summary: 'Confirm linking with the one-time code (role cm)',
      body: 'LinkConfirm',
      example: EXAMPLES.LinkConfirm,
      accepted: 'LinkConfirmAccepted',
    }),
  },
  requests: {
    HiRequest: { schema: HiRequest, example: EXAMPLES.HiRequest },
    CareContextDiscover: { schema: Discover, example: EXAMPLES.CareContextDiscover },
    LinkInit: { schema: LinkInit, example: EXAMPLES.LinkInit },
    LinkConfirm: { schema: LinkConfirm, example: EXAMPLES.LinkConfirm },
  },
  responses: {
    HiRequestAccepted: z.object({
      transactionId: z.string(),
      status: z.enum(['ACKNOWLEDGED', 'ERRORED']),
      reason: z.string().optional(),
    }),
    HiTransaction: z
      .object({
        transactionId: z.string(),
        consentId: z.string(),
        status: z.enum(['ACKNOWLEDGED', 'TRANSFERRING', 'TRANSFERRED', 'FAILED']),
      })
      .passthrough(),
    DiscoverAccepted: z.object({ transactionId: z.string(), found: z.boolean() }),
    LinkInitAccepted: z.union([
      z.object({ transactionId: z.string(), linkRefNumber: z.string() }),
      z.object({ transactionId: z.string(), status: z.literal('ERRORED') }),
    ]),
    LinkConfirmAccepted: z.object({
      linkRefNumber: z.string(),
      status: z.enum(['LINKED', 'ERRORED']),
      reason: z.string().optional(),
    }),
  },
};
