/**
 * The push's outbound safety (src/http/outbound.ts), without the app: which
 * addresses are refused, which URLs are refused before anything is resolved,
 * that a name is checked at connect time by the lookup the connection uses,
 * that redirects are returned and not followed, that at most 4 KiB of an
 * answer is read, and the timeout. Servers here are node:http on loopback,
 * reached only where the policy allows them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type OutboundPolicy,
  OutboundRefused,
  canonicalIp,
  checkDestination,
  classifyAddress,
  postJson,
  pushPolicy,
} from '../../src/http/outbound.js';

describe('classifyAddress', () => {
  const table: [string, string][] = [
    // IPv4
    ['8.8.8.8', 'public'],
    ['93.184.216.34', 'public'],
    ['1.1.1.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'reserved'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.15.255.255', 'public'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'link-local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.63.255.255', 'public'],
    ['100.128.0.1', 'public'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['192.0.2.1', 'reserved'],
    ['198.51.100.7', 'reserved'],
    ['203.0.113.9', 'reserved'],
    ['198.18.0.1', 'reserved'],
    ['192.0.0.8', 'reserved'],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    ['2001::1', 'reserved'], // Teredo
    ['100::1', 'reserved'],
    ['2606:4700:4700::1111', 'public'],
    ['2a00:1450:4001:82b::200e', 'public'],
    // IPv4 inside IPv6
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0:127.0.0.1', 'loopback'], // IPv4-translated
    ['::127.0.0.1', 'loopback'], // IPv4-compatible (deprecated)
    ['::8.8.8.8', 'reserved'],
    ['64:ff9b::127.0.0.1', 'loopback'], // NAT64
    ['64:ff9b::8.8.8.8', 'public'],
    ['64:ff9b:1::1', 'private'],
    ['2002:7f00:1::1', 'loopback'], // 6to4 of 127.0.0.1
    ['2002:c0a8:101::1', 'private'], // 6to4 of 192.168.1.1
    // not an address
    ['localhost', 'reserved'],
    ['example.org', 'reserved'],
    ['', 'reserved'],
  ];
  it.each(table)('%s is %s', (address, cls) => {
    expect(classifyAddress(address)).toBe(cls);
  });

  it('canonicalIp spells IPv4-mapped IPv6 as IPv4 and IPv6 in one form', () => {
    expect(canonicalIp('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(canonicalIp('::FFFF:7f00:1')).toBe('127.0.0.1');
    expect(canonicalIp('0:0::1')).toBe(canonicalIp('::1'));
    expect(canonicalIp('2001:DB8::1')).toBe(canonicalIp('2001:db8:0:0:0:0:0:1'));
    expect(canonicalIp('example.org')).toBeUndefined();
  });
});

const policy = (p: Partial<OutboundPolicy> = {}): OutboundPolicy => ({
  allowHttp: true,
  allowedHosts: [],
  selfHosts: [],
  interfaces: () => ['127.0.0.1', '::1', '203.0.114.7'],
  resolve: async () => {
    throw new Error('no resolution in this test');
  },
  ...p,
});

describe('checkDestination (before anything is resolved)', () => {
  const refused = (url: string, p = policy()) => {
    const d = checkDestination(url, p);
    expect(d.ok, url).toBe(false);
    return d.ok ? '' : d.reason;
  };
  const accepted = (url: string, p = policy()) => expect(checkDestination(url, p).ok, url).toBe(true);

  it('refuses loopback, private, link-local, CGNAT and unspecified literals, in every spelling', () => {
    for (const url of [
      'http://127.0.0.1:8080/push',
      'http://0x7f000001:8080/push', // the WHATWG parser: 127.0.0.1
      'http://2130706433:8080/push', // likewise
      'http://0177.0.0.1/push',
      'http://127.1/push',
      'http://[::1]:8080/push',
      'http://[::ffff:127.0.0.1]/push',
      'http://[::ffff:7f00:1]/push',
      'http://[0:0:0:0:0:ffff:127.0.0.1]/push',
      'http://0.0.0.0/push',
      'http://[::]/push',
      'http://10.0.0.5/push',
      'http://172.20.1.1/push',
      'http://192.168.0.10/push',
      'http://[fd00::5]/push',
      'http://169.254.169.254/latest/meta-data',
      'http://[fe80::1]/push',
      'http://100.64.1.1/push',
      'http://224.0.0.1/push',
    ])
      expect(refused(url)).toMatch(/address/);
    expect(refused('http://0x7f000001:8080/push')).toMatch(/127\.0\.0\.1 is a loopback address/);
    expect(refused('http://169.254.169.254/')).toMatch(/link-local/);
    expect(refused('http://100.64.1.1/')).toMatch(/cgnat/);
  });

  it('refuses localhost by name, and the store’s own hosts and interface addresses', () => {
    expect(refused('http://localhost:8080/push')).toMatch(/localhost is a loopback name/);
    expect(refused('http://LOCALHOST./push')).toMatch(/loopback name/);
    expect(refused('http://api.localhost/push')).toMatch(/loopback name/);
    const p = policy({ selfHosts: ['vault.example.org', '93.184.216.34'] });
    expect(refused('https://vault.example.org/push', p)).toMatch(/own host/);
    expect(refused('https://VAULT.example.org:8443/push', p)).toMatch(/own host/);
    expect(refused('https://93.184.216.34/push', p)).toMatch(/own addresses/);
    expect(refused('https://203.0.114.7/push', p)).toMatch(/own addresses/); // an interface's address
    accepted('https://viewer.example.org/push', p);
    accepted('https://93.184.216.35/push', p);
  });

  it('refuses what is not http(s), credentials, and http unless allowed', () => {
    expect(refused('ftp://viewer.example.org/push')).toMatch(/http\(s\)/);
    expect(refused('file:///etc/passwd')).toMatch(/http\(s\)/);
    expect(refused('not a url')).toMatch(/not a URL/);
    expect(refused('https://user:pw@viewer.example.org/push')).toMatch(/credentials/);
    const strict = policy({ allowHttp: false });
    expect(refused('http://viewer.example.org/push', strict)).toMatch(/must be https/);
    accepted('https://viewer.example.org/push', strict);
    accepted('http://viewer.example.org/push');
  });

  it('HI_PUSH_ALLOWED_HOSTS exempts the host, or only the host:port it names', () => {
    const p = policy({ allowedHosts: ['127.0.0.1:8080', 'localhost', '[::1]:9000', 'Viewer.Internal'] });
    accepted('http://127.0.0.1:8080/push', p);
    accepted('http://0x7f000001:8080/push', p); // the same host, spelt otherwise
    expect(refused('http://127.0.0.1:8081/push', p)).toMatch(/loopback/);
    accepted('http://localhost:1234/push', p);
    accepted('http://[::1]:9000/push', p);
    expect(refused('http://[::1]:9001/push', p)).toMatch(/loopback/);
    accepted('http://viewer.internal/push', p);
    // the exemption is of the address rules only: https is still required when http is not allowed
    expect(refused('http://127.0.0.1:8080/push', { ...p, allowHttp: false })).toMatch(/https/);
    // a bare IPv6 entry and one in brackets without a port
    accepted('http://[::1]:5/push', policy({ allowedHosts: ['::1'] }));
    accepted('http://[::1]:5/push', policy({ allowedHosts: ['[::1]'] }));
  });

  it('pushPolicy: http allowed by default outside production only; HOST unless a wildcard; PUBLIC_BASE_URL host', () => {
    const base = {
      NODE_ENV: 'development' as const,
      HI_PUSH_ALLOW_HTTP: undefined,
      HI_PUSH_ALLOWED_HOSTS: [],
      PUBLIC_BASE_URL: undefined,
      HOST: '127.0.0.1',
    };
    expect(pushPolicy(base).allowHttp).toBe(true);
    expect(pushPolicy({ ...base, NODE_ENV: 'test' }).allowHttp).toBe(true);
    expect(pushPolicy({ ...base, NODE_ENV: 'production' }).allowHttp).toBe(false);
    expect(pushPolicy({ ...base, NODE_ENV: 'production', HI_PUSH_ALLOW_HTTP: 'true' }).allowHttp).toBe(true);
    expect(pushPolicy({ ...base, HI_PUSH_ALLOW_HTTP: 'false' }).allowHttp).toBe(false);
    expect(pushPolicy(base).selfHosts).toEqual(['127.0.0.1']);
    expect(pushPolicy({ ...base, HOST: '0.0.0.0' }).selfHosts).toEqual([]);
    expect(pushPolicy({ ...base, HOST: '::' }).selfHosts).toEqual([]);
    expect(pushPolicy({ ...base, HOST: '::', PUBLIC_BASE_URL: 'https://vault.example.org/base' }).selfHosts).toEqual([
      'vault.example.org',
    ]);
    expect(pushPolicy({ ...base, HI_PUSH_ALLOWED_HOSTS: ['a:1', 'b'] }).allowedHosts).toEqual(['a:1', 'b']);
  });
});

// ---------------------------------------------------------------------------

let server: Server;
let port: number;
const hits: { url: string; body: string }[] = [];
/** Bytes the huge answer managed to write before the store hung up. */
let hugeWritten = 0;
let hugeClosed: Promise<void> = Promise.resolve();
const HUGE = 200 * 1024 * 1024;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ url: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      if (req.url === '/redirect') {
        res.writeHead(307, { Location: `http://127.0.0.1:${port}/target` });
        return res.end();
      }
      if (req.url === '/silent') return; // never answers
      if (req.url === '/huge') {
        hugeWritten = 0;
        let done!: () => void;
        hugeClosed = new Promise<void>((r) => (done = r));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(HUGE) });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (hugeWritten < HUGE && !res.destroyed) {
            hugeWritten += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('close', () => done());
        res.on('error', () => done());
        return pump();
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('postJson', () => {
  const allowed = () => policy({ allowedHosts: [`127.0.0.1:${port}`] });

  it('posts to an allowed destination and answers its status', async () => {
    const before = hits.length;
    const res = await postJson(`http://127.0.0.1:${port}/ok?x=1`, '{"a":1}', { policy: allowed(), timeoutMs: 2000 });
    expect(res).toMatchObject({ status: 200, truncated: false });
    expect(hits.slice(before)).toEqual([{ url: '/ok?x=1', body: '{"a":1}' }]);
  });

  it('refuses a literal loopback destination without connecting', async () => {
    const before = hits.length;
    for (const url of [`http://127.0.0.1:${port}/ok`, `http://0x7f000001:${port}/ok`, `http://2130706433:${port}/ok`])
      await expect(postJson(url, '{}', { policy: policy(), timeoutMs: 2000 })).rejects.toBeInstanceOf(OutboundRefused);
    expect(hits.length).toBe(before);
  });

  it("refuses an IP literal that is the address the store's own public name resolves to (behind a load balancer)", async () => {
    const p = policy({
      selfHosts: ['vault.example.org'],
      resolve: async (h) => (h === 'vault.example.org' ? [{ address: '93.184.216.34', family: 4 }] : []),
    });
    // The literal passes the synchronous check (it is a public address not on this machine) ...
    expect(checkDestination('https://93.184.216.34/push', p).ok).toBe(true);
    // ... but is refused before connecting, as the store's own name would be.
    const err = await postJson('https://93.184.216.34/push', '{}', { policy: p, timeoutMs: 2000 }).catch((e) => e);
    expect(err).toBeInstanceOf(OutboundRefused);
    expect(err.message).toMatch(/one of this store's own addresses/);
  });

  it('checks a name at connect time: a name that resolves to loopback is refused, unless allowed by name', async () => {
    const before = hits.length;
    let lookups = 0;
    const resolve = async () => {
      lookups++;
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const err = await postJson(`http://viewer.example.org:${port}/ok`, '{}', {
      policy: policy({ resolve }),
      timeoutMs: 2000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(OutboundRefused);
    expect(err.message).toMatch(/viewer\.example\.org resolves to 127\.0\.0\.1, which is a loopback address/);
    expect(hits.length).toBe(before);
    expect(lookups).toBe(1);
    // allowed by name: the address it resolves to is then used as it is
    const res = await postJson(`http://viewer.example.org:${port}/ok`, '{}', {
      policy: policy({ resolve, allowedHosts: ['viewer.example.org'] }),
      timeoutMs: 2000,
    });
    expect(res.status).toBe(200);
    expect(hits.length).toBe(before + 1);
  });

  it('a name with any forbidden address among several is refused (no fallback to the bad one)', async () => {
    const resolve = async () => [
      { address: '93.184.216.34', family: 4 },
      { address: '::ffff:127.0.0.1', family: 6 },
    ];
    await expect(
      postJson(`http://viewer.example.org:${port}/ok`, '{}', { policy: policy({ resolve }), timeoutMs: 2000 }),
    ).rejects.toThrow(/loopback/);
  });

  it('a name that resolves to one of the store’s own addresses is refused', async () => {
    const resolve = async () => [{ address: '203.0.114.7', family: 4 }];
    await expect(
      postJson(`http://viewer.example.org:${port}/ok`, '{}', { policy: policy({ resolve }), timeoutMs: 2000 }),
    ).rejects.toThrow(/own addresses/);
  });

  it('a redirect is answered as such and not followed', async () => {
    const before = hits.length;
    const res = await postJson(`http://127.0.0.1:${port}/redirect`, '{}', { policy: allowed(), timeoutMs: 2000 });
    expect(res.status).toBe(307);
    expect(hits.slice(before).map((h) => h.url)).toEqual(['/redirect']);
  });

  it('reads at most 4 KiB of a huge answer, then hangs up', async () => {
    const res = await postJson(`http://127.0.0.1:${port}/huge`, '{}', { policy: allowed(), timeoutMs: 10_000 });
    expect(res.status).toBe(200);
    expect(res.truncated).toBe(true);
    expect(res.bytesRead).toBeGreaterThan(4096);
    expect(res.bytesRead).toBeLessThanOrEqual(4096 + 64 * 1024); // the limit, plus at most the chunk that crossed it
    await hugeClosed;
    // what the viewer could write before the connection was dropped: socket buffers, not 200 MB
    console.log(`[outbound] huge answer: read ${res.bytesRead} bytes; the viewer wrote ${hugeWritten} of ${HUGE}`);
    expect(hugeWritten).toBeLessThan(32 * 1024 * 1024);
  });

  it('gives up after the timeout', async () => {
    const started = Date.now();
    const err = await postJson(`http://127.0.0.1:${port}/silent`, '{}', { policy: allowed(), timeoutMs: 300 }).catch(
      (e) => e,
    );
    expect(err.name).toBe('TimeoutError');
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
