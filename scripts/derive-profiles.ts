/**
 * Derives profiles/*.json, the ABDM record rules the profile engine applies (src/fhir/profiles.ts),
 * from the StructureDefinitions of the ABDM FHIR IG package (ndhm.in). Run by hand when the IG
 * changes; its output is committed, and test/profiles checks that the committed files are what this
 * script derives and, independently, that every rule in them is stated by the IG.
 *
 *   npm run profiles:derive -- [--ig ../shared/ig/ndhm.in-6.5.0] [--check]
 *
 * `--check` writes nothing and exits 1 when a committed file differs from what the IG gives.
 *
 * What is read, per record (Composition) profile, from its snapshot:
 * - the Composition.type the record is recognised by: a fixed code, the codes of the value set its
 *   type is bound to when no code is fixed, or a fixed `type.text` when the type has no coding rule;
 * - every Composition element the profile makes required where base R4 does not;
 * - Composition.section: its cardinality, its slicing (by code or by title, open or closed) and, per
 *   slice, its fixed code or title, cardinality, required elements and entries (sliced by type or
 *   typed by target profiles);
 * - for every IG profile a record can contain (section entries, the Composition's own references, and
 *   what those profiles reference from required elements), the elements it makes required, grouped by
 *   resource type (where several profiles of one type apply, only the rules all of them state).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ABDM hiType (consent artefacts, HI requests) of each record profile; ABDM's protocol, not the IG, names them. */
export const RECORD_TYPES: { recordType: string; hiType: string; file: string }[] = [
  { recordType: 'PrescriptionRecord', hiType: 'Prescription', file: 'prescription-record.json' },
  { recordType: 'DiagnosticReportRecord', hiType: 'DiagnosticReport', file: 'diagnostic-report-record.json' },
  { recordType: 'OPConsultRecord', hiType: 'OPConsultation', file: 'op-consult-record.json' },
  { recordType: 'DischargeSummaryRecord', hiType: 'DischargeSummary', file: 'discharge-summary-record.json' },
  { recordType: 'ImmunizationRecord', hiType: 'ImmunizationRecord', file: 'immunization-record.json' },
  { recordType: 'HealthDocumentRecord', hiType: 'HealthDocumentRecord', file: 'health-document-record.json' },
  { recordType: 'WellnessRecord', hiType: 'WellnessRecord', file: 'wellness-record.json' },
  { recordType: 'InvoiceRecord', hiType: 'Invoice', file: 'invoice-record.json' },
];

type Max = number | '*';
interface SdElement {
  id: string;
  path: string;
  min?: number;
  max?: string;
  sliceName?: string;
  base?: { min: number; max: string };
  type?: { code: string; targetProfile?: string[] }[];
  slicing?: { rules: string; discriminator?: { type: string; path: string }[] };
  binding?: { strength: string; valueSet?: string };
  [k: string]: unknown;
}
export interface Sd {
  url: string;
  name: string;
  type: string;
  snapshot: { element: SdElement[] };
}
export interface Ig {
  dir: string;
  version: string;
  byUrl: Map<string, Sd & { file: string }>;
  byName: Map<string, Sd & { file: string }>;
  valueSets: Map<string, any>;
}

const R4 = 'http://hl7.org/fhir/StructureDefinition/';

export function readIg(dir: string): Ig {
  const byUrl = new Map<string, Sd & { file: string }>();
  const byName = new Map<string, Sd & { file: string }>();
  const valueSets = new Map<string, any>();
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    if (r.resourceType === 'StructureDefinition' && r.snapshot) {
      const sd = { ...r, file: f };
      byUrl.set(r.url, sd);
      byName.set(r.name, sd);
    } else if (r.resourceType === 'ValueSet') valueSets.set(r.url, r);
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return { dir, version: `${pkg.name} ${pkg.version}`, byUrl, byName, valueSets };
}

const maxOf = (m: string | undefined): Max => (m === '*' || m === undefined ? '*' : Number(m));
const isExtension = (id: string) => /(^|\.)(extension|modifierExtension)(:|\.|$)/.test(id);

/**
 * Elements of `sd` the profile makes required (min ≥ 1) where base R4 leaves them optional, or a
 * choice narrowed to one type.
 */
export function tightened(sd: Sd, keep: (e: SdElement) => boolean = (e) => !e.id.includes(':')): SdElement[] {
  return sd.snapshot.element.filter((e) => {
    if (isExtension(e.id) || !keep(e)) return false;
    if ((e.min ?? 0) >= 1 && e.base?.min === 0) return true;
    return e.id.endsWith('[x]') && (e.min ?? 0) >= 1 && (e.type?.length ?? 0) === 1 && e.base?.min !== undefined;
  });
}

/** The value an element fixes (fixedUri, fixedCode, fixedString); any other fixed or pattern value has no slot. */
function fixedValue(e: SdElement): string | undefined {
  for (const k of Object.keys(e)) {
    if (!k.startsWith('fixed') && !k.startsWith('pattern')) continue;
    if (['fixedUri', 'fixedCode', 'fixedString'].includes(k) && typeof e[k] === 'string') return e[k] as string;
    throw new Error(`${e.id}: ${k} is not a value the profile format can hold`);
  }
  return undefined;
}

/** Elements of `sd` (kept by `keep`) that fix a value, as rules on the JSON path below `from`. */
function fixedRules(sd: Sd, els: Map<string, SdElement>, from: string, keep: (e: SdElement) => boolean) {
  return sd.snapshot.element
    .filter((e) => !isExtension(e.id) && keep(e) && fixedValue(e) !== undefined)
    .map((e) => ({ path: jsonPath(e.id, from, els), value: fixedValue(e)!, cite: e.id }));
}

/**
 * Codings a profile slices by system (Observation.code.coding: LOINC | SNOMEDCT): for each, whether
 * the slicing is closed, and each slice's system and the elements a coding of it requires.
 */
function codingSlices(sd: Sd, els: Map<string, SdElement>, from: string) {
  return sd.snapshot.element
    .filter((e) => !e.id.includes(':') && !isExtension(e.id) && e.slicing)
    .map((e) => {
      const disc = e.slicing!.discriminator?.map((d) => `${d.type}:${d.path}`).join(',');
      if (!e.id.endsWith('.coding') || disc !== 'value:system')
        throw new Error(`${e.id}: slicing by ${disc} is not one the profile format can hold`);
      const slices = sd.snapshot.element
        .filter((x) => x.path === e.path && x.sliceName && x.id === `${e.id}:${x.sliceName}`)
        .map((x) => ({
          name: x.sliceName!,
          system: els.get(`${x.id}.system`)?.fixedUri as string,
          cite: x.id,
          required: tightened(sd, (y) => y.id.startsWith(`${x.id}.`)).map((y) => ({
            path: jsonPath(y.id, x.id, els),
            cite: y.id,
          })),
        }));
      if (slices.some((x) => !x.system)) throw new Error(`${e.id}: a slice fixes no system`);
      return { path: jsonPath(e.id, from, els), cite: e.id, closed: e.slicing!.rules === 'closed', slices };
    });
}

/**
 * The JSON path (dotted member names) an element id denotes, relative to `from` (an ancestor id):
 * slice names dropped, a choice element expanded to its allowed types (`product[x]` with two types
 * → `productReference|productCodeableConcept`, which only the last step may be).
 */
export function jsonPath(id: string, from: string, els: Map<string, SdElement>): string {
  const segs = id.split('.');
  const start = from.split('.').length;
  const out: string[] = [];
  for (let i = start; i < segs.length; i++) {
    const seg = segs[i].replace(/:.*$/, '');
    if (!seg.endsWith('[x]')) {
      out.push(seg);
      continue;
    }
    const types = els.get(segs.slice(0, i + 1).join('.'))?.type ?? [];
    if (types.length === 0 || (types.length > 1 && i < segs.length - 1))
      throw new Error(`${id}: cannot name the JSON path of ${seg}`);
    const stem = seg.slice(0, -3);
    out.push(types.map((t) => stem + t.code[0].toUpperCase() + t.code.slice(1)).join('|'));
  }
  return out.join('.');
}

const targetProfiles = (e: SdElement | undefined): string[] => (e?.type ?? []).flatMap((t) => t.targetProfile ?? []);
/** The resource type a target profile constrains: an IG profile's type, or a base R4 resource's name. */
function resourceTypeOf(ig: Ig, url: string): string | undefined {
  return ig.byUrl.get(url)?.type ?? (url.startsWith(R4) ? url.slice(R4.length) : undefined);
}

/** Codes a value set names: its enumerated concepts and the roots of its is-a filters. */
function valueSetCodes(vs: any): string[] {
  return (vs.compose?.include ?? []).flatMap((inc: any) => [
    ...(inc.concept ?? []).map((c: any) => c.code),
    ...(inc.filter ?? []).filter((f: any) => f.op === 'is-a').map((f: any) => f.value),
  ]);
}

function compositionType(ig: Ig, sd: Sd, el: (id: string) => SdElement | undefined) {
  const code = el('Composition.type.coding.code')?.fixedCode as string | undefined;
  const system = el('Composition.type.coding.system')?.fixedUri as string | undefined;
  if (code) return { system, code, cite: 'Composition.type.coding.code' };
  const text = el('Composition.type.text')?.fixedString as string | undefined;
  if (text) return { text, cite: 'Composition.type.text' };
  const vsUrl = el('Composition.type')?.binding?.valueSet?.split('|')[0];
  const vs = vsUrl ? ig.valueSets.get(vsUrl) : undefined;
  if (!vs || !system) throw new Error(`${sd.name}: no fixed Composition.type code or text, and no bound value set`);
  return {
    system,
    code: null,
    codes: valueSetCodes(vs),
    valueSet: vs.url,
    cite: 'Composition.type.coding.system',
    note: `The IG fixes no Composition.type code for this profile (binding ${el('Composition.type')?.binding?.strength} to ValueSet ${vs.id}). The record type is recognised by the value set's enumerated codes and the roots of its is-a filters; descendants of those roots are not recognised (no SNOMED CT hierarchy offline).`,
  };
}

function entryRule(ig: Ig, sd: Sd, els: Map<string, SdElement>, cite: string) {
  const en = els.get(cite);
  if (!en) throw new Error(`${sd.name}: no ${cite}`);
  const slices = sd.snapshot.element.filter((e) => e.path === en.path && e.id.startsWith(`${cite}:`) && e.sliceName);
  const requireType =
    slices.length > 0
      ? slices.every((s) => (els.get(`${s.id}.type`)?.min ?? 0) >= 1)
      : (els.get(`${cite}.type`)?.min ?? 0) >= 1;
  const byType = new Map<string, string[]>();
  const add = (url: string) => {
    const rt = resourceTypeOf(ig, url);
    if (!rt) throw new Error(`${cite}: target ${url} names no resource type`);
    if (!byType.has(rt)) byType.set(rt, []);
    if (ig.byUrl.has(url)) byType.get(rt)!.push(url);
  };
  let targets;
  if (slices.length > 0) {
    targets = slices.map((s) => {
      const urls = targetProfiles(s);
      const types = new Set(urls.map((u) => resourceTypeOf(ig, u)));
      if (types.size !== 1) throw new Error(`${s.id}: an entry slice must target one resource type`);
      return {
        resourceType: [...types][0]!,
        profiles: urls.filter((u) => ig.byUrl.has(u)),
        min: s.min ?? 0,
        max: maxOf(s.max),
        cite: s.id,
      };
    });
  } else {
    targetProfiles(en).forEach(add);
    targets = [...byType].map(([resourceType, profiles]) => ({ resourceType, profiles, cite }));
  }
  const all = slices.length > 0 ? slices.flatMap(targetProfiles) : targetProfiles(en);
  return {
    min: en.min ?? 0,
    max: maxOf(en.max),
    cite,
    requireType,
    ...(requireType ? { typeCite: `${slices[0]?.id ?? cite}.type` } : {}),
    closed: en.slicing ? en.slicing.rules === 'closed' : all.length > 0 && !all.includes(`${R4}Resource`),
    targets,
  };
}

/**
 * Required elements under one section slice, relative to the section; an entry-slice rule stated
 * by every entry slice becomes one rule on every entry.
 */
function sliceRequired(sd: Sd, els: Map<string, SdElement>, cite: string) {
  const entry = `${cite}.entry`;
  const entrySlices = sd.snapshot.element.filter((e) => e.id.startsWith(`${entry}:`) && e.sliceName);
  const out: { path: string; cite: string }[] = [];
  const seen = new Set<string>();
  for (const e of tightened(sd, (x) => x.id.startsWith(`${cite}.`))) {
    const rest = e.id.slice(cite.length + 1);
    if (rest.includes(':') && !rest.startsWith('entry:')) continue; // a slice nested in the section
    if (rest.startsWith('entry:')) {
      const m = /^entry:[^.]+\.(.+)$/.exec(rest);
      if (!m || m[1] === 'type') continue; // the slice itself (its cardinality) or its type (requireType)
      if (m[1].includes(':')) continue;
      const every = entrySlices.every((s) => (els.get(`${s.id}.${m[1]}`)?.min ?? 0) >= 1);
      if (!every) throw new Error(`${e.id}: required in one entry slice but not in all; the format has no slot for it`);
      const path = `entry.${jsonPath(`${entry}.${m[1]}`, entry, els)}`;
      if (seen.has(path)) continue;
      seen.add(path);
      out.push({ path, cite: e.id });
      continue;
    }
    if (e.id === entry) continue; // entry.min
    out.push({ path: jsonPath(e.id, cite, els), cite: e.id });
  }
  return out;
}

function sections(ig: Ig, sd: Sd, els: Map<string, SdElement>) {
  const sec = els.get('Composition.section')!;
  const rules = sec.slicing?.rules;
  const disc = sec.slicing?.discriminator?.map((d) => d.path).join(',');
  const discriminator = rules === undefined ? undefined : disc === 'title' ? 'title' : 'code';
  if (rules !== undefined && disc !== 'title' && disc !== 'code.coding.code')
    throw new Error(`${sd.name}: section slicing by ${disc} is not supported by the format`);
  const ids =
    rules === undefined
      ? ['Composition.section']
      : sd.snapshot.element.filter((e) => e.path === 'Composition.section' && e.sliceName).map((e) => e.id);
  const slices = ids.map((cite) => {
    const s = els.get(cite)!;
    const code = els.get(`${cite}.code.coding.code`)?.fixedCode as string | undefined;
    const system = els.get(`${cite}.code.coding.system`)?.fixedUri as string | undefined;
    const title = els.get(`${cite}.title`)?.fixedString as string | undefined;
    return {
      name: s.sliceName ?? sd.name,
      ...(code ? { code } : {}),
      ...(system ? { system } : {}),
      ...(title ? { title } : {}),
      min: s.min ?? 0,
      max: maxOf(s.max),
      cite,
      required: sliceRequired(sd, els, cite),
      fixed: fixedRules(sd, els, cite, (e) => {
        if (!e.id.startsWith(`${cite}.`) || e.id.slice(cite.length + 1).includes(':')) return false;
        return ![`${cite}.code.coding.code`, `${cite}.code.coding.system`, `${cite}.title`].includes(e.id);
      }),
      entry: entryRule(ig, sd, els, `${cite}.entry`),
    };
  });
  return {
    min: sec.min ?? 0,
    max: maxOf(sec.max),
    cite: 'Composition.section',
    slicing: rules === undefined || rules === 'closed' ? 'closed' : 'open',
    ...(discriminator ? { discriminator } : {}),
    slices,
  };
}

/**
 * The references an element list makes to IG profiles: each Reference element (outside slices and
 * extensions) with an IG target profile, as its JSON path and those targets. A choice element
 * (`chargeItem[x]`) is named by its Reference form (`chargeItemReference`).
 */
function referenceRules(ig: Ig, sd: Sd, els: Map<string, SdElement>, from: string, keep: (e: SdElement) => boolean) {
  return sd.snapshot.element
    .filter((e) => !e.id.includes(':') && !isExtension(e.id) && keep(e))
    .filter((e) => (e.type ?? []).some((t) => t.code === 'Reference'))
    .map((e) => {
      const targets = (e.type ?? [])
        .filter((t) => t.code === 'Reference')
        .flatMap((t) => t.targetProfile ?? [])
        .filter((u) => ig.byUrl.has(u));
      const rel = e.id.endsWith('[x]') ? `${e.id.slice(0, -3)}Reference` : e.id;
      const parent = e.id.endsWith('[x]') ? e.id.slice(0, e.id.lastIndexOf('.')) : undefined;
      const path = parent
        ? `${parent === from ? '' : jsonPath(parent, from, els) + '.'}${rel.slice(parent.length + 1)}`
        : jsonPath(e.id, from, els);
      return { path, targets, cite: e.id };
    })
    .filter((r) => r.targets.length > 0);
}

const NOTES: Record<string, string> = {
  Patient:
    'The ABHA-identifier rule for the patient is enforced in code (src/fhir/abha.ts), not here; these are only the profile’s own rules.',
};

/**
 * The rules of every IG profile a record's resources may be held to: the targets of the
 * Composition's references and section entries, then, repeatedly, the targets of those profiles'
 * references. A resource is held to a profile only when it is reached through such a reference.
 */
function profileRules(ig: Ig, record: Sd) {
  const out: Record<string, unknown> = {};
  const queue = record.snapshot.element.flatMap(targetProfiles).filter((u) => ig.byUrl.has(u));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const url = queue.shift()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const x = ig.byUrl.get(url)!;
    const els = new Map(x.snapshot.element.map((e) => [e.id, e]));
    const rt = x.type;
    const references = referenceRules(ig, x, els, rt, () => true);
    for (const r of references) queue.push(...r.targets);
    out[url] = {
      name: x.name,
      resourceType: rt,
      source: x.file,
      required: tightened(x).map((e) => ({ path: jsonPath(e.id, rt, els), cite: e.id })),
      fixed: fixedRules(x, els, rt, (e) => !e.id.includes(':')),
      codings: codingSlices(x, els, rt),
      references,
      ...(NOTES[rt] ? { note: NOTES[rt] } : {}),
    };
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

export function deriveProfile(ig: Ig, recordType: string, hiType: string) {
  const sd = ig.byName.get(recordType);
  if (!sd || sd.type !== 'Composition') throw new Error(`${recordType} is not a Composition profile in ${ig.dir}`);
  const els = new Map(sd.snapshot.element.map((e) => [e.id, e]));
  const el = (id: string) => els.get(id);
  return {
    recordType,
    hiType,
    profile: sd.url,
    source: `${ig.version} ${sd.file}`,
    compositionType: compositionType(ig, sd, el),
    compositionRequired: tightened(sd)
      .filter((e) => !e.id.startsWith('Composition.section'))
      .map((e) => ({ path: jsonPath(e.id, 'Composition', els), cite: e.id })),
    compositionFixed: fixedRules(sd, els, 'Composition', (e) => {
      if (e.id.includes(':') || e.id.startsWith('Composition.section')) return false;
      // what compositionType already holds
      return !['Composition.type.coding.code', 'Composition.type.coding.system', 'Composition.type.text'].includes(
        e.id,
      );
    }),
    compositionReferences: referenceRules(ig, sd, els, 'Composition', (e) => !e.id.startsWith('Composition.section')),
    sections: sections(ig, sd, els),
    profiles: profileRules(ig, sd),
  };
}

export function deriveAll(igDir: string): { file: string; text: string }[] {
  const ig = readIg(igDir);
  return RECORD_TYPES.map(({ recordType, hiType, file }) => ({
    file,
    text: JSON.stringify(deriveProfile(ig, recordType, hiType), null, 2) + '\n',
  }));
}

export const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const DEFAULT_IG = resolve(REPO, '..', 'shared', 'ig', 'ndhm.in-6.5.0');

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--ig');
  const igDir = at >= 0 ? resolve(args[at + 1]) : DEFAULT_IG;
  const check = args.includes('--check');
  let differs = 0;
  for (const { file, text } of deriveAll(igDir)) {
    const path = join(REPO, 'profiles', file);
    let old = '';
    try {
      old = readFileSync(path, 'utf8');
    } catch {
      // a new record type
    }
    if (old === text) continue;
    differs++;
    if (check) console.log(`profiles/${file} differs from what ${igDir} gives`);
    else {
      writeFileSync(path, text);
      console.log(`wrote profiles/${file}`);
    }
  }
  if (check && differs > 0) process.exit(1);
  if (!differs) console.log('profiles/ is what the IG gives');
}
