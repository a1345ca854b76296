/**
 * A provider's record whose attachment is HTML (contentType text/html) with script in it, shown by the real page
 * (web/record/attachment.tsx). A blob: URL is of the store's origin, so a Download link typed text/html, opened as
 * its own tab ("Open link in new tab"), would run that script without the page's CSP and read the session token
 * from GET /auth/session. Downloads are typeless (application/octet-stream): the tab downloads, nothing runs.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium, serveTestApp, type ServedApp } from '../support/browser.js';
import { createGenerator } from '../../fixtures/generator.js';

const HIP = 'HIP-REVIEW';
let s: ServedApp;
let browser: Browser;
let id: string;
const HOSTILE =
  "<html><body>Lab report<img src=x onerror=\"fetch(location.origin+'/auth/session').then(r=>r.json())" +
  ".then(j=>document.title='stolen:'+j.role+':'+j.token.length)\"></body></html>";

beforeAll(async () => {
  s = await serveTestApp();
  browser = await launchChromium();
  const g = createGenerator(99);
  const rec = g.record(g.patient(), 'HealthDocumentRecord', {
    careContext: { referenceNumber: 'CC-R', display: 'Review' },
    date: '2025-06-02',
  });
  const walk = (v: unknown) => {
    if (!v || typeof v !== 'object') return;
    const o = v as Record<string, unknown>;
    if (o.contentType === 'application/pdf' && typeof o.data === 'string') {
      o.contentType = 'text/html';
      o.data = Buffer.from(HOSTILE).toString('base64');
      o.title = 'Lab report';
      delete o.hash;
      delete o.size;
    }
    for (const x of Object.values(o)) walk(x);
  };
  walk(rec.bundle);
  id = await s.t.upload(HIP, rec.bundle, 'CC-R', 'Review');
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

it("an HTML attachment's Download link, opened in a tab, downloads it and runs nothing", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${s.url}/app/`);
  await page.evaluate(() =>
    fetch('/auth/dev-sign-in', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ role: 'hip', facility: 'HIP-REVIEW' }),
    }),
  );
  await page.goto(`${s.url}/app/#/records/${id}`);
  await page.reload();
  const link = page.getByRole('link', { name: /download/i }).first();
  await link.waitFor({ timeout: 15_000 });
  const href = (await link.getAttribute('href'))!;
  expect(href).toMatch(/^blob:/);
  const tab = await context.newPage(); // what "Open link in new tab" does
  const opened = await tab.goto(href).then(
    () => 'rendered',
    (e: Error) => e.message,
  );
  expect(opened).toMatch(/Download is starting/);
  await tab.waitForTimeout(500);
  expect(await tab.title()).not.toMatch(/^stolen/);
  expect(await page.title()).not.toMatch(/^stolen/);
  await context.close();
});
