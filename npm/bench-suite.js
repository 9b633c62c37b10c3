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

/** Runs everything on both builds; `load` is the package's loader. */
export async function runSuite(load, { tokens = 200, iters = 200, log = () => {} } = {}) {
  const results = { models: [], kernels: [] };
  for (const simd of [true, false]) {
    const m = await load({ simd });
    for (const { name, spec } of MODELS) {
      const model = m.Model.load(m.randomModel(spec));
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
    for (const name of ['gemv', 'kp', 'dkp']) {
      m.benchKernel(name, ...KERNEL_SHAPE, 10); // warm-up
      const calls = [0, 1, 2, 3, 4].map(() => m.benchKernel(name, ...KERNEL_SHAPE, iters).us_per_call);
      calls.sort((a, b) => a - b);
      const row = { variant: m.variant, kernel: name, rows: KERNEL_SHAPE[0], cols: KERNEL_SHAPE[1], us_per_call: calls[2] };
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
  lines.push('', `| kernel (${KERNEL_SHAPE.join('x')}) | SIMD µs/call | scalar µs/call | scalar/SIMD |`, '| --- | ---: | ---: | ---: |');
  for (const name of ['gemv', 'kp', 'dkp']) {
    const [s, c] = [find(kernels, 'kernel', name, 'simd'), find(kernels, 'kernel', name, 'scalar')];
    lines.push(`| ${name} | ${f(s.us_per_call, 1)} | ${f(c.us_per_call, 1)} | ${f(c.us_per_call / s.us_per_call, 2)}x |`);
  }
  return lines.join('\n');
}
