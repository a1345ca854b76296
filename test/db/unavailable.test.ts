/**
 * Which failures count as "the database is unavailable" (503, retry later)
 * rather than an internal error (500): src/db/mongo.ts asUnavailable.
 */
import { describe, expect, it } from 'vitest';
import { MongoNetworkError, MongoServerError } from 'mongodb';
import { asUnavailable } from '../../src/db/mongo.js';
import { FhirError } from '../../src/fhir/outcome.js';

const status = (e: unknown) => {
  const u = asUnavailable(e);
  return u instanceof FhirError ? u.status : 'passed through';
};
const socketError = (code: string) =>
  Object.assign(new Error('This socket has been ended by the other party'), { code });

describe('asUnavailable', () => {
  it('maps driver connectivity errors to 503', () => {
    expect(status(new MongoNetworkError('connection closed'))).toBe(503);
  });

  it('maps socket errors the driver lets through unwrapped (EPIPE, ECONNRESET, ECONNREFUSED) to 503', () => {
    for (const code of ['EPIPE', 'ECONNRESET', 'ECONNREFUSED']) expect(status(socketError(code)), code).toBe(503);
  });

  it('passes everything else through, to be answered 500', () => {
    expect(status(new Error('boom'))).toBe('passed through');
    expect(status(socketError('ENOENT'))).toBe('passed through');
    expect(status({ code: 'EPIPE' })).toBe('passed through'); // not an Error
    expect(status(new MongoServerError({ message: 'bad', code: 2 }))).toBe('passed through');
  });
});
