/**
 * Outbound HTTP to a URL the store did not choose: the health-information
 * push to a viewer's dataPushUrl (abdm/transfer.ts). The URL arrives in a
 * request, so it must not be able to point the store at itself, at the
 * machines beside it, or at anything but a public address (SSRF), nor make it
 * hold a huge answer in memory.
 *
 * - Scheme: http or https only; https unless HI_PUSH_ALLOW_HTTP is 'true'
 *   (unset: allowed outside NODE_ENV=production, refused in production).
 * - Destination: never loopback (127/8, ::1), unspecified (0.0.0.0, ::),
 *   private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16,
 *   fe80::/10), CGNAT (100.64/10), multicast or reserved ranges, nor the
 *   IPv4-mapped, -translated, -compatible, NAT64 or 6to4 IPv6 forms of those,
 *   nor the store's own addresses (its network interfaces, the host of
 *   PUBLIC_BASE_URL, HOST unless a wildcard), unless HI_PUSH_ALLOWED_HOSTS
 *   names the host or host:port.
 * - When: a literal host (after the WHATWG parser's normalisation, so
 *   `0x7f000001` and `2130706433` are 127.0.0.1) is checked as the request
 *   arrives (`checkDestination`, a refusal with its reason); a name is checked
 *   as the connection is made, by the `lookup` the connection uses: the
 *   addresses checked are the ones connected to (no DNS-rebinding gap).
 * - The answer: redirects are never followed (the caller sees the 3xx); at
 *   most 4 KiB of the body is read, then the socket is destroyed; the whole
 *   exchange is bounded by a timeout. One connection per request.
 */
import http from 'node:http';
import https from 'node:https';
import { promises as dns } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../config.js';

// ---------------------------------------------------------------------------
// Address classification
// ---------------------------------------------------------------------------

export type AddressClass =
  'public' | 'loopback' | 'unspecified' | 'private' | 'link-local' | 'cgnat' | 'multicast' | 'reserved';

/** The four bytes of a dotted-quad IPv4 address, or undefined. */
function ipv4Bytes(address: string): number[] | undefined {
  if (isIP(address) !== 4) return undefined;
  return address.split('.').map(Number);
}

/** The eight 16-bit groups of an IPv6 address (zone id dropped), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  let s = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIP(s) !== 6) return undefined;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const b = ipv4Bytes(last);
    if (!b) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const halves = s.split('::');
  let groups: string[];
  if (halves.length === 2) {
    const head = halves[0] ? halves[0].split(':') : [];
    const tail = halves[1] ? halves[1].split(':') : [];
    groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  } else groups = s.split(':');
  if (groups.length !== 8) return undefined;
  return groups.map((g) => parseInt(g, 16));
}

function classifyIpv4([a, b, c]: number[]): AddressClass {
  if (a === 0) return b === 0 && c === 0 ? 'unspecified' : 'reserved'; // 0.0.0.0/8 "this network"
  if (a === 10) return 'private';
  if (a === 100 && (b & 0xc0) === 64) return 'cgnat'; // 100.64.0.0/10
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 172 && (b & 0xf0) === 16) return 'private'; // 172.16.0.0/12
  if (a === 192 && b === 168) return 'private';
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved'; // IETF protocol assignments; TEST-NET-1
  if (a === 192 && b === 88 && c === 99) return 'reserved'; // 6to4 relay anycast (deprecated)
  if (a === 198 && (b & 0xfe) === 18) return 'reserved'; // 198.18.0.0/15 benchmarking
  if (a === 198 && b === 51 && c === 100) return 'reserved'; // TEST-NET-2
  if (a === 203 && b === 0 && c === 113) return 'reserved'; // TEST-NET-3
  if ((a & 0xf0) === 224) return 'multicast'; // 224.0.0.0/4
  if ((a & 0xf0) === 240) return 'reserved'; // 240.0.0.0/4, including 255.255.255.255
  return 'public';
}

const v4Of = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];

function classifyIpv6(g: number[]): AddressClass {
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 8)) return 'unspecified';
  if (zeros(0, 7) && g[7] === 1) return 'loopback';
  if (zeros(0, 5) && g[5] === 0xffff) return classifyIpv4(v4Of(g[6], g[7])); // ::ffff:a.b.c.d, IPv4-mapped
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return classifyIpv4(v4Of(g[6], g[7])); // ::ffff:0:a.b.c.d
  if (zeros(0, 6)) {
    // ::a.b.c.d, IPv4-compatible (deprecated): never a destination, but say what it embeds when that is worse
    const inner = classifyIpv4(v4Of(g[6], g[7]));
    return inner === 'public' ? 'reserved' : inner;
  }
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return classifyIpv4(v4Of(g[6], g[7])); // NAT64 64:ff9b::/96
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return 'private'; // local-use NAT64 64:ff9b:1::/48
  if (g[0] === 0x2002) return classifyIpv4(v4Of(g[1], g[2])); // 6to4: 2002:aabb:ccdd::/48
  if (g[0] === 0x2001 && g[1] < 0x200) return 'reserved'; // 2001::/23 IETF protocol assignments, incl. Teredo
  if (g[0] === 0x2001 && g[1] === 0xdb8) return 'reserved'; // documentation
  if (g[0] === 0x3fff && g[1] < 0x1000) return 'reserved'; // documentation 3fff::/20
  if ((g[0] & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((g[0] & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((g[0] & 0xffc0) === 0xfec0) return 'private'; // fec0::/10 site-local (deprecated)
  if ((g[0] & 0xff00) === 0xff00) return 'multicast';
  if ((g[0] & 0xe000) !== 0x2000) return 'reserved'; // outside 2000::/3, the global unicast space
  return 'public';
}

/** What kind of address an IP literal is; 'reserved' for anything that is not one. */
export function classifyAddress(address: string): AddressClass {
  const v4 = ipv4Bytes(address);
  if (v4) return classifyIpv4(v4);
  const v6 = ipv6Groups(address);
  return v6 ? classifyIpv6(v6) : 'reserved';
}

/** An IP literal in one spelling (IPv4-mapped IPv6 as IPv4), for comparing; undefined when it is not one. */
export function canonicalIp(address: string): string | undefined {
  if (ipv4Bytes(address)) return address;
  const g = ipv6Groups(address);
  if (!g) return undefined;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return v4Of(g[6], g[7]).join('.');
  return g.map((x) => x.toString(16)).join(':');
}

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

export interface ResolvedAddress {
  address: string;
  family: number;
}

export interface OutboundPolicy {
  /** http: URLs may be used (else https only). */
  allowHttp: boolean;
  /** Hosts (`host` or `host:port`, IPv6 in brackets when with a port) exempt from the address rules. */
  allowedHosts: string[];
  /** Names and literals the store is reached at (PUBLIC_BASE_URL's host, HOST). */
  selfHosts: string[];
  /** This machine's addresses; default: every address of os.networkInterfaces(). */
  interfaces?: () => string[];
  /** Name resolution; default: the system resolver (dns.lookup, every address). */
  resolve?: (hostname: string) => Promise<ResolvedAddress[]>;
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]', '*']);

/** The push's policy from configuration (HI_PUSH_ALLOW_HTTP, HI_PUSH_ALLOWED_HOSTS, PUBLIC_BASE_URL, HOST). */
export function pushPolicy(
  config: Pick<Config, 'NODE_ENV' | 'HI_PUSH_ALLOW_HTTP' | 'HI_PUSH_ALLOWED_HOSTS' | 'PUBLIC_BASE_URL' | 'HOST'>,
): OutboundPolicy {
  const selfHosts: string[] = [];
  if (config.PUBLIC_BASE_URL) {
    try {
      selfHosts.push(new URL(config.PUBLIC_BASE_URL).hostname);
    } catch {
      // the configuration schema has checked it is a URL
    }
  }
  if (!WILDCARDS.has(config.HOST.trim())) selfHosts.push(config.HOST.trim());
  return {
    allowHttp:
      config.HI_PUSH_ALLOW_HTTP === undefined ? config.NODE_ENV !== 'production' : config.HI_PUSH_ALLOW_HTTP === 'true',
    allowedHosts: config.HI_PUSH_ALLOWED_HOSTS,
    selfHosts,
  };
}

/** A host as compared: lower case, brackets off, IP literals in one spelling. */
function normalHost(host: string): string {
  const h = host.trim().toLowerCase().replace(/\.$/, '');
  const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return canonicalIp(bare) ?? bare;
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal → host and port. */
function parseHostEntry(entry: string): { host: string; port?: string } {
  const e = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (bracketed) return { host: normalHost(bracketed[1]), port: bracketed[2] };
  if ((e.match(/:/g) ?? []).length > 1) return { host: normalHost(e) };
  const m = /^(.*?)(?::(\d+))?$/.exec(e)!;
  return { host: normalHost(m[1]), port: m[2] };
}

const defaultPort = (url: URL) => url.port || (url.protocol === 'https:' ? '443' : '80');

/** Whether HI_PUSH_ALLOWED_HOSTS names this URL's host, or its host and port. */
export function allowedHost(policy: OutboundPolicy, url: URL): boolean {
  const host = normalHost(url.hostname);
  const port = defaultPort(url);
  return policy.allowedHosts.some((entry) => {
    const e = parseHostEntry(entry);
    return e.host === host && (e.port === undefined || e.port === port);
  });
}

function interfaceAddresses(policy: OutboundPolicy): string[] {
  if (policy.interfaces) return policy.interfaces();
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address));
}

/** The store's own IP literals: its interfaces and the literals among its hosts. */
function selfAddresses(policy: OutboundPolicy): Set<string> {
  const out = new Set<string>();
  for (const a of [...interfaceAddresses(policy), ...policy.selfHosts]) {
    const c = canonicalIp(a.startsWith('[') ? a.slice(1, -1) : a);
    if (c) out.add(c);
  }
  return out;
}

const isLocalhostName = (host: string) => host === 'localhost' || host.endsWith('.localhost'); // RFC 6761

/** Why an address may not be pushed to, or undefined when it may. */
function addressRefusal(policy: OutboundPolicy, address: string, self: Set<string>, label: string): string | undefined {
  const cls = classifyAddress(address);
  if (cls !== 'public') return `${label} is ${cls === 'unspecified' ? 'the unspecified' : `a ${cls}`} address`;
  if (self.has(canonicalIp(address) ?? address)) return `${label} is one of this store's own addresses`;
  return undefined;
}

export type Destination = { ok: true; url: URL; allowed: boolean } | { ok: false; reason: string };

const ALLOW_HINT = ' (HI_PUSH_ALLOWED_HOSTS can allow it)';

/**
 * Whether a push URL may be used, as far as can be told without resolving its name: scheme, https, credentials,
 * and a literal or well-known host. The reason names the host, never the rest of the URL.
 */
export function checkDestination(raw: string, policy: OutboundPolicy): Destination {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'dataPushUrl is not a URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: `dataPushUrl must be an http(s) URL, not ${url.protocol.slice(0, 20)}` };
  if (url.protocol === 'http:' && !policy.allowHttp)
    return { ok: false, reason: 'dataPushUrl must be https (HI_PUSH_ALLOW_HTTP is not true)' };
  if (url.username || url.password) return { ok: false, reason: 'dataPushUrl must not carry credentials' };
  if (allowedHost(policy, url)) return { ok: true, url, allowed: true };
  const host = normalHost(url.hostname);
  const shown = url.hostname.slice(0, 100);
  if (canonicalIp(host)) {
    const why = addressRefusal(policy, host, selfAddresses(policy), `dataPushUrl host ${shown}`);
    return why ? { ok: false, reason: why + ALLOW_HINT } : { ok: true, url, allowed: false };
  }
  if (isLocalhostName(host)) return { ok: false, reason: `dataPushUrl host ${shown} is a loopback name${ALLOW_HINT}` };
  if (policy.selfHosts.some((h) => normalHost(h) === host))
    return { ok: false, reason: `dataPushUrl host ${shown} is this store's own host${ALLOW_HINT}` };
  return { ok: true, url, allowed: false };
}

// ---------------------------------------------------------------------------
// The request
// ---------------------------------------------------------------------------

/** The policy refused the destination (not worth retrying). */
export class OutboundRefused extends Error {
  override name = 'OutboundRefused';
}

/** The exchange took longer than its timeout. */
export class OutboundTimeout extends Error {
  override name = 'TimeoutError';
}

const defaultResolve = async (hostname: string): Promise<ResolvedAddress[]> =>
  dns.lookup(hostname, { all: true, verbatim: true });

/** The addresses the store's own host names resolve to, looked up at most once a minute (per resolver). */
const selfResolved = new WeakMap<object, Map<string, { until: number; addresses: string[] }>>();
async function resolvedSelf(policy: OutboundPolicy): Promise<string[]> {
  const resolve = policy.resolve ?? defaultResolve;
  let cache = selfResolved.get(resolve);
  if (!cache) selfResolved.set(resolve, (cache = new Map()));
  const out: string[] = [];
  for (const h of policy.selfHosts) {
    const host = normalHost(h);
    if (canonicalIp(host)) continue;
    let hit = cache.get(host);
    if (!hit || hit.until < Date.now()) {
      const addresses = await resolve(host).then(
        (r) => r.map((a) => a.address),
        () => [] as string[],
      );
      cache.set(host, (hit = { until: Date.now() + 60_000, addresses }));
    }
    out.push(...hit.addresses);
  }
  return out;
}

/**
 * A `lookup` for the connection that refuses names resolving to an address the policy forbids; the connection then
 * uses exactly the addresses checked.
 */
export function guardedLookup(policy: OutboundPolicy, allowed: boolean): LookupFunction {
  const resolve = policy.resolve ?? defaultResolve;
  return (hostname, options, callback) => {
    const cb = callback as (err: Error | null, address: string | ResolvedAddress[], family?: number) => void;
    void (async () => {
      let addresses = await resolve(hostname);
      const family = typeof options?.family === 'number' ? options.family : 0;
      if (family === 4 || family === 6) addresses = addresses.filter((a) => a.family === family);
      if (!addresses.length) {
        const e = new Error(`getaddrinfo ENOTFOUND ${hostname}`) as NodeJS.ErrnoException;
        e.code = 'ENOTFOUND';
        throw e;
      }
      if (!allowed) {
        const self = selfAddresses(policy);
        for (const a of await resolvedSelf(policy)) self.add(canonicalIp(a) ?? a);
        for (const a of addresses) {
          const why = addressRefusal(
            policy,
            a.address,
            self,
            `${hostname.slice(0, 100)} resolves to ${a.address}, which`,
          );
          if (why) throw new OutboundRefused(why + ALLOW_HINT);
        }
      }
      return addresses;
    })().then(
      (addresses) => {
        if (options?.all) cb(null, addresses);
        else cb(null, addresses[0].address, addresses[0].family);
      },
      (e: Error) => cb(e, options?.all ? [] : ''),
    );
  };
}

export interface PostOptions {
  policy: OutboundPolicy;
  /** The whole exchange: connect, send, and the answer read. */
  timeoutMs: number;
  /** At most this much of the answer's body is read (default 4 KiB), then the connection is dropped. */
  maxResponseBytes?: number;
  headers?: Record<string, string>;
}

export interface PostResult {
  status: number;
  /** Bytes of the answer's body received before the store stopped reading (may exceed the limit by one chunk). */
  bytesRead: number;
  /** The answer's body was longer than the limit: the rest was not read. */
  truncated: boolean;
}

export const MAX_RESPONSE_BYTES = 4096;

/**
 * POSTs a JSON text under the policy. Resolves with the status (a 3xx is returned, not followed); rejects with
 * OutboundRefused (the policy), OutboundTimeout, or the network's error.
 */
export async function postJson(rawUrl: string, body: string, opts: PostOptions): Promise<PostResult> {
  const dest = checkDestination(rawUrl, opts.policy);
  if (!dest.ok) throw new OutboundRefused(dest.reason);
  const { url, allowed } = dest;
  // An IP literal is connected to without a lookup: compare it with what the store's own names resolve to here.
  const literal = canonicalIp(normalHost(url.hostname));
  if (literal && !allowed) {
    const own = (await resolvedSelf(opts.policy)).map((a) => canonicalIp(a) ?? a);
    if (own.includes(literal))
      throw new OutboundRefused(
        `dataPushUrl host ${url.hostname.slice(0, 100)} is one of this store's own addresses${ALLOW_HINT}`,
      );
  }
  return send(url, allowed, body, opts);
}

function send(url: URL, allowed: boolean, body: string, opts: PostOptions): Promise<PostResult> {
  const max = opts.maxResponseBytes ?? MAX_RESPONSE_BYTES;
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return new Promise<PostResult>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined = undefined;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const request = (url.protocol === 'https:' ? https : http).request({
      method: 'POST',
      protocol: url.protocol,
      hostname,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: {
        'Content-Type': 'application/json',
        'Content-Length': String(Buffer.byteLength(body)),
        ...opts.headers,
      },
      agent: false, // one connection per request: each is looked up and checked afresh
      lookup: guardedLookup(opts.policy, allowed),
    });
    timer = setTimeout(() => {
      const e = new OutboundTimeout(`no answer within ${opts.timeoutMs} ms`);
      settle(() => reject(e));
      request.destroy(e);
    }, opts.timeoutMs);
    request.on('error', (e) => settle(() => reject(e)));
    request.on('response', (res) => {
      const status = res.statusCode ?? 0;
      let bytesRead = 0;
      res.on('data', (chunk: Buffer) => {
        bytesRead += chunk.length;
        if (bytesRead > max) {
          settle(() => resolve({ status, bytesRead, truncated: true }));
          res.destroy();
          request.destroy();
          res.socket?.destroy();
        }
      });
      res.on('end', () => settle(() => resolve({ status, bytesRead, truncated: false })));
      res.on('error', (e) => settle(() => reject(e)));
      res.on('aborted', () => settle(() => reject(new Error('the answer broke off'))));
    });
    request.end(body);
  });
}
