// A short tour of the dkp-lstm package in Node on a trained model: the shipped
// whole-model DKP language model of Penn Treebank (distilled, int8, 0.45 MB, www/models/), its next-word
// predictions, the perplexity of a sentence, a sampled continuation and the time per
// token, on the build the loader picks. Run after scripts/build-wasm.sh:
// `node npm/demo.mjs [MODEL.safetensors]` (scripts/run.sh does both);
// npm/demo-random.mjs does the same on a random-weight model of any kind and size.
import { readFile } from 'node:fs/promises';
import { load } from '../pkg/index.js';

const path = process.argv[2] ?? new URL('../www/models/whole-model-distill-i8.safetensors', import.meta.url);
const { Model, buildInfo, variant } = await load();
console.log(`dkp-lstm ${buildInfo().version}: ${variant} build, ${buildInfo().kernels} kernels`);

const bytes = await readFile(path);
const model = Model.load(bytes);
const info = model.info();
// A converted (f16) file records the perplexity of its rounded weights under `converted`.
const testPpl = info.provenance.converted?.test_ppl ?? info.provenance.test_ppl;
const trained = testPpl ? `, PTB test perplexity ${Number(testPpl).toFixed(1)}` : ', untrained';
console.log(
  `model: ${info.hidden.length}x${info.hidden[0]} LSTM, vocab ${info.vocab}, ${(info.file_bytes / 1e6).toFixed(2)} MB file, ` +
    `${info.total_cf.toFixed(1)}x fewer parameters than dense${trained}`,
);

for (const prompt of ['the company said it', 'shares of the', 'the new york stock']) {
  model.reset();
  model.feed(prompt);
  const { predictions, ms } = model.topK(5);
  const words = predictions.map((p) => `${p.token} ${(100 * p.prob).toFixed(1)}%`).join(', ');
  console.log(`"${prompt} …" → ${words}   (${ms.toFixed(2)} ms)`);
}

const sentence = 'the company said its profit rose N % in the third quarter\n';
const ppl = model.perplexity(sentence);
console.log(`perplexity of "${sentence.trim()}": ${ppl.perplexity.toFixed(1)} over ${ppl.tokens} tokens`);

model.reset();
model.feed('the market');
const gen = model.generate(20, 0.8, 40, 7);
console.log(`"the market …" continued: ${gen.text.replace(/\n/g, ' / ')}`);

const bench = model.bench(200);
console.log(
  `per token: ${bench.us_per_token.toFixed(0)} µs (LSTM ${bench.lstm_us_per_token.toFixed(0)}, ` +
    `output layer ${bench.output_us_per_token.toFixed(0)}), median of 200`,
);
model.free();
