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
  /** Resolves a reference string as written in the bundle. */
  resolve(reference: string): EntryRef | undefined;
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
  let byTypeId: Map<string, EntryRef> | undefined;
  const resolve = (reference: string): EntryRef | undefined => {
    const hit = byFullUrl.get(reference);
    if (hit) return hit;
    if (reference.startsWith('urn:')) return undefined;
    const m = TYPE_ID.exec(reference);
    if (!m) return undefined;
    byTypeId ??= typeIdIndex(refs, entries);
    return byTypeId.get(`${m[1]}/${m[2]}`);
  };

  // Every reference must resolve inside the bundle (documents are self-contained).
  entries.forEach((entry, index) => {
    if (entry?.resource && typeof entry.resource === 'object') {
      forEachReference(entry.resource, (reference, at, contained, holder) => {
        if (reference.startsWith('#')) {
          if (reference !== '#' && !contained.has(reference.slice(1)))
            add(
              'not-found',
              `Reference '${clip(reference)}' names no contained resource`,
              `${spell(at, `Bundle.entry[${index}].resource`)}.reference`,
            );
        } else {
          const target = resolve(reference);
          if (!target)
            add(
              'not-found',
              `Reference '${clip(reference)}' does not resolve to an entry of this bundle (by fullUrl or Type/id) [documents are self-contained, R4 §3.3]`,
              `${spell(at, `Bundle.entry[${index}].resource`)}.reference`,
            );
          else if (typeof holder.type === 'string' && typeName(holder.type) !== target.resource.resourceType)
            add(
              'value',
              `Reference.type is '${clip(holder.type)}' but the reference resolves to a ${named(target.resource.resourceType)} [R4 Reference.type: SHALL be consistent with the reference]`,
              `${spell(at, `Bundle.entry[${index}].resource`)}.type`,
            );
        }
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
  else {
    const target = resolve(subjectRef);
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

/**
 * Calls `visit` for every Reference.reference under `root`, with the keys and indexes of the object
 * holding it (a scratch array, valid during the call). Recursive: the guard bounded the JSON depth.
 */
function forEachReference(
  root: unknown,
  visit: (
    ref: string,
    at: readonly (string | number)[],
    contained: Set<string>,
    holder: Record<string, unknown>,
  ) => void,
) {
  const contained = new Set<string>();
  const list = (root as any)?.contained;
  if (Array.isArray(list)) for (const c of list) if (typeof c?.id === 'string') contained.add(c.id);
  referencesIn(root, [], visit, contained);
}

function referencesIn(
  node: unknown,
  at: (string | number)[],
  visit: (
    ref: string,
    at: readonly (string | number)[],
    contained: Set<string>,
    holder: Record<string, unknown>,
  ) => void,
  contained: Set<string>,
) {
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
function typeIdIndex(refs: EntryRef[], entries: any[]): Map<string, EntryRef> {
  const index = new Map<string, EntryRef>();
  for (const ref of refs) {
    const fullUrl = entries[ref.index].fullUrl;
    const m = typeof fullUrl === 'string' && !fullUrl.startsWith('urn:') ? TYPE_ID.exec(fullUrl) : null;
    if (m) index.set(`${m[1]}/${m[2]}`, ref);
  }
  for (const ref of refs) {
    const r = ref.resource;
    // (other shapes are reported by the structure stage)
    if (typeof r.resourceType === 'string' && typeof r.id === 'string') {
      const key = `${r.resourceType}/${r.id}`;
      if (!index.has(key)) index.set(key, ref);
    }
  }
  return index;
}

/** The resource type a Reference.type names: a type name, or the last segment of a StructureDefinition URL. */
const typeName = (type: string) => type.slice(type.lastIndexOf('/') + 1);

const clip = (s: string) => (s.length > 80 ? s.slice(0, 77) + '...' : s);
