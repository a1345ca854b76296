/**
 * A health-information viewer (HIU) for push tests: a node:http server on loopback that keeps every
 * page pushed to it, and the v3 HI request a consent manager sends for it.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KeyMaterial } from '../../src/abdm/fidelius.js';

export interface Viewer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Every page received, parsed, with the path it was posted to. */
  pages: { path: string; body: any }[];
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a viewer that answers every push 200 `{}`. */
export async function startViewer(): Promise<Viewer> {
  const pages: Viewer['pages'] = [];
  const server = createServer(async (req, res) => {
    pages.push({ path: req.url ?? '', body: JSON.parse(await readBody(req)) });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pages,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The body of a v3 health-information request (`/api/v3/hip/health-information/request`). */
export function hiRequestBody(o: {
  txId: string;
  consentId: string;
  dataPushUrl: string;
  key: KeyMaterial;
  range?: { from: string; to: string };
}) {
  return {
    transactionId: o.txId,
    hiRequest: {
      consent: { id: o.consentId },
      dateRange: o.range ?? { from: '2000-01-01T00:00:00Z', to: '2030-01-01T00:00:00Z' },
      dataPushUrl: o.dataPushUrl,
      keyMaterial: {
        cryptoAlg: 'ECDH',
        curve: 'Curve25519',
        dhPublicKey: {
          expiry: new Date(Date.now() + 3600_000).toISOString(),
          parameters: 'Curve25519/32byte random key',
          keyValue: o.key.x509PublicKey,
        },
        nonce: o.key.nonce,
      },
    },
  };
}
