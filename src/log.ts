/**
 * Structured JSON logs (pino). Log lines carry request ids, routes and
 * outcomes, never bundle content, names or ABHA identifiers.
 */
import pino, { type Logger } from 'pino';

export type Log = Logger;

export function createLog(level: string, destination?: pino.DestinationStream): Log {
  return pino(
    { level, base: { service: 'abha-vault' }, redact: { paths: ['req.headers.authorization'], remove: true } },
    destination,
  );
}
