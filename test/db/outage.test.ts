/**
 * The database going away and coming back: data routes and readiness answer
 * 503 OperationOutcomes while it is down, nothing is half-written, and the
 * server recovers without a restart. Uses an embedded FerretDB of its own on
 * a fixed port so it can be stopped and started again with the same data.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { createGenerator } from '../../fixtures/generator.js';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });

const dir = mkdtempSync(join(tmpdir(), 'abha-vault-outage-'));
let db: EmbeddedDatabase | undefined;
let t: TestApp | undefined;
afterAll(async () => {
  await t?.close().catch(() => {});
  await db?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('database outage', () => {
  it('answers 503 while the database is down and recovers when it returns, data intact', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    db = await startEmbedded({ dataDir: dir, listen });
    t = await createTestApp({ DB_TIMEOUT_MS: '500' }, db.uri);
    const g = createGenerator(11);
    const p = g.patient();
    const [a, b] = g.records(p, 2);
    const up = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(a.bundle),
      headers: uploadHeaders(),
      as: ['hip', 'H-OUT'],
    });
    expect(up.status).toBe(201);
    const id = up.headers.get('location')!.split('/')[5];

    await db.stop();
    const ready = await t.app.request('/readyz');
    const unhandled = () => t!.logs.filter((l) => l.includes('unhandled error')).join('');
    expect(ready.status, unhandled()).toBe(503);
    expect((await ready.json()).issue[0].code).toBe('transient');
    const upload = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(b.bundle),
      headers: uploadHeaders(),
      as: ['hip', 'H-OUT'],
    });
    expect(upload.status, unhandled()).toBe(503);
    const body = await upload.json();
    expect(body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(body)).not.toMatch(/Mongo|at .*\.ts|stack/i);
    expect((await t.request(`/fhir/Bundle/${id}`, { as: ['hip', 'H-OUT'] })).status).toBe(503);
    expect((await t.request('/fhir/Bundle', { as: ['hip', 'H-OUT'] })).status).toBe(503);
    expect((await t.app.request('/healthz')).status).toBe(200); // the process is up

    db = await startEmbedded({ dataDir: dir, listen }); // same files, same port
    let recovered = 0;
    for (let i = 0; i < 100 && recovered !== 200; i++) {
      recovered = (await t.app.request('/readyz')).status;
      if (recovered !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(recovered).toBe(200);
    const read = await t.request(`/fhir/Bundle/${id}`, { as: ['hip', 'H-OUT'] });
    expect(read.status).toBe(200); // data survived the restart
    // the upload refused during the outage left nothing behind, and can be sent again
    expect(await t.collections.versions.countDocuments({ provider: 'H-OUT' })).toBe(1);
    const retry = await t.request('/fhir/Bundle', {
      method: 'POST',
      body: JSON.stringify(b.bundle),
      headers: uploadHeaders(),
      as: ['hip', 'H-OUT'],
    });
    expect(retry.status).toBe(201);
  }, 120_000);
});
