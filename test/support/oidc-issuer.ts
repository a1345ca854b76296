/**
 * A real OpenID Connect issuer for the sign-in tests: the oidc-provider
 * package on a loopback port, with one confidential client (the store),
 * PKCE required, and the role and facility claims the store maps. Its login
 * page is a small form ("sign in as"); the account signed in as is one the
 * test registered, and consent is granted at once. Everything else (the
 * authorization code, PKCE, state, nonce, the signed ID token, discovery,
 * the token endpoint) is the provider's own.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface Account {
  sub: string;
  name: string;
  abdm_role?: string;
  abdm_facility?: string;
}

export interface TestIssuer {
  url: string;
  clientId: string;
  clientSecret: string;
  /** Accounts by login name: the form signs in as one of them. */
  accounts: Map<string, Account>;
  close(): Promise<void>;
}

const CLAIMS = ['name', 'abdm_role', 'abdm_facility'];

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

export async function startTestIssuer(redirectUri: string): Promise<TestIssuer> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const clientId = 'abha-vault-web';
  const clientSecret = 'test-client-secret-of-thirty-two-or-more-characters';
  const accounts = new Map<string, Account>();
  const provider = new Provider(url, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: CLAIMS },
    conformIdTokenClaims: false, // the role and facility travel in the ID token, where the store reads them
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['test-issuer-cookie-key-0123456789abcdef'] },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    findAccount: async (_ctx: unknown, id: string) => {
      const account = [...accounts.values()].find((a) => a.sub === id);
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ ...account }) };
    },
  });
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    if (!m) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end(
          `<!doctype html><html lang="en"><head><title>Test issuer sign-in</title></head><body><main>` +
            `<h1>Test issuer</h1><form method="post" action="/interaction/${escape(m[1])}">` +
            `<label>Login <input name="login" autocomplete="username"></label>` +
            `<button type="submit">Sign in</button></form></main></body></html>`,
        );
        return;
      }
      const body = await new Promise<string>((resolve) => {
        let text = '';
        req.on('data', (d) => (text += d));
        req.on('end', () => resolve(text));
      });
      const account = accounts.get(new URLSearchParams(body).get('login') ?? '');
      if (!account) {
        await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'unknown login' });
        return;
      }
      const grant = new provider.Grant({ accountId: account.sub, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope));
      grant.addOIDCClaims(CLAIMS);
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: account.sub }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`interaction failed: ${(e as Error).message}`);
    }
  });

  return {
    url,
    clientId,
    clientSecret,
    accounts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
