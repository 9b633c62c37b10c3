// Headless Chromium: the same parity check and interleaved timing as compare.mjs, run in a page served from 127.0.0.1.
// Usage: node bench/onnx/browser.mjs [--rounds N] [--tokens N] [--json FILE]   (after export_onnx.py and npm install here)
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { markdown } from './suite.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SERVED = ['pkg', 'bench/onnx', 'www/models'].map((d) => join(ROOT, d) + sep); // only these folders are served
const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const arg = (name, dflt) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : dflt);
const ptb = readFileSync(join(ROOT, '../shared/data/ptb/ptb.test.txt'), 'utf8').slice(0, 1 << 16);

const server = createServer(async (req, res) => {
  // Cross-origin isolation, so that performance.now() is not coarsened to 100 µs.
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  const path = resolve(ROOT, `.${decodeURIComponent(new URL(req.url, 'http://x').pathname)}`);
  try {
    if (req.url === '/') return res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end('<!doctype html><title>bench</title><link rel=icon href=data:,>');
    if (!SERVED.some((d) => path.startsWith(d))) throw new Error('not served');
    res.writeHead(200, { ...headers, 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' }).end(await readFile(path));
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const profile = mkdtempSync(join(tmpdir(), 'dkp-onnx-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
let res;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => console.log(m.text()));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const agent = await page.evaluate(() => `${navigator.userAgent}; crossOriginIsolated=${crossOriginIsolated}`);
  res = await page.evaluate(async ({ ptb, rounds, tokens }) => {
    const dkp = await import('/pkg/index.js');
    const ort = await import('/bench/onnx/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs');
    const { runAll } = await import('/bench/onnx/suite.js');
    ort.env.wasm.numThreads = 1; // one thread, like our engine
    ort.env.wasm.simd = true;
    const get = async (p) => new Uint8Array(await (await fetch(p)).arrayBuffer());
    return runAll({
      dkp: { simd: await dkp.load({ simd: true }), scalar: await dkp.load({ simd: false }) },
      ort,
      files: {
        dense: await get('/www/models/dense-2x200.safetensors'),
        'dkp-25x': await get('/www/models/dkp-25x.safetensors'),
        'whole-model-1mb': await get('/www/models/whole-model-1mb.safetensors'),
        'dense-i8': await get('/bench/onnx/build/dense-2x200-i8.safetensors'),
      },
      onnx: {
        step: await get('/bench/onnx/build/dense-2x200.onnx'),
        lstm: await get('/bench/onnx/build/dense-2x200-lstm.onnx'),
        output: await get('/bench/onnx/build/dense-2x200-output.onnx'),
        step_i8: await get('/bench/onnx/build/dense-2x200-i8.onnx'),
        step_q8: await get('/bench/onnx/build/dense-2x200-q8.onnx'),
      },
      ptb,
      rounds,
      tokens,
      log: (r) => console.log(JSON.stringify(r)),
    });
  }, { ptb, rounds: Number(arg('--rounds', 11)), tokens: Number(arg('--tokens', 400)) });
  res.runtime = agent;
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(`\n# ${res.runtime}, onnxruntime-web ${res.ort_version}, dkp-lstm ${res.build.version} (${res.build.kernels})\n\n${markdown(res)}\n`);
if (arg('--json')) writeFileSync(arg('--json'), JSON.stringify(res, null, 1));
if (!res.ok) {
  console.error('PARITY FAILED: the two engines disagree (see the parity table)');
  process.exit(1);
}
