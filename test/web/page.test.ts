/**
 * The web page in a real browser (Debian's Chromium through playwright-core),
 * against a test app on loopback with a real OpenID Connect issuer: a
 * clinician signs in, picks a consent and sees exactly what the API serves
 * under it; opens a discharge summary (medications, abnormal labs flagged), a
 * PDF attachment, the trends; switches to Hindi; a revoked consent shows its
 * state and no records; a hostile narrative runs nothing. The provider's
 * search and version history, and the admin's transfers and consents, too.
 * Every screen is checked with axe-core (WCAG 2.1 A and AA) and kept as a
 * screenshot in .cache/screens/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { AxeBuilder } from '@axe-core/playwright';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createGenerator, type GeneratedRecord, type SyntheticPatient } from '../../fixtures/generator.js';
import { freePort, launchChromium, serveTestApp, shot, watch, type ServedApp } from '../support/browser.js';
import { startTestIssuer, type TestIssuer } from '../support/oidc-issuer.js';
import { grantConsent, notifyConsent } from '../support/consents.js';
import { startStandInGateway, gatewayEnv, v3Headers, type StandInGateway } from '../support/stand-in-gateway.js';
import { hiRequestBody, startViewer, type Viewer } from '../support/viewer.js';
import { generateKeyMaterial } from '../../src/abdm/fidelius.js';
import { PROJECT_ROOT } from '../../src/db/embedded.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const HIP = 'HIP-WEB';
const HIU = 'HIU-WEB';
const HOSTILE = [
  '<div xmlns="http://www.w3.org/1999/xhtml"><p>Take as advised.</p>',
  '<img src="x" onerror="window.__pwned=1" alt="scan"/>',
  '<a href="javascript:window.__pwned=2">click me</a>',
  '<script>window.__pwned=3</script>',
  '<p onclick="window.__pwned=4" style="background:url(javascript:window.__pwned=5)">styled</p>',
  '<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=6"><circle r="5"/></svg>',
  '<iframe src="javascript:window.top.__pwned=7"></iframe>',
  '</div>',
].join('');

let issuer: TestIssuer;
let served: ServedApp;
let gw: StandInGateway;
let viewer: Viewer;
let browser: Browser;
let patient: SyntheticPatient;
const consentIds = { live: '', revoked: '', other: '' };
const uploaded = new Map<string, GeneratedRecord & { id: string }>();

/** The care contexts: two in the consent, one not. */
const CC = {
  ipd: { referenceNumber: 'IPD-2025-0042', display: 'Admission, March 2025' },
  lab: { referenceNumber: 'LAB-2025-0007', display: 'Diabetes clinic labs' },
  other: { referenceNumber: 'OPD-2025-0099', display: 'Dermatology OPD' },
};

beforeAll(async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  issuer = await startTestIssuer(`${base}/auth/callback`);
  issuer.accounts.set('dr.mehta', { sub: 'u-201', name: 'Dr. Asha Mehta', abdm_role: 'hiu', abdm_facility: HIU });
  issuer.accounts.set('clerk', { sub: 'u-202', name: 'Records clerk', abdm_role: 'hip', abdm_facility: HIP });
  issuer.accounts.set('ops', { sub: 'u-203', name: 'Operations', abdm_role: 'admin', abdm_facility: 'OPS-1' });
  gw = await startStandInGateway();
  viewer = await startViewer();
  served = await serveTestApp(
    () => ({
      OIDC_ISSUER: issuer.url,
      OIDC_CLIENT_ID: issuer.clientId,
      OIDC_CLIENT_SECRET: issuer.clientSecret,
      ...gatewayEnv(gw),
      HI_PUSH_ALLOWED_HOSTS: `127.0.0.1:${viewer.port}`,
      HIP_INITIATED_LINKING: 'false',
    }),
    port,
  );
  const t = served.t;
  const g = createGenerator(20261202);
  patient = g.patient();
  const add = async (name: string, rec: GeneratedRecord) => {
    const id = await t.upload(HIP, rec.bundle, rec.careContext.referenceNumber, rec.careContext.display);
    uploaded.set(name, { ...rec, id });
  };
  await add('discharge', g.record(patient, 'DischargeSummary', { careContext: CC.ipd, date: '2025-03-14' }));
  await add('rx', g.record(patient, 'Prescription', { careContext: CC.ipd, date: '2025-03-14' }));
  for (const [i, date] of ['2025-01-10', '2025-05-12', '2025-09-15'].entries())
    await add(`lab${i}`, g.record(patient, 'DiagnosticReport', { careContext: CC.lab, date }));
  await add('document', g.record(patient, 'HealthDocumentRecord', { careContext: CC.lab, date: '2025-06-02' }));
  // Not under the consent: another type, another care context, before its date range.
  await add('invoice', g.record(patient, 'Invoice', { careContext: CC.ipd, date: '2025-03-15' }));
  await add('elsewhere', g.record(patient, 'Prescription', { careContext: CC.other, date: '2025-07-01' }));
  await add('old', g.record(patient, 'OPConsultation', { careContext: CC.lab, date: '2019-06-01' }));
  // A prescription whose narratives are hostile.
  const hostile = g.record(patient, 'Prescription', { careContext: CC.lab, date: '2025-08-01' });
  for (const e of hostile.bundle.entry!)
    if (e.resource!.resourceType === 'Composition' || e.resource!.resourceType === 'MedicationRequest')
      (e.resource as fhir4.DomainResource).text = { status: 'generated', div: HOSTILE };
  await add('hostile', hostile);

  const terms = {
    patient: patient.abhaAddress,
    hip: HIP,
    hiu: HIU,
    careContexts: [CC.ipd.referenceNumber, CC.lab.referenceNumber],
    hiTypes: ['DischargeSummary', 'Prescription', 'DiagnosticReport', 'HealthDocumentRecord', 'OPConsultation'],
    from: '2024-01-01',
    to: '2025-12-31',
    frequency: { unit: 'HOUR' as const, value: 20 },
  };
  consentIds.live = (await grantConsent(t, terms)).consentId;
  consentIds.revoked = (await grantConsent(t, terms)).consentId;
  await notifyConsent(t, { consentId: consentIds.revoked, status: 'REVOKED' });
  consentIds.other = (await grantConsent(t, { ...terms, hiu: 'HIU-ELSEWHERE' })).consentId;
  // One health-information transfer, for the admin's view.
  const key = generateKeyMaterial();
  const sent = await t.request('/api/v3/hip/health-information/request', {
    method: 'POST',
    as: ['cm', 'sbx'],
    headers: v3Headers(HIP, uuidv4()),
    body: JSON.stringify(
      hiRequestBody({ txId: uuidv4(), consentId: consentIds.live, dataPushUrl: `${viewer.url}/push`, key }),
    ),
  });
  expect(sent.status, await sent.clone().text()).toBe(202);
  await gw.waitFor('/data-flow/v3/health-information/notify', () => true, 15_000);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await served?.close();
  await viewer?.close();
  await gw?.close();
  await issuer?.close();
});

/** A fresh browser profile signed in through the issuer as `login`; its page, and what went wrong on it. */
async function signedIn(login: string, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'en-IN', timezoneId: 'Asia/Kolkata' });
  const page = await context.newPage();
  const problems = watch(page);
  await page.goto(served.url);
  await page.getByRole('link', { name: /organisation/i }).click();
  await page.getByLabel('Login').fill(login);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${served.url}/app/**`);
  await page.getByRole('button', { name: /sign out/i }).waitFor();
  return { context, page, problems };
}

async function axe(page: Page, name: string) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  const found = result.violations.map((v) => `${name}: ${v.id} (${v.nodes.length}) ${v.nodes[0]?.target}`);
  expect(found, name).toEqual([]);
}

/** The record ids the page's timeline links to. */
const shownIds = async (page: Page) =>
  (await page.locator('a.record-item').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href)))
    .map((href) => /records\/([^/?#]+)$/.exec(href)?.[1])
    .filter(Boolean)
    .sort();

/** The record ids the API serves the viewer under a consent (what the page must show). */
async function apiIds(consentId: string): Promise<string[]> {
  const res = await served.t.request('/fhir/Bundle?_count=100', {
    as: ['hiu', HIU],
    headers: { 'X-Consent-Id': consentId },
  });
  expect(res.status).toBe(200);
  return ((await res.json()).entry ?? []).map((e: any) => e.resource.id).sort();
}

describe('the sign-in screen', () => {
  it('offers the organisation sign-in and the development form, labelled, in both languages', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    try {
      const page = await context.newPage();
      const problems = watch(page);
      await page.goto(served.url);
      await page.waitForURL(`${served.url}/app/**`);
      await page.getByRole('link', { name: /organisation/i }).waitFor();
      expect(await page.getByLabel('Role').count()).toBe(1);
      expect(await page.getByLabel(/facility/i).count()).toBe(1);
      await shot(page, '01-sign-in');
      await axe(page, 'sign-in');
      await page.getByRole('button', { name: 'हिन्दी' }).click();
      await expect.poll(() => page.locator('h1').innerText()).toMatch(/[\u0900-\u097F]/);
      await axe(page, 'sign-in (Hindi)');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('the web page, in Chromium', () => {
  let context: BrowserContext;
  let page: Page;
  let problems: string[];

  beforeAll(async () => {
    ({ context, page, problems } = await signedIn('dr.mehta'));
  }, 60_000);
  afterAll(async () => context?.close());

  it('a clinician signs in through the issuer and sees their consents, not another viewer’s', async () => {
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.locator(`a[href*="${consentIds.live}"]`).waitFor();
    expect(await page.locator(`a[href*="${consentIds.revoked}"]`).count()).toBe(1);
    expect(await page.locator(`a[href*="${consentIds.other}"]`).count()).toBe(0);
    await expect(
      page
        .getByText(/revoked/i)
        .first()
        .isVisible(),
    ).resolves.toBe(true);
    await shot(page, '02-viewer-consents');
    await axe(page, 'consents');
  });

  it('the timeline under a consent shows exactly the records the API serves under it', async () => {
    await page.locator(`a[href*="${consentIds.live}"]`).first().click();
    await page.locator('a.record-item').first().waitFor();
    const expected = await apiIds(consentIds.live);
    expect(expected.length).toBe(7); // discharge, rx, three labs, document, hostile
    expect(await shownIds(page)).toEqual(expected);
    for (const name of ['invoice', 'elsewhere', 'old']) expect(expected).not.toContain(uploaded.get(name)!.id);
    await shot(page, '03-viewer-timeline');
    await axe(page, 'timeline');
  });

  it('the timeline filters by record type', async () => {
    await page.getByRole('checkbox', { name: /diagnostic report/i }).waitFor();
    for (const box of await page.getByRole('checkbox').all()) {
      const label = (await box.evaluate((el) => (el as HTMLInputElement).labels?.[0]?.textContent)) ?? '';
      if (!/diagnostic report/i.test(label) && (await box.isChecked())) await box.uncheck();
      if (/diagnostic report/i.test(label) && !(await box.isChecked())) await box.check();
    }
    const labs = ['lab0', 'lab1', 'lab2'].map((n) => uploaded.get(n)!.id).sort();
    await expect.poll(() => shownIds(page)).toEqual(labs);
    for (const box of await page.getByRole('checkbox').all()) if (!(await box.isChecked())) await box.check();
    await expect.poll(async () => (await shownIds(page)).length).toBe(7);
  });

  it('the trend chart draws the lab values that recur across the consented records', async () => {
    // Worked out here from what was uploaded: the LOINC codes with a numeric value at two or more times.
    const consented = ['discharge', 'rx', 'lab0', 'lab1', 'lab2', 'document', 'hostile'].map((n) => uploaded.get(n)!);
    const times = new Map<string, { label: string; at: Set<string> }>();
    for (const rec of consented)
      for (const e of rec.bundle.entry ?? []) {
        const o = e.resource as any;
        if (o.resourceType !== 'Observation' || typeof o.valueQuantity?.value !== 'number') continue;
        const coding = o.code.coding.find((c: any) => c.system === 'http://loinc.org');
        if (!coding) continue;
        const seen = times.get(coding.code) ?? { label: o.code.text || coding.display, at: new Set() };
        seen.at.add(o.effectiveDateTime ?? o.issued ?? rec.date);
        times.set(coding.code, seen);
      }
    const recurring = [...times.values()].filter((v) => v.at.size >= 2).map((v) => v.label);
    expect(recurring.length).toBeGreaterThan(2);
    const trends = page.getByRole('region', { name: 'Trends' });
    await trends.waitFor();
    const text = await trends.innerText();
    for (const label of recurring) expect(text, label).toContain(label);
    expect(await trends.locator('svg').count()).toBeGreaterThanOrEqual(recurring.length);
    await trends.scrollIntoViewIfNeeded();
    await shot(page, '04-viewer-trends');
  });

  it('a discharge summary shows its medications and flags its abnormal lab values', async () => {
    const ds = uploaded.get('discharge')!;
    await page.locator(`a.record-item[href$="${ds.id}"]`).click();
    await page
      .getByRole('heading', { name: (ds.bundle.entry![0].resource as fhir4.Composition).title })
      .first()
      .waitFor();
    await shot(page, '05-viewer-discharge-summary');
    const body = await page.locator('main').innerText();
    const resources = ds.bundle.entry!.map((e) => e.resource as any);
    for (const m of resources.filter((r) => r.resourceType === 'MedicationRequest')) {
      const name = m.medicationCodeableConcept?.text ?? m.medicationCodeableConcept?.coding?.[0]?.display;
      expect(body, 'medication').toContain(name);
    }
    const abnormal = resources.filter(
      (r) => r.resourceType === 'Observation' && ['H', 'L'].includes(r.interpretation?.[0]?.coding?.[0]?.code),
    );
    expect(abnormal.length).toBeGreaterThan(0);
    for (const o of abnormal) {
      const row = page.locator('tr, li, .observation').filter({ hasText: o.code.coding[0].display }).first();
      const flag = o.interpretation[0].coding[0].code === 'H' ? /high/i : /low/i;
      await expect(row.innerText()).resolves.toMatch(flag);
    }
    await axe(page, 'discharge summary');
  });

  it('a PDF attachment opens in place from a blob: URL', async () => {
    await page.goBack();
    const doc = uploaded.get('document')!;
    await page.locator(`a.record-item[href$="${doc.id}"]`).click();
    await page.getByRole('button', { name: /view/i }).first().click();
    const frame = page.locator('iframe');
    await frame.waitFor();
    expect(await frame.getAttribute('src')).toMatch(/^blob:/);
    const download = page.getByRole('link', { name: /download/i }).first();
    expect(await download.getAttribute('href')).toMatch(/^blob:/);
    await page.waitForTimeout(500);
    await shot(page, '06-viewer-pdf');
  });

  it('a hostile narrative runs nothing and keeps no link, image, script or style', async () => {
    await page.goBack();
    const hostile = uploaded.get('hostile')!;
    await page.locator(`a.record-item[href$="${hostile.id}"]`).click();
    const summaries = page.locator('details summary');
    await summaries.first().waitFor();
    // Every disclosure opened at once (setting `open` fires their toggle, as a click does; one click each is slow).
    await page.locator('details').evaluateAll((ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
    await page.getByText('Take as advised.').first().waitFor();
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined();
    const inside = await page.locator('details').evaluateAll((ds) =>
      ds.map((d) => ({
        scripts: d.querySelectorAll('script, img, iframe, svg, style, object, embed').length,
        links: [...d.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        handlers: [...d.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => /^on|style/i.test(a.name)))
          .length,
      })),
    );
    for (const d of inside) expect(d).toEqual({ scripts: 0, links: [], handlers: 0 });
    await shot(page, '07-viewer-hostile-narrative');
  });

  it('switches to Hindi: the page’s labels, not the clinical content', async () => {
    await page.goBack();
    await page.getByRole('button', { name: 'हिन्दी' }).click();
    await expect.poll(() => page.evaluate(() => document.documentElement.lang)).toBe('hi');
    expect(await page.locator('h1').innerText()).toMatch(/[\u0900-\u097F]/);
    await shot(page, '08-viewer-hindi');
    await axe(page, 'Hindi timeline');
  });

  it('shows times in Asia/Kolkata unless the viewer chooses another zone', async () => {
    await page.getByRole('button', { name: 'English' }).click();
    await page.goto(`${served.url}/app/#/consents`);
    await page.getByText('1 Jan 2099, 5:30 am').first().waitFor(); // dataEraseAt 2099-01-01T00:00Z, in IST
    await page.getByLabel('Time zone').selectOption('UTC');
    await page.getByText('1 Jan 2099, 12:00 am').first().waitFor();
    await page.getByLabel('Time zone').selectOption('Asia/Kolkata');
    await page.getByText('1 Jan 2099, 5:30 am').first().waitFor();
  });

  it('a revoked consent shows its state and no records, and the page asks the API for none', async () => {
    const asked: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/fhir/Bundle')) asked.push(r.headers()['x-consent-id'] ?? '');
    });
    await page.getByRole('button', { name: 'English' }).click();
    await page.goto(`${served.url}/app/#/consents/${consentIds.revoked}`);
    await page
      .getByText(/revoked/i)
      .first()
      .waitFor();
    expect(await page.locator('a.record-item').count()).toBe(0);
    expect(asked).not.toContain(consentIds.revoked);
    await shot(page, '09-viewer-revoked');
    await axe(page, 'revoked consent');
  });

  it('had no script errors and no policy violations', () => {
    expect(problems).toEqual([]);
  });
});

describe('on a phone', () => {
  it('the timeline fits a 360-pixel screen and is usable by keyboard', async () => {
    const { context, page, problems } = await signedIn('dr.mehta', { width: 360, height: 780 });
    try {
      await page.locator(`a[href*="${consentIds.live}"]`).first().focus();
      await page.keyboard.press('Enter');
      await page.locator('a.record-item').first().waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(360);
      await shot(page, '10-phone-timeline');
      await axe(page, 'phone timeline');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

describe('the provider and the admin', () => {
  it("the provider's staff search their records and open a record's versions", async () => {
    const rx = uploaded.get('rx')!;
    const amended = structuredClone(rx.bundle);
    (amended.entry![0].resource as fhir4.Composition).title = 'Prescription (amended)';
    const res = await served.t.request('/fhir/Bundle', {
      method: 'POST',
      as: ['hip', HIP],
      headers: {
        'Content-Type': 'application/fhir+json',
        'X-Care-Context': rx.careContext.referenceNumber,
      },
      body: JSON.stringify(amended),
    });
    expect(res.status).toBe(201);
    const { context, page, problems } = await signedIn('clerk');
    try {
      await page.getByLabel(/ABHA/i).first().fill(patient.abhaNumber);
      await page.getByRole('button', { name: /search/i }).click();
      await page.locator('a.record-item').first().waitFor();
      const all = [...uploaded.values()].map((r) => r.id).sort();
      await expect.poll(() => shownIds(page)).toEqual(all);
      await shot(page, '11-provider-search');
      await axe(page, 'provider search');
      await page.locator(`a.record-item[href$="${rx.id}"]`).click();
      await page.getByText('Prescription (amended)').first().waitFor();
      await page.locator('a[href*="_history/1"]').click();
      await page
        .getByText(/version 1/i)
        .first()
        .waitFor();
      await shot(page, '12-provider-version');
      await axe(page, 'provider version');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('every record type renders: its title and every section of its Composition, with no script error', async () => {
    const dir = join(PROJECT_ROOT, 'fixtures', 'examples');
    const examples = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(examples.length).toBe(8);
    const { context, page, problems } = await signedIn('clerk');
    try {
      for (const [i, file] of examples.entries()) {
        const bundle = JSON.parse(readFileSync(join(dir, file), 'utf8')) as fhir4.Bundle;
        const id = await served.t.upload(HIP, bundle, `EX-${i}`, `Example ${file}`);
        await page.goto(`${served.url}/app/#/records/${id}`);
        const composition = bundle.entry![0].resource as fhir4.Composition;
        await page.getByRole('heading', { name: composition.title }).first().waitFor();
        const text = await page.locator('main').innerText();
        for (const section of composition.section ?? []) {
          const title = section.title ?? section.code?.coding?.[0]?.display ?? section.code?.text;
          if (title) expect(text, `${file}: section ${title}`).toContain(title);
        }
        await shot(page, `15-record-${file.replace(/\.json$/, '')}`);
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the admin sees the transfers and the consents with their status history', async () => {
    const { context, page, problems } = await signedIn('ops');
    try {
      await page
        .getByRole('link', { name: /transfers/i })
        .first()
        .click();
      await page.getByText(consentIds.live).first().waitFor();
      await shot(page, '13-admin-transfers');
      await axe(page, 'admin transfers');
      await page
        .getByRole('link', { name: /consents/i })
        .first()
        .click();
      await page.getByText(consentIds.revoked).first().waitFor();
      await shot(page, '14-admin-consents');
      await axe(page, 'admin consents');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
