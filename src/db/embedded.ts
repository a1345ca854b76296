/**
 * The embedded default database: FerretDB 1.24.2 (MongoDB wire protocol,
 * SQLite storage), built once from the Go module proxy into ./.cache and run
 * on a free loopback port with its data in DATA_DIR. Used when MONGODB_URI is
 * unset (by `npm start` and by the tests).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { MongoClient } from 'mongodb';

export const PROJECT_ROOT = resolve(new URL('../../', import.meta.url).pathname);
const SOURCE_DIR = join(PROJECT_ROOT, 'src', 'db', 'ferretdb');

export class EmbeddedDatabaseError extends Error {}

export const NO_GO_MESSAGE =
  'The embedded database (FerretDB) is built with Go, which is not installed: install Go 1.24 or newer (https://go.dev/doc/install), or set MONGODB_URI to use your own MongoDB.';

/** Path of the launcher binary, building it first if this source has not been built yet. */
export function ensureLauncher(log: (msg: string) => void = () => {}, opts: { cacheRoot?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const env = opts.env ?? process.env;
  const hash = createHash('sha256');
  const sources = ['go.mod', 'go.sum', ...readdirSync(SOURCE_DIR).filter((f) => f.endsWith('.go')).sort()];
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
    throw new EmbeddedDatabaseError(`Building FerretDB failed (go build exited ${build.status}):\n${(build.stderr || '').slice(-2000)}`);
  }
  renameSync(tmp, bin); // atomic: concurrent builders both end with one good binary
  return bin;
}

export interface EmbeddedDatabase {
  uri: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts FerretDB with its files in `dataDir` and resolves once it answers ping. */
export async function startEmbedded(options: { dataDir: string; listen?: string; log?: (msg: string) => void; timeoutMs?: number }): Promise<EmbeddedDatabase> {
  const bin = ensureLauncher(options.log);
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const args = [dataDir, ...(options.listen ? [options.listen] : [])];
  // stdin stays open as a lifeline: the launcher exits when this process is gone.
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });

  const uri = await new Promise<string>((resolveUri, reject) => {
    const timer = setTimeout(() => reject(new EmbeddedDatabaseError(`FerretDB did not start within ${options.timeoutMs ?? 30000} ms: ${stderr}`)), options.timeoutMs ?? 30000);
    child.once('exit', (code) => { clearTimeout(timer); reject(new EmbeddedDatabaseError(`FerretDB exited (${code}) before it was ready: ${stderr.trim()}`)); });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('MONGODB_URI=')) { clearTimeout(timer); resolveUri(line.slice('MONGODB_URI='.length)); }
    });
  });
  child.removeAllListeners('exit');

  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 1000 });
  const deadline = Date.now() + (options.timeoutMs ?? 30000);
  for (;;) {
    try { await client.db('admin').command({ ping: 1 }); break; } catch (e) {
      if (Date.now() > deadline) { child.kill('SIGKILL'); throw new EmbeddedDatabaseError(`FerretDB does not answer ping: ${(e as Error).message}`); }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await client.close();

  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    uri,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
