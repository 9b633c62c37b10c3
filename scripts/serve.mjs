#!/usr/bin/env node
// Serves a folder (default: www/) over HTTP on 127.0.0.1 with no dependencies.
//
//   node scripts/serve.mjs [--root DIR] [--port N]     (port 0 picks a free one)
//
// Prints `serving DIR at http://127.0.0.1:PORT/` once listening. The page is served
// cross-origin isolated (COOP/COEP) so that performance.now() in its workers has
// fine resolution for the per-token latencies; everything is same-origin anyway.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

function parseArgs(argv) {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const opts = { root: resolve(here, '..', 'www'), port: Number(process.env.PORT ?? 8080) };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--root' && value) opts.root = resolve(value);
    else if (flag === '--port' && value) opts.port = Number(value);
    else throw new Error(`serve.mjs: unknown or incomplete argument '${flag}' (use --root DIR, --port N)`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error(`serve.mjs: port must be an integer in 0..65535, got '${opts.port}'`);
  }
  return opts;
}

/** The file a URL path names inside `root`, or null when it would escape it. */
function fileFor(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0]);
  } catch {
    return null;
  }
  if (path.endsWith('/')) path += 'index.html';
  const file = resolve(join(root, path));
  return file === root || file.startsWith(root + sep) ? file : null;
}

async function handle(root, req, res) {
  const headers = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  };
  const fail = (status, text) => {
    res.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
    res.end(`${status} ${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'method not allowed');
  const file = fileFor(root, req.url ?? '/');
  if (!file) return fail(400, 'bad path');
  let info;
  try {
    info = await stat(file);
  } catch {
    return fail(404, 'not found');
  }
  if (info.isDirectory()) {
    res.writeHead(301, { ...headers, Location: req.url.split('?')[0] + '/' });
    return res.end();
  }
  res.writeHead(200, {
    ...headers,
    'Content-Type': MIME[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
  });
  if (req.method === 'HEAD') return res.end();
  createReadStream(file).on('error', () => res.destroy()).pipe(res);
}

const { root, port } = parseArgs(process.argv.slice(2));
const server = createServer((req, res) => {
  handle(root, req, res).catch((err) => {
    console.error(`serve.mjs: ${req.url}: ${err.message}`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.on('error', (err) => {
  console.error(`serve.mjs: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`serving ${root} at http://127.0.0.1:${server.address().port}/`);
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
