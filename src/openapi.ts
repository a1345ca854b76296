/**
 * The OpenAPI 3.1 description of the non-FHIR routes (ABDM consent
 * notifications, health-information request, care-context discovery and
 * linking, the consent manager's AuditEvent query, admin reads, health
 * checks) and of the record search, served at GET /openapi.json without
 * authentication. Each feature declares the part for its own routes
 * (consents/openapi.ts, abdm/openapi.ts, audit/openapi.ts,
 * records/openapi.ts); this file adds the health checks and assembles them.
 *
 * Request bodies are generated from the very zod schemas the routes parse
 * with (`z.toJSONSchema(schema, { io: 'input' })`), so the document cannot
 * drift from what the server accepts. Checks the JSON Schema cannot express
 * (refinements: ISO dates, consentId agreement, http(s) URLs) answer 422.
 * Every refusal is an OperationOutcome (application/fhir+json).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  type OpenApiPart,
  OperationOutcomeSchema,
  errors,
  json,
  requestSchema,
  responseSchema,
} from './http/openapi.js';
import { consentsOpenApi } from './consents/openapi.js';
import { abdmOpenApi } from './abdm/openapi.js';
import { auditOpenApi } from './audit/openapi.js';
import { recordsOpenApi } from './records/openapi.js';
import { webOpenApi } from './web/openapi.js';

const opsOpenApi: OpenApiPart = {
  tags: [{ name: 'ops', description: 'Health checks and this document' }],
  paths: {
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
  requests: {},
  responses: { Health: z.object({ status: z.literal('ok') }), Ready: z.object({ status: z.literal('ready') }) },
};

const PARTS = [consentsOpenApi, abdmOpenApi, auditOpenApi, recordsOpenApi, webOpenApi, opsOpenApi];

/** Every request body's schema and example, by component name. */
export const REQUESTS = Object.assign({}, ...PARTS.map((p) => p.requests)) as OpenApiPart['requests'];

export function openApiDocument(): object {
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'abha-vault',
      version: '0.1.0',
      description:
        'Consent-gated FHIR R4 records store for ABDM: the non-FHIR routes (ABDM gateway callbacks, admin reads, health checks) and the FHIR searches of AuditEvent and Bundle. ' +
        'The FHIR API is described by GET /fhir/metadata (CapabilityStatement). Roles come from the bearer token: hip, hiu, cm (consent manager / gateway), admin.',
    },
    security: [{ bearer: [] }],
    tags: PARTS.flatMap((p) => p.tags),
    paths: Object.assign({}, ...PARTS.map((p) => p.paths)),
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
        ...Object.fromEntries(Object.entries(REQUESTS).map(([name, r]) => [name, requestSchema(r.schema)])),
        ...Object.fromEntries(
          PARTS.flatMap((p) => Object.entries(p.responses)).map(([name, s]) => [name, responseSchema(s)]),
        ),
        OperationOutcome: responseSchema(OperationOutcomeSchema),
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
