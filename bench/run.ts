/**
 * The load benchmark (`npm run bench`; not part of `npm test`).
 *
 * Starts the real server (src/main.ts, a separate process) on loopback with the
 * embedded FerretDB, loads synthetic patients from the fixture generator
 * (fixed seed), and drives it with autocannon from this process:
 *   1. validation alone, in-process, one core (see bench/validate.ts; run here too);
 *   2. upload of ~30-entry discharge summaries at concurrency 1, 16 and 64 (measured last);
 *   3. consent-gated history: a viewer listing a patient's records (25 per patient);
 *   4. read of one record by id;
 *   5. the server's peak RSS in each phase.
 * Warm-up runs are excluded. Writes bench/results/<date>-<commit>.json and prints a table.
 *
 * Each measured run also records the CPU milliseconds per request spent by the
 * server, the database (FerretDB) and the load tool, from /proc.
 *
 * Knobs: BENCH_PATIENTS (default 2000), BENCH_SECONDS per measured run (default 6; each after a 1 s warm-up),
 * BENCH_SEED_PARALLEL patients seeded at once (default 2),
 * BENCH_CPU_PROF=DIR (the server writes a V8 CPU profile there when it stops).
 */
import autocannon from 'autocannon';
import { execSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { MongoClient } from 'mongodb';
import { startEmbedded } from '../src/db/embedded.js';
import { startServer } from '../test/support/server.js';
import { signDevToken } from '../src/auth/token.js';
import { createGenerator } from '../fixtures/generator.js';
import { loadConfig, validatorOptions } from '../src/config.js';
import { collections, ensureIndexes } from '../src/records/model.js';
import { detectEngine } from '../src/db/engine.js';
import { RecordStore } from '../src/records/store.js';
import { DocumentValidator } from '../src/fhir/validate.js';
import { indexKeys } from '../src/records/index-keys.js';
import { ConsentStore } from '../src/consents/store.js';

const PATIENTS = Number(process.env.BENCH_PATIENTS ?? 2000);
const PER_PATIENT = 25;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const WARMUP_SECONDS = 1;
const SEED = 20261125;
// 1, 2 and 8 seed 4,000 records in 45, 41 and 44 s: the database is the limit
const SEED_PARALLEL = Number(process.env.BENCH_SEED_PARALLEL ?? 2);
const HIP = 'BENCH-HIP',
  HIU = 'BENCH-HIU';

const results: Record<string, unknown> = {};
const rows: { phase: string; target: string; measured: string; met: string }[] = [];
const row = (phase: string, target: string, measured: string, met: boolean | null) =>
  rows.push({ phase, target, measured, met: met === null ? '-' : met ? 'yes' : 'NO' });

/** Peak RSS (MB) of a process while `work` runs, sampled from /proc every 100 ms. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<[T, number]> {
  let peak = 0;
  const sample = () => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      /* gone */
    }
  };
  const timer = setInterval(sample, 100);
  sample();
  try {
    return [await work(), Math.round(peak)];
  } finally {
    clearInterval(timer);
    sample();
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/**
 * Runs `work` and reports the CPU milliseconds per request spent by the server, the database and this process (the load
 * tool).
 */
async function cpuPerRequest(
  pids: { server: number; database: number },
  work: () => Promise<autocannon.Result>,
): Promise<[autocannon.Result, Record<string, number>]> {
  const s0 = cpuSeconds(pids.server),
    d0 = cpuSeconds(pids.database),
    l0 = process.cpuUsage();
  const r = await work();
  const l = process.cpuUsage(l0);
  const n = Math.max(1, r.requests.total);
  const per = (sec: number) => Math.round(((sec * 1000) / n) * 100) / 100;
  return [
    r,
    {
      server: per(cpuSeconds(pids.server) - s0),
      database: per(cpuSeconds(pids.database) - d0),
      loadTool: per((l.user + l.system) / 1e6),
    },
  ];
}

/** Waits until the server answers promptly again (work queued by an earlier run has finished). */
async function drain(url: string) {
  for (let i = 0; i < 600; i++) {
    const t = Date.now();
    await fetch(`${url}/readyz`).catch(() => undefined);
    if (Date.now() - t < 20) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => autocannon(opts, (err, res) => (err ? reject(err) : resolve(res))));
}

const summary = (r: autocannon.Result) => ({
  requestsPerSec: Math.round(r.requests.average),
  p50ms: r.latency.p50,
  p99ms: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  total: r.requests.total,
});

async function main() {
  const started = Date.now();
  const dataDir = mkdtempSync(join(os.tmpdir(), 'abha-vault-bench-'));
  const dbDir = join(dataDir, 'db');
  console.log(`bench: ${PATIENTS} patients x ${PER_PATIENT} records, ${SECONDS}s per measured run, data in ${dataDir}`);

  // The database the server will use, started here so the bench can seed it directly.
  const db = await startEmbedded({ dataDir: dbDir });
  const uri = db.uri;
  const dbName = 'bench';

  // Phase 1: validation alone (in-process, one core), the same code as bench/validate.ts.
  execSync('npx tsx bench/validate.ts', { stdio: 'inherit', env: { ...process.env, BENCH_SECONDS: '3' } });

  // Seed: 2,000 patients x 25 records through the store's own upload path (validation included), and a consent per
  // patient.
  const config = loadConfig({ MONGODB_URI: uri, MONGODB_DB: dbName, DATA_DIR: dataDir });
  const client = new MongoClient(uri);
  await client.connect();
  const c = collections(client.db(dbName));
  await ensureIndexes(c);
  const store = new RecordStore(c, await detectEngine(client.db(dbName)));
  const consents = new ConsentStore(client.db(dbName));
  await consents.ensureIndexes();
  const validator = new DocumentValidator(validatorOptions(config));
  const g = createGenerator(SEED);
  const patients: { consentId: string; abhaAddress: string }[] = [];
  const recordIds: string[] = [];
  const seedStart = Date.now();
  // Patients are generated in order (fixed seed) and stored SEED_PARALLEL at a time, each patient's 25 records at once.
  const seedOne = async (patient: ReturnType<typeof g.patient>, recs: ReturnType<typeof g.records>) => {
    const uploaded = await Promise.all(
      recs.map(async (r) => {
        const text = JSON.stringify(r.bundle);
        const valid = validator.validateText(text);
        return store.upload({
          text,
          keys: indexKeys(valid),
          provider: HIP,
          careContext: r.careContext.referenceNumber,
          careContextDisplay: r.careContext.display,
          now: new Date(),
        });
      }),
    );
    const consentId = uuidv4();
    await consents.apply(
      {
        consentId,
        status: 'GRANTED',
        consentDetail: {
          consentId,
          createdAt: new Date().toISOString(),
          patient: { id: patient.abhaAddress },
          careContexts: patient.careContexts.map((cc) => ({ careContextReference: cc.referenceNumber })),
          purpose: { code: 'CAREMGT' },
          hip: { id: HIP },
          hiu: { id: HIU },
          hiTypes: ['Prescription', 'DiagnosticReport', 'DischargeSummary'],
          permission: {
            accessMode: 'VIEW',
            dateRange: { from: '1900-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' },
            dataEraseAt: '2100-01-01T00:00:00Z',
            frequency: { unit: 'HOUR', value: 1_000_000 },
          },
        },
      },
      new Date(),
    );
    return { consentId, abhaAddress: patient.abhaAddress, recordIds: uploaded.map((u) => u.record.recordId) };
  };
  for (let p = 0; p < PATIENTS; p += SEED_PARALLEL) {
    const batch = Array.from({ length: Math.min(SEED_PARALLEL, PATIENTS - p) }, () => {
      const patient = g.patient();
      return { patient, recs: g.records(patient, PER_PATIENT) };
    });
    for (const s of await Promise.all(batch.map((b) => seedOne(b.patient, b.recs)))) {
      recordIds.push(...s.recordIds);
      patients.push({ consentId: s.consentId, abhaAddress: s.abhaAddress });
    }
    if (patients.length % 250 < SEED_PARALLEL)
      console.log(
        `  seeded ${patients.length} patients (${recordIds.length} records) in ${Math.round((Date.now() - seedStart) / 1000)} s`,
      );
  }
  results.seed = {
    patients: PATIENTS,
    records: recordIds.length,
    seconds: Math.round((Date.now() - seedStart) / 1000),
  };
  await client.close();

  // BENCH_CPU_PROF=DIR: the server writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
  const prof = process.env.BENCH_CPU_PROF;
  const server = await startServer(
    { MONGODB_URI: uri, MONGODB_DB: dbName, DATA_DIR: dataDir, RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' },
    { nodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [] },
  );
  const pid = server.process.pid!;
  const pids = { server: pid, database: db.process.pid! };
  const hipToken = await signDevToken(dataDir, { role: 'hip', facility: HIP, ttlSec: 3600 });
  const hiuToken = await signDevToken(dataDir, { role: 'hiu', facility: HIU, ttlSec: 3600 });

  // Phase 3: consent-gated history, 25 records per patient.
  let pi = 0;
  const historyOpts = (duration: number): autocannon.Options => ({
    url: `${server.url}/fhir/Bundle?_count=25`,
    connections: 16,
    duration,
    headers: { Authorization: `Bearer ${hiuToken}` },
    requests: [
      {
        setupRequest: (req: any) => ({
          ...req,
          headers: { ...req.headers, 'X-Consent-Id': patients[pi++ % patients.length].consentId },
        }),
      },
    ],
  });
  await run(historyOpts(WARMUP_SECONDS));
  const [[h, hCpu], hRss] = await peakRss(pid, () => cpuPerRequest(pids, () => run(historyOpts(SECONDS))));
  results.history = { ...summary(h), peakRssMB: hRss, connections: 16, cpuMsPerRequest: hCpu };
  row(
    'consent-gated history (25/patient)',
    '>= 1500/s, p99 <= 50 ms',
    `${Math.round(h.requests.average)}/s, p99 ${h.latency.p99} ms`,
    h.requests.average >= 1500 && h.latency.p99 <= 50,
  );

  // Phase 4: read one record by id.
  let ri = 0;
  const readOpts = (duration: number): autocannon.Options => ({
    url: `${server.url}/fhir/Bundle/x`,
    connections: 16,
    duration,
    headers: { Authorization: `Bearer ${hipToken}` },
    requests: [
      { setupRequest: (req: any) => ({ ...req, path: `/fhir/Bundle/${recordIds[(ri++ * 7919) % recordIds.length]}` }) },
    ],
  });
  await run(readOpts(WARMUP_SECONDS));
  const [[rd, rdCpu], rdRss] = await peakRss(pid, () => cpuPerRequest(pids, () => run(readOpts(SECONDS))));
  results.read = { ...summary(rd), peakRssMB: rdRss, connections: 16, cpuMsPerRequest: rdCpu };
  row(
    'read by id',
    '>= 3000/s',
    `${Math.round(rd.requests.average)}/s, p99 ${rd.latency.p99} ms`,
    rd.requests.average >= 3000,
  );

  // Phase 2 (run last: it leaves the database busy): uploads of ~30-entry discharge summaries (new identifiers, so
  // every upload stores).
  const gu = createGenerator(SEED + 1);
  const uploadBodies = Array.from({ length: 4000 }, () => {
    const p = gu.patient();
    return JSON.stringify(gu.record(p, 'DischargeSummary', { entries: 30 }).bundle);
  });
  let next = 0;
  const uploadOpts = (connections: number, duration: number): autocannon.Options => ({
    url: `${server.url}/fhir/Bundle`,
    connections,
    duration,
    method: 'POST',
    headers: {
      Authorization: `Bearer ${hipToken}`,
      'Content-Type': 'application/fhir+json',
      'X-Care-Context': 'BENCH-CC',
    },
    requests: [
      {
        setupRequest: (req: any) => ({
          ...req,
          body: uploadBodies[next++ % uploadBodies.length].replace(
            /"value":"([0-9a-f-]{36})"/,
            `"value":"${uuidv4()}"`,
          ),
        }),
      },
    ],
  });
  const uploads: Record<string, unknown> = {};
  for (const conc of [1, 16, 64]) {
    await run(uploadOpts(conc, WARMUP_SECONDS)); // warm-up, excluded
    await drain(server.url);
    const [[r, cpu], rss] = await peakRss(pid, () => cpuPerRequest(pids, () => run(uploadOpts(conc, SECONDS))));
    uploads[`c${conc}`] = { ...summary(r), peakRssMB: rss, cpuMsPerRequest: cpu };
    console.log(
      `  upload c=${conc}: ${Math.round(r.requests.average)}/s p50 ${r.latency.p50} ms p99 ${r.latency.p99} ms non2xx ${r.non2xx}`,
    );
  }
  results.upload = uploads;
  const u16 = uploads.c16 as ReturnType<typeof summary> & { peakRssMB: number };
  row(
    'upload DS30 c=16',
    '>= 500/s, p99 <= 100 ms',
    `${u16.requestsPerSec}/s, p99 ${u16.p99ms} ms`,
    u16.requestsPerSec >= 500 && u16.p99ms <= 100,
  );

  const peak = Math.max(...[u16.peakRssMB, hRss, rdRss, ...Object.values(uploads).map((u: any) => u.peakRssMB)]);
  row('server peak RSS', '<= 400 MB', `${peak} MB`, peak <= 400);

  await server.stop();
  await db.stop();
  rmSync(dataDir, { recursive: true, force: true });

  const validate = (() => {
    try {
      const dir = new URL('./results/', import.meta.url);
      const f = execSync(`ls -t ${dir.pathname}*-validate.json | head -1`, { encoding: 'utf8' }).trim();
      return JSON.parse(readFileSync(f, 'utf8'));
    } catch {
      return undefined;
    }
  })();
  const ds = validate?.rows?.find((r: any) => /DischargeSummary/.test(r.case));
  if (ds)
    row(
      'validation DS30, one core',
      '>= 1500/s, <= 5x JSON.parse',
      `${ds.validatePerSec}/s, ${ds.ratioToParse}x`,
      ds.validatePerSec >= 1500 && ds.ratioToParse <= 5,
    );
  results.validation = validate?.rows;

  const commit = (() => {
    try {
      return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  const out = {
    benchmark: 'abha-vault load',
    date: new Date().toISOString(),
    commit,
    seed: SEED,
    secondsPerRun: SECONDS,
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      database: 'embedded FerretDB 1.24.2 (SQLite)',
    },
    wallSeconds: Math.round((Date.now() - started) / 1000),
    results,
    table: rows,
  };
  console.table(rows);
  const cpuRows = [
    ['history', results.history],
    ['read by id', results.read],
    ...Object.entries(uploads).map(([k, v]) => [`upload ${k}`, v]),
  ] as [string, any][];
  console.table(
    cpuRows.map(([phase, r]) => ({
      phase,
      'server ms/req': r.cpuMsPerRequest.server,
      'database ms/req': r.cpuMsPerRequest.database,
      'load tool ms/req': r.cpuMsPerRequest.loadTool,
    })),
  );
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/${out.date.slice(0, 10)}-${commit}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file.pathname} (${out.wallSeconds} s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
