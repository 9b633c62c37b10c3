// End-to-end test of the demo page in www/: serves it with scripts/serve.mjs and
// drives Debian's Chromium through playwright-core, as a person would use it.
//
// Needs www/pkg/ (the npm package, copied there by scripts/run.sh or test.sh) and
// /usr/bin/chromium (scripts/setup.sh). Run: cd e2e && npm ci && node --test

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ARTIFACTS = join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const MANIFEST = JSON.parse(readFileSync(join(ROOT, 'www/models/manifest.json'), 'utf8'));
const nameOf = (id) => MANIFEST.models.find((m) => m.id === id).name;

let server;
let context;
let page;
let profile;
const problems = []; // console errors, page errors and failed requests, from anywhere

/** Starts serve.mjs on a free port and resolves to its base URL. */
function startServer() {
  return new Promise((resolve, reject) => {
    server = spawn(process.execPath, [join(ROOT, 'scripts/serve.mjs'), '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve.mjs printed no URL within 10 s: ${out}`)), 10_000);
    const read = (chunk) => {
      out += chunk;
      const url = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (url) {
        clearTimeout(timer);
        resolve(url[0]);
      }
    };
    server.stdout.on('data', read);
    server.stderr.on('data', read);
    server.on('exit', (code) => reject(new Error(`serve.mjs exited with ${code}: ${out}`)));
  });
}

/** Panel `side`'s predictions once its perplexity covers `tokens` tokens. */
async function predictionsAfter(side, tokens) {
  const panel = page.locator(`.panel[data-side=${side}]`);
  await panel.locator('.ppl-value').filter({ hasText: new RegExp(`over ${tokens} tokens?\\b`) }).waitFor();
  const probs = await panel.locator('.prediction').evaluateAll((buttons) => buttons.map((b) => Number(b.dataset.prob)));
  const lastUs = Number(await panel.locator('[data-stat=last]').getAttribute('data-us'));
  return { probs, lastUs };
}

function checkPredictions({ probs, lastUs }, k, what) {
  assert.equal(probs.length, k, `${what}: ${k} predictions shown`);
  assert.ok(probs.every((p) => p > 0 && p <= 1), `${what}: probabilities in (0, 1]: ${probs}`);
  const sum = probs.reduce((s, p) => s + p, 0);
  assert.ok(sum <= 1 + 1e-5, `${what}: top-k probabilities sum to ${sum} > 1`);
  assert.ok(probs.every((p, i) => i === 0 || p <= probs[i - 1]), `${what}: predictions sorted by probability`);
  assert.ok(lastUs > 0, `${what}: per-token latency ${lastUs} µs > 0`);
}

/** Replaces the text by typing `text` key by key, as a person would. */
async function typeText(text) {
  await page.locator('#text').fill('');
  await page.locator('#text').pressSequentially(text, { delay: 15 });
}

const words = (text) => text.trim().split(/\s+/).length;

before(async () => {
  assert.ok(existsSync(join(ROOT, 'www/pkg/index.js')),
    'www/pkg/index.js is missing: build the npm package and copy pkg/ to www/pkg/ (scripts/run.sh does both)');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh`);
  const url = await startServer();
  profile = mkdtempSync(join(tmpdir(), 'dkp-e2e-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context.setDefaultTimeout(30_000);
  page = context.pages()[0] ?? (await context.newPage());
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
  await page.goto(url);
});

after(async () => {
  await context?.close();
  server?.kill();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the page loads both default models side by side', async () => {
  for (const side of ['a', 'b']) {
    const panel = page.locator(`.panel[data-side=${side}]`);
    await assert.doesNotReject(panel.locator('.prediction').first().waitFor(), `panel ${side} shows predictions`);
    assert.match(await panel.locator('.model-name').textContent(), new RegExp(nameOf(MANIFEST.defaults[side]).replace(/[()]/g, '\\$&')));
    assert.equal(await panel.locator('.model-select').inputValue(), MANIFEST.defaults[side]);
    assert.equal(await panel.locator('.error').isHidden(), true, `panel ${side} shows no error`);
    const params = await panel.locator('table.size tr[data-key=Parameters] td').textContent();
    assert.match(params, /^[\d,]+$/, `panel ${side} shows its parameter count`);
    assert.match(await panel.locator('table.size tr[data-key="CF, LSTM layers"] td').textContent(), /× values · .*× with indices/);
    assert.doesNotMatch(await panel.locator('table.size').textContent(), /\[object|undefined|NaN/, `panel ${side} size table`);
    assert.doesNotMatch(await panel.locator('table.size tr[data-key=Dataset] td').textContent(), /[\\/:]/, 'a corpus name, not a path');
  }
  assert.match(await page.locator('.panel[data-side=b] table.size tr[data-key=Method] td').textContent(), /dkp/);
});

test('a model file listed in the manifest is fetched and loaded', async () => {
  // A small model made by the page's own package, served as if shipped in www/models/.
  const bytes = await page.evaluate(async () => {
    const { load } = await import('/pkg/index.js');
    const dkp = await load({ simd: 'auto' });
    return Array.from(dkp.randomModel({ layers: 1, hidden: 16, vocab: 60, kind: 'dkp', cf: 4, seed: 9 }));
  });
  const manifest = structuredClone(MANIFEST);
  manifest.models.push({ id: 'fetched-test', name: 'Fetched test model', file: 'fetched-test.safetensors' });
  await context.route('**/models/manifest.json', (route) => route.fulfill({ json: manifest }));
  await context.route('**/models/fetched-test.safetensors', (route) =>
    route.fulfill({ body: Buffer.from(bytes), contentType: 'application/octet-stream' }));
  try {
    await page.reload();
    await page.locator('.panel[data-side=a] .prediction').first().waitFor();
    await page.locator('#model-select-b').selectOption('fetched-test');
    const panel = page.locator('.panel[data-side=b]');
    await panel.locator('.model-name').filter({ hasText: 'Fetched test model (untrained)' }).waitFor();
    await panel.locator('.prediction').first().waitFor();
    assert.equal(await panel.locator('table.size tr[data-key=File] td').textContent(), `${(bytes.length / 1024).toFixed(1)} KiB`);
  } finally {
    await context.unrouteAll();
    await page.reload();
  }
  await page.locator('.panel[data-side=b] .prediction').first().waitFor();
});

test('typing shows predictions, perplexity and latency from both models', async () => {
  const text = 'the cat was on a mat and';
  await typeText(text);
  const k = Number(await page.locator('#top-k').inputValue());
  for (const side of ['a', 'b']) checkPredictions(await predictionsAfter(side, words(text)), k, `panel ${side}`);
  const ppl = Number(await page.locator('.panel[data-side=a] .ppl-value').getAttribute('data-value'));
  assert.ok(ppl > 1, `perplexity ${ppl} > 1`);
  assert.match(await page.locator('#speedup').textContent(), /× faster than/);

  // Clicking a prediction appends it and predicts again.
  const first = page.locator('.panel[data-side=a] .prediction').first();
  const token = await first.getAttribute('data-token');
  await first.click();
  assert.equal(await page.locator('#text').inputValue(), `${text} ${token} `);
  for (const side of ['a', 'b']) checkPredictions(await predictionsAfter(side, words(text) + 1), k, `panel ${side} after a click`);
});

test('every control has an accessible name, and predictions work from the keyboard', async () => {
  const unnamed = await page.locator('input, select, textarea, button').evaluateAll((controls) =>
    controls.filter((c) => !(c.labels?.length || c.getAttribute('aria-label') || c.textContent.trim()))
      .map((c) => c.outerHTML.slice(0, 80)));
  assert.deepEqual(unnamed, []);

  const before = await page.locator('#text').inputValue();
  await page.locator('#model-file-a').focus();
  await page.keyboard.press('Tab');
  const token = await page.evaluate(() => document.activeElement.closest('.panel[data-side=a] .prediction')?.dataset.token);
  assert.ok(token, 'Tab moves from the file picker to the first prediction');
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#text').inputValue(), `${before}${token} `);
  await predictionsAfter('a', words(before) + 1);
});

test('the SIMD build runs, and forcing the scalar build works', async () => {
  const build = page.locator('#build');
  assert.equal(await build.getAttribute('data-simd'), 'true', `SIMD build in use: ${await build.textContent()}`);
  assert.match(await build.textContent(), /SIMD128/);

  await page.locator('#force-scalar').check();
  await page.locator('#build[data-simd=false]').waitFor();
  assert.match(await build.textContent(), /scalar/);
  assert.match(page.url(), /[?&]simd=false\b/, 'the choice is kept in the address');
  const tokens = words(await page.locator('#text').inputValue());
  const k = Number(await page.locator('#top-k').inputValue());
  for (const side of ['a', 'b']) checkPredictions(await predictionsAfter(side, tokens), k, `panel ${side} on the scalar build`);

  await page.locator('#force-scalar').uncheck();
  await page.locator('#build[data-simd=true]').waitFor();
  for (const side of ['a', 'b']) await predictionsAfter(side, tokens);
});

test('a corrupt model file shows an error in its panel while the other model keeps answering', async () => {
  const junk = Buffer.alloc(4096);
  junk.writeBigUInt64LE(200n, 0); // a header length, then no valid JSON header
  junk.write('{"not a model": ', 8);
  await page.locator('#model-file-b').setInputFiles({ name: 'corrupt.safetensors', mimeType: 'application/octet-stream', buffer: junk });
  const error = page.locator('.panel[data-side=b] .error');
  await error.waitFor();
  const message = await error.textContent();
  assert.match(message, /^Could not load corrupt\.safetensors: .{10,}/, `a readable error: ${message}`);
  assert.equal(await page.locator('.panel[data-side=b] .prediction').count(), 0, 'no predictions from the bad file');

  const text = 'it was the cat';
  await typeText(text);
  const k = Number(await page.locator('#top-k').inputValue());
  checkPredictions(await predictionsAfter('a', words(text)), k, 'panel a after b failed');

  // Choosing a shipped model again clears the error.
  await page.locator('#model-select-b').selectOption(MANIFEST.defaults.b);
  checkPredictions(await predictionsAfter('b', words(text)), k, 'panel b after reloading');
  assert.equal(await error.isHidden(), true);

  // A file dropped on a panel is loaded the same way: an empty one fails in panel B only.
  const drop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([], 'empty.safetensors'));
    return dt;
  });
  await page.locator('.panel[data-side=b]').dispatchEvent('drop', { dataTransfer: drop });
  await error.filter({ hasText: /^Could not load empty\.safetensors: .{10,}/ }).waitFor();
  assert.equal(await page.locator('.panel[data-side=a] .error').isHidden(), true);
  await page.locator('#model-select-b').selectOption(MANIFEST.defaults.b);
  await predictionsAfter('b', words(text));
});

test('generate streams a continuation from each model', async () => {
  const n = Number(await page.locator('#generate-form input[name=n]').inputValue());
  for (const side of ['a', 'b']) {
    await page.locator(`#generate-${side}`).click();
    const figure = page.locator(`.generated[data-side=${side}]`);
    await figure.locator('.meta[data-median-us]').waitFor();
    const continuation = await figure.locator('.continuation').textContent();
    assert.equal(continuation.trim().split(/\s+/).filter(Boolean).length <= n, true);
    assert.ok(continuation.trim().length > 0, `panel ${side} generated text`);
    assert.match(await figure.locator('.meta').textContent(), new RegExp(`^${n} tokens · median .+/token`));
    assert.ok(Number(await figure.locator('.meta').getAttribute('data-median-us')) > 0);
  }
});

test('the benchmark produces a table and a chart', async () => {
  await page.locator('#bench-form input[name=n]').fill('200');
  await page.locator('#bench-run').click();
  await page.locator('#bench-status').filter({ hasText: 'Done' }).waitFor({ timeout: 120_000 });
  const rows = await page.locator('#bench-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
  assert.equal(rows.length, 2, 'one row per model');
  for (const cells of rows) {
    assert.equal(cells.length, 8, `a full row: ${cells}`);
    assert.ok(Number(cells[6].replace(/,/g, '')) > 0, `tokens/s in ${cells}`);
    assert.match(cells[7], /^\d+\.\d\d×$/);
  }
  assert.equal(rows[0][7], '1.00×');
  assert.equal(await page.locator('#bench-chart path.line').count(), 2);
});

test('screenshots at desktop and phone widths', async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'page.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `nothing wider than a phone screen (overflow ${overflow}px)`);
  await page.screenshot({ path: join(ARTIFACTS, 'page-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
});

test('no console errors, page errors or failed requests', () => {
  assert.deepEqual(problems, []);
});
