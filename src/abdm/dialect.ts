/**
 * ABDM's two gateway dialects in one place: every path the store serves to
 * the gateway and every path it calls there, for v0.5 and v3, and how each
 * dialect carries a message's id (../shared/docs/abdm-v3.md, "Envelope").
 *
 * - v0.5: `requestId` and `timestamp` in the body; an answer names the message
 *   it answers in `resp: {requestId}`.
 * - v3: `REQUEST-ID` and `TIMESTAMP` headers both ways, `X-CM-ID` and, on the
 *   HIP's calls, `X-HIP-ID`; an answer names the message it answers in
 *   `response: {requestId}` (the REQUEST-ID header of that message).
 *
 * An answer goes in the dialect of the message it answers; what the store
 * starts itself (HIP-initiated linking, context and SMS notify) goes in
 * GATEWAY_API_VERSION's. A correction to a path is one edit here.
 */
import type { Context } from 'hono';
import { z } from 'zod';
import { badRequest } from '../fhir/outcome.js';

export type Dialect = 'v3' | 'v0.5';

/** Paths the store calls on the gateway, under the dialect's base URL; null: the dialect has no such call. */
export const OUTBOUND = {
  session: { 'v0.5': '/v0.5/sessions', v3: '/gateway/v3/sessions' },
  consentOnNotify: { 'v0.5': '/v0.5/consents/hip/on-notify', v3: '/consent/v3/request/hip/on-notify' },
  hiOnRequest: {
    'v0.5': '/v0.5/health-information/hip/on-request',
    v3: '/data-flow/v3/health-information/hip/on-request',
  },
  hiNotify: { 'v0.5': '/v0.5/health-information/notify', v3: '/data-flow/v3/health-information/notify' },
  onDiscover: {
    'v0.5': '/v0.5/care-contexts/on-discover',
    v3: '/user-initiated-linking/v3/patient/care-context/on-discover',
  },
  onInit: { 'v0.5': '/v0.5/links/link/on-init', v3: '/user-initiated-linking/v3/link/care-context/on-init' },
  onConfirm: { 'v0.5': '/v0.5/links/link/on-confirm', v3: '/user-initiated-linking/v3/link/care-context/on-confirm' },
  patientStatusOnNotify: { 'v0.5': '/v0.5/patients/status/on-notify', v3: null },
  generateToken: { 'v0.5': null, v3: '/v3/token/generate-token' },
  linkCareContext: { 'v0.5': null, v3: '/hip/v3/link/carecontext' },
  contextNotify: { 'v0.5': '/v0.5/links/context/notify', v3: '/hip/v3/link/context/notify' },
  smsNotify: { 'v0.5': '/v0.5/patients/sms/notify2', v3: '/hip/v3/link/patient/links/sms/notify2' },
} as const satisfies Record<string, Record<Dialect, string | null>>;

export type OutboundCall = keyof typeof OUTBOUND;

/** Paths the gateway calls on the store; null: the dialect has no such message. */
export const INBOUND = {
  consentNotify: { 'v0.5': '/v0.5/consents/hip/notify', v3: '/api/v3/consent/request/hip/notify' },
  hiRequest: { 'v0.5': '/v0.5/health-information/hip/request', v3: '/api/v3/hip/health-information/request' },
  discover: { 'v0.5': '/v0.5/care-contexts/discover', v3: '/api/v3/hip/patient/care-context/discover' },
  linkInit: { 'v0.5': '/v0.5/links/link/init', v3: '/api/v3/hip/link/care-context/init' },
  linkConfirm: { 'v0.5': '/v0.5/links/link/confirm', v3: '/api/v3/hip/link/care-context/confirm' },
  // ABHA status: no v3 operation was found (abdm-v3.md); the v0.5 route serves both.
  patientStatus: { 'v0.5': '/v0.5/patients/status/notify', v3: null },
  onGenerateToken: { 'v0.5': null, v3: '/api/v3/hip/token/on-generate-token' },
  onCareContext: { 'v0.5': null, v3: '/api/v3/link/on_carecontext' },
  contextOnNotify: { 'v0.5': null, v3: '/api/v3/links/context/on-notify' },
  smsOnNotify: { 'v0.5': null, v3: '/api/v3/patients/sms/on-notify' },
} as const satisfies Record<string, Record<Dialect, string | null>>;

export type InboundMessage = keyof typeof INBOUND;

const requestIdValue = z.string().min(1).max(128);

/**
 * The id of an inbound message, which its answer echoes: the REQUEST-ID header in v3, `requestId` in a v0.5 body.
 * 400 when it is missing (no answer could name the message).
 */
export function inboundRequestId(c: Context, dialect: Dialect, body: unknown): string {
  const id = messageId(c, dialect, body);
  if (id !== undefined) return id;
  throw dialect === 'v3'
    ? badRequest(
        'REQUEST-ID header required (1 to 128 characters): ABDM v3 messages carry their id there',
        'REQUEST-ID',
      )
    : badRequest(
        'requestId required (1 to 128 characters): ABDM v0.5 messages carry their id in the body',
        'requestId',
      );
}

/**
 * The id of an inbound message, or undefined when it has none (a consent notification is applied even so: a
 * revocation is never refused for its envelope; it is then not acknowledged).
 */
export function messageId(c: Context, dialect: Dialect, body: unknown): string | undefined {
  const value = dialect === 'v3' ? c.req.header('request-id') : (body as { requestId?: unknown } | null)?.requestId;
  const id = requestIdValue.safeParse(value);
  return id.success ? id.data : undefined;
}

/** Whose answer is it: the v0.5 body field or the v3 one. */
export const replyField = (dialect: Dialect) => (dialect === 'v3' ? 'response' : 'resp');

/** An ABDM error object as both dialects carry it in an answer. */
export const abdmError = (code: number | string, message: string) => ({
  error: { code, message: message.slice(0, 500) },
});

const HIP_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** The X-HIP-ID header the gateway addressed, when it is a well-formed facility id. */
export function hipHeader(c: Context): string | undefined {
  const hip = c.req.header('x-hip-id');
  return hip && HIP_ID.test(hip) ? hip : undefined;
}

/** The X-HIP-ID header, required and well formed: else 400. */
export function requireHip(c: Context): string {
  const hip = hipHeader(c);
  if (!hip) throw badRequest('X-HIP-ID header required: the provider (facility id) the gateway addresses', 'X-HIP-ID');
  return hip;
}
