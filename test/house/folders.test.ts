/**
 * The house's shape: the areas of src/ (its folders) depend on each other
 * without a cycle, so each folder owns its part and a newcomer can read them
 * bottom up (fhir, auth, db, http; audit, consents, records; abdm). Imports,
 * type-only ones included, are read from the sources as text.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { PROJECT_ROOT } from '../../src/db/embedded.js';

const SRC = join(PROJECT_ROOT, 'src');
const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}
const areaOf = (file: string): string | undefined => {
  const parts = relative(SRC, file).split(sep);
  return parts.length > 1 ? parts[0] : undefined; // top-level files (main.ts, app.ts, …) wire the areas together
};

/** Area → the areas it imports, with one example import each. */
function graph(): Map<string, Map<string, string>> {
  const g = new Map<string, Map<string, string>>();
  for (const f of files(SRC)) {
    const from = areaOf(f);
    if (!from) continue;
    if (!g.has(from)) g.set(from, new Map());
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const target = normalize(join(dirname(f), m[1] ?? m[2]));
      const to = areaOf(target);
      if (to && to !== from && !g.get(from)!.has(to))
        g.get(from)!.set(to, `${relative(SRC, f)} imports ${m[1] ?? m[2]}`);
    }
  }
  return g;
}

/** Strongly connected groups of more than one area (Tarjan). */
function cycles(g: Map<string, Map<string, string>>): string[][] {
  let n = 0;
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    stack: string[] = [],
    on = new Set<string>(),
    out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, n);
    low.set(v, n);
    n++;
    stack.push(v);
    on.add(v);
    for (const w of g.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      for (let w = stack.pop()!; ; w = stack.pop()!) {
        on.delete(w);
        group.push(w);
        if (w === v) break;
      }
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return out;
}

describe('the folders of src/', () => {
  it('import each other without a cycle', () => {
    const g = graph();
    expect(g.size).toBeGreaterThanOrEqual(8);
    const found = cycles(g).map(
      (c) =>
        `${c.join(' ↔ ')}: ${c.flatMap((a) => c.filter((b) => g.get(a)?.has(b)).map((b) => g.get(a)!.get(b))).join('; ')}`,
    );
    expect(found).toEqual([]);
  });

  it('the check finds a cycle when there is one', () => {
    const g = new Map([
      ['a', new Map([['b', 'x']])],
      ['b', new Map([['c', 'y']])],
      ['c', new Map([['a', 'z']])],
      ['d', new Map([['a', 'w']])],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
  });
});
