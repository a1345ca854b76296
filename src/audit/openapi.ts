/** The AuditEvent route's part of the OpenAPI document (src/openapi.ts). */
import { z } from 'zod';
import { type OpenApiPart, AUTHED, FHIR_JSON, errors, json } from '../http/openapi.js';

export const auditOpenApi: OpenApiPart = {
  tags: [{ name: 'audit', description: 'Access audit for the consent manager' }],
  paths: {
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
  },
  requests: {},
  responses: {
    AuditEventBundle: z
      .object({
        resourceType: z.literal('Bundle'),
        type: z.literal('searchset'),
        total: z.number().int(),
        entry: z.array(
          z
            .object({
              fullUrl: z.string(),
              resource: z.object({ resourceType: z.literal('AuditEvent') }).passthrough(),
            })
            .passthrough(),
        ),
      })
      .passthrough(),
  },
};
