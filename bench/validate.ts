/**
 * Benchmark phase 1: validation alone, in-process, on one core, for each of the
 * eight ABDM record types: bundles/s and MB/s of the whole upload pipeline (guard,
 * R4 structure, document rules, ABDM profile) beside JSON.parse of the same bytes.
 * DischargeSummary and OPConsultation are measured at 30 entries (the targets are
 * set for those), the others at the generator's default size. Fixed seed; warm-up
 * excluded. Prints a table and writes bench/results/<date>-<commit>-validate.json.
 *
 *   npm run bench:validate
 */
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { DocumentValidator } from '../src/fhir/validate.js';
import { DEFAULT_ABHA_SYSTEMS } from '../src/fhir/abha.js';
import { createGenerator, type RecordKind } from '../fixtures/generator.js';

const SEED = 20261125;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const validator = new DocumentValidator({
  maxBytes: 10 * 1024 * 1024,
  maxDepth: 64,
  abhaSystems: DEFAULT_ABHA_SYSTEMS,
});

function rate(texts: string[], f: (t: string) => void): number {
  const warm = Date.now() + 500;
  for (let i = 0; Date.now() < warm; i++) f(texts[i % texts.length]);
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(SECONDS * 1e9);
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 50; i++) f(texts[(n + i) % texts.length]);
    n += 50;
  }
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

const g = createGenerator(SEED);
// The first three cases come first and in this order: the generator is shared, so their bundles stay the ones
// earlier results were measured on.
const cases: { name: string; kind: RecordKind; entries?: number }[] = [
  { name: 'Prescription (generator default size)', kind: 'Prescription' },
  { name: 'DiagnosticReport (generator default size)', kind: 'DiagnosticReport' },
  { name: 'DischargeSummary, 30 entries', kind: 'DischargeSummary', entries: 30 },
  { name: 'OPConsultation, 30 entries', kind: 'OPConsultation', entries: 30 },
  { name: 'ImmunizationRecord (generator default size)', kind: 'ImmunizationRecord' },
  { name: 'HealthDocumentRecord (generator default size)', kind: 'HealthDocumentRecord' },
  { name: 'WellnessRecord (generator default size)', kind: 'WellnessRecord' },
  { name: 'Invoice (generator default size)', kind: 'Invoice' },
];
/** Cases the targets apply to: >= 1,500 bundles/s and at most 5x the time of JSON.parse. */
const TARGETED = new Set<RecordKind>(['DischargeSummary', 'OPConsultation']);
const rows = cases.map(({ name, kind, entries }) => {
  const texts = Array.from({ length: 200 }, () =>
    JSON.stringify(g.record(g.patient(), kind, entries ? { entries } : {}).bundle),
  );
  for (const t of texts) validator.validateText(t); // all must be valid, or the benchmark measures rejections
  const bytes = texts.reduce((s, t) => s + Buffer.byteLength(t), 0) / texts.length;
  const validate = rate(texts, (t) => validator.validateText(t));
  const parse = rate(texts, (t) => JSON.parse(t));
  return {
    case: name,
    avgBytes: Math.round(bytes),
    validatePerSec: Math.round(validate),
    validateMBps: +((validate * bytes) / 1e6).toFixed(1),
    parsePerSec: Math.round(parse),
    ratioToParse: +(parse / validate).toFixed(2),
  };
});

console.table(rows);
cases.forEach((c, i) => {
  const r = rows[i];
  if (!r || !TARGETED.has(c.kind)) return;
  const ok = r.validatePerSec >= 1500 && r.ratioToParse <= 5;
  console.log(`${ok ? 'meets' : 'MISSES'} target: ${c.name}: ${r.validatePerSec}/s, ${r.ratioToParse}x JSON.parse`);
});
const commit = (() => {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
const result = {
  benchmark: 'validation (phase 1)',
  date: new Date().toISOString(),
  commit,
  seed: SEED,
  secondsPerCase: SECONDS,
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  targets: { dischargeSummaryPerSec: 1500, opConsultationPerSec: 1500, maxRatioToParse: 5 },
  rows,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/${result.date.slice(0, 10)}-${commit}-validate.json`, import.meta.url);
writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${file.pathname}`);
