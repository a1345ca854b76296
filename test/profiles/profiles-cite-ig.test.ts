// Proves that profiles/*.json is what the ABDM FHIR IG 6.5.0 states (read at runtime from
// ../shared/ig/ndhm.in-6.5.0), two ways:
// 1. the committed files are exactly what scripts/derive-profiles.ts derives from the IG (so a new
//    IG release is a re-run of `npm run profiles:derive`, and a hand edit is caught);
// 2. an independent checker, written here without the script's code, confirms every rule against
//    the StructureDefinitions (each cite exists, each min/max/code/title/profile equals the IG's)
//    and that nothing the IG requires is missing (completeness). It is shown to fail on edited rules.
// The engine's behaviour on real bundles is tested in test/fhir (profiles.test.ts, corpus.test.ts).
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveAll } from '../../scripts/derive-profiles.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const igDir = path.resolve(repoRoot, '..', 'shared', 'ig', 'ndhm.in-6.5.0');
const profilesDir = path.join(repoRoot, 'profiles');

// ---------- types of the profile-file format ----------
type Max = number | '*';
interface Rule {
  path: string;
  cite: string;
}
interface FixedRule extends Rule {
  value: string;
}
interface CodingRule {
  path: string;
  cite: string;
  closed: boolean;
  slices: { name: string; system: string; cite: string; required: Rule[] }[];
}
interface Target {
  resourceType: string;
  profiles: string[];
  min?: number;
  max?: Max;
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
  title?: string;
  min: number;
  max: Max;
  cite: string;
  required: Rule[];
  fixed: FixedRule[];
  entry: EntryRule;
}
interface ReferenceRule {
  path: string;
  targets: string[];
  cite: string;
}
interface ProfileRule {
  name: string;
  resourceType: string;
  source: string;
  required: Rule[];
  fixed: FixedRule[];
  codings: CodingRule[];
  references: ReferenceRule[];
  note?: string;
}
interface ProfileFile {
  recordType: string;
  hiType: string;
  profile: string;
  source: string;
  compositionType: {
    system?: string;
    code?: string | null;
    codes?: string[];
    valueSet?: string;
    text?: string;
    cite: string;
  };
  compositionRequired: Rule[];
  compositionFixed: FixedRule[];
  sections: {
    min: number;
    max: Max;
    cite: string;
    slicing: 'closed' | 'open';
    discriminator?: 'code' | 'title';
    slices: SliceRule[];
  };
  compositionReferences: ReferenceRule[];
  profiles: Record<string, ProfileRule>;
}

// ---------- minimal StructureDefinition model ----------
interface SdElement {
  id: string;
  path: string;
  min?: number;
  max?: string;
  sliceName?: string;
  base?: { path: string; min: number; max: string };
  type?: { code: string; targetProfile?: string[] }[];
  slicing?: { rules: string; discriminator?: { type: string; path: string }[] };
  binding?: { strength: string; valueSet?: string };
  [k: string]: unknown;
}
interface Sd {
  url: string;
  name: string;
  type: string;
  file: string;
  snapshot: { element: SdElement[] };
}

const sdByFile = new Map<string, Sd>();
const sdByUrl = new Map<string, Sd>();
for (const f of fs.readdirSync(igDir)) {
  if (!f.startsWith('StructureDefinition-') || !f.endsWith('.json')) continue;
  const sd = { ...JSON.parse(fs.readFileSync(path.join(igDir, f), 'utf8')), file: f } as Sd;
  sdByFile.set(f, sd);
  sdByUrl.set(sd.url, sd);
}
const elementsOf = (sd: Sd) => new Map(sd.snapshot.element.map((e) => [e.id, e]));
const fmtMax = (m: Max | string | undefined): string => String(m);
const R4 = 'http://hl7.org/fhir/StructureDefinition/';

/** The eight record profiles of the IG and the file each is kept in. */
const FILES: Record<string, string> = {
  PrescriptionRecord: 'prescription-record.json',
  DiagnosticReportRecord: 'diagnostic-report-record.json',
  OPConsultRecord: 'op-consult-record.json',
  DischargeSummaryRecord: 'discharge-summary-record.json',
  ImmunizationRecord: 'immunization-record.json',
  HealthDocumentRecord: 'health-document-record.json',
  WellnessRecord: 'wellness-record.json',
  InvoiceRecord: 'invoice-record.json',
};
const loadProfile = (f: string): ProfileFile =>
  JSON.parse(fs.readFileSync(path.join(profilesDir, f), 'utf8')) as ProfileFile;

/** JSON path an element id denotes below `from`: slice names dropped, [x] expanded to its types (a|b). */
function citeToPath(cite: string, from: string, els: Map<string, SdElement>): string {
  const segs = cite.split('.');
  const out: string[] = [];
  for (let i = from.split('.').length; i < segs.length; i++) {
    let seg = segs[i].replace(/:.*$/, '');
    if (seg.endsWith('[x]')) {
      const types = els.get(segs.slice(0, i + 1).join('.'))?.type ?? [];
      seg = types.map((t) => seg.slice(0, -3) + t.code[0].toUpperCase() + t.code.slice(1)).join('|');
    }
    out.push(seg);
  }
  return out.join('.');
}

/** Is `e` required (min ≥ 1) by the profile where base R4 does not (or a required choice narrowed to one type)? */
function isTightened(e: SdElement): boolean {
  if (/xtension/.test(e.id)) return false;
  if ((e.min ?? 0) >= 1 && e.base?.min === 0) return true;
  return e.id.endsWith('[x]') && (e.min ?? 0) >= 1 && (e.type?.length ?? 0) === 1;
}

function checkRequired(r: Rule, from: string, sd: Sd, els: Map<string, SdElement>, where: string): string[] {
  const e = els.get(r.cite);
  if (!e) return [`${where}: cite ${r.cite} not in ${sd.name} snapshot`];
  const p: string[] = [];
  if (!isTightened(e))
    p.push(`${where}: ${r.cite} is not made required by ${sd.name} (min ${e.min}, base ${e.base?.min})`);
  if (citeToPath(r.cite, from, els) !== r.path) p.push(`${where}: path ${r.path} does not match cite ${r.cite}`);
  return p;
}

/** The fixed value an element states (fixedUri, fixedCode, fixedString), if any. */
const fixedOf = (e: SdElement | undefined): unknown =>
  e
    ? (e.fixedUri ?? e.fixedCode ?? e.fixedString ?? Object.entries(e).find(([k]) => /^(fixed|pattern)/.test(k))?.[1])
    : undefined;

/** Fixed-value rules against one SD: each stated with that value; and every fixed element `keep` selects is listed. */
function checkFixed(
  rules: FixedRule[],
  from: string,
  sd: Sd,
  keep: (e: SdElement) => boolean,
  where: string,
  complete = true,
): string[] {
  const els = elementsOf(sd);
  const p: string[] = [];
  for (const r of rules) {
    const e = els.get(r.cite);
    if (!e || fixedOf(e) !== r.value) p.push(`${where}: ${r.cite} does not fix ${r.value} in ${sd.name}`);
    if (citeToPath(r.cite, from, els) !== r.path) p.push(`${where}: path ${r.path} does not match cite ${r.cite}`);
  }
  const have = new Set(rules.map((r) => r.cite));
  if (complete)
    for (const e of sd.snapshot.element)
      if (!/xtension/.test(e.id) && keep(e) && fixedOf(e) !== undefined && !have.has(e.id))
        p.push(`${where}: misses IG-fixed ${e.id}`);
  return p;
}

const targetProfilesOf = (e: SdElement | undefined): string[] => (e?.type ?? []).flatMap((t) => t.targetProfile ?? []);
const typeOfTarget = (u: string) => sdByUrl.get(u)?.type ?? (u.startsWith(R4) ? u.slice(R4.length) : undefined);
const sorted = (xs: string[]) => JSON.stringify([...xs].sort());

/** Every check of one profile file against its StructureDefinition; the problems (none: the file is the IG's). */
function checkProfileAgainstIg(pf: ProfileFile): string[] {
  const problems: string[] = [];
  const sd = sdByUrl.get(pf.profile);
  if (!sd) return [`profile ${pf.profile} is no StructureDefinition of the IG`];
  const els = elementsOf(sd);
  const el = (id: string) => els.get(id);
  const sameCard = (e: SdElement, min: number, max: Max, where: string) => {
    if (e.min !== min || e.max !== fmtMax(max))
      problems.push(`${where}: file says ${min}..${fmtMax(max)} but ${sd.name} ${e.id} is ${e.min}..${e.max}`);
  };
  if (sd.type !== 'Composition') problems.push(`${sd.name} does not profile Composition`);
  if (pf.recordType !== sd.name) problems.push(`recordType ${pf.recordType} != SD name ${sd.name}`);
  if (!pf.source.endsWith(sd.file)) problems.push(`source ${pf.source} does not name ${sd.file}`);

  // The record's type: a fixed code, a fixed text, or the codes of the value set its type is bound to.
  const ct = pf.compositionType;
  const igCode = el('Composition.type.coding.code')?.fixedCode as string | undefined;
  const igSystem = el('Composition.type.coding.system')?.fixedUri as string | undefined;
  const igText = el('Composition.type.text')?.fixedString as string | undefined;
  if ((ct.code ?? undefined) !== igCode) problems.push(`compositionType.code ${ct.code} != IG fixedCode ${igCode}`);
  if (ct.system !== igSystem) problems.push(`compositionType.system ${ct.system} != IG fixedUri ${igSystem}`);
  if (ct.text !== igText) problems.push(`compositionType.text ${ct.text} != IG fixedString ${igText}`);
  const expectedCite = igCode
    ? 'Composition.type.coding.code'
    : igText
      ? 'Composition.type.text'
      : 'Composition.type.coding.system';
  if (ct.cite !== expectedCite) problems.push(`compositionType.cite ${ct.cite} should be ${expectedCite}`);
  if (ct.codes) {
    if (igCode || igText) problems.push('compositionType.codes where the IG fixes the type');
    const vsUrl = el('Composition.type')?.binding?.valueSet?.split('|')[0];
    if (ct.valueSet !== vsUrl) problems.push(`compositionType.valueSet ${ct.valueSet} != IG binding ${vsUrl}`);
    const vsFile = fs
      .readdirSync(igDir)
      .find((f) => f.startsWith('ValueSet-') && JSON.parse(fs.readFileSync(path.join(igDir, f), 'utf8')).url === vsUrl);
    const vs = vsFile ? JSON.parse(fs.readFileSync(path.join(igDir, vsFile), 'utf8')) : { compose: { include: [] } };
    const vsCodes = vs.compose.include.flatMap((inc: any) => [
      ...(inc.concept ?? []).map((c: any) => c.code),
      ...(inc.filter ?? []).filter((f: any) => f.op === 'is-a').map((f: any) => f.value),
    ]);
    if (sorted(ct.codes) !== sorted(vsCodes)) problems.push(`compositionType.codes != the codes of ${vsUrl}`);
  } else if (!igCode && !igText) problems.push('the IG fixes no type: compositionType needs codes');

  // Composition elements outside the sections.
  for (const r of pf.compositionRequired) {
    problems.push(...checkRequired(r, 'Composition', sd, els, 'compositionRequired'));
    if (r.cite.startsWith('Composition.section')) problems.push(`compositionRequired ${r.cite}: belongs to a slice`);
  }
  const listed = new Set(pf.compositionRequired.map((r) => r.cite));
  for (const e of sd.snapshot.element)
    if (!e.id.includes(':') && !e.id.startsWith('Composition.section') && isTightened(e) && !listed.has(e.id))
      problems.push(`compositionRequired misses IG-required ${e.id}`);

  const typeCites = ['Composition.type.coding.code', 'Composition.type.coding.system', 'Composition.type.text'];
  problems.push(
    ...checkFixed(
      pf.compositionFixed,
      'Composition',
      sd,
      (e) => !e.id.includes(':') && !e.id.startsWith('Composition.section') && !typeCites.includes(e.id),
      'compositionFixed',
    ),
  );

  // Sections.
  const sec = pf.sections;
  const secEl = el('Composition.section')!;
  if (sec.cite !== 'Composition.section') problems.push('sections.cite must be Composition.section');
  sameCard(secEl, sec.min, sec.max, 'sections');
  const rules = secEl.slicing?.rules;
  if (sec.slicing !== (rules === undefined || rules === 'closed' ? 'closed' : 'open'))
    problems.push(`sections.slicing ${sec.slicing} but IG slicing rules ${String(rules)}`);
  const disc = secEl.slicing?.discriminator?.map((d) => d.path).join(',');
  const expectedDisc =
    disc === undefined ? undefined : ({ 'code.coding.code': 'code', title: 'title' }[disc] ?? `?${disc}`);
  if (sec.discriminator !== expectedDisc)
    problems.push(`sections.discriminator ${sec.discriminator} but IG slices by ${disc}`);
  const igSlices = sd.snapshot.element.filter((e) => e.path === 'Composition.section' && e.sliceName).map((e) => e.id);
  const fileSlices = sec.slices.map((s) => s.cite);
  if (sorted(rules === undefined ? ['Composition.section'] : igSlices) !== sorted(fileSlices))
    problems.push(`section slices ${fileSlices.join(',')} != IG ${igSlices.join(',') || 'Composition.section'}`);

  for (const s of sec.slices) {
    const where = `section ${s.name}`;
    const sEl = el(s.cite);
    if (!sEl) {
      problems.push(`${where}: cite ${s.cite} not in ${sd.name}`);
      continue;
    }
    sameCard(sEl, s.min, s.max, where);
    if (sEl.sliceName !== undefined && sEl.sliceName !== s.name)
      problems.push(`${where}: IG sliceName ${sEl.sliceName}`);
    const fixed = (rel: string, key: string) => el(`${s.cite}.${rel}`)?.[key] as string | undefined;
    if (s.code !== fixed('code.coding.code', 'fixedCode')) problems.push(`${where}: code ${s.code} != IG`);
    if (s.system !== fixed('code.coding.system', 'fixedUri')) problems.push(`${where}: system ${s.system} != IG`);
    if (s.title !== fixed('title', 'fixedString')) problems.push(`${where}: title ${s.title} != IG`);

    // Required elements of the section: each stated by the IG, and every one the IG states is listed.
    const entrySlices = sd.snapshot.element.filter((e) => e.id.startsWith(`${s.cite}.entry:`) && e.sliceName);
    for (const r of s.required) {
      const m = new RegExp(`^${s.cite.replace(/[.:]/g, '\\$&')}\\.entry:[^.]+\\.(.+)$`).exec(r.cite);
      if (m) {
        // a rule cited on one entry slice stands for every entry only when every entry slice states it
        if (el(`${s.cite}.entry`)?.slicing?.rules !== 'closed')
          problems.push(`${where} ${r.cite}: entry slicing not closed`);
        for (const x of entrySlices)
          if ((el(`${x.id}.${m[1]}`)?.min ?? 0) < 1) problems.push(`${where} ${r.path}: ${x.id}.${m[1]} not required`);
        if (r.path !== `entry.${m[1]}`) problems.push(`${where}: path ${r.path} does not match cite ${r.cite}`);
        if (!isTightened(el(r.cite) ?? ({ id: r.cite } as SdElement)))
          problems.push(`${where}: ${r.cite} not required`);
      } else problems.push(...checkRequired(r, s.cite, sd, els, where));
    }
    const have = new Set(s.required.map((r) => r.path));
    for (const e of sd.snapshot.element) {
      if (!e.id.startsWith(`${s.cite}.`) || !isTightened(e) || e.id === `${s.cite}.entry`) continue;
      const rest = e.id.slice(s.cite.length + 1);
      const inEntrySlice = /^entry:[^.]+(\.(.+))?$/.exec(rest);
      if (inEntrySlice && (!inEntrySlice[2] || inEntrySlice[2] === 'type')) continue; // target cardinality, requireType
      const p = inEntrySlice ? `entry.${inEntrySlice[2]}` : citeToPath(e.id, s.cite, els);
      if (!have.has(p)) problems.push(`${where}: misses IG-required ${e.id}`);
    }

    const encoded = ['code.coding.code', 'code.coding.system', 'title'].map((x) => `${s.cite}.${x}`);
    problems.push(
      ...checkFixed(
        s.fixed,
        s.cite,
        sd,
        (e) => e.id.startsWith(`${s.cite}.`) && !e.id.slice(s.cite.length + 1).includes(':') && !encoded.includes(e.id),
        `${where} fixed`,
      ),
    );

    // Entries.
    const en = s.entry;
    const enEl = el(en.cite);
    if (en.cite !== `${s.cite}.entry` || !enEl) {
      problems.push(`${where}: entry.cite must be ${s.cite}.entry`);
      continue;
    }
    sameCard(enEl, en.min, en.max, `${where} entry`);
    const igRequireType =
      entrySlices.length > 0
        ? entrySlices.every((x) => (el(`${x.id}.type`)?.min ?? 0) >= 1)
        : (el(`${en.cite}.type`)?.min ?? 0) >= 1;
    if (en.requireType !== igRequireType)
      problems.push(`${where}: requireType ${en.requireType} but IG says ${igRequireType}`);
    if (en.requireType && (el(en.typeCite ?? '')?.min ?? 0) < 1)
      problems.push(`${where}: typeCite ${en.typeCite} not required`);
    const all = entrySlices.length > 0 ? entrySlices.flatMap(targetProfilesOf) : targetProfilesOf(enEl);
    const igClosed = enEl.slicing ? enEl.slicing.rules === 'closed' : all.length > 0 && !all.includes(`${R4}Resource`);
    if (en.closed !== igClosed) problems.push(`${where}: closed ${en.closed} but IG says ${igClosed}`);
    const listedUrls = new Set<string>();
    for (const t of en.targets) {
      const tw = `${where} target ${t.resourceType}`;
      const tEl = el(t.cite);
      if (!tEl) {
        problems.push(`${tw}: cite ${t.cite} not in ${sd.name}`);
        continue;
      }
      if (entrySlices.length > 0) {
        if (!t.cite.startsWith(`${en.cite}:`)) problems.push(`${tw}: the entry is sliced; cite a slice`);
        sameCard(tEl, t.min ?? -1, t.max ?? '*', tw);
        if (el(`${t.cite}.type`)?.fixedUri !== t.resourceType) problems.push(`${tw}: IG fixes another entry.type`);
      } else if (t.cite !== en.cite || t.min !== undefined || t.max !== undefined)
        problems.push(`${tw}: an unsliced entry's targets cite the entry and have no cardinality of their own`);
      const igTargets = targetProfilesOf(tEl).filter((u) => typeOfTarget(u) === t.resourceType && sdByUrl.has(u));
      if (sorted(igTargets) !== sorted(t.profiles)) problems.push(`${tw}: profiles ${t.profiles} != IG ${igTargets}`);
      for (const u of targetProfilesOf(tEl)) if (typeOfTarget(u) === t.resourceType) listedUrls.add(u);
      for (const u of t.profiles) if (!pf.profiles[u]) problems.push(`${tw}: no profiles rule for ${u}`);
    }
    for (const u of all) if (!listedUrls.has(u)) problems.push(`${where}: IG allows ${u} but no target lists it`);
  }

  // The rules of each IG profile a resource may be held to, each against its own StructureDefinition.
  const checkReferences = (
    refs: ReferenceRule[],
    x: Sd,
    from: string,
    keep: (e: SdElement) => boolean,
    where: string,
  ) => {
    const els = elementsOf(x);
    for (const r of refs) {
      const e = els.get(r.cite);
      const igTargets = (e?.type ?? []).filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfile ?? []);
      if (!e || sorted(igTargets.filter((u) => sdByUrl.has(u))) !== sorted(r.targets))
        problems.push(`${where}: ${r.cite} targets ${r.targets} != IG ${igTargets}`);
      const p = r.cite.endsWith('[x]')
        ? citeToPath(r.cite.slice(0, r.cite.lastIndexOf('.')), from, els)
            .split('.')
            .filter(Boolean)
            .concat(`${r.cite.slice(r.cite.lastIndexOf('.') + 1, -3)}Reference`)
            .join('.')
        : citeToPath(r.cite, from, els);
      if (p !== r.path) problems.push(`${where}: path ${r.path} does not match ${r.cite}`);
    }
    const have = new Set(refs.map((r) => r.cite));
    for (const e of x.snapshot.element) {
      if (e.id.includes(':') || /xtension/.test(e.id) || !keep(e)) continue;
      const targets = (e.type ?? []).filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfile ?? []);
      if (targets.some((u) => sdByUrl.has(u)) && !have.has(e.id))
        problems.push(`${where}: misses the reference ${e.id}`);
    }
  };
  checkReferences(
    pf.compositionReferences,
    sd,
    'Composition',
    (e) => !e.id.startsWith('Composition.section'),
    'compositionReferences',
  );

  const reachable = new Set<string>([
    ...pf.compositionReferences.flatMap((r) => r.targets),
    ...pf.sections.slices.flatMap((s) => s.entry.targets.flatMap((t) => t.profiles)),
  ]);
  for (const [url, rr] of Object.entries(pf.profiles)) {
    const where = `profiles ${rr.name}`;
    const x = sdByUrl.get(url);
    if (!x) {
      problems.push(`${where}: ${url} is not in the IG`);
      continue;
    }
    if (x.name !== rr.name || x.type !== rr.resourceType || x.file !== rr.source)
      problems.push(`${where}: name, resourceType or source differ from ${x.name}`);
    const els = elementsOf(x);
    for (const r of rr.required) problems.push(...checkRequired(r, x.type, x, els, where));
    const have = new Set(rr.required.map((r) => r.cite));
    for (const e of x.snapshot.element)
      if (!e.id.includes(':') && isTightened(e) && !have.has(e.id))
        problems.push(`${where}: misses IG-required ${e.id}`);
    problems.push(...checkFixed(rr.fixed, x.type, x, (e) => !e.id.includes(':'), `${where} fixed`));
    for (const c of rr.codings) {
      const e = els.get(c.cite);
      if (!e?.slicing || (e.slicing.rules === 'closed') !== c.closed)
        problems.push(`${where}: ${c.cite} slicing differs`);
      if (e?.slicing?.discriminator?.map((d) => d.path).join(',') !== 'system')
        problems.push(`${where}: ${c.cite} not by system`);
      if (citeToPath(c.cite, x.type, els) !== c.path)
        problems.push(`${where}: path ${c.path} does not match ${c.cite}`);
      const igSlices = x.snapshot.element.filter(
        (y) => y.path === e?.path && y.sliceName && y.id === `${c.cite}:${y.sliceName}`,
      );
      if (sorted(igSlices.map((y) => y.id)) !== sorted(c.slices.map((y) => y.cite)))
        problems.push(`${where}: ${c.cite} slices differ`);
      for (const sl of c.slices) {
        if (els.get(`${sl.cite}.system`)?.fixedUri !== sl.system)
          problems.push(`${where}: ${sl.cite} system ${sl.system} != IG`);
        for (const r of sl.required) problems.push(...checkRequired(r, sl.cite, x, els, `${where} ${sl.name}`));
        const req = new Set(sl.required.map((r) => r.cite));
        for (const y of x.snapshot.element)
          if (y.id.startsWith(`${sl.cite}.`) && isTightened(y) && !req.has(y.id))
            problems.push(`${where}: ${sl.name} misses ${y.id}`);
      }
    }
    for (const e of x.snapshot.element)
      if (e.slicing && !e.id.includes(':') && !/xtension/.test(e.id) && !rr.codings.some((c) => c.cite === e.id))
        problems.push(`${where}: ${x.name} slices ${e.id}, which no codings rule holds`);
    checkReferences(rr.references, x, x.type, () => true, where);
    for (const r of rr.references) for (const u of r.targets) reachable.add(u);
  }
  // every profile a reference can reach has its rules, and none is there that nothing reaches
  for (const u of reachable) if (!pf.profiles[u]) problems.push(`no profiles rule for ${u}, which a reference names`);
  for (const u of Object.keys(pf.profiles))
    if (!reachable.has(u)) problems.push(`profiles ${u}: no reference reaches it`);
  return problems;
}

describe('profiles/*.json is what the ABDM IG 6.5.0 states', () => {
  it('holds one file per record profile of the IG, and nothing else', () => {
    const igRecords = [...sdByUrl.values()]
      .filter(
        (sd) => sd.type === 'Composition' && sd.url.startsWith('https://nrces.in/ndhm/fhir/r4/StructureDefinition/'),
      )
      .map((sd) => sd.name)
      .sort();
    expect(igRecords).toEqual(Object.keys(FILES).sort());
    const onDisk = fs.readdirSync(profilesDir).filter((f) => f.endsWith('.json'));
    expect(onDisk.sort()).toEqual(Object.values(FILES).sort());
  });

  it('every committed file is what npm run profiles:derive makes of the IG', () => {
    for (const { file, text } of deriveAll(igDir)) {
      expect(loadProfile(file), `profiles/${file}: re-run npm run profiles:derive`).toEqual(JSON.parse(text));
    }
  });

  for (const [recordType, f] of Object.entries(FILES)) {
    it(`${f} cites the IG exactly, and misses nothing it requires (${recordType})`, () => {
      const pf = loadProfile(f);
      expect(pf.recordType).toBe(recordType);
      expect(checkProfileAgainstIg(pf)).toEqual([]);
    });
  }

  it('the record types, hiTypes and codes (spot check against the IG)', () => {
    const SD = 'https://nrces.in/ndhm/fhir/r4/StructureDefinition/';
    const by = Object.fromEntries(Object.values(FILES).map((f) => [loadProfile(f).recordType, loadProfile(f)]));
    const row = (rt: string) => {
      const p = by[rt];
      return [
        p.hiType,
        p.compositionType.code ?? p.compositionType.text ?? null,
        p.sections.discriminator ?? 'unsliced',
      ];
    };
    expect(row('PrescriptionRecord')).toEqual(['Prescription', '440545006', 'unsliced']);
    expect(row('DiagnosticReportRecord')).toEqual(['DiagnosticReport', null, 'unsliced']);
    expect(by.DiagnosticReportRecord.compositionType.codes).toContain('721981007');
    expect(row('OPConsultRecord')).toEqual(['OPConsultation', '371530004', 'code']);
    expect(row('DischargeSummaryRecord')).toEqual(['DischargeSummary', '373942005', 'code']);
    expect(row('ImmunizationRecord')).toEqual(['ImmunizationRecord', '41000179103', 'unsliced']);
    expect(row('HealthDocumentRecord')).toEqual(['HealthDocumentRecord', '419891008', 'unsliced']);
    expect(row('WellnessRecord')).toEqual(['WellnessRecord', 'Wellness Record', 'title']);
    expect(row('InvoiceRecord')).toEqual(['Invoice', 'Invoice Record', 'unsliced']);
    // OP consultation: encounter 1..1, and its section codes (several differ from the discharge summary's)
    expect(by.OPConsultRecord.compositionRequired.map((r) => r.path)).toContain('encounter');
    expect(Object.fromEntries(by.OPConsultRecord.sections.slices.map((s) => [s.name, s.code]))).toEqual({
      ChiefComplaints: '422843007',
      PhysicalExamination: '425044008',
      Allergies: '722446000',
      MedicalHistory: '371529009',
      FamilyHistory: '422432008',
      InvestigationAdvice: '721963009',
      Medications: '721912009',
      FollowUp: '390906007',
      Procedure: '371525003',
      Referral: '306206005',
      OtherObservations: '404684003',
      DocumentReference: '371530004',
    });
    expect(by.WellnessRecord.sections.slices.map((s) => s.title)).toEqual([
      'Vital Signs',
      'Body Measurement',
      'Physical Activity',
      'General Assessment',
      'Women Health',
      'Lifestyle',
      'Other Observations',
      'Document Reference',
    ]);
    const inv = by.InvoiceRecord.sections.slices[0].entry;
    expect([inv.closed, inv.min, inv.targets.map((t) => [t.resourceType, t.min, t.max])]).toEqual([
      true,
      1,
      [['Invoice', 0, 1]],
    ]);
    expect(by.InvoiceRecord.profiles[`${SD}Invoice`].required.map((r) => r.path)).toEqual(
      expect.arrayContaining([
        'identifier',
        'type',
        'subject',
        'date',
        'lineItem',
        'lineItem.priceComponent',
        'totalNet',
        'totalGross',
      ]),
    );
    expect(by.InvoiceRecord.profiles[`${SD}ChargeItem`].required.map((r) => r.path)).toContain(
      'productReference|productCodeableConcept',
    );
    const imm = by.ImmunizationRecord.sections.slices[0].entry.targets.map((t) => [t.resourceType, t.min, t.max]);
    expect(imm).toEqual([
      ['Immunization', 0, '*'],
      ['ImmunizationRecommendation', 0, 1],
      ['DocumentReference', 0, '*'],
    ]);
    expect(by.HealthDocumentRecord.sections.slices[0].entry.min).toBe(1);
  });

  it('the IG binds no element of these records with strength required to a value set of its own (the format has no slot)', () => {
    // If a later IG does, this fails and the format and engine need the binding (R4's own required bindings are the
    // structure stage's).
    const found: string[] = [];
    for (const sd of sdByUrl.values())
      for (const e of sd.snapshot.element)
        if (e.binding?.strength === 'required' && e.binding.valueSet?.startsWith('https://nrces.in/'))
          found.push(`${sd.name} ${e.id}`);
    expect(found).toEqual([]);
  });

  it('the checker fails on edited rules', () => {
    const SD = 'https://nrces.in/ndhm/fhir/r4/StructureDefinition/';
    const P = (p: ProfileFile, name: string) => p.profiles[`${SD}${name}`];
    const mutate = (f: string, fn: (p: ProfileFile) => void): string[] => {
      const p = loadProfile(f);
      fn(p);
      return checkProfileAgainstIg(p);
    };
    const edits: [string, (p: ProfileFile) => void][] = [
      ['prescription-record.json', (p) => void (p.sections.min = 0)],
      ['prescription-record.json', (p) => void (p.sections.slices[0].entry.targets[1].max = '*')],
      ['prescription-record.json', (p) => void (p.profile += 'X')],
      ['prescription-record.json', (p) => void (p.compositionType.code = '1003606003')],
      [
        'prescription-record.json',
        (p) => void P(p, 'MedicationRequest').required.push({ path: 'note', cite: 'MedicationRequest.note' }),
      ],
      ['prescription-record.json', (p) => void p.compositionRequired.push({ path: 'date', cite: 'Composition.date' })],
      [
        'prescription-record.json',
        (p) => void (p.compositionRequired = p.compositionRequired.filter((r) => r.path !== 'subject.reference')),
      ],
      ['prescription-record.json', (p) => void (P(p, 'Binary').required = [])],
      [
        'prescription-record.json',
        (p) => void (p.sections.slices[0].required = p.sections.slices[0].required.slice(1)),
      ],
      ['diagnostic-report-record.json', (p) => void (p.sections.slices[0].entry.max = '*')],
      [
        'diagnostic-report-record.json',
        (p) => void P(p, 'DiagnosticReportLab').required.push({ path: 'note', cite: 'DiagnosticReport.note' }),
      ],
      ['diagnostic-report-record.json', (p) => void p.compositionType.codes!.push('000')],
      ['discharge-summary-record.json', (p) => void (p.sections.slices[3].code = '000')],
      ['discharge-summary-record.json', (p) => void (p.sections.slicing = 'closed')],
      ['discharge-summary-record.json', (p) => void (p.sections.slices[0].entry.requireType = true)],
      ['discharge-summary-record.json', (p) => void (p.sections.slices[0].cite = 'Composition.section:NoSuch')],
      [
        'op-consult-record.json',
        (p) => void (p.compositionRequired = p.compositionRequired.filter((r) => r.path !== 'encounter')),
      ],
      [
        'op-consult-record.json',
        (p) => void (p.sections.slices[6].entry.targets = p.sections.slices[6].entry.targets.slice(1)),
      ],
      ['op-consult-record.json', (p) => void p.sections.slices.pop()],
      ['wellness-record.json', (p) => void (p.sections.slices[0].title = 'Vitals')],
      ['wellness-record.json', (p) => void (p.sections.discriminator = 'code')],
      ['wellness-record.json', (p) => void (p.compositionType.text = 'Wellness')],
      ['wellness-record.json', (p) => void delete p.profiles[`${SD}ObservationVitalSigns`]],
      ['wellness-record.json', (p) => void P(p, 'ObservationVitalSigns').references.pop()],
      ['invoice-record.json', (p) => void (p.compositionReferences = p.compositionReferences.slice(1))],
      ['invoice-record.json', (p) => void (P(p, 'Invoice').references[5].path = 'lineItem.chargeItem')],
      ['invoice-record.json', (p) => void (p.sections.slices[0].entry.closed = false)],
      ['invoice-record.json', (p) => void delete p.profiles[`${SD}ChargeItem`]],
      ['invoice-record.json', (p) => void (P(p, 'ChargeItem').required = P(p, 'ChargeItem').required.slice(0, -1))],
      ['immunization-record.json', (p) => void (p.sections.slices[0].entry.targets[1].max = '*')],
      ['health-document-record.json', (p) => void (p.sections.slices[0].code = '371530004')],
      ['prescription-record.json', (p) => void (p.compositionFixed[0].value = 'Prescription Record')],
      ['prescription-record.json', (p) => void (p.compositionFixed = [])],
      ['op-consult-record.json', (p) => void (p.sections.slices[2].fixed = [])],
      ['op-consult-record.json', (p) => void (p.sections.slices[2].fixed[0].value = 'Allergies')],
      ['op-consult-record.json', (p) => void (P(p, 'Procedure').fixed = P(p, 'Procedure').fixed.slice(1))],
      [
        'diagnostic-report-record.json',
        (p) => void (P(p, 'DiagnosticReportLab').fixed[1].value = 'http://snomed.info/sct'),
      ],
      ['wellness-record.json', (p) => void (P(p, 'Observation').codings = [])],
      ['wellness-record.json', (p) => void (P(p, 'Observation').codings[0].closed = false)],
      [
        'wellness-record.json',
        (p) => void (P(p, 'Observation').codings[0].slices[0].system = 'http://snomed.info/sct'),
      ],
      ['wellness-record.json', (p) => void P(p, 'Observation').codings[0].slices[1].required.pop()],
      ['invoice-record.json', (p) => void (P(p, 'Medication').fixed[1].value = 'ATC')],
    ];
    for (const [f, fn] of edits) expect(mutate(f, fn), `${f}: ${fn.toString()}`).not.toEqual([]);
    for (const f of Object.values(FILES)) expect(mutate(f, () => {})).toEqual([]);
  });
});
