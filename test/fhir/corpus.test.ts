// The validator's verdict on every public example bundle in ../shared/corpus/abdm-examples
// (read at runtime, nothing copied). Expected verdicts come from MANIFEST.md: the NRCeS IG's
// own examples of all eight record types are accepted; the HIU fixtures whose base64 data was
// replaced by "DUMMY" fail R4 base64Binary; the Faker-generated bundles fail for missing
// timezones, non-FHIR elements and the IG rules they break. No file is 'not supported'.
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DocumentValidator } from '../../src/fhir/validate.js';
import { DEFAULT_ABHA_SYSTEMS } from '../../src/fhir/abha.js';
import { FhirError, type Issue } from '../../src/fhir/outcome.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const corpusDir = path.resolve(repoRoot, '..', 'shared', 'corpus', 'abdm-examples');
const manifestPath = path.join(corpusDir, 'MANIFEST.md');

type Expect = 'accepted' | 'base64' | 'faker';
interface Row {
  file: string;
  recordType: string;
  origin: string;
  findings: string;
  expect: Expect;
}

/** MANIFEST's record types: the eight ABDM record profiles (the diagnostic report in its lab and imaging forms). */
const SUPPORTED = new Set([
  'prescription',
  'diagnostic-report-lab',
  'diagnostic-report-imaging',
  'op-consult',
  'discharge-summary',
  'immunization',
  'health-document',
  'wellness',
  'invoice',
]);

/** Rows of the two MANIFEST tables, joined by file name. */
function readManifest(): Row[] {
  const text = readFileSync(manifestPath, 'utf8');
  const tables: Record<string, string>[][] = [];
  let header: string[] | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      header = undefined;
      continue;
    }
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (!header) {
      header = cells;
      tables.push([]);
      continue;
    }
    if (cells.every((c) => /^-+$/.test(c))) continue;
    tables[tables.length - 1].push(Object.fromEntries(header.map((h, i) => [h, cells[i]])));
  }
  const [files, hints] = tables;
  return files.map((f) => {
    const hint = hints.find((h) => h.File === f.File);
    if (!hint) throw new Error(`MANIFEST has no structure hints for ${f.File}`);
    const recordType = f['Record type'];
    const origin = hint.Origin;
    let expect: Expect;
    if (!SUPPORTED.has(recordType)) throw new Error(`unexpected record type ${recordType}`);
    else if (/DUMMY/.test(origin)) expect = 'base64';
    else if (/Faker/.test(origin)) expect = 'faker';
    else if (/^NRCeS IG example from npm package ndhm\.in (6\.5\.0|2\.0\.1)/.test(origin)) expect = 'accepted';
    else throw new Error(`no expectation for ${f.File} (${origin})`);
    return { file: f.File, recordType, origin, findings: hint['Automated structural findings'] ?? '', expect };
  });
}

/** A short, stable name for the rule behind an issue. */
function reason(i: Issue): string {
  const d = i.diagnostics;
  if (i.code === 'not-supported') return 'unsupported record type';
  if (d.startsWith('Invalid base64Binary')) return 'R4 base64Binary';
  if (/^Invalid (instant|dateTime)/.test(d) && /with a timezone/.test(d))
    return `R4 ${d.slice(8, d.indexOf(':'))} without timezone`;
  if (d.startsWith('Unknown element')) return 'R4 unknown element';
  if (d.includes('Bundle.meta.versionId')) return 'DocumentBundle meta.versionId';
  if (/is not a valid urn:uuid/.test(d)) return 'R4 malformed urn:uuid fullUrl';
  if (i.code === 'not-found') return 'unresolved reference';
  if (/^Section code .* is not allowed/.test(d)) return 'IG section code';
  if (/^Section code system must be/.test(d)) return 'IG section code system';
  if (/ must be .*, found .*\]$/.test(d)) return `IG fixed value ${/: ([^\]]+)\]$/.exec(d)![1]}`;
  if (/ system .* is not allowed; allowed: /.test(d)) return `IG coding slices ${/: ([^\]]+)\]$/.exec(d)![1]}`;
  if (/^Section .* must (occur|have)/.test(d)) return 'IG section cardinality';
  const cite = /\[([A-Za-z]+): ([^\]]+)\]$/.exec(d);
  if (i.code === 'required' && cite) return `IG required ${cite[2]}`;
  return `${i.code}: ${d.slice(0, 50)}`;
}

let rows: Row[];
let results: Map<string, { verdict: 'accepted' | 'rejected'; status?: number; issues: Issue[]; rules: string[] }>;

beforeAll(() => {
  rows = readManifest();
  const validator = new DocumentValidator({
    maxBytes: 10 * 1024 * 1024,
    maxDepth: 64,
    abhaSystems: DEFAULT_ABHA_SYSTEMS,
  });
  results = new Map();
  for (const r of rows) {
    const text = readFileSync(path.join(corpusDir, r.file), 'utf8');
    try {
      validator.validateText(text);
      results.set(r.file, { verdict: 'accepted', issues: [], rules: [] });
    } catch (e) {
      if (!(e instanceof FhirError))
        throw new Error(`${r.file}: validator threw ${(e as Error).name}: ${(e as Error).message}`, { cause: e });
      results.set(r.file, {
        verdict: 'rejected',
        status: e.status,
        issues: e.issues,
        rules: [...new Set(e.issues.map(reason))],
      });
    }
  }
  const table = rows.map((r) => {
    const res = results.get(r.file)!;
    return { file: r.file, verdict: res.verdict, issues: String(res.issues.length), rules: res.rules.join('; ') };
  });
  const w = (k: 'file' | 'verdict' | 'issues') => Math.max(k.length, ...table.map((t) => t[k].length));
  const line = (t: Record<string, string>) =>
    `| ${t.file.padEnd(w('file'))} | ${t.verdict.padEnd(w('verdict'))} | ${t.issues.padStart(w('issues'))} | ${t.rules}`;
  const counts = new Map<string, number>();
  for (const res of results.values()) {
    if (res.verdict === 'accepted') counts.set('accepted', (counts.get('accepted') ?? 0) + 1);
    else for (const rule of res.rules) counts.set(`rejected: ${rule}`, (counts.get(`rejected: ${rule}`) ?? 0) + 1);
  }
  const rejected = [...results.values()].filter((r) => r.verdict === 'rejected').length;
  console.log(
    [
      'Corpus verdicts (../shared/corpus/abdm-examples):',
      line({ file: 'file', verdict: 'verdict', issues: 'issues', rules: 'rules (distinct reasons)' }),
      ...table.map(line),
      '',
      `accepted ${counts.get('accepted') ?? 0}, rejected ${rejected} of ${rows.length} files. Files per reason:`,
      ...[...counts].map(([rule, n]) => `  ${String(n).padStart(2)}  ${rule}`),
    ].join('\n'),
  );
});

describe('corpus of public ABDM example bundles', () => {
  it('MANIFEST lists exactly the JSON files in the corpus directory', () => {
    expect(existsSync(manifestPath)).toBe(true);
    const onDisk = readdirSync(corpusDir)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(rows.map((r) => r.file).sort()).toEqual(onDisk);
    expect(onDisk).toHaveLength(23);
  });

  it('the expectation classes have the sizes MANIFEST implies', () => {
    const by = (e: Expect) =>
      rows
        .filter((r) => r.expect === e)
        .map((r) => r.file)
        .sort();
    expect(by('accepted')).toEqual([
      'diagnostic-report-imaging-01.json',
      'diagnostic-report-imaging-02.json',
      'diagnostic-report-lab-01.json',
      'diagnostic-report-lab-02.json',
      'discharge-summary-01.json',
      'discharge-summary-02.json',
      'health-document-01.json',
      'immunization-01.json',
      'immunization-02.json',
      'invoice-01.json',
      'op-consult-01.json',
      'op-consult-02.json',
      'prescription-01.json',
      'prescription-02.json',
      'wellness-01.json',
    ]);
    expect(by('base64')).toEqual(['diagnostic-report-imaging-03.json', 'discharge-summary-03.json']);
    expect(by('faker')).toEqual([
      'diagnostic-report-lab-06.json',
      'discharge-summary-08.json',
      'discharge-summary-09.json',
      'prescription-03.json',
      'prescription-04.json',
      'prescription-05.json',
    ]);
  });

  it('accepts the NRCeS IG examples of all eight record types (6.5.0 and 2.0.1)', () => {
    for (const r of rows.filter((x) => x.expect === 'accepted')) {
      expect({ file: r.file, ...results.get(r.file)! }).toEqual({
        file: r.file,
        verdict: 'accepted',
        issues: [],
        rules: [],
      });
    }
  });

  it('rejects every other file with 422', () => {
    for (const r of rows.filter((x) => x.expect !== 'accepted')) {
      const res = results.get(r.file)!;
      expect([r.file, res.verdict, res.status]).toEqual([r.file, 'rejected', 422]);
    }
  });

  it('gives every rejection issue a severity, code, diagnostics and expression', () => {
    for (const res of results.values()) {
      for (const i of res.issues) {
        expect(i.severity).toBe('error');
        expect(typeof i.code).toBe('string');
        expect(i.diagnostics.length).toBeGreaterThan(10);
        expect(i.expression).toMatch(/^Bundle(\.|$)/);
      }
    }
  });

  it('rejects the DUMMY-data fixtures for R4 base64Binary only', () => {
    for (const r of rows.filter((x) => x.expect === 'base64')) {
      const res = results.get(r.file)!;
      expect([r.file, res.rules]).toEqual([r.file, ['R4 base64Binary']]);
      for (const i of res.issues) {
        expect(i.code).toBe('value');
        expect(i.expression).toMatch(/\.data$/);
        expect(i.diagnostics).toContain('found a string "DUMMY"');
      }
    }
    // MANIFEST counts the non-base64 .data values under resources; Bundle.signature.data is one more.
    expect(results.get('diagnostic-report-imaging-03.json')!.issues.map((i) => i.expression)).toEqual([
      'Bundle.entry[4].resource.presentedForm[0].data',
      'Bundle.entry[6].resource.content.data',
      'Bundle.entry[9].resource.content[0].attachment.data',
      'Bundle.signature.data',
    ]);
    expect(results.get('discharge-summary-03.json')!.issues).toHaveLength(3);
  });

  it('rejects the Faker bundles for missing timezones and non-FHIR elements, among the faults MANIFEST lists', () => {
    for (const r of rows.filter((x) => x.expect === 'faker')) {
      const res = results.get(r.file)!;
      const exprs = res.issues.map((i) => `${i.code} ${i.expression}`);
      // MANIFEST: "Bundle.timestamp without timezone", "Composition.date without timezone".
      expect(exprs).toContain('value Bundle.timestamp');
      expect(exprs).toContain('value Bundle.entry[0].resource.date');
      expect(res.rules).toContain('R4 instant without timezone');
      expect(res.rules).toContain('R4 dateTime without timezone');
      // Non-FHIR properties on Patient (bloodGroup, abha_number, ...).
      expect(exprs).toContain('structure Bundle.entry[1].resource.abha_number');
      expect(res.rules).toContain('R4 unknown element');
      // MANIFEST: "malformed urn:uuid fullUrl"; meta.versionId is "-".
      expect(exprs).toContain('value Bundle.entry[0].fullUrl');
      expect(exprs).toContain('required Bundle.meta.versionId');
      // MANIFEST: "N unresolved reference(s)" (the two discharge summaries); none elsewhere.
      const unresolved = res.issues.filter((i) => i.code === 'not-found').length;
      const listed = Number(/(\d+) unresolved reference/.exec(r.findings)?.[1] ?? 0);
      expect([r.file, unresolved]).toEqual([r.file, listed]);
    }
  });

  it('finds no file of a record type it does not hold', () => {
    for (const res of results.values()) expect(res.issues.filter((i) => i.code === 'not-supported')).toEqual([]);
  });

  it('names the R4 or IG rule behind every rejection issue', () => {
    for (const [file, res] of results) {
      for (const i of res.issues) {
        const rule = reason(i);
        // every issue falls under a named rule: a base R4 datatype or element rule, a document rule, or an IG
        // profile rule whose diagnostics end with [Profile: ElementDefinition.id]
        expect([file, rule], i.diagnostics).not.toEqual([file, `${i.code}: ${i.diagnostics.slice(0, 50)}`]);
        if (rule.startsWith('IG '))
          expect(i.diagnostics, file).toMatch(/\[[A-Za-z]+(, [A-Za-z]+)*: [A-Za-z]+[^\]]*\]$/);
      }
    }
  });

  it('rejects the Faker bundles also for the IG rules they break, each cited', () => {
    const rules = (f: string) => results.get(f)!.rules;
    // prescription-03..05: one section coded LOINC 10160-0 with no entries, where PrescriptionRecord fixes
    // SNOMED CT 440545006 and requires at least one entry
    for (const f of ['prescription-03.json', 'prescription-04.json', 'prescription-05.json']) {
      expect(rules(f)).toContain('IG section code');
      expect(rules(f)).toContain('IG section cardinality');
    }
    // diagnostic-report-lab-06: its section is coded in LOINC; DiagnosticReportRecord fixes the system SNOMED CT
    const lab06 = results.get('diagnostic-report-lab-06.json')!.issues.map((i) => i.diagnostics);
    expect(lab06).toContain(
      "Section code system must be http://snomed.info/sct, found 'http://loinc.org' [DiagnosticReportRecord: Composition.section.code.coding.system]",
    );
    for (const f of ['prescription-03.json', 'discharge-summary-08.json', 'diagnostic-report-lab-06.json'])
      expect(rules(f)).toContain('IG required Practitioner.identifier.type');
    // the IG fixes the display of the type and section codes ("exactly" in its FSH): 'Discharge Summary' is not
    // 'Discharge summary', 'Medication list' not 'Prescription record'
    for (const f of ['discharge-summary-08.json', 'discharge-summary-09.json'])
      expect(rules(f)).toContain('IG fixed value Composition.type.coding.display');
    expect(rules('prescription-03.json')).toContain('IG fixed value Composition.section.code.coding.display');
  });
});
