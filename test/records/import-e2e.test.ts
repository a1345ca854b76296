// `npm run import`'s client (src/records/import-client.ts) against the real server on loopback: a file of a
// hospital's bundles, some invalid, imported with an interruption part-way and resumed from the checkpoint. Every
// valid item ends up stored exactly once, under its care context; every invalid one is in the rejected report with
// its input line and OperationOutcome, and nothing of it is stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveTestApp, type ServedApp } from '../support/browser.js';
import { createGenerator } from '../../fixtures/generator.js';
import { ImportError, runImport } from '../../src/records/import-client.js';

const HOSPITAL = 'HOSP-IMPORT-E2E';
let s: ServedApp;
let dir: string;
beforeAll(async () => {
  s = await serveTestApp();
  dir = mkdtempSync(join(tmpdir(), 'abha-vault-import-'));
});
afterAll(async () => {
  await s?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run import against the server', () => {
  it('an import interrupted part-way and resumed stores each valid item once and reports each rejected one', async () => {
    const g = createGenerator(99);
    const lines: string[] = [];
    const invalid = new Set<number>();
    const valid: { identifier: string; careContext: string }[] = [];
    for (let p = 0; p < 8; p++) {
      const patient = g.patient();
      for (const r of g.records(patient, 5)) {
        const bundle = r.bundle as any;
        if (lines.length % 9 === 4) {
          delete bundle.entry[0].resource.subject; // no patient: the IG and R4 reject it
          invalid.add(lines.length + 1);
        } else valid.push({ identifier: bundle.identifier.value, careContext: r.careContext.referenceNumber });
        lines.push(JSON.stringify({ careContext: r.careContext.referenceNumber, bundle }));
      }
    }
    const file = join(dir, 'history.ndjson');
    writeFileSync(file, lines.join('\n') + '\n');
    const token = await s.t.token('hip', HOSPITAL);
    const opts = { url: s.url, token, file, batch: 4, progress: 'off' as const, retryDelaysMs: [10] };

    // First run: stopped (as Ctrl-C does) once the first checkpoint is written.
    const stop = new AbortController();
    const watcher = setInterval(() => {
      if (existsSync(`${file}.checkpoint`)) stop.abort();
    }, 5);
    const first = await runImport({ ...opts, signal: stop.signal }).catch((e) => e);
    clearInterval(watcher);
    expect(first).toBeInstanceOf(ImportError);
    expect((first as ImportError).exitCode).toBe(130);
    const checkpoint = JSON.parse(readFileSync(`${file}.checkpoint`, 'utf8'));
    expect(checkpoint.line).toBeGreaterThan(0);
    expect(checkpoint.line).toBeLessThan(lines.length);

    // Second run: resumes after the checkpoint and finishes.
    const done = await runImport(opts);
    expect(done.resumedAtLine).toBe(checkpoint.line + 1);
    expect(done.lines).toBe(lines.length);
    expect(done.rejected).toBe(invalid.size);
    expect(done.stored + done.unchanged).toBe(valid.length);

    // Stored exactly once each, under its care context.
    const { versions, current } = s.t.collections;
    expect(await versions.countDocuments({ provider: HOSPITAL })).toBe(valid.length);
    for (const v of valid) {
      const doc = await current.findOne({ provider: HOSPITAL, identifierKey: { $regex: v.identifier } });
      expect(doc?.careContext).toBe(v.careContext);
      expect(doc?.version).toBe(1);
    }
    // Rejected: reported with line and outcome, never stored.
    const report = readFileSync(done.rejectedFile!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(report.map((r) => r.line).sort((a, b) => a - b)).toEqual([...invalid].sort((a, b) => a - b));
    for (const r of report) {
      expect(r.status).toBe(422);
      expect(r.outcome.resourceType).toBe('OperationOutcome');
      expect(JSON.stringify(r.outcome)).toMatch(/subject/);
      const stored = await current.countDocuments({ identifierKey: { $regex: r.identifier.value } });
      expect(stored).toBe(0);
    }
  });
});
