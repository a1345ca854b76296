/**
 * Every setting the server reads (src/config.ts) is a row of the README's
 * configuration table, and the table names no setting the server does not read.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigSchema } from '../../src/config.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(
  readme.indexOf('## Configuration'),
  readme.indexOf('\n## ', readme.indexOf('## Configuration') + 5),
);
const documented = new Set([...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]));
/** Read by the embedded database's launcher, not by src/config.ts. */
const LAUNCHER = new Set(['FERRETDB_SQLITE_SYNCHRONOUS']);

describe('the README configuration table', () => {
  it('has a row for every setting in src/config.ts', () => {
    expect(documented.size).toBeGreaterThan(40);
    const missing = Object.keys(ConfigSchema.shape).filter((k) => !documented.has(k));
    expect(missing).toEqual([]);
  });
  it('has no row for a setting nothing reads', () => {
    const unknown = [...documented].filter((k) => !(k in ConfigSchema.shape) && !LAUNCHER.has(k));
    expect(unknown).toEqual([]);
  });
});
