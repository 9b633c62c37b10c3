// The WebAssembly benchmark suite, shared by Node (npm/bench.mjs) and the headless
// Chromium page it drives: per-token latency of a medium PTB-sized LSTM and its DKP
// twins, and single matrix–vector products, in the SIMD and the scalar build.

const SHAPE = { layers: 2, hidden: 650, vocab: 10000, seed: 1 };

export const MODELS = [
  { name: 'dense', spec: { ...SHAPE, kind: 'dense' } },
  { name: 'DKP-25x LSTM, dense output', spec: { ...SHAPE, kind: 'dkp', cf: 25 } },
  { name: 'DKP-25x LSTM and output, tied embedding', spec: { ...SHAPE, kind: 'dkp', cf: 25, outputKind: 'dkp', outputCf: 25, embeddingKind: 'tied' } },
];

// The LSTM's fused gate matrix of layer 2 (4H x 2H).
export const KERNEL_SHAPE = [2600, 1300];
// Dense products from in-cache to out-of-cache sizes (256 KB, 1.6 MB, 13 MB of weights):
// how much SIMD gains depends on whether the weights stream from memory.
export const GEMV_SHAPES = [[256, 256], [650, 650], KERNEL_SHAPE];

/** Runs everything on both builds; `load` and `loadTools` are the package's loaders. */
export async function runSuite(load, loadTools, { tokens = 200, iters = 200, log = () => {} } = {}) {
  const results = { models: [], kernels: [] };
  const { randomModel } = await loadTools();
  for (const simd of [true, false]) {
    const m = await load({ simd });
    const { benchKernel } = await loadTools({ simd });
    for (const { name, spec } of MODELS) {
      const model = m.Model.load(randomModel(spec));
      const { file_bytes, lstm_cf, total_cf } = model.info();
      model.feed('the cat sat on the');
      model.bench(20); // warm-up: page in the weights, let the engine tier up
      const b = model.bench(tokens);
      model.free();
      const row = {
        variant: m.variant,
        model: name,
        file_mb: file_bytes / 2 ** 20,
        lstm_cf,
        total_cf,
        us_per_token: b.us_per_token,
        lstm_us: b.lstm_us_per_token,
        output_us: b.output_us_per_token,
      };
      results.models.push(row);
      log(row);
    }
    const kernels = [...GEMV_SHAPES.map((shape) => ['gemv', shape]), ['kp', KERNEL_SHAPE], ['dkp', KERNEL_SHAPE]];
    for (const [name, [rows, cols]] of kernels) {
      // The same number of multiply-adds per run at every size.
      const calls = Math.max(10, Math.round(iters * (KERNEL_SHAPE[0] * KERNEL_SHAPE[1]) / (rows * cols)));
      benchKernel(name, rows, cols, 10); // warm-up
      const runs = [0, 1, 2, 3, 4].map(() => benchKernel(name, rows, cols, calls).us_per_call);
      runs.sort((a, b) => a - b);
      const row = { variant: m.variant, kernel: name, rows, cols, us_per_call: runs[2] };
      results.kernels.push(row);
      log(row);
    }
  }
  return results;
}

/** Markdown tables of the results, with SIMD/scalar ratios. */
export function markdown({ models, kernels }) {
  const find = (rows, key, value, variant) => rows.find((r) => r[key] === value && r.variant === variant);
  const f = (x, d = 0) => x.toFixed(d);
  const lines = [
    '| model | file MB | LSTM CF | total CF | SIMD µs/token (LSTM + output) | scalar µs/token (LSTM + output) | scalar/SIMD |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const { name } of MODELS) {
    const [s, c] = [find(models, 'model', name, 'simd'), find(models, 'model', name, 'scalar')];
    lines.push(
      `| ${name} | ${f(s.file_mb, 1)} | ${f(s.lstm_cf, 1)} | ${f(s.total_cf, 1)} | ` +
        `${f(s.us_per_token)} (${f(s.lstm_us)} + ${f(s.output_us)}) | ${f(c.us_per_token)} (${f(c.lstm_us)} + ${f(c.output_us)}) | ` +
        `${f(c.us_per_token / s.us_per_token, 2)}x |`,
    );
  }
  lines.push('', '| kernel | weights | SIMD µs/call | SIMD GFLOP/s | scalar µs/call | scalar/SIMD |', '| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const s of kernels.filter((r) => r.variant === 'simd')) {
    const c = kernels.find((r) => r.variant === 'scalar' && r.kernel === s.kernel && r.rows === s.rows && r.cols === s.cols);
    const dense = s.kernel === 'gemv';
    lines.push(
      `| ${s.kernel} ${s.rows}x${s.cols} | ${dense ? `${f((4 * s.rows * s.cols) / 1024)} KB` : '25x'} | ${f(s.us_per_call, 1)} | ` +
        `${dense ? f((2 * s.rows * s.cols) / s.us_per_call / 1e3, 2) : '–'} | ${f(c.us_per_call, 1)} | ${f(c.us_per_call / s.us_per_call, 2)}x |`,
    );
  }
  return lines.join('\n');
}
