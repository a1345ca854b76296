/**
 * The embedded default database: FerretDB 1.24.2 (MongoDB wire protocol,
 * SQLite storage), built once from the Go module proxy into ./.cache and run
 * on a free loopback port with its data in DATA_DIR. Used when MONGODB_URI is
 * unset (by `npm start` and by the tests).
 *
 * Single process by design: FerretDB on SQLite makes a guarded write under
 * this process's locks (db/engine.ts), which another process would not see.
 * So a DATA_DIR is taken with a lock file, `DATA_DIR/abha-vault.lock` (created
 * exclusively, holding the pid), before FerretDB starts, and released when it
 * stops or this process exits. A second server on the same DATA_DIR refuses
 * to start; a lock whose pid is no longer alive (a crash) is taken over.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { MongoClient } from 'mongodb';

export const PROJECT_ROOT = resolve(new URL('../../', import.meta.url).pathname);
const SOURCE_DIR = join(PROJECT_ROOT, 'src', 'db', 'ferretdb');

export class EmbeddedDatabaseError extends Error {}

export const NO_GO_MESSAGE =
  'The embedded database (FerretDB) is built with Go, which is not installed: install Go 1.24 or newer (https://go.dev/doc/install), or set MONGODB_URI to use your own MongoDB.';

/** Path of the launcher binary, building it first if this source has not been built yet. */
export function ensureLauncher(
  log: (msg: string) => void = () => {},
  opts: { cacheRoot?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  const env = opts.env ?? process.env;
  const hash = createHash('sha256');
  const sources = [
    'go.mod',
    'go.sum',
    ...readdirSync(SOURCE_DIR)
      .filter((f) => f.endsWith('.go'))
      .sort(),
  ];
  for (const f of sources) hash.update(f).update(readFileSync(join(SOURCE_DIR, f)));
  const dir = join(opts.cacheRoot ?? join(PROJECT_ROOT, '.cache', 'ferretdb'), hash.digest('hex').slice(0, 16));
  const bin = join(dir, 'ferretdb-launcher');
  if (existsSync(bin)) return bin;

  const go = spawnSync('go', ['version'], { encoding: 'utf8', env });
  if (go.error || go.status !== 0) throw new EmbeddedDatabaseError(NO_GO_MESSAGE);
  log('Building the embedded database (FerretDB 1.24.2) once; this takes a minute or two...');
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const build = spawnSync('go', ['build', '-trimpath', '-o', tmp, '.'], {
    cwd: SOURCE_DIR,
    encoding: 'utf8',
    env: { ...env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' },
  });
  if (build.status !== 0) {
    rmSync(tmp, { force: true });
    throw new EmbeddedDatabaseError(
      `Building FerretDB failed (go build exited ${build.status}):\n${(build.stderr || '').slice(-2000)}`,
    );
  }
  renameSync(tmp, bin); // atomic: concurrent builders both end with one good binary
  return bin;
}

export const LOCK_FILE = 'abha-vault.lock';

/** Another live process holds DATA_DIR. */
export class DataDirInUseError extends EmbeddedDatabaseError {}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};
const readPid = (path: string): number | undefined => {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10) || 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
};

/**
 * Takes `dataDir` for this process (see the file header); returns the
 * release. Throws DataDirInUseError, one line naming DATA_DIR, when a live
 * process holds it (this one included: one embedded database per DATA_DIR).
 */
export function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.removeListener('exit', release);
        try {
          if (readPid(path) === process.pid) unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      process.on('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readPid(path);
    if (holder === undefined) continue; // released meanwhile: try again
    if (holder && alive(holder)) {
      throw new DataDirInUseError(
        `DATA_DIR ${dataDir} is in use by another abha-vault process (pid ${holder}, lock file ${path}): the embedded database serves one process; stop that one, choose another DATA_DIR, or set MONGODB_URI to share a MongoDB between processes.`,
      );
    }
    // Stale (its process is gone): move it aside, and put it back if what was moved is not the stale lock (another
    // starter took over first).
    const aside = `${path}.${process.pid}.stale`;
    try {
      renameSync(path, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    if (readPid(aside) !== holder) {
      try {
        linkSync(aside, path);
      } catch {
        /* a third took it: it decides */
      }
    }
    rmSync(aside, { force: true });
  }
  throw new DataDirInUseError(
    `DATA_DIR ${dataDir}: could not take the lock file ${path}; is another abha-vault starting on it?`,
  );
}

export interface EmbeddedDatabase {
  uri: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts FerretDB with its files in `dataDir` and resolves once it answers ping. */
export async function startEmbedded(options: {
  dataDir: string;
  listen?: string;
  log?: (msg: string) => void;
  timeoutMs?: number;
}): Promise<EmbeddedDatabase> {
  const bin = ensureLauncher(options.log);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const release = lockDataDir(dataDir); // before FerretDB opens the files
  try {
    return await launch(bin, dataDir, options, release);
  } catch (e) {
    release();
    throw e;
  }
}

async function launch(
  bin: string,
  dataDir: string,
  options: { listen?: string; timeoutMs?: number },
  release: () => void,
): Promise<EmbeddedDatabase> {
  const args = [dataDir, ...(options.listen ? [options.listen] : [])];
  // stdin stays open as a lifeline: the launcher exits when this process is gone.
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });

  const uri = await new Promise<string>((resolveUri, reject) => {
    const timer = setTimeout(
      () =>
        reject(new EmbeddedDatabaseError(`FerretDB did not start within ${options.timeoutMs ?? 30000} ms: ${stderr}`)),
      options.timeoutMs ?? 30000,
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new EmbeddedDatabaseError(`FerretDB exited (${code}) before it was ready: ${stderr.trim()}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('MONGODB_URI=')) {
        clearTimeout(timer);
        resolveUri(line.slice('MONGODB_URI='.length));
      }
    });
  });
  child.removeAllListeners('exit');

  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1000 });
  const deadline = Date.now() + (options.timeoutMs ?? 30000);
  for (;;) {
    try {
      await client.db('admin').command({ ping: 1 });
      break;
    } catch (e) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new EmbeddedDatabaseError(`FerretDB does not answer ping: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.close();

  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    uri,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      }
      release();
    },
  };
}
