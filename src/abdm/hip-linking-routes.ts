/**
 * The gateway's answers to HIP-initiated linking, context and SMS notify (role
 * cm, ABDM v3; hip-linking.ts does the work), and admin's view of the jobs.
 *
 *   POST /api/v3/hip/token/on-generate-token   cm      link.token
 *   POST /api/v3/link/on_carecontext           cm      link.add-care-context
 *   POST /api/v3/links/context/on-notify       cm      link.context-notify
 *   POST /api/v3/patients/sms/on-notify        cm      link.sms-notify
 *   GET  /admin/hip-links                      admin   hip-link.read
 *
 * Each answer names the REQUEST-ID it answers in `response.requestId`; its own
 * id is its REQUEST-ID header (required). A body that does not parse is
 * refused (4xx OperationOutcome) before anything changes; an accepted one is
 * audited and answered 202 with what became of it: applied, late (to a call
 * its job no longer awaits), or ignored (no job sent that REQUEST-ID: every
 * call is recorded in its job before it is sent, so nothing is held for a
 * job that might record it later, and nothing of it is stored).
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.js';
import { type AppEnv, allow } from '../auth/caller.js';
import { readJsonBody } from '../http/body.js';
import { badRequest } from '../fhir/outcome.js';
import type { AuditLog } from '../audit/log.js';
import { actorOf } from '../audit/http.js';
import { INBOUND, inboundRequestId } from './dialect.js';
import {
  type AnswerKind,
  type GatewayAnswer,
  HIP_LINK_STATUSES,
  type HipLinker,
  type HipLinkStatus,
  describeHipLink,
} from './hip-linking.js';

const text = (max: number) => z.string().max(max);
/** v3 error objects are not uniform: one object or an array of them, code a number or a string. */
const errorItem = z
  .object({ code: z.union([text(64), z.number()]).optional(), message: text(1000).optional() })
  .passthrough();
const abdmErrorField = z
  .union([errorItem, z.array(errorItem).max(20)])
  .nullable()
  .optional();
const response = z.object({ requestId: z.string().min(1).max(128) }).passthrough();
const address = text(256).nullable().optional();
const acknowledgement = z
  .object({ status: text(64).optional() })
  .passthrough()
  .nullable()
  .optional();

export const OnGenerateToken = z
  .object({
    abhaAddress: address,
    linkToken: z.string().min(1).max(8192).nullable().optional(),
    error: abdmErrorField,
    response,
  })
  .passthrough()
  .refine((b) => !!b.linkToken || !!b.error, 'linkToken or error required');
export const OnCareContext = z
  .object({ abhaAddress: address, status: text(256).nullable().optional(), error: abdmErrorField, response })
  .passthrough()
  .refine((b) => !!b.status || !!b.error, 'status or error required');
export const ContextOnNotify = z.object({ acknowledgement, error: abdmErrorField, response }).passthrough();
export const SmsOnNotify = z.object({ acknowledgement, error: abdmErrorField, response }).passthrough();

type ErrorField = z.infer<typeof abdmErrorField>;
/** An on_carecontext `status` that reports a failure rather than a link. */
const FAILED_STATUS = /\b(fail|failed|failure|error|errored|denied|rejected|invalid)\b/i;
/** An error object (or several) as one line: "code: message; …". */
function errorText(e: ErrorField): string | undefined {
  if (!e) return undefined;
  const items = Array.isArray(e) ? e : [e];
  const line = items
    .map((i) => [i.code, i.message].filter((x) => x !== undefined && x !== '').join(': '))
    .filter(Boolean)
    .join('; ');
  return line || 'error';
}

export const HipLinksQuery = z
  .object({
    status: z.enum(HIP_LINK_STATUSES as [HipLinkStatus, ...HipLinkStatus[]]).optional(),
    kind: z.enum(['link', 'sms', 'notify']).optional(),
    _count: z
      .string()
      .regex(/^\d{1,4}$/, 'must be a positive integer')
      .transform(Number)
      .refine((n) => n >= 1, 'must be a positive integer')
      .optional(),
    after: z.string().min(1).max(512).optional(),
  })
  .strict();

const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

export interface HipLinkingDeps {
  hipLinks: HipLinker;
  audit: AuditLog;
  config: Config;
}

export function hipLinkingRoutes(deps: HipLinkingDeps) {
  const { hipLinks, audit, config } = deps;
  const r = new Hono<AppEnv>();

  /** One answer route: parse, the message id, apply, audit, 202. */
  const answerRoute = <S extends z.ZodTypeAny>(
    path: string,
    action: string,
    kind: AnswerKind,
    schema: S,
    expects: string,
    toAnswer: (b: z.output<S>) => GatewayAnswer,
  ) =>
    r.post(path, allow(action, 'cm'), async (c: Context<AppEnv>) => {
      const body = (await readJsonBody(c, schema, config, expects)) as z.output<S> & {
        response: { requestId: string };
      };
      const messageId = inboundRequestId(c, 'v3', body);
      const answered = body.response.requestId;
      const { result, patients } = await hipLinks.answer(kind, answered, toAnswer(body));
      await audit.append({
        action,
        outcome: 'success',
        status: 202,
        actor: actorOf(c),
        patients,
        reason: `message ${messageId} answering ${answered}: ${result}`.slice(0, 300),
        requestId: c.var.requestId,
      });
      return c.json({ requestId: answered, status: result }, 202);
    });

  answerRoute(
    INBOUND.onGenerateToken.v3,
    'link.token',
    'token',
    OnGenerateToken,
    'a JSON on-generate-token answer',
    (b) => ({ abhaAddress: b.abhaAddress, linkToken: b.linkToken, error: errorText(b.error) }),
  );
  answerRoute(
    INBOUND.onCareContext.v3,
    'link.add-care-context',
    'link',
    OnCareContext,
    'a JSON on_carecontext answer',
    // `status` is free text ("Successfully Linked care context"); one that says it failed is taken as the error.
    (b) => ({
      abhaAddress: b.abhaAddress,
      status: b.status,
      error: errorText(b.error) ?? (b.status && FAILED_STATUS.test(b.status) ? b.status.slice(0, 200) : undefined),
    }),
  );
  answerRoute(
    INBOUND.contextOnNotify.v3,
    'link.context-notify',
    'notify',
    ContextOnNotify,
    'a JSON context on-notify answer',
    (b) => ({ status: b.acknowledgement?.status, error: errorText(b.error) }),
  );
  answerRoute(INBOUND.smsOnNotify.v3, 'link.sms-notify', 'sms', SmsOnNotify, 'a JSON SMS on-notify answer', (b) => ({
    status: b.acknowledgement?.status,
    error: errorText(b.error),
  }));

  r.get('/admin/hip-links', allow('hip-link.read', 'admin'), async (c) => {
    const params = new URL(c.req.url).searchParams;
    for (const k of new Set(params.keys()))
      if (params.getAll(k).length > 1)
        throw badRequest(`Parameter '${k.slice(0, 40)}' may be given once`, k.slice(0, 40));
    const parsed = HipLinksQuery.safeParse(Object.fromEntries(params));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.join('.') || String((issue as { keys?: string[] }).keys?.[0] ?? '');
      throw badRequest(
        `${where ? `${where.slice(0, 40)}: ` : ''}${issue.message}; parameters: status, kind, _count (1-${MAX_PAGE}), after`,
        where.slice(0, 40) || undefined,
      );
    }
    const q = parsed.data;
    const count = Math.min(q._count ?? DEFAULT_PAGE, MAX_PAGE);
    const { jobs, next } = await hipLinks.list({ status: q.status, kind: q.kind, count, after: q.after });
    await audit.append({
      action: 'hip-link.read',
      outcome: 'success',
      status: 200,
      actor: actorOf(c),
      patients: [...new Set(jobs.flatMap((j) => [j.abhaAddress, j.abhaNumber].filter((x): x is string => !!x)))],
      reason: `${jobs.length} jobs${q.status ? ` status ${q.status}` : ''}${q.kind ? ` kind ${q.kind}` : ''}`,
      requestId: c.var.requestId,
    });
    return c.json({ count: jobs.length, jobs: jobs.map(describeHipLink), ...(next ? { next } : {}) });
  });

  return r;
}
