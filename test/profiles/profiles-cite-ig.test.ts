// Proves that every rule in profiles/*.json is stated by the ABDM FHIR IG 6.5.0
// StructureDefinitions (read at runtime from ../shared/ig/ndhm.in-6.5.0), and
// reports which of those rules the IG's own 6.5.0 example bundles violate.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sharedDir = path.resolve(repoRoot, '..', 'shared');
const igDir = path.join(sharedDir, 'ig', 'ndhm.in-6.5.0');
const corpusDir = path.join(sharedDir, 'corpus', 'abdm-examples');
const profilesDir = path.join(repoRoot, 'profiles');

// ---------- types of the profile-file format ----------
type Max = number | '*';
interface Rule {
  path: string;
  cite: string;
}
interface Target {
  resourceType: string;
  profiles: string[];
  min: number;
  max: Max;
  cite: string;
}
interface EntryRule {
  min: number;
  max: Max;
  cite: string;
  requireType: boolean;
  typeCite?: string;
  closed: boolean;
  targets: Target[];
}
interface SliceRule {
  name: string;
  code?: string;
  system?: string;
  min: number;
  max: Max;
  cite: string;
  entry: EntryRule;
}
interface ResourceRule {
  profile: string;
  source: string;
  required: Rule[];
  note?: string;
}
interface ProfileFile {
  recordType: string;
  hiType: string;
  profile: string;
  source: string;
  compositionType: { system: string; code: string | null; cite: string };
  compositionRequired: Rule[];
  sections: { min: number; max: Max; cite: string; slicing: 'closed' | 'open'; slices: SliceRule[] };
  resources: Record<string, ResourceRule>;
}

// ---------- minimal StructureDefinition model ----------
interface SdType {
  code: string;
  targetProfile?: string[];
}
interface SdElement {
  id: string;
  path: string;
  min?: number;
  max?: string;
  sliceName?: string;
  base?: { path: string; min: number; max: string };
  type?: SdType[];
  slicing?: { rules: string; discriminator?: { type: string; path: string }[] };
  [k: string]: unknown;
}
interface Sd {
  url: string;
  name: string;
  type: string;
  snapshot: { element: SdElement[] };
}

const sdByFile = new Map<string, Sd>();
const sdByUrl = new Map<string, Sd>();
for (const f of fs.readdirSync(igDir)) {
  if (!f.startsWith('StructureDefinition-') || !f.endsWith('.json')) continue;
  const sd = JSON.parse(fs.readFileSync(path.join(igDir, f), 'utf8')) as Sd;
  sdByFile.set(f, sd);
  sdByUrl.set(sd.url, sd);
}
function sdFromSource(source: string): Sd {
  const m = /StructureDefinition-[A-Za-z0-9-]+\.json/.exec(source);
  if (!m) throw new Error(`source names no StructureDefinition file: ${source}`);
  const sd = sdByFile.get(m[0]);
  if (!sd) throw new Error(`no such StructureDefinition in IG: ${m[0]}`);
  return sd;
}
function elementsOf(sd: Sd): Map<string, SdElement> {
  return new Map(sd.snapshot.element.map((e) => [e.id, e]));
}
const fmtMax = (m: Max | string | undefined): string => String(m);

const PROFILE_FILES = ['prescription-record.json', 'diagnostic-report-record.json', 'discharge-summary-record.json'];
function loadProfile(f: string): ProfileFile {
  return JSON.parse(fs.readFileSync(path.join(profilesDir, f), 'utf8')) as ProfileFile;
}

/** JSON path that an element id denotes: drop the type root and slice names, expand a single-type [x]. */
function citeToPath(cite: string, els: Map<string, SdElement>): string {
  const segs = cite.split('.');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    let seg = segs[i].replace(/:.*$/, '');
    if (seg.endsWith('[x]')) {
      const types = els.get(segs.slice(0, i + 1).join('.'))?.type ?? [];
      if (types.length !== 1) return `<ambiguous choice ${cite}>`;
      const t = types[0].code;
      seg = seg.slice(0, -3) + t[0].toUpperCase() + t.slice(1);
    }
    out.push(seg);
  }
  return out.join('.');
}

/** Elements (not inside slices, not extensions) the SD makes min>=1 where base R4 has min 0. */
function tightenedElements(sd: Sd): string[] {
  return sd.snapshot.element
    .filter((e) => !e.id.includes(':') && !/xtension/.test(e.id))
    .filter((e) => {
      if ((e.min ?? 0) >= 1 && e.base?.min === 0) return true;
      // a required choice narrowed to one type (e.g. medication[x] -> CodeableConcept)
      return e.id.endsWith('[x]') && (e.min ?? 0) >= 1 && (e.type?.length ?? 0) === 1;
    })
    .map((e) => e.id);
}

/** Checks a required-element rule against one SD; returns problems. */
function checkRequired(r: Rule, sd: Sd, els: Map<string, SdElement>, where: string): string[] {
  const p: string[] = [];
  const e = els.get(r.cite);
  if (!e) return [`${where}: cite ${r.cite} not in ${sd.name} snapshot`];
  if ((e.min ?? 0) < 1) p.push(`${where}: ${r.cite} has min ${e.min} in ${sd.name}, not required`);
  const narrowed = r.cite.endsWith('[x]') && (e.type?.length ?? 0) === 1;
  if (e.base?.min !== 0 && !narrowed) p.push(`${where}: ${r.cite} is already min ${e.base?.min} in base R4`);
  if (citeToPath(r.cite, els) !== r.path) p.push(`${where}: path ${r.path} does not match cite ${r.cite}`);
  return p;
}

function targetProfilesOf(e: SdElement | undefined): string[] {
  return (e?.type ?? []).flatMap((t) => t.targetProfile ?? []);
}

/** All checks (a)-(d) for one profile file. Returns the list of problems (empty = all rules are IG-stated). */
function checkProfileAgainstIg(pf: ProfileFile): string[] {
  const problems: string[] = [];
  const sd = sdFromSource(pf.source);
  const els = elementsOf(sd);
  const el = (id: string): SdElement | undefined => els.get(id);
  const need = (id: string, where: string): SdElement | undefined => {
    const e = el(id);
    if (!e) problems.push(`${where}: cite ${id} not in ${sd.name} snapshot`);
    return e;
  };
  const sameCard = (e: SdElement, min: number, max: Max, where: string): void => {
    if (e.min !== min || e.max !== fmtMax(max))
      problems.push(`${where}: file says ${min}..${fmtMax(max)} but ${sd.name} ${e.id} is ${e.min}..${e.max}`);
  };

  // (d) profile URL
  if (pf.profile !== sd.url) problems.push(`profile ${pf.profile} != SD url ${sd.url}`);
  if (sd.type !== 'Composition') problems.push(`${sd.name} does not profile Composition`);
  if (pf.recordType !== sd.name) problems.push(`recordType ${pf.recordType} != SD name ${sd.name}`);

  // (c) composition type
  const ct = pf.compositionType;
  need(ct.cite, 'compositionType');
  const sysEl = el('Composition.type.coding.system');
  if (sysEl?.fixedUri !== ct.system)
    problems.push(`compositionType.system ${ct.system} != fixedUri ${String(sysEl?.fixedUri)}`);
  const codeEl = el('Composition.type.coding.code');
  const pattern = el('Composition.type')?.patternCodeableConcept as { coding?: { code?: string }[] } | undefined;
  const igCode = (codeEl?.fixedCode as string | undefined) ?? pattern?.coding?.[0]?.code ?? null;
  if (igCode !== ct.code) problems.push(`compositionType.code ${ct.code} != IG fixed code ${igCode}`);
  if (ct.code !== null && ct.cite !== 'Composition.type.coding.code')
    problems.push(`compositionType.cite should be Composition.type.coding.code`);

  // (a)(b) composition required elements
  for (const r of pf.compositionRequired) {
    const m = /^Composition\.section\.entry:([^.]+)\.(.+)$/.exec(r.cite);
    if (m) {
      // a rule cited on one entry slice stands for "every entry" only if the entry slicing is closed
      // and every entry slice states the same requirement.
      const entryEl = el('Composition.section.entry');
      if (entryEl?.slicing?.rules !== 'closed')
        problems.push(`compositionRequired ${r.cite}: entry slicing not closed`);
      const slices = sd.snapshot.element.filter((e) => e.path === 'Composition.section.entry' && e.sliceName);
      for (const s of slices) {
        const sib = el(`${s.id}.${m[2]}`);
        if (!sib || (sib.min ?? 0) < 1) problems.push(`compositionRequired ${r.path}: ${s.id}.${m[2]} not required`);
      }
    }
    problems.push(...checkRequired(r, sd, els, 'compositionRequired'));
  }
  // completeness: every tightened Composition element is either listed or expressed by `sections`
  const listed = new Set(pf.compositionRequired.map((r) => r.cite));
  for (const id of tightenedElements(sd)) {
    if (id === 'Composition.section' || id === 'Composition.section.entry') continue; // in sections.min / entry.min
    if (!listed.has(id)) problems.push(`compositionRequired misses IG-required ${id}`);
  }

  // (a)(b) sections
  const sec = pf.sections;
  const secEl = need(sec.cite, 'sections');
  if (sec.cite !== 'Composition.section') problems.push('sections.cite must be Composition.section');
  if (secEl) {
    sameCard(secEl, sec.min, sec.max, 'sections');
    const rules = secEl.slicing?.rules;
    const expected = rules === undefined || rules === 'closed' ? 'closed' : 'open';
    if (sec.slicing !== expected)
      problems.push(`sections.slicing ${sec.slicing} but IG slicing rules ${String(rules)}`);
    if (rules === undefined && (sec.slices.length !== 1 || sec.slices[0].cite !== 'Composition.section'))
      problems.push('unsliced section must be one slice citing Composition.section');
    if (rules !== undefined) {
      const igSlices = sd.snapshot.element
        .filter((e) => e.path === 'Composition.section' && e.sliceName)
        .map((e) => e.sliceName);
      const fileSlices = sec.slices.map((s) => s.name);
      if (JSON.stringify([...igSlices].sort()) !== JSON.stringify([...fileSlices].sort()))
        problems.push(`section slices ${fileSlices.join(',')} != IG slices ${igSlices.join(',')}`);
    }
  }
  for (const s of sec.slices) {
    const where = `section ${s.name}`;
    const sEl = need(s.cite, where);
    if (!sEl) continue;
    sameCard(sEl, s.min, s.max, where);
    if (sEl.sliceName !== undefined && sEl.sliceName !== s.name)
      problems.push(`${where}: IG sliceName ${sEl.sliceName}`);
    const igSecCode = (el(`${s.cite}.code.coding.code`)?.fixedCode as string | undefined) ?? undefined;
    if (igSecCode !== s.code) problems.push(`${where}: code ${s.code} != IG fixedCode ${igSecCode}`);
    const igSecSys = el(`${s.cite}.code.coding.system`)?.fixedUri as string | undefined;
    if (s.system !== undefined && s.system !== igSecSys)
      problems.push(`${where}: system ${s.system} != IG ${igSecSys}`);
    if (s.code !== undefined && s.system === undefined && igSecSys)
      problems.push(`${where}: IG fixes system ${igSecSys}`);

    const en = s.entry;
    if (en.cite !== `${s.cite}.entry`) problems.push(`${where}: entry.cite must be ${s.cite}.entry`);
    const enEl = need(en.cite, `${where} entry`);
    if (!enEl) continue;
    sameCard(enEl, en.min, en.max, `${where} entry`);
    const entrySlices = sd.snapshot.element.filter(
      (e) => e.path === enEl.path && e.id.startsWith(`${en.cite}:`) && e.sliceName,
    );
    const igRequireType =
      entrySlices.length > 0
        ? entrySlices.every((x) => (el(`${x.id}.type`)?.min ?? 0) >= 1)
        : (el(`${en.cite}.type`)?.min ?? 0) >= 1;
    if (en.requireType !== igRequireType)
      problems.push(`${where}: requireType ${en.requireType} but IG says ${igRequireType}`);
    if (en.requireType) {
      const tEl = en.typeCite ? need(en.typeCite, `${where} typeCite`) : undefined;
      if (!tEl || (tEl.min ?? 0) < 1) problems.push(`${where}: typeCite ${en.typeCite} is not a min>=1 element`);
    }
    const baseResource = 'http://hl7.org/fhir/StructureDefinition/Resource';
    const igClosed = enEl.slicing
      ? enEl.slicing.rules === 'closed'
      : targetProfilesOf(enEl).length > 0 && !targetProfilesOf(enEl).includes(baseResource);
    if (en.closed !== igClosed) problems.push(`${where}: closed ${en.closed} but IG says ${igClosed}`);

    const fileProfiles = new Set<string>();
    for (const t of en.targets) {
      const tw = `${where} target ${t.resourceType}`;
      const tEl = need(t.cite, tw);
      if (!tEl) continue;
      if (t.cite !== en.cite && !t.cite.startsWith(`${en.cite}:`)) problems.push(`${tw}: cite not under ${en.cite}`);
      sameCard(tEl, t.min, t.max, tw);
      const igTargets = targetProfilesOf(tEl).filter((u) => sdByUrl.get(u)?.type === t.resourceType);
      if (JSON.stringify([...igTargets].sort()) !== JSON.stringify([...t.profiles].sort()))
        problems.push(`${tw}: profiles ${t.profiles.join(',')} != IG ${igTargets.join(',')}`);
      for (const u of t.profiles) {
        fileProfiles.add(u);
        if (sdByUrl.get(u)?.type !== t.resourceType) problems.push(`${tw}: ${u} does not profile ${t.resourceType}`);
      }
      if (tEl.sliceName) {
        const fixedType = el(`${t.cite}.type`)?.fixedUri;
        if (fixedType !== t.resourceType) problems.push(`${tw}: IG fixes entry.type ${String(fixedType)}`);
      }
      if (!pf.resources[t.resourceType]) problems.push(`${tw}: no resources.${t.resourceType} block`);
    }
    const igAll = entrySlices.length > 0 ? entrySlices.flatMap(targetProfilesOf) : targetProfilesOf(enEl);
    for (const u of igAll) if (!fileProfiles.has(u)) problems.push(`${where}: IG allows ${u} but no target lists it`);
  }

  // (a)(b)(d) resources
  for (const [rt, rr] of Object.entries(pf.resources)) {
    const where = `resources.${rt}`;
    let rsd: Sd;
    try {
      rsd = sdFromSource(rr.source);
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
      continue;
    }
    if (rr.profile !== rsd.url) problems.push(`${where}: profile ${rr.profile} != SD url ${rsd.url}`);
    if (rsd.type !== rt) problems.push(`${where}: ${rsd.name} profiles ${rsd.type}`);
    // every profile of this resourceType the record allows must state each rule (DiagnosticReportLab ∩ Imaging)
    const sds = new Map<string, Sd>([[rsd.url, rsd]]);
    for (const s of pf.sections.slices)
      for (const t of s.entry.targets)
        if (t.resourceType === rt)
          for (const u of t.profiles) {
            const x = sdByUrl.get(u);
            if (x) sds.set(u, x);
          }
    for (const r of rr.required)
      for (const x of sds.values()) problems.push(...checkRequired(r, x, elementsOf(x), where));
    // completeness: the intersection of what those profiles tighten
    const sets = [...sds.values()].map((x) => new Set(tightenedElements(x)));
    const expected = [...sets[0]].filter((id) => sets.every((st) => st.has(id)));
    const have = new Set(rr.required.map((r) => r.cite));
    for (const id of expected) if (!have.has(id)) problems.push(`${where}: misses IG-required ${id}`);
  }
  return problems;
}

describe('profiles/*.json: every rule is stated by the ABDM IG 6.5.0', () => {
  for (const f of PROFILE_FILES) {
    it(`${f} cites the IG exactly`, () => {
      const pf = loadProfile(f);
      expect(checkProfileAgainstIg(pf)).toEqual([]);
    });
  }

  it('uses the IG fixed codes we expect (spot check)', () => {
    const byType = Object.fromEntries(
      PROFILE_FILES.map((f) => {
        const p = loadProfile(f);
        return [p.recordType, p];
      }),
    );
    expect(byType.PrescriptionRecord.compositionType.code).toBe('440545006');
    expect(byType.PrescriptionRecord.sections.slices[0].code).toBe('440545006');
    expect(byType.DischargeSummaryRecord.compositionType.code).toBe('373942005');
    // the IG fixes no Composition.type code for DiagnosticReportRecord (only a preferred binding)
    expect(byType.DiagnosticReportRecord.compositionType.code).toBeNull();
    // ...so it is selected by the codes of that value set (enumerated concepts and is-a roots)
    const dr = byType.DiagnosticReportRecord.compositionType as unknown as { codes: string[]; valueSet: string };
    const vs = JSON.parse(fs.readFileSync(path.join(igDir, 'ValueSet-ndhm-diagnostic-report-type.json'), 'utf8'));
    expect(dr.valueSet).toBe(vs.url);
    const vsCodes = vs.compose.include.flatMap((inc: any) => [
      ...(inc.concept ?? []).map((c: any) => c.code),
      ...(inc.filter ?? []).filter((f: any) => f.op === 'is-a').map((f: any) => f.value),
    ]);
    expect(dr.codes.length).toBeGreaterThan(0);
    for (const c of dr.codes) expect(vsCodes).toContain(c);
    expect(dr.codes).toContain('721981007');
    expect(byType.DischargeSummaryRecord.sections.slices.map((s) => s.code)).toEqual([
      '422843007',
      '425044008',
      '722446000',
      '1003642006',
      '422432008',
      '721981007',
      '1003606003',
      '1003640003',
      '734163000',
      '373942005',
    ]);
  });

  it('the checker fails on edited rules', () => {
    const mutate = (f: string, fn: (p: ProfileFile) => void): string[] => {
      const p = loadProfile(f);
      fn(p);
      return checkProfileAgainstIg(p);
    };
    expect(
      mutate('prescription-record.json', (p) => {
        p.sections.min = 0;
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.sections.slices[0].entry.targets[1].max = '*';
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.profile += 'X';
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.compositionType.code = '1003606003';
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.resources.MedicationRequest.required.push({ path: 'note', cite: 'MedicationRequest.note' });
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.compositionRequired.push({ path: 'date', cite: 'Composition.date' });
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.compositionRequired = p.compositionRequired.filter((r) => r.path !== 'subject.reference');
      }),
    ).not.toEqual([]);
    expect(
      mutate('prescription-record.json', (p) => {
        p.resources.Binary.required = [];
      }),
    ).not.toEqual([]);
    expect(
      mutate('diagnostic-report-record.json', (p) => {
        p.sections.slices[0].entry.max = '*';
      }),
    ).not.toEqual([]);
    expect(
      mutate('diagnostic-report-record.json', (p) => {
        p.resources.DiagnosticReport.required.push({ path: 'result', cite: 'DiagnosticReport.result' });
      }),
    ).not.toEqual([]);
    expect(
      mutate('discharge-summary-record.json', (p) => {
        p.sections.slices[3].code = '000';
      }),
    ).not.toEqual([]);
    expect(
      mutate('discharge-summary-record.json', (p) => {
        p.sections.slicing = 'closed';
      }),
    ).not.toEqual([]);
    expect(
      mutate('discharge-summary-record.json', (p) => {
        p.sections.slices[0].entry.requireType = true;
      }),
    ).not.toEqual([]);
    expect(
      mutate('discharge-summary-record.json', (p) => {
        p.sections.slices[0].cite = 'Composition.section:NoSuch';
      }),
    ).not.toEqual([]);
  });
});

// ---------- tiny local checker over example bundles ----------
type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const present = (v: unknown): boolean =>
  v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);
const asList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

/** Violations of a required path: checked only where the parent object is present; arrays mean every item. */
function missingPath(root: Json, p: string): number {
  const segs = p.split('.');
  let parents: unknown[] = [root];
  for (const s of segs.slice(0, -1)) parents = parents.filter(isObj).flatMap((o) => asList(o[s]));
  const alts = segs[segs.length - 1].split('|');
  return parents.filter(isObj).filter((o) => !alts.some((a) => present(o[a]))).length;
}
const exceeds = (n: number, max: Max): boolean => max !== '*' && n > max;

function checkBundle(bundle: Json, pf: ProfileFile): string[] {
  const v: string[] = [];
  const entries = asList(bundle.entry).filter(isObj);
  const byRef = new Map<string, Json>();
  for (const e of entries) {
    const r = e.resource;
    if (!isObj(r)) continue;
    if (typeof e.fullUrl === 'string') byRef.set(e.fullUrl, r);
    if (typeof r.id === 'string') byRef.set(`${String(r.resourceType)}/${r.id}`, r);
  }
  const comp = entries[0]?.resource;
  if (!isObj(comp) || comp.resourceType !== 'Composition') return ['first entry is not a Composition'];

  const coding = asList(isObj(comp.type) ? comp.type.coding : undefined).filter(isObj);
  if (pf.compositionType.code !== null && !coding.some((c) => c.code === pf.compositionType.code))
    v.push(`compositionType: no coding ${pf.compositionType.code} [${pf.compositionType.cite}]`);
  for (const r of pf.compositionRequired) {
    const n = missingPath(comp, r.path);
    if (n) v.push(`Composition.${r.path} missing x${n} [${r.cite}]`);
  }

  const sections = asList(comp.section).filter(isObj);
  if (sections.length < pf.sections.min || exceeds(sections.length, pf.sections.max))
    v.push(`section count ${sections.length} outside ${pf.sections.min}..${pf.sections.max} [${pf.sections.cite}]`);
  const sliceCount = new Map<string, number>();
  for (const [i, s] of sections.entries()) {
    const codes = asList(isObj(s.code) ? s.code.coding : undefined)
      .filter(isObj)
      .map((c) => c.code);
    const slice = pf.sections.slices.find((sl) => sl.code === undefined || codes.includes(sl.code));
    if (!slice) {
      if (pf.sections.slicing === 'closed')
        v.push(`section[${i}] code ${codes.join(',')} matches no slice [${pf.sections.cite}]`);
      continue;
    }
    sliceCount.set(slice.name, (sliceCount.get(slice.name) ?? 0) + 1);
    const en = slice.entry;
    const ents = asList(s.entry).filter(isObj);
    if (ents.length < en.min || exceeds(ents.length, en.max))
      v.push(`section ${slice.name}: ${ents.length} entries outside ${en.min}..${en.max} [${en.cite}]`);
    const tCount = new Map<Target, number>();
    for (const [j, ref] of ents.entries()) {
      if (en.requireType && !present(ref.type)) v.push(`section ${slice.name} entry[${j}]: no type [${en.typeCite}]`);
      const target = typeof ref.reference === 'string' ? byRef.get(ref.reference) : undefined;
      const rt = target ? String(target.resourceType) : typeof ref.type === 'string' ? ref.type : undefined;
      if (!target)
        v.push(`section ${slice.name} entry[${j}]: reference ${String(ref.reference)} not resolved in bundle`);
      if (target && typeof ref.type === 'string' && ref.type !== rt)
        v.push(`section ${slice.name} entry[${j}]: type ${ref.type} but resolves to ${rt}`);
      const t = en.targets.find((x) => x.resourceType === rt);
      if (!t) {
        if (en.closed) v.push(`section ${slice.name} entry[${j}]: ${rt} not allowed [${en.cite}]`);
        continue;
      }
      tCount.set(t, (tCount.get(t) ?? 0) + 1);
    }
    for (const t of en.targets) {
      const n = tCount.get(t) ?? 0;
      if (n < t.min || exceeds(n, t.max))
        v.push(`section ${slice.name}: ${n} ${t.resourceType} outside ${t.min}..${t.max} [${t.cite}]`);
    }
  }
  for (const sl of pf.sections.slices) {
    const n = sliceCount.get(sl.name) ?? 0;
    if (n < sl.min || exceeds(n, sl.max))
      v.push(`section slice ${sl.name}: ${n} outside ${sl.min}..${sl.max} [${sl.cite}]`);
  }

  for (const e of entries.slice(1)) {
    const r = e.resource;
    if (!isObj(r)) continue;
    const rr = pf.resources[String(r.resourceType)];
    if (!rr) continue;
    for (const q of rr.required) {
      const n = missingPath(r, q.path);
      if (n) v.push(`${String(r.resourceType)}/${String(r.id)}: ${q.path} missing x${n} [${q.cite}]`);
    }
  }
  return v;
}

describe('IG 6.5.0 example bundles against profiles/*.json (report only)', () => {
  const cases: [string, string][] = [
    ['prescription-01.json', 'prescription-record.json'],
    ['diagnostic-report-lab-01.json', 'diagnostic-report-record.json'],
    ['diagnostic-report-imaging-01.json', 'diagnostic-report-record.json'],
    ['discharge-summary-01.json', 'discharge-summary-record.json'],
  ];
  const results = new Map<string, string[]>();
  for (const [ex, prof] of cases) {
    it(`${ex} vs ${prof}`, () => {
      const bundle = JSON.parse(fs.readFileSync(path.join(corpusDir, ex), 'utf8')) as Json;
      const v = checkBundle(bundle, loadProfile(prof));
      results.set(ex, v);
      console.log(
        `[profiles] ${ex} violates ${v.length} rule instance(s) of ${prof}${v.length ? ':\n  ' + v.join('\n  ') : ''}`,
      );
    });
  }

  // positive control: the same checker on non-IG corpus files does report violations
  const controls: [string, string][] = [
    ['prescription-03.json', 'prescription-record.json'],
    ['diagnostic-report-lab-06.json', 'diagnostic-report-record.json'],
    ['discharge-summary-08.json', 'discharge-summary-record.json'],
  ];
  for (const [ex, prof] of controls) {
    it(`control: ${ex} vs ${prof}`, () => {
      const bundle = JSON.parse(fs.readFileSync(path.join(corpusDir, ex), 'utf8')) as Json;
      const v = checkBundle(bundle, loadProfile(prof));
      results.set(ex, v);
      console.log(
        `[profiles] control ${ex} violates ${v.length} rule instance(s) of ${prof}${v.length ? ':\n  ' + v.join('\n  ') : ''}`,
      );
    });
  }

  it('hand-verified facts about the examples', () => {
    expect(results.size).toBe(cases.length + controls.length);
    // Verified by reading the files: the four IG 6.5.0 examples satisfy every rule encoded here
    // (they were produced by the IG publisher). E.g. prescription-01 has one section 440545006 with
    // entries typed MedicationRequest x2 + Binary x1; the DiagnosticReport examples use section codes
    // 4321000179101 / 4261000179100, which is allowed because DiagnosticReportRecord fixes no section code;
    // discharge-summary-01's section entries carry no `type`, which DischargeSummaryRecord does not require.
    for (const [ex] of cases) expect(results.get(ex), ex).toEqual([]);
    // Controls (Faker-generated corpus files), verified by hand:
    const p03 = results.get('prescription-03.json') ?? [];
    expect(p03).toContain('section[0] code 10160-0 matches no slice [Composition.section]');
    expect(p03).toContain('Practitioner/practitioner-004: identifier.type missing x1 [Practitioner.identifier.type]');
    expect(p03).toContain('Organization/org-004: identifier.type missing x1 [Organization.identifier.type]');
    expect(results.get('diagnostic-report-lab-06.json') ?? []).toContain(
      'section DiagnosticReportSection: 0 entries outside 1..2 [Composition.section.entry]',
    );
    expect(results.get('discharge-summary-08.json') ?? []).toContain(
      'Practitioner/practitioner-002: qualification.code.coding.system missing x1 [Practitioner.qualification.code.coding.system]',
    );
  });
});
