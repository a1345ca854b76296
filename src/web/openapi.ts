/** The web page's sign-in routes' part of the OpenAPI document (src/openapi.ts); the page's own files are not API. */
import { z } from 'zod';
import { type OpenApiPart, errors, json } from '../http/openapi.js';
import { DevSignIn } from './sign-in.js';

const get = (
  operationId: string,
  summary: string,
  ok: Record<string, unknown>,
  extra: Record<string, unknown> = {},
) => ({
  get: { operationId, tags: ['web'], summary, security: [], ...extra, responses: ok },
});

export const webOpenApi: OpenApiPart = {
  tags: [{ name: 'web', description: 'Sign-in for the web page (/app/): gives a browser a token for this API' }],
  paths: {
    '/auth/options': get('signInOptions', 'Which sign-ins this server offers', {
      '200': { description: 'The sign-in options', ...json('SignInOptions') },
    }),
    '/auth/oidc/start': get(
      'oidcStart',
      'OpenID Connect sign-in: redirects to the issuer (authorization code with PKCE S256, state and nonce)',
      { '302': { description: 'To the issuer' }, ...errors(404, 503) },
    ),
    '/auth/callback': get(
      'oidcCallback',
      "OpenID Connect redirect target: exchanges the code, maps role and facility from the ID token's claims, sets the session cookie",
      { '302': { description: 'To /app/, or to /app/#/sign-in?error=<why> when sign-in was refused' } },
    ),
    '/auth/session': get(
      'session',
      "The session's bearer token, role, facility and expiry, from its HttpOnly cookie ({signedIn: false} without one)",
      { '200': { description: 'The session', ...json('WebSession') } },
    ),
    '/auth/dev-sign-in': {
      post: {
        operationId: 'devSignIn',
        tags: ['web'],
        summary: 'Development only: a session for a chosen role and facility, signed with the development key',
        description:
          'Refused (403) with NODE_ENV=production, with WEB_DEV_SIGN_IN=false, or when tokens are verified with configured keys.',
        security: [],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: { $ref: '#/components/schemas/DevSignIn' },
              example: { role: 'hiu', facility: 'HIU-1' },
            },
          },
        },
        responses: { '204': { description: 'Signed in (the session cookie is set)' }, ...errors(400, 403, 413, 415) },
      },
    },
    '/auth/sign-out': {
      post: {
        operationId: 'signOut',
        tags: ['web'],
        summary: 'Forgets the session cookie',
        security: [],
        responses: { '204': { description: 'Signed out' } },
      },
    },
  },
  requests: { DevSignIn: { schema: DevSignIn, example: { role: 'hiu', facility: 'HIU-1' } } },
  responses: {
    SignInOptions: z.object({
      oidc: z.boolean(),
      devSignIn: z.boolean(),
      roles: z.array(z.enum(['hip', 'hiu', 'admin'])),
      sessionSeconds: z.number().int(),
    }),
    WebSession: z.union([
      z.object({ signedIn: z.literal(false) }),
      z.object({
        signedIn: z.literal(true),
        token: z.string(),
        role: z.enum(['hip', 'hiu', 'admin']),
        facility: z.string(),
        subject: z.string(),
        expiresAt: z.string(),
        apiOrigin: z.string(),
      }),
    ]),
  },
};
