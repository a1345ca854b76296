/**
 * Calls to ABDM's gateway, in either dialect (dialect.ts): the session token
 * (the dialect's sessions call with the store's client id and secret, cached
 * until shortly before it expires) and messages carrying what ABDM requires:
 * Authorization (the session token), X-CM-ID, REQUEST-ID and TIMESTAMP, and in
 * v3 X-HIP-ID on the HIP's calls and the id of the message answered in
 * `response`. 5xx, 401, 429 and network failures are retried with backoff.
 *
 * The session is taken in GATEWAY_API_VERSION's dialect at GATEWAY_BASE_URL;
 * v0.5 messages go to GATEWAY_V05_BASE_URL when the dialect is v3 and that is
 * set (ABHA status answers, which have no v3 form), else to GATEWAY_BASE_URL.
 */
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';
import { type Dialect, OUTBOUND, type OutboundCall, replyField } from './dialect.js';

export class GatewayError extends Error {}

export interface SendOptions {
  /** The dialect of the message; default GATEWAY_API_VERSION. An answer passes the dialect of what it answers. */
  dialect?: Dialect;
  /** The id of the message this answers (v0.5 `resp.requestId`, v3 `response.requestId`). */
  inReplyTo?: string;
  /** The HIP the message is from (v3 X-HIP-ID). */
  hip?: string;
  /** Further headers (v3 X-LINK-TOKEN). */
  headers?: Record<string, string>;
  /**
   * The REQUEST-ID to send (default: a new UUID). A caller that must match the gateway's answer to this call records
   * the id first, then sends, so an answer can never arrive before its id is known.
   */
  requestId?: string;
  attempts?: number;
}

export class GatewayClient {
  private session?: { token: string; until: number };

  constructor(
    private config: Config,
    private clock: () => Date = () => new Date(),
    private fetchImpl: typeof fetch = fetch,
  ) {}

  get configured(): boolean {
    return !!this.config.GATEWAY_BASE_URL;
  }

  /** The dialect of what the store starts itself. */
  get dialect(): Dialect {
    return this.config.GATEWAY_API_VERSION;
  }

  private url(dialect: Dialect, path: string): string {
    const base =
      dialect !== this.dialect && dialect === 'v0.5' && this.config.GATEWAY_V05_BASE_URL
        ? this.config.GATEWAY_V05_BASE_URL
        : this.config.GATEWAY_BASE_URL;
    if (!base) throw new GatewayError('GATEWAY_BASE_URL is not set');
    return base.replace(/\/$/, '') + path;
  }

  /** Whether the dialect has this call (e.g. v0.5 has no generate-token). */
  has(call: OutboundCall, dialect: Dialect = this.dialect): boolean {
    return OUTBOUND[call][dialect] !== null;
  }

  async token(): Promise<string> {
    const now = this.clock().getTime();
    if (this.session && now < this.session.until) return this.session.token;
    if (!this.config.GATEWAY_CLIENT_ID || !this.config.GATEWAY_CLIENT_SECRET)
      throw new GatewayError('GATEWAY_CLIENT_ID and GATEWAY_CLIENT_SECRET are needed to call the gateway');
    const v3 = this.dialect === 'v3';
    const res = await this.fetchImpl(this.url(this.dialect, OUTBOUND.session[this.dialect]), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'X-CM-ID': this.config.GATEWAY_CM_ID,
        ...(v3 ? { 'REQUEST-ID': uuidv4(), TIMESTAMP: this.clock().toISOString() } : {}),
      },
      body: JSON.stringify({
        clientId: this.config.GATEWAY_CLIENT_ID,
        clientSecret: this.config.GATEWAY_CLIENT_SECRET,
        ...(v3 ? { grantType: 'client_credentials' } : {}),
      }),
      redirect: 'manual',
      signal: AbortSignal.timeout(this.config.GATEWAY_TIMEOUT_MS),
    });
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      throw new GatewayError(`gateway session: HTTP ${res.status}`);
    }
    const body = (await res.json().catch(() => ({}))) as { accessToken?: unknown; expiresIn?: unknown };
    if (typeof body.accessToken !== 'string' || !body.accessToken)
      throw new GatewayError('gateway session: no accessToken');
    const expiresIn = typeof body.expiresIn === 'number' && body.expiresIn > 0 ? body.expiresIn : 300;
    this.session = { token: body.accessToken, until: now + Math.max(0, expiresIn - 30) * 1000 };
    return body.accessToken;
  }

  /**
   * Sends one message to the gateway in its dialect; resolves with the REQUEST-ID it carried (an answer to it names
   * that id) when the gateway answers 2xx.
   */
  async send(call: OutboundCall, body: Record<string, unknown>, opts: SendOptions = {}): Promise<string> {
    const dialect = opts.dialect ?? this.dialect;
    const path = OUTBOUND[call][dialect];
    if (path === null) throw new GatewayError(`gateway ${call}: no such call in ABDM ${dialect}`);
    const requestId = opts.requestId ?? uuidv4();
    const timestamp = this.clock().toISOString();
    const reply = opts.inReplyTo ? { [replyField(dialect)]: { requestId: opts.inReplyTo } } : {};
    const message = dialect === 'v3' ? { ...body, ...reply } : { requestId, timestamp, ...body, ...reply };
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-CM-ID': this.config.GATEWAY_CM_ID,
      'REQUEST-ID': requestId,
      TIMESTAMP: timestamp,
      ...(opts.hip ? { 'X-HIP-ID': opts.hip } : {}),
      ...opts.headers,
    };
    await this.deliver(call, this.url(dialect, path), headers, JSON.stringify(message), opts.attempts ?? 3);
    return requestId;
  }

  private async deliver(
    call: string,
    url: string,
    headers: Record<string, string>,
    body: string,
    attempts: number,
  ): Promise<void> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(200 * 2 ** i);
      try {
        const res = await this.fetchImpl(url, {
          method: 'POST',
          headers: { ...headers, Authorization: `Bearer ${await this.token()}` },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.config.GATEWAY_TIMEOUT_MS),
        });
        await res.body?.cancel().catch(() => undefined);
        if (res.ok) return;
        if (res.status === 401) this.session = undefined;
        last = new GatewayError(`gateway ${call}: HTTP ${res.status}`);
        if (res.status < 500 && res.status !== 401 && res.status !== 429) break;
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof Error ? last : new GatewayError(String(last));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
