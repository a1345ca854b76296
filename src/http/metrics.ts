/**
 * Prometheus metrics: request counts and latency by route, validation
 * failures by rule, database errors, the commands sent to the database, and
 * how long health-information transfers take. One registry per app.
 *
 * The transfer histogram is one per process (`hiTransferSeconds`): the
 * transfers (abdm/transfer.ts) observe it without being handed an app's
 * Metrics, and every Metrics registry exposes it.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Issue } from '../fhir/outcome.js';

/**
 * Health-information transfers by how they ended (TRANSFERRED or FAILED): seconds from the request's acceptance to
 * the end of the transfer. ABDM expects a transfer within 2 hours, hence buckets up to 2 h.
 */
export const hiTransferSeconds = new Histogram({
  name: 'abha_vault_hi_transfer_seconds',
  help: 'Health-information transfers by outcome: seconds from the request to the end of the transfer',
  labelNames: ['outcome'],
  buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200],
  registers: [],
});

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'abha_vault_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'abha_vault_http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly validationFailures = new Counter({
    name: 'abha_vault_validation_failures_total',
    help: 'Upload validation failures by rule (issue code and element path)',
    labelNames: ['code', 'rule'],
    registers: [this.registry],
  });
  readonly dbErrors = new Counter({
    name: 'abha_vault_database_errors_total',
    help: 'Requests that failed because the database was unavailable',
    registers: [this.registry],
  });
  readonly dbCommands = new Counter({
    name: 'abha_vault_db_commands_total',
    help: "Commands sent to the database, by command name (find, insert, getMore, …; the driver's own excepted)",
    labelNames: ['command'],
    registers: [this.registry],
  });

  /** The process's transfer histogram, exposed in this registry too. */
  readonly hiTransferSeconds = hiTransferSeconds;

  constructor(defaults = false) {
    this.registry.registerMetric(hiTransferSeconds);
    if (defaults) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts one command sent to the database (db/mongo.ts connectDatabase's onCommand). */
  dbCommand(command: string) {
    this.dbCommands.inc({ command });
  }

  /** Counts each rule a rejected upload broke (element paths without indexes, so the label set stays bounded). */
  rejected(issues: Issue[]) {
    for (const i of issues)
      this.validationFailures.inc({ code: i.code, rule: (i.expression ?? '').replace(/\[\d+\]/g, '[]').slice(0, 100) });
  }
}
