/**
 * createApp(deps): the whole HTTP surface. Middleware (security headers,
 * request id, who is asking), the feature routers, and one onError that turns
 * every failure into an OperationOutcome.
 *
 * Every route is declared as `method(path, allow(action, ...roles), handler)`:
 * allow names the interaction (the audit action its answers are recorded
 * under) and the roles that may call it (401 without a valid token, 403 for
 * another role); a path that is no route still needs a token, then is 404.
 * Refusals made in a repository are audited there (records/repository.ts);
 * onError audits the others under the route's declared action.
 *
 *   public  GET  /healthz, /readyz, /fhir/metadata, /openapi.json
 *   records      /fhir/Bundle…                 records/routes.ts   (hip; hiu under X-Consent-Id)
 *                POST /fhir/$import            records/import.ts   (hip: many uploads, NDJSON)
 *   consents     /consents, /consents/{id}     consents/routes.ts  (admin, hiu)
 *   audit        /fhir/AuditEvent              audit/routes.ts     (cm)
 *   abdm (cm: ABDM's gateway, both dialects; every path in abdm/dialect.ts)
 *                consent notify                abdm/consent-notify.ts
 *                health-information request    abdm/routes.ts (+ /admin/health-information/transactions[/{id}], admin)
 *                discovery, link init/confirm  abdm/linking.ts
 *                ABHA status                   abdm/patient-status.ts
 *                HIP-initiated linking answers abdm/hip-linking-routes.ts (+ /admin/hip-links, admin)
 *   metrics      /metrics                      (admin, or public with METRICS_PUBLIC)
 *   web page     /, /app/…                     web/routes.ts (public files; the page reads through the API)
 *   sign-in      /auth/…                       web/sign-in.ts (public; gives the page a token for the API)
 */
import { Hono, type Context } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from './config.js';
import type { Log } from './log.js';
import { FhirError, STATUS, operationOutcome, fail, error } from './fhir/outcome.js';
import { capabilityStatement } from './records/capability.js';
import type { DocumentValidator } from './fhir/validate.js';
import { asUnavailable } from './db/mongo.js';
import { type AppEnv, identify } from './auth/caller.js';
import type { Verifier } from './auth/keys.js';
import { recordRoutes } from './records/routes.js';
import { importRoutes } from './records/import.js';
import { RecordStore } from './records/store.js';
import type { ConsentStore } from './consents/store.js';
import { consentRoutes } from './consents/routes.js';
import { consentNotifyRoutes } from './abdm/consent-notify.js';
import type { AuditLog } from './audit/log.js';
import { auditRoutes } from './audit/routes.js';
import { actorOf } from './audit/http.js';
import { HiTransfers } from './abdm/transfer.js';
import { GatewayClient } from './abdm/gateway.js';
import { abdmRoutes } from './abdm/routes.js';
import { linkingRoutes, type OtpNotifier } from './abdm/linking.js';
import { HipLinker } from './abdm/hip-linking.js';
import type { Engine } from './db/engine.js';
import { hipLinkingRoutes } from './abdm/hip-linking-routes.js';
import { otpNotifierFor } from './abdm/otp-delivery.js';
import type { Collections } from './records/model.js';
import type { Db } from 'mongodb';
import { rateLimit } from './http/rate-limit.js';
import { securityHeaders } from './http/security-headers.js';
import { Metrics } from './http/metrics.js';
import { allow } from './auth/caller.js';
import { openApiRoutes } from './openapi.js';
import type { PagingKeys } from './auth/paging-keys.js';
import { CursorSealer } from './records/cursor.js';
import { Repositories } from './records/repository.js';
import { SessionKeys } from './auth/session-keys.js';
import { pageRoutes } from './web/routes.js';
import { signInRoutes } from './web/sign-in.js';

export interface AppDeps {
  config: Config;
  store: RecordStore;
  consents: ConsentStore;
  audit: AuditLog;
  transfers: HiTransfers;
  gateway: GatewayClient;
  /** HIP-initiated linking, context and SMS notify after uploads (abdm/hip-linking.ts); unset: none, and no routes. */
  hipLinks?: HipLinker;
  /** Where linking keeps its requests, and the care contexts it links. */
  db: Db;
  collections: Collections;
  /** Delivers linking one-time codes; unset: the delivery LINK_OTP_DELIVERY configures. */
  notifier?: OtpNotifier;
  metrics?: Metrics;
  validator: DocumentValidator;
  verifier: Verifier;
  /** Where every read, search, history and push is scoped, decided and audited (records/repository.ts). */
  repositories: Repositories;
  /** The keys of the web page's session tokens (auth/session-keys.ts). */
  sessions: SessionKeys;
  /** The base of every link the server writes; default: publicBaseUrl(config). main.ts passes its listening address. */
  baseUrl?: () => string;
  log: Log;
  clock?: () => Date;
  version?: string;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
/** Failures that are about the request's content (audited as rejected); the others are refusals. */
const REJECTED = new Set<number>([
  STATUS.malformed,
  STATUS.unprocessable,
  STATUS['too-large'],
  STATUS['unsupported-media-type'],
]);

/** The repositories of one store (records/repository.ts), with its paging keys sealing cursors. */
export function repositoriesFor(d: {
  store: RecordStore;
  consents: ConsentStore;
  audit: AuditLog;
  config: Config;
  validator: DocumentValidator;
  pagingKeys: PagingKeys;
  clock: () => Date;
}): Repositories {
  const cursors = new CursorSealer(d.pagingKeys, d.config.PAGING_CURSOR_TTL_SEC * 1000);
  return new Repositories({
    store: d.store,
    consents: d.consents,
    audit: d.audit,
    cursors,
    config: d.config,
    clock: d.clock,
    hiTypes: d.validator.profiles.profiles.map((p) => p.hiType),
  });
}

/**
 * The services createApp is given, built one way for the server (main.ts) and the tests (test/support/app.ts): the
 * gateway client, the record store and its repositories, the health-information transfers and HIP-initiated linking,
 * with their indexes made.
 */
export async function createServices(d: {
  db: Db;
  collections: Collections;
  engine: Engine;
  consents: ConsentStore;
  audit: AuditLog;
  config: Config;
  validator: DocumentValidator;
  pagingKeys: PagingKeys;
  log: Log;
  clock: () => Date;
}) {
  const gateway = new GatewayClient(d.config, d.clock);
  const store = new RecordStore(d.collections, d.engine);
  const repositories = repositoriesFor({ ...d, store });
  const transfers = new HiTransfers(d.db, d.collections, d.consents, gateway, repositories, d.config, d.log, d.clock, {
    engine: d.engine,
  });
  // HIP-initiated linking, context and SMS notify after uploads; due jobs run by its sweep (main.ts).
  const { db, collections: records, config, log, clock, engine } = d;
  const hipLinks = new HipLinker({ db, records, store, gateway, config, log, clock, engine });
  await Promise.all([hipLinks.ensureIndexes(), transfers.ensureIndexes()]);
  const sessions = new SessionKeys(d.pagingKeys);
  return { gateway, store, repositories, transfers, hipLinks, sessions };
}

/**
 * The base URL links are built on: PUBLIC_BASE_URL, else (development and
 * tests; production requires PUBLIC_BASE_URL) the address the server listens
 * on. Never the request's Host header, which the client chooses.
 */
export function publicBaseUrl(
  config: Pick<Config, 'PUBLIC_BASE_URL' | 'HOST' | 'PORT'>,
  port: number = config.PORT,
): string {
  if (config.PUBLIC_BASE_URL) return config.PUBLIC_BASE_URL.replace(/\/+$/, '');
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' || config.HOST === '' ? '127.0.0.1' : config.HOST;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The route pattern a request was for, even when a middleware (such as
 * authentication) refused it before the handler ran: the last matched route
 * that is not a catch-all middleware.
 */
function routeOf(c: Context): string {
  const routes = c.req.matchedRoutes;
  for (let i = routes.length - 1; i >= 0; i--) if (routes[i].method !== 'ALL') return routes[i].path;
  return c.req.routePath;
}

export function createApp(deps: AppDeps) {
  const clock = deps.clock ?? (() => new Date());
  const { log, config, audit } = deps;
  const metrics = deps.metrics ?? new Metrics();
  const app = new Hono<AppEnv>();

  // Security headers (SECURITY_HEADERS) on every response; no CORS headers, so browsers on other origins are refused.
  app.use('*', securityHeaders());
  app.use('*', async (c, next) => {
    const requestId = uuidv4();
    c.set('requestId', requestId);
    const started = performance.now();
    await next();
    c.header('X-Request-Id', requestId);
    const route = routeOf(c);
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.latency.observe({ method: c.req.method, route }, (performance.now() - started) / 1000);
    log.info(
      {
        reqId: requestId,
        method: c.req.method,
        route: c.req.routePath,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
      },
      'request',
    );
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    await deps.store.ping();
    return c.json({ status: 'ready' });
  });
  app.get('/fhir/metadata', (c) =>
    c.body(
      JSON.stringify(capabilityStatement(deps.validator.profiles.profiles, deps.version ?? '0.0.0', clock())),
      200,
      { 'Content-Type': FHIR_JSON },
    ),
  );

  app.route('/', openApiRoutes()); // public: GET /openapi.json
  const serveMetrics = async (c: Context) =>
    c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  if (config.METRICS_PUBLIC) app.get('/metrics', serveMetrics);

  const baseUrl = deps.baseUrl ?? (() => publicBaseUrl(config));
  // The web page and its sign-in: public, and nothing in them reads data (the page reads through the API below).
  app.route('/', pageRoutes(config, baseUrl));
  // How bearer tokens are checked: by identify below, and by the sign-in routes for the session's token.
  const auth = {
    issuer: config.AUTH_ISSUER,
    audience: config.AUTH_AUDIENCE,
    gatewayClients: config.AUTH_GATEWAY_CLIENTS,
    sessions: deps.sessions,
  };
  app.route('/', signInRoutes({ config, verifier: deps.verifier, auth, audit, baseUrl, log }));

  // Who is asking, from the bearer token; each route's allow(action, ...roles) then decides (auth/caller.ts).
  app.use('*', identify(deps.verifier, auth));
  if (!config.METRICS_PUBLIC) app.get('/metrics', allow('metrics.read', 'admin'), serveMetrics);
  // Expensive routes are rate-limited per client.
  const limited = rateLimit(config.RATE_LIMIT_PER_MINUTE, config.RATE_LIMIT_BURST);
  for (const path of [
    '/fhir/Bundle',
    '/v0.5/health-information/hip/request',
    '/api/v3/hip/health-information/request',
    '/fhir/AuditEvent',
    '/fhir/$import',
  ])
    app.use(path, limited);
  app.route(
    '/fhir/Bundle',
    recordRoutes({
      repositories: deps.repositories,
      validator: deps.validator,
      config,
      clock,
      baseUrl,
      onStored: deps.hipLinks ? (record) => deps.hipLinks!.stored(record) : undefined,
    }),
  );
  const gateway = deps.gateway;
  app.route(
    '/',
    importRoutes({
      repositories: deps.repositories,
      validator: deps.validator,
      config,
      baseUrl,
      metrics,
      log,
      onStored: deps.hipLinks ? (record) => deps.hipLinks!.stored(record) : undefined,
    }),
  );
  app.route('/', consentNotifyRoutes({ consents: deps.consents, audit, config, clock, log, gateway }));
  app.route('/', consentRoutes({ consents: deps.consents, audit, clock }));
  app.route('/', auditRoutes(audit, clock));
  app.route(
    '/',
    abdmRoutes({
      transfers: deps.transfers,
      consents: deps.consents,
      gateway: deps.gateway,
      audit,
      config,
      log,
      clock,
    }),
  );
  app.route(
    '/',
    linkingRoutes({
      records: deps.collections,
      gateway: deps.gateway,
      audit,
      config,
      log,
      clock,
      notifier: deps.notifier ?? otpNotifierFor(config, log),
      db: deps.db,
      engine: deps.store.engine,
      consents: deps.consents, // ABHA status notifications (abdm/patient-status.ts, mounted by linkingRoutes)
    }),
  );
  if (deps.hipLinks) app.route('/', hipLinkingRoutes({ hipLinks: deps.hipLinks, audit, config }));

  // Deny by default: a path that is no route still needs a valid token first (401), then is a 404.
  app.notFound((c) => {
    if (!c.get('caller'))
      throw c.get('authFailure') ?? fail('unauthenticated', 'login', 'Authorization: Bearer <token> required');
    return c.body(
      JSON.stringify(
        operationOutcome([error('not-found', `No route for ${c.req.method} ${c.req.path.slice(0, 100)}`)]),
      ),
      404,
      { 'Content-Type': FHIR_JSON },
    );
  });

  app.onError(async (err, c) => {
    let e = asUnavailable(err);
    if (!(e instanceof FhirError)) {
      // Unexpected: log the kind of failure only (no request content), answer without internals.
      log.error(
        {
          reqId: c.get('requestId'),
          err: {
            name: (err as Error).name,
            code: (err as { code?: unknown }).code,
            message: (err as Error).message?.slice(0, 200),
          },
        },
        'unhandled error',
      );
      e = fail('internal', 'exception', `Internal error; quote request id ${c.get('requestId')}`);
    }
    const fe = e as FhirError;
    if (fe.status === STATUS.unprocessable && c.get('action') === 'record.upload') metrics.rejected(fe.issues);
    if (fe.status === STATUS.unavailable) {
      metrics.dbErrors.inc();
      log.warn({ reqId: c.get('requestId') }, 'database unavailable');
    } else if (fe.status < 500 && !fe.audited) {
      // Every refusal and rejection leaves a trace; if it cannot, the answer becomes 503.
      try {
        await audit.append({
          action: c.get('action') ?? `http ${c.req.method} ${routeOf(c)}`,
          outcome: REJECTED.has(fe.status) ? 'rejected' : 'refused',
          status: fe.status,
          actor: actorOf(c),
          consentId: c.req.header('x-consent-id')?.slice(0, 128) ?? null,
          reason: (fe.auditReason ?? fe.issues[0]?.diagnostics ?? '').slice(0, 300),
          requestId: c.get('requestId'),
        });
      } catch (auditError) {
        const u = asUnavailable(auditError);
        if (u instanceof FhirError) {
          return c.body(JSON.stringify(operationOutcome(u.issues)), 503, { 'Content-Type': FHIR_JSON });
        }
        throw auditError;
      }
    }
    for (const [k, v] of Object.entries(fe.headers)) c.header(k, v);
    return c.body(JSON.stringify(operationOutcome(fe.issues)), fe.status as 400, { 'Content-Type': FHIR_JSON });
  });

  return app;
}
