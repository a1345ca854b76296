/**
 * A stand-in ABDM gateway on loopback, speaking both dialects as
 * ../shared/docs/abdm-v3.md describes them (src/abdm/dialect.ts names the
 * same paths; this file keeps its own copy so a wrong path in src/ is caught).
 *
 * It issues session tokens (v0.5 `/v0.5/sessions`, v3 `/gateway/v3/sessions`)
 * and records every other call. Each call is checked: the path must be one the
 * HIP may call, the headers must be the dialect's (Authorization with the
 * token it issued, X-CM-ID, REQUEST-ID as a UUID, TIMESTAMP in ISO 8601 UTC,
 * and in v3 X-HIP-ID), and the body must match the path's schema (strict:
 * a v0.5 envelope field in a v3 body is a deviation). Every deviation is kept
 * in `violations`; tests assert there are none (`assertClean`).
 *
 * `on(path, handler)` makes the gateway act when a call arrives (e.g. answer a
 * generate-token with on-generate-token, as ABDM does), after it has answered
 * the call itself.
 */
import { createServer, type Server } from 'node:http';
import { z } from 'zod';

export interface Callback {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface StandInGateway {
  url: string;
  token: string;
  callbacks: Callback[];
  /** Every deviation from the dialect seen so far (path, what was wrong). */
  violations: string[];
  /** Throws when any call deviated from its dialect. */
  assertClean(): void;
  /** Runs `handler` after each call to `path` has been answered (202). */
  on(path: string, handler: (c: Callback) => void | Promise<void>): void;
  /** Answers calls to `path` with `status` (e.g. 500) `times` times (default: always), then 202. */
  failNext(path: string, status: number, times?: number): void;
  /** Resolves with the first callback to `path` matching `pred`, waiting up to `ms`. */
  waitFor(path: string, pred?: (c: Callback) => boolean, ms?: number): Promise<Callback>;
  close(): Promise<void>;
}

const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID');
const instant = z
  .string()
  .refine(
    (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)?$/.test(s) && !Number.isNaN(Date.parse(s)),
    'an ISO 8601 UTC instant',
  );
const text = z.string().min(1);
const errorObject = z.object({ code: z.union([z.number(), z.string()]), message: z.string() }).strict();
const v3Reply = z.object({ requestId: text }).strict();
const careContextRef = z.object({ referenceNumber: text, display: text }).strict();
const HI_TYPES = [
  'Prescription',
  'DiagnosticReport',
  'OPConsultation',
  'DischargeSummary',
  'ImmunizationRecord',
  'HealthDocumentRecord',
  'WellnessRecord',
  'Invoice',
] as const;
/** The v3 patient array, grouped by hiType (discover, on-confirm, link/carecontext). */
const hiTypeGroups = z
  .array(
    z
      .object({
        referenceNumber: text,
        display: text,
        careContexts: z.array(careContextRef).min(1),
        hiType: z.enum(HI_TYPES),
        count: z.number().int().min(1),
      })
      .strict()
      .refine((g) => g.count === g.careContexts.length, 'count is the number of careContexts'),
  )
  .min(1);

/** What the HIP may send to each v3 path, and whether it is an answer (then `response` is required). */
const V3: Record<string, z.ZodTypeAny> = {
  '/consent/v3/request/hip/on-notify': z
    .object({
      acknowledgement: z.object({ status: z.literal('OK'), consentId: text }).strict(),
      error: errorObject.optional(),
      response: v3Reply,
    })
    .strict(),
  '/data-flow/v3/health-information/hip/on-request': z
    .object({
      hiRequest: z
        .object({ transactionId: text, sessionStatus: z.literal('ACKNOWLEDGED') })
        .strict()
        .optional(),
      error: errorObject.optional(),
      response: v3Reply,
    })
    .strict()
    .refine((b) => !!b.hiRequest !== !!b.error, 'either hiRequest (ACKNOWLEDGED) or an error'),
  '/data-flow/v3/health-information/notify': z
    .object({
      notification: z
        .object({
          consentId: text,
          transactionId: text,
          doneAt: instant,
          notifier: z.object({ type: z.literal('HIP'), id: text }).strict(),
          statusNotification: z
            .object({
              sessionStatus: z.enum(['TRANSFERRED', 'FAILED']),
              hipId: text,
              statusResponses: z.array(
                z
                  .object({
                    careContextReference: text,
                    hiStatus: z.enum(['DELIVERED', 'ERRORED']),
                    description: z.string(),
                  })
                  .strict(),
              ),
            })
            .strict(),
        })
        .strict(),
    })
    .strict(),
  '/user-initiated-linking/v3/patient/care-context/on-discover': z
    .object({
      transactionId: text,
      patient: hiTypeGroups.optional(),
      matchedBy: z
        .array(z.enum(['MOBILE', 'ABHA_NUMBER', 'MR', 'abhaAddress']))
        .min(1)
        .optional(),
      error: errorObject.optional(),
      response: v3Reply,
    })
    .strict()
    .refine(
      (b) => (b.patient ? !!b.matchedBy && !b.error : !!b.error && !b.matchedBy),
      'patient with matchedBy, or an error',
    ),
  '/user-initiated-linking/v3/link/care-context/on-init': z
    .object({
      transactionId: text,
      link: z
        .object({
          referenceNumber: text,
          authenticationType: z.enum(['DIRECT', 'MEDIATE']),
          meta: z
            .object({
              communicationMedium: z.enum(['MOBILE', 'EMAIL']),
              communicationHint: z.string(),
              communicationExpiry: instant,
            })
            .strict(),
        })
        .strict()
        .optional(),
      error: errorObject.optional(),
      response: v3Reply,
    })
    .strict()
    .refine((b) => !!b.link !== !!b.error, 'either link or an error'),
  '/user-initiated-linking/v3/link/care-context/on-confirm': z
    .object({ patient: hiTypeGroups.optional(), error: errorObject.optional(), response: v3Reply })
    .strict()
    .refine((b) => !!b.patient !== !!b.error, 'either patient or an error'),
  '/v3/token/generate-token': z
    .object({
      abhaNumber: z
        .string()
        .regex(/^\d{14}$/)
        .optional(),
      abhaAddress: z.string().min(3).optional(),
      name: text,
      gender: z.enum(['M', 'F', 'O', 'U']),
      yearOfBirth: z.number().int().min(1900).max(2100),
    })
    .strict()
    .refine((b) => !!b.abhaNumber || !!b.abhaAddress, 'abhaNumber or abhaAddress'),
  '/hip/v3/link/carecontext': z
    .object({
      abhaNumber: z
        .string()
        .regex(/^\d{14}$/)
        .optional(),
      abhaAddress: z.string().min(3).optional(),
      patient: hiTypeGroups,
    })
    .strict()
    .refine((b) => !!b.abhaNumber || !!b.abhaAddress, 'abhaNumber or abhaAddress'),
  '/hip/v3/link/context/notify': z
    .object({
      notification: z
        .object({
          patient: z.object({ id: text }).strict(),
          careContext: z.object({ patientReference: text, careContextReference: text }).strict(),
          hiTypes: z.array(z.enum(HI_TYPES)).min(1),
          date: instant,
          hip: z.object({ id: text }).strict(),
        })
        .strict(),
    })
    .strict(),
  '/hip/v3/link/patient/links/sms/notify2': z
    .object({
      notification: z
        .object({ phoneNo: z.string().regex(/^\+?\d{10,15}$/), hip: z.object({ name: text, id: text }).strict() })
        .strict(),
    })
    .strict(),
};

/** v0.5 paths the HIP may call; answers (those with `resp`) are checked for the envelope and the echo. */
const V05_ANSWERS = new Set([
  '/v0.5/consents/hip/on-notify',
  '/v0.5/health-information/hip/on-request',
  '/v0.5/care-contexts/on-discover',
  '/v0.5/links/link/on-init',
  '/v0.5/links/link/on-confirm',
  '/v0.5/patients/status/on-notify',
]);
const V05_OTHER = new Set([
  '/v0.5/health-information/notify',
  '/v0.5/links/context/notify',
  '/v0.5/patients/sms/notify2',
]);
const V05_ENUMS: Record<string, (b: any) => string | null> = {
  '/v0.5/health-information/hip/on-request': (b) =>
    b.hiRequest && b.hiRequest.sessionStatus !== 'ACKNOWLEDGED'
      ? `hiRequest.sessionStatus ${b.hiRequest.sessionStatus} is not ACKNOWLEDGED (a refusal is an error object)`
      : !b.hiRequest === !b.error
        ? 'either hiRequest or error'
        : null,
  '/v0.5/care-contexts/on-discover': (b) =>
    (b.patient?.matchedBy ?? []).find((m: string) => !['MR', 'MOBILE', 'NDHM_HEALTH_NUMBER', 'HEALTH_ID'].includes(m))
      ? `matchedBy ${JSON.stringify(b.patient.matchedBy)} is outside the v0.5 enum`
      : null,
  '/v0.5/health-information/notify': (b) => {
    const s = b.notification?.statusNotification;
    if (!s || !['TRANSFERRED', 'FAILED'].includes(s.sessionStatus)) return 'sessionStatus TRANSFERRED or FAILED';
    return (s.statusResponses ?? []).some((r: any) => !['DELIVERED', 'ERRORED'].includes(r.hiStatus))
      ? 'hiStatus DELIVERED or ERRORED'
      : null;
  },
  '/v0.5/patients/status/on-notify': (b) => (b.acknowledgement?.status === 'OK' ? null : 'acknowledgement.status OK'),
};

export async function startStandInGateway(clientId = 'abha-vault', clientSecret = 's3cret'): Promise<StandInGateway> {
  const callbacks: Callback[] = [];
  const violations: string[] = [];
  const handlers = new Map<string, ((c: Callback) => void | Promise<void>)[]>();
  const failures = new Map<string, { status: number; times: number }>();
  const token = `gw-token-${Math.random().toString(36).slice(2)}`;
  const header = (h: Callback['headers'], name: string) => {
    const v = h[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const check = (path: string, headers: Callback['headers'], body: any) => {
    const bad = (what: string) => violations.push(`${path}: ${what}`);
    const v3 = path in V3;
    if (!v3 && !V05_ANSWERS.has(path) && !V05_OTHER.has(path)) return bad('not a path the HIP calls');
    if (header(headers, 'authorization') !== `Bearer ${token}`) bad('Authorization is not the session token');
    if (!header(headers, 'x-cm-id')) bad('X-CM-ID missing');
    if (!uuid.safeParse(header(headers, 'request-id')).success) bad('REQUEST-ID is not a UUID');
    if (!instant.safeParse(header(headers, 'timestamp')).success) bad('TIMESTAMP is not an ISO 8601 UTC instant');
    if (!/^application\/json/.test(header(headers, 'content-type') ?? '')) bad('Content-Type is not application/json');
    if (body === undefined || body === null || typeof body !== 'object') return bad('body is not a JSON object');
    if (v3) {
      if (!header(headers, 'x-hip-id')) bad('X-HIP-ID missing');
      if (path === '/hip/v3/link/carecontext' && !header(headers, 'x-link-token')) bad('X-LINK-TOKEN missing');
      const parsed = V3[path].safeParse(body);
      if (!parsed.success)
        bad(parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
      return;
    }
    if (!uuid.safeParse(body.requestId).success) bad('requestId is not a UUID');
    if (!instant.safeParse(body.timestamp).success) bad('timestamp is not an ISO 8601 UTC instant');
    if (body.requestId !== header(headers, 'request-id')) bad('REQUEST-ID header differs from body requestId');
    if (V05_ANSWERS.has(path) && !body.resp?.requestId) bad('resp.requestId missing');
    if ('response' in body) bad('v3 `response` in a v0.5 body');
    const extra = V05_ENUMS[path]?.(body);
    if (extra) bad(extra);
  };
  const server: Server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => {
      data += d;
    });
    req.on('end', () => {
      let body: any;
      try {
        body = data ? JSON.parse(data) : undefined;
      } catch {
        violations.push(`${req.url}: body is not JSON`);
      }
      const path = req.url ?? '';
      if (path === '/v0.5/sessions' || path === '/gateway/v3/sessions') {
        if (path === '/gateway/v3/sessions') {
          if (!uuid.safeParse(header(req.headers, 'request-id')).success)
            violations.push(`${path}: REQUEST-ID is not a UUID`);
          if (!instant.safeParse(header(req.headers, 'timestamp')).success)
            violations.push(`${path}: TIMESTAMP missing`);
          if (!header(req.headers, 'x-cm-id')) violations.push(`${path}: X-CM-ID missing`);
          if (body?.grantType !== 'client_credentials') violations.push(`${path}: grantType is not client_credentials`);
        }
        const ok = body?.clientId === clientId && body?.clientSecret === clientSecret;
        res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify(ok ? { accessToken: token, expiresIn: 600, tokenType: 'bearer' } : { error: 'bad client' }),
        );
        return;
      }
      const call: Callback = { path, headers: req.headers, body };
      const failing = failures.get(path);
      if (failing && failing.times > 0) {
        failing.times--;
        res.writeHead(failing.status);
        res.end();
        return;
      }
      check(path, req.headers, body);
      callbacks.push(call);
      res.writeHead(202);
      res.end();
      for (const h of handlers.get(path) ?? [])
        void Promise.resolve()
          .then(() => h(call))
          .catch((e) => violations.push(`${path}: handler failed: ${(e as Error).message}`));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    token,
    callbacks,
    violations,
    assertClean() {
      if (violations.length) throw new Error(`the store deviated from ABDM's dialect:\n  ${violations.join('\n  ')}`);
    },
    on(path, handler) {
      handlers.set(path, [...(handlers.get(path) ?? []), handler]);
    },
    failNext(path, status, times = Number.POSITIVE_INFINITY) {
      failures.set(path, { status, times });
    },
    async waitFor(path, pred = () => true, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = callbacks.find((c) => c.path === path && pred(c));
        if (hit) return hit;
        if (Date.now() > deadline)
          throw new Error(`no callback to ${path} within ${ms} ms (got: ${callbacks.map((c) => c.path).join(', ')})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Headers of a v3 message from the gateway to the store: REQUEST-ID, TIMESTAMP, X-CM-ID and the HIP addressed. */
export const v3Headers = (hip?: string, requestId: string = crypto.randomUUID()) => ({
  'Content-Type': 'application/json',
  'REQUEST-ID': requestId,
  TIMESTAMP: new Date().toISOString(),
  'X-CM-ID': 'sbx',
  ...(hip ? { 'X-HIP-ID': hip } : {}),
});

/** The settings that point an app at this stand-in (its client id and secret are the defaults above). */
export const gatewayEnv = (gw: Pick<StandInGateway, 'url'>, version: 'v3' | 'v0.5' = 'v3') => ({
  GATEWAY_BASE_URL: gw.url,
  GATEWAY_CLIENT_ID: 'abha-vault',
  GATEWAY_CLIENT_SECRET: 's3cret',
  GATEWAY_API_VERSION: version,
});
