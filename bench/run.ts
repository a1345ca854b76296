/**
 * The load benchmark (`npm run bench`; not part of `npm test`). Method and knobs: docs/performance.md.
 *
 * Starts the embedded FerretDB and the real server (src/main.ts, a separate process, METRICS_PUBLIC=true) on
 * loopback, and drives the server from this process:
 *   1. validation alone, in-process, one core (bench/validate.ts, run here too);
 *   2. for each store size of BENCH_SIZES (records; 25 a patient), the store grows to that size through
 *      `POST /fhir/$import` (synthetic patients from the fixture generator, fixed seed, generated a batch at a
 *      time; one consent per patient, written by this process), then autocannon measures at concurrency 16:
 *      read by id, the consent-gated listing (full page, then `_summary=true`) and uploads of ~30-entry
 *      discharge summaries (at the target size also at concurrency 1 and 64);
 *   3. at the target size (50,000, or the size nearest it), a bulk import of fresh discharge summaries through
 *      `$import`, timed end to end.
 * Warm-up runs are excluded. Every measured run records its rate and latency, the CPU milliseconds per request
 * spent by the server, the database (FerretDB) and this process (the load tool) from /proc, the database commands
 * per request (from the server's abha_vault_db_commands_total, read before and after), and the server's peak RSS.
 * Writes bench/results/<date>-<commit>.json and prints the targets table, the growth table and every run.
 *
 * Knobs: BENCH_SIZES (records, default 5000,50000,200000), BENCH_PATIENTS (one size of that many patients, when
 * BENCH_SIZES is unset), BENCH_SECONDS per measured run (default 6; each after a 1 s warm-up), BENCH_IMPORT_ITEMS
 * (default 10000), BENCH_SEED_PARALLEL (import requests in flight while seeding and importing, default 2),
 * BENCH_DB_COMMAND_METRICS=false (the server counts no commands: CPU without the driver's command monitoring, no DB
 * ops), BENCH_CPU_PROF=DIR (the server writes a V8 CPU profile there when it stops).
 */
import autocannon from 'autocannon';
import { execSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { MongoClient } from 'mongodb';
import { startEmbedded } from '../src/db/embedded.js';
import { startServer } from '../test/support/server.js';
import { signDevToken } from '../src/auth/token.js';
import { createGenerator, type SyntheticPatient } from '../fixtures/generator.js';
import { ConsentStore } from '../src/consents/store.js';

const PER_PATIENT = 25;
const SIZES = process.env.BENCH_SIZES
  ? process.env.BENCH_SIZES.split(',').map((s) => Number(s.trim()))
  : process.env.BENCH_PATIENTS
    ? [Number(process.env.BENCH_PATIENTS) * PER_PATIENT]
    : [5000, 50000, 200000];
if (!SIZES.length || SIZES.some((s, i) => !(s > 0) || (i > 0 && s <= SIZES[i - 1])))
  throw new Error(`BENCH_SIZES must be increasing record counts, e.g. 5000,50000,200000 (got ${SIZES.join(',')})`);
/** The size the targets are read at: 50,000 records, or the measured size nearest it. */
const TARGET_SIZE = SIZES.reduce((a, b) => (Math.abs(b - 50000) < Math.abs(a - 50000) ? b : a));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const WARMUP_SECONDS = 1;
const SEED = 20261125;
/** Items per `$import` request, and requests in flight (the server stores IMPORT_CONCURRENCY items of each at once). */
const IMPORT_BATCH = 500;
const SEED_PARALLEL = Number(process.env.BENCH_SEED_PARALLEL ?? 2);
/** Items of the import phase: 10,000 at the 50,000 size (a fifth of the size, 500 to 10,000, at another). */
const IMPORT_ITEMS = Number(
  process.env.BENCH_IMPORT_ITEMS ?? Math.min(10000, Math.max(IMPORT_BATCH, Math.round(TARGET_SIZE / 5))),
);
/** Distinct bundles generated for the upload and import phases (reused with a fresh Bundle.identifier each time). */
const DISTINCT_BODIES = 2000;
const HIP = 'BENCH-HIP',
  HIU = 'BENCH-HIU';
const DB_NAME = 'bench';
/** BENCH_DB_COMMAND_METRICS=false: the server counts no database commands (CPU without that cost; no DB ops). */
const COUNT_COMMANDS = process.env.BENCH_DB_COMMAND_METRICS !== 'false';

// ---------------------------------------------------------------------------------------------------------------
// Measuring: CPU and RSS from /proc, database commands from the server's /metrics

/** Server RSS (MB), sampled from /proc every 100 ms for the whole run: the peak of each phase and of the run. */
class RssSampler {
  phasePeak = 0;
  runPeak = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.sample();
  }
  sample() {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      if (!m) return;
      const mb = Number(m[1]) / 1024;
      this.phasePeak = Math.max(this.phasePeak, mb);
      this.runPeak = Math.max(this.runPeak, mb);
    } catch {
      /* gone */
    }
  }
  /** Peak RSS (MB) while `work` runs. */
  async during<T>(work: () => Promise<T>): Promise<[T, number]> {
    this.sample();
    this.phasePeak = 0;
    this.sample();
    const r = await work();
    this.sample();
    return [r, Math.round(this.phasePeak)];
  }
  stop() {
    clearInterval(this.timer);
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

interface Scrape {
  /** abha_vault_db_commands_total by command. */
  commands: Record<string, number>;
  /** abha_vault_http_requests_total summed over methods and statuses, by route. */
  requests: Record<string, number>;
  /** The same, answered 201 (a record stored). */
  created: Record<string, number>;
}

async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Scrape = { commands: {}, requests: {}, created: {} };
  for (const line of text.split('\n')) {
    let m = /^abha_vault_db_commands_total\{command="([^"]*)"\} (\S+)$/.exec(line);
    if (m) out.commands[m[1]] = Number(m[2]);
    m = /^abha_vault_http_requests_total\{[^}]*route="([^"]*)"[^}]*\} (\S+)$/.exec(line);
    if (m) out.requests[m[1]] = (out.requests[m[1]] ?? 0) + Number(m[2]);
    if (m && line.includes('status="201"')) out.created[m[1]] = (out.created[m[1]] ?? 0) + Number(m[2]);
  }
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((s, v) => s + v, 0);
const delta = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(
    Object.keys(b)
      .map((k) => [k, b[k] - (a[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
/** Routes the bench itself calls between measurements; not counted as requests of a run. */
const BENCH_ROUTES = new Set(['/metrics', '/readyz']);

/** Database commands each /metrics scrape causes (measured at start; expected 0), subtracted from every run. */
let commandsPerScrape = 0;

/**
 * The server's metrics once the database commands have stopped changing (the requests still in flight when the load
 * tool stopped have finished): polled every 200 ms until two answers agree, at most 30 s.
 */
async function settled(url: string): Promise<[Scrape, number]> {
  let last = await scrape(url);
  let scrapes = 1;
  for (let i = 0; i < 150; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const next = await scrape(url);
    scrapes++;
    const same = total(next.commands) - total(last.commands) <= commandsPerScrape;
    last = next;
    if (same) break;
  }
  return [last, scrapes];
}

interface Costs {
  /** CPU milliseconds per request (or import item): server, database, this process. */
  cpuMsPerRequest: { server: number; database: number; loadTool: number };
  /** Database commands per request (or item), and by command name. */
  dbOpsPerRequest: number;
  dbOpsByCommand: Record<string, number>;
  /** Requests the server answered in the run (its own count), the denominator of dbOpsPerRequest. */
  serverRequests: number;
  /** Of those, answered 201: records stored. */
  serverCreated: number;
  peakRssMB: number;
}

/**
 * Runs `work` and reports what it cost, per request the server answered between a reading of its metrics before the
 * run and one after it has settled (so the requests still in flight when the load tool stopped are finished, and
 * counted, with their CPU and commands), or per item when `work` gives `items` (an import). The load tool's CPU is
 * per request it completed (`requests`).
 */
async function measure<T>(
  ctx: { url: string; pids: { server: number; database: number }; rss: RssSampler },
  work: () => Promise<{ result: T; requests: number; items?: number }>,
): Promise<{ result: T; costs: Costs }> {
  const before = await scrape(ctx.url);
  const s0 = cpuSeconds(ctx.pids.server),
    d0 = cpuSeconds(ctx.pids.database),
    l0 = process.cpuUsage();
  const [w, peakRssMB] = await ctx.rss.during(work);
  const l = process.cpuUsage(l0);
  const [after, scrapes] = await settled(ctx.url);
  const s1 = cpuSeconds(ctx.pids.server),
    d1 = cpuSeconds(ctx.pids.database);
  const byRoute = delta(before.requests, after.requests);
  const served = total(byRoute) - [...BENCH_ROUTES].reduce((t, route) => t + (byRoute[route] ?? 0), 0);
  const byCommand = delta(before.commands, after.commands);
  const commands = total(byCommand) - scrapes * commandsPerScrape;
  const denominator = Math.max(1, w.items ?? served);
  const per = (sec: number, n = denominator) => round((sec * 1000) / Math.max(1, n));
  return {
    result: w.result,
    costs: {
      cpuMsPerRequest: {
        server: per(s1 - s0),
        database: per(d1 - d0),
        loadTool: per((l.user + l.system) / 1e6, w.requests),
      },
      dbOpsPerRequest: COUNT_COMMANDS ? round(commands / denominator) : NaN,
      dbOpsByCommand: Object.fromEntries(Object.entries(byCommand).map(([k, v]) => [k, round(v / denominator, 3)])),
      serverRequests: served,
      serverCreated: total(delta(before.created, after.created)),
      peakRssMB,
    },
  };
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
type RunResult = ReturnType<typeof summary> & Costs & { connections: number };

// ---------------------------------------------------------------------------------------------------------------
// $import: seeding and the import phase

const agent = new http.Agent({ keepAlive: true });

interface ImportAnswer {
  ids: string[];
  statuses: Record<string, number>;
  firstFailure?: unknown;
}

/** POST /fhir/$import with `body` (NDJSON); the answer lines read as they come. */
function postImport(url: string, token: string, body: string): Promise<ImportAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/fhir/$import`,
      {
        method: 'POST',
        agent,
        headers: {
          Authorization: `Bearer ${token}`,
          'Content-Type': 'application/x-ndjson',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.setEncoding('utf8');
        const answer: ImportAnswer = { ids: [], statuses: {} };
        let rest = '';
        res.on('data', (chunk: string) => {
          rest += chunk;
          if (res.statusCode !== 200) return;
          for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
            const line = rest.slice(0, nl);
            rest = rest.slice(nl + 1);
            if (!line.trim()) continue;
            const a = JSON.parse(line) as { status: number; id?: string };
            answer.statuses[a.status] = (answer.statuses[a.status] ?? 0) + 1;
            if (a.id && a.status < 300) answer.ids.push(a.id);
            else answer.firstFailure ??= a;
          }
        });
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(answer)
            : reject(new Error(`$import answered ${res.statusCode}: ${rest.slice(0, 500)}`)),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends the bodies `next` gives (undefined: none left), `parallel` at a time; each answer to `done`. */
async function importAll(
  url: string,
  token: string,
  parallel: number,
  next: () => string | undefined,
  done: (a: ImportAnswer, index: number) => Promise<void> | void,
) {
  let index = 0;
  let failure: unknown;
  const worker = async () => {
    for (let body = next(); body !== undefined && failure === undefined; body = next()) {
      const i = index++;
      try {
        await done(await postImport(url, token, body), i);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  if (failure !== undefined) throw failure;
}

const itemLine = (careContext: string, careContextDisplay: string | null, bundle: unknown) =>
  JSON.stringify({ careContext, careContextDisplay, bundle });

/** The same text with its first `"value":"<uuid>"` (Bundle.identifier.value in generated bundles) made fresh. */
const freshIdentifier = (text: string) => text.replace(/"value":"([0-9a-f-]{36})"/, `"value":"${uuidv4()}"`);

type ConsentNotice = Parameters<ConsentStore['apply']>[0];
const consentFor = (patient: SyntheticPatient): ConsentNotice => {
  const consentId = uuidv4();
  return {
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
  };
};

// ---------------------------------------------------------------------------------------------------------------

/**
 * The full listing's rate at about the target size in the newest earlier result file (not `own`, the one this run
 * will write), to compare with.
 */
function previousListing(own: string): { rate: number; file: string } | undefined {
  const dir = new URL('./results/', import.meta.url).pathname;
  let best: { rate: number; file: string; date: string } | undefined;
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('-validate.json') && f !== own);
  } catch {
    return undefined;
  }
  for (const file of files) {
    try {
      const j = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      let rate: number | undefined;
      const near = (n: number) => Math.abs(n - TARGET_SIZE) <= TARGET_SIZE * 0.25;
      if (j.results?.history && near(j.results.seed?.records ?? 0)) rate = j.results.history.requestsPerSec;
      const s = (j.results?.sizes ?? []).find((x: { size: number }) => x.size === TARGET_SIZE);
      if (s?.listing) rate = s.listing.requestsPerSec;
      if (rate !== undefined && (!best || j.date > best.date)) best = { rate, file, date: j.date };
    } catch {
      /* not a result */
    }
  }
  return best && { rate: best.rate, file: best.file };
}

async function main() {
  const started = Date.now();
  const dataDir = mkdtempSync(join(os.tmpdir(), 'abha-vault-bench-'));
  const dbDir = join(dataDir, 'db');
  console.log(
    `bench: store sizes ${SIZES.join(', ')} records (${PER_PATIENT} per patient), targets at ${TARGET_SIZE}, ` +
      `${SECONDS}s per measured run, data in ${dataDir}`,
  );
  const commit = (() => {
    try {
      return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  const resultFile = (date: string) => `${date.slice(0, 10)}-${commit}.json`;
  const listingBefore = previousListing(resultFile(new Date().toISOString()));

  // Phase 1: validation alone (in-process, one core), the same code as bench/validate.ts; its figures are read from
  // the file it says it wrote.
  const validateOut = execSync('npx tsx bench/validate.ts', {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, BENCH_SECONDS: '3' },
  });
  process.stdout.write(validateOut);
  const validate = (() => {
    const written = /^wrote (.+-validate\.json)$/m.exec(validateOut)?.[1];
    try {
      return written ? JSON.parse(readFileSync(written, 'utf8')) : undefined;
    } catch {
      return undefined;
    }
  })();

  // The database, then the server on it (the server makes the indexes). Sweeps that would send commands between
  // readings are put off beyond the run.
  const db = await startEmbedded({ dataDir: dbDir });
  const uri = db.uri;
  const prof = process.env.BENCH_CPU_PROF; // the server writes a V8 CPU profile there when it stops
  const server = await startServer(
    {
      MONGODB_URI: uri,
      MONGODB_DB: DB_NAME,
      DATA_DIR: dataDir,
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      METRICS_PUBLIC: 'true',
      DB_COMMAND_METRICS: String(COUNT_COMMANDS),
      CONSENT_SWEEP_MS: '86400000',
      HIP_LINK_SWEEP_MS: '86400000',
    },
    { nodeArgs: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [] },
  );
  const url = server.url;
  const pids = { server: server.process.pid!, database: db.process.pid! };
  const rss = new RssSampler(pids.server);
  const ctx = { url, pids, rss };
  const hipToken = await signDevToken(dataDir, { role: 'hip', facility: HIP, ttlSec: 86400 });
  const hiuToken = await signDevToken(dataDir, { role: 'hiu', facility: HIU, ttlSec: 86400 });

  // This process's own connection: consents (written directly) and the record count.
  const client = new MongoClient(uri);
  await client.connect();
  const consents = new ConsentStore(client.db(DB_NAME));
  await consents.ensureIndexes();
  const records = client.db(DB_NAME).collection('records');
  /** Records stored (one document per record in `records`): as last counted, and those stored since. */
  let stored = 0;
  const count = async () => {
    const t = Date.now();
    stored = await records.countDocuments();
    if (Date.now() - t > 2000)
      console.log(`  (counting ${stored} records took ${Math.round((Date.now() - t) / 1000)} s)`);
    return stored;
  };

  {
    const a = await scrape(url);
    await scrape(url);
    const b = await scrape(url);
    commandsPerScrape = Math.max(0, (total(b.commands) - total(a.commands)) / 2);
    if (commandsPerScrape) console.log(`  note: a /metrics scrape causes ${commandsPerScrape} database commands`);
  }

  const results: Record<string, unknown> = {};
  const sizes: Record<string, unknown>[] = [];
  results.sizes = sizes;
  const runs: { phase: string; size: number; r: RunResult }[] = [];

  // Seeded patients (the consent to list each one's records) and records (to read by id), in generation order.
  const g = createGenerator(SEED);
  const patients: string[] = []; // consent ids
  const idsByBatch: string[][] = [];
  let recordIds: string[] = [];
  let seedBatches = 0;

  /** Seeds patients of 25 records until the store holds about `size` records. */
  async function seedTo(size: number) {
    let left = Math.max(0, Math.round((size - stored) / PER_PATIENT));
    const t0 = Date.now();
    const first = seedBatches;
    let seeded = 0;
    let lastLog = Date.now();
    const batchConsents: ConsentNotice[][] = [];
    const [, peak] = await rss.during(() =>
      importAll(
        url,
        hipToken,
        SEED_PARALLEL,
        () => {
          if (left <= 0) return undefined;
          const n = Math.min(IMPORT_BATCH / PER_PATIENT, left);
          left -= n;
          const lines: string[] = [];
          const cs: ConsentNotice[] = [];
          for (let i = 0; i < n; i++) {
            const patient = g.patient();
            for (const r of g.records(patient, PER_PATIENT))
              lines.push(itemLine(r.careContext.referenceNumber, r.careContext.display, r.bundle));
            cs.push(consentFor(patient));
          }
          batchConsents[seedBatches++] = cs;
          return lines.join('\n') + '\n';
        },
        async (a, i) => {
          if (a.firstFailure)
            throw new Error(`seeding: ${JSON.stringify(a.statuses)}; first: ${JSON.stringify(a.firstFailure)}`);
          idsByBatch[first + i] = a.ids;
          const cs = batchConsents[first + i];
          await Promise.all(cs.map((c) => consents.apply(c, new Date())));
          seeded += a.ids.length;
          if (Date.now() - lastLog > 30000) {
            lastLog = Date.now();
            console.log(`  seeding: ${seeded} records in ${Math.round((Date.now() - t0) / 1000)} s`);
          }
        },
      ),
    );
    // In generation order, whatever order the answers came in.
    for (let b = first; b < seedBatches; b++) patients.push(...batchConsents[b].map((c) => c.consentId));
    recordIds = idsByBatch.flat();
    const seconds = (Date.now() - t0) / 1000;
    console.log(`  seeded ${seeded} records in ${Math.round(seconds)} s (${Math.round(seeded / seconds)}/s)`);
    return { records: seeded, seconds: Math.round(seconds), perSec: Math.round(seeded / seconds), peakRssMB: peak };
  }

  /** One autocannon phase: a warm-up, then the measured run with its costs. */
  async function phase(name: string, size: number, opts: (duration: number) => autocannon.Options) {
    await run(opts(WARMUP_SECONDS));
    await drain(url);
    const { result: r, costs } = await measure(ctx, async () => {
      const res = await run(opts(SECONDS));
      return { result: res, requests: res.requests.total };
    });
    const out: RunResult = { ...summary(r), connections: Number(opts(0).connections ?? 1), ...costs };
    runs.push({ phase: name, size, r: out });
    console.log(
      `  ${name}: ${out.requestsPerSec}/s p50 ${out.p50ms} ms p99 ${out.p99ms} ms non2xx ${out.non2xx}` +
        ` | server ${out.cpuMsPerRequest.server} ms, db ${out.cpuMsPerRequest.database} ms, ` +
        `${out.dbOpsPerRequest} db ops per request | RSS ${out.peakRssMB} MB`,
    );
    await drain(url);
    return out;
  }

  // Bodies for the uploads: ~30-entry discharge summaries, a new patient each, a fresh identifier per upload.
  const gu = createGenerator(SEED + 1);
  const uploadBodies = Array.from({ length: DISTINCT_BODIES }, () =>
    JSON.stringify(gu.record(gu.patient(), 'DischargeSummary', { entries: 30 }).bundle),
  );
  let nextUpload = 0;
  const uploadOpts = (connections: number) => (duration: number) => ({
    url: `${url}/fhir/Bundle`,
    connections,
    duration,
    method: 'POST' as const,
    headers: {
      Authorization: `Bearer ${hipToken}`,
      'Content-Type': 'application/fhir+json',
      'X-Care-Context': 'BENCH-CC',
    },
    requests: [
      {
        setupRequest: (req: any) => ({ ...req, body: freshIdentifier(uploadBodies[nextUpload++ % DISTINCT_BODIES]) }),
      },
    ],
  });
  let ri = 0;
  const readOpts = (duration: number): autocannon.Options => ({
    url: `${url}/fhir/Bundle/x`,
    connections: 16,
    duration,
    headers: { Authorization: `Bearer ${hipToken}` },
    requests: [
      { setupRequest: (req: any) => ({ ...req, path: `/fhir/Bundle/${recordIds[(ri++ * 7919) % recordIds.length]}` }) },
    ],
  });
  let pi = 0;
  const listingOpts =
    (query: string) =>
    (duration: number): autocannon.Options => ({
      url: `${url}/fhir/Bundle?${query}`,
      connections: 16,
      duration,
      headers: { Authorization: `Bearer ${hiuToken}` },
      requests: [
        {
          setupRequest: (req: any) => ({
            ...req,
            headers: { ...req.headers, 'X-Consent-Id': patients[(pi++ * 7919) % patients.length] },
          }),
        },
      ],
    });

  for (const size of SIZES) {
    console.log(`size ${size}:`);
    const seed = await seedTo(size);
    const at = await count();
    console.log(`  ${at} records stored (${patients.length} seeded patients)`);
    const s: Record<string, unknown> = { size, records: at, patients: patients.length, seed };
    sizes.push(s);
    s.read = await phase('read by id c16', size, readOpts);
    s.listing = await phase('listing c16', size, listingOpts('_count=25'));
    s.summaryListing = await phase('summary listing c16', size, listingOpts('_count=25&_summary=true'));
    const upload: Record<string, RunResult> = {};
    const beforeUploads = await scrape(url);
    for (const conc of size === TARGET_SIZE ? [1, 16, 64] : [16])
      upload[`c${conc}`] = await phase(`upload c${conc}`, size, uploadOpts(conc));
    s.upload = upload;
    // Counting takes seconds at these sizes: the records the uploads stored (warm-ups included) are added from the
    // server's own count instead.
    stored += total(delta(beforeUploads.created, (await settled(url))[0].created));
    s.recordsAfter = stored;

    if (size === TARGET_SIZE) {
      // The import phase: fresh discharge summaries (5 per new patient), the bodies made before the clock starts,
      // each item sent with a fresh Bundle.identifier.
      const gi = createGenerator(SEED + 2);
      const lines: string[] = [];
      while (lines.length < DISTINCT_BODIES) {
        const patient = gi.patient();
        for (let k = 0; k < 5; k++) {
          const r = gi.record(patient, 'DischargeSummary', { entries: 30 });
          lines.push(itemLine(r.careContext.referenceNumber, r.careContext.display, r.bundle));
        }
      }
      const batches = Math.ceil(IMPORT_ITEMS / IMPORT_BATCH);
      const bodies = Array.from({ length: batches }, (_, b) => {
        const n = Math.min(IMPORT_BATCH, IMPORT_ITEMS - b * IMPORT_BATCH);
        return () =>
          Array.from({ length: n }, (_, i) => freshIdentifier(lines[(b * IMPORT_BATCH + i) % lines.length])).join(
            '\n',
          ) + '\n';
      });
      const bytes = lines.reduce((t, l) => t + l.length, 0) / lines.length;
      await drain(url);
      console.log(
        `  import: ${IMPORT_ITEMS} discharge summaries (~${Math.round(bytes / 1000)} KB) in ${batches} requests`,
      );
      let imported = 0;
      let b = 0;
      const { result: seconds, costs } = await measure(ctx, async () => {
        const t0 = performance.now();
        await importAll(
          url,
          hipToken,
          SEED_PARALLEL,
          () => (b < batches ? bodies[b++]() : undefined),
          (a) => {
            if (a.firstFailure)
              throw new Error(`import: ${JSON.stringify(a.statuses)}; first: ${JSON.stringify(a.firstFailure)}`);
            imported += a.ids.length;
          },
        );
        return { result: (performance.now() - t0) / 1000, requests: imported, items: imported };
      });
      const imp = {
        items: imported,
        requests: batches,
        itemsPerRequest: IMPORT_BATCH,
        parallelRequests: SEED_PARALLEL,
        avgItemBytes: Math.round(bytes),
        seconds: round(seconds),
        itemsPerSec: Math.round(imported / seconds),
        ...costs,
      };
      results.import = { size, ...imp };
      console.log(
        `  import: ${imp.itemsPerSec}/s (${imp.seconds} s) | server ${imp.cpuMsPerRequest.server} ms, ` +
          `db ${imp.cpuMsPerRequest.database} ms, ${imp.dbOpsPerRequest} db ops per item | RSS ${imp.peakRssMB} MB`,
      );
      stored += imported;
      s.recordsAfterImport = stored;
    }
  }
  rss.sample();
  const runPeak = Math.round(rss.runPeak);
  rss.stop();
  await client.close();
  await server.stop();
  await db.stop();
  rmSync(dataDir, { recursive: true, force: true });

  // The targets table, at the target size.
  const rows: { target: string; goal: string; measured: string; met: string }[] = [];
  const row = (target: string, goal: string, measured: string, met: boolean | null) =>
    rows.push({ target, goal, measured, met: met === null ? '-' : met ? 'yes' : 'NO' });
  const at = sizes.find((s) => s.size === TARGET_SIZE)! as Record<string, any>;
  const u16 = at.upload.c16 as RunResult;
  const imp = results.import as any;
  const non2xx = (r: RunResult) => (r.non2xx ? `, ${r.non2xx} non-2xx of ${r.total}` : '');
  row(
    '1. bulk import DS30 ($import)',
    '>= 1000 items/s end to end',
    `${imp.itemsPerSec}/s (single uploads c16: ${u16.requestsPerSec}/s); peak RSS ${imp.peakRssMB} MB`,
    imp.itemsPerSec >= 1000,
  );
  const sl = at.summaryListing as RunResult;
  row(
    '2. listing _summary=true c16',
    '>= 1500/s, p99 <= 50 ms',
    `${sl.requestsPerSec}/s, p99 ${sl.p99ms} ms${non2xx(sl)}`,
    sl.requestsPerSec >= 1500 && sl.p99ms <= 50 && !sl.non2xx,
  );
  const fl = at.listing as RunResult;
  row(
    '2. listing full page c16',
    listingBefore ? `>= ${listingBefore.rate}/s (${listingBefore.file})` : '>= earlier rate (none found)',
    `${fl.requestsPerSec}/s, p99 ${fl.p99ms} ms${non2xx(fl)}`,
    listingBefore ? fl.requestsPerSec >= listingBefore.rate && !fl.non2xx : null,
  );
  row(
    '3. upload: server CPU',
    '<= 2 ms/upload',
    `${u16.cpuMsPerRequest.server} ms (c16)`,
    u16.cpuMsPerRequest.server <= 2,
  );
  row(
    '3. upload: DB operations',
    '<= 5/upload',
    COUNT_COMMANDS ? `${u16.dbOpsPerRequest} (c16)` : 'not counted (BENCH_DB_COMMAND_METRICS=false)',
    COUNT_COMMANDS ? u16.dbOpsPerRequest <= 5 : null,
  );
  row(
    '3. upload c16',
    '>= 300/s, p99 <= 100 ms',
    `${u16.requestsPerSec}/s, p99 ${u16.p99ms} ms${non2xx(u16)}`,
    u16.requestsPerSec >= 300 && u16.p99ms <= 100 && !u16.non2xx,
  );
  const rd = at.read as RunResult;
  row(
    '4. read by id: server CPU',
    '<= 0.4 ms/read',
    `${rd.cpuMsPerRequest.server} ms`,
    rd.cpuMsPerRequest.server <= 0.4,
  );
  row(
    '4. read by id c16',
    '>= 1500/s',
    `${rd.requestsPerSec}/s, p99 ${rd.p99ms} ms${non2xx(rd)}`,
    rd.requestsPerSec >= 1500 && !rd.non2xx,
  );

  // Growth: upload and read cost per request at each size, and the ratio last/first.
  const growth = sizes.map((s: Record<string, any>) => ({
    size: s.size as number,
    records: s.records as number,
    'upload/s': s.upload.c16.requestsPerSec,
    'upload server ms': s.upload.c16.cpuMsPerRequest.server,
    'upload DB ms': s.upload.c16.cpuMsPerRequest.database,
    'upload DB ops': s.upload.c16.dbOpsPerRequest,
    'read/s': s.read.requestsPerSec,
    'read server ms': s.read.cpuMsPerRequest.server,
    'read DB ms': s.read.cpuMsPerRequest.database,
    'read DB ops': s.read.dbOpsPerRequest,
  }));
  let ratios: Record<string, number | string> | undefined;
  if (growth.length > 1) {
    const [a, z] = [growth[0], growth[growth.length - 1]];
    ratios = { size: `${z.size / 1000}k/${a.size / 1000}k` };
    for (const k of Object.keys(a).filter((k) => k !== 'size' && k !== 'records'))
      ratios[k] = round((z as any)[k] / (a as any)[k]);
    // Flat: no cost per request more than 25% higher, and no rate more than 20% lower, at the largest size.
    const figures = Object.entries(ratios).filter(([k, v]) => k !== 'size' && Number.isFinite(v)) as [string, number][];
    const costs = figures.filter(([k]) => !k.endsWith('/s')).sort((a, b) => b[1] - a[1]);
    const rates = figures.filter(([k]) => k.endsWith('/s')).sort((a, b) => a[1] - b[1]);
    const flat = costs.every(([, v]) => v <= 1.25) && rates.every(([, v]) => v >= 0.8);
    const worst = `highest cost x${costs[0][1]} (${costs[0][0]}), lowest rate x${rates[0][1]} (${rates[0][0]})`;
    row(`5. flat as the store grows (${ratios.size})`, 'costs x<=1.25, rates x>=0.8', worst, flat);
  } else row('5. flat as the store grows', 'costs x<=1.25, rates x>=0.8', 'one size measured', null);
  row('6. server peak RSS, every phase', '<= 300 MB', `${runPeak} MB`, runPeak <= 300);

  const ds = validate?.rows?.find((r: any) => /DischargeSummary/.test(r.case));
  if (ds)
    row(
      'validation DS30, one core',
      '>= 1500/s, <= 5x JSON.parse',
      `${ds.validatePerSec}/s, ${ds.ratioToParse}x`,
      ds.validatePerSec >= 1500 && ds.ratioToParse <= 5,
    );
  results.validation = validate?.rows;
  results.peakRssMB = runPeak;

  const out = {
    benchmark: 'abha-vault load',
    date: new Date().toISOString(),
    commit,
    seed: SEED,
    sizes: SIZES,
    targetSize: TARGET_SIZE,
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
    growth,
    growthRatio: ratios,
  };
  console.log(`\nTargets at ${TARGET_SIZE} records:`);
  console.table(rows);
  console.log('Growth (upload c16, read by id c16; CPU ms and DB operations per request):');
  console.table(ratios ? [...growth, ratios] : growth);
  console.log('Every measured run (CPU ms and DB operations per request; import: per item):');
  console.table([
    ...runs.map(({ phase, size, r }) => ({
      phase,
      size,
      'req/s': r.requestsPerSec,
      'p50 ms': r.p50ms,
      'p99 ms': r.p99ms,
      non2xx: r.non2xx,
      'server ms': r.cpuMsPerRequest.server,
      'DB ms': r.cpuMsPerRequest.database,
      'load ms': r.cpuMsPerRequest.loadTool,
      'DB ops': r.dbOpsPerRequest,
      'RSS MB': r.peakRssMB,
    })),
    ...(imp
      ? [
          {
            phase: `import (${imp.items} items)`,
            size: imp.size,
            'req/s': imp.itemsPerSec,
            'p50 ms': '',
            'p99 ms': '',
            non2xx: '',
            'server ms': imp.cpuMsPerRequest.server,
            'DB ms': imp.cpuMsPerRequest.database,
            'load ms': imp.cpuMsPerRequest.loadTool,
            'DB ops': imp.dbOpsPerRequest,
            'RSS MB': imp.peakRssMB,
          },
        ]
      : []),
  ]);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/${resultFile(out.date)}`, import.meta.url);
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file.pathname} (${out.wallSeconds} s)`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
