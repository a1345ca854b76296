/**
 * The record search's part of the OpenAPI document (src/openapi.ts): GET /fhir/Bundle, with the search parameters
 * generated from records/search.ts SEARCH_PARAMS, which the CapabilityStatement (records/capability.ts) lists too, so
 * the two cannot differ. The other record interactions (upload, read, history) are FHIR's own and described by the
 * CapabilityStatement alone.
 */
import { z } from 'zod';
import { type OpenApiPart, AUTHED, FHIR_JSON, errors, json } from '../http/openapi.js';
import { BUNDLE_ELEMENTS, SEARCH_PARAMS } from './search.js';

/** The schema of each parameter's value, where it is more than a string. */
const SCHEMAS: Record<string, Record<string, unknown>> = {
  date: { type: 'array', items: { type: 'string', pattern: '^(eq|ge|le|gt|lt)?\\d{4}' } },
  _count: { type: 'integer', minimum: 1 },
  _summary: { type: 'string', enum: ['true', 'text', 'data', 'count', 'false'] },
  _elements: {
    type: 'string',
    pattern: `^(${BUNDLE_ELEMENTS.join('|')})(,(${BUNDLE_ELEMENTS.join('|')}))*$`,
  },
  _cursor: { type: 'string', minLength: 1, maxLength: 1024 },
};

export const recordsOpenApi: OpenApiPart = {
  tags: [{ name: 'records', description: 'Record search (the FHIR interactions are in GET /fhir/metadata)' }],
  paths: {
    '/fhir/Bundle': {
      get: {
        operationId: 'searchRecords',
        tags: ['records'],
        summary:
          "Search records (role hip: its own; role hiu: a patient's, under X-Consent-Id): a FHIR searchset of document Bundles, or with _summary/_elements of subsetted ones",
        parameters: [
          ...SEARCH_PARAMS.map((p) => ({
            name: p.name,
            in: 'query',
            required: false,
            description: p.documentation,
            schema: SCHEMAS[p.name] ?? { type: 'string' },
            ...(p.name === 'date' ? { style: 'form', explode: true } : {}),
          })),
          {
            name: 'X-Consent-Id',
            in: 'header',
            required: false,
            description: 'The consent a viewer (role hiu) searches under; required for role hiu, ignored for role hip',
            schema: { type: 'string', minLength: 1, maxLength: 128 },
          },
        ],
        responses: {
          '200': {
            description: 'Matching records, newest first (by record date, then id)',
            ...json('RecordSearchBundle', FHIR_JSON),
          },
          ...errors(400, ...AUTHED),
        },
      },
    },
  },
  requests: {},
  responses: {
    RecordSearchBundle: z
      .object({
        resourceType: z.literal('Bundle'),
        type: z.literal('searchset'),
        total: z.number().int(),
        link: z.array(z.object({ relation: z.string(), url: z.string() })),
        entry: z
          .array(
            z
              .object({
                fullUrl: z.string(),
                resource: z.object({ resourceType: z.literal('Bundle'), id: z.string() }).passthrough(),
                extension: z.array(z.object({ url: z.string() }).passthrough()),
                search: z.object({ mode: z.literal('match') }),
              })
              .passthrough(),
          )
          .optional(),
      })
      .passthrough(),
  },
};
