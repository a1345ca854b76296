/**
 * The web page in a real browser: a test app (test/support/app.ts) served on
 * a loopback port, and Debian's Chromium driven by playwright-core
 * (`/usr/bin/chromium`, installed by .ci/run when missing). Screenshots go to
 * .cache/screens/ for people to look at.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createTestApp, type TestApp } from './app.js';
import { PROJECT_ROOT } from '../../src/db/embedded.js';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENS = join(PROJECT_ROOT, '.cache', 'screens');

export interface ServedApp {
  t: TestApp;
  /** http://127.0.0.1:<port>, also the app's PUBLIC_BASE_URL. */
  url: string;
  close(): Promise<void>;
}

/** A free loopback port (taken and given back; the app listens on it next). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A test app listening on loopback, its links built on its own address. `env(url)` adds settings that need it. */
export async function serveTestApp(
  env: (url: string) => Record<string, string> = () => ({}),
  port?: number,
): Promise<ServedApp> {
  port ??= await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t = await createTestApp({ PUBLIC_BASE_URL: url, ...env(url) });
  const server = serve({ fetch: t.app.fetch, hostname: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  return {
    t,
    url,
    async close() {
      await new Promise<void>((r) => {
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => r());
      });
      await t.close();
    },
  };
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update'],
  });
}

/** What a page did that it must not: errors thrown, console errors (CSP violations among them), failed requests. */
export function watch(page: Page) {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A failed request is reported by its response below, with its URL.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    // A view that is left revokes its object URLs (web/record/attachment.tsx): a load of one still in flight is then
    // aborted, which is the page letting go of a blob, not a failure (seen under load in CI).
    if (r.url().startsWith('blob:') && why === 'net::ERR_ABORTED') return;
    problems.push(`failed ${r.method()} ${r.url()}: ${why}`);
  });
  return problems;
}

/** A full-page screenshot in .cache/screens/<name>.png. */
export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENS, { recursive: true });
  const path = join(SCREENS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
