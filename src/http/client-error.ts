/**
 * Malformed HTTP: requests Node's parser refuses before the app sees them (a
 * bad chunk size, a NUL in a header, both Content-Length and
 * Transfer-Encoding, a request line or headers over the size limit). Node's
 * own answer is a bare 400/431 without a body or the security headers; this
 * answers like the app does: an OperationOutcome, SECURITY_HEADERS, and
 * `Connection: close`, then closes the connection. Never a stack trace: the
 * diagnostics name the parser's fault from a fixed list.
 */
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { type IssueType, STATUS, error, operationOutcome } from '../fhir/outcome.js';
import { SECURITY_HEADERS } from './security-headers.js';

interface ClientError extends Error {
  code?: string;
  reason?: unknown;
  rawPacket?: unknown;
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/** What the parser's error codes mean, in the words of an answer. */
const FAULTS: Record<string, string> = {
  HPE_INVALID_CHUNK_SIZE: 'a chunk size is not a hexadecimal number',
  HPE_INVALID_HEADER_TOKEN: 'a header name or value holds a character headers may not hold',
  HPE_INVALID_CONTENT_LENGTH: 'Content-Length is not a number',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'both Content-Length and Transfer-Encoding are given',
  HPE_INVALID_HEADER_TOKEN_VALUE: 'a header value holds a character headers may not hold',
  HPE_INVALID_TRANSFER_ENCODING: 'Transfer-Encoding is not valid',
  HPE_INVALID_METHOD: 'the method is not valid',
  HPE_INVALID_URL: 'the request target is not valid',
  HPE_INVALID_VERSION: 'the HTTP version is not valid',
  HPE_INVALID_CONSTANT: 'the request line is not valid',
  HPE_LF_EXPECTED: 'a line does not end in CRLF',
  HPE_CR_EXPECTED: 'a line does not end in CRLF',
  HPE_STRICT: 'the request breaks HTTP/1.1 syntax',
  HPE_INVALID_EOF_STATE: 'the connection closed in the middle of the request',
};

export interface ClientErrorAnswer {
  status: number;
  code: IssueType;
  diagnostics: string;
}

/**
 * The answer to one parser error. A request line or headers over the limit are
 * 414 when the packet that overflowed is still the request line (it starts
 * with a method and holds no line break), else 431.
 */
export function clientErrorAnswer(err: ClientError): ClientErrorAnswer {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW': {
      const packet = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1') : '';
      return /^[A-Z]{3,10} [^\r\n]*$/.test(packet)
        ? {
            status: STATUS['uri-too-long'],
            code: 'too-long',
            diagnostics: 'The request target (URL) is longer than the server accepts',
          }
        : {
            status: STATUS['headers-too-large'],
            code: 'too-long',
            diagnostics: 'The request headers are larger than the server accepts',
          };
    }
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: STATUS['too-large'],
        code: 'too-long',
        diagnostics: 'The chunk extensions are larger than the server accepts',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: STATUS['request-timeout'],
        code: 'transient',
        diagnostics: 'The request did not arrive in time',
      };
    default: {
      // llhttp reports Content-Length beside Transfer-Encoding as an invalid Transfer-Encoding.
      const fault =
        err.code === 'HPE_INVALID_TRANSFER_ENCODING' && /Content-Length/i.test(String(err.reason))
          ? 'both Content-Length and Transfer-Encoding are given'
          : (FAULTS[err.code ?? ''] ?? 'the request is not valid HTTP/1.1');
      return { status: STATUS.malformed, code: 'structure', diagnostics: `Malformed HTTP request: ${fault}` };
    }
  }
}

/** The complete HTTP/1.1 response for `answer`, bytes ready for the socket. */
export function clientErrorResponse(answer: ClientErrorAnswer): Buffer {
  const body = JSON.stringify(operationOutcome([error(answer.code, answer.diagnostics)]));
  const headers: Record<string, string> = {
    'Content-Type': 'application/fhir+json; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    Date: new Date().toUTCString(),
    'X-Request-Id': randomUUID(),
    ...SECURITY_HEADERS,
  };
  const head = `HTTP/1.1 ${answer.status} ${REASONS[answer.status] ?? 'Bad Request'}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

/**
 * Answers every parser error on `server` (an http.Server) as above; `onAnswer` is told what was answered, for the log.
 */
export function answerClientErrors(
  server: EventEmitter,
  onAnswer?: (a: ClientErrorAnswer & { parserCode?: string }) => void,
): void {
  const answered = new WeakSet<Duplex>();
  server.on('clientError', (err: ClientError, socket: Duplex) => {
    // The parser reports again for data that follows its error on the same connection: answered once.
    if (answered.has(socket)) return;
    answered.add(socket);
    // Only where nothing of a response was written yet may an answer go out without corrupting one (as Node's own
    // handler).
    const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const answer = clientErrorAnswer(err);
    onAnswer?.({ ...answer, parserCode: err.code });
    socket.end(clientErrorResponse(answer));
    // The client reads the answer and closes; one that does not is cut off.
    const timer = setTimeout(() => socket.destroy(), 5000);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  });
}
