/**
 * schemathesis against the running server, driven by its own OpenAPI
 * document: generated (valid and invalid) requests to every non-FHIR route
 * must never get a 5xx, and every response must match the document.
 *
 * Needs Python 3; scripts/schemathesis.sh installs schemathesis into
 * .cache/schemathesis-venv on first use (in beforeAll, whose budget allows
 * for it). When it cannot, this test fails with pip's error (it is not skipped).
 * The run itself takes ~100 s (MAX_TIME=90 s of generated requests).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/db/embedded.js';
import { signDevToken } from '../../src/auth/token.js';
import { startServer, type RunningServer } from '../support/server.js';
import { startStandInGateway, type StandInGateway } from '../support/stand-in-gateway.js';

const RUN_TIMEOUT_MS = 170_000;

let dataDir: string;
let gw: StandInGateway;
let server: RunningServer | undefined;
let baseUrl: string;
let token: string;

const SCRIPT = join(PROJECT_ROOT, 'scripts/schemathesis.sh');
const REPORT = join(PROJECT_ROOT, '.cache/schemathesis-report.txt');

beforeAll(async () => {
  // Install first (a no-op once .cache/schemathesis-venv holds the pinned version); pip's error fails the test.
  const install = await run(SCRIPT, ['--install'], {}, 170_000);
  if (install.code !== 0)
    throw new Error(`schemathesis could not be installed (exit ${install.code}):\n${install.output}`);
  dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-schemathesis-'));
  // Sign first: this creates the development key the server then verifies with.
  token = await signDevToken(dataDir, { role: 'cm', facility: 'sbx' });
  gw = await startStandInGateway();
  const env = {
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    MONGODB_URI: inject('mongoUri'),
    MONGODB_DB: `schemathesis_${process.pid}_${Date.now().toString(36)}`,
    // A gateway, so health-information requests are served rather than refused with 503.
    GATEWAY_BASE_URL: gw.url,
    GATEWAY_CLIENT_ID: 'abha-vault',
    GATEWAY_CLIENT_SECRET: 's3cret',
    GATEWAY_TIMEOUT_MS: '2000',
    // Exercise the handlers rather than the rate limiter (429 is documented all the same).
    RATE_LIMIT_PER_MINUTE: '0',
  };
  server = await startServer(env);
  baseUrl = server.url;
  expect((await fetch(`${baseUrl}/openapi.json`)).status).toBe(200);
  // The token must be accepted, or schemathesis would only ever see 401s.
  const probe = await fetch(`${baseUrl}/fhir/AuditEvent?patient-abha=someone@sbx`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(probe.status, await probe.text()).toBe(200);
}, 300_000);

afterAll(async () => {
  await server?.stop();
  await gw?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: PROJECT_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const timer = setTimeout(() => {
      output += `\n[test] killed after ${timeoutMs} ms`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('schemathesis', () => {
  it(
    'finds no server errors and no responses that break the OpenAPI document',
    async () => {
      const { code, output } = await run(
        SCRIPT,
        [],
        { BASE_URL: baseUrl, TOKEN: token, MAX_EXAMPLES: '20', MAX_TIME: '90' },
        RUN_TIMEOUT_MS - 5_000,
      );
      // The whole report goes to a file, not to the test log: its closing banner is laid out like
      // pytest's ("== 2 warnings in 90.00s =="), which log readers would take for the run's own end.
      writeFileSync(REPORT, output);
      const cases = /Test cases:\s*\n?\s*([^\n]+)/.exec(output)?.[1]?.trim() ?? 'no summary';
      console.log(`[schemathesis] exit ${code}; test cases ${cases}; report in ${REPORT}`);
      expect(output, output).not.toMatch(/Server error/);
      // Only the admin/hiu reads may refuse the cm token (403); no operation may answer only 401.
      expect(output, output).not.toMatch(/401 Unauthorized \(/);
      expect(code, output).toBe(0);
    },
    RUN_TIMEOUT_MS,
  );
});
