/**
 * One real database for the whole run: MONGODB_URI when set; else a MongoDB
 * container via testcontainers when a Docker engine answers; else the
 * embedded FerretDB in a temporary directory. Never a mock.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbedded } from '../../src/db/embedded.js';

declare module 'vitest' {
  export interface ProvidedContext {
    mongoUri: string;
    databaseKind: string;
  }
}

function dockerLikely(): boolean {
  if (process.env.DOCKER_HOST) return true;
  return existsSync('/var/run/docker.sock');
}

export default async function setup(project: TestProject) {
  if (process.env.MONGODB_URI) {
    project.provide('mongoUri', process.env.MONGODB_URI);
    project.provide('databaseKind', 'MONGODB_URI');
    return;
  }
  if (dockerLikely()) {
    try {
      const { MongoDBContainer } = await import('@testcontainers/mongodb');
      const container = await new MongoDBContainer('mongo:7').start();
      project.provide('mongoUri', `${container.getConnectionString()}?directConnection=true`);
      project.provide('databaseKind', 'testcontainers mongo:7');
      return async () => {
        await container.stop();
      };
    } catch (e) {
      console.warn(
        `[tests] Docker engine did not start MongoDB (${(e as Error).message.split('\n')[0]}); using the embedded FerretDB`,
      );
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'abha-vault-test-'));
  const db = await startEmbedded({ dataDir: dir, log: (m) => console.log(`[tests] ${m}`) });
  project.provide('mongoUri', db.uri);
  project.provide('databaseKind', 'embedded FerretDB');
  return async () => {
    await db.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
