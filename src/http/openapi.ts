/**
 * Building blocks of the OpenAPI 3.1 document (src/openapi.ts assembles it):
 * each feature declares the part for its own routes (paths, request bodies
 * with the very zod schemas its routes parse with and an example each, and
 * the shapes it answers), with the helpers here for what every route shares
 * (OperationOutcome errors, JSON content, the X-HIP-ID header, a POST that
 * answers 202).
 */
import { z } from 'zod';
import { DEFAULT_LIST_COUNT, MAX_LIST_COUNT } from './keyset.js';

export type JsonSchema = Record<string, unknown>;

/** One feature's share of the document. */
export interface OpenApiPart {
  tags: { name: string; description: string }[];
  paths: Record<string, unknown>;
  /** Request bodies: component name → the zod schema its route parses with, and one valid example. */
  requests: Record<string, { schema: z.ZodType; example: unknown }>;
  /** What the routes answer: component name → zod schema. */
  responses: Record<string, z.ZodType>;
}

/** A zod schema as the JSON Schema (draft 2020-12, the OpenAPI 3.1 dialect) of what a client may send. */
export function requestSchema(schema: z.ZodType): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as JsonSchema;
  return rest;
}

/** A zod schema as the JSON Schema of what the server answers; objects stay open, so fields may be added. */
export const responseSchema = requestSchema;

/** Every refusal's body. */
export const OperationOutcomeSchema = z.object({
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
});

export const FHIR_JSON = 'application/fhir+json';
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (name: string, type = 'application/json') => ({ content: { [type]: { schema: ref(name) } } });

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
export function errors(...statuses: number[]): Record<string, unknown> {
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

export const AUTHED = [401, 403, 429, 503];
export const BODY = [400, 413, 415, 422];

export const hipHeader = {
  name: 'X-HIP-ID',
  in: 'header',
  required: true,
  description: 'The health information provider (facility) the gateway addresses',
  schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' },
  example: 'HIP-SBX-1',
};

/** The id of an ABDM v3 message (src/abdm/dialect.ts): its answer echoes it in `response.requestId`. */
export const requestIdHeader = {
  name: 'REQUEST-ID',
  in: 'header',
  required: true,
  description: "The ABDM v3 message id (a UUID); the store's answer to the gateway echoes it in response.requestId",
  schema: { type: 'string', minLength: 1, maxLength: 128 },
  example: 'a1b2c3d4-0000-4000-8000-0000000000c1',
};
export const timestampHeader = {
  name: 'TIMESTAMP',
  in: 'header',
  required: false,
  description: 'When the gateway sent the v3 message (ISO 8601, UTC); not needed to apply it',
  schema: { type: 'string' },
  example: '2024-05-02T09:00:00.000Z',
};

/** The paging parameters of the JSON lists (http/keyset.ts). */
export const listParameters = [
  {
    name: '_count',
    in: 'query',
    required: false,
    description: `Page size: default ${DEFAULT_LIST_COUNT}; more than ${MAX_LIST_COUNT} is served as ${MAX_LIST_COUNT}`,
    schema: { type: 'integer', minimum: 1 },
  },
  {
    name: '_cursor',
    in: 'query',
    required: false,
    description: 'Where the page starts: the `next` of the page before (opaque)',
    schema: { type: 'string', minLength: 1, maxLength: 512 },
  },
];

/**
 * A POST that takes the request body `body` (a component name, with `example`) and answers 202 with `accepted`; `v3`:
 * an ABDM v3 message, with REQUEST-ID (required unless `requestIdOptional`) and TIMESTAMP headers.
 */
export function post(opts: {
  summary: string;
  tag: string;
  operationId: string;
  body: string;
  example: unknown;
  accepted: string;
  hipHeader?: boolean;
  v3?: boolean;
  requestIdOptional?: boolean;
  description?: string;
}) {
  const parameters = [
    ...(opts.v3 ? [{ ...requestIdHeader, required: !opts.requestIdOptional }, timestampHeader] : []),
    ...(opts.hipHeader ? [hipHeader] : []),
  ];
  return {
    post: {
      operationId: opts.operationId,
      tags: [opts.tag],
      summary: opts.summary,
      ...(opts.description ? { description: opts.description } : {}),
      ...(parameters.length ? { parameters } : {}),
      requestBody: {
        required: true,
        content: Object.fromEntries(
          ['application/json', FHIR_JSON].map((type) => [type, { schema: ref(opts.body), example: opts.example }]),
        ),
      },
      responses: {
        '202': { description: 'Accepted; the outcome goes to the gateway by callback', ...json(opts.accepted) },
        ...errors(...BODY, ...AUTHED),
      },
    },
  };
}
