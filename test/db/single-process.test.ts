/**
 * The embedded database serves one process (src/db/embedded.ts): a DATA_DIR
 * is taken with a lock file before FerretDB starts. A second server on the
 * same DATA_DIR refuses to start with one line naming it and exits non-zero,
 * while the first keeps serving; a lock left by a dead process is taken over.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirInUseError, LOCK_FILE, PROJECT_ROOT, lockDataDir } from '../../src/db/embedded.js';

const dirs: string[] = [];
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `abha-vault-${name}-`));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A pid that is not alive: a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('the DATA_DIR lock file', () => {
  it('is taken once: a second taker is refused in one line naming DATA_DIR; released, it can be taken again', () => {
    const dir = tempDir('lock');
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    let caught: unknown;
    try {
      lockDataDir(dir);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DataDirInUseError);
    const message = (caught as Error).message;
    expect(message).toContain(`DATA_DIR ${dir}`);
    expect(message).toMatch(/one process/);
    expect(message).toMatch(/MONGODB_URI/);
    expect(message).not.toContain('\n');
    release();
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
    lockDataDir(dir)();
  });

  it('a lock whose process is gone (a crash) is taken over', async () => {
    const dir = tempDir('stale');
    writeFileSync(join(dir, LOCK_FILE), `${await deadPid()}\n`);
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, LOCK_FILE), 'utf8').trim()).toBe(String(process.pid));
    release();
  });
});

interface Started {
  code: Promise<number | null>;
  lines: string[];
  url: Promise<string>;
  kill(): void;
}

/** `npm start` on the embedded database (MONGODB_URI unset, whatever the test run uses). */
function startEmbeddedServer(dataDir: string): Started {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    MONGODB_DB: 'single_process',
  };
  delete env.MONGODB_URI;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: PROJECT_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
  const code = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  const url = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      const m = /listening on (http:\/\/\S+)/.exec(l);
      if (m) resolve(m[1]);
    });
    void code.then((c) => reject(new Error(`exited ${c}: ${lines.join('\n')}`)));
  });
  url.catch(() => undefined);
  return {
    code,
    lines,
    url,
    kill: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}

describe('a second server on the same DATA_DIR (embedded database)', () => {
  it('exits non-zero with one line naming DATA_DIR; the first keeps serving', async () => {
    const dataDir = tempDir('two-servers');
    const first = startEmbeddedServer(dataDir);
    try {
      const url = await first.url;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);

      const second = startEmbeddedServer(dataDir);
      const code = await second.code;
      expect(code).not.toBe(0);
      expect(code).not.toBeNull();
      const said = second.lines.filter((l) => l.trim());
      expect(said, said.join('\n')).toHaveLength(1);
      expect(said[0]).toContain(`DATA_DIR ${dataDir}`);
      expect(said[0]).toMatch(/in use by another abha-vault process/);

      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200); // its database is untouched
    } finally {
      first.kill();
      expect(await first.code).toBe(0);
    }
    expect(existsSync(join(dataDir, LOCK_FILE))).toBe(false); // released on exit
  }, 120_000);
});
