/**
 * Numeric observations over time, across a patient's records: one series per LOINC or SNOMED CT code (an
 * Observation's, or each component's: a blood pressure gives a systolic series 8480-6 and a diastolic series
 * 8462-4), of the values with a number (valueQuantity). Pure: it reads the bundles and nothing else.
 *
 * - A point is dated by the observation's effective[x] (dateTime, instant, period start), else `issued`, else the
 *   record's Composition date (else the bundle's timestamp); an observation with none of these is left out.
 * - Only a code seen at two different times or more makes a series; points are sorted by date; the same (date,
 *   value) twice in one record is one point.
 * - A series holds one unit: when a code is recorded in several units, the unit with the most points is the series
 *   keyed `system|code`, and each other unit with enough points is its own series keyed `system|code|unit`.
 * - A point's flag is the interpretation's (high, low, abnormal), else whether the value is outside its reference
 *   range. The series' reference range is that of its latest point with a numeric range.
 */
import {
  arr,
  BundleIndex,
  isObj,
  type Json,
  LOINC,
  num,
  observationDate,
  SNOMED,
  str,
  timeOf,
  valueFlag,
} from '../record/fhir.js';

export interface SeriesPoint {
  /** As recorded (ISO 8601, a FHIR date or dateTime). */
  date: string;
  value: number;
  flag?: 'high' | 'low' | 'abnormal';
  recordId?: string;
}

export interface Series {
  /** `system|code` (`system|code|unit` for a second unit of the same code). */
  key: string;
  label: string;
  unit: string;
  points: SeriesPoint[];
  /** The reference range of the latest point that has one, when it has a numeric bound. */
  range?: { low?: number; high?: number; text?: string };
}

interface Raw {
  key: string;
  label: string;
  unit: string;
  unitKey: string;
  date: string;
  time: number;
  value: number;
  flag?: 'high' | 'low' | 'abnormal';
  recordId?: string;
  record: number;
  range?: Series['range'];
}

/** The LOINC coding of a concept, else its SNOMED CT coding. */
function codeOf(cc: unknown): { system: string; code: string } | undefined {
  if (!isObj(cc)) return undefined;
  const codings = arr(cc.coding).filter(isObj);
  for (const system of [LOINC, SNOMED]) {
    const c = codings.find((x) => String(x.system ?? '').replace(/\/$/, '') === system && str(x.code));
    if (c) return { system, code: String(c.code).trim() };
  }
  return undefined;
}

function labelOf(cc: unknown, code: string): string {
  if (!isObj(cc)) return code;
  const text = str(cc.text);
  if (text) return text;
  return (
    arr(cc.coding)
      .filter(isObj)
      .map((c) => str(c.display))
      .find(Boolean) ?? code
  );
}

function rangeOf(ranges: unknown): Series['range'] {
  for (const r of arr(ranges)) {
    if (!isObj(r)) continue;
    const low = isObj(r.low) ? num(r.low.value) : undefined;
    const high = isObj(r.high) ? num(r.high.value) : undefined;
    if (low !== undefined || high !== undefined) return { low, high, text: str(r.text) };
  }
  return undefined;
}

/** The observations of a bundle: its entries and the resources they contain. */
function observations(index: BundleIndex): Json[] {
  const out: Json[] = [];
  for (const r of index.resources) {
    if (r.resourceType === 'Observation') out.push(r as unknown as Json);
    for (const c of arr((r as unknown as Json).contained)) {
      if (isObj(c) && c.resourceType === 'Observation') out.push(c);
    }
  }
  return out;
}

export function observationSeries(records: { bundle: fhir4.Bundle; recordId?: string }[]): Series[] {
  const raws: Raw[] = [];
  records.forEach((record, recordNo) => {
    if (!isObj(record) || !isObj(record.bundle)) return;
    const index = new BundleIndex(record.bundle);
    const fallbackDate = str(index.composition?.date) ?? str(record.bundle.timestamp);
    for (const o of observations(index)) {
      const date = observationDate(o) ?? fallbackDate;
      if (!date) continue;
      const time = timeOf(date);
      if (Number.isNaN(time)) continue;
      const add = (holder: Json, interpretation: unknown, ranges: unknown) => {
        const q = isObj(holder.valueQuantity) ? holder.valueQuantity : undefined;
        const value = q ? num(q.value) : undefined;
        if (!q || value === undefined) return;
        const code = codeOf(holder.code);
        if (!code) return;
        const unit = str(q.unit) ?? str(q.code) ?? '';
        const { flag } = valueFlag(interpretation, q, ranges);
        raws.push({
          key: `${code.system}|${code.code}`,
          label: labelOf(holder.code, code.code),
          unit,
          unitKey: (str(q.code) ?? unit).trim(),
          date,
          time,
          value,
          flag: flag === 'normal' ? undefined : flag,
          recordId: record.recordId,
          record: recordNo,
          range: rangeOf(ranges),
        });
      };
      add(o, o.interpretation, o.referenceRange);
      for (const comp of arr(o.component)) {
        if (isObj(comp)) add(comp, comp.interpretation, comp.referenceRange);
      }
    }
  });

  const byKey = new Map<string, Raw[]>();
  for (const r of raws) {
    const list = byKey.get(r.key);
    if (list) list.push(r);
    else byKey.set(r.key, [r]);
  }

  const out: Series[] = [];
  for (const [key, list] of byKey) {
    const byUnit = new Map<string, Raw[]>();
    for (const r of list) {
      const u = byUnit.get(r.unitKey);
      if (u) u.push(r);
      else byUnit.set(r.unitKey, [r]);
    }
    const units = [...byUnit.entries()].sort((a, b) => b[1].length - a[1].length);
    units.forEach(([unitKey, points], i) => {
      const series = toSeries(i === 0 ? key : `${key}|${unitKey}`, points);
      if (series) out.push(series);
    });
  }
  return out.sort((a, b) => a.label.localeCompare(b.label) || a.key.localeCompare(b.key));
}

function toSeries(key: string, raws: Raw[]): Series | undefined {
  const seen = new Set<string>();
  const kept: Raw[] = [];
  for (const r of raws) {
    const id = `${r.record}|${r.time}|${r.value}`;
    if (seen.has(id)) continue;
    seen.add(id);
    kept.push(r);
  }
  if (new Set(kept.map((r) => r.time)).size < 2) return undefined;
  kept.sort((a, b) => a.time - b.time || a.record - b.record);
  const latestRange = [...kept].reverse().find((r) => r.range)?.range;
  const labels = new Map<string, number>();
  for (const r of kept) labels.set(r.label, (labels.get(r.label) ?? 0) + 1);
  const label = [...labels.entries()].sort((a, b) => b[1] - a[1])[0][0];
  return {
    key,
    label,
    unit: kept[kept.length - 1].unit,
    points: kept.map((r) => ({
      date: r.date,
      value: r.value,
      ...(r.flag ? { flag: r.flag } : {}),
      ...(r.recordId !== undefined ? { recordId: r.recordId } : {}),
    })),
    ...(latestRange ? { range: latestRange } : {}),
  };
}

/** The code of a series' key (`system|code…`). */
export const seriesCode = (key: string) => key.split('|')[1] ?? key;
