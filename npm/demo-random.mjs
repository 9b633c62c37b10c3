// A short tour of the dkp-lstm package in Node: make a random-weight DKP model,
// inspect it, predict, score, generate and time it, on the build the loader picks.
// Run after scripts/build-wasm.sh: `node npm/demo-random.mjs`; npm/demo.mjs is the tour
// on a trained model.
import { load, loadTools } from '../pkg/index.js';

const { Model, buildInfo, variant } = await load();
const { randomModel } = await loadTools(); // the tools module, a build of its own
console.log(`dkp-lstm ${buildInfo().version}: ${variant} build, ${buildInfo().kernels} kernels`);

// Untrained weights: the predictions are noise, the shapes and timings are real.
const bytes = randomModel({
  layers: 2, hidden: 200, vocab: 2000, kind: 'dkp', cf: 10, outputKind: 'dkp', outputCf: 10, embeddingKind: 'tied', seed: 1,
});
const model = Model.load(bytes);
const info = model.info();
console.log(
  `model: ${info.hidden.length}x${info.hidden[0]} LSTM, vocab ${info.vocab}, ` +
    `${(info.file_bytes / 1024).toFixed(0)} KB file, LSTM CF ${info.lstm_cf.toFixed(1)}x, whole model ${info.total_cf.toFixed(1)}x`,
);

model.feed('the cat sat on the');
const { predictions, ms } = model.topK(5);
console.log(`after "the cat sat on the" (${ms.toFixed(2)} ms):`);
for (const p of predictions) console.log(`  ${p.token.padEnd(8)} ${(100 * p.prob).toFixed(2)}%`);

const ppl = model.perplexity('the cat is on the mat\nit was N years old\n');
console.log(`perplexity ${ppl.perplexity.toFixed(1)} over ${ppl.tokens} tokens (${ppl.unknown} unknown)`);

model.reset();
const gen = model.generate(12, 0.9, 40, 7);
console.log(`generated: ${gen.text}`);

const bench = model.bench(100);
console.log(
  `per token: ${bench.us_per_token.toFixed(0)} µs (LSTM ${bench.lstm_us_per_token.toFixed(0)}, output ${bench.output_us_per_token.toFixed(0)}), median of 100`,
);

try {
  Model.load(bytes.subarray(0, 100));
} catch (e) {
  console.log(`a cut file is refused: ${e.message}`);
}
model.free();
