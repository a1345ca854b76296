/**
 * `npm run import -- --url <server> --token <hip token> [--checkpoint FILE] [--rejected FILE] [--batch N]
 * [--restart] <file.ndjson>`: loads a hospital's existing bundles through `POST <url>/fhir/$import`.
 *
 * The input has one item a line, `{"careContext": "…", "careContextDisplay": "…", "bundle": {…}}`. It is read
 * as a stream (never whole) and sent in requests of --batch items (default 500), each request's body those
 * lines joined by "\n". The server answers each request with a stream of result lines, one per item, in order:
 * 201 stored, 200 unchanged (a repeat of the stored version), 4xx rejected (not stored), or 5xx (not done).
 *
 * Checkpoint and resume. A line is done once the server answered it 2xx or 4xx. The checkpoint (JSON, default
 * `<file>.checkpoint`) holds the longest run of done lines from the start of the file: `line` (how many input
 * lines are done), `byteOffset` (where the line after them starts), the counts over those lines, and how long
 * the rejected report was at that point. It is written atomically (temporary file, fsync, rename) after each
 * request's answers and every few seconds while a long answer streams in; the rejected report is appended
 * and fsynced before the checkpoint that counts its lines. Run the same command again after a failure or an
 * interruption and it seeks to `byteOffset` (earlier lines are not read again), cuts the rejected report back
 * to the length the checkpoint knew, and goes on. A checkpoint is used only for the same file (its absolute
 * path, a size not smaller than `byteOffset`, and the same 64 KiB before `byteOffset`); --restart ignores it.
 *
 * Delivery is therefore at least once: items that were sent but whose answers were lost (the connection
 * dropped, the process was stopped, or a later answer in the batch had not come yet) are sent again. That is
 * safe because the server stores by the bundle's identity and answers a repeat of the stored version 200
 * unchanged, so such an item is counted unchanged on the run that re-sends it; nothing is stored twice.
 * Within one run, a retry re-sends only the items of the batch that have no 2xx/4xx answer yet.
 *
 * Failures. A network error, a 5xx/429 answer, a 5xx result line or an answer stream that ends early is
 * retried with backoff (1 s, 4 s, 10 s; a try that gets further starts the backoff again); after that the
 * client exits 1, saying how to resume (the same command). A refusal of the whole request (401, 403, 413, 415,
 * …) stops at once with the server's OperationOutcome diagnostics and exit code 2, leaving the checkpoint as
 * it was. Ctrl-C (SIGINT) stops the request, writes the checkpoint and exits 130.
 *
 * Lines that are blank (only whitespace) are not items: the server ignores them and so does this client, which
 * counts them. Every other line is sent as it is, JSON or not (the server rejects what it cannot read, and
 * the rejection is reported); only a trailing CR and a UTF-8 byte-order mark at the start of the file are
 * taken off. Nothing of a bundle is printed: the terminal gets counts, and the rejected report
 * (default `<file>.rejected.ndjson`) gets one line per rejected item, `{"line", "identifier", "status",
 * "outcome"}` (the 1-based input line, the bundle's identifier when the line parses, the status, the server's
 * OperationOutcome).
 *
 * Exit codes: 0 done (rejections included; see the summary and the report), 1 failed after retries (resume
 * with the same command), 2 usage error or refused by the server, 130 interrupted.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const USAGE =
  'usage: npm run import -- --url <server> --token <hip token> [--checkpoint FILE] [--rejected FILE] [--batch N] [--restart] <file.ndjson>';

const DEFAULT_BATCH = 500;
const MAX_BATCH = 100_000;
/** A batch is also cut at this many bytes, so that a few very large bundles do not make one huge request. */
const DEFAULT_MAX_BATCH_BYTES = 64 * 1024 * 1024;
const DEFAULT_RETRY_DELAYS_MS = [1000, 4000, 10_000];
/** Bytes before byteOffset whose hash identifies the file a checkpoint was made for. */
const HASH_SPAN = 64 * 1024;

export interface ImportOptions {
  /** The server's base address (http or https); the route is `<url>/fhir/$import`. */
  url: string;
  /** A bearer token of role hip. */
  token: string;
  /** The NDJSON input. */
  file: string;
  /** Default `<file>.checkpoint`. */
  checkpoint?: string;
  /** Default `<file>.rejected.ndjson`. */
  rejected?: string;
  /** Items per request, default 500. */
  batch?: number;
  /** Ignore an existing checkpoint and start at line 1. */
  restart?: boolean;
  /** Aborting it stops the run as SIGINT does (ImportError, exit code 130). */
  signal?: AbortSignal;
  /** Waits before each retry of a failed request; default 1 s, 4 s, 10 s. */
  retryDelaysMs?: readonly number[];
  /** The checkpoint is also written this often while answers stream in; default 2000. */
  checkpointEveryMs?: number;
  /** A request with no bytes moving for this long fails (and is retried); default 300 s. */
  idleTimeoutMs?: number;
  maxBatchBytes?: number;
  /** Progress display: a bar on a TTY, a line every ~5 s otherwise ('auto', the default), or none. */
  progress?: 'auto' | 'bar' | 'plain' | 'off';
  /** Where progress and messages go; default process.stderr. */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

export interface ImportSummary {
  file: string;
  checkpoint: string;
  /** The rejected report, when it holds any rejection; else null. */
  rejectedFile: string | null;
  /** Input lines done (the whole file when the run completes), counting lines done by earlier runs. */
  lines: number;
  stored: number;
  unchanged: number;
  rejected: number;
  blank: number;
  /** The 1-based line this run started at when it resumed from a checkpoint; null when it started at line 1. */
  resumedAtLine: number | null;
  /** Items sent by this run, re-sends included. */
  sent: number;
  /** Items this run got a 2xx/4xx answer for. */
  answered: number;
  elapsedMs: number;
  /** `answered` per second. */
  rate: number;
}

/** Why a run stopped: `exitCode` is what the command exits with; `summary` has the counts as checkpointed. */
export class ImportError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    public summary?: ImportSummary,
  ) {
    super(message);
    this.name = 'ImportError';
  }
}

export interface Checkpoint {
  version: 1;
  /** Absolute path of the input. */
  file: string;
  /** The input's size in bytes when the checkpoint was written. */
  size: number;
  /** Input lines fully done. */
  line: number;
  /** Byte offset after the last done line: where a resumed run starts reading. */
  byteOffset: number;
  /** sha256 (hex) of the up to 64 KiB of the input that end at byteOffset. */
  sha256Before: string;
  stored: number;
  unchanged: number;
  rejected: number;
  blank: number;
  /** The rejected report, and its length in bytes when `line` lines were done. */
  rejectedFile: string;
  rejectedBytes: number;
  updated: string;
}

interface Item {
  /** 1-based line number in the input. */
  no: number;
  /** Byte offset after this line (and its newline). */
  end: number;
  bytes: Buffer;
  /** Blank lines between the previous item and this one. */
  blankBefore: number;
  result?: { status: number; outcome?: unknown };
}

/** A failure worth trying again (network, 5xx, an answer stream that ended early). */
class Retryable extends Error {}

/** Stops the run now, answering with the OperationOutcome's diagnostics. */
function refusal(status: number, text: string, contentType: string | undefined, items: number, bytes: number) {
  let why = describeOutcome(text);
  if (why === null) why = contentType?.includes('json') ? text.slice(0, 300) : `(a ${contentType ?? 'bodiless'} body)`;
  let hint = '';
  if (status === 401) hint = ' Check --token (expired?).';
  else if (status === 403) hint = ' The token must be of role hip.';
  else if (status === 413)
    hint = ` The request had ${items} items, ${(bytes / 1048576).toFixed(1)} MiB: try a smaller --batch.`;
  return `the server refused the request: HTTP ${status}: ${why}.${hint}`;
}

/** "diagnostics; diagnostics" of an OperationOutcome's text, or null when it is not one. */
function describeOutcome(text: string): string | null {
  try {
    return outcomeDiagnostics(JSON.parse(text));
  } catch {
    return null;
  }
}

function outcomeDiagnostics(outcome: unknown): string | null {
  const issues = (outcome as { issue?: unknown })?.issue;
  if (!Array.isArray(issues)) return null;
  const said = issues
    .map((i: { diagnostics?: unknown; code?: unknown }) =>
      typeof i?.diagnostics === 'string' ? i.diagnostics : typeof i?.code === 'string' ? i.code : '',
    )
    .filter(Boolean)
    .join('; ');
  return (said || 'an OperationOutcome without diagnostics').slice(0, 500);
}

function isBlank(bytes: Buffer): boolean {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x09 || b === 0x0d || b === 0x0b || b === 0x0c) continue;
    // Past ASCII whitespace: an ASCII character is content; otherwise decide as the server's trim() would.
    return b < 0x80 ? false : bytes.toString('utf8').trim() === '';
  }
  return true;
}

/** Every line of `path` from byte `start` on, numbered from `firstNo`, with the offset after it. */
async function* readLines(path: string, start: number, firstNo: number) {
  let pieces: Buffer[] = [];
  let lineStart = start;
  let no = firstNo;
  for await (const chunk of createReadStream(path, { start, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let from = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, from);
      if (nl < 0) {
        if (from < chunk.length) pieces.push(chunk.subarray(from));
        break;
      }
      const part = chunk.subarray(from, nl);
      const raw = pieces.length ? Buffer.concat([...pieces, part]) : part;
      pieces = [];
      const end = lineStart + raw.length + 1;
      yield { no, end, bytes: clean(raw, lineStart) };
      no++;
      lineStart = end;
      from = nl + 1;
    }
  }
  if (pieces.length) {
    const raw = Buffer.concat(pieces);
    yield { no, end: lineStart + raw.length, bytes: clean(raw, lineStart) };
  }
}

function clean(raw: Buffer, offset: number): Buffer {
  let bytes = raw;
  if (offset === 0 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  if (bytes.length && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
  return bytes;
}

function hashBefore(fd: number, offset: number): string {
  const length = Math.min(HASH_SPAN, offset);
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, offset - length + got);
    if (n === 0) break;
    got += n;
  }
  return createHash('sha256').update(buf.subarray(0, got)).digest('hex');
}

function hashOfFile(path: string, offset: number): string {
  const fd = openSync(path, 'r');
  try {
    return hashBefore(fd, offset);
  } finally {
    closeSync(fd);
  }
}

function writeAtomically(path: string, text: string) {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done, fail) => {
    if (signal.aborted) return fail(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      fail(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      done();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function networkError(e: unknown): string {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.code ?? err?.cause?.code;
  const message = err?.message ?? String(e);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}h${String(m).padStart(2, '0')}m${sec}s` : `${m}m${sec}s`;
}

/** Progress on stderr: a redrawn bar on a TTY, a plain line every ~5 s otherwise, or nothing. */
class Progress {
  private line = 0;
  private bytes = 0;
  private readonly samples: { t: number; line: number; bytes: number }[] = [];
  private readonly timer?: NodeJS.Timeout;
  private shown = false;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly mode: 'bar' | 'plain' | 'off',
    private readonly size: number,
    /** Lines and bytes done before this run. */
    private readonly startLine: number,
    private readonly startBytes: number,
  ) {
    this.line = startLine;
    this.bytes = startBytes;
    this.sample();
    if (mode !== 'off') {
      this.timer = setInterval(() => this.tick(), mode === 'bar' ? 250 : 5000);
      this.timer.unref();
    }
  }

  /** The item ending at `bytes`, line `line`, was answered. */
  update(line: number, bytes: number) {
    if (line > this.line) this.line = line;
    if (bytes > this.bytes) this.bytes = bytes;
  }

  log(message: string) {
    this.clear();
    this.out.write(`${message}\n`);
    if (this.mode === 'bar') this.draw();
  }

  stop() {
    clearInterval(this.timer);
    this.clear();
  }

  private sample() {
    const now = Date.now();
    this.samples.push({ t: now, line: this.line, bytes: this.bytes });
    const window = this.mode === 'plain' ? 30_000 : 10_000;
    while (this.samples.length > 2 && now - this.samples[0].t > window) this.samples.shift();
  }

  private tick() {
    this.sample();
    if (this.mode === 'bar') this.draw();
    else this.out.write(`import: ${this.text()}\n`);
  }

  text(): string {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    const seconds = (last.t - first.t) / 1000;
    const rate = seconds > 0 ? (last.line - first.line) / seconds : 0;
    const byteRate = seconds > 0 ? (last.bytes - first.bytes) / seconds : 0;
    const fraction = this.size > 0 ? Math.min(1, this.bytes / this.size) : 1;
    // Total lines estimated from the lines and bytes done so far; exact once the file is read.
    const total = this.bytes > 0 ? Math.max(this.line, Math.round((this.line * this.size) / this.bytes)) : 0;
    const eta = byteRate > 0 ? duration(((this.size - this.bytes) / byteRate) * 1000) : '?';
    const items = `${fmt(this.line)} / ${total ? `~${fmt(total)}` : '?'} lines`;
    return `${items} ${(fraction * 100).toFixed(1)}% ${fmt(rate)} items/s ETA ${eta}`;
  }

  private draw() {
    const text = this.text();
    const columns = this.out.columns ?? 80;
    const fraction = this.size > 0 ? Math.min(1, this.bytes / this.size) : 1;
    const width = Math.max(0, Math.min(30, columns - text.length - 4));
    const filled = Math.round(fraction * width);
    const bar = width ? `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ` : '';
    this.out.write(`\r\x1b[2K${(bar + text).slice(0, columns - 1)}`);
    this.shown = true;
  }

  private clear() {
    if (this.shown) this.out.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** Imports `opts.file`; resolves with the summary when every line is done, else rejects with an ImportError. */
export async function runImport(opts: ImportOptions): Promise<ImportSummary> {
  const started = Date.now();
  const file = resolve(opts.file);
  const checkpointPath = resolve(opts.checkpoint ?? `${file}.checkpoint`);
  const rejectedPath = resolve(opts.rejected ?? `${file}.rejected.ndjson`);
  const batchSize = opts.batch ?? DEFAULT_BATCH;
  const maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const delays = opts.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const checkpointEveryMs = opts.checkpointEveryMs ?? 2000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
  const signal = opts.signal ?? new AbortController().signal;
  const out = opts.stderr ?? process.stderr;

  const target = checkedUrl(opts.url);
  if (!opts.token || /\s/.test(opts.token)) throw new ImportError('--token must be a bearer token (no spaces)', 2);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH)
    throw new ImportError(`--batch must be a whole number from 1 to ${MAX_BATCH}`, 2);
  if (checkpointPath === file || rejectedPath === file || checkpointPath === rejectedPath)
    throw new ImportError('the input, --checkpoint and --rejected must be three different files', 2);
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ImportError(`${opts.file} is not a file`, 2);
    size = st.size;
  } catch (e) {
    if (e instanceof ImportError) throw e;
    throw new ImportError(`cannot read ${opts.file}: ${(e as Error).message}`, 2);
  }

  const mode =
    opts.progress === 'off' || opts.progress === 'bar' || opts.progress === 'plain'
      ? opts.progress
      : out.isTTY
        ? 'bar'
        : 'plain';
  const messages: string[] = [];
  let log: (message: string) => void = (message) => messages.push(message);

  // The committed state: what the checkpoint on disk says (or will say at the next write).
  const done = { line: 0, byteOffset: 0, stored: 0, unchanged: 0, rejected: 0, blank: 0 };
  let rejectedStart = 0;
  let resumedAtLine: number | null = null;
  if (opts.restart) {
    if (existsSync(checkpointPath)) log(`--restart: ignoring the checkpoint ${checkpointPath}; starting at line 1`);
  } else if (existsSync(checkpointPath)) {
    const cp = readCheckpoint(checkpointPath);
    const why =
      typeof cp === 'string'
        ? cp
        : cp.file !== file
          ? `it is for ${cp.file}`
          : size < cp.byteOffset
            ? `the file is now shorter (${size} bytes) than the checkpoint's offset (${cp.byteOffset})`
            : hashOfFile(file, cp.byteOffset) !== cp.sha256Before
              ? 'the file has changed before the checkpoint'
              : null;
    if (typeof cp === 'string' || why) {
      log(`not using the checkpoint ${checkpointPath}: ${why}; starting at line 1`);
    } else {
      Object.assign(done, {
        line: cp.line,
        byteOffset: cp.byteOffset,
        stored: cp.stored,
        unchanged: cp.unchanged,
        rejected: cp.rejected,
        blank: cp.blank ?? 0,
      });
      resumedAtLine = cp.line + 1;
      if (cp.rejectedFile === rejectedPath) rejectedStart = cp.rejectedBytes;
      else if (cp.rejected > 0)
        log(`the ${cp.rejected} rejections before line ${cp.line + 1} are in ${cp.rejectedFile}`);
      log(
        `resuming at line ${fmt(cp.line + 1)} (byte ${fmt(cp.byteOffset)} of ${fmt(size)}) from ${checkpointPath}: ` +
          `${fmt(cp.stored)} stored, ${fmt(cp.unchanged)} unchanged, ${fmt(cp.rejected)} rejected so far`,
      );
    }
  }
  const progress = new Progress(out, mode, size, done.line, done.byteOffset);
  log = (message) => progress.log(message);
  for (const m of messages) log(m);

  const agent =
    target.protocol === 'https:'
      ? new https.Agent({ keepAlive: true, maxSockets: 1 })
      : new http.Agent({ keepAlive: true, maxSockets: 1 });
  let rejectedFd: number | null = null;
  let rejectedBytes = rejectedStart;
  let tookOverReport = false;
  let lastWrite = Date.now();
  let sent = 0;
  let answered = 0;
  let batch: Item[] = [];
  /** Index in `batch` of the first item not yet committed. */
  let next = 0;

  const summary = (): ImportSummary => {
    const elapsedMs = Date.now() - started;
    return {
      file,
      checkpoint: checkpointPath,
      rejectedFile: done.rejected > 0 ? rejectedPath : null,
      lines: done.line,
      stored: done.stored,
      unchanged: done.unchanged,
      rejected: done.rejected,
      blank: done.blank,
      resumedAtLine,
      sent,
      answered,
      elapsedMs,
      rate: elapsedMs > 0 ? (answered * 1000) / elapsedMs : 0,
    };
  };

  /** The rejected report from the first commit on: cut back to what the checkpoint knew (or gone, from line 1). */
  const takeOverReport = () => {
    tookOverReport = true;
    if (!existsSync(rejectedPath)) {
      if (rejectedStart > 0)
        log(`the rejected report ${rejectedPath} is gone; it will hold the rejections from now on`);
      rejectedStart = rejectedBytes = 0;
      return;
    }
    if (rejectedStart === 0) {
      unlinkSync(rejectedPath);
      return;
    }
    const fd = openSync(rejectedPath, 'r+');
    if (fstatSync(fd).size < rejectedStart) {
      log(`the rejected report ${rejectedPath} is shorter than the checkpoint knew; appending to it`);
      rejectedStart = rejectedBytes = fstatSync(fd).size;
    } else ftruncateSync(fd, rejectedStart);
    rejectedFd = fd;
  };

  const report = (item: Item) => {
    let identifier: unknown = null;
    try {
      const parsed = JSON.parse(item.bytes.toString('utf8'));
      identifier = parsed?.bundle?.identifier ?? null;
    } catch {
      // not JSON: the report names the line only
    }
    const outcome = item.result?.outcome ?? null;
    const text = `${JSON.stringify({ line: item.no, identifier, status: item.result?.status, outcome })}\n`;
    rejectedFd ??= openSync(rejectedPath, 'a');
    const written = writeSync(rejectedFd, text, rejectedBytes);
    rejectedBytes += written;
  };

  /** Moves the committed state over the answered items at the head of the batch and writes the checkpoint. */
  const commit = (force = false) => {
    const before = next;
    if (!tookOverReport && (force || batch[next]?.result)) takeOverReport();
    let reported = false;
    while (next < batch.length && batch[next].result) {
      const item = batch[next];
      const status = item.result!.status;
      if (status === 200) done.unchanged++;
      else if (status < 300) done.stored++;
      else {
        done.rejected++;
        report(item);
        reported = true;
      }
      done.blank += item.blankBefore;
      done.line = item.no;
      done.byteOffset = item.end;
      next++;
    }
    if (next === before && !force) return;
    if (reported && rejectedFd !== null) fsyncSync(rejectedFd);
    const cp: Checkpoint = {
      version: 1,
      file,
      size,
      ...done,
      sha256Before: hashBefore(input, done.byteOffset),
      rejectedFile: rejectedPath,
      rejectedBytes,
      updated: new Date().toISOString(),
    };
    writeAtomically(checkpointPath, `${JSON.stringify(cp, null, 2)}\n`);
    lastWrite = Date.now();
  };

  const resumeHint = () =>
    `${fmt(done.line)} lines are done (checkpoint ${checkpointPath}); run the same command again to resume`;
  const interrupted = () =>
    new ImportError(
      `interrupted; run the same command to resume (${fmt(done.line)} lines done, checkpoint ${checkpointPath})`,
      130,
    );

  /** One request of the batch's items that have no answer yet; returns when each has one, else throws. */
  const attempt = async (todo: Item[]) => {
    const body = Buffer.concat(todo.flatMap((item, i) => (i ? [NEWLINE, item.bytes] : [item.bytes])));
    sent += todo.length;
    const res = await post(target, opts.token, body, agent, signal, idleTimeoutMs);
    const type = res.headers['content-type'];
    if (res.statusCode !== 200) {
      const text = await readSome(res, 1024 * 1024);
      const status = res.statusCode ?? 0;
      if (status >= 500 || status === 429 || status === 408)
        throw new Retryable(`HTTP ${status}: ${describeOutcome(text) ?? 'no OperationOutcome'}`);
      if (status >= 300 && status < 400)
        throw new ImportError(`the server redirected to ${res.headers.location}; give that address as --url`, 2);
      throw new ImportError(refusal(status, text, type, todo.length, body.length), 2);
    }
    if (!type?.toLowerCase().startsWith('application/x-ndjson')) {
      res.destroy();
      throw new ImportError(
        `the server answered 200 but not with application/x-ndjson (${type ?? 'no Content-Type'}): is --url the vault's address?`,
        2,
      );
    }
    const answers = new Set<number>();
    const failed: string[] = [];
    const onLine = (text: string) => {
      if (text.trim() === '') return;
      let a: { item?: unknown; status?: unknown; outcome?: unknown };
      try {
        a = JSON.parse(text);
      } catch {
        throw new ImportError(`the server's answer has a line that is not JSON; ${resumeHint()}`, 1);
      }
      const n = a?.item;
      const status = a?.status;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > todo.length || answers.has(n))
        throw new ImportError(`the server's answer names item ${String(n)} of ${todo.length}; ${resumeHint()}`, 1);
      if (
        typeof status !== 'number' ||
        !Number.isInteger(status) ||
        status < 200 ||
        status > 599 ||
        (status >= 300 && status < 400)
      )
        throw new ImportError(`the server's answer for item ${n} has status ${status}; ${resumeHint()}`, 1);
      answers.add(n);
      if (status >= 500) {
        failed.push(`item answered ${status}: ${outcomeDiagnostics(a.outcome) ?? 'no OperationOutcome'}`);
        return;
      }
      const item = todo[n - 1];
      item.result = status >= 400 ? { status, outcome: a.outcome } : { status };
      answered++;
      progress.update(item.no, item.end);
      if (Date.now() - lastWrite >= checkpointEveryMs) commit();
    };
    let pending: Buffer[] = [];
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        let from = 0;
        for (;;) {
          const nl = chunk.indexOf(0x0a, from);
          if (nl < 0) {
            if (from < chunk.length) pending.push(chunk.subarray(from));
            break;
          }
          const part = chunk.subarray(from, nl);
          onLine((pending.length ? Buffer.concat([...pending, part]) : part).toString('utf8'));
          pending = [];
          from = nl + 1;
        }
      }
    } catch (e) {
      if (e instanceof ImportError || signal.aborted) throw e;
      const why = failed.length
        ? ` (after ${failed.length} ${failed.length === 1 ? 'item' : 'items'} ${failed[0]})`
        : '';
      throw new Retryable(
        `the answer stream broke after ${answers.size} of ${todo.length} items: ${networkError(e)}${why}`,
      );
    } finally {
      if (!res.complete) res.destroy();
    }
    if (pending.length) {
      // A last line with no newline: whole JSON is an answer; a cut-off one means the stream ended early.
      const text = Buffer.concat(pending).toString('utf8');
      let whole = true;
      try {
        JSON.parse(text);
      } catch {
        whole = false;
      }
      if (whole) onLine(text);
    }
    if (failed.length) throw new Retryable(`${failed.length} ${failed.length === 1 ? 'item' : 'items'} ${failed[0]}`);
    if (answers.size < todo.length)
      throw new Retryable(`the answer stream ended after ${answers.size} of ${todo.length} items`);
  };

  /** Sends the batch, retrying what is not done, until every item has a 2xx/4xx answer. */
  const deliver = async () => {
    let failures = 0;
    for (;;) {
      const todo = batch.filter((item) => !item.result);
      if (!todo.length) break;
      if (signal.aborted) throw interrupted();
      let failure: string;
      try {
        await attempt(todo);
        commit();
        continue;
      } catch (e) {
        commit();
        if (signal.aborted) throw interrupted();
        if (e instanceof ImportError) throw e;
        failure = e instanceof Retryable ? e.message : networkError(e);
      }
      const left = batch.filter((item) => !item.result).length;
      if (left < todo.length) failures = 0; // this try got further: the backoff starts again
      if (failures >= delays.length)
        throw new ImportError(
          `could not import line ${fmt(batch[next].no)}: ${failure}; gave up after ${failures + 1} tries. ${resumeHint()}`,
          1,
        );
      const wait = delays[failures++];
      log(
        `request failed: ${failure}; ${fmt(left)} items of this batch not done; trying again in ${duration(wait)} ` +
          `(try ${failures + 1} of ${delays.length + 1})`,
      );
      try {
        await sleep(wait, signal);
      } catch {
        throw interrupted();
      }
    }
    batch = [];
    next = 0;
  };

  const input = openSync(file, 'r');
  try {
    let blankSince = 0;
    let batchBytes = 0;
    let last: { no: number; end: number } | null = null;
    for await (const line of readLines(file, done.byteOffset, done.line + 1)) {
      if (signal.aborted) throw interrupted();
      last = line;
      if (isBlank(line.bytes)) {
        blankSince++;
        continue;
      }
      batch.push({ ...line, blankBefore: blankSince });
      blankSince = 0;
      batchBytes += line.bytes.length + 1;
      if (batch.length >= batchSize || batchBytes >= maxBatchBytes) {
        await deliver();
        batchBytes = 0;
      }
    }
    if (batch.length) await deliver();
    // The end of the file: trailing blank lines are done too.
    if (last) {
      done.blank += blankSince;
      done.line = last.no;
      done.byteOffset = last.end;
    }
    commit(true);
    if (resumedAtLine !== null && !last) log('nothing left to import: the checkpoint is at the end of the file');
    return summary();
  } catch (e) {
    const err =
      e instanceof ImportError
        ? e
        : signal.aborted
          ? interrupted()
          : new ImportError(`import failed: ${networkError(e)}; ${resumeHint()}`, 1);
    err.summary = summary();
    throw err;
  } finally {
    progress.stop();
    agent.destroy();
    closeSync(input);
    if (rejectedFd !== null) closeSync(rejectedFd);
  }
}

const NEWLINE = Buffer.from('\n');

function checkedUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ImportError(`--url must be an http(s) address, e.g. https://vault.example.in (got ${url})`, 2);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new ImportError(`--url must be an http(s) address (got ${u.protocol.replace(':', '')})`, 2);
  if (u.username || u.password || u.search || u.hash)
    throw new ImportError('--url is the server address alone: no credentials, query or fragment', 2);
  return new URL('fhir/$import', u.href.endsWith('/') ? u.href : `${u.href}/`);
}

function readCheckpoint(path: string): Checkpoint | string {
  try {
    const cp = JSON.parse(readFileSync(path, 'utf8'));
    const counts = ['size', 'line', 'byteOffset', 'stored', 'unchanged', 'rejected', 'rejectedBytes'];
    if (
      cp?.version !== 1 ||
      typeof cp.file !== 'string' ||
      typeof cp.sha256Before !== 'string' ||
      typeof cp.rejectedFile !== 'string' ||
      counts.some((k) => !Number.isSafeInteger(cp[k]) || cp[k] < 0)
    )
      return 'it is not a checkpoint of this client';
    return cp as Checkpoint;
  } catch (e) {
    return `it cannot be read (${(e as Error).message})`;
  }
}

function post(
  target: URL,
  token: string,
  body: Buffer,
  agent: http.Agent,
  signal: AbortSignal,
  idleTimeoutMs: number,
): Promise<IncomingMessage> {
  return new Promise((done, fail) => {
    const request = target.protocol === 'https:' ? https.request : http.request;
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        signal,
        timeout: idleTimeoutMs,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/x-ndjson',
          accept: 'application/x-ndjson, application/fhir+json;q=0.9, application/json;q=0.8',
          'content-length': body.length,
          'user-agent': 'abha-vault-import',
        },
      },
      done,
    );
    req.on('timeout', () => req.destroy(new Error(`no data for ${duration(idleTimeoutMs)}`)));
    req.on('error', fail);
    req.end(body);
  });
}

/** Up to `max` bytes of a (refusal's) body, as text. */
async function readSome(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= max) break;
    }
  } catch {
    // what came is enough to say why
  } finally {
    res.destroy();
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max);
}

const resumed = (s: ImportSummary) =>
  s.resumedAtLine === null
    ? ''
    : s.resumedAtLine > s.lines
      ? ' (all by earlier runs: nothing was left to send)'
      : ` (resumed at line ${fmt(s.resumedAtLine)})`;

export function formatSummary(s: ImportSummary): string {
  const width = Math.max(...[s.stored, s.unchanged, s.rejected].map((n) => fmt(n).length));
  const row = (label: string, n: number, extra = '') => `  ${label.padEnd(10)}${fmt(n).padStart(width)}${extra}`;
  return [
    `${s.file}: ${fmt(s.lines)} lines done${resumed(s)}`,
    row('stored', s.stored),
    row('unchanged', s.unchanged),
    row('rejected', s.rejected, s.rejectedFile ? `  (see ${s.rejectedFile})` : ''),
    ...(s.blank ? [row('blank', s.blank, '  (blank lines, not items)')] : []),
    `  elapsed   ${duration(s.elapsedMs)}, ${fmt(s.rate)} items/s`,
  ].join('\n');
}

/** Parses the command line; throws an ImportError (exit 2) with the usage on a mistake. */
export function parseCli(argv: string[]): ImportOptions | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        checkpoint: { type: 'string' },
        rejected: { type: 'string' },
        batch: { type: 'string' },
        restart: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new ImportError(`${(e as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const problems: string[] = [];
  if (!values.url) problems.push('--url is required');
  if (!values.token) problems.push('--token is required');
  if (positionals.length !== 1) problems.push(`give one input file (got ${positionals.length})`);
  let batch: number | undefined;
  if (values.batch !== undefined) {
    batch = /^\d+$/.test(values.batch) ? Number(values.batch) : NaN;
    if (!(batch >= 1 && batch <= MAX_BATCH)) problems.push(`--batch must be a whole number from 1 to ${MAX_BATCH}`);
  }
  if (values.url) {
    try {
      checkedUrl(values.url);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length) throw new ImportError(`${problems.join('; ')}\n${USAGE}`, 2);
  return {
    url: values.url!,
    token: values.token!,
    file: positionals[0],
    checkpoint: values.checkpoint,
    rejected: values.rejected,
    batch,
    restart: values.restart ?? false,
  };
}

/** The command: returns its exit code. SIGINT/SIGTERM stop the run with the checkpoint written. */
export async function main(argv: string[]): Promise<number> {
  let opts: ImportOptions | 'help';
  try {
    opts = parseCli(argv);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (opts === 'help') {
    console.log(USAGE);
    return 0;
  }
  const stop = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    if (++signals > 1) {
      // Checkpoints are written synchronously and atomically: the one on disk is whole.
      process.stderr.write('\ninterrupted again; exiting now (run the same command to resume)\n');
      process.exit(name === 'SIGINT' ? 130 : 143);
    }
    stop.abort(new Error(name));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runImport({ ...opts, signal: stop.signal });
    console.log(formatSummary(summary));
    return 0;
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    console.error(`import: ${e.message}`);
    if (e.summary && e.summary.lines > 0) console.error(formatSummary(e.summary));
    return e.exitCode === 130 && String(stop.signal.reason?.message) === 'SIGTERM' ? 143 : e.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
