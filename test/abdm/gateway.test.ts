/**
 * The gateway client in both dialects, against a recording fetch: the v3
 * session (grantType, REQUEST-ID, TIMESTAMP, X-CM-ID) cached until shortly
 * before expiresIn; a message's id in the v3 headers or the v0.5 body; the
 * answer's echo as v3 `response` or v0.5 `resp`; v0.5 answers at
 * GATEWAY_V05_BASE_URL; a 401 takes a new session; redirects are not followed.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { GatewayClient, GatewayError } from '../../src/abdm/gateway.js';

interface Seen {
  url: string;
  headers: Record<string, string>;
  body: any;
  redirect?: string;
}

function client(
  env: Record<string, string>,
  answer: (s: Seen) => Response,
  clock = { now: new Date('2026-01-01T00:00:00Z') },
) {
  const seen: Seen[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    const s: Seen = {
      url,
      headers: init.headers as Record<string, string>,
      body: JSON.parse(init.body as string),
      redirect: init.redirect,
    };
    seen.push(s);
    return answer(s);
  }) as unknown as typeof fetch;
  const config = loadConfig({
    NODE_ENV: 'test',
    GATEWAY_BASE_URL: 'https://gw.example/api/hiecm',
    GATEWAY_CLIENT_ID: 'vault',
    GATEWAY_CLIENT_SECRET: 'secret',
    ...env,
  });
  return { gw: new GatewayClient(config, () => clock.now, fetchImpl), seen, clock };
}
const session = (expiresIn = 1200) => new Response(JSON.stringify({ accessToken: 'T1', expiresIn }), { status: 200 });
const ok = () => new Response(null, { status: 202 });
const UUID = /^[0-9a-f-]{36}$/;

describe('GatewayClient', () => {
  it('v3: the session call, then a message with the id in headers and the echo in `response`', async () => {
    const { gw, seen } = client({}, (s) => (s.url.endsWith('/sessions') ? session() : ok()));
    const id = await gw.send(
      'consentOnNotify',
      { acknowledgement: { status: 'OK', consentId: 'c1' } },
      {
        inReplyTo: 'in-1',
        hip: 'HIP-9',
      },
    );
    expect(seen[0].url).toBe('https://gw.example/api/hiecm/gateway/v3/sessions');
    expect(seen[0].body).toEqual({ clientId: 'vault', clientSecret: 'secret', grantType: 'client_credentials' });
    expect(seen[0].headers['REQUEST-ID']).toMatch(UUID);
    expect(seen[0].headers.TIMESTAMP).toBe('2026-01-01T00:00:00.000Z');
    expect(seen[0].headers['X-CM-ID']).toBe('sbx');
    expect(seen[1].url).toBe('https://gw.example/api/hiecm/consent/v3/request/hip/on-notify');
    expect(seen[1].body).toEqual({
      acknowledgement: { status: 'OK', consentId: 'c1' },
      response: { requestId: 'in-1' },
    });
    expect(seen[1].headers).toMatchObject({
      Authorization: 'Bearer T1',
      'REQUEST-ID': id,
      'X-HIP-ID': 'HIP-9',
      'X-CM-ID': 'sbx',
      TIMESTAMP: '2026-01-01T00:00:00.000Z',
    });
    expect(seen[1].redirect).toBe('manual');
  });

  it('v0.5: requestId and timestamp in the body (the same as the headers) and the echo in `resp`', async () => {
    const { gw, seen } = client({ GATEWAY_API_VERSION: 'v0.5', GATEWAY_BASE_URL: 'https://gw.example/gateway' }, (s) =>
      s.url.endsWith('/sessions') ? session() : ok(),
    );
    const id = await gw.send(
      'hiOnRequest',
      { hiRequest: { transactionId: 't', sessionStatus: 'ACKNOWLEDGED' } },
      {
        inReplyTo: 'in-2',
      },
    );
    expect(seen[0].url).toBe('https://gw.example/gateway/v0.5/sessions');
    expect(seen[0].body).toEqual({ clientId: 'vault', clientSecret: 'secret' });
    expect(seen[1].url).toBe('https://gw.example/gateway/v0.5/health-information/hip/on-request');
    expect(seen[1].body).toEqual({
      requestId: id,
      timestamp: '2026-01-01T00:00:00.000Z',
      hiRequest: { transactionId: 't', sessionStatus: 'ACKNOWLEDGED' },
      resp: { requestId: 'in-2' },
    });
    expect(seen[1].headers['REQUEST-ID']).toBe(id);
  });

  it('a v0.5 answer under a v3 configuration goes to GATEWAY_V05_BASE_URL; a call v0.5 lacks is refused', async () => {
    const { gw, seen } = client({ GATEWAY_V05_BASE_URL: 'https://gw.example/gateway' }, (s) =>
      s.url.endsWith('/sessions') ? session() : ok(),
    );
    await gw.send('patientStatusOnNotify', { acknowledgement: { status: 'OK' } }, { dialect: 'v0.5', inReplyTo: 'r' });
    expect(seen[1].url).toBe('https://gw.example/gateway/v0.5/patients/status/on-notify');
    expect(gw.has('generateToken', 'v0.5')).toBe(false);
    await expect(gw.send('generateToken', {}, { dialect: 'v0.5' })).rejects.toBeInstanceOf(GatewayError);
    await expect(gw.send('patientStatusOnNotify', {}, { dialect: 'v3' })).rejects.toBeInstanceOf(GatewayError);
  });

  it('the session is reused until 30 s before expiresIn, and taken again after a 401', async () => {
    let unauthorised = false;
    const { gw, seen, clock } = client({}, (s) => {
      if (s.url.endsWith('/sessions')) return session(600);
      if (unauthorised) {
        unauthorised = false;
        return new Response(null, { status: 401 });
      }
      return ok();
    });
    const sessions = () => seen.filter((s) => s.url.endsWith('/sessions')).length;
    await gw.send('hiNotify', { notification: {} });
    await gw.send('hiNotify', { notification: {} });
    expect(sessions()).toBe(1);
    clock.now = new Date(clock.now.getTime() + 571_000);
    await gw.send('hiNotify', { notification: {} });
    expect(sessions()).toBe(2);
    unauthorised = true;
    await gw.send('hiNotify', { notification: {} });
    expect(sessions()).toBe(3);
  });

  it('a 3xx answer is a failure, not followed; a 4xx is not retried', async () => {
    const { gw, seen } = client({}, (s) =>
      s.url.endsWith('/sessions')
        ? session()
        : new Response(null, { status: 307, headers: { Location: 'https://elsewhere.example/' } }),
    );
    await expect(gw.send('hiNotify', { notification: {} })).rejects.toThrow(/HTTP 307/);
    expect(seen.filter((s) => !s.url.endsWith('/sessions'))).toHaveLength(1);
  });
});
