/**
 * The OpenAPI 3.1 description of the non-FHIR routes (ABDM consent
 * notifications, health-information request, care-context discovery and
 * linking, the consent manager's AuditEvent query, admin reads, health
 * checks), served at GET /openapi.json without authentication.
 *
 * Request bodies are generated from the very zod schemas the routes parse
 * with (`z.toJSONSchema(schema, { io: 'input' })`), so the document cannot
 * drift from what the server accepts. Checks the JSON Schema cannot express
 * (refinements: ISO dates, consentId agreement, http(s) URLs) answer 422.
 * Every refusal is an OperationOutcome (application/fhir+json).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { type ConsentDetail, ConsentNotifyV05, ConsentNotifyV3, STATUSES } from './consents/schema.js';
import { HiRequest } from './abdm/routes.js';
import { Discover, LinkInit, LinkConfirm } from './abdm/linking.js';

type JsonSchema = Record<string, unknown>;

/** A zod schema as the JSON Schema (draft 2020-12, the OpenAPI 3.1 dialect) of what a client may send. */
export function requestSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;
  return rest;
}

/** A zod schema as the JSON Schema of what the server answers; objects stay open, so fields may be added. */
const responseSchema = requestSchema;

/** Request bodies: component name → the zod schema its route parses with. */
export const REQUEST_SCHEMAS = {
  ConsentNotifyV05,
  ConsentNotifyV3,
  HiRequest,
  CareContextDiscover: Discover,
  LinkInit,
  LinkConfirm,
} as const satisfies Record<string, z.ZodType>;

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

/**
 * One valid body per request schema (the tests parse each with its zod
 * schema): what a client sends, and a seed for schemathesis's examples phase.
 */
export const REQUEST_EXAMPLES: { [K in keyof typeof REQUEST_SCHEMAS]: z.input<(typeof REQUEST_SCHEMAS)[K]> } = {
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

// The shapes the handlers answer with (see the routes' `c.json(...)` calls).
const RESPONSE_SCHEMAS = {
  ConsentNotifyAccepted: z.object({
    consentId: z.string(),
    status: z.enum(STATUSES),
    result: z.enum(['stored', 'unchanged', 'ignored-terminal']),
  }),
  Consent: z.object({ id: z.string(), status: z.enum(STATUSES) }).passthrough(),
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
  AuditEventBundle: z
    .object({
      resourceType: z.literal('Bundle'),
      type: z.literal('searchset'),
      total: z.number().int(),
      entry: z.array(
        z
          .object({ fullUrl: z.string(), resource: z.object({ resourceType: z.literal('AuditEvent') }).passthrough() })
          .passthrough(),
      ),
    })
    .passthrough(),
  Health: z.object({ status: z.literal('ok') }),
  Ready: z.object({ status: z.literal('ready') }),
  OperationOutcome: z.object({
    resourceType: z.literal('OperationOutcome'),
    issue: z
      .array(
        z.object({
          severity: z.enum(['fatal', 'error', 'warning', 'information']),
          code: z.string(),
          diagnostics: z.string().optional(),
          expression: z.array(z.string()).optional(),
        }),
      )
      .min(1),
  }),
} as const satisfies Record<string, z.ZodType>;

const FHIR_JSON = 'application/fhir+json';
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string, type = 'application/json') => ({ content: { [type]: { schema: ref(name) } } });

const ERROR_TEXT: Record<number, string> = {
  400: 'Bad request: empty, malformed or too deeply nested JSON, invalid UTF-8, a missing or invalid header or query parameter',
  401: 'No bearer token, or one that is not valid (expired, wrong signature, issuer or audience, no known role or facility)',
  403: "The token's role may not use this operation",
  404: 'Not found',
  413: 'Body larger than the configured limit (MAX_BODY_BYTES)',
  415: 'Content-Type is not application/json or application/fhir+json',
  422: 'The body does not satisfy the request schema or a rule the schema cannot express (ISO 8601 dates, matching consent ids, http(s) URLs)',
  429: 'Too many requests from this client (see Retry-After)',
  503: 'The database (or, for health-information requests, the ABDM gateway configuration) is unavailable',
};

/** OperationOutcome responses for these statuses. */
function errors(...statuses: number[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((s) => [
      String(s),
      {
        description: ERROR_TEXT[s],
        ...(s === 401
          ? { headers: { 'WWW-Authenticate': { description: 'Bearer', schema: { type: 'string' } } } }
          : {}),
        ...(s === 429
          ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'string' } } } }
          : {}),
        ...json('OperationOutcome', FHIR_JSON),
      },
    ]),
  );
}

const AUTHED = [401, 403, 429, 503];
const BODY = [400, 413, 415, 422];

const hipHeader = {
  name: 'X-HIP-ID',
  in: 'header',
  required: true,
  description: 'The health information provider (facility) the gateway addresses',
  schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' },
  example: 'HIP-SBX-1',
};

/** A POST that takes one of the REQUEST_SCHEMAS and answers 202. */
function post(opts: {
  summary: string;
  tag: string;
  operationId: string;
  body: keyof typeof REQUEST_SCHEMAS;
  accepted: keyof typeof RESPONSE_SCHEMAS;
  hipHeader?: boolean;
  description?: string;
}) {
  return {
    post: {
      operationId: opts.operationId,
      tags: [opts.tag],
      summary: opts.summary,
      ...(opts.description ? { description: opts.description } : {}),
      ...(opts.hipHeader ? { parameters: [hipHeader] } : {}),
      requestBody: {
        required: true,
        content: Object.fromEntries(
          ['application/json', FHIR_JSON].map((type) => [
            type,
            { schema: ref(opts.body), example: REQUEST_EXAMPLES[opts.body] },
          ]),
        ),
      },
      responses: {
        '202': { description: 'Accepted; the outcome goes to the gateway by callback', ...json(opts.accepted) },
        ...errors(...BODY, ...AUTHED),
      },
    },
  };
}

export function openApiDocument(): object {
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'abha-vault',
      version: '0.1.0',
      description:
        'Consent-gated FHIR R4 records store for ABDM: the non-FHIR routes (ABDM gateway callbacks, admin reads, health checks). ' +
        'The FHIR API is described by GET /fhir/metadata (CapabilityStatement). Roles come from the bearer token: hip, hiu, cm (consent manager / gateway), admin.',
    },
    security: [{ bearer: [] }],
    tags: [
      { name: 'consent', description: 'Consent notifications and consents' },
      { name: 'health-information', description: 'Health-information requests and transfers' },
      { name: 'linking', description: 'Care-context discovery and linking' },
      { name: 'audit', description: 'Access audit for the consent manager' },
      { name: 'ops', description: 'Health checks and this document' },
    ],
    paths: {
      '/v0.5/consents/hip/notify': post({
        operationId: 'consentNotifyV05',
        tag: 'consent',
        summary: 'Consent notification, ABDM v0.5 (role cm)',
        body: 'ConsentNotifyV05',
        accepted: 'ConsentNotifyAccepted',
      }),
      '/api/v3/consent/request/hip/notify': post({
        operationId: 'consentNotifyV3',
        tag: 'consent',
        summary: 'Consent notification, ABDM v3 (role cm)',
        body: 'ConsentNotifyV3',
        accepted: 'ConsentNotifyAccepted',
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
      '/v0.5/health-information/hip/request': post({
        operationId: 'healthInformationRequest',
        tag: 'health-information',
        summary: 'Health-information request (role cm)',
        body: 'HiRequest',
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
        accepted: 'DiscoverAccepted',
        hipHeader: true,
      }),
      '/v0.5/links/link/init': post({
        operationId: 'linkInit',
        tag: 'linking',
        summary: 'Start linking care contexts: sends a one-time code (role cm)',
        body: 'LinkInit',
        accepted: 'LinkInitAccepted',
        hipHeader: true,
      }),
      '/v0.5/links/link/confirm': post({
        operationId: 'linkConfirm',
        tag: 'linking',
        summary: 'Confirm linking with the one-time code (role cm)',
        body: 'LinkConfirm',
        accepted: 'LinkConfirmAccepted',
      }),
      '/fhir/AuditEvent': {
        get: {
          operationId: 'searchAuditEvents',
          tags: ['audit'],
          summary: "Who accessed a patient's records (role cm): a FHIR searchset of AuditEvent",
          parameters: [
            {
              name: 'patient-abha',
              in: 'query',
              required: true,
              description: 'ABHA address (name@sbx or name@abdm) or 14-digit ABHA number (with or without dashes)',
              schema: { type: 'string' },
              examples: { address: { value: 'ravi.kumar@sbx' }, number: { value: '91-1234-5678-9012' } },
            },
            {
              name: 'date',
              in: 'query',
              required: false,
              description: 'ge/gt/le/lt followed by a FHIR date; repeatable',
              schema: { type: 'array', items: { type: 'string', pattern: '^(ge|gt|le|lt)\\d{4}' } },
              style: 'form',
              explode: true,
            },
            { name: '_count', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          ],
          responses: {
            '200': { description: 'Matching audit events, oldest first', ...json('AuditEventBundle', FHIR_JSON) },
            ...errors(400, ...AUTHED),
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'healthz',
          tags: ['ops'],
          summary: 'Liveness',
          security: [],
          responses: { '200': { description: 'Alive', ...json('Health') } },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readyz',
          tags: ['ops'],
          summary: 'Readiness: the database answers',
          security: [],
          responses: { '200': { description: 'Ready', ...json('Ready') }, ...errors(503) },
        },
      },
      '/openapi.json': {
        get: {
          operationId: 'openapi',
          tags: ['ops'],
          summary: 'This document',
          security: [],
          responses: {
            '200': {
              description: 'OpenAPI 3.1 document',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'JWT with claims role (hip | hiu | cm | admin) and facility; ABDM gateway tokens from AUTH_GATEWAY_CLIENTS are cm',
        },
      },
      schemas: {
        ...Object.fromEntries(Object.entries(REQUEST_SCHEMAS).map(([name, s]) => [name, requestSchema(s)])),
        ...Object.fromEntries(Object.entries(RESPONSE_SCHEMAS).map(([name, s]) => [name, responseSchema(s)])),
      },
    },
  };
}

/** GET /openapi.json; public, so mount it before the authentication middleware. */
export function openApiRoutes(): Hono {
  const doc = JSON.stringify(openApiDocument());
  const r = new Hono();
  r.get('/openapi.json', (c) => c.body(doc, 200, { 'Content-Type': 'application/json; charset=utf-8' }));
  return r;
}
