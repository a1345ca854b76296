/**
 * The headers every response carries, errors included: the app's (middleware
 * below) and the answers to malformed HTTP that never reach the app
 * (client-error.ts). No CORS headers, so browsers on other origins are refused.
 */
import type { MiddlewareHandler } from 'hono';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Origin-Agent-Cluster': '?1',
  'Referrer-Policy': 'no-referrer',
  'Strict-Transport-Security': 'max-age=15552000; includeSubDomains',
  'X-Content-Type-Options': 'nosniff',
  'X-DNS-Prefetch-Control': 'off',
  'X-Download-Options': 'noopen',
  'X-Frame-Options': 'SAMEORIGIN',
  'X-Permitted-Cross-Domain-Policies': 'none',
  'X-XSS-Protection': '0',
  'Cache-Control': 'no-store',
});

/**
 * The web page's policy (/app/, web/routes.ts), in place of the API's `default-src 'none'`: its own script, style
 * sheet and fonts only (no inline script or style, no eval, nothing from another origin); API calls to this origin;
 * images from attachments (data: and blob: URLs the page makes); a PDF attachment shown in a frame from a blob: URL;
 * no plugins, no <base>, forms only to this origin, never framed. Trusted Types: the one policy ("narrative") parses
 * a resource's narrative into an inert document the page then copies from, element by element.
 */
export const APP_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  'frame-src blob:',
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  'trusted-types narrative',
].join('; ');

/** The page's script, style sheet and fonts are named by their content's hash: they never change. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * Sets SECURITY_HEADERS on the response, whatever a handler set (register it first, so it runs last); the page's
 * paths get APP_CSP, and its hashed assets may be cached.
 */
export const securityHeaders = (): MiddlewareHandler => async (c, next) => {
  await next();
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
  const path = c.req.path;
  if (path.startsWith('/app/')) {
    c.header('Content-Security-Policy', APP_CSP);
    if (path.startsWith('/app/assets/') && c.res.status === 200) c.header('Cache-Control', IMMUTABLE);
  }
  c.res.headers.delete('X-Powered-By');
};
