/**
 * Database commands counted by name (db/mongo.ts connectDatabase's onCommand,
 * http/metrics.ts abha_vault_db_commands_total) on the real test database:
 * each command the server sends is counted once under its name, the driver's
 * own commands are not, and without onCommand the driver does not monitor
 * commands at all (DB_COMMAND_METRICS=false).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectDatabase, type Database } from '../../src/db/mongo.js';
import { loadConfig } from '../../src/config.js';
import { Metrics } from '../../src/http/metrics.js';

const dataDir = mkdtempSync(join(tmpdir(), 'abha-vault-commands-'));
const config = loadConfig({
  MONGODB_URI: inject('mongoUri'),
  MONGODB_DB: `commands_${process.pid}_${Date.now().toString(36)}`,
  DATA_DIR: dataDir,
});
const metrics = new Metrics();
const seen: string[] = [];
let database: Database;

const counted = async () =>
  Object.fromEntries(
    (await metrics.dbCommands.get()).values.map((v) => [String(v.labels.command), v.value] as [string, number]),
  );

beforeAll(async () => {
  database = await connectDatabase(config, () => undefined, {
    onCommand: (name) => {
      seen.push(name);
      metrics.dbCommand(name);
    },
  });
});
afterAll(async () => {
  await database?.db.dropDatabase();
  await database?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('abha_vault_db_commands_total', () => {
  it('counts each command the server sends, once, by name', async () => {
    const before = await counted();
    const c = database.db.collection<{ _id: string; n: number }>('things');
    await c.insertOne({ _id: 'a', n: 1 });
    await c.insertMany([
      { _id: 'b', n: 2 },
      { _id: 'c', n: 3 },
    ]);
    await c.findOne({ _id: 'a' });
    await c.updateOne({ _id: 'a' }, { $set: { n: 4 } });
    const after = await counted();
    const d = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect(d('insert')).toBe(2); // insertMany is one command
    expect(d('find')).toBe(1);
    expect(d('update')).toBe(1);
    expect(await metrics.registry.metrics()).toMatch(/abha_vault_db_commands_total\{command="insert"\} \d+/);
  });

  it("leaves out the driver's own commands", () => {
    for (const name of ['hello', 'ismaster', 'isMaster', 'saslStart', 'saslContinue', 'endSessions'])
      expect(seen).not.toContain(name);
  });

  it('does not monitor commands without onCommand', async () => {
    const plain = await connectDatabase(config, () => undefined);
    try {
      expect(plain.client.options.monitorCommands).toBe(false);
    } finally {
      await plain.close();
    }
  });
});
