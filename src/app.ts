/**
 * createApp(deps): the whole HTTP surface. Middleware, the feature routers,
 * and one onError that turns every failure into an OperationOutcome.
 */
import { Hono } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import type { Config } from './config.js';
import type { Log } from './log.js';
import { FhirError, operationOutcome, fail, error } from './fhir/outcome.js';
import { capabilityStatement } from './fhir/capability.js';
import type { DocumentValidator } from './fhir/validate.js';
import { asUnavailable } from './db/mongo.js';
import type { AppEnv } from './http/caller.js';
import { recordRoutes } from './records/routes.js';
import type { RecordStore } from './records/store.js';

export interface AppDeps {
  config: Config;
  store: RecordStore;
  validator: DocumentValidator;
  log: Log;
  clock?: () => Date;
  version?: string;
}

const FHIR_JSON = 'application/fhir+json; charset=utf-8';

export function createApp(deps: AppDeps) {
  const clock = deps.clock ?? (() => new Date());
  const { log } = deps;
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const requestId = uuidv4();
    c.set('requestId', requestId);
    const started = performance.now();
    await next();
    c.header('X-Request-Id', requestId);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Cache-Control', 'no-store');
    log.info({ reqId: requestId, method: c.req.method, route: c.req.routePath, status: c.res.status, ms: Math.round(performance.now() - started) }, 'request');
  });

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    await deps.store.ping();
    return c.json({ status: 'ready' });
  });
  app.get('/fhir/metadata', (c) =>
    c.body(JSON.stringify(capabilityStatement(deps.validator.profiles.profiles, deps.version ?? '0.0.0', clock())), 200, { 'Content-Type': FHIR_JSON }));

  app.route('/fhir/Bundle', recordRoutes({ store: deps.store, validator: deps.validator, config: deps.config, clock }));

  app.notFound((c) => c.body(JSON.stringify(operationOutcome([error('not-found', `No route for ${c.req.method} ${c.req.path.slice(0, 100)}`)])), 404, { 'Content-Type': FHIR_JSON }));

  app.onError((err, c) => {
    let e = asUnavailable(err);
    if (!(e instanceof FhirError)) {
      // Unexpected: log the kind of failure only (no request content), answer without internals.
      log.error({ reqId: c.get('requestId'), err: { name: (err as Error).name, message: (err as Error).message?.slice(0, 200) } }, 'unhandled error');
      e = fail(500, 'exception', `Internal error; quote request id ${c.get('requestId')}`);
    }
    const fe = e as FhirError;
    if (fe.status === 503) log.warn({ reqId: c.get('requestId') }, 'database unavailable');
    for (const [k, v] of Object.entries(fe.headers)) c.header(k, v);
    return c.body(JSON.stringify(operationOutcome(fe.issues)), fe.status as 400, { 'Content-Type': FHIR_JSON });
  });

  return app;
}
