/** The example bundles in fixtures/examples, as text and as fresh parsed copies. */
import { readFileSync } from 'node:fs';
import type { Issue } from '../../src/fhir/outcome.js';

export const FIXTURES = ['prescription', 'diagnostic-report', 'discharge-summary'] as const;
export type FixtureName = (typeof FIXTURES)[number];

export const texts = Object.fromEntries(
  FIXTURES.map((f) => [f, readFileSync(new URL(`../../fixtures/examples/${f}.json`, import.meta.url), 'utf8')]),
) as Record<FixtureName, string>;

/** A fresh deep copy of a fixture bundle. */
export const load = (name: FixtureName): any => JSON.parse(texts[name]);

/** Issues as [code, expression] pairs, for compact assertions. */
export const brief = (issues: Issue[]) => issues.map((i) => [i.code, i.expression]);
