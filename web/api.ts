/**
 * The page's one way to the store: the same API every client uses, with the
 * signed-in person's bearer token (from GET /auth/session; web/sign-in.ts on
 * the server). Nothing here decides what may be seen: the API does.
 */

export interface Session {
  signedIn: true;
  token: string;
  role: 'hip' | 'hiu' | 'admin';
  facility: string;
  subject: string;
  expiresAt: string;
  /** The origin the API builds its links on (PUBLIC_BASE_URL's); the page may be open under another name for it. */
  apiOrigin: string;
}

export interface SignInOptions {
  oidc: boolean;
  devSignIn: boolean;
  roles: Session['role'][];
  sessionSeconds: number;
}

/** A refusal or failure of the API, with the OperationOutcome's first diagnostics (and Retry-After, in seconds). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  let code: string | undefined;
  try {
    const body = await res.json();
    const issue = body?.issue?.[0];
    if (issue?.diagnostics) message = String(issue.diagnostics);
    if (issue?.code) code = String(issue.code);
  } catch {
    /* not JSON */
  }
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(res.status, message, code, Number.isFinite(retry) && retry > 0 ? retry : undefined);
}

export async function signInOptions(): Promise<SignInOptions> {
  const res = await fetch('/auth/options', { credentials: 'same-origin' });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** The current session, or null when not signed in. */
export async function currentSession(): Promise<Session | null> {
  const res = await fetch('/auth/session', { credentials: 'same-origin' });
  if (!res.ok) throw await failure(res);
  const body = await res.json();
  return body.signedIn ? (body as Session) : null;
}

export async function devSignIn(role: Session['role'], facility: string): Promise<void> {
  const res = await fetch('/auth/dev-sign-in', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ role, facility }),
  });
  if (!res.ok) throw await failure(res);
}

export async function signOut(): Promise<void> {
  await fetch('/auth/sign-out', { method: 'POST', credentials: 'same-origin' });
}

/** A client of the API for one session. */
export class Api {
  constructor(
    readonly session: Session,
    private onExpired: () => void = () => undefined,
  ) {}

  /** GET a path of this origin (or a full URL the API gave, on this origin) as JSON. */
  async get<T = unknown>(path: string, opts: { consentId?: string } = {}): Promise<T> {
    const url = new URL(path, location.origin);
    if (url.origin !== location.origin && url.origin !== this.session.apiOrigin)
      throw new ApiError(0, 'A link to another origin was not followed');
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.session.token}`,
      Accept: 'application/fhir+json, application/json',
    };
    if (opts.consentId) headers['X-Consent-Id'] = opts.consentId;
    const res = await fetch(url.pathname + url.search, { headers, credentials: 'omit' });
    if (res.status === 401) this.onExpired();
    if (!res.ok) throw await failure(res);
    return res.json() as Promise<T>;
  }

  /** Every entry of a FHIR searchset or history, following its `next` links (at most `maxPages` pages). */
  async all(path: string, opts: { consentId?: string; maxPages?: number } = {}): Promise<fhir4.BundleEntry[]> {
    const entries: fhir4.BundleEntry[] = [];
    let next: string | undefined = path;
    for (let page = 0; next && page < (opts.maxPages ?? 50); page++) {
      const bundle: fhir4.Bundle = await this.get<fhir4.Bundle>(next, opts);
      entries.push(...(bundle.entry ?? []));
      next = bundle.link?.find((l) => l.relation === 'next')?.url;
    }
    return entries;
  }
}
