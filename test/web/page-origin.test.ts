/**
 * The page opened under another name for the same server (http://localhost:<port> while the store's links are built
 * on http://127.0.0.1:<port>, its PUBLIC_BASE_URL / listening address): the browser is sent to the store's own origin,
 * so the API's absolute `next` links are of the page's origin and "Show more" works.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium, serveTestApp, type ServedApp } from '../support/browser.js';
import { createGenerator, type SyntheticPatient } from '../../fixtures/generator.js';

const HIP = 'HIP-ORIGIN';
let s: ServedApp;
let browser: Browser;
let patient: SyntheticPatient;

beforeAll(async () => {
  s = await serveTestApp(() => ({ SEARCH_MAX_COUNT: '1' }));
  browser = await launchChromium();
  const g = createGenerator(7);
  patient = g.patient();
  for (const date of ['2025-01-02', '2025-02-03']) {
    const rec = g.record(patient, 'Prescription', { careContext: { referenceNumber: 'CC-O', display: 'O' }, date });
    await s.t.upload(HIP, rec.bundle, 'CC-O', 'O');
  }
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

it('"Show more" works when the page is opened as localhost', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const local = s.url.replace('127.0.0.1', 'localhost');
  await page.goto(`${local}/app/`);
  expect(new URL(page.url()).origin).toBe(s.url); // sent to the store's own origin
  await page.evaluate(() =>
    fetch('/auth/dev-sign-in', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ role: 'hip', facility: 'HIP-ORIGIN' }),
    }),
  );
  await page.reload();
  await page.getByLabel(/ABHA/i).first().fill(patient.abhaNumber);
  await page.getByRole('button', { name: /search/i }).click();
  await page.locator('a.record-item').first().waitFor();
  await page.getByRole('button', { name: /show more/i }).click();
  await expect.poll(() => page.locator('a.record-item').count()).toBe(2);
  expect(await page.locator('[role=alert], .notice-error').allInnerTexts()).toEqual([]);
  await context.close();
});
