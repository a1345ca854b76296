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

  /** The patients a refusal concerns, for the audit trail only (e.g. the patient of the consent it was made under). */
  auditPatients?: string[];
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

export const fail = (status: number, code: IssueType, diagnostics: string, expression?: string) =>
  new FhirError(status, [error(code, diagnostics, expression)]);

export const badRequest = (diagnostics: string, expression?: string) => fail(400, 'invalid', diagnostics, expression);
export const notFound = (diagnostics: string, auditReason?: string) =>
  new FhirError(404, [error('not-found', diagnostics)], {}, auditReason);
export const unprocessable = (issues: Issue[]) => new FhirError(422, issues);
export const unavailable = (diagnostics: string) => fail(503, 'transient', diagnostics);

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
