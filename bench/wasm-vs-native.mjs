// Our wasm token against our native token on the same files (issue 14, item 2): interleaved rounds of
// `dkp bench FILE --json` (native, the fastest kernels this CPU has) and `Model.bench()` of the SIMD128 build in
// this Node process; prints medians over the rounds and the paired ratio wasm / native.
//   node bench/wasm-vs-native.mjs [--rounds N] [--tokens N] [--dkp PATH] [--pkg DIR] MODEL…
//   (pkg/ from scripts/build-wasm.sh, the dkp binary from cargo build --release -p dkp-cli; pause other work first)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '1000' },
    dkp: { type: 'string', default: 'target/release/dkp' },
    pkg: { type: 'string', default: 'pkg' },
  },
});
if (!files.length) throw new Error('usage: node bench/wasm-vs-native.mjs [--rounds N] [--tokens N] MODEL…');
const [rounds, tokens] = [Number(opt.rounds), Number(opt.tokens)];
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const api = await (await import(resolve(opt.pkg, 'index.js'))).load({ simd: true });
const us = (x) => x.toFixed(1);
let kernels;

console.log(`| file | native µs/token (LSTM + output) | wasm µs/token (LSTM + output) | wasm / native (paired median) |`);
console.log('| --- | ---: | ---: | ---: |');
for (const file of files) {
  const model = api.Model.load(new Uint8Array(readFileSync(file)));
  model.bench(100); // warm-up, as dkp bench's own
  const native = [], wasm = [];
  for (let r = 0; r < rounds; r++) {
    const n = JSON.parse(execFileSync(opt.dkp, ['bench', file, '--json', '--tokens', String(tokens)], { encoding: 'utf8' }));
    kernels = n.kernels;
    native.push(n);
    wasm.push(model.bench(tokens));
  }
  const part = (runs, k) => median(runs.map((x) => x[k]));
  const show = (runs) =>
    `${us(part(runs, 'us_per_token'))} (${us(part(runs, 'lstm_us_per_token'))} + ${us(part(runs, 'output_us_per_token'))})`;
  const ratio = median(wasm.map((w, i) => w.us_per_token / native[i].us_per_token));
  console.log(`| \`${file.split('/').pop()}\` | ${show(native)} | ${show(wasm)} | ${ratio.toFixed(2)}x |`);
  model.free();
}
console.error(`${rounds} rounds of ${tokens} tokens; native kernels: ${kernels}; wasm: SIMD128 build of ${opt.pkg}/`);
