/**
 * Indexes are created at start, idempotently, and each search shape the API
 * issues is served by one of them. On MongoDB the plan is checked with
 * explain; FerretDB 1.24 (SQLite) plans no secondary indexes (it pushes down
 * only _id equality), so there only the indexes' presence is checked, and
 * that _id lookups search an index (src/db/ferretdb/idindex.go) rather than
 * scan the table.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFerretDB } from '../../src/db/engine.js';
import { collections, ensureIndexes } from '../../src/records/model.js';
import { createTestApp, type TestApp } from '../support/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const winningStages = (plan: any): string[] => {
  const out: string[] = [];
  const walk = (p: any) => {
    if (!p || typeof p !== 'object') return;
    if (p.stage) out.push(p.stage);
    for (const v of Object.values(p)) if (v && typeof v === 'object') walk(v);
  };
  walk(plan?.queryPlanner?.winningPlan);
  return out;
};

describe('indexes', () => {
  it('are created idempotently', async () => {
    const db = t.client.db(t.config.MONGODB_DB);
    await ensureIndexes(collections(db));
    await ensureIndexes(collections(db));
    const names = (await t.collections.current.listIndexes().toArray()).map((i) => i.name);
    const searchKeys = [
      'provider_date',
      'provider_abha_number_date',
      'provider_abha_address_date',
      'provider_care_context_date',
      'provider_hitype_date',
    ];
    expect(names).toContain('provider_identifier');
    if (t.engine.plansSecondaryIndexes) expect(names).toEqual(expect.arrayContaining(searchKeys));
    // FerretDB plans no secondary index: there the search keys would only slow writes, and are not made
    else for (const k of searchKeys) expect(names).not.toContain(k);
    const versionIdx = await t.collections.versions.listIndexes().toArray();
    expect(versionIdx.find((i) => i.name === 'provider_identifier_version')?.unique).toBe(true);
  });

  it('where the engine plans none (FerretDB), search keys an earlier version made are dropped at start', async () => {
    if (t.engine.plansSecondaryIndexes) return; // MongoDB keeps and uses them (the test above)
    await t.collections.current.createIndex({ provider: 1, recordDate: -1, _id: -1 }, { name: 'provider_date' });
    await t.collections.careContexts.createIndex({ provider: 1, abhaNumber: 1 }, { name: 'provider_abha_number' });
    await ensureIndexes(t.collections, t.engine);
    expect((await t.collections.current.listIndexes().toArray()).map((i) => i.name)).not.toContain('provider_date');
    const cc = (await t.collections.careContexts.listIndexes().toArray()).map((i) => i.name);
    expect(cc).not.toContain('provider_abha_number');
  });

  it('serve lookups by _id from an index, never a scan of the collection', async () => {
    const ferret = await isFerretDB(t.client.db(t.config.MONGODB_DB));
    const coll = t.client.db(t.config.MONGODB_DB).collection<{ _id: string; n: number }>('id_lookup_probe');
    await coll.insertMany(Array.from({ length: 50 }, (_, n) => ({ _id: `doc-${n}`, n })));
    // A lookup first: an SQLite connection notices a schema change (the new index) when it next reads
    // the database, and an EXPLAIN alone does not read it, so it could report a stale plan.
    const planOf = async () => {
      await coll.findOne({ _id: 'doc-1' });
      return JSON.stringify(await coll.find({ _id: 'doc-7' }).explain());
    };
    let plan = await planOf();
    if (ferret) {
      // The launcher indexes a new collection's table within a poll (200 ms).
      for (let i = 0; i < 50 && !/USING INDEX/.test(plan); i++) {
        await new Promise((r) => setTimeout(r, 100));
        plan = await planOf();
      }
      expect(plan).toMatch(/SEARCH \S+ USING INDEX \S+_abhavault_id_path/);
      expect(plan).not.toMatch(/detail=SCAN/);
    } else {
      expect(plan).not.toMatch(/COLLSCAN/);
    }
    expect((await coll.findOne({ _id: 'doc-7' }))?.n).toBe(7);
    // Updates and deletes by _id keep the index right.
    await coll.updateOne({ _id: 'doc-7' }, { $set: { n: 70 } });
    await coll.deleteOne({ _id: 'doc-8' });
    expect((await coll.findOne({ _id: 'doc-7' }))?.n).toBe(70);
    expect(await coll.findOne({ _id: 'doc-8' })).toBeNull();
    expect(await coll.countDocuments({})).toBe(49);
  });

  it('serve every search shape (on MongoDB: an IXSCAN, never a COLLSCAN)', async () => {
    const ferret = await isFerretDB(t.client.db(t.config.MONGODB_DB));
    const shapes = [
      { provider: 'H' },
      { provider: 'H', abhaNumber: '12345678901234' },
      { provider: 'H', abhaAddress: 'a.b@sbx' },
      { provider: 'H', careContext: 'OP-1' },
      { provider: 'H', hiType: 'Prescription', recordDate: { $gte: new Date(0) } },
    ];
    for (const filter of shapes) {
      const plan = await t.collections.current.find(filter).sort({ recordDate: -1, _id: -1 }).limit(21).explain();
      if (ferret) {
        expect(plan).toHaveProperty('filterPushdown');
        continue;
      }
      const stages = winningStages(plan);
      expect(stages, JSON.stringify(filter)).toContain('IXSCAN');
      expect(stages).not.toContain('COLLSCAN');
      expect(stages).not.toContain('SORT');
    }
  });
});
