/**
 * The guard stage as the routes use it (src/http/body.ts over src/fhir/guard.ts):
 * each limit checked once, the empty-body refusal naming what each route
 * expects, and a body that breaks off mid-stream answered as the client's
 * fault (400), never as the database's (503).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { v4 as uuidv4 } from 'uuid';
import { createTestApp, uploadHeaders, type TestApp } from '../support/app.js';
import { load } from '../support/fixtures.js';
import { DOCUMENT, guardDocument, parseBody, readBody } from '../../src/fhir/guard.js';
import { FhirError } from '../../src/fhir/outcome.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    GATEWAY_BASE_URL: 'http://127.0.0.1:9',
    MAX_BODY_BYTES: '65536',
    MAX_BUNDLE_ENTRIES: '12',
  });
});
afterAll(async () => {
  await t?.close();
});
afterEach(() => {
  vi.restoreAllMocks();
});

const prescription = () => {
  const b = load('prescription');
  b.identifier.value = uuidv4();
  return JSON.stringify(b);
};
const refusal = (f: () => unknown): FhirError => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(FhirError);
    return e as FhirError;
  }
  throw new Error('accepted');
};

/**
 * A request body stream: `chunks`, then an error like the one Node gives when the client goes away (or a plain end).
 */
function stream(chunks: string[], end: 'reset' | 'close' = 'reset'): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) {
        controller.enqueue(new TextEncoder().encode(chunks[i++]));
        return;
      }
      if (end === 'close') controller.close();
      else controller.error(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    },
  });
}

async function post(path: string, body: BodyInit, headers: Record<string, string>, as: [any, string]) {
  const h = new Headers(headers);
  h.set('Authorization', `Bearer ${await t.token(as[0], as[1])}`);
  return t.app.request(
    new Request(`http://localhost${path}`, { method: 'POST', body, headers: h, duplex: 'half' } as RequestInit),
  );
}

const dbErrors = async () => {
  const text = await (await t.request('/metrics', { as: ['admin', 'ops'] })).text();
  return Number(/abha_vault_database_errors_total (\d+)/.exec(text)?.[1]);
};

describe('one guard stage, each limit checked once', () => {
  it('the upload and the JSON routes measure a body only while it streams, never again as text', async () => {
    // Bodies are sent as bytes, so any measuring of the decoded text is the server's own.
    const text = prescription();
    const notify = JSON.stringify({ notification: { consentId: 'x' } });
    // Who measures the decoded text: the guard stage (src/fhir, src/http) must not; the store may record its size.
    const byteLength = Buffer.byteLength;
    const measuredBy: string[] = [];
    vi.spyOn(Buffer, 'byteLength').mockImplementation(((value: any, encoding?: BufferEncoding) => {
      if (value === text || value === notify) measuredBy.push(new Error().stack ?? '');
      return byteLength(value, encoding);
    }) as typeof Buffer.byteLength);
    const upload = await post('/fhir/Bundle', new TextEncoder().encode(text), uploadHeaders(), ['hip', 'H-ONCE']);
    expect(upload.status).toBe(201);
    expect(
      (
        await post(
          '/v0.5/consents/hip/notify',
          new TextEncoder().encode(notify),
          { 'Content-Type': 'application/json' },
          ['cm', 'sbx'],
        )
      ).status,
    ).toBe(422);
    const callers = measuredBy.map((stack) => stack.split('\n').find((line) => line.includes('/src/')) ?? '');
    expect(callers.filter((line) => /\/src\/(fhir|http)\//.test(line))).toEqual([]);
  });

  it('the size limit: reading stops at the first chunk over MAX_BODY_BYTES (413 naming the setting), with or without Content-Length', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1024).fill(0x20));
      },
    });
    const res = await post('/fhir/Bundle', endless, uploadHeaders(), ['hip', 'H-SIZE']);
    expect(res.status).toBe(413);
    expect((await res.json()).issue[0]).toMatchObject({
      code: 'too-long',
      diagnostics: 'Body exceeds the 65536-byte limit (MAX_BODY_BYTES)',
    });
    expect(pulled).toBeLessThanOrEqual(65 + 2);
    const big = `{"a":"${'x'.repeat(70_000)}"}`;
    for (const headers of [uploadHeaders(), { ...uploadHeaders(), 'Content-Length': String(big.length) }]) {
      const again = await post('/fhir/Bundle', big, headers, ['hip', 'H-SIZE']);
      expect(again.status).toBe(413);
      expect((await again.json()).issue[0].diagnostics).toBe('Body exceeds the 65536-byte limit (MAX_BODY_BYTES)');
    }
  });

  it('guardDocument owns the entry count: more entries than maxEntries is a 422 too-costly at Bundle.entry', () => {
    const text = JSON.stringify({ resourceType: 'Bundle', entry: [{}, {}, {}] });
    const e = refusal(() => guardDocument(text, { maxBytes: 1 << 20, maxDepth: 64, maxEntries: 2 }));
    expect(e.status).toBe(422);
    expect(e.issues).toEqual([
      {
        severity: 'error',
        code: 'too-costly',
        diagnostics: 'The document has 3 entries; at most 2 are accepted (MAX_BUNDLE_ENTRIES)',
        expression: 'Bundle.entry',
      },
    ]);
    expect(guardDocument(text, { maxBytes: 1 << 20, maxDepth: 64, maxEntries: 3 })).toEqual(JSON.parse(text));
  });

  it('the text stage leaves the size to the stream: parseBody does not measure, readBody does', async () => {
    const text = `{"a":"${'x'.repeat(100)}"}`;
    expect(parseBody(text, { maxBytes: 10, maxDepth: 64 }, DOCUMENT)).toEqual(JSON.parse(text));
    await expect(readBody(stream([text], 'close'), 10)).rejects.toMatchObject({ status: 413 });
    expect(new TextDecoder().decode(await readBody(stream([text.slice(0, 50), text.slice(50)], 'close'), 1000))).toBe(
      text,
    );
  });

  it('keeps the other answers: 415 media type, 400 UTF-8, depth and string length', async () => {
    const cases: [BodyInit, Record<string, string>, number, string][] = [
      [prescription(), { ...uploadHeaders(), 'Content-Type': 'text/plain' }, 415, 'not-supported'],
      [new Uint8Array([0x7b, 0xff, 0x7d]), uploadHeaders(), 400, 'structure'],
      ['['.repeat(100) + ']'.repeat(100), uploadHeaders(), 400, 'too-costly'],
    ];
    for (const [body, headers, status, code] of cases) {
      const res = await post('/fhir/Bundle', body, headers, ['hip', 'H-KEEP']);
      expect(res.status).toBe(status);
      expect((await res.json()).issue[0].code).toBe(code);
    }
  });
});

describe('an empty body names what the route expects', () => {
  const routes: [string, string, [any, string], Record<string, string>][] = [
    ['/v0.5/consents/hip/notify', 'a JSON consent notification', ['cm', 'sbx'], {}],
    ['/api/v3/consent/request/hip/notify', 'a JSON consent notification', ['cm', 'sbx'], {}],
    ['/v0.5/health-information/hip/request', 'a JSON health-information request', ['cm', 'sbx'], {}],
    ['/v0.5/care-contexts/discover', 'a JSON care-context discovery request', ['cm', 'sbx'], { 'X-HIP-ID': 'HIP-1' }],
    ['/v0.5/links/link/init', 'a JSON link request', ['cm', 'sbx'], { 'X-HIP-ID': 'HIP-1' }],
    ['/v0.5/links/link/confirm', 'a JSON link confirmation', ['cm', 'sbx'], {}],
  ];
  for (const [path, expects, as, extra] of routes) {
    it(`${path}: "Empty body: expected ${expects}"`, async () => {
      const res = await post(path, '', { 'Content-Type': 'application/json', ...extra }, as);
      expect(res.status).toBe(400);
      const oo = await res.json();
      expect(oo.issue).toEqual([
        { severity: 'error', code: 'required', diagnostics: `Empty body: expected ${expects}` },
      ]);
      expect(oo.issue[0].diagnostics).not.toMatch(/Bundle/);
    });
  }

  it('the upload keeps its Bundle wording', async () => {
    const res = await post('/fhir/Bundle', '  \n', uploadHeaders(), ['hip', 'H-EMPTY']);
    expect(res.status).toBe(400);
    expect((await res.json()).issue[0]).toMatchObject({
      code: 'required',
      diagnostics: 'Empty body: expected a FHIR Bundle as JSON',
    });
  });
});

describe('a body that breaks off mid-stream', () => {
  it('an upload whose client goes away → 400 structure, not 503; no database error counted; nothing stored', async () => {
    const before = await dbErrors();
    const text = prescription();
    const res = await post(
      '/fhir/Bundle',
      stream([text.slice(0, 500)]),
      { ...uploadHeaders(), 'Content-Length': String(text.length) },
      ['hip', 'H-ABORTED'],
    );
    expect(res.status).toBe(400);
    expect((await res.json()).issue).toEqual([
      {
        severity: 'error',
        code: 'structure',
        diagnostics:
          'Incomplete body: the request body ended before Content-Length, or the client closed the connection',
      },
    ]);
    expect(await dbErrors()).toBe(before);
    expect(await t.collections.versions.countDocuments({ provider: 'H-ABORTED' })).toBe(0);
  });

  it('a JSON route whose client goes away → 400 structure, not 503', async () => {
    const before = await dbErrors();
    const res = await post(
      '/v0.5/consents/hip/notify',
      stream(['{"requestId":"']),
      { 'Content-Type': 'application/json' },
      ['cm', 'sbx'],
    );
    expect(res.status).toBe(400);
    expect((await res.json()).issue[0]).toMatchObject({
      code: 'structure',
      diagnostics: expect.stringMatching(/^Incomplete body: /),
    });
    expect(await dbErrors()).toBe(before);
  });

  it('a body that ends before the Content-Length it announced → 400 structure naming both lengths', async () => {
    const text = prescription();
    const res = await post(
      '/fhir/Bundle',
      stream([text.slice(0, 300)], 'close'),
      { ...uploadHeaders(), 'Content-Length': String(text.length) },
      ['hip', 'H-SHORT'],
    );
    expect(res.status).toBe(400);
    expect((await res.json()).issue[0]).toMatchObject({
      code: 'structure',
      diagnostics: `Incomplete body: the request body ended after 300 of the ${text.length} bytes Content-Length announced`,
    });
    expect(await t.collections.versions.countDocuments({ provider: 'H-SHORT' })).toBe(0);
  });
});
