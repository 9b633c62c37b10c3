// dkp-lstm-models in Node, installed from its packed tarball next to dkp-lstm's: each
// shipped PTB model loads from its entry's URL, matches its metadata, and scores PTB-like
// text with a finite perplexity, synchronously and in a worker_threads worker.
// Run by scripts/test-bundler.sh in the folder where both tarballs are installed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { load } from 'dkp-lstm';
import { createWorkerModel } from 'dkp-lstm/worker';
import * as main from 'dkp-lstm-models';
import * as mb1 from 'dkp-lstm-models/ptb-whole-model-1mb';
import * as mb2 from 'dkp-lstm-models/ptb-whole-model-2mb';

const SENTENCE = 'the company said it expects sales to rise in the fourth quarter\n';
// Each entry, with the test perplexity and width its model card states.
const ENTRIES = [
  ['dkp-lstm-models', main, 116.01, 200],
  ['dkp-lstm-models/ptb-whole-model-1mb', mb1, 104.43, 200],
  ['dkp-lstm-models/ptb-whole-model-2mb', mb2, 98.34, 400],
];

test('each entry names its own file, and the three differ', () => {
  assert.deepEqual(ENTRIES.map(([, e]) => e.metadata.id), ['ptb-whole-model', 'ptb-whole-model-1mb', 'ptb-whole-model-2mb']);
  assert.equal(new Set(ENTRIES.map(([, e]) => e.metadata.sha256)).size, 3);
  for (const [, e] of ENTRIES) assert.deepEqual(Object.keys(e).sort(), ['metadata', 'modelUrl']);
});

for (const [entry, { metadata, modelUrl }, testPerplexity, hidden] of ENTRIES) {
  test(`${entry}: the installed tarball's file, next to its module, with the bytes its metadata names`, async () => {
    assert.equal(modelUrl.protocol, 'file:');
    assert.ok(fileURLToPath(modelUrl).endsWith(`node_modules/dkp-lstm-models/${metadata.id}.safetensors`), modelUrl.href);
    assert.equal(metadata.file, `${metadata.id}.safetensors`);
    assert.equal(import.meta.resolve(`dkp-lstm-models/${metadata.file}`), modelUrl.href);
    const bytes = await readFile(modelUrl);
    assert.equal(bytes.length, metadata.bytes);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), metadata.sha256);
    assert.ok(Object.isFrozen(metadata));
  });

  test(`${entry}: Model.load gives real predictions, and a PTB-like sentence a finite perplexity < 1000`, async (t) => {
    const { Model } = await load();
    const model = Model.load(new Uint8Array(await readFile(modelUrl)));
    try {
      const info = model.info();
      assert.equal(info.vocab, metadata.vocab);
      assert.equal(info.tokenizer, metadata.tokenizer);
      assert.deepEqual(info.hidden, Array(metadata.layers).fill(metadata.hidden));
      assert.equal(info.file_bytes, metadata.bytes);
      assert.equal(Math.round(info.provenance.test_ppl * 100) / 100, metadata.testPerplexity);
      assert.equal(metadata.testPerplexity, testPerplexity);
      assert.equal(metadata.hidden, hidden);

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

  test(`${entry}: dkp-lstm/worker loads the model from its URL in a worker_threads worker, with the same scores`, async () => {
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
}
