// The `npm run import` client (src/records/import-client.ts) against a fake of the server's `POST /fhir/$import`
// contract: NDJSON in, one result line per non-blank line out, stored by bundle identifier (201 the first time,
// 200 for a repeat), 400/422 for what it cannot take. The fake can drop the connection part-way through an
// answer (after storing more than it answered, as a server that dies mid-batch may), answer an item 503 once,
// refuse the whole request, or hold its answers back.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  ImportError,
  formatSummary,
  main,
  runImport,
  type Checkpoint,
  type ImportOptions,
} from '../../src/records/import-client.js';

const TOKEN = 'hip-token';
const SECRET = 'Ramesh Secretname';

interface Plan {
  /** Answer this many items of the request, then drop the connection. */
  answer: number;
  /** Store this many more items (without answering them) before dropping. */
  alsoStore?: number;
}

interface Fake {
  url: string;
  /** Bundle identifier value → how many times it was stored new (201). */
  stored: Map<string, number>;
  /** Every item line the server received, request after request. */
  received: string[];
  requests: number;
  /** One plan per request, taken in turn; a request with none is answered whole. */
  plans: (Plan | undefined)[];
  /** Refuse every request with this status. */
  refuse?: number;
  /** Identifier values answered 503 the first time they are seen. */
  unavailableOnce: Set<string>;
  /** Wait this long before each answer line. */
  delayMs: number;
  /** Called as each request arrives (1-based). */
  onRequest?: (n: number) => void;
  close(): Promise<void>;
}

const outcome = (code: string, diagnostics: string) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code, diagnostics }],
});

async function fakeServer(): Promise<Fake> {
  const fake: Fake = {
    url: '',
    stored: new Map(),
    received: [],
    requests: 0,
    plans: [],
    unavailableOnce: new Set(),
    delayMs: 0,
    close: () => new Promise((done) => server.close(() => done())),
  };
  const versions = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy()); // a client that went away mid-request
  });
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const n = ++fake.requests;
    fake.onRequest?.(n);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const refuse = (status: number, o: object) =>
      res.writeHead(status, { 'content-type': 'application/fhir+json' }).end(JSON.stringify(o));
    if (req.method !== 'POST' || req.url !== '/fhir/$import') return refuse(404, outcome('not-found', 'no route'));
    if (fake.refuse) return refuse(fake.refuse, outcome('login', 'the bearer token has expired'));
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return refuse(401, outcome('login', 'no valid token'));
    if (req.headers['content-type'] !== 'application/x-ndjson') return refuse(415, outcome('not-supported', 'ndjson'));
    const lines = Buffer.concat(chunks)
      .toString('utf8')
      .split('\n')
      .filter((l) => l.trim() !== '');
    fake.received.push(...lines);
    const plan = fake.plans[n - 1];
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    const answer = (item: number, line: string) => {
      let parsed: any;
      try {
        parsed = JSON.parse(line);
      } catch {
        return { item, status: 400, outcome: outcome('structure', 'the line is not JSON') };
      }
      const key = parsed?.bundle?.identifier?.value;
      if (typeof key !== 'string')
        return { item, status: 422, outcome: outcome('required', 'Bundle.identifier is required') };
      if (parsed.bundle.type !== 'document')
        return { item, status: 422, outcome: outcome('value', 'Bundle.type must be document') };
      if (fake.unavailableOnce.delete(key))
        return { item, status: 503, outcome: outcome('transient', 'the database is not answering') };
      if (versions.has(key)) return { item, status: 200, id: key, version: 1, location: `/fhir/Bundle/${key}` };
      versions.set(key, 1);
      fake.stored.set(key, (fake.stored.get(key) ?? 0) + 1);
      return { item, status: 201, id: key, version: 1, location: `/fhir/Bundle/${key}/_history/1` };
    };
    const write = (text: string) => new Promise<void>((done) => res.write(text, () => done()));
    for (let i = 0; i < lines.length; i++) {
      if (plan && i >= plan.answer) {
        for (let j = i; j < Math.min(lines.length, i + (plan.alsoStore ?? 0)); j++) answer(j + 1, lines[j]);
        await new Promise((done) => setTimeout(done, 20)); // let the answers already written reach the client
        req.socket.destroy();
        return;
      }
      if (fake.delayMs) await new Promise((done) => setTimeout(done, fake.delayMs));
      await write(`${JSON.stringify(answer(i + 1, lines[i]))}\n`);
    }
    res.end();
  };
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

const bundle = (i: number, extra: object = {}) => ({
  resourceType: 'Bundle',
  type: 'document',
  identifier: { system: 'https://hospital.example.in/bundles', value: `b-${i}` },
  entry: [{ resource: { resourceType: 'Patient', name: [{ text: `${SECRET} ${i}` }] } }],
  ...extra,
});
const itemLine = (i: number, extra: object = {}) =>
  JSON.stringify({ careContext: `OP-${i}`, careContextDisplay: `Visit ${i}`, bundle: bundle(i, extra) });

let dir: string;
let fake: Fake;
let stderr: string;
const sink = () =>
  new Writable({
    write(chunk, _enc, done) {
      stderr += chunk.toString();
      done();
    },
  });

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'abha-vault-import-'));
  fake = await fakeServer();
  stderr = '';
});
afterEach(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

function writeInput(name: string, lines: string[], end = '\n'): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + end);
  return path;
}
const items = (n: number) => Array.from({ length: n }, (_, i) => itemLine(i + 1));
const run = (file: string, opts: Partial<ImportOptions> = {}) =>
  runImport({
    url: fake.url,
    token: TOKEN,
    file,
    batch: 10,
    retryDelaysMs: [0, 0],
    progress: 'off',
    stderr: sink(),
    ...opts,
  });
const failure = async (p: Promise<unknown>): Promise<ImportError> => {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(ImportError);
  return e as ImportError;
};
const checkpointOf = (file: string): Checkpoint => JSON.parse(readFileSync(`${file}.checkpoint`, 'utf8'));
/** How many times the server received input line `i` (1-based, of items(n)). */
const timesReceived = (i: number) => fake.received.filter((l) => l === itemLine(i)).length;

describe('a whole file', () => {
  it('is imported in batches and counted; the checkpoint ends at the end of the file', async () => {
    const file = writeInput('all.ndjson', items(25));
    const summary = await run(file);
    expect(summary).toMatchObject({ lines: 25, stored: 25, unchanged: 0, rejected: 0, rejectedFile: null });
    expect(summary.resumedAtLine).toBeNull();
    expect(fake.requests).toBe(3);
    expect(fake.stored.size).toBe(25);
    expect([...fake.stored.values()].every((n) => n === 1)).toBe(true);
    expect(checkpointOf(file)).toMatchObject({ file, line: 25, byteOffset: statSync(file).size, stored: 25 });
    expect(existsSync(`${file}.rejected.ndjson`)).toBe(false);
    expect(formatSummary(summary)).toMatch(/stored\s+25/);

    // The same command again has nothing to do; --restart sends everything again, answered unchanged.
    expect(await run(file)).toMatchObject({ lines: 25, stored: 25, sent: 0 });
    expect(fake.requests).toBe(3);
    expect(stderr).toContain('nothing left to import');
    expect(await run(file, { restart: true })).toMatchObject({ lines: 25, stored: 0, unchanged: 25, sent: 25 });
    expect(fake.stored.size).toBe(25);
    expect(stderr).not.toContain(SECRET);
  });

  it('sends each request as its lines joined by newlines, with the bearer token and the NDJSON type', async () => {
    const file = writeInput('one.ndjson', items(3), '');
    expect(await run(file, { batch: 500 })).toMatchObject({ lines: 3, stored: 3 });
    expect(fake.requests).toBe(1);
    expect(fake.received).toEqual(items(3));
  });
});

describe('rejected items', () => {
  it('are reported with their input line numbers and identifiers, and not counted as stored', async () => {
    const lines = [
      itemLine(1), // 1
      JSON.stringify({ careContext: 'OP-2', bundle: { resourceType: 'Bundle', type: 'document' } }), // 2: no identifier
      '{"careContext": "OP-3", "bundle": ', // 3: not JSON
      '', // 4: blank
      '   ', // 5: blank
      itemLine(6, { type: 'collection' }) + '\r', // 6: rejected, CRLF
      itemLine(7) + '\r', // 7
      itemLine(8), // 8
    ];
    const file = writeInput('mixed.ndjson', ['\ufeff' + lines[0], ...lines.slice(1)]);
    const summary = await run(file, { batch: 3 });
    expect(summary).toMatchObject({ lines: 8, stored: 3, unchanged: 0, rejected: 3, blank: 2 });
    expect(summary.rejectedFile).toBe(`${file}.rejected.ndjson`);
    expect([...fake.stored.keys()].sort()).toEqual(['b-1', 'b-7', 'b-8']);
    const report = readFileSync(`${file}.rejected.ndjson`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(report).toEqual([
      { line: 2, identifier: null, status: 422, outcome: outcome('required', 'Bundle.identifier is required') },
      { line: 3, identifier: null, status: 400, outcome: outcome('structure', 'the line is not JSON') },
      {
        line: 6,
        identifier: { system: 'https://hospital.example.in/bundles', value: 'b-6' },
        status: 422,
        outcome: outcome('value', 'Bundle.type must be document'),
      },
    ]);
    expect(formatSummary(summary)).toContain(`see ${file}.rejected.ndjson`);
    // The byte-order mark and the CRs are not sent; blank lines are not sent.
    expect(fake.received[0]).toBe(lines[0]);
    expect(fake.received).toHaveLength(6);
    expect(fake.received.some((l) => l.endsWith('\r'))).toBe(false);
  });

  it('are not reported twice when a run is resumed, and a fresh start drops the old report', async () => {
    const lines = items(20).map((l, i) => (i % 5 === 4 ? '{not json' : l)); // lines 5, 10, 15, 20 rejected
    const file = writeInput('r.ndjson', lines);
    fake.plans = [undefined, { answer: 7 }, { answer: 0 }, { answer: 0 }];
    await failure(run(file));
    expect(checkpointOf(file)).toMatchObject({ line: 17, rejected: 3 });
    // As if the process had died after appending a rejection and before the checkpoint that counts it.
    appendFileSync(`${file}.rejected.ndjson`, '{"line":18,"identifier":null,"status":400,"outcome":null}\n');
    fake.plans = [];
    expect(await run(file)).toMatchObject({ lines: 20, stored: 16, rejected: 4 });
    const report = () =>
      readFileSync(`${file}.rejected.ndjson`, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).line);
    expect(report()).toEqual([5, 10, 15, 20]);
    expect(await run(file, { restart: true })).toMatchObject({ stored: 0, unchanged: 16, rejected: 4 });
    expect(report()).toEqual([5, 10, 15, 20]);
  });
});

describe('an interrupted import', () => {
  it('resumes from the checkpoint: nothing is stored twice, done lines are not sent again, counts add up', async () => {
    const file = writeInput('big.ndjson', items(30));
    // Request 2 (lines 11-20) is answered for lines 11-14; line 15 is stored too, but the connection drops before
    // its answer. Both retries of lines 15-20 drop at once, so the run gives up.
    fake.plans = [undefined, { answer: 4, alsoStore: 1 }, { answer: 0 }, { answer: 0 }];
    const e = await failure(run(file));
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/run the same command again to resume/);
    expect(e.summary).toMatchObject({ lines: 14, stored: 14 });
    expect(stderr).toMatch(/trying again/);
    const cp = checkpointOf(file);
    const offset14 = Buffer.byteLength(items(14).join('\n') + '\n');
    expect(cp).toMatchObject({ file, line: 14, byteOffset: offset14, stored: 14, unchanged: 0, rejected: 0 });
    expect(fake.requests).toBe(4);
    // The retries re-sent only the lines of the batch that had no answer.
    expect(fake.received.slice(20)).toEqual([...items(20).slice(14), ...items(20).slice(14)]);

    fake.plans = [];
    fake.received = [];
    const summary = await run(file);
    expect(stderr).toMatch(/resuming at line 15 /);
    expect(summary).toMatchObject({ lines: 30, stored: 29, unchanged: 1, rejected: 0, resumedAtLine: 15 });
    expect(fake.received).toEqual(items(30).slice(14)); // nothing before the checkpoint was sent again
    expect(fake.stored.size).toBe(30);
    expect([...fake.stored.values()].every((n) => n === 1)).toBe(true);
    expect(checkpointOf(file)).toMatchObject({ line: 30, stored: 29, unchanged: 1 });
  });

  it('retries a batch whose connection dropped, sending only the unanswered items', async () => {
    const file = writeInput('retry.ndjson', items(20));
    fake.plans = [{ answer: 3 }, { answer: 2 }];
    const summary = await run(file);
    expect(summary).toMatchObject({ lines: 20, stored: 20, unchanged: 0 });
    for (let i = 1; i <= 20; i++) expect(timesReceived(i), `line ${i}`).toBe(i <= 3 || i > 10 ? 1 : i <= 5 ? 2 : 3);
    expect(fake.requests).toBe(4);
  });

  it('sends an item answered 5xx again, and the lines after it are not sent again', async () => {
    const file = writeInput('503.ndjson', items(12));
    fake.unavailableOnce.add('b-4');
    const summary = await run(file);
    expect(summary).toMatchObject({ lines: 12, stored: 12, unchanged: 0 });
    expect(stderr).toMatch(/503: the database is not answering/);
    for (let i = 1; i <= 12; i++) expect(timesReceived(i), `line ${i}`).toBe(i === 4 ? 2 : 1);
  });

  it('gives up after the retries when the server cannot be reached, saying how to resume', async () => {
    const file = writeInput('down.ndjson', items(3));
    await fake.close();
    const e = await failure(run(file));
    expect(e.exitCode).toBe(1);
    expect(e.message).toMatch(/ECONNREFUSED.*gave up after 3 tries.*run the same command again to resume/);
    expect(existsSync(`${file}.checkpoint`)).toBe(false);
    fake = await fakeServer(); // for afterEach
  });

  it('fails a request that stops moving for the idle timeout, and retries it', async () => {
    const file = writeInput('idle.ndjson', items(3));
    fake.delayMs = 300;
    fake.onRequest = (n) => n === 2 && (fake.delayMs = 0);
    const summary = await run(file, { idleTimeoutMs: 100 });
    expect(summary).toMatchObject({ lines: 3, rejected: 0 });
    expect(summary.stored + summary.unchanged).toBe(3);
    expect(stderr).toMatch(/no data for 0\.1 s/);
  });

  it('stops on abort (as on SIGINT) with exit code 130 and the checkpoint written', async () => {
    const file = writeInput('abort.ndjson', items(30));
    const stop = new AbortController();
    fake.onRequest = (n) => n === 2 && stop.abort();
    const e = await failure(run(file, { signal: stop.signal }));
    expect(e.exitCode).toBe(130);
    expect(e.message).toMatch(/^interrupted; run the same command to resume/);
    expect(checkpointOf(file)).toMatchObject({ line: 10, stored: 10 });
    fake.onRequest = undefined;
    // The server may have gone on storing request 2's items after the client left: those are answered unchanged.
    const summary = await run(file);
    expect(summary).toMatchObject({ lines: 30, rejected: 0, resumedAtLine: 11 });
    expect(summary.stored + summary.unchanged).toBe(30);
    expect(fake.stored.size).toBe(30);
    expect([...fake.stored.values()].every((n) => n === 1)).toBe(true);
    // Lines 11-20 were in flight (the server may or may not have read them); the others were sent once.
    for (let i = 1; i <= 30; i++) expect(timesReceived(i), `line ${i}`).toBe(i <= 10 || i > 20 ? 1 : timesReceived(i));
    for (let i = 11; i <= 20; i++) expect(timesReceived(i), `line ${i}`).toBeGreaterThanOrEqual(1);
  });
});

describe('a refusal of the whole request', () => {
  it('stops with exit code 2, the diagnostics, and no checkpoint', async () => {
    const file = writeInput('refused.ndjson', items(5));
    fake.refuse = 401;
    const e = await failure(run(file));
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('HTTP 401: the bearer token has expired');
    expect(existsSync(`${file}.checkpoint`)).toBe(false);
    expect(existsSync(`${file}.rejected.ndjson`)).toBe(false);
    expect(fake.requests).toBe(1); // not retried
  });

  it('leaves an earlier checkpoint as it was', async () => {
    const file = writeInput('refused-later.ndjson', items(30));
    fake.plans = [undefined, { answer: 0 }, { answer: 0 }, { answer: 0 }];
    await failure(run(file));
    const before = readFileSync(`${file}.checkpoint`, 'utf8');
    expect(JSON.parse(before)).toMatchObject({ line: 10 });
    fake.refuse = 403;
    expect((await failure(run(file))).exitCode).toBe(2);
    expect(readFileSync(`${file}.checkpoint`, 'utf8')).toBe(before);
  });

  it('of a wrong token is one too', async () => {
    const file = writeInput('token.ndjson', items(2));
    const e = await failure(run(file, { token: 'wrong' }));
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(/401: no valid token. Check --token/);
  });
});

describe('a checkpoint', () => {
  it('for a different file is not used', async () => {
    const a = writeInput('a.ndjson', items(20));
    const b = writeInput('b.ndjson', items(20));
    const checkpoint = join(dir, 'shared.checkpoint');
    fake.plans = [undefined, { answer: 0 }, { answer: 0 }, { answer: 0 }];
    await failure(run(a, { checkpoint }));
    expect(JSON.parse(readFileSync(checkpoint, 'utf8'))).toMatchObject({ file: a, line: 10 });
    fake.plans = [];
    fake.received = [];
    expect(await run(b, { checkpoint })).toMatchObject({ lines: 20, resumedAtLine: null, stored: 10, unchanged: 10 });
    expect(stderr).toContain(`not using the checkpoint ${checkpoint}: it is for ${a}`);
    expect(fake.received).toEqual(items(20));
  });

  it('for a file that changed before its offset is not used', async () => {
    const file = writeInput('changed.ndjson', items(20));
    fake.plans = [undefined, { answer: 0 }, { answer: 0 }, { answer: 0 }];
    await failure(run(file));
    writeFileSync(file, items(20).join('\n').replace('OP-3', 'OP-X') + '\n');
    fake.plans = [];
    fake.received = [];
    expect(await run(file)).toMatchObject({ lines: 20, resumedAtLine: null });
    expect(stderr).toContain('the file has changed before the checkpoint');
    expect(fake.received).toHaveLength(20);
  });

  it('of a file that was cut shorter is not used', async () => {
    const file = writeInput('short.ndjson', items(20));
    fake.plans = [undefined, { answer: 0 }, { answer: 0 }, { answer: 0 }];
    await failure(run(file));
    writeInput('short.ndjson', items(5));
    fake.plans = [];
    expect(await run(file)).toMatchObject({ lines: 5, resumedAtLine: null });
    expect(stderr).toMatch(/the file is now shorter/);
  });
});

describe('progress', () => {
  it('is a bar with count, percent, rate and ETA, and shows no patient data', async () => {
    const file = writeInput('slow.ndjson', items(12));
    fake.delayMs = 60;
    const out = Object.assign(sink(), { isTTY: true, columns: 100 });
    await run(file, { progress: 'auto', stderr: out });
    expect(stderr).toMatch(/\[#*-*\] \d+ \/ ~\d+ lines \d+\.\d% \d+ items\/s ETA /);
    expect(stderr).not.toContain(SECRET);
  });
});

describe('the command line', () => {
  let errors: string[];
  beforeEach(() => {
    errors = [];
    vi.spyOn(console, 'error').mockImplementation((...args) => void errors.push(args.join(' ')));
  });
  afterEach(() => vi.restoreAllMocks());

  it.each([
    [['--token', 't', 'f.ndjson'], /--url is required/],
    [['--url', 'http://x', 'f.ndjson'], /--token is required/],
    [['--url', 'ftp://x', '--token', 't', 'f.ndjson'], /--url must be an http\(s\) address/],
    [['--url', 'not a url', '--token', 't', 'f.ndjson'], /--url must be an http\(s\) address/],
    [['--url', 'http://x', '--token', 't'], /give one input file/],
    [['--url', 'http://x', '--token', 't', '--batch', '0', 'f'], /--batch must be a whole number/],
    [['--url', 'http://x', '--token', 't', '--batch', '2.5', 'f'], /--batch must be a whole number/],
    [['--url', 'http://x', '--token', 't', '--bogus', 'f'], /Unknown option '--bogus'/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    expect(await main(argv)).toBe(2);
    expect(errors.join('\n')).toMatch(message);
    expect(errors.join('\n')).toContain('usage: npm run import');
  });

  it('names a missing input file (exit 2)', async () => {
    expect(await main(['--url', fake.url, '--token', TOKEN, join(dir, 'none.ndjson')])).toBe(2);
    expect(errors.join('\n')).toMatch(/cannot read .*none\.ndjson/);
  });

  it('runs as a script, and SIGINT exits 130 with the checkpoint written', async () => {
    const file = writeInput('cli.ndjson', items(30));
    fake.delayMs = 20;
    const script = fileURLToPath(new URL('../../src/records/import-client.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', script, '--url', fake.url, '--token', TOKEN, '--batch', '10', file],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    fake.onRequest = (n) => n === 2 && setTimeout(() => child.kill('SIGINT'), 50);
    const code = await new Promise((done) => child.on('exit', (c) => done(c)));
    expect(err).toContain('interrupted; run the same command to resume');
    expect(code).toBe(130);
    const line = checkpointOf(file).line;
    expect(line).toBeGreaterThanOrEqual(10);
    expect(line).toBeLessThan(30);
    expect(out + err).not.toContain(SECRET);
  }, 20_000);
});
