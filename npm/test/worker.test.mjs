// Tests of 'dkp-lstm/worker' from the packed package in Node: the model worker runs in
// worker_threads and answers as the synchronous Model does; calls run in order, can be
// cancelled while queued (never running) or while running, and a bad file leaves the
// previous model loaded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { load, loadTools } from 'dkp-lstm';
import { createWorkerModel } from 'dkp-lstm/worker';

const dkp = await load();
const { randomModel } = await loadTools();
const SPEC = { kind: 'dkp', cf: 4, layers: 2, hidden: 32, vocab: 60, seed: 13 };
const bytes = randomModel(SPEC);
const OTHER = randomModel({ ...SPEC, kind: 'dense', cf: 1, seed: 14 });
// A long text of words the random model knows (its vocabulary is w0, w1, … plus specials).
const vocab = (() => {
  const m = dkp.Model.load(bytes);
  m.feed('the');
  const words = m.topK(60).predictions.map((p) => p.token).filter((t) => !t.startsWith('<'));
  m.free();
  return words;
})();
const longText = Array.from({ length: 6000 }, (_, i) => vocab[(i * 7 + (i >> 3)) % vocab.length] + (i % 17 === 16 ? '\n' : '')).join(' ');

let wm;
let dir;
before(async () => {
  wm = await createWorkerModel();
  dir = mkdtempSync(join(tmpdir(), 'dkp-worker-'));
});
after(() => {
  wm?.terminate();
  rmSync(dir, { recursive: true, force: true });
});

/** A synchronous model of the same file, the reference for the worker's answers. */
const reference = (file = bytes) => dkp.Model.load(file);

test('a worker_threads worker runs the module the loader picks', () => {
  assert.equal(wm.variant, dkp.variant);
  assert.deepEqual(wm.build, dkp.buildInfo());
  assert.ok(wm.timer.resolutionMs > 0 && wm.timer.resolutionMs < 1, `timer step ${wm.timer.resolutionMs} ms`);
  assert.equal(wm.timer.crossOriginIsolated, null, 'not a browser');
  assert.equal(wm.broken, null);
});

test('loaded from transferred bytes, it predicts, scores and samples as Model does', async () => {
  const copy = bytes.slice();
  const info = await wm.load(copy);
  assert.equal(copy.byteLength, 0, 'the bytes were transferred, not copied');
  const ref = reference();
  assert.deepEqual(info, ref.info());
  assert.deepEqual(await wm.info(), info);

  const [fed, top] = await Promise.all([wm.feed('the cat sat'), wm.topK(5)]);
  const refFed = ref.feed('the cat sat');
  assert.deepEqual([fed.tokens, fed.unknown], [refFed.tokens, refFed.unknown]);
  assert.deepEqual(top.predictions, ref.topK(5).predictions);
  await wm.feedToken(3);
  ref.feedToken(3);
  assert.deepEqual((await wm.topK(3)).predictions, ref.topK(3).predictions);

  const ppl = await wm.perplexity('the cat sat on the mat\n');
  const refPpl = ref.perplexity('the cat sat on the mat\n');
  assert.deepEqual({ ...ppl, ms: 0 }, { ...refPpl, ms: 0 });

  await wm.setSeed(5);
  ref.setSeed(5);
  assert.deepEqual({ ...(await wm.sampleNext(0.9, 10)), ms: 0 }, { ...ref.sampleNext(0.9, 10), ms: 0 });

  const bench = await wm.bench(16);
  assert.equal(bench.samples_us.length, 16);
  assert.ok(bench.us_per_token > 0);
  ref.free();
});

test('generate is an async iterator of the tokens Model.generate draws', async () => {
  const ref = reference();
  await wm.load(bytes, { transfer: false });
  await wm.feed('the cat');
  ref.feed('the cat');
  const steps = [];
  for await (const step of wm.generate(25, 1.0, 0, 9)) steps.push(step);
  assert.deepEqual(steps.map((s) => s.token), ref.generate(25, 1.0, 0, 9).tokens);
  assert.ok(steps.every((s) => Number.isInteger(s.id) && s.ms >= 0));
  // Without allowUnk, <unk> is never drawn; with it, a random model draws it often.
  const drawn = async (allowUnk) => {
    await wm.reset();
    const tokens = [];
    for await (const s of wm.generate(300, 1.5, 0, 3, { allowUnk })) tokens.push(s.token);
    return tokens;
  };
  assert.ok(!(await drawn(false)).includes('<unk>'));
  assert.ok((await drawn(true)).includes('<unk>'));
  ref.free();
});

test('leaving a generate loop early cancels the rest', async () => {
  await wm.load(bytes, { transfer: false });
  let n = 0;
  const t0 = performance.now();
  for await (const step of wm.generate(1 << 20, 1, 0, 1)) {
    assert.equal(typeof step.token, 'string');
    if (++n === 3) break;
  }
  assert.equal((await wm.topK(2)).predictions.length, 2, 'the worker answers the next call');
  assert.ok(performance.now() - t0 < 20_000, 'the million tokens were not all drawn');
});

test('URLs: file URLs, paths, http; a failed fetch rejects', async () => {
  const file = join(dir, 'model.safetensors');
  writeFileSync(file, OTHER);
  const expected = reference(OTHER).info();
  assert.deepEqual(await wm.load(pathToFileURL(file)), expected);
  assert.deepEqual(await wm.load(file), expected);
  const server = createServer((req, res) => {
    if (req.url === '/model.safetensors') res.end(Buffer.from(OTHER));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  try {
    assert.deepEqual(await wm.load(`${base}/model.safetensors`), expected);
    await assert.rejects(wm.load(`${base}/missing`), /fetching .*missing failed: HTTP 404/);
  } finally {
    server.close();
  }
  assert.deepEqual(await wm.load({ random: SPEC }), reference().info(), 'a random model by its spec');
});

test('a bad file rejects with a readable error and the previous model keeps answering', async () => {
  await wm.load(bytes, { transfer: false });
  await wm.feed('the cat');
  const before = (await wm.topK(5)).predictions;
  await assert.rejects(wm.load(new Uint8Array(64)), (e) => e instanceof Error && /safetensors|header|truncated/.test(e.message));
  await assert.rejects(wm.load(12), TypeError);
  assert.deepEqual((await wm.topK(5)).predictions, before);
  assert.equal(wm.broken, null);
});

test('bad arguments reject with the binding’s errors, and the worker keeps working', async () => {
  await wm.load(bytes, { transfer: false });
  await assert.rejects(wm.topK('3'), /invalid `k`: expected a number, got string/);
  await assert.rejects(wm.feed(5), /invalid `text`/);
  await assert.rejects(wm.sampleNext(1, 0, 5), /invalid `options`/);
  await assert.rejects(wm.sampleNext(1, 0, { allowUnk: 'yes' }), /invalid `options`/);
  await assert.rejects(wm.sampleNext(1, 0, { allowunk: true }), /invalid `options`: unknown field `allowunk`/);
  for (const n of [-1, 1.5, '3', 2 ** 21]) {
    await assert.rejects(async () => {
      for await (const _ of wm.generate(n, 1, 0, 1)); // eslint-disable-line no-unused-vars
    }, /invalid `n`/);
  }
  await assert.rejects(async () => {
    for await (const _ of wm.generate(3, -1, 0, 1)); // eslint-disable-line no-unused-vars
  }, /invalid `temperature`/);
  await assert.rejects(wm.perplexity('   '), /the text holds no tokens/);
  assert.equal((await wm.topK(1)).predictions.length, 1);
});

test('perplexity reports progress on a long text, and appending scores only the new tokens', async () => {
  await wm.load(bytes, { transfer: false });
  const ref = reference();
  const progress = [];
  const full = await wm.perplexity(longText, { onProgress: (p) => progress.push(p) });
  assert.deepEqual({ ...full, ms: 0 }, { ...ref.perplexity(longText), ms: 0 }, 'bit for bit the synchronous score');
  assert.ok(progress.length >= 2, `${progress.length} progress reports`);
  assert.ok(progress.every((p, i) => p.total === longText.length && p.done < p.total && (i === 0 || p.done > progress[i - 1].done)));

  const appended = await wm.perplexity(`${longText} ${vocab[1]} ${vocab[2]}`);
  assert.equal(appended.tokens, full.tokens + 2);
  assert.equal(appended.reused, full.tokens, 'only the two new tokens are scored');
  const fresh = reference();
  assert.deepEqual({ ...appended, ms: 0, reused: 0 }, { ...fresh.perplexity(`${longText} ${vocab[1]} ${vocab[2]}`), ms: 0 });

  // An edit near the start: scored again from there on, to the same result as fresh.
  const edited = `${vocab[3]} ${longText.slice(longText.indexOf(' ') + 1)}`;
  const again = await wm.perplexity(edited);
  assert.equal(again.reused, 0);
  assert.equal(again.nll, reference().perplexity(edited).nll);
  ref.free();
  fresh.free();
});

test('a queued call cancelled by its signal rejects with an AbortError and never runs', async () => {
  await wm.load(bytes, { transfer: false });
  await wm.feed('the cat');
  const before = (await wm.topK(5)).predictions;
  const controller = new AbortController();
  const busy = wm.bench(300); // runs while the next two wait
  const fed = wm.feed('sat on the mat and then some more words', { signal: controller.signal });
  const fedToken = wm.feedToken(1, { signal: controller.signal });
  controller.abort();
  await assert.rejects(fed, { name: 'AbortError' });
  await assert.rejects(fedToken, { name: 'AbortError' });
  await busy;
  assert.deepEqual((await wm.topK(5)).predictions, before, 'neither feed ran');
  await assert.rejects(wm.topK(5, { signal: AbortSignal.abort() }), { name: 'AbortError' });
});

test('a running perplexity stops at its next chunk when cancelled', async () => {
  await wm.load(bytes, { transfer: false });
  const controller = new AbortController();
  let reports = 0;
  const running = wm.perplexity(`${longText} ${longText}`, {
    signal: controller.signal,
    onProgress: () => {
      if (++reports === 1) controller.abort();
    },
  });
  await assert.rejects(running, { name: 'AbortError' });
  const next = await wm.perplexity(vocab.slice(0, 5).join(' '));
  assert.equal(next.tokens, 5, 'the worker took the next call');
  assert.equal(reports, 1, 'no progress after the cancel');
});

test('free releases the model; a worker made by the caller can be adopted', async () => {
  await wm.free();
  await assert.rejects(wm.topK(1), /no model is loaded/);
  const own = await createWorkerModel({ worker: new Worker(new URL(import.meta.resolve('dkp-lstm/model-worker.js'))), simd: false });
  try {
    assert.equal(own.variant, 'scalar');
    await own.load(bytes, { transfer: false });
    assert.equal((await own.topK(4)).predictions.length, 4);
  } finally {
    own.terminate();
  }
  await assert.rejects(own.topK(1), /terminated/);
});
