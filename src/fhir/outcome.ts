/**
 * OperationOutcome helpers and the one typed error every layer throws.
 * `app.onError` is the only place that turns a FhirError into a response.
 */

export type Severity = 'fatal' | 'error' | 'warning' | 'information';
/** The subset of http://hl7.org/fhir/issue-type the store uses. */
export type IssueType =
  | 'invalid'
  | 'structure'
  | 'required'
  | 'value'
  | 'invariant'
  | 'code-invalid'
  | 'security'
  | 'login'
  | 'forbidden'
  | 'not-found'
  | 'not-supported'
  | 'duplicate'
  | 'too-costly'
  | 'too-long'
  | 'business-rule'
  | 'conflict'
  | 'transient'
  | 'exception'
  | 'throttled'
  | 'processing'
  | 'informational';

export interface Issue {
  severity: Severity;
  code: IssueType;
  diagnostics: string;
  /** FHIRPath of the fault, e.g. `Bundle.entry[3].resource.authoredOn`. */
  expression?: string;
}

export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly issues: Issue[],
    readonly headers: Record<string, string> = {},
    /** Why access was refused, for the audit trail only (never sent to the caller). */
    readonly auditReason?: string,
  ) {
    super(issues[0]?.diagnostics ?? `HTTP ${status}`);
    this.name = 'FhirError';
  }

  /** Set where the refusal was made and audited (records/repository.ts): app.onError then only answers it. */
  audited = false;
}

export function error(code: IssueType, diagnostics: string, expression?: string): Issue {
  return expression === undefined
    ? { severity: 'error', code, diagnostics }
    : { severity: 'error', code, diagnostics, expression };
}

export function operationOutcome(issues: Issue[]): fhir4.OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({
      severity: i.severity,
      code: i.code,
      diagnostics: i.diagnostics,
      ...(i.expression ? { expression: [i.expression] } : {}),
    })),
  };
}

/**
 * The one table from a kind of failure to its HTTP status. Every refusal the
 * store makes names its kind (fail, and the helpers below); only the HTTP
 * parser's refusals (http/client-error.ts) use the last three.
 */
export const STATUS = {
  malformed: 400, // the request cannot be read: JSON, UTF-8, depth, a header, a parameter
  unauthenticated: 401, // no valid bearer token
  forbidden: 403, // a valid token that may not do this (role, consent)
  'not-found': 404,
  'too-large': 413,
  'unsupported-media-type': 415,
  unprocessable: 422, // read, but it breaks FHIR R4, the ABDM profile or a request schema
  throttled: 429,
  internal: 500,
  unavailable: 503, // the database (or the gateway configuration) is not there: try again
  'request-timeout': 408,
  'uri-too-long': 414,
  'headers-too-large': 431,
} as const;
export type FailureKind = keyof typeof STATUS;

export const fail = (kind: FailureKind, code: IssueType, diagnostics: string, expression?: string) =>
  new FhirError(STATUS[kind], [error(code, diagnostics, expression)]);

export const badRequest = (diagnostics: string, expression?: string) =>
  fail('malformed', 'invalid', diagnostics, expression);
export const notFound = (diagnostics: string, auditReason?: string) =>
  new FhirError(STATUS['not-found'], [error('not-found', diagnostics)], {}, auditReason);
export const unprocessable = (issues: Issue[]) => new FhirError(STATUS.unprocessable, issues);
export const unavailable = (diagnostics: string) => fail('unavailable', 'transient', diagnostics);

/**
 * A value from the request as it may appear in a diagnostic: never throws
 * (input may be an object whose toString is not a function) and is clipped.
 */
export function shown(value: unknown, max = 60): string {
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value);
  } catch {
    text = typeof value;
  }
  if (text.length > max) text = text.slice(0, max - 3) + '...';
  return typeof value === 'string' ? `'${text}'` : text;
}

/** Like `shown`, but a string is written bare (for names such as resource types). */
export const named = (value: unknown, max = 60): string =>
  typeof value === 'string' ? (value.length > max ? value.slice(0, max - 3) + '...' : value) : shown(value, max);
