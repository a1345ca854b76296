/**
 * The ABDM profile engine: applies the record-type rules kept as data in
 * ../profiles (one file per record type, each rule citing the IG element that
 * states it). Adding a record type is a new file there, not a new branch here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type Issue, error, named, shown } from './outcome.js';
import type { DocumentFacts } from './document.js';
import { type AbhaIdentity, NDHM_IDENTIFIER_TYPE, abhaIdentity } from './abha.js';

const cardinality = {
  min: z.number().int().min(0),
  max: z.union([z.number().int().min(0), z.literal('*')]),
  cite: z.string(),
};
const requiredPath = z
  .object({ path: z.string().min(1), cite: z.string() })
  .transform((r) => ({ ...r, steps: compilePath(r.path) }));

/** A value the IG fixes (fixedUri, fixedCode, fixedString): wherever the element is present, it must be this. */
const fixedRule = z
  .object({ path: z.string().min(1), value: z.string(), cite: z.string() })
  .transform((r) => ({ ...r, steps: compilePath(r.path) }));
/** Codings a profile slices by system: each must match a slice (when closed) and have what its slice requires. */
const codingRule = z
  .object({
    path: z.string().min(1),
    cite: z.string(),
    closed: z.boolean(),
    slices: z.array(
      z.object({ name: z.string(), system: z.string(), cite: z.string(), required: z.array(requiredPath) }),
    ),
  })
  .transform((r) => ({ ...r, steps: compilePath(r.path) }));

export const ProfileFile = z.object({
  recordType: z.string(),
  hiType: z.string(),
  profile: z.string().url(),
  source: z.string(),
  /**
   * What Composition.type carries in a record of this type: a fixed `code` (of `system`), the
   * enumerated `codes` of the value set it is bound to, or a fixed `text` (records whose type has no
   * coding rule). A record is also taken for this type when its Composition.meta.profile names it.
   */
  compositionType: z
    .object({
      system: z.string().optional(),
      code: z.string().nullish(),
      codes: z.array(z.string()).optional(),
      valueSet: z.string().optional(),
      text: z.string().optional(),
      cite: z.string(),
      note: z.string().optional(),
    })
    .refine((t) => !!t.code || (t.codes?.length ?? 0) > 0 || !!t.text, 'compositionType needs a code, codes or text'),
  compositionRequired: z.array(requiredPath),
  /** Values the Composition profile fixes outside its sections, beyond what compositionType holds. */
  compositionFixed: z.array(fixedRule).default([]),
  sections: z.object({
    ...cardinality,
    slicing: z.enum(['open', 'closed']),
    /** How a section is matched to its slice: by `code.coding.code` or by `title`; absent: one unsliced rule. */
    discriminator: z.enum(['code', 'title']).optional(),
    slices: z.array(
      z.object({
        name: z.string(),
        code: z.string().optional(),
        system: z.string().optional(),
        title: z.string().optional(),
        ...cardinality,
        /** Elements a section of this slice must have, relative to the section. */
        required: z.array(requiredPath).default([]),
        /** Values a section of this slice must carry where present (its code's display), relative to the section. */
        fixed: z.array(fixedRule).default([]),
        entry: z.object({
          ...cardinality,
          requireType: z.boolean(),
          typeCite: z.string().optional(),
          closed: z.boolean(),
          targets: z.array(
            z.object({
              resourceType: z.string(),
              profiles: z.array(z.string()).optional(),
              min: z.number().int().min(0).optional(),
              max: z.union([z.number().int().min(0), z.literal('*')]).optional(),
              cite: z.string(),
            }),
          ),
        }),
      }),
    ),
  }),
  /** Required elements of the resources a record may hold, by resource type (what all its profiles require). */
  resources: z.record(
    z.string(),
    z.object({
      profiles: z.array(z.string()).min(1),
      sources: z.array(z.string()).min(1),
      required: z.array(requiredPath),
      fixed: z.array(fixedRule).default([]),
      codings: z.array(codingRule).default([]),
      note: z.string().optional(),
    }),
  ),
});
export type ProfileFile = z.output<typeof ProfileFile>;

/** `value` when it is an array, else [] (the structure stage reports the wrong type). */
const list = (value: unknown): any[] => (Array.isArray(value) ? value : []);
const typeCodes = (p: ProfileFile): string[] =>
  p.compositionType.code ? [p.compositionType.code] : (p.compositionType.codes ?? []);
const typeMatches = (p: ProfileFile, c: any): boolean =>
  typeCodes(p).includes(c?.code) && (!c.system || !p.compositionType.system || c.system === p.compositionType.system);
const typeShown = (p: ProfileFile): string =>
  typeCodes(p).length > 0 ? typeCodes(p).join(' | ') : `text ${shown(p.compositionType.text ?? '')}`;
/** The canonical URLs (without a |version) Composition.meta.profile names. */
const declaredProfiles = (comp: Record<string, any>): string[] =>
  list(comp.meta?.profile)
    .filter((u): u is string => typeof u === 'string')
    .map((u) => u.split('|')[0]);
const limit = (max: number | '*') => (max === '*' ? Infinity : max);
const showMax = (max: number | '*') => String(max);

export class ProfileEngine {
  readonly profiles: ProfileFile[];

  constructor(
    readonly abhaSystems: readonly string[],
    dir = new URL('../../profiles/', import.meta.url).pathname,
  ) {
    this.profiles = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => {
        const parsed = ProfileFile.safeParse(JSON.parse(readFileSync(join(dir, f), 'utf8')));
        if (!parsed.success) throw new Error(`profiles/${f} is not a valid profile file: ${parsed.error.message}`);
        return parsed.data;
      });
  }

  get supported(): string {
    return this.profiles.map((p) => `${p.hiType} (${typeShown(p)})`).join(', ');
  }

  /**
   * The profile a document's Composition is a record of: the one whose type code it carries, else
   * the one whose fixed type text it carries, else the one its meta.profile names (then the type
   * rules report what is wrong with its type).
   */
  select(composition: Record<string, any>): ProfileFile | undefined {
    const codings = list(composition.type?.coding);
    return (
      this.profiles.find((p) => codings.some((c) => typeMatches(p, c))) ??
      this.profiles.find(
        (p) => p.compositionType.text !== undefined && composition.type?.text === p.compositionType.text,
      ) ??
      this.profiles.find((p) => declaredProfiles(composition).includes(p.profile))
    );
  }

  /**
   * Issues found applying `profile` to a document that passed the document rules. `identity`: the
   * patient's ABHA identity, found once by the validator (abhaIdentity of Patient.identifier).
   */
  check(profile: ProfileFile, bundle: Record<string, any>, facts: DocumentFacts, identity?: AbhaIdentity): Issue[] {
    const issues: Issue[] = [];
    const C = 'Bundle.entry[0].resource';
    const comp = facts.composition;

    // The record's type, and the record profiles its meta.profile claims.
    const T = profile.compositionType;
    const codings = list(comp.type?.coding);
    // A fixed code must be there; codes of a value set the type is only *bound* to (preferred) do not
    // constrain a record its meta.profile names, but the fixed system does.
    if (T.code && !codings.some((c) => typeMatches(profile, c)))
      issues.push(
        error(
          'code-invalid',
          `Composition.type must carry the code ${typeShown(profile)}${tag(profile, T.cite)}`,
          `${C}.type`,
        ),
      );
    else if (!T.code && T.system && codings.length > 0 && !codings.some((c) => c?.system === T.system))
      issues.push(
        error(
          'code-invalid',
          `Composition.type must carry a coding of ${T.system}${tag(profile, T.cite)}`,
          `${C}.type`,
        ),
      );
    if (T.text !== undefined && comp.type?.text !== undefined && comp.type.text !== T.text)
      issues.push(
        error(
          'value',
          `Composition.type.text must be ${named(T.text)}, found ${shown(comp.type.text)}${tag(profile, T.cite)}`,
          `${C}.type.text`,
        ),
      );
    for (const url of declaredProfiles(comp)) {
      const other = this.profiles.find((p) => p.profile === url && p !== profile);
      if (other)
        issues.push(
          error(
            'business-rule',
            `Composition.meta.profile claims ${other.recordType}, but the Composition is a ${profile.recordType} (Composition.type ${typeShown(profile)})`,
            `${C}.meta.profile`,
          ),
        );
    }

    for (const r of profile.compositionRequired)
      missingPaths(comp, r.steps, C).forEach((p) =>
        issues.push(error('required', `${r.path} is required${tag(profile, r.cite)}`, p)),
      );
    for (const r of profile.compositionFixed)
      presentValues(comp, r.steps, C, (value, p) => {
        if (value !== r.value)
          issues.push(
            error('value', `${r.path} must be ${shown(r.value)}, found ${shown(value)}${tag(profile, r.cite)}`, p),
          );
      });

    // Sections and their entries.
    const sections = list(comp.section);
    const S = profile.sections;
    if (sections.length < S.min || sections.length > limit(S.max)) {
      issues.push(
        error(
          'structure',
          `Composition must have ${S.min}..${showMax(S.max)} sections, found ${sections.length}${tag(profile, S.cite)}`,
          `${C}.section`,
        ),
      );
    }
    const sliceCounts = new Map<string, number>();
    sections.forEach((section, si) => {
      const here = `${C}.section[${si}]`;
      const sectionCodings = list(section?.code?.coding);
      const slice = sliceOf(S, section, sectionCodings);
      if (!slice) {
        if (S.slicing === 'closed') {
          const by = S.discriminator === 'title' ? `title ${shown(section?.title)}` : `code ${codesOf(sectionCodings)}`;
          const expected = S.slices.map((s) => `${s.code ?? shown(s.title ?? '')} (${s.name})`).join(', ');
          issues.push(
            error(
              'code-invalid',
              `Section ${by} is not allowed; expected one of ${expected}${tag(profile, S.cite)}`,
              S.discriminator === 'title' ? `${here}.title` : `${here}.code`,
            ),
          );
        }
        return;
      }
      // The slice's fixed code and system: on an unsliced section every coding carries them; on a
      // section matched by code, the matching coding carries the slice's system.
      sectionCodings.forEach((c: any, ci: number) => {
        const at = `${here}.code.coding[${ci}]`;
        const matching = S.discriminator === undefined || c?.code === slice.code;
        if (S.discriminator === undefined && slice.code !== undefined && c?.code !== undefined && c.code !== slice.code)
          issues.push(
            error(
              'code-invalid',
              `Section code ${shown(c.code)} is not allowed; section ${slice.name} has code ${slice.code}${tag(profile, `${slice.cite}.code.coding.code`)}`,
              `${at}.code`,
            ),
          );
        if (matching && slice.system !== undefined && typeof c?.system === 'string' && c.system !== slice.system)
          issues.push(
            error(
              'code-invalid',
              `Section code system must be ${slice.system}, found ${shown(c.system)}${tag(profile, `${slice.cite}.code.coding.system`)}`,
              `${at}.system`,
            ),
          );
      });
      for (const r of slice.required)
        missingPaths(section, r.steps, here).forEach((p) =>
          issues.push(error('required', `${r.path} is required in section ${slice.name}${tag(profile, r.cite)}`, p)),
        );
      for (const r of slice.fixed)
        presentValues(section, r.steps, here, (value, p) => {
          if (value !== r.value)
            issues.push(
              error(
                'value',
                `${r.path} must be ${shown(r.value)} in section ${slice.name}, found ${shown(value)}${tag(profile, r.cite)}`,
                p,
              ),
            );
        });
      sliceCounts.set(slice.name, (sliceCounts.get(slice.name) ?? 0) + 1);
      const E = slice.entry;
      const entries = list(section?.entry);
      if (entries.length < E.min || entries.length > limit(E.max)) {
        issues.push(
          error(
            'structure',
            `Section ${slice.name} must have ${E.min}..${showMax(E.max)} entries, found ${entries.length}${tag(profile, E.cite)}`,
            `${here}.entry`,
          ),
        );
      }
      const targetCounts = new Map<string, number>();
      entries.forEach((ref, ei) => {
        const at = `${here}.entry[${ei}]`;
        if (E.requireType && !ref?.type)
          issues.push(
            error(
              'required',
              `Section entry must state its resource type in Reference.type${tag(profile, E.typeCite ?? E.cite)}`,
              `${at}.type`,
            ),
          );
        const target = typeof ref?.reference === 'string' ? facts.resolve(ref.reference) : undefined;
        if (!target) return; // unresolved references are reported by the document rules
        const rt = target.resource.resourceType;
        if (ref.type && ref.type !== rt)
          issues.push(
            error('value', `Reference.type is ${named(ref.type)} but the entry is a ${named(rt)}`, `${at}.type`),
          );
        const allowed = typeof rt === 'string' ? E.targets.find((t) => t.resourceType === rt) : undefined;
        if (!allowed) {
          if (E.closed)
            issues.push(
              error(
                'structure',
                `A ${named(rt)} is not allowed in section ${slice.name}; allowed: ${E.targets.map((t) => t.resourceType).join(', ')}${tag(profile, E.cite)}`,
                at,
              ),
            );
          return;
        }
        targetCounts.set(rt, (targetCounts.get(rt) ?? 0) + 1);
      });
      for (const t of E.targets) {
        const n = targetCounts.get(t.resourceType) ?? 0;
        if ((t.min !== undefined && n < t.min) || (t.max !== undefined && n > limit(t.max))) {
          issues.push(
            error(
              'structure',
              `Section ${slice.name} must have ${t.min ?? 0}..${showMax(t.max ?? '*')} ${t.resourceType} entries, found ${n}${tag(profile, t.cite)}`,
              `${here}.entry`,
            ),
          );
        }
      }
    });
    for (const s of S.slices) {
      const n = sliceCounts.get(s.name) ?? 0;
      if (n < s.min || n > limit(s.max))
        issues.push(
          error(
            'structure',
            `Section ${s.name}${s.code ? ` (${s.code})` : s.title ? ` (${shown(s.title)})` : ''} must occur ${s.min}..${showMax(s.max)} times, found ${n}${tag(profile, s.cite)}`,
            `${C}.section`,
          ),
        );
    }

    // Required elements, fixed values and sliced codings of entry resources.
    const entries = list(bundle.entry);
    for (let i = 0; i < entries.length; i++) {
      const resource = entries[i]?.resource;
      const rt = resource?.resourceType;
      const rule = typeof rt === 'string' && Object.hasOwn(profile.resources, rt) ? profile.resources[rt] : undefined;
      if (rule) checkResource(rt, rule, resource, `Bundle.entry[${i}].resource`, issues);
    }

    // The patient must be identified by ABHA number and/or ABHA address.
    if (facts.patient) {
      const P = `Bundle.entry[${facts.patient.index}].resource`;
      const id = identity ?? abhaIdentity(facts.patient.resource.identifier, this.abhaSystems);
      for (const m of id.malformed)
        issues.push(
          error(
            'value',
            `ABHA identifier '${m.value.slice(0, 40)}' is neither a 14-digit ABHA number nor an ABHA address (name@abdm or name@sbx)`,
            `${P}.identifier[${m.index}].value`,
          ),
        );
      for (const c of id.conflicts) {
        const what = c.kind === 'number' ? 'ABHA numbers' : 'ABHA addresses';
        issues.push(
          error(
            'business-rule',
            `${P}.identifier[${c.first.index}] ('${c.first.value.slice(0, 40)}') and ${P}.identifier[${c.second.index}] ('${c.second.value.slice(0, 40)}') are two different ${what}; a patient has one`,
            `${P}.identifier[${c.second.index}].value`,
          ),
        );
      }
      if (!id.abhaNumber && !id.abhaAddress)
        issues.push(
          error(
            'required',
            `The patient must be identified by an ABHA number (14 digits, with or without dashes) and/or an ABHA address (name@abdm, name@sbx) in Patient.identifier: one whose type is ABHA or HIN from ${NDHM_IDENTIFIER_TYPE}, or whose system is an ABHA system (configured by ABHA_IDENTIFIER_SYSTEMS: ${this.abhaSystems.join(', ') || 'none'}), or one with neither system nor type. Identifiers under other systems are not taken as ABHA, whatever their value looks like`,
            `${P}.identifier`,
          ),
        );
    }
    return issues;
  }
}

/** The StructureDefinition's name from its file name in the IG package. */
const sdName = (file: string) => file.replace(/^StructureDefinition-|\.json$/g, '');

const codesOf = (codings: any[]): string =>
  codings
    .map((c) => c?.code)
    .filter((c): c is string => typeof c === 'string')
    .join(', ') || '(none)';

/** The slice a section belongs to: the one unsliced rule, or the slice whose code (or title) it carries. */
function sliceOf(S: ProfileFile['sections'], section: any, codings: any[]) {
  if (S.discriminator === undefined) return S.slices[0];
  if (S.discriminator === 'title')
    return typeof section?.title === 'string' ? S.slices.find((s) => s.title === section.title) : undefined;
  return S.slices.find((s) => s.code !== undefined && codings.some((c) => c?.code === s.code));
}

const tag = (profile: ProfileFile, rule: string) => ` [${profile.recordType}: ${rule}]`;
type ResourceRule = ProfileFile['resources'][string];
const bySources = (rule: ResourceRule, cite: string) => ` [${rule.sources.map(sdName).join(', ')}: ${cite}]`;

/**
 * The rules of one resource type applied to one entry's resource. Fixed values and sliced codings
 * are checked without building any path first; paths are built only for a fault.
 */
function checkResource(rt: string, rule: ResourceRule, resource: any, at: string, issues: Issue[]) {
  for (const r of rule.required)
    missingPaths(resource, r.steps, at).forEach((p) =>
      issues.push(error('required', `${rt}.${r.path} is required${bySources(rule, r.cite)}`, p)),
    );
  for (const r of rule.fixed) {
    if (!someAt(resource, r.steps, 0, (v) => v !== r.value)) continue;
    presentValues(resource, r.steps, at, (value, p) => {
      if (value !== r.value)
        issues.push(
          error(
            'value',
            `${rt}.${r.path} must be ${shown(r.value)}, found ${shown(value)}${bySources(rule, r.cite)}`,
            p,
          ),
        );
    });
  }
  for (const r of rule.codings) {
    if (!someAt(resource, r.steps, 0, (c) => codingFault(r, c))) continue;
    presentValues(resource, r.steps, at, (coding, p) => {
      const slice = r.slices.find((x) => coding?.system === x.system);
      if (!slice) {
        if (r.closed) {
          const allowed = r.slices.map((x) => `${x.system} (${x.name})`).join(', ');
          const found = shown(coding?.system ?? '(none)');
          issues.push(
            error(
              'code-invalid',
              `${rt}.${r.path} system ${found} is not allowed; allowed: ${allowed}${bySources(rule, r.cite)}`,
              `${p}.system`,
            ),
          );
        }
        return;
      }
      for (const q of slice.required)
        missingPaths(coding, q.steps, p).forEach((m) =>
          issues.push(
            error(
              'required',
              `${rt}.${r.path}.${q.path} is required in a ${slice.name} coding${bySources(rule, q.cite)}`,
              m,
            ),
          ),
        );
    });
  }
}

/** Does this coding break its sliced-by-system rule (no slice of a closed slicing, or a slice's element missing)? */
function codingFault(r: ResourceRule['codings'][number], coding: any): boolean {
  const slice = r.slices.find((x) => coding?.system === x.system);
  if (!slice) return r.closed;
  for (const q of slice.required) if (someMissing(coding, q.steps, 0)) return true;
  return false;
}

/** Is some value present at `steps[i..]` under `node` one that `test` holds for? (No paths built.) */
function someAt(node: unknown, steps: CompiledPath, i: number, test: (v: any) => boolean): boolean {
  if (i === steps.length) return test(node);
  if (!node || typeof node !== 'object') return false;
  const obj = node as Record<string, unknown>;
  let value: unknown;
  for (const k of steps[i])
    if (obj[k] !== undefined && obj[k] !== null) {
      value = obj[k];
      break;
    }
  if (value === undefined) return false;
  if (!Array.isArray(value)) return someAt(value, steps, i + 1, test);
  for (const item of value) if (someAt(item, steps, i + 1, test)) return true;
  return false;
}

/** Is `steps[i..]` missing somewhere under `node` (missingPaths' rule, without its paths)? */
function someMissing(node: unknown, steps: CompiledPath, i: number): boolean {
  const obj = node as Record<string, unknown>;
  let value: unknown;
  for (const k of steps[i])
    if (obj[k] !== undefined && obj[k] !== null) {
      value = obj[k];
      break;
    }
  if (i === steps.length - 1) return value === undefined;
  if (value === undefined) return false;
  if (!Array.isArray(value)) return !!value && typeof value === 'object' && someMissing(value, steps, i + 1);
  for (const item of value) if (item && typeof item === 'object' && someMissing(item, steps, i + 1)) return true;
  return false;
}

/**
 * Calls `found` with each value present at `steps` under `node` and its FHIRPath; arrays on the way
 * and at the end are walked item by item.
 */
export function presentValues(node: unknown, steps: CompiledPath, base: string, found: (v: any, path: string) => void) {
  presentAt(node, steps, 0, base, found);
}

function presentAt(node: unknown, steps: CompiledPath, i: number, where: string, found: (v: any, p: string) => void) {
  if (i === steps.length) return found(node, where);
  if (!node || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  const key = steps[i].find((k) => obj[k] !== undefined && obj[k] !== null);
  if (key === undefined) return;
  const value = obj[key];
  if (!Array.isArray(value)) return presentAt(value, steps, i + 1, `${where}.${key}`, found);
  value.forEach((item, j) => presentAt(item, steps, i + 1, `${where}.${key}[${j}]`, found));
}

/** A required path compiled once: steps of alternatives (`a|b.c` → [[a, b], [c]]). */
export type CompiledPath = string[][];
export const compilePath = (path: string): CompiledPath => path.split('.').map((step) => step.split('|'));

/**
 * FHIRPaths where `path` (dotted JSON names, `a|b` for alternatives) is missing
 * under `node`. Only the last step is required, and only where its parent is
 * present (`telecom.value`: every telecom present has a value); array parents
 * are checked item by item. Paths of faults are built only when one is found.
 */
export function missingPaths(node: unknown, path: string | CompiledPath, base: string): string[] {
  const steps = typeof path === 'string' ? compilePath(path) : path;
  // Nearly every document has every required element: look without building paths first.
  if (node && typeof node === 'object' && !someMissing(node, steps, 0)) return [];
  const out: string[] = [];
  walk(node, steps, 0, () => base, out);
  return out;
}

function walk(node: unknown, steps: CompiledPath, i: number, where: () => string, out: string[]) {
  const obj = node as Record<string, unknown>;
  const alternatives = steps[i];
  let key: string | undefined;
  for (const k of alternatives) {
    const v = obj[k];
    if (v !== undefined && v !== null) {
      key = k;
      break;
    }
  }
  if (i === steps.length - 1) {
    if (key === undefined) out.push(`${where()}.${alternatives.join('|')}`);
    return;
  }
  if (key === undefined) return; // the parent is absent: whether it must be there is a rule of its own
  const value = obj[key];
  if (Array.isArray(value)) {
    for (let j = 0; j < value.length; j++) {
      const item = value[j];
      if (item && typeof item === 'object') walk(item, steps, i + 1, () => `${where()}.${key}[${j}]`, out);
    }
  } else if (value && typeof value === 'object') walk(value, steps, i + 1, () => `${where()}.${key}`, out);
}
