/**
 * Document-bundle rules: what FHIR R4 (Bundle invariants bdl-3, bdl-7, bdl-9,
 * bdl-10, bdl-11; "Documents" §3.3) and the IG's DocumentBundle profile ask of a
 * `document` Bundle, beyond each resource's own structure. Pure.
 */
import { type Issue, error, named, shown } from './outcome.js';

export interface EntryRef {
  index: number;
  resource: Record<string, any>;
}

export interface DocumentFacts {
  composition: Record<string, any>;
  /** The Composition.subject entry, when it resolves to a Patient. */
  patient?: EntryRef;
  /** Resolves a reference string as written in entry `from` (default 0, the Composition); undefined if ambiguous. */
  resolve(reference: string, from?: number): EntryRef | undefined;
}

const UUID_URN = /^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const TYPE_ID = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

export function documentRules(bundle: Record<string, any>): { issues: Issue[]; facts?: DocumentFacts } {
  const issues: Issue[] = [];
  const add = (code: Issue['code'], msg: string, expr: string) => issues.push(error(code, msg, expr));

  if (bundle.type !== 'document')
    add(
      'value',
      `Bundle.type must be 'document' (found ${shown(bundle.type)}) [DocumentBundle: Bundle.type fixed 'document']`,
      'Bundle.type',
    );
  if (!bundle.identifier?.system || !bundle.identifier?.value)
    add(
      'required',
      'A document Bundle must have identifier.system and identifier.value [R4 bdl-9; DocumentBundle: Bundle.identifier.system, Bundle.identifier.value 1..1]',
      'Bundle.identifier',
    );
  if (!bundle.timestamp)
    add(
      'required',
      'A document Bundle must have a timestamp [R4 bdl-10; DocumentBundle: Bundle.timestamp 1..1]',
      'Bundle.timestamp',
    );
  if (!bundle.meta?.versionId)
    add(
      'required',
      'Bundle.meta.versionId is required [DocumentBundle: Bundle.meta.versionId 1..1]',
      'Bundle.meta.versionId',
    );

  const entries: any[] = Array.isArray(bundle.entry) ? bundle.entry : [];
  const byFullUrl = new Map<string, EntryRef>();
  const refs: EntryRef[] = [];
  entries.forEach((entry, index) => {
    if (!entry || typeof entry !== 'object') return;
    const where = `Bundle.entry[${index}]`; // a cons string: flattened only if a fault uses it
    if (entry.request || entry.response)
      add('structure', 'Entries of a document must not carry request or response [R4 bdl-3, bdl-4]', where);
    const resource = entry.resource;
    if (!resource || typeof resource !== 'object') {
      add('required', 'Every entry of a document must contain a resource', `${where}.resource`);
      return;
    }
    const ref: EntryRef = { index, resource };
    refs.push(ref);
    const fullUrl = entry.fullUrl;
    if (typeof fullUrl !== 'string')
      add(
        'required',
        'Every entry of a document must have a fullUrl, so references can resolve [R4 Bundle.entry.fullUrl; §3.3 documents are self-contained]',
        `${where}.fullUrl`,
      );
    else {
      if (fullUrl.startsWith('urn:uuid:') && !UUID_URN.test(fullUrl))
        add(
          'value',
          `fullUrl '${clip(fullUrl)}' is not a valid urn:uuid (R4 datatype uuid: urn:uuid: followed by a UUID)`,
          `${where}.fullUrl`,
        );
      if (byFullUrl.has(fullUrl))
        add(
          'duplicate',
          `fullUrl '${clip(fullUrl)}' is used by entries ${byFullUrl.get(fullUrl)!.index} and ${index} [R4 bdl-7: fullUrl must be unique]`,
          `${where}.fullUrl`,
        );
      else byFullUrl.set(fullUrl, ref);
    }
  });

  // Type/id references: the index is built at the first one (a bundle of urn:uuid fullUrls never needs it).
  let byTypeId: Map<string, EntryRef[]> | undefined;
  /**
   * The entries a reference written in entry `from` may name (R4 §2.36.4): an absolute reference
   * names the entry with that fullUrl, and nothing else; a relative `Type/id` names the entry whose
   * fullUrl is the referencing entry's base with that Type/id, else the one entry that is that
   * Type/id (by fullUrl or by the resource's type and id). More than one candidate: ambiguous.
   */
  const candidates = (reference: string, from: number): EntryRef[] => {
    const hit = byFullUrl.get(reference);
    if (hit) return [hit];
    if (reference.startsWith('urn:') || reference.includes('://')) return [];
    const m = TYPE_ID.exec(reference);
    if (!m || m.index !== 0) return [];
    byTypeId ??= typeIdIndex(refs, entries);
    const all = byTypeId.get(`${m[1]}/${m[2]}`) ?? [];
    if (all.length <= 1) return all;
    const base = baseOf(entries[from]?.fullUrl);
    const here = base === undefined ? undefined : byFullUrl.get(`${base}${m[1]}/${m[2]}`);
    return here ? [here] : all;
  };
  const resolve = (reference: string, from = 0): EntryRef | undefined => {
    const found = candidates(reference, from);
    return found.length === 1 ? found[0] : undefined;
  };

  // Every reference must resolve inside the bundle (documents are self-contained).
  entries.forEach((entry, index) => {
    if (entry?.resource && typeof entry.resource === 'object') {
      const root = `Bundle.entry[${index}].resource`;
      forEachReference(entry.resource, (reference, at, contained, holder) => {
        let targetType: unknown;
        if (reference.startsWith('#')) {
          // '#' is the resource itself, '#id' one it contains
          const id = reference.slice(1);
          if (id !== '' && !contained.has(id)) {
            add(
              'not-found',
              `Reference '${clip(reference)}' names no contained resource`,
              `${spell(at, root)}.reference`,
            );
            return;
          }
          targetType = id === '' ? entry.resource.resourceType : contained.get(id);
        } else {
          const found = candidates(reference, index);
          if (found.length === 0) {
            add(
              'not-found',
              `Reference '${clip(reference)}' does not resolve to an entry of this bundle (by fullUrl, or as a relative Type/id) [documents are self-contained, R4 §3.3]`,
              `${spell(at, root)}.reference`,
            );
            return;
          }
          if (found.length > 1) {
            add(
              'business-rule',
              `Reference '${clip(reference)}' is ambiguous: entries ${found.map((f) => f.index).join(', ')} are each ${clip(reference)} under different bases, and the referencing entry's fullUrl does not say which [R4 §2.36.4 resolving references in Bundles]`,
              `${spell(at, root)}.reference`,
            );
            return;
          }
          targetType = found[0].resource.resourceType;
        }
        if (typeof holder.type === 'string' && holder.type !== targetType)
          add(
            'value',
            `Reference.type is '${clip(holder.type)}' but the reference resolves to a ${named(targetType)}${/[:/]/.test(holder.type) ? ' (an absolute URL is allowed only for logical models)' : ''} [R4 Reference.type: SHALL be consistent with the reference]`,
            `${spell(at, root)}.type`,
          );
      });
    }
  });

  const first = entries[0]?.resource;
  if (!first || first.resourceType !== 'Composition') {
    add(
      'structure',
      `The first entry of a document must be a Composition [R4 bdl-11] (found ${first ? named(first.resourceType) : 'nothing'})`,
      'Bundle.entry[0].resource',
    );
    return { issues };
  }
  const subjectRef = first.subject?.reference;
  let patient: EntryRef | undefined;
  if (typeof subjectRef !== 'string')
    add(
      'required',
      'Composition.subject.reference is required: the document must say whose record it is',
      'Bundle.entry[0].resource.subject',
    );
  else if (subjectRef.startsWith('#'))
    add(
      'value',
      'Composition.subject must reference the Patient entry of the bundle, not a contained resource: the patient is identified by that entry',
      'Bundle.entry[0].resource.subject.reference',
    );
  else {
    const target = resolve(subjectRef, 0);
    if (target && target.resource.resourceType !== 'Patient')
      add(
        'value',
        `Composition.subject must be a Patient (found ${named(target.resource.resourceType)})`,
        'Bundle.entry[0].resource.subject',
      );
    else patient = target;
  }
  return { issues, facts: { composition: first, patient, resolve } };
}

/** `rootPath` and the keys and indexes below it, as a FHIRPath (spelled out only for a fault). */
function spell(at: readonly (string | number)[], rootPath: string): string {
  let out = rootPath;
  for (const k of at) out += typeof k === 'number' ? `[${k}]` : `.${k}`;
  return out;
}

/** Called with a reference, where its holder sits, the root's contained resources (id → type), and its holder. */
type ReferenceVisit = (
  ref: string,
  at: readonly (string | number)[],
  contained: Map<string, unknown>,
  holder: Record<string, unknown>,
) => void;

/**
 * Calls `visit` for every Reference.reference under `root`, with the keys and indexes of the object
 * holding it (a scratch array, valid during the call). Recursive: the guard bounded the JSON depth.
 */
function forEachReference(root: unknown, visit: ReferenceVisit) {
  const contained = new Map<string, unknown>();
  const list = (root as any)?.contained;
  if (Array.isArray(list)) for (const c of list) if (typeof c?.id === 'string') contained.set(c.id, c.resourceType);
  referencesIn(root, [], visit, contained);
}

function referencesIn(node: unknown, at: (string | number)[], visit: ReferenceVisit, contained: Map<string, unknown>) {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const v = node[i];
      if (v && typeof v === 'object') {
        at.push(i);
        referencesIn(v, at, visit, contained);
        at.pop();
      }
    }
    return;
  }
  const obj = node as Record<string, unknown>;
  for (const k in obj) {
    const v = obj[k];
    if (k === 'reference' && typeof v === 'string') visit(v, at, contained, obj);
    else if (v && typeof v === 'object') {
      at.push(k);
      referencesIn(v, at, visit, contained);
      at.pop();
    }
  }
}

/** Entries by `Type/id`: from a fullUrl of that form first, else from the resource's type and id. */
function typeIdIndex(refs: EntryRef[], entries: any[]): Map<string, EntryRef[]> {
  const index = new Map<string, EntryRef[]>();
  const put = (key: string, ref: EntryRef) => {
    const list = index.get(key);
    if (!list) index.set(key, [ref]);
    else if (!list.includes(ref)) list.push(ref);
  };
  for (const ref of refs) {
    const fullUrl = entries[ref.index].fullUrl;
    const m = typeof fullUrl === 'string' && !fullUrl.startsWith('urn:') ? TYPE_ID.exec(fullUrl) : null;
    if (m) put(`${m[1]}/${m[2]}`, ref);
    // an entry whose fullUrl is no Type/id (a urn) is found by its resource's type and id
    else if (typeof ref.resource.resourceType === 'string' && typeof ref.resource.id === 'string')
      put(`${ref.resource.resourceType}/${ref.resource.id}`, ref);
  }
  return index;
}

/** The RESTful base of a fullUrl (`http://a.org/fhir/` of `http://a.org/fhir/Patient/1`), if it has one. */
function baseOf(fullUrl: unknown): string | undefined {
  if (typeof fullUrl !== 'string' || fullUrl.startsWith('urn:')) return undefined;
  const m = TYPE_ID.exec(fullUrl);
  return m ? fullUrl.slice(0, m.index + (fullUrl[m.index] === '/' ? 1 : 0)) : undefined;
}

const clip = (s: string) => (s.length > 80 ? s.slice(0, 77) + '...' : s);
