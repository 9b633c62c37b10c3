// The output layer's time per token, from the model's own per-part timer (`bench(n)`: feed + output layer +
// log-softmax, token by token), for several models and/or several builds of the npm package (pkg/ directories), in
// one process and interleaved rounds (A B C A B C …, so that the host's slow and fast phases hit all alike); prints
// medians and each row's paired ratio against the first row.
//   node bench/output-layer.mjs [--build simd|scalar] [--rounds N] PKG_DIR… MODEL.safetensors…
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i < 0 ? fallback : args.splice(i, 2)[1];
};
const rounds = Number(option('--rounds', 9));
const build = option('--build', 'simd');
if (build !== 'simd' && build !== 'scalar') throw new Error(`--build takes simd or scalar, not ${build}`);
const files = args.filter((a) => a.endsWith('.safetensors'));
const dirs = args.filter((a) => !a.endsWith('.safetensors'));
if (dirs.length === 0 || files.length === 0) {
  throw new Error('usage: node bench/output-layer.mjs [--build simd|scalar] [--rounds N] PKG_DIR… MODEL.safetensors…');
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const rows = [];
for (const dir of dirs) {
  const api = await (await import(resolve(dir, 'index.js'))).load({ simd: build === 'simd' });
  for (const f of files) {
    rows.push({ name: `${dir} ${f.split('/').pop()}`, model: api.Model.load(new Uint8Array(readFileSync(f))), out: [], lstm: [] });
  }
}
for (const r of rows) r.model.bench(100); // warm-up
for (let round = 0; round < rounds; round++) {
  for (const r of rows) {
    const b = r.model.bench(300);
    r.out.push(b.output_us_per_token);
    r.lstm.push(b.lstm_us_per_token);
  }
}
console.log(`build ${build}, ${rounds} interleaved rounds of bench(300); ratio = first row's output time / this row's, paired by round`);
console.log('| build and model | output layer µs/token | LSTM µs/token | first / this (output) |');
console.log('| --- | ---: | ---: | ---: |');
for (const r of rows) {
  const ratio = median(rows[0].out.map((v, i) => v / r.out[i]));
  console.log(`| ${r.name} | ${median(r.out).toFixed(1)} | ${median(r.lstm).toFixed(1)} | ${ratio.toFixed(2)}x |`);
  r.model.free();
}
