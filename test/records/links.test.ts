/**
 * Links never follow the Host header: self, next, fullUrl and Location are
 * built on PUBLIC_BASE_URL, or (development) on the address the server
 * listens on; NODE_ENV=production requires PUBLIC_BASE_URL.
 */
import { afterAll, describe, expect, inject, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders } from '../support/app.js';
import { startServer } from '../support/server.js';
import { signDevToken } from '../../src/auth/token.js';
import { loadConfig } from '../../src/config.js';
import { publicBaseUrl } from '../../src/app.js';

const prescription = () => {
  const b = JSON.parse(readFileSync(new URL('../../fixtures/examples/prescription.json', import.meta.url), 'utf8'));
  b.identifier.value = uuidv4();
  return JSON.stringify(b);
};
const urlsOf = (b: { link?: { url: string }[]; entry?: { fullUrl: string }[] }) => [
  ...(b.link ?? []).map((l) => l.url),
  ...(b.entry ?? []).map((e) => e.fullUrl),
];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('links follow configuration, never the Host header', () => {
  it('with PUBLIC_BASE_URL unset, a request for Host evil.example.com gets links on the configured listening address', async () => {
    const t = await createTestApp({ HOST: '127.0.0.1', PORT: '8123' });
    try {
      for (let i = 0; i < 2; i++) {
        const up = await t.app.request('http://evil.example.com/fhir/Bundle', {
          method: 'POST',
          body: prescription(),
          headers: { ...uploadHeaders(), Authorization: `Bearer ${await t.token('hip', 'HOSP-L')}` },
        });
        expect(up.status).toBe(201);
        expect(up.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:8123\/fhir\/Bundle\//);
      }
      const res = await t.app.request('http://evil.example.com/fhir/Bundle?_count=1', {
        headers: { Host: 'evil.example.com', Authorization: `Bearer ${await t.token('hip', 'HOSP-L')}` },
      });
      const b = await res.json();
      const urls = urlsOf(b);
      expect(urls.length).toBeGreaterThanOrEqual(3); // self, next, one fullUrl
      for (const u of urls) expect(u, u).toMatch(/^http:\/\/127\.0\.0\.1:8123\//);
    } finally {
      await t.close();
    }
  });

  it('with PUBLIC_BASE_URL set, every link is on it', async () => {
    const t = await createTestApp({ PUBLIC_BASE_URL: 'https://vault.hospital.example/' });
    try {
      await t.app.request('http://evil.example.com/fhir/Bundle', {
        method: 'POST',
        body: prescription(),
        headers: { ...uploadHeaders(), Authorization: `Bearer ${await t.token('hip', 'HOSP-L')}` },
      });
      const res = await t.app.request('http://evil.example.com/fhir/Bundle', {
        headers: { Authorization: `Bearer ${await t.token('hip', 'HOSP-L')}` },
      });
      for (const u of urlsOf(await res.json())) expect(u).toMatch(/^https:\/\/vault\.hospital\.example\/fhir\/Bundle/);
    } finally {
      await t.close();
    }
  });

  it('NODE_ENV=production without PUBLIC_BASE_URL is refused at start, naming the variable', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_BASE_URL/);
    expect(loadConfig({ NODE_ENV: 'production', PUBLIC_BASE_URL: 'https://v.example' }).PUBLIC_BASE_URL).toBe(
      'https://v.example',
    );
  });

  it('the listening address: wildcard hosts become loopback, IPv6 is bracketed', () => {
    expect(publicBaseUrl({ HOST: '0.0.0.0', PORT: 80, PUBLIC_BASE_URL: undefined })).toBe('http://127.0.0.1:80');
    expect(publicBaseUrl({ HOST: '::1', PORT: 8080, PUBLIC_BASE_URL: undefined })).toBe('http://[::1]:8080');
    expect(publicBaseUrl({ HOST: '127.0.0.1', PORT: 0, PUBLIC_BASE_URL: undefined }, 40123)).toBe(
      'http://127.0.0.1:40123',
    );
  });

  it('the real server on PORT=0 writes links on the port it got, whatever Host a client sends', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-links-'));
    dirs.push(dataDir);
    const s = await startServer({
      MONGODB_URI: inject('mongoUri'),
      MONGODB_DB: `links_${process.pid}_${Date.now().toString(36)}`,
      DATA_DIR: dataDir,
    });
    try {
      const token = await signDevToken(dataDir, { role: 'hip', facility: 'HOSP-L' });
      const port = new URL(s.url).port;
      const answer = await new Promise<{ status: number; location: string | undefined }>((resolve, reject) => {
        const body = prescription();
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/fhir/Bundle',
            method: 'POST',
            headers: {
              Host: 'evil.example.com',
              Authorization: `Bearer ${token}`,
              'Content-Type': 'application/fhir+json',
              'X-Care-Context': 'OP-1',
              'Content-Length': Buffer.byteLength(body),
            },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, location: res.headers.location }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(answer.status).toBe(201);
      expect(answer.location).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/fhir/Bundle/`));
    } finally {
      await s.stop();
    }
  });
});
