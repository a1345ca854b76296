/**
 * The OpenAPI document: every non-FHIR route is described, request bodies are
 * exactly what zod generates from the schemas the routes parse with, and
 * GET /openapi.json serves it without a token.
 */
import { describe, expect, it } from 'vitest';
import { Hono } from 'hono';
import { z } from 'zod';
import { openApiDocument, openApiRoutes } from '../../src/openapi.js';
import { ConsentNotifyV05, ConsentNotifyV3 } from '../../src/consents/schema.js';
import { HiRequest, HiRequestV3 } from '../../src/abdm/routes.js';
import { Discover, DiscoverV3, LinkInit, LinkInitV3, LinkConfirm, LinkConfirmV3 } from '../../src/abdm/linking.js';
import { PatientStatusNotify } from '../../src/abdm/patient-status.js';
import { ContextOnNotify, OnCareContext, OnGenerateToken, SmsOnNotify } from '../../src/abdm/hip-linking-routes.js';

type Doc = {
  openapi: string;
  info: { title: string; version: string };
  security: unknown[];
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, any>; securitySchemes: Record<string, any> };
};
const doc = openApiDocument() as Doc;

/** z.toJSONSchema of the route's schema, as embedded (the dialect is the document's, not repeated). */
const generated = (s: z.ZodType) => {
  const { $schema, ...rest } = z.toJSONSchema(s, { io: 'input' }) as Record<string, unknown>;
  expect($schema).toBe('https://json-schema.org/draft/2020-12/schema');
  return rest;
};
const resolve = (schema: { $ref?: string }) => {
  expect(schema.$ref).toMatch(/^#\/components\/schemas\//);
  return doc.components.schemas[schema.$ref!.split('/').pop()!];
};

type Header = [name: string, required: boolean];
const HIP: Header = ['X-HIP-ID', true];
/** An ABDM v3 message: its id in REQUEST-ID (required unless `optional`), its time in TIMESTAMP. */
const V3 = (optional = false): Header[] => [
  ['REQUEST-ID', !optional],
  ['TIMESTAMP', false],
];
/** Each route with a body: the schema it parses with, and the header parameters it documents. */
const BODY_ROUTES: [string, z.ZodType, Header[]][] = [
  ['/v0.5/consents/hip/notify', ConsentNotifyV05, []],
  ['/api/v3/consent/request/hip/notify', ConsentNotifyV3, V3(true)],
  ['/v0.5/health-information/hip/request', HiRequest, []],
  ['/api/v3/hip/health-information/request', HiRequestV3, [...V3(), HIP]],
  ['/v0.5/care-contexts/discover', Discover, [HIP]],
  ['/v0.5/links/link/init', LinkInit, [HIP]],
  ['/v0.5/links/link/confirm', LinkConfirm, []],
  ['/api/v3/hip/patient/care-context/discover', DiscoverV3, [...V3(), HIP]],
  ['/api/v3/hip/link/care-context/init', LinkInitV3, [...V3(), HIP]],
  ['/api/v3/hip/link/care-context/confirm', LinkConfirmV3, [...V3(), HIP]],
  ['/v0.5/patients/status/notify', PatientStatusNotify, []],
  ['/api/v3/hip/token/on-generate-token', OnGenerateToken, V3()],
  ['/api/v3/link/on_carecontext', OnCareContext, V3()],
  ['/api/v3/links/context/on-notify', ContextOnNotify, V3()],
  ['/api/v3/patients/sms/on-notify', SmsOnNotify, V3()],
];
const GET_ROUTES = [
  '/consents',
  '/consents/{id}',
  '/admin/health-information/transactions',
  '/admin/health-information/transactions/{id}',
  '/admin/hip-links',
  '/fhir/AuditEvent',
  '/fhir/Bundle',
  '/healthz',
  '/readyz',
];
/** The web page's sign-in (src/web/sign-in.ts): public, since they are how a browser gets its token. */
const WEB_ROUTES = [
  'get /auth/options',
  'get /auth/oidc/start',
  'get /auth/callback',
  'get /auth/session',
  'post /auth/dev-sign-in',
  'post /auth/sign-out',
];
const PUBLIC = new Set(['/healthz', '/readyz', '/openapi.json', ...WEB_ROUTES.map((r) => r.split(' ')[1])]);

describe('openApiDocument', () => {
  it('is an OpenAPI 3.1 document with a JWT bearer scheme applied by default', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info.title).toBe('abha-vault');
    expect(doc.info.version).toEqual(expect.any(String));
    expect(doc.components.securitySchemes.bearer).toMatchObject({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
    });
    expect(doc.security).toEqual([{ bearer: [] }]);
    // The document is plain JSON (what GET /openapi.json sends).
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });

  it('describes every route, and nothing else', () => {
    const expected = [
      ...BODY_ROUTES.map(([p]) => `post ${p}`),
      ...GET_ROUTES.map((p) => `get ${p}`),
      ...WEB_ROUTES,
      'get /openapi.json',
    ].sort();
    const actual = Object.entries(doc.paths)
      .flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`))
      .sort();
    expect(actual).toEqual(expected);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const op of Object.values(item)) {
        expect(op.operationId, path).toEqual(expect.any(String));
        expect(Object.keys(op.responses).length, path).toBeGreaterThan(0);
        if (PUBLIC.has(path)) expect(op.security, path).toEqual([]);
        else expect(op.security, path).toBeUndefined(); // the document-wide bearer requirement applies
      }
    }
  });

  it.each(BODY_ROUTES)(
    'POST %s: the request schema is z.toJSONSchema of the zod schema the route parses with',
    (path, schema, headerParams) => {
      const op = doc.paths[path].post;
      expect(op.requestBody.required).toBe(true);
      expect(Object.keys(op.requestBody.content).sort()).toEqual(['application/fhir+json', 'application/json']);
      for (const media of Object.values(op.requestBody.content) as { schema: { $ref: string }; example: unknown }[]) {
        expect(resolve(media.schema)).toEqual(generated(schema));
        // The example is a body the route accepts (zod refinements included).
        const parsed = schema.safeParse(media.example);
        expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      }
      expect(Object.keys(op.responses).sort()).toEqual(['202', '400', '401', '403', '413', '415', '422', '429', '503']);
      const headers = (op.parameters ?? []).filter((p: any) => p.in === 'header');
      expect(headers.map((p: any) => [p.name, p.required])).toEqual(headerParams);
    },
  );

  it('the generated schemas carry the zod constraints (a spot check)', () => {
    const hi = doc.components.schemas.HiRequest;
    expect(hi.required).toEqual(['requestId', 'transactionId', 'hiRequest']);
    expect(hi.additionalProperties).toEqual({}); // .passthrough()
    expect(hi.properties.hiRequest.properties.keyMaterial.properties.curve).toEqual({
      type: 'string',
      const: 'Curve25519',
    });
    expect(doc.components.schemas.ConsentNotifyV05.properties.notification.properties.status.enum).toEqual([
      'GRANTED',
      'REVOKED',
      'EXPIRED',
      'DENIED',
    ]);
  });

  it('documents refusals as application/fhir+json OperationOutcome', () => {
    const oo = doc.components.schemas.OperationOutcome;
    expect(oo.properties.resourceType).toMatchObject({ const: 'OperationOutcome' });
    expect(Object.keys(oo.properties.issue.items.properties).sort()).toEqual([
      'code',
      'diagnostics',
      'expression',
      'severity',
    ]);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const op of Object.values(item)) {
        for (const [status, res] of Object.entries(op.responses) as [string, any][]) {
          if (Number(status) < 400) continue;
          expect(res.content['application/fhir+json'].schema, `${path} ${status}`).toEqual({
            $ref: '#/components/schemas/OperationOutcome',
          });
        }
        if (!PUBLIC.has(path))
          for (const s of ['401', '403', '429', '503']) expect(op.responses[s], `${path} ${s}`).toBeDefined();
      }
    }
    expect(doc.paths['/consents/{id}'].get.responses['404']).toBeDefined();
    expect(doc.paths['/admin/health-information/transactions/{id}'].get.responses['404']).toBeDefined();
    expect(doc.paths['/fhir/AuditEvent'].get.responses['400']).toBeDefined();
    expect(doc.paths['/consents'].get.responses['400']).toBeDefined();
    expect(doc.paths['/admin/health-information/transactions'].get.responses['400']).toBeDefined();
  });

  it('lists the query parameters of the JSON lists, and names their answers', () => {
    const params = (path: string) => doc.paths[path].get.parameters.map((p: any) => [p.name, p.in]);
    expect(params('/consents')).toEqual([
      ['status', 'query'],
      ['patient', 'query'],
      ['_count', 'query'],
      ['_cursor', 'query'],
    ]);
    expect(params('/admin/health-information/transactions')).toEqual([
      ['consentId', 'query'],
      ['status', 'query'],
      ['_count', 'query'],
      ['_cursor', 'query'],
    ]);
    expect(resolve(doc.paths['/consents'].get.responses['200'].content['application/json'].schema).required).toEqual([
      'consents',
    ]);
    const tx = doc.paths['/admin/health-information/transactions'].get.responses['200'];
    expect(resolve(tx.content['application/json'].schema).required).toEqual(['transactions']);
  });

  it('every $ref resolves', () => {
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const r of refs) expect(doc.components.schemas[r.split('/').pop()!.replace('"', '')], r).toBeDefined();
  });
});

describe('GET /openapi.json', () => {
  it('answers 200 JSON without a token', async () => {
    const app = new Hono();
    app.route('/', openApiRoutes());
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(doc);
  });
});
