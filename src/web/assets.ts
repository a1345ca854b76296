/**
 * The web page's files (/app/), built from web/ by esbuild in this process the
 * first time they are asked for (or at start, main.ts), and kept in memory:
 * no build step beyond `npm ci`, nothing fetched at run time, nothing stale on
 * disk. The script and style sheet are named by their content hash, so they
 * are served as immutable; the page itself names the current ones.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface WebFile {
  body: Uint8Array;
  type: string;
}
export interface WebAssets {
  /** The page (/app/), naming the current script and style sheet. */
  index: string;
  /** Files by name under /app/assets/. */
  files: Map<string, WebFile>;
}

const ENTRY = fileURLToPath(new URL('../../web/main.tsx', import.meta.url));
const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  woff2: 'font/woff2',
  woff: 'font/woff',
};

let built: Promise<WebAssets> | undefined;

/** The page's files, built once per process (a failed build is retried at the next request). */
export function webAssets(): Promise<WebAssets> {
  built ??= buildAssets().catch((e) => {
    built = undefined;
    throw e;
  });
  return built;
}

async function buildAssets(): Promise<WebAssets> {
  const out = await build({
    entryPoints: [ENTRY],
    bundle: true,
    minify: true,
    write: false,
    format: 'esm',
    target: ['es2022'],
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: '/assets',
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    publicPath: '/app/assets',
    loader: { '.woff2': 'file', '.woff': 'file' },
    legalComments: 'none',
    logLevel: 'silent',
  });
  const files = new Map<string, WebFile>();
  let script = '';
  let style = '';
  for (const f of out.outputFiles) {
    const name = f.path.slice(f.path.lastIndexOf('/') + 1);
    const ext = name.slice(name.lastIndexOf('.') + 1);
    files.set(name, { body: f.contents, type: TYPES[ext] ?? 'application/octet-stream' });
    if (ext === 'js') script = name;
    if (ext === 'css') style = name;
  }
  const index = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<title>abha-vault</title>',
    '<link rel="icon" href="data:,">', // no icon, and no request for /favicon.ico
    style ? `<link rel="stylesheet" href="/app/assets/${style}">` : '',
    `<script type="module" src="/app/assets/${script}"></script>`,
    '</head>',
    '<body>',
    '<div id="root"></div>',
    '<noscript>This page needs JavaScript. The same data is served by the API: see /openapi.json.</noscript>',
    '</body>',
    '</html>',
    '',
  ]
    .filter(Boolean)
    .join('\n');
  return { index, files };
}
