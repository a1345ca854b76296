/** The ABDM gateway routes' part of the OpenAPI document (src/openapi.ts): health information, discovery, linking. */
import { z } from 'zod';
import { HiRequest, HiRequestV3 } from './routes.js';
import { Discover, DiscoverV3, LinkConfirm, LinkConfirmV3, LinkInit, LinkInitV3 } from './linking.js';
import { PatientStatusNotify } from './patient-status.js';
import { ContextOnNotify, OnCareContext, OnGenerateToken, SmsOnNotify } from './hip-linking-routes.js';
import { INBOUND } from './dialect.js';
import { SESSION_STATUSES } from './transfer.js';
import { type OpenApiPart, AUTHED, errors, json, listParameters, post } from '../http/openapi.js';

/** The `hiRequest` of both dialects' examples. */
const HI_REQUEST: z.input<typeof HiRequest>['hiRequest'] = {
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
};

/** One valid body per request schema: what a client sends, and a seed for schemathesis. */
const EXAMPLES: {
  HiRequestV3: z.input<typeof HiRequestV3>;
  CareContextDiscoverV3: z.input<typeof DiscoverV3>;
  LinkInitV3: z.input<typeof LinkInitV3>;
  LinkConfirmV3: z.input<typeof LinkConfirmV3>;
  PatientStatusNotify: z.input<typeof PatientStatusNotify>;
  OnGenerateToken: z.input<typeof OnGenerateToken>;
  OnCareContext: z.input<typeof OnCareContext>;
  ContextOnNotify: z.input<typeof ContextOnNotify>;
  SmsOnNotify: z.input<typeof SmsOnNotify>;
  HiRequest: z.input<typeof HiRequest>;
  CareContextDiscover: z.input<typeof Discover>;
  LinkInit: z.input<typeof LinkInit>;
  LinkConfirm: z.input<typeof LinkConfirm>;
} = {
  HiRequest: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000001',
    timestamp: '2024-05-02T09:00:00.000Z',
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000aa',
    hiRequest: HI_REQUEST,
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
  HiRequestV3: {
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000ab',
    hiRequest: HI_REQUEST,
  },
  CareContextDiscoverV3: {
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000bc',
    patient: {
      id: 'ravi.kumar@sbx',
      name: 'Ravi Kumar',
      gender: 'M',
      yearOfBirth: 1980,
      verifiedIdentifiers: [{ type: 'ABHA_NUMBER', value: '91-1234-5678-9012' }],
    },
  },
  LinkInitV3: {
    transactionId: 'a1b2c3d4-0000-4000-8000-0000000000bc',
    abhaAddress: 'ravi.kumar@sbx',
    patient: [
      {
        referenceNumber: 'ravi.kumar@sbx',
        careContexts: [{ referenceNumber: 'OP-2024-0001' }],
        hiType: 'Prescription',
        count: 1,
      },
    ],
  },
  LinkConfirmV3: { confirmation: { linkRefNumber: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', token: '123456' } },
  PatientStatusNotify: {
    requestId: 'a1b2c3d4-0000-4000-8000-000000000005',
    timestamp: '2024-05-02T09:03:00.000Z',
    notification: { status: 'DEACTIVATED', patient: { id: 'ravi.kumar@sbx' } },
  },
  OnGenerateToken: {
    abhaAddress: 'ravi.kumar@sbx',
    linkToken: 'eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl',
    response: { requestId: 'a1b2c3d4-0000-4000-8000-0000000000d1' },
  },
  OnCareContext: {
    abhaAddress: 'ravi.kumar@sbx',
    status: 'Successfully Linked care context',
    response: { requestId: 'a1b2c3d4-0000-4000-8000-0000000000d2' },
  },
  ContextOnNotify: {
    acknowledgement: { status: 'SUCCESS' },
    response: { requestId: 'a1b2c3d4-0000-4000-8000-0000000000d3' },
  },
  SmsOnNotify: {
    acknowledgement: { status: 'SUCCESS' },
    response: { requestId: 'a1b2c3d4-0000-4000-8000-0000000000d4' },
  },
};

const accepted = z.object({}).passthrough();

/** A transfer as the admin routes answer it (abdm/routes.ts): never with the sender's key material. */
const HiTransaction = z
  .object({
    transactionId: z.string(),
    consentId: z.string(),
    status: z.enum(SESSION_STATUSES),
  })
  .passthrough();

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
    [INBOUND.hiRequest.v3]: post({
      operationId: 'healthInformationRequestV3',
      tag: 'health-information',
      summary: 'Health-information request, ABDM v3 (role cm)',
      body: 'HiRequestV3',
      example: EXAMPLES.HiRequestV3,
      accepted: 'HiRequestAccepted',
      v3: true,
      hipHeader: true,
      description:
        "As the v0.5 request (X-HIP-ID must be the consent's HIP); answered on /data-flow/v3/health-information/hip/on-request and notify in v3.",
    }),
    '/admin/health-information/transactions': {
      get: {
        operationId: 'listHiTransactions',
        tags: ['health-information'],
        summary: 'Health-information transfers, newest first, without key material (role admin)',
        description:
          'Each as GET /admin/health-information/transactions/{id} answers it; paged with _count and _cursor.',
        parameters: [
          {
            name: 'consentId',
            in: 'query',
            required: false,
            description: "Only this consent's transfers",
            schema: { type: 'string', minLength: 1, maxLength: 128 },
          },
          {
            name: 'status',
            in: 'query',
            required: false,
            description: 'Only transfers in one of these states; repeatable, or a comma-separated list',
            schema: { type: 'array', items: { type: 'string', enum: [...SESSION_STATUSES] } },
            style: 'form',
            explode: true,
          },
          ...listParameters,
        ],
        responses: {
          '200': { description: 'A page of transfers', ...json('HiTransactions') },
          ...errors(400, ...AUTHED),
        },
      },
    },
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
    [INBOUND.discover.v3]: post({
      operationId: 'careContextDiscoverV3',
      tag: 'linking',
      summary: 'Care-context discovery, ABDM v3 (role cm)',
      body: 'CareContextDiscoverV3',
      example: EXAMPLES.CareContextDiscoverV3,
      accepted: 'DiscoverAccepted',
      v3: true,
      hipHeader: true,
    }),
    [INBOUND.linkInit.v3]: post({
      operationId: 'linkInitV3',
      tag: 'linking',
      summary: 'Start linking care contexts, ABDM v3: sends a one-time code (role cm)',
      body: 'LinkInitV3',
      example: EXAMPLES.LinkInitV3,
      accepted: 'LinkInitAccepted',
      v3: true,
      hipHeader: true,
    }),
    [INBOUND.linkConfirm.v3]: post({
      operationId: 'linkConfirmV3',
      tag: 'linking',
      summary: 'Confirm linking with the one-time code, ABDM v3 (role cm)',
      body: 'LinkConfirmV3',
      example: EXAMPLES.LinkConfirmV3,
      accepted: 'LinkConfirmAccepted',
      v3: true,
      hipHeader: true,
    }),
    [INBOUND.patientStatus['v0.5']]: post({
      operationId: 'patientStatusNotify',
      tag: 'linking',
      summary: "An ABHA's status changed: DEACTIVATED, REACTIVATED or DELETED (role cm)",
      body: 'PatientStatusNotify',
      example: EXAMPLES.PatientStatusNotify,
      accepted: 'Accepted',
      description:
        "DEACTIVATED and DELETED end the address's consents and drop its links and discovery keys; health records stay.",
    }),
    [INBOUND.onGenerateToken.v3]: post({
      operationId: 'onGenerateToken',
      tag: 'linking',
      summary: "HIP-initiated linking: the gateway's link token (role cm)",
      body: 'OnGenerateToken',
      example: EXAMPLES.OnGenerateToken,
      accepted: 'Accepted',
      v3: true,
    }),
    [INBOUND.onCareContext.v3]: post({
      operationId: 'onCareContext',
      tag: 'linking',
      summary: 'HIP-initiated linking: the outcome of link/carecontext (role cm)',
      body: 'OnCareContext',
      example: EXAMPLES.OnCareContext,
      accepted: 'Accepted',
      v3: true,
    }),
    [INBOUND.contextOnNotify.v3]: post({
      operationId: 'contextOnNotify',
      tag: 'linking',
      summary: 'The outcome of a context notify (role cm)',
      body: 'ContextOnNotify',
      example: EXAMPLES.ContextOnNotify,
      accepted: 'Accepted',
      v3: true,
    }),
    [INBOUND.smsOnNotify.v3]: post({
      operationId: 'smsOnNotify',
      tag: 'linking',
      summary: 'The outcome of an SMS notify (role cm)',
      body: 'SmsOnNotify',
      example: EXAMPLES.SmsOnNotify,
      accepted: 'Accepted',
      v3: true,
    }),
    '/admin/hip-links': {
      get: {
        operationId: 'listHipLinks',
        tags: ['linking'],
        summary: 'HIP-initiated linking, context and SMS notify jobs: state, attempts, last error (role admin)',
        parameters: ['status', 'kind', '_count', 'after'].map((name) => ({
          name,
          in: 'query',
          required: false,
          schema: { type: 'string' },
        })),
        responses: { '200': { description: 'A page of jobs', ...json('HipLinks') }, ...errors(400, ...AUTHED) },
      },
    },
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
    HiRequestV3: { schema: HiRequestV3, example: EXAMPLES.HiRequestV3 },
    CareContextDiscoverV3: { schema: DiscoverV3, example: EXAMPLES.CareContextDiscoverV3 },
    LinkInitV3: { schema: LinkInitV3, example: EXAMPLES.LinkInitV3 },
    LinkConfirmV3: { schema: LinkConfirmV3, example: EXAMPLES.LinkConfirmV3 },
    PatientStatusNotify: { schema: PatientStatusNotify, example: EXAMPLES.PatientStatusNotify },
    OnGenerateToken: { schema: OnGenerateToken, example: EXAMPLES.OnGenerateToken },
    OnCareContext: { schema: OnCareContext, example: EXAMPLES.OnCareContext },
    ContextOnNotify: { schema: ContextOnNotify, example: EXAMPLES.ContextOnNotify },
    SmsOnNotify: { schema: SmsOnNotify, example: EXAMPLES.SmsOnNotify },
    CareContextDiscover: { schema: Discover, example: EXAMPLES.CareContextDiscover },
    LinkInit: { schema: LinkInit, example: EXAMPLES.LinkInit },
    LinkConfirm: { schema: LinkConfirm, example: EXAMPLES.LinkConfirm },
  },
  responses: {
    Accepted: accepted,
    HipLinks: z.object({ count: z.number(), jobs: z.array(z.object({}).passthrough()), next: z.string().optional() }),
    HiRequestAccepted: z.object({
      transactionId: z.string(),
      status: z.enum(['ACKNOWLEDGED', 'ERRORED']),
      reason: z.string().optional(),
    }),
    HiTransaction,
    HiTransactions: z.object({ transactions: z.array(HiTransaction), next: z.string().optional() }),
    DiscoverAccepted: z.object({ transactionId: z.string(), found: z.boolean() }),
    LinkInitAccepted: z.union([
      z.object({ transactionId: z.string(), linkRefNumber: z.string() }),
      z.object({ transactionId: z.string(), status: z.literal('ERRORED') }),
    ]),
    LinkConfirmAccepted: z.object({
      linkRefNumber: z.string(),
      status: z.enum(['LINKED', 'ALREADY_LINKED', 'ERRORED']),
      reason: z.string().optional(),
    }),
  },
};
