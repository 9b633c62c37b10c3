// Benchmarks the npm package (pkg/, from scripts/build-wasm.sh) in Node and, with
// --chromium, in headless Chromium: `node npm/bench.mjs [--chromium] [--tokens N]`.
// Prints one JSON line per measurement, then Markdown tables for docs/benchmarks.md.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { load, loadTools } from '../pkg/index.js';
import { runSuite, markdown } from './bench-suite.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const tokens = Number(args[args.indexOf('--tokens') + 1]) || 200;

console.log(`# Node ${process.version}`);
const node = await runSuite(load, loadTools, { tokens, log: (r) => console.log(JSON.stringify(r)) });
console.log(`\n${markdown(node)}\n`);

if (args.includes('--chromium')) {
  const chromium = await runInChromium();
  console.log(`\n${markdown(chromium)}\n`);
}

/** Serves the repository on 127.0.0.1 and runs the same suite in a headless Chromium page. */
async function runInChromium() {
  const { chromium } = await playwright();
  const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    try {
      const body = path === '/' ? '<!doctype html><title>bench</title><link rel=icon href=data:,>' : await readFile(join(ROOT, path));
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'text/html' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const profile = mkdtempSync(join(tmpdir(), 'dkp-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => console.log(m.text()));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    console.log(`# ${await page.evaluate(() => navigator.userAgent)}`);
    return await page.evaluate(async (tokens) => {
      const { load, loadTools } = await import('/pkg/index.js');
      const { runSuite } = await import('/npm/bench-suite.js');
      return runSuite(load, loadTools, { tokens, log: (r) => console.log(JSON.stringify(r)) });
    }, tokens);
  } finally {
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** playwright-core (drives the system Chromium), installed on first use into npm/bench/. */
async function playwright() {
  const dir = join(ROOT, 'npm/bench');
  if (!existsSync(join(dir, 'node_modules/playwright-core'))) {
    execFileSync('npm', ['install', '--silent', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
  }
  return import(join(dir, 'node_modules/playwright-core/index.mjs'));
}
