/**
 * Process entry: config → database → app → listen; graceful shutdown on
 * SIGINT/SIGTERM (stop accepting, let in-flight requests finish, close the
 * database, stop the embedded FerretDB).
 */
import { serve } from '@hono/node-server';
import { readFileSync } from 'node:fs';
import { loadConfig, validatorOptions } from './config.js';
import { createLog } from './log.js';
import { connectDatabase } from './db/mongo.js';
import { collections, ensureIndexes } from './records/model.js';
import { EmbeddedDatabaseError } from './db/embedded.js';
import { DocumentValidator } from './fhir/validate.js';
import { createApp, createServices, publicBaseUrl } from './app.js';
import { ConsentStore } from './consents/store.js';
import { AuditLog } from './audit/log.js';
import { KeyConfigError, loadVerifier } from './auth/keys.js';
import { loadPagingKeys } from './auth/paging-keys.js';
import { ensureLinkingIndexes } from './abdm/linking.js';
import { LinkingConfigError, assertLinkingConfig } from './abdm/otp-delivery.js';
import { Metrics } from './http/metrics.js';
import { answerClientErrors } from './http/client-error.js';
import { webAssets } from './web/assets.js';

async function main() {
  const config = loadConfig();
  const log = createLog(config.LOG_LEVEL);
  try {
    assertLinkingConfig(config); // one-time code delivery: console is refused in production
  } catch (e) {
    if (e instanceof LinkingConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  const version = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version as string;

  let verifier, pagingKeys;
  try {
    verifier = await loadVerifier(config);
    pagingKeys = loadPagingKeys(config);
  } catch (e) {
    if (e instanceof KeyConfigError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  const validator = new DocumentValidator(validatorOptions(config));
  const metrics = new Metrics(true);
  let database;
  try {
    // With DB_COMMAND_METRICS, every command sent to the database is counted (abha_vault_db_commands_total).
    const onCommand = config.DB_COMMAND_METRICS ? (name: string) => metrics.dbCommand(name) : undefined;
    database = await connectDatabase(config, (msg) => log.info(msg), { onCommand });
  } catch (e) {
    if (e instanceof EmbeddedDatabaseError) {
      console.error(e.message);
      process.exit(1);
    }
    throw e;
  }
  log.info({ embedded: database.embedded, db: config.MONGODB_DB }, 'database connected');
  const c = collections(database.db);
  await ensureIndexes(c, database.engine);
  const consents = new ConsentStore(database.db);
  const audit = new AuditLog(database.db);
  await Promise.all([consents.ensureIndexes(), audit.ensureIndexes(), ensureLinkingIndexes(database.db)]);
  log.info({ keys: verifier.source }, 'token verification keys');

  const { gateway, store, repositories, transfers, hipLinks, sessions } = await createServices({
    db: database.db,
    collections: c,
    engine: database.engine,
    consents,
    audit,
    config,
    validator,
    pagingKeys: pagingKeys!,
    log,
    clock: () => new Date(),
  });
  let baseUrl = publicBaseUrl(config); // until listening: then the port it really got (PORT=0 picks one)
  const app = createApp({
    config,
    store,
    consents,
    audit,
    repositories,
    transfers,
    gateway,
    hipLinks,
    sessions,
    db: database.db,
    collections: c,
    validator,
    verifier,
    log,
    version,
    metrics,
    baseUrl: () => baseUrl,
  });
  // The web page's files are built now rather than at its first visit; a failure is logged, and retried then.
  webAssets().then(
    () => log.info('web page built'),
    (e) =>
      log.error({ err: { name: (e as Error).name, message: (e as Error).message?.slice(0, 300) } }, 'web page build'),
  );
  const resumed = await transfers.resume();
  if (resumed) log.info({ resumed }, 'resuming health-information transfers');

  // Consent erasure: expire consents at dataEraseAt and erase their terms.
  const sweep = setInterval(() => {
    consents.sweep(new Date()).then(
      (n) => {
        if (n) log.info({ expired: n }, 'consents expired');
      },
      () => log.warn('consent sweep failed; will retry'),
    );
  }, config.CONSENT_SWEEP_MS);
  sweep.unref();
  const hipSweep = setInterval(() => {
    hipLinks.sweep(new Date()).catch(() => log.warn('hip-linking sweep failed; will retry'));
  }, config.HIP_LINK_SWEEP_MS);
  hipSweep.unref();
  // Transfers whose process died mid-way (its lease expired): taken over here, not only at the next start.
  const stopResuming = transfers.keepResuming(30_000);
  const server = serve({ fetch: app.fetch, hostname: config.HOST, port: config.PORT }, (info) => {
    baseUrl = publicBaseUrl(config, info.port);
    log.info({ url: `http://${info.address}:${info.port}`, baseUrl }, 'abha-vault listening');
    console.log(
      `abha-vault listening on http://${config.HOST}:${info.port} (database: ${database.embedded ? `embedded FerretDB in ${config.DATA_DIR}` : 'MONGODB_URI'})`,
    );
  });
  // Malformed HTTP the parser refuses never reaches the app: answered as the app would (OperationOutcome, security
  // headers).
  answerClientErrors(server, (a) => log.warn({ status: a.status, code: a.parserCode }, 'malformed request'));

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    clearInterval(sweep);
    clearInterval(hipSweep);
    stopResuming();
    const force = setTimeout(() => process.exit(1), 15000);
    server.close(async () => {
      await database.close();
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((e) => {
  console.error(`abha-vault failed to start: ${(e as Error).message}`);
  process.exit(1);
});
