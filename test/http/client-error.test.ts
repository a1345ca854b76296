/**
 * The answers to malformed HTTP (src/http/client-error.ts), as pure functions;
 * test/http/wire.test.ts sends the bytes to a real server.
 */
import { describe, expect, it } from 'vitest';
import { clientErrorAnswer, clientErrorResponse } from '../../src/http/client-error.js';
import { SECURITY_HEADERS } from '../../src/http/security-headers.js';

const parserError = (code: string, rawPacket?: string, reason?: string) =>
  Object.assign(new Error(`Parse Error: ${reason ?? code}`), {
    code,
    reason,
    rawPacket: rawPacket === undefined ? undefined : Buffer.from(rawPacket, 'latin1'),
  });

describe('clientErrorAnswer', () => {
  it('a header overflow while still in the request line is 414; once past it, 431', () => {
    expect(clientErrorAnswer(parserError('HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(100)}`)).status).toBe(414);
    expect(clientErrorAnswer(parserError('HPE_HEADER_OVERFLOW', 'GET / HTTP/1.1\r\nX-Big: bbbb')).status).toBe(431);
    expect(clientErrorAnswer(parserError('HPE_HEADER_OVERFLOW', 'bbbbbbbb')).status).toBe(431); // a later packet: cannot tell
    expect(clientErrorAnswer(parserError('HPE_HEADER_OVERFLOW')).status).toBe(431);
  });

  it('names the fault from a fixed list, never the parser message or the request bytes', () => {
    const a = clientErrorAnswer(
      parserError('HPE_INVALID_HEADER_TOKEN', 'GET / HTTP/1.1\r\nX: <script>\0', 'Invalid header value char'),
    );
    expect(a).toEqual({
      status: 400,
      code: 'structure',
      diagnostics: 'Malformed HTTP request: a header name or value holds a character headers may not hold',
    });
    expect(
      clientErrorAnswer(
        parserError('HPE_INVALID_TRANSFER_ENCODING', '', "Transfer-Encoding can't be present with Content-Length"),
      ).diagnostics,
    ).toBe('Malformed HTTP request: both Content-Length and Transfer-Encoding are given');
    expect(
      clientErrorAnswer(parserError('HPE_SOMETHING_NEW', '', 'at Object.<anonymous> (/x.js:1:1)')).diagnostics,
    ).toBe('Malformed HTTP request: the request is not valid HTTP/1.1');
  });

  it('a request that does not arrive in time is 408', () => {
    expect(clientErrorAnswer(parserError('ERR_HTTP_REQUEST_TIMEOUT')).status).toBe(408);
  });
});

describe('clientErrorResponse', () => {
  it('is a complete HTTP/1.1 response: status line, fhir+json, Content-Length, Connection: close, the security headers, an OperationOutcome', () => {
    const bytes = clientErrorResponse({
      status: 431,
      code: 'too-long',
      diagnostics: 'The request headers are larger than the server accepts',
    });
    const text = bytes.toString('utf8');
    const [head, body] = text.split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    const headers = Object.fromEntries(
      lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
    );
    expect(headers['content-type']).toBe('application/fhir+json; charset=utf-8');
    expect(headers.connection).toBe('close');
    expect(Number(headers['content-length'])).toBe(Buffer.byteLength(body));
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) expect(headers[name.toLowerCase()], name).toBe(value);
    expect(JSON.parse(body)).toEqual({
      resourceType: 'OperationOutcome',
      issue: [
        { severity: 'error', code: 'too-long', diagnostics: 'The request headers are larger than the server accepts' },
      ],
    });
  });
});
