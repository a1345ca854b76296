/**
 * The web page's own files: `/` and `/app` send a browser to `/app/`, which
 * is the page; `/app/assets/<name>-<hash>.<ext>` are its script, style sheet
 * and fonts (web/assets.ts). All public and none reads data: everything the
 * page shows it asks of the API, with the signed-in person's token
 * (web/sign-in.ts), under the same authorisation, consent checks and audit.
 * The page's Content-Security-Policy is http/security-headers.ts APP_CSP.
 */
import { Hono, type Context } from 'hono';
import type { AppEnv } from '../auth/caller.js';
import { notFound } from '../fhir/outcome.js';
import { webAssets } from './assets.js';
import type { Config } from '../config.js';
import { pageOnlyAtBase } from './sign-in.js';

/**
 * `baseUrl`: the store's own origin. In development, the page opened under another name for this server (localhost
 * for 127.0.0.1, or a DNS-rebound name) sends the browser to it, so that its sign-in cookies and the API's links are
 * of one origin.
 */
export function pageRoutes(config: Config, baseUrl: () => string) {
  const r = new Hono<AppEnv>();
  const page = (c: Context) => {
    const own = new URL(baseUrl());
    return !pageOnlyAtBase(config) || new URL(c.req.url).host === own.host ? '/app/' : `${own.origin}/app/`;
  };
  r.get('/', (c) => c.redirect(page(c), 302));
  r.get('/app', (c) => c.redirect(page(c), 302));
  r.get('/app/', async (c) => {
    const target = page(c);
    if (target !== '/app/') return c.redirect(target, 302);
    return c.html((await webAssets()).index);
  });
  r.get('/app/assets/:name', async (c) => {
    const file = (await webAssets()).files.get(c.req.param('name'));
    if (!file) throw notFound(`No page asset ${c.req.param('name').slice(0, 100)}`);
    return c.body(file.body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': file.type });
  });
  return r;
}
