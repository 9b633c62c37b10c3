// The Vite production build of this app (dist/), served by a tiny static server with a
// strict Content-Security-Policy and COOP/COEP, checked in Debian's headless Chromium
// through playwright-core: the model from dkp-lstm-models runs in a module Worker of
// dkp-lstm/worker, the page shows real predictions and a perplexity, and nothing
// violates the policy. A second server without 'wasm-unsafe-eval' shows that the
// policy is enforced and that the directive is needed.
//
// Run by scripts/test-bundler.sh after `vite build`, in a folder where the packed
// dkp-lstm and dkp-lstm-models tarballs are installed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const DIST = fileURLToPath(new URL('./dist/', import.meta.url));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const STRICT = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'";
const NO_WASM = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'";
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', '.css': 'text/css; charset=utf-8',
};

/** Serves dist/ with `policy` on every response (page, worker, assets); collects CSP reports. */
function serve(policy) {
  const reports = [];
  const requests = [];
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (req.method === 'POST' && path === '/csp-report') {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { reports.push(body); res.writeHead(204).end(); });
      return;
    }
    requests.push(path);
    if (path === '/favicon.ico') { // the browser asks; the app has none
      res.writeHead(204).end();
      return;
    }
    const file = normalize(join(DIST, path === '/' ? 'index.html' : path));
    if (!file.startsWith(DIST) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': `${policy}; report-uri /csp-report`,
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cache-Control': 'no-store',
    });
    res.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
    resolve({ server, reports, requests, url: `http://127.0.0.1:${server.address().port}/` })));
}

let context;
let profile;
const servers = [];

/** Opens `url` in a new tab, recording console errors (page and workers), page errors and violations. */
async function open(url) {
  const page = await context.newPage();
  const problems = [];
  const violations = [];
  const consoleError = (where) => (msg) => {
    if (msg.type() === 'error') problems.push(`${where} console error: ${msg.text()}`);
  };
  page.on('console', consoleError('page'));
  page.on('worker', (worker) => worker.on('console', consoleError('worker')));
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`);
  });
  await page.exposeBinding('reportViolation', (_, v) => violations.push(v));
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) =>
    globalThis.reportViolation(`${e.violatedDirective} blocked ${e.blockedURI}`)));
  await page.goto(url);
  await page.locator('#status:not([data-state=loading])').waitFor({ timeout: 60_000 });
  return { page, problems, violations };
}

before(async () => {
  assert.ok(existsSync(join(DIST, 'index.html')), `${DIST}index.html is missing: run vite build first`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`);
  profile = mkdtempSync(join(tmpdir(), 'dkp-bundler-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context.setDefaultTimeout(30_000);
});

after(async () => {
  await context?.close();
  for (const { server } of servers) server.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the production build emitted the worker, the four .wasm builds and the model as hashed assets', () => {
  const html = readFileSync(join(DIST, 'index.html'), 'utf8');
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script (the CSP has no unsafe-inline)');
  const assets = readdirSync(join(DIST, 'assets'));
  // SIMD, scalar and the tools modules of both (which `loadTools` would fetch).
  assert.equal(assets.filter((f) => /^dkp_lstm_wasm_bg-[\w-]+\.wasm$/.test(f)).length, 4, `four builds: ${assets}`);
  // The app imports the package's main entry only: of its three models, only that one's file is emitted.
  const models = assets.filter((f) => f.endsWith('.safetensors'));
  assert.equal(models.length, 1, `one model: ${assets}`);
  assert.match(models[0], /^ptb-whole-model-[\w-]+\.safetensors$/);
  assert.ok(statSync(join(DIST, 'assets', models[0])).size < 500_000, `the 0.45 MB model: ${models[0]}`);
  assert.ok(assets.some((f) => /^model-worker-[\w-]+\.js$/.test(f)), `the worker: ${assets}`);
});

test('under script-src \'self\' \'wasm-unsafe-eval\': predictions and a perplexity from the worker, no violation', async (t) => {
  const srv = await serve(STRICT);
  servers.push(srv);
  const { page, problems, violations } = await open(srv.url);
  const status = page.locator('#status');
  assert.equal(await status.getAttribute('data-state'), 'ready', await status.textContent());

  const predictions = await page.locator('.prediction').evaluateAll((items) =>
    items.map((li) => ({ token: li.dataset.token, prob: Number(li.dataset.prob) })));
  assert.equal(predictions.length, 5);
  assert.ok(predictions.every((p, i) => p.prob > 0 && p.prob <= 1 && (i === 0 || p.prob <= predictions[i - 1].prob)),
    `probabilities in (0, 1], sorted: ${JSON.stringify(predictions)}`);
  assert.ok(predictions.every((p) => /^[a-z.'&$-]+$|^<unk>$|^<eos>$|^N$/.test(p.token)), `PTB words: ${JSON.stringify(predictions)}`);
  assert.ok(predictions.reduce((s, p) => s + p.prob, 0) > 0.1, 'a trained model is confident after "the stock market"');

  const ppl = Number(await page.locator('#perplexity').getAttribute('data-value'));
  assert.ok(Number.isFinite(ppl) && ppl > 1 && ppl < 1000, `perplexity of a PTB-like sentence: ${ppl}`);
  t.diagnostic(`after "the stock market": ${predictions.map((p) => `${p.token} ${(100 * p.prob).toFixed(1)}%`).join(', ')}; perplexity ${ppl.toFixed(2)}`);
  assert.equal(await page.locator('#perplexity').getAttribute('data-tokens'), '13');

  const build = page.locator('#build');
  assert.equal(await build.getAttribute('data-variant'), 'simd');
  assert.equal(await build.getAttribute('data-vocab'), '10000');
  assert.equal(await build.getAttribute('data-isolated'), 'true', 'COOP/COEP: the worker is cross-origin isolated');
  assert.match(await build.getAttribute('data-model-url'), /\/assets\/ptb-whole-model-[\w-]+\.safetensors$/);

  // What the browser fetched: the bundled worker, the SIMD .wasm and the model, all hashed assets.
  const fetched = srv.requests.join(' ');
  assert.match(fetched, /\/assets\/model-worker-[\w-]+\.js/, fetched);
  assert.equal(fetched.match(/\/assets\/dkp_lstm_wasm_bg-[\w-]+\.wasm/g)?.length, 1, `one .wasm, not the tools: ${fetched}`);
  assert.match(fetched, /\/assets\/ptb-whole-model-[\w-]+\.safetensors/, fetched);
  assert.equal(page.workers().length, 1, 'one module worker');

  await new Promise((r) => setTimeout(r, 300)); // reports are sent asynchronously
  assert.deepEqual(violations, [], 'no securitypolicyviolation in the page');
  assert.deepEqual(srv.reports, [], 'no CSP report from the page or the worker');
  assert.deepEqual(problems, [], 'no console errors, page errors or failed requests');
  await page.close();
});

test('without \'wasm-unsafe-eval\' the policy blocks the module and the page says so', async (t) => {
  const srv = await serve(NO_WASM);
  servers.push(srv);
  const { page } = await open(srv.url);
  const status = page.locator('#status');
  assert.equal(await status.getAttribute('data-state'), 'error', await status.textContent());
  assert.match(await status.textContent(), /WebAssembly|unsafe-eval|Content Security Policy/i);
  t.diagnostic(`the page says: ${await status.textContent()}`);
  for (let i = 0; i < 50 && srv.reports.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(srv.reports.length > 0, 'the worker\'s blocked compile is reported');
  assert.match(srv.reports.join('\n'), /wasm-eval|script-src/);
  await page.close();
});
