// Before/after timing of two builds of the npm package (pkg/ directories) on the same models, in one Node process:
// interleaved rounds (A B A B …) of Model.load, of perplexity() on a PTB text and of bench(n); prints medians and the
// paired ratio B/A.
//   node bench/compare-builds.mjs OLD_PKG_DIR NEW_PKG_DIR [model.safetensors …]
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const [oldDir, newDir, ...files] = process.argv.slice(2);
if (!oldDir || !newDir) throw new Error('usage: node bench/compare-builds.mjs OLD_PKG_DIR NEW_PKG_DIR [MODEL …]');
const models = files.length ? files : ['www/models/dense-2x200.safetensors', 'www/models/whole-model-1mb.safetensors'];
const ROUNDS = 7;
// The first 20 000 characters of the PTB test set (~3 700 tokens), behind a different first word each round so that
// the incremental scorer cannot reuse an earlier round.
const text = readFileSync(resolve('../shared/data/ptb/ptb.test.txt'), 'utf8').slice(0, 20000);
const FIRST = ['the', 'a', 'of', 'and', 'to', 'in', 'is', 'it', 'for', 'that'];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const builds = await Promise.all([oldDir, newDir].map(async (d) => (await import(resolve(d, 'index.js'))).load()));
for (const file of models) {
  const bytes = new Uint8Array(readFileSync(file));
  const t = { load: [[], []], ppl: [[], []], token: [[], []] };
  for (let r = 0; r < ROUNDS; r++) {
    builds.forEach((api, i) => {
      const t0 = performance.now();
      api.Model.load(bytes).free();
      t.load[i].push(performance.now() - t0);
    });
  }
  const [a, b] = builds.map((api) => api.Model.load(bytes));
  let tokens = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [i, m] of [[0, a], [1, b]]) {
      const t0 = performance.now();
      const p = m.perplexity(`${FIRST[r]} ${text}`);
      t.ppl[i].push((performance.now() - t0) * 1000 / p.tokens);
      tokens = p.tokens;
      t.token[i].push(m.bench(300).us_per_token);
    }
  }
  const row = (name, [x, y]) => {
    const ratio = median(x.map((v, r) => v / y[r]));
    console.log(`| ${file.split('/').pop()} | ${name} | ${median(x).toFixed(1)} | ${median(y).toFixed(1)} | ${ratio.toFixed(2)}x |`);
  };
  row('Model.load, ms', t.load);
  row(`perplexity(), µs/token (${tokens} tokens)`, t.ppl);
  row('bench(300): feed + output, µs/token', t.token);
  a.free(); b.free();
}
