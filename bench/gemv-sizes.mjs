// Dense matrix-vector product time against matrix size, in the SIMD build: shows where products stop fitting in cache.
//   node bench/gemv-sizes.mjs [PKG_DIR]   (default pkg/; pause background work first)
import { resolve } from 'node:path';

const api = await (await import(resolve(process.argv[2] || 'pkg', 'index.js'))).loadTools();
for (let pass = 1; pass <= 2; pass++) {
  for (const cols of [100, 200, 260, 320, 400]) {
    const t = Array.from({ length: 5 }, () => api.benchKernel('gemv', 10000, cols, 100).us_per_call).sort((a, b) => a - b);
    const mb = (40 * cols) / 1000;
    console.log(`pass ${pass}: 10000x${cols} (${mb.toFixed(1)} MB): ${t[2].toFixed(0)} us, ${((mb * 1000) / t[2]).toFixed(1)} GB/s`);
  }
}
