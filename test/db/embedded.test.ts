import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLauncher, EmbeddedDatabaseError, NO_GO_MESSAGE } from '../../src/db/embedded.js';

describe('embedded database build', () => {
  it('without Go, says in one line how to get out: install Go or set MONGODB_URI', () => {
    const cacheRoot = mkdtempSync(join(tmpdir(), 'abha-vault-nogo-'));
    try {
      let caught: unknown;
      try {
        ensureLauncher(() => {}, { cacheRoot, env: { PATH: '/nonexistent' } });
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(EmbeddedDatabaseError);
      expect((caught as Error).message).toBe(NO_GO_MESSAGE);
      expect(NO_GO_MESSAGE).not.toContain('\n');
      expect(NO_GO_MESSAGE).toMatch(/install Go/);
      expect(NO_GO_MESSAGE).toMatch(/MONGODB_URI/);
    } finally {
      rmSync(cacheRoot, { recursive: true, force: true });
    }
  });

  it('reuses the cached build', () => {
    const first = ensureLauncher();
    expect(ensureLauncher()).toBe(first);
  });
});
