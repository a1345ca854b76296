/**
 * Numeric observations over time (web/trends/trends.ts): series per LOINC / SNOMED CT code across records, dated,
 * sorted, de-duplicated, with flags; blood pressure components as their own series.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { observationSeries } from '../../web/trends/trends.js';
import { valueFlag } from '../../web/record/fhir.js';
import { createGenerator } from '../../fixtures/generator.js';

const ROOT = join(import.meta.dirname, '..', '..');
const example = (f: string) => JSON.parse(readFileSync(join(ROOT, 'fixtures', 'examples', f), 'utf8'));
const sorted = (dates: string[]) => dates.every((d, i) => i === 0 || Date.parse(dates[i - 1]) <= Date.parse(d));

function obs(code: string, value: number, date: string | undefined, extra: Record<string, unknown> = {}) {
  return {
    resource: {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code, display: `Test ${code}` }] },
      ...(date ? { effectiveDateTime: date } : {}),
      valueQuantity: { value, unit: 'mg/dL', system: 'http://unitsofmeasure.org', code: 'mg/dL' },
      ...extra,
    },
  };
}
function doc(date: string, entries: unknown[]): fhir4.Bundle {
  return {
    resourceType: 'Bundle',
    type: 'document',
    entry: [{ resource: { resourceType: 'Composition', status: 'final', date } }, ...entries],
  } as unknown as fhir4.Bundle;
}

describe('observationSeries', () => {
  it("a generator patient's diagnostic reports give series of two points or more, sorted by date", () => {
    const gen = createGenerator(42);
    const patient = gen.patient();
    const dates = ['2023-01-10', '2023-06-15', '2024-02-20', '2024-09-05'];
    const records = dates.map((date, i) => ({
      bundle: gen.record(patient, 'DiagnosticReport', { date, entries: 30 }).bundle,
      recordId: `r${i}`,
    }));
    const series = observationSeries(records);
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) {
      expect(s.key).toMatch(/^http:\/\/(loinc\.org|snomed\.info\/sct)\|/);
      expect(s.points.length).toBeGreaterThanOrEqual(2);
      expect(new Set(s.points.map((p) => Date.parse(p.date))).size).toBeGreaterThanOrEqual(2);
      expect(sorted(s.points.map((p) => p.date))).toBe(true);
      expect(s.label).toBeTruthy();
      for (const p of s.points) {
        expect(Number.isFinite(p.value)).toBe(true);
        expect(p.recordId).toMatch(/^r\d$/);
      }
    }
    expect(series.some((s) => new Set(s.points.map((p) => p.recordId)).size >= 2)).toBe(true);
  });

  it('a mixed history (generator records of every kind) gives sorted series', () => {
    const gen = createGenerator(5);
    const patient = gen.patient();
    const records = gen.records(patient, 25).map((r, i) => ({ bundle: r.bundle, recordId: String(i) }));
    const series = observationSeries(records);
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) expect(sorted(s.points.map((p) => p.date))).toBe(true);
  });

  it('blood pressure components are separate series (8480-6 systolic, 8462-4 diastolic)', () => {
    const wellness = example('wellness.json');
    const later = structuredClone(wellness);
    for (const e of later.entry) {
      const r = e.resource;
      if (r.resourceType === 'Observation' && r.component) r.effectiveDateTime = '2025-05-14T08:00:00+05:30';
    }
    const series = observationSeries([{ bundle: wellness }, { bundle: later }]);
    expect(series.map((s) => s.key)).not.toContain('http://loinc.org|85354-9'); // the panel has no value of its own
    const keys = series.map((s) => s.key);
    expect(keys).toContain('http://loinc.org|8480-6');
    expect(keys).toContain('http://loinc.org|8462-4');
    const sys = series.find((s) => s.key === 'http://loinc.org|8480-6')!;
    expect(sys.unit).toBe('mmHg');
    expect(sys.points.map((p) => p.value)).toEqual([120, 120]);
    expect(series.find((s) => s.key === 'http://loinc.org|8462-4')!.points.map((p) => p.value)).toEqual([73, 73]);
  });

  it('the eight examples each give only codes seen at two times', () => {
    for (const f of ['diagnostic-report.json', 'discharge-summary.json', 'op-consultation.json', 'prescription.json']) {
      for (const s of observationSeries([{ bundle: example(f) }]))
        expect(new Set(s.points.map((p) => Date.parse(p.date))).size).toBeGreaterThanOrEqual(2);
    }
    // Two copies of the lab report on different days: every analyte is a series of two.
    const a = example('diagnostic-report.json');
    const b = structuredClone(a);
    for (const e of b.entry) {
      const r = e.resource;
      if (r.effectiveDateTime) r.effectiveDateTime = '2024-08-01T09:00:00+05:30';
    }
    const series = observationSeries([
      { bundle: a, recordId: 'a' },
      { bundle: b, recordId: 'b' },
    ]);
    expect(series).toHaveLength(6);
    const creatinine = series.find((s) => s.key === 'http://loinc.org|2160-0')!;
    expect(creatinine.points).toEqual([
      { date: '2024-05-06T08:15:00+05:30', value: 1.5, flag: 'high', recordId: 'a' },
      { date: '2024-08-01T09:00:00+05:30', value: 1.5, flag: 'high', recordId: 'b' },
    ]);
    expect(creatinine.range).toMatchObject({ low: 0.7, high: 1.3 });
    expect(creatinine.unit).toBe('mg/dL');
  });

  it('dates by effective[x], else issued, else the Composition date; de-duplicates within a record', () => {
    const r1 = doc('2024-01-01T10:00:00+05:30', [
      obs('2345-7', 100, undefined),
      obs('2345-7', 100, undefined), // same date and value in the same record: one point
    ]);
    const r2 = doc('2024-03-01', [obs('2345-7', 130, undefined, { issued: '2024-02-01T08:00:00+05:30' })]);
    const r3 = doc('2024-04-01', [
      obs('2345-7', 90, undefined, { effectivePeriod: { start: '2023-12-01' } }),
      obs('2345-7', 60, '2023-11-01', { referenceRange: [{ low: { value: 70 }, high: { value: 110 } }] }),
    ]);
    const [s] = observationSeries([{ bundle: r1 }, { bundle: r2 }, { bundle: r3 }]);
    expect(s.points.map((p) => [p.date, p.value])).toEqual([
      ['2023-11-01', 60],
      ['2023-12-01', 90],
      ['2024-01-01T10:00:00+05:30', 100],
      ['2024-02-01T08:00:00+05:30', 130],
    ]);
    expect(s.points[0].flag).toBe('low'); // outside its range, without an interpretation
    expect(s.label).toBe('Test 2345-7');
  });

  it('needs two different times, a number and a LOINC or SNOMED CT code', () => {
    const once = observationSeries([
      { bundle: doc('2024-01-01', [obs('1-1', 1, '2024-01-01'), obs('1-1', 2, '2024-01-01')]) },
    ]);
    expect(once).toEqual([]);
    const local = {
      resource: {
        resourceType: 'Observation',
        code: { coding: [{ system: 'https://lab.example/codes', code: 'X' }] },
        effectiveDateTime: '2024-01-01',
        valueQuantity: { value: 1 },
      },
    };
    const local2 = structuredClone(local);
    local2.resource.effectiveDateTime = '2024-02-01';
    const text = { resource: { ...obs('2-2', 0, '2024-01-01').resource, valueQuantity: undefined, valueString: '5' } };
    expect(observationSeries([{ bundle: doc('2024-03-01', [local, local2, text, text]) }])).toEqual([]);
    expect(observationSeries([])).toEqual([]);
  });

  it('keeps one unit per series', () => {
    const mmol = (v: number, d: string) => {
      const o = obs('2339-0', v, d);
      o.resource.valueQuantity = { value: v, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' };
      return o;
    };
    const series = observationSeries([
      {
        bundle: doc('2024-05-01', [
          obs('2339-0', 90, '2024-01-01'),
          obs('2339-0', 95, '2024-02-01'),
          obs('2339-0', 99, '2024-03-01'),
          mmol(5.5, '2024-04-01'),
          mmol(5.9, '2024-05-01'),
        ]),
      },
    ]);
    expect(series.map((s) => [s.key, s.unit, s.points.length])).toEqual([
      ['http://loinc.org|2339-0', 'mg/dL', 3],
      ['http://loinc.org|2339-0|mmol/L', 'mmol/L', 2],
    ]);
  });
});

describe('valueFlag', () => {
  const q = { value: 10, unit: 'x' };
  const range = [{ low: { value: 1, unit: 'x' }, high: { value: 5, unit: 'x' } }];
  const interp = (code: string) => [{ coding: [{ code }] }];
  it('reads interpretation codes', () => {
    for (const c of ['H', 'HH', 'HU']) expect(valueFlag(interp(c), undefined, undefined).flag).toBe('high');
    for (const c of ['L', 'LL', 'LU']) expect(valueFlag(interp(c), undefined, undefined).flag).toBe('low');
    for (const c of ['A', 'AA']) expect(valueFlag(interp(c), undefined, undefined).flag).toBe('abnormal');
    expect(valueFlag(interp('N'), undefined, undefined).flag).toBe('normal');
  });
  it('flags a quantity outside its range without an interpretation', () => {
    expect(valueFlag(undefined, q, range)).toEqual({ flag: 'high', fromRange: true });
    expect(valueFlag(undefined, { value: 0.5, unit: 'x' }, range)).toEqual({ flag: 'low', fromRange: true });
    expect(valueFlag(undefined, { value: 3, unit: 'x' }, range).flag).toBe('normal');
    expect(valueFlag(undefined, { value: 10, unit: 'y' }, range).flag).toBeUndefined(); // other unit: not compared
  });
});
