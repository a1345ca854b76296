/**
 * Calls to ABDM's gateway: the session token (POST /v0.5/sessions with the
 * store's client id and secret, cached until shortly before it expires) and
 * callbacks carrying the headers ABDM requires: Authorization (the client
 * token), X-CM-ID, REQUEST-ID and TIMESTAMP. 5xx and network failures are
 * retried with backoff.
 */
import { v4 as uuidv4 } from 'uuid';
import type { Config } from '../config.js';

export class GatewayError extends Error {}

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

  private url(path: string): string {
    if (!this.config.GATEWAY_BASE_URL) throw new GatewayError('GATEWAY_BASE_URL is not set');
    return this.config.GATEWAY_BASE_URL.replace(/\/$/, '') + path;
  }

  async token(): Promise<string> {
    const now = this.clock().getTime();
    if (this.session && now < this.session.until) return this.session.token;
    if (!this.config.GATEWAY_CLIENT_ID || !this.config.GATEWAY_CLIENT_SECRET)
      throw new GatewayError('GATEWAY_CLIENT_ID and GATEWAY_CLIENT_SECRET are needed to call the gateway');
    const res = await this.fetchImpl(this.url('/v0.5/sessions'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CM-ID': this.config.GATEWAY_CM_ID },
      body: JSON.stringify({
        clientId: this.config.GATEWAY_CLIENT_ID,
        clientSecret: this.config.GATEWAY_CLIENT_SECRET,
      }),
      signal: AbortSignal.timeout(this.config.GATEWAY_TIMEOUT_MS),
    });
    if (!res.ok) throw new GatewayError(`gateway session: HTTP ${res.status}`);
    const body = (await res.json()) as { accessToken?: string; expiresIn?: number };
    if (!body.accessToken) throw new GatewayError('gateway session: no accessToken');
    this.session = { token: body.accessToken, until: now + Math.max(0, (body.expiresIn ?? 300) - 30) * 1000 };
    return body.accessToken;
  }

  /** POSTs a callback to the gateway; resolves when it answers 2xx. */
  async post(path: string, body: Record<string, unknown>, attempts = 3): Promise<void> {
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(200 * 2 ** i);
      try {
        const res = await this.fetchImpl(this.url(path), {
          method: 'POST',
          headers: {
            'Content-Type': 'application/json',
            Authorization: `Bearer ${await this.token()}`,
            'X-CM-ID': this.config.GATEWAY_CM_ID,
            'REQUEST-ID': String(body.requestId ?? uuidv4()),
            TIMESTAMP: String(body.timestamp ?? this.clock().toISOString()),
          },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.config.GATEWAY_TIMEOUT_MS),
        });
        if (res.ok) return;
        if (res.status === 401) this.session = undefined;
        last = new GatewayError(`gateway ${path}: HTTP ${res.status}`);
        if (res.status < 500 && res.status !== 401 && res.status !== 429) break;
      } catch (e) {
        last = e;
      }
    }
    throw last instanceof Error ? last : new GatewayError(String(last));
  }

  /** A fresh requestId and timestamp for an outgoing message. */
  envelope(): { requestId: string; timestamp: string } {
    return { requestId: uuidv4(), timestamp: this.clock().toISOString() };
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
