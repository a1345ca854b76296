/**
 * One feature router alone, without the full app: a caller and request id
 * set as identify() would, and FhirErrors answered as app.onError does (no
 * audit of refusals: the router's own audit events are the ones to check).
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { v4 as uuidv4 } from 'uuid';
import type { AppEnv, Caller } from '../../src/auth/caller.js';
import { FhirError, operationOutcome } from '../../src/fhir/outcome.js';

export function routerAlone(router: Hono<AppEnv>) {
  const app = new Hono<AppEnv>();
  const as: MiddlewareHandler<AppEnv> = async (c, next) => {
    c.set('requestId', uuidv4());
    const who = c.req.header('x-test-caller');
    if (who) {
      const [role, facilityId] = who.split(':');
      c.set('caller', { role, facilityId, subject: facilityId } as Caller);
    }
    await next();
  };
  app.use('*', as);
  app.route('/', router);
  app.onError((e, c) => {
    if (!(e instanceof FhirError)) throw e;
    return c.json(operationOutcome(e.issues), e.status as 400);
  });
  return {
    request: (path: string, caller?: [string, string], init: RequestInit = {}) =>
      app.request(path, {
        ...init,
        headers: {
          ...(init.headers as Record<string, string>),
          ...(caller ? { 'x-test-caller': caller.join(':') } : {}),
        },
      }),
  };
}
