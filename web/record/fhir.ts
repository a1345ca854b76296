/**
 * Reading a stored FHIR document Bundle for display: finding what a reference
 * points at inside the bundle, and writing codes, quantities, names and
 * observation flags compactly. Pure (no DOM, no Preact): the record view, the
 * timeline summary and the trends use it, and so do the unit tests.
 *
 * Real-world bundles are not always what the types say (the IG's 2.x examples
 * use `Type/id` references, generators write malformed `urn:uuid`s, elements
 * are missing or of the wrong shape), so everything here checks what it reads.
 */
import type { Lang } from '../i18n.js';
import { DEFAULT_ABHA_SYSTEMS, abhaIdentity } from '../../src/fhir/abha.js';

export type Json = Record<string, unknown>;
export type Resource = fhir4.FhirResource;

export const LOINC = 'http://loinc.org';
export const SNOMED = 'http://snomed.info/sct';

export const isObj = (x: unknown): x is Json => !!x && typeof x === 'object' && !Array.isArray(x);
export const arr = (x: unknown): unknown[] => (Array.isArray(x) ? x : x == null ? [] : [x]);
export const str = (x: unknown): string | undefined => (typeof x === 'string' && x.trim() ? x : undefined);
export const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/** The resources of a bundle, found by fullUrl and by `Type/id`. */
export class BundleIndex {
  readonly resources: Resource[] = [];
  private byFullUrl = new Map<string, Resource>();
  private byTypeId = new Map<string, Resource>();

  constructor(readonly bundle: fhir4.Bundle) {
    for (const entry of arr(bundle?.entry)) {
      if (!isObj(entry) || !isObj(entry.resource) || typeof entry.resource.resourceType !== 'string') continue;
      const r = entry.resource as unknown as Resource;
      this.resources.push(r);
      const fullUrl = str(entry.fullUrl);
      if (fullUrl && !this.byFullUrl.has(fullUrl)) this.byFullUrl.set(fullUrl, r);
      const id = str(r.id);
      if (id) {
        const key = `${r.resourceType}/${id}`;
        if (!this.byTypeId.has(key)) this.byTypeId.set(key, r);
      }
    }
  }

  /** The Composition (the document's first entry, else any Composition in it). */
  get composition(): fhir4.Composition | undefined {
    const first = this.resources[0];
    if (first?.resourceType === 'Composition') return first;
    return this.resources.find((r): r is fhir4.Composition => r.resourceType === 'Composition');
  }

  /**
   * What `ref` points at: a contained resource of `host` (`#id`), an entry whose fullUrl is the reference, or an
   * entry whose resourceType/id the reference ends with (`Patient/1`, `https://x/fhir/Patient/1/_history/2`,
   * `urn:uuid:…` whose uuid is the resource id).
   */
  resolve(ref: unknown, host?: Resource): Resource | undefined {
    if (!isObj(ref)) return undefined;
    const reference = str(ref.reference)?.trim();
    if (!reference) return undefined;
    if (reference.startsWith('#')) {
      const id = reference.slice(1);
      if (!id) return host;
      const contained = host && 'contained' in host ? arr(host.contained) : [];
      return contained.find((c): c is Resource => isObj(c) && c.id === id && typeof c.resourceType === 'string');
    }
    const exact = this.byFullUrl.get(reference);
    if (exact) return exact;
    const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
    if (m) {
      const found = this.byTypeId.get(`${m[1]}/${m[2]}`);
      if (found) return found;
    }
    if (reference.startsWith('urn:uuid:')) {
      const id = reference.slice('urn:uuid:'.length);
      return this.resources.find((r) => r.id === id);
    }
    return undefined;
  }
}

/** A Coding as people read it: its display, else its code. */
export function codingText(c: unknown): string | undefined {
  if (!isObj(c)) return undefined;
  return str(c.display) ?? str(c.code);
}

/** A CodeableConcept as people read it: its text, else its codings' displays (or codes). */
export function conceptText(cc: unknown): string | undefined {
  if (typeof cc === 'string') return str(cc);
  if (!isObj(cc)) return undefined;
  const text = str(cc.text);
  if (text) return text;
  const parts = [
    ...new Set(
      arr(cc.coding)
        .map(codingText)
        .filter((s): s is string => !!s),
    ),
  ];
  return parts.length ? parts.join(', ') : undefined;
}

export const conceptsText = (ccs: unknown): string | undefined => {
  const parts = arr(ccs)
    .map(conceptText)
    .filter((s): s is string => !!s);
  return parts.length ? parts.join('; ') : undefined;
};

/** Texts joined, the empty ones left out. */
export const joinText = (parts: readonly (string | undefined)[], sep = '; '): string => parts.filter(Boolean).join(sep);

/** A text for each object of a list (a 0..* element: performers, participants…), joined, the empty ones left out. */
export const listText = (list: unknown, text: (x: Json) => string | undefined, sep = '; '): string =>
  joinText(arr(list).filter(isObj).map(text), sep);

/** A codings' code and system, for showing beside a display. */
export function firstCode(cc: unknown, systems?: string[]): { system?: string; code: string } | undefined {
  if (!isObj(cc)) return undefined;
  const codings = arr(cc.coding).filter(isObj);
  const pick = (systems ? codings.filter((c) => systems.includes(String(c.system))) : codings).find((c) => str(c.code));
  return pick ? { system: str(pick.system), code: String(pick.code) } : undefined;
}

const NUMBER_FORMATS = new Map<string, Intl.NumberFormat>();
/** A number as recorded: its digits are not rounded; grouping as the language writes it. */
export function numberText(n: number, lang: Lang = 'en'): string {
  const key = lang;
  let f = NUMBER_FORMATS.get(key);
  if (!f) {
    f = new Intl.NumberFormat(lang === 'hi' ? 'hi-IN' : 'en-IN', { maximumFractionDigits: 20, useGrouping: true });
    NUMBER_FORMATS.set(key, f);
  }
  return f.format(n);
}

/** A Quantity (or Duration, Age, SimpleQuantity): comparator, value, unit. */
export function quantityText(q: unknown, lang: Lang = 'en'): string | undefined {
  if (!isObj(q)) return undefined;
  const value = num(q.value);
  const unit = str(q.unit) ?? str(q.code);
  if (value === undefined) return unit;
  const comparator = str(q.comparator) ?? '';
  return `${comparator}${numberText(value, lang)}${unit ? ` ${unit}` : ''}`;
}

/** A Range: low–high with the unit once when both share it. */
export function rangeText(r: unknown, lang: Lang = 'en'): string | undefined {
  if (!isObj(r)) return undefined;
  const low = isObj(r.low) ? r.low : undefined;
  const high = isObj(r.high) ? r.high : undefined;
  if (low && high) {
    const lu = str(low.unit) ?? str(low.code);
    const hu = str(high.unit) ?? str(high.code);
    if (lu === hu && num(low.value) !== undefined && num(high.value) !== undefined)
      return `${numberText(num(low.value)!, lang)}–${numberText(num(high.value)!, lang)}${hu ? ` ${hu}` : ''}`;
    return `${quantityText(low, lang) ?? ''}–${quantityText(high, lang) ?? ''}`;
  }
  if (low) return `≥ ${quantityText(low, lang)}`;
  if (high) return `≤ ${quantityText(high, lang)}`;
  return undefined;
}

export function ratioText(r: unknown, lang: Lang = 'en'): string | undefined {
  if (!isObj(r)) return undefined;
  const n = quantityText(r.numerator, lang);
  const d = quantityText(r.denominator, lang);
  if (!n && !d) return undefined;
  return `${n ?? '?'} / ${d ?? '?'}`;
}

export function moneyText(m: unknown, lang: Lang = 'en'): string | undefined {
  if (!isObj(m)) return undefined;
  const value = num(m.value);
  if (value === undefined) return undefined;
  const currency = str(m.currency);
  if (currency && /^[A-Z]{3}$/.test(currency)) {
    try {
      return new Intl.NumberFormat(lang === 'hi' ? 'hi-IN' : 'en-IN', {
        style: 'currency',
        currency,
        maximumFractionDigits: 20,
        minimumFractionDigits: Number.isInteger(value) ? 0 : 2,
      }).format(value);
    } catch {
      /* an unknown currency: as written */
    }
  }
  return `${numberText(value, lang)}${currency ? ` ${currency}` : ''}`;
}

/** A HumanName: its text, else prefix given family suffix. */
export function humanName(names: unknown): string | undefined {
  const list = arr(names).filter(isObj);
  const name = list.find((n) => n.use === 'official') ?? list.find((n) => n.use !== 'old') ?? list[0];
  if (!name) return undefined;
  const text = str(name.text);
  if (text) return text;
  const parts = [
    ...arr(name.prefix).map(str),
    ...arr(name.given).map(str),
    str(name.family),
    ...arr(name.suffix).map(str),
  ].filter((s): s is string => !!s);
  return parts.length ? parts.join(' ') : undefined;
}

/** The name of a Patient, Practitioner, Organization, PractitionerRole, Device, RelatedPerson… */
export function resourceName(r: Resource | undefined, index?: BundleIndex): string | undefined {
  if (!r) return undefined;
  const j = r as unknown as Json;
  switch (r.resourceType) {
    case 'Patient':
    case 'Practitioner':
    case 'RelatedPerson':
    case 'Person':
      return humanName(j.name);
    case 'Organization':
    case 'Location':
    case 'HealthcareService':
    case 'Group':
      return str(j.name);
    case 'PractitionerRole': {
      const who =
        resourceName(index?.resolve(j.practitioner, r), index) ??
        (isObj(j.practitioner) ? str(j.practitioner.display) : undefined);
      const org =
        resourceName(index?.resolve(j.organization, r), index) ??
        (isObj(j.organization) ? str(j.organization.display) : undefined);
      const role = conceptsText(j.code);
      return [who, role, org].filter(Boolean).join(', ') || undefined;
    }
    case 'Device':
      return arr(j.deviceName)
        .filter(isObj)
        .map((d) => str(d.name))
        .find(Boolean);
    case 'Medication':
      return conceptText(j.code);
    default:
      return conceptText(j.code) ?? str(j.title) ?? str(j.name);
  }
}

/** What a Reference names: the resolved resource's name, else its display, else the reference itself. */
export function referenceText(ref: unknown, index?: BundleIndex, host?: Resource): string | undefined {
  if (!isObj(ref)) return undefined;
  const resolved = index?.resolve(ref, host);
  return (
    resourceName(resolved, index) ??
    str(ref.display) ??
    (isObj(ref.identifier) ? str(ref.identifier.value) : undefined) ??
    str(ref.reference)
  );
}

export const referencesText = (refs: unknown, index?: BundleIndex, host?: Resource): string | undefined => {
  const parts = arr(refs)
    .map((r) => referenceText(r, index, host))
    .filter((s): s is string => !!s);
  return parts.length ? [...new Set(parts)].join('; ') : undefined;
};

/** A Period: start – end (written by the caller's date formatter). */
export function periodText(p: unknown, date: (s: string) => string): string | undefined {
  if (!isObj(p)) return undefined;
  const start = str(p.start);
  const end = str(p.end);
  if (start && end) return `${date(start)} – ${date(end)}`;
  if (start) return `${date(start)} –`;
  if (end) return `– ${date(end)}`;
  return undefined;
}

/**
 * The ABHA number (digits) and ABHA address of a Patient, by the store's own rules (src/fhir/abha.ts, the same code
 * the store indexes with) and its default ABHA identifier systems.
 */
export function abhaOf(patient: Resource | undefined): { number?: string; address?: string } {
  if (!patient || patient.resourceType !== 'Patient') return {};
  const id = abhaIdentity(patient.identifier, DEFAULT_ABHA_SYSTEMS);
  return { number: id.abhaNumber, address: id.abhaAddress };
}

// ---------------------------------------------------------------------------------------------------------------
// Observation flags

export type Flag = 'high' | 'low' | 'abnormal' | 'normal';

const HIGH = new Set(['H', 'HH', 'HU', '>', 'HX']);
const LOW = new Set(['L', 'LL', 'LU', '<', 'LX']);
const ABNORMAL = new Set(['A', 'AA', 'ABN', 'CAR', 'POS', 'DET', 'R', 'W', 'EX', 'IND']);
const NORMAL = new Set(['N', 'NEG', 'ND', 'S']);

/** What an Observation's (or component's) interpretation says, if anything. */
export function interpretationFlag(interpretation: unknown): Flag | undefined {
  let normal = false;
  for (const cc of arr(interpretation)) {
    if (!isObj(cc)) continue;
    for (const c of arr(cc.coding)) {
      if (!isObj(c)) continue;
      const code = str(c.code)?.trim().toUpperCase();
      if (!code) continue;
      if (HIGH.has(code)) return 'high';
      if (LOW.has(code)) return 'low';
      if (ABNORMAL.has(code) || code === 'ABNORMAL') return 'abnormal';
      if (NORMAL.has(code) || code === 'NORMAL') normal = true;
    }
    const text = (str(cc.text) ?? '').toLowerCase();
    if (/\b(high|above|elevated|raised)\b/.test(text)) return 'high';
    if (/\b(low|below|decreased|reduced)\b/.test(text)) return 'low';
    if (/\babnormal\b|\bcritical\b/.test(text)) return 'abnormal';
    if (/\bnormal\b/.test(text)) normal = true;
  }
  return normal ? 'normal' : undefined;
}

/** Whether a quantity falls outside a numeric reference range (the first range with a bound, unit checked). */
export function rangeFlag(q: unknown, ranges: unknown): 'high' | 'low' | 'normal' | undefined {
  if (!isObj(q)) return undefined;
  const value = num(q.value);
  if (value === undefined) return undefined;
  const unitOf = (x: Json) => str(x.code) ?? str(x.unit);
  for (const r of arr(ranges)) {
    if (!isObj(r)) continue;
    const low = isObj(r.low) && num(r.low.value) !== undefined ? r.low : undefined;
    const high = isObj(r.high) && num(r.high.value) !== undefined ? r.high : undefined;
    if (!low && !high) continue;
    const qu = unitOf(q);
    const same = (b: Json) => !qu || !unitOf(b) || unitOf(b) === qu || str(b.unit) === str(q.unit);
    if ((low && !same(low)) || (high && !same(high))) return undefined;
    if (high && value > (high.value as number)) return 'high';
    if (low && value < (low.value as number)) return 'low';
    return 'normal';
  }
  return undefined;
}

/**
 * The flag to show for a value: what the interpretation says when it is not normal, else whether the quantity is
 * outside its reference range (so a value outside its range is flagged even when the interpretation is missing),
 * else what the interpretation says.
 */
export function valueFlag(
  interpretation: unknown,
  quantity: unknown,
  ranges: unknown,
): { flag?: Flag; fromRange?: boolean } {
  const interp = interpretationFlag(interpretation);
  if (interp && interp !== 'normal') return { flag: interp };
  const range = rangeFlag(quantity, ranges);
  if (range === 'high' || range === 'low') return { flag: range, fromRange: true };
  return { flag: interp ?? (range === 'normal' ? 'normal' : undefined) };
}

/** When an Observation was made: effective[x], else issued. */
export function observationDate(o: Json): string | undefined {
  return (
    str(o.effectiveDateTime) ??
    str(o.effectiveInstant) ??
    (isObj(o.effectivePeriod) ? (str(o.effectivePeriod.start) ?? str(o.effectivePeriod.end)) : undefined) ??
    (isObj(o.effectiveTiming) ? str(arr(o.effectiveTiming.event)[0]) : undefined) ??
    str(o.issued)
  );
}

/** A FHIR date or dateTime as milliseconds since the epoch (a date alone as its UTC midnight), else NaN. */
export function timeOf(value: string): number {
  if (/^\d{4}$/.test(value)) return Date.UTC(Number(value), 0, 1);
  if (/^\d{4}-\d{2}$/.test(value)) return Date.UTC(Number(value.slice(0, 4)), Number(value.slice(5, 7)) - 1, 1);
  return Date.parse(value);
}
