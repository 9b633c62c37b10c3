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

/** Panel `side`'s predictions once its perplexity covers `tokens` tokens (of the whole text box, if given). */
async function predictionsAfter(side, tokens, { settled = false } = {}) {
  const panel = page.locator(`.panel[data-side=${side}]`);
  const chars = settled ? `[data-chars="${(await page.locator('#text').inputValue()).length}"]` : '';
  await panel.locator(`.ppl-value${chars}`).filter({ hasText: new RegExp(`over ${tokens} tokens?\\b`) }).waitFor();
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
    const { loadTools } = await import('/pkg/index.js');
    const { randomModel } = await loadTools();
    return Array.from(randomModel({ layers: 1, hidden: 16, vocab: 60, kind: 'dkp', cf: 4, seed: 9 }));
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

test('appended text is scored incrementally, and a long text shows progress', async () => {
  const text = 'the company said it expects sales';
  await typeText(text);
  for (const side of ['a', 'b']) await predictionsAfter(side, words(text), { settled: true });
  await page.locator('.panel[data-side=a] .prediction').first().click();
  for (const side of ['a', 'b']) {
    await predictionsAfter(side, words(text) + 1, { settled: true });
    const ppl = page.locator(`.panel[data-side=${side}] .ppl-value`);
    assert.equal(await ppl.getAttribute('data-scored'), '1', `panel ${side}: only the appended token is scored`);
    assert.equal(await ppl.getAttribute('data-reused'), String(words(text)));
    assert.match(await page.locator(`.panel[data-side=${side}] .ppl-detail`).textContent(), /^1 new token scored, \d+ reused$/);
  }

  // A long text: scored in chunks, with progress; then one more word costs one token.
  const long = Array.from({ length: 250 }, () => 'the company said its sales rose in the third quarter\n').join('');
  const tokens = words(long) + 250; // every line ends with <eos>
  const reports = () => page.locator('.panel').evaluateAll((panels) => panels.map((p) => Number(p.dataset.progressReports ?? 0)));
  const [ra, rb] = await reports();
  await page.locator('#text').fill(long);
  for (const side of ['a', 'b']) await predictionsAfter(side, tokens, { settled: true });
  const [qa, qb] = await reports();
  assert.ok(qa > ra && qb > rb, `progress reported while scoring (${ra}→${qa}, ${rb}→${qb})`);
  assert.equal(await page.locator('.panel[data-side=a] .scoring').isHidden(), true, 'the progress bar goes away');
  await page.locator('#text').press('End');
  await page.keyboard.type('the');
  for (const side of ['a', 'b']) {
    await predictionsAfter(side, tokens + 1, { settled: true });
    assert.equal(await page.locator(`.panel[data-side=${side}] .ppl-value`).getAttribute('data-scored'), '1');
  }
  // An edit at the start is scored again from there: every token.
  await page.locator('#text').press('Control+Home');
  await page.keyboard.type('a ');
  for (const side of ['a', 'b']) {
    await predictionsAfter(side, tokens + 2, { settled: true });
    assert.equal(await page.locator(`.panel[data-side=${side}] .ppl-value`).getAttribute('data-reused'), '0');
  }
  await typeText('the cat was on a mat and '); // as a click on a prediction leaves it
  await predictionsAfter('a', 7, { settled: true });
});

test('the latency chart labels its axis with unique, increasing sample numbers', async () => {
  const labels = await page.locator('#latency-chart text.tick.x').allTextContents();
  assert.ok(labels.length >= 2, `x labels: ${labels}`);
  const values = labels.map(Number);
  assert.ok(values.every((v) => Number.isInteger(v)), `whole sample numbers: ${labels}`);
  assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `unique and increasing: ${labels}`);
  const y = (await page.locator('#latency-chart text.tick.y').allTextContents()).map(Number);
  assert.ok(y.every((v, i) => i === 0 || v > y[i - 1]), `y labels unique and increasing: ${y}`);
});

test('the page is cross-origin isolated, so per-token timers are fine-grained', async () => {
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'COOP/COEP headers from serve.mjs');
  const timer = page.locator('#timer');
  assert.equal(await timer.getAttribute('data-isolated'), 'true');
  assert.equal(await timer.getAttribute('data-coarse'), 'false', await timer.textContent());
  assert.ok(Number(await timer.getAttribute('data-resolution-us')) <= 20);
  assert.match(await timer.textContent(), /cross-origin isolated/);
});

test('dkp-lstm/worker in Chromium: a module worker, cancellable calls, streamed generation', async () => {
  const r = await page.evaluate(async () => {
    const { createWorkerModel } = await import('/pkg/worker-client.js');
    const { load, loadTools } = await import('/pkg/index.js');
    const dkp = await load();
    const bytes = (await loadTools()).randomModel({ layers: 1, hidden: 16, vocab: 60, kind: 'dkp', cf: 4, seed: 3 });
    const sync = dkp.Model.load(bytes);
    const wm = await createWorkerModel();
    const out = { variant: wm.variant, isolated: wm.timer.crossOriginIsolated };
    const sent = bytes.slice();
    out.vocab = (await wm.load(sent)).vocab;
    out.transferred = sent.byteLength === 0;
    await wm.feed('the cat');
    sync.feed('the cat');
    out.same = JSON.stringify((await wm.topK(5)).predictions) === JSON.stringify(sync.topK(5).predictions);
    // Queued behind a bench, then cancelled: rejects and never runs.
    const controller = new AbortController();
    const busy = wm.bench(200);
    const cancelled = wm.feed('sat on the mat', { signal: controller.signal }).then(() => 'ran', (e) => e.name);
    controller.abort();
    await busy;
    out.cancelled = await cancelled;
    out.untouched = JSON.stringify((await wm.topK(5)).predictions) === JSON.stringify(sync.topK(5).predictions);
    const tokens = [];
    for await (const step of wm.generate(12, 1, 0, 4)) tokens.push(step.token);
    out.generated = JSON.stringify(tokens) === JSON.stringify(sync.generate(12, 1, 0, 4).tokens);
    let n = 0;
    for await (const _ of wm.generate(1 << 20, 1, 0, 4)) if (++n === 3) break; // eslint-disable-line no-unused-vars
    out.afterBreak = (await wm.topK(1)).predictions.length;
    out.badLoad = await wm.load(new Uint8Array(16)).then(() => 'loaded', (e) => e.message);
    out.stillLoaded = (await wm.info()).vocab;
    wm.terminate();
    sync.free();
    return out;
  });
  assert.deepEqual({ ...r, badLoad: typeof r.badLoad }, {
    variant: 'simd', isolated: true, vocab: 60, transferred: true, same: true, cancelled: 'AbortError',
    untouched: true, generated: true, afterBreak: 1, badLoad: 'string', stillLoaded: 60,
  });
  assert.notEqual(r.badLoad, 'loaded');
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

test('a corrupt model file shows an error, and its panel keeps its previous model answering', async () => {
  const panel = page.locator('.panel[data-side=b]');
  const before = await panel.locator('.prediction').evaluateAll((buttons) => buttons.map((b) => b.dataset.token));
  const junk = Buffer.alloc(4096);
  junk.writeBigUInt64LE(200n, 0); // a header length, then no valid JSON header
  junk.write('{"not a model": ', 8);
  await page.locator('#model-file-b').setInputFiles({ name: 'corrupt.safetensors', mimeType: 'application/octet-stream', buffer: junk });
  const error = panel.locator('.error');
  await error.waitFor();
  const message = await error.textContent();
  const previous = nameOf(MANIFEST.defaults.b);
  assert.match(message, /^Could not load corrupt\.safetensors: .{10,}/, `a readable error: ${message}`);
  assert.ok(message.endsWith(`The panel keeps ${previous}.`), `says which model stays: ${message}`);
  assert.equal(await panel.locator('.model-name').textContent(), previous);
  assert.equal(await page.locator('#model-select-b').inputValue(), MANIFEST.defaults.b, 'the list shows the model that stays');
  assert.deepEqual(await panel.locator('.prediction').evaluateAll((buttons) => buttons.map((b) => b.dataset.token)), before);

  const text = 'it was the cat';
  await typeText(text);
  const k = Number(await page.locator('#top-k').inputValue());
  checkPredictions(await predictionsAfter('a', words(text)), k, 'panel a after b failed');
  checkPredictions(await predictionsAfter('b', words(text)), k, 'panel b keeps answering with its previous model');

  // Choosing a model again clears the error.
  await page.locator('#model-select-b').selectOption('dkp-25x');
  await panel.locator('.model-name').filter({ hasText: nameOf('dkp-25x') }).waitFor();
  assert.equal(await error.isHidden(), true);

  // A file dropped on a panel is loaded the same way: an empty one fails in panel B only.
  const drop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    dt.items.add(new File([], 'empty.safetensors'));
    return dt;
  });
  await panel.dispatchEvent('drop', { dataTransfer: drop });
  await error.filter({ hasText: /^Could not load empty\.safetensors: .{10,}/ }).waitFor();
  assert.equal(await page.locator('.panel[data-side=a] .error').isHidden(), true);
  assert.equal(await panel.locator('.model-name').textContent(), nameOf('dkp-25x'));
  await page.locator('#model-select-b').selectOption(MANIFEST.defaults.b);
  await panel.locator('.model-name').filter({ hasText: previous }).waitFor();
  await predictionsAfter('b', words(text));
});

test('generate streams a continuation from each model, without <unk> unless allowed', async () => {
  const form = page.locator('#generate-form');
  await form.locator('input[name=n]').fill('150');
  const continuation = async (side) => {
    await page.locator(`#generate-${side}`).click();
    const figure = page.locator(`.generated[data-side=${side}]`);
    await figure.locator('.meta[data-median-us]').waitFor();
    assert.match(await figure.locator('.meta').textContent(), /^150 tokens · median .+\/token/);
    assert.ok(Number(await figure.locator('.meta').getAttribute('data-median-us')) > 0);
    return figure.locator('.continuation').textContent();
  };
  for (const side of ['a', 'b']) {
    const text = await continuation(side);
    assert.ok(text.trim().length > 0, `panel ${side} generated text`);
    assert.ok(text.trim().split(/\s+/).length <= 150);
    assert.doesNotMatch(text, /<unk>/, `panel ${side}: no <unk> by default`);
  }
  // PTB's <unk> is a frequent token: allowed, 150 sampled tokens hold it.
  await form.locator('input[name=allowUnk]').check();
  assert.match(await continuation('b'), /<unk>/, 'allowed, <unk> is drawn');
  await form.locator('input[name=allowUnk]').uncheck();
  await form.locator('input[name=n]').fill('30');
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
