// dkp-lstm-models in Node, installed from its packed tarball next to dkp-lstm's: the
// shipped PTB model loads from the package's URL, matches its metadata, and scores
// PTB-like text with a finite perplexity, synchronously and in a worker_threads worker.
// Run by scripts/test-bundler.sh in the folder where both tarballs are installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { load } from 'dkp-lstm';
import { createWorkerModel } from 'dkp-lstm/worker';
import { metadata, modelUrl } from 'dkp-lstm-models';

const SENTENCE = 'the company said it expects sales to rise in the fourth quarter\n';

test('the package is the installed tarball: a file: URL next to its module, with the bytes its metadata names', async () => {
  assert.equal(modelUrl.protocol, 'file:');
  assert.match(fileURLToPath(modelUrl), /node_modules\/dkp-lstm-models\/ptb-whole-model\.safetensors$/);
  assert.equal(import.meta.resolve('dkp-lstm-models/ptb-whole-model.safetensors'), modelUrl.href);
  const bytes = await readFile(modelUrl);
  assert.equal(bytes.length, metadata.bytes);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), metadata.sha256);
  assert.ok(Object.isFrozen(metadata));
});

test('Model.load: real predictions, and a PTB-like sentence scores a finite perplexity < 1000', async (t) => {
  const { Model } = await load();
  const model = Model.load(new Uint8Array(await readFile(modelUrl)));
  try {
    const info = model.info();
    assert.equal(info.vocab, metadata.vocab);
    assert.equal(info.tokenizer, metadata.tokenizer);
    assert.deepEqual(info.hidden, Array(metadata.layers).fill(metadata.hidden));
    assert.equal(info.file_bytes, metadata.bytes);
    assert.equal(Math.round(info.provenance.test_ppl * 100) / 100, metadata.testPerplexity);
    assert.equal(metadata.testPerplexity, 116.01);

    model.feed('the stock market');
    const { predictions } = model.topK(5);
    assert.ok(predictions.every((p) => !/^w\d+$/.test(p.token)), `words, not random ids: ${predictions.map((p) => p.token)}`);
    model.reset();
    const score = model.perplexity(SENTENCE);
    assert.equal(score.unknown, 0);
    assert.ok(Number.isFinite(score.perplexity) && score.perplexity > 1 && score.perplexity < 1000, `perplexity ${score.perplexity}`);
    // Shuffled words are much less likely: the model knows English word order.
    const shuffled = model.perplexity('quarter the fourth in rise to sales expects it said company the\n');
    assert.ok(shuffled.perplexity > 5 * score.perplexity, `shuffled ${shuffled.perplexity} vs ${score.perplexity}`);
    t.diagnostic(`top 5 after "the stock market": ${predictions.map((p) => p.token).join(' ')}; perplexity ${score.perplexity.toFixed(2)} (shuffled ${shuffled.perplexity.toFixed(1)})`);
  } finally {
    model.free();
  }
});

test('dkp-lstm/worker loads the model from its URL in a worker_threads worker, with the same scores', async () => {
  const { Model } = await load();
  const sync = Model.load(new Uint8Array(await readFile(modelUrl)));
  const model = await createWorkerModel();
  try {
    assert.equal((await model.load(modelUrl)).vocab, 10000);
    assert.equal((await model.perplexity(SENTENCE)).perplexity, sync.perplexity(SENTENCE).perplexity);
  } finally {
    model.terminate();
    sync.free();
  }
});
