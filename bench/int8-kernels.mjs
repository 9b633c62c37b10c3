// The int8 product against the f32 one, per matrix shape, in both builds: benchKernel('gemv_q8') vs benchKernel('gemv'), paired by round.
//   node bench/int8-kernels.mjs [PKG_DIR] [ROUNDS]   (default pkg/, 7; pause background work first)
import { resolve } from 'node:path';

const mod = await import(resolve(process.argv[2] || 'pkg', 'index.js'));
const rounds = Number(process.argv[3] || 7);
const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const shapes = [[10000, 200], [800, 400], [2600, 1300]];
console.log('| build | matrix | f32 gemv µs | int8 gemv_q8 µs | f32 / int8 (paired median) |\n| --- | --- | ---: | ---: | ---: |');
for (const simd of [true, false]) {
  const api = await mod.loadTools({ simd });
  for (const [rows, cols] of shapes) {
    const iters = Math.max(5, Math.round(2e8 / (rows * cols * (simd ? 1 : 4))));
    const f32 = [], q8 = [];
    for (let r = 0; r < rounds; r++) {
      f32.push(api.benchKernel('gemv', rows, cols, iters).us_per_call);
      q8.push(api.benchKernel('gemv_q8', rows, cols, iters).us_per_call);
    }
    const ratio = median(f32.map((a, i) => a / q8[i]));
    console.log(`| ${simd ? 'simd128' : 'scalar'} | ${rows}×${cols} | ${median(f32).toFixed(1)} | ${median(q8).toFixed(1)} | ${ratio.toFixed(2)}x |`);
  }
}
