/**
 * The project runs from any clone: no source, test, bench, script, fixture or
 * CI file names a fixed absolute location of one machine (a checkout under
 * /work, a home directory, a fixed /tmp path). Files beside the repository are
 * found from the repository root (`../shared/...`), temporary ones under
 * os.tmpdir().
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SELF = fileURLToPath(import.meta.url);
const TREES = [
  'src',
  'test',
  'bench',
  'scripts',
  'fixtures',
  'profiles',
  '.ci',
  'package.json',
  'vitest.config.ts',
  'tsconfig.json',
];
const TEXT = /\.(ts|mts|cts|js|mjs|cjs|json|sh|ya?ml)$|^run$/;
/** A string that starts with such a location: `'/work/…'`, `"/root/…"`, `` `/home/…` ``, `/tmp/…`, `/Users/…`. */
const FIXED = /["'`](\/(work|root|home|tmp|Users)(\/|["'`]))/;

function files(p: string): string[] {
  if (!existsSync(p)) return [];
  if (statSync(p).isFile()) return [p];
  return readdirSync(p).flatMap((name) =>
    name === 'node_modules' || name === '.cache' ? [] : files(path.join(p, name)),
  );
}

describe('portable paths', () => {
  it('no project file names a fixed absolute path of one machine', () => {
    const found: string[] = [];
    for (const file of TREES.flatMap((t) => files(path.join(ROOT, t)))) {
      if (file === SELF || !TEXT.test(path.basename(file))) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (FIXED.test(line)) found.push(`${path.relative(ROOT, file)}:${i + 1}: ${line.trim().slice(0, 120)}`);
        });
    }
    expect(found).toEqual([]);
  });
});
