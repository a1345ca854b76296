/**
 * The ABDM profile engine: applies the record-type rules kept as data in
 * ../profiles (one file per record type, derived from the IG by
 * scripts/derive-profiles.ts, each rule citing the IG element that states it;
 * the format is profiles/README.md). A new record type or IG release is a
 * re-derivation there, not a new branch here.
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
  .transform((r) => ({ ...r, steps: compilePath(r.path), name: pathName(r.path) }));

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

/** A reference element whose targets must conform to one of these IG profiles. */
const referenceRule = z
  .object({ path: z.string().min(1), targets: z.array(z.string()).min(1), cite: z.string() })
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
  /** The Composition's references to IG profiles (subject, encounter, author, ...), outside its sections. */
  compositionReferences: z.array(referenceRule).default([]),
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
  /**
   * The rules of each IG profile a resource of the record may be held to, by canonical URL. A
   * resource is held to a profile only when it is reached through a reference (or section entry)
   * whose target profiles name it, from the Composition down.
   */
  profiles: z.record(
    z.string(),
    z.object({
      name: z.string(),
      resourceType: z.string(),
      source: z.string(),
      required: z.array(requiredPath),
      fixed: z.array(fixedRule).default([]),
      codings: z.array(codingRule).default([]),
      references: z.array(referenceRule).default([]),
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

  private readonly mergedRules = new Map<string, MergedRule>();
  /** The same, by the (cached) list of profile URLs a reach hands over. */
  private readonly mergedByList = new WeakMap<string[], MergedRule>();

  /**
   * The rules of the profiles a resource is held to: one profile's own, or, where a reference allows
   * several (DiagnosticReportLab or DiagnosticReportImaging), the rules all of them state.
   */
  merged(profile: ProfileFile, urls: string[]): MergedRule {
    let m = this.mergedByList.get(urls);
    if (m) return m;
    const key = `${profile.recordType} ${urls.join(' ')}`;
    m = this.mergedRules.get(key);
    if (!m) {
      const rules = urls.map((u) => profile.profiles[u]);
      const shared = <T>(pick: (r: ProfileRule) => T[]): T[] =>
        pick(rules[0]).filter((x) =>
          rules.every((r) =>
            pick(r).some((y) => JSON.stringify({ ...y, steps: 0 }) === JSON.stringify({ ...x, steps: 0 })),
          ),
        );
      m = {
        names: rules.map((r) => r.name).sort(),
        required: shared((r) => r.required),
        fixed: shared((r) => r.fixed),
        codings: shared((r) => r.codings),
        references: shared((r) => r.references),
      };
      this.mergedRules.set(key, m);
    }
    this.mergedByList.set(urls, m);
    return m;
  }

  get supported(): string {
    return this.profiles.map((p) => `${p.hiType} (${typeShown(p)})`).join(', ');
  }

  /**
   * The profile a document's Composition is a record of: the record profile its meta.profile
   * claims; else the one whose type code it carries (with that code's system, then with any); else
   * the one whose fixed type text it carries. The type rules then report what is wrong with it.
   */
  select(composition: Record<string, any>): ProfileFile | undefined {
    const codings = list(composition.type?.coding);
    const claimed = declaredProfiles(composition);
    return (
      this.profiles.find((p) => claimed.includes(p.profile)) ??
      this.profiles.find((p) => codings.some((c) => typeMatches(p, c))) ??
      this.profiles.find((p) => codings.some((c) => typeCodes(p).includes(c?.code))) ??
      this.profiles.find(
        (p) => p.compositionType.text !== undefined && composition.type?.text === p.compositionType.text,
      )
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
    // A fixed code must be there, of the fixed system; codes of a value set the type is only *bound*
    // to (preferred) do not constrain a record its meta.profile names, but the fixed system does.
    const withCode = T.code ? codings.findIndex((c) => c?.code === T.code) : -1;
    if (T.code && withCode < 0)
      issues.push(
        error(
          'code-invalid',
          `Composition.type must carry the code ${typeShown(profile)}${tag(profile, T.cite)}`,
          `${C}.type`,
        ),
      );
    else if (
      T.code &&
      T.system &&
      typeof codings[withCode]?.system === 'string' &&
      codings[withCode].system !== T.system
    )
      issues.push(
        error(
          'code-invalid',
          `Composition.type.coding.system must be ${T.system} for the code ${T.code}, found ${shown(codings[withCode].system)}${tag(profile, 'Composition.type.coding.system')}`,
          `${C}.type.coding[${withCode}].system`,
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
    const claimed = this.profiles.filter((p) => declaredProfiles(comp).includes(p.profile));
    if (claimed.length > 1)
      issues.push(
        error(
          'business-rule',
          `Composition.meta.profile claims ${claimed.map((p) => p.recordType).join(' and ')}; a record is of one type [R4 Resource.meta.profile]`,
          `${C}.meta.profile`,
        ),
      );

    for (const r of profile.compositionRequired)
      missingPaths(comp, r.steps, C).forEach((p) =>
        issues.push(error('required', `${r.path} is required${tag(profile, r.cite)}`, p)),
      );
    for (const r of profile.compositionFixed)
      if (someNotEqual(comp, r.steps, 0, r.value))
        presentValues(comp, r.steps, C, (value, p) => {
          if (value !== r.value)
            issues.push(
              error('value', `${r.path} must be ${shown(r.value)}, found ${shown(value)}${tag(profile, r.cite)}`, p),
            );
        });

    // The resources the record holds to IG profiles: reached from the Composition's references and
    // section entries, then from theirs (checked once the sections are done).
    const reach = new Reach(profile, facts, bundle);
    for (const r of profile.compositionReferences) reach.followAt(comp, r.steps, 0, r.targets, comp, 0);

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
      if (!section || typeof section !== 'object') return; // the structure stage reports it
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
      // The slice's fixed code and system, on every coding (a section matched by code carries the code
      // on every coding already).
      sectionCodings.forEach((c: any, ci: number) => {
        const at = `${here}.code.coding[${ci}]`;
        if (S.discriminator === undefined && slice.code !== undefined && c?.code !== undefined && c.code !== slice.code)
          issues.push(
            error(
              'code-invalid',
              `Section code ${shown(c.code)} is not allowed; section ${slice.name} has code ${slice.code}${tag(profile, `${slice.cite}.code.coding.code`)}`,
              `${at}.code`,
            ),
          );
        if (slice.system !== undefined && typeof c?.system === 'string' && c.system !== slice.system)
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
        if (someNotEqual(section, r.steps, 0, r.value))
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
        // an entry resolves to a bundle entry, or (`#id`) to a resource the Composition contains
        const target = typeof ref?.reference === 'string' ? reach.resolve(ref.reference, comp, 0) : undefined;
        const rt = target?.resource?.resourceType;
        const allowed = typeof rt === 'string' ? E.targets.find((t) => t.resourceType === rt) : undefined;
        if (E.requireType && !ref?.type) {
          const sliceCite = allowed && allowed.cite !== E.cite ? `${allowed.cite}.type` : (E.typeCite ?? E.cite);
          issues.push(
            error(
              'required',
              `Section entry must state its resource type in Reference.type${tag(profile, sliceCite)}`,
              `${at}.type`,
            ),
          );
        }
        if (!target) return; // unresolved references are reported by the document rules
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
        reach.add(target.resource, target.entry, target.contained, allowed.profiles ?? []);
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

    // The rules of every IG profile a reached resource is held to.
    reach.run(issues, (urls) => this.merged(profile, urls));

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

const codesOf = (codings: any[]): string =>
  codings
    .map((c) => c?.code)
    .filter((c): c is string => typeof c === 'string')
    .join(', ') || '(none)';

/** The slice a section belongs to: the one unsliced rule, or the slice whose code (or title) it carries. */
function sliceOf(S: ProfileFile['sections'], section: any, codings: any[]) {
  if (!section || typeof section !== 'object') return undefined; // the structure stage reports it
  if (S.discriminator === undefined) return S.slices[0];
  if (S.discriminator === 'title')
    return typeof section?.title === 'string' ? S.slices.find((s) => s.title === section.title) : undefined;
  // The discriminator is a fixed value on code.coding.code: every coding must carry it (a section
  // with another coding besides is of no slice, as FHIRPath equality on the collection reads it).
  if (codings.length === 0) return undefined;
  return S.slices.find((s) => s.code !== undefined && codings.every((c) => c?.code === s.code));
}

const tag = (profile: ProfileFile, rule: string) => ` [${profile.recordType}: ${rule}]`;
type ProfileRule = ProfileFile['profiles'][string];
/** The rules a reached resource is held to (see ProfileEngine.merged). */
export interface MergedRule {
  names: string[];
  required: ProfileRule['required'];
  fixed: ProfileRule['fixed'];
  codings: ProfileRule['codings'];
  references: ProfileRule['references'];
}
const bySources = (rule: MergedRule, cite: string) => ` [${rule.names.join(', ')}: ${cite}]`;

/**
 * A resource reached from the Composition: the bundle entry it is (or is contained in), its index
 * in that entry's `contained` when it is contained, and the profiles it is held to.
 */
interface Reached {
  resource: any;
  entry: number;
  contained: number;
  urls: string[];
}
const atOf = (t: { entry: number; contained: number }) =>
  `Bundle.entry[${t.entry}].resource${t.contained < 0 ? '' : `.contained[${t.contained}]`}`;

/** A reference rule's targets of one resource type, sorted, and their key; cached per rule. */
type Own = { urls: string[]; key: string } | null;
const ownTargets = new WeakMap<object, Map<unknown, Own>>();

/**
 * The walk from the Composition through references to IG profiles: each resource reached is held to
 * the profiles the referencing element names (once per set of profiles), and its own references are
 * followed in turn. Resources reached by no such reference are held to base R4 only. Nothing is
 * spelled out as a path unless a rule finds a fault.
 */
class Reach {
  private readonly queue: Reached[] = [];
  private readonly applied = new Map<object, Set<string>>();

  private readonly entries: any[];

  constructor(
    private readonly profile: ProfileFile,
    private readonly facts: DocumentFacts,
    bundle: Record<string, any>,
  ) {
    this.entries = list(bundle.entry);
  }

  /** What `reference`, written in a resource of entry `entry` (`container`: that entry's resource), names. */
  resolve(reference: string, container: any, entry: number) {
    if (reference === '#') return { resource: container, entry, contained: -1 }; // the resource itself
    if (reference.startsWith('#')) {
      const contained = list(container?.contained);
      const j = contained.findIndex((c) => c?.id === reference.slice(1));
      return j < 0 ? undefined : { resource: contained[j], entry, contained: j };
    }
    const e = this.facts.resolve(reference, entry);
    return e ? { resource: e.resource, entry: e.index, contained: -1 } : undefined;
  }

  /**
   * Resolves `reference` from a resource of entry `entry` (`container`: that entry's resource, whose
   * `contained` a `#id` names), and holds what it names to those of `targets` of its type.
   */
  follow(reference: unknown, targets: string[], container: any, entry: number) {
    if (typeof reference !== 'string') return;
    const t = this.resolve(reference, container, entry);
    if (t) this.add(t.resource, t.entry, t.contained, targets);
  }

  /** Holds `resource` to those of `targets` of its type, unless it already is. */
  add(resource: any, entry: number, contained: number, targets: string[]) {
    if (!resource || typeof resource !== 'object') return;
    let byType = ownTargets.get(targets);
    if (!byType) ownTargets.set(targets, (byType = new Map()));
    const rt = resource.resourceType;
    let own = byType.get(rt);
    if (own === undefined) {
      const urls = targets.filter((u) => this.profile.profiles[u]?.resourceType === rt).sort();
      own = urls.length > 0 ? { urls, key: urls.join(' ') } : null;
      byType.set(rt, own);
    }
    if (!own) return;
    let keys = this.applied.get(resource);
    if (!keys) this.applied.set(resource, (keys = new Set()));
    if (keys.has(own.key)) return;
    keys.add(own.key);
    this.queue.push({ resource, entry, contained, urls: own.urls });
  }

  run(issues: Issue[], merged: (urls: string[]) => MergedRule) {
    for (let i = 0; i < this.queue.length; i++) {
      const t = this.queue[i];
      const rule = merged(t.urls);
      checkResource(t.resource.resourceType, rule, t.resource, atOf(t), issues);
      // a contained resource's `#id` references name its container's other contained resources
      const container = t.contained < 0 ? t.resource : this.containerOf(t.entry);
      for (const r of rule.references) this.followAt(t.resource, r.steps, 0, r.targets, container, t.entry);
    }
  }

  /** `follow` for each Reference present at `steps[i..]` under `node`. */
  followAt(node: unknown, steps: CompiledPath, i: number, targets: string[], container: any, entry: number): void {
    if (!node || typeof node !== 'object') return;
    if (i === steps.length) return this.follow((node as any).reference, targets, container, entry);
    const value = firstPresent(node as Record<string, unknown>, steps[i]);
    if (value === undefined) return;
    if (!Array.isArray(value)) return this.followAt(value, steps, i + 1, targets, container, entry);
    for (const item of value) this.followAt(item, steps, i + 1, targets, container, entry);
  }

  private containerOf(entry: number): any {
    return this.entries[entry]?.resource;
  }
}

/**
 * The rules of one resource type applied to one entry's resource. Fixed values and sliced codings
 * are checked without building any path first; paths are built only for a fault.
 */
function checkResource(rt: string, rule: MergedRule, resource: any, at: string, issues: Issue[]) {
  if (anyMissing(resource, requiredTree(rule)))
    for (const r of rule.required)
      missingPaths(resource, r.steps, at).forEach((p) =>
        issues.push(error('required', `${rt}.${r.name} is required${bySources(rule, r.cite)}`, p)),
      );
  for (const r of rule.fixed) {
    if (!someNotEqual(resource, r.steps, 0, r.value)) continue;
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
    if (!someCodingFault(resource, r.steps, 0, r)) continue;
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

/**
 * A rule set's required paths as one tree (paths share their first steps), so that one walk finds
 * whether any is missing; built once per rule set.
 */
interface RequiredNode {
  names: string[];
  /** A rule ends here: the element must be present where its parent is. */
  required: boolean;
  children: RequiredNode[];
}
const requiredTrees = new WeakMap<object, RequiredNode[]>();
function requiredTree(rule: MergedRule): RequiredNode[] {
  let tree = requiredTrees.get(rule);
  if (tree) return tree;
  tree = [];
  for (const r of rule.required) {
    let level = tree;
    r.steps.forEach((names, i) => {
      const key = names.join('|');
      let node = level.find((n) => n.names.join('|') === key);
      if (!node) level.push((node = { names, required: false, children: [] }));
      if (i === r.steps.length - 1) node.required = true;
      level = node.children;
    });
  }
  requiredTrees.set(rule, tree);
  return tree;
}
/** Is any path of the tree missing under `node` (the rule of missingPaths, for all paths in one walk)? */
function anyMissing(node: Record<string, unknown>, children: RequiredNode[]): boolean {
  for (const c of children) {
    const v = firstPresent(node, c.names);
    if (v === undefined) {
      if (c.required) return true;
      continue;
    }
    if (c.children.length === 0) continue;
    if (Array.isArray(v)) {
      for (const item of v) if (item && typeof item === 'object' && anyMissing(item, c.children)) return true;
    } else if (typeof v === 'object' && anyMissing(v as Record<string, unknown>, c.children)) return true;
  }
  return false;
}

/** Does this coding break its sliced-by-system rule (no slice of a closed slicing, or a slice's element missing)? */
function codingFault(r: MergedRule['codings'][number], coding: any): boolean {
  const slice = r.slices.find((x) => coding?.system === x.system);
  if (!slice) return r.closed;
  for (const q of slice.required) if (someMissing(coding, q.steps, 0)) return true;
  return false;
}

/** The value of the first of `names` present (neither undefined nor null) in `obj`. */
function firstPresent(obj: Record<string, unknown>, names: string[]): unknown {
  if (names.length === 1) {
    const v = obj[names[0]];
    return v === null ? undefined : v;
  }
  for (const k of names) {
    const v = obj[k];
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
}

/** Is some value present at `steps[i..]` under `node` other than `value`? (No paths built.) */
function someNotEqual(node: unknown, steps: CompiledPath, i: number, value: string): boolean {
  if (i === steps.length) return node !== value;
  if (!node || typeof node !== 'object') return false;
  const v = firstPresent(node as Record<string, unknown>, steps[i]);
  if (v === undefined) return false;
  if (!Array.isArray(v)) return someNotEqual(v, steps, i + 1, value);
  for (const item of v) if (someNotEqual(item, steps, i + 1, value)) return true;
  return false;
}

/** Does some coding present at `steps[i..]` under `node` break rule `r` (see codingFault)? */
function someCodingFault(node: unknown, steps: CompiledPath, i: number, r: MergedRule['codings'][number]): boolean {
  if (i === steps.length) return codingFault(r, node);
  if (!node || typeof node !== 'object') return false;
  const v = firstPresent(node as Record<string, unknown>, steps[i]);
  if (v === undefined) return false;
  if (!Array.isArray(v)) return someCodingFault(v, steps, i + 1, r);
  for (const item of v) if (someCodingFault(item, steps, i + 1, r)) return true;
  return false;
}

/** Is `steps[i..]` missing somewhere under `node` (missingPaths' rule, without its paths)? */
function someMissing(node: unknown, steps: CompiledPath, i: number): boolean {
  const obj = node as Record<string, unknown>;
  const value = firstPresent(obj, steps[i]);
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

/** How a path is shown: a choice's alternatives (`productReference|productCodeableConcept`) as `product[x]`. */
function pathName(path: string): string {
  const steps = path.split('.');
  const last = steps[steps.length - 1].split('|');
  if (last.length > 1 && choiceStem(last)) steps[steps.length - 1] = `${choiceStem(last)}[x]`;
  return steps.join('.');
}
/** The common stem of a choice element's alternatives (`productReference`, `productCodeableConcept` → `product`). */
function choiceStem(alternatives: string[]): string {
  let n = 0;
  while (alternatives.every((a) => a[n] !== undefined && a[n] === alternatives[0][n])) n++;
  return alternatives[0].slice(0, n);
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
    // a missing choice is named as FHIRPath names it: its stem (`product`)
    if (key === undefined)
      out.push(
        `${where()}.${alternatives.length > 1 ? choiceStem(alternatives) || alternatives.join('|') : alternatives[0]}`,
      );
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
