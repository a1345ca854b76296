/**
 * A per-client rate limit for expensive routes: a token bucket per caller
 * (role and facility from the verified token), refilled continuously. Past
 * the limit: 429 with Retry-After. In-process: each server instance limits
 * the clients it serves.
 */
import type { MiddlewareHandler } from 'hono';
import { fail } from '../fhir/outcome.js';
import type { AppEnv } from '../auth/caller.js';

interface Bucket {
  tokens: number;
  at: number;
}

export function rateLimit(perMinute: number, burst: number, now: () => number = Date.now): MiddlewareHandler<AppEnv> {
  const buckets = new Map<string, Bucket>();
  const rate = perMinute / 60_000; // tokens per ms
  return async (c, next) => {
    if (perMinute <= 0) return next();
    const caller = c.get('caller');
    if (!caller) return next(); // no valid token: the route's allow() answers 401
    const key = `${caller.role}:${caller.facilityId}`;
    const t = now();
    const b = buckets.get(key) ?? { tokens: burst, at: t };
    b.tokens = Math.min(burst, b.tokens + (t - b.at) * rate);
    b.at = t;
    if (b.tokens < 1) {
      buckets.set(key, b);
      const e = fail(
        'throttled',
        'throttled',
        `Too many requests from this client: at most ${perMinute} per minute (bursts of ${burst})`,
      );
      e.headers['Retry-After'] = String(Math.max(1, Math.ceil((1 - b.tokens) / rate / 1000)));
      throw e;
    }
    b.tokens -= 1;
    buckets.set(key, b);
    // forget idle clients
    if (buckets.size > 100_000) for (const [k, v] of buckets) if (t - v.at > 60_000) buckets.delete(k);
    await next();
  };
}
