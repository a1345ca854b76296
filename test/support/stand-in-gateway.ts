/**
 * A stand-in ABDM gateway on loopback: issues session tokens and records every
 * callback it receives, so tests can wait for one and inspect it.
 */
import { createServer, type Server } from 'node:http';

export interface Callback {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export interface StandInGateway {
  url: string;
  token: string;
  callbacks: Callback[];
  /** Resolves with the first callback to `path` matching `pred`, waiting up to `ms`. */
  waitFor(path: string, pred?: (c: Callback) => boolean, ms?: number): Promise<Callback>;
  close(): Promise<void>;
}

export async function startStandInGateway(clientId = 'abha-vault', clientSecret = 's3cret'): Promise<StandInGateway> {
  const callbacks: Callback[] = [];
  const token = `gw-token-${Math.random().toString(36).slice(2)}`;
  const server: Server = createServer((req, res) => {
    let data = '';
    req.on('data', (d) => {
      data += d;
    });
    req.on('end', () => {
      const body = data ? JSON.parse(data) : undefined;
      if (req.url === '/v0.5/sessions') {
        const ok = body?.clientId === clientId && body?.clientSecret === clientSecret;
        res.writeHead(ok ? 200 : 401, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(ok ? { accessToken: token, expiresIn: 600 } : { error: 'bad client' }));
        return;
      }
      callbacks.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    token,
    callbacks,
    async waitFor(path, pred = () => true, ms = 10_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = callbacks.find((c) => c.path === path && pred(c));
        if (hit) return hit;
        if (Date.now() > deadline)
          throw new Error(`no callback to ${path} within ${ms} ms (got: ${callbacks.map((c) => c.path).join(', ')})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
