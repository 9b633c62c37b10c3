// Parity check and interleaved timing of dkp-lstm against onnxruntime-web, shared by compare.mjs (Node) and browser.mjs (Chromium).

const MIN_NORMAL_F32 = 2 ** -126;

/** The tokenizer section of a dkp-lstm file's config (safetensors header metadata). */
export function tokenizerOf(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const tokenizer = JSON.parse(header.__metadata__.config).tokenizer;
  // docs/format.md: the vocabulary is an array or one string of space-separated tokens.
  if (typeof tokenizer.tokens === 'string') tokenizer.tokens = tokenizer.tokens.split(' ');
  return tokenizer;
}

/**
 * Token ids of whole lines of a PTB text until at least `min` tokens, and those lines.
 * PTB is already tokenised and every word is in the vocabulary as it is (rule 1 of
 * docs/format.md), so a word that is not is an error rather than a guess; the
 * perplexity cross-check in `parity` confirms the mapping against our tokenizer.
 */
export function ptbTokens(text, tokenizer, min) {
  const id = new Map(tokenizer.tokens.map((t, i) => [t, i]));
  const eos = id.get(tokenizer.eos);
  const ids = [];
  const lines = [];
  for (const line of text.split('\n')) {
    if (ids.length >= min) break;
    for (const w of line.split(/\s+/).filter(Boolean)) {
      if (!id.has(w)) throw new Error(`PTB word ${JSON.stringify(w)} is not in the vocabulary`);
      ids.push(id.get(w));
    }
    ids.push(eos);
    lines.push(`${line}\n`);
  }
  return { eos, ids, text: lines.join('') };
}

function argmax(a) {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** onnxruntime-web running one of export_onnx.py's graphs, with the recurrent state kept in JS. */
async function onnxEngine(ort, bytes, layers) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const zeros = () => Object.fromEntries(
    layers.flatMap((l, i) => ['h', 'c'].map((k) => [`${k}${i}`, new ort.Tensor('float32', new Float32Array(l.hidden), [1, l.hidden])])));
  const hLast = new ort.Tensor('float32', new Float32Array(layers.at(-1).hidden).fill(0.1), [1, layers.at(-1).hidden]);
  let state = zeros();
  return {
    session,
    reset() {
      state = zeros();
    },
    /** Feeds a token (the step and LSTM graphs) and returns the log-probs (step and output graphs). */
    async step(token) {
      const feeds = session.inputNames.includes('token')
        ? { ...state, token: new ort.Tensor('int64', BigInt64Array.of(BigInt(token)), [1]) }
        : { h_last: hLast };
      const out = await session.run(feeds);
      if (session.inputNames.includes('h0')) for (const k of Object.keys(state)) state[k] = out[`${k}_out`];
      return out.logprobs?.data;
    },
  };
}

/** Our full log-prob vector, through topK(V) (the JS API has no other way to read all of it). */
function oursLogProbs(model, vocab) {
  const lp = new Float64Array(vocab).fill(NaN);
  for (const p of model.topK(vocab).predictions) lp[p.id] = p.prob >= MIN_NORMAL_F32 ? Math.log(p.prob) : NaN;
  return lp;
}

/**
 * Feeds the same tokens to both engines from the boundary token on and compares every
 * position's log-probs over the whole vocabulary. Our probabilities are f32 exp(logprob),
 * so entries whose probability is below f32's smallest normal (log-prob < -87.3) carry
 * no usable log and are skipped (counted in `skipped`).
 */
export async function parity(model, onnx, seq, vocab, tolerance = 1e-4) {
  model.reset(); // zeroes the state and feeds the boundary token itself (Session::reset)
  onnx.reset();
  let maxDiff = 0;
  let worstPos = -1;
  let skipped = 0;
  let top1Agree = 0;
  let nllOnnx = 0;
  let input = seq.eos;
  for (let pos = 0; pos < seq.ids.length; pos++) {
    if (pos > 0) model.feedToken(input);
    const ours = oursLogProbs(model, vocab);
    const theirs = await onnx.step(input);
    for (let v = 0; v < vocab; v++) {
      if (Number.isNaN(ours[v])) {
        skipped++;
        continue;
      }
      const d = Math.abs(ours[v] - theirs[v]);
      if (!(d <= maxDiff)) [maxDiff, worstPos] = [d, pos]; // a NaN from onnx counts as the worst
    }
    if (argmax(ours) === argmax(theirs)) top1Agree++;
    nllOnnx -= theirs[seq.ids[pos]];
    input = seq.ids[pos];
  }
  const scored = model.perplexity(seq.text); // our tokenizer on the same lines, from a fresh state
  const result = {
    positions: seq.ids.length,
    max_abs_diff: maxDiff,
    worst_position: worstPos,
    skipped_entries: skipped,
    top1_agree: top1Agree,
    nll_ours: scored.nll,
    nll_onnx: nllOnnx,
    ours_tokens: scored.tokens,
  };
  result.ok = maxDiff <= tolerance && scored.tokens === seq.ids.length &&
    Math.abs(scored.nll - nllOnnx) <= tolerance * seq.ids.length;
  return result;
}

/**
 * Parity bound for our int8 model against onnxruntime running the same (dequantised)
 * weights in f32. The weights are identical; our int8 products also round each block of
 * activations to 16 bits (docs/format.md), an error of ~1.5e-5 of the block's largest
 * activation per term that the recurrence carries from token to token: 7e-4 – 9e-4 at worst
 * over 213 × 10 000 log-probs, against ≥ 1e-2 for a real defect (a misread scale or row).
 */
const I8_TOLERANCE = 2e-3;

/** One round of an engine: µs per token over `ids` from a fresh state, and a checksum of the top-1 ids. */
async function round(engine, ids) {
  await engine.reset();
  const t0 = performance.now();
  const sum = await engine.run(ids);
  return { us: (1e3 * (performance.now() - t0)) / ids.length, sum };
}

function oursTimed(model) {
  return {
    reset: () => model.reset(), // this also feeds the boundary token, outside the timed loop
    // One token = feed + output layer + log-softmax + top-1, all inside topK(1).
    run: (ids) => {
      let sum = 0;
      for (const id of ids) {
        model.feedToken(id);
        sum += model.topK(1).predictions[0].id;
      }
      return sum;
    },
  };
}

function onnxTimed(onnx, eos) {
  return {
    // Zeros, then the boundary token untimed, as our reset() does: both engines then see the same states.
    reset: async () => {
      onnx.reset();
      await onnx.step(eos);
    },
    // One token = session.run of the step graph + top-1 as an argmax in JS over its log-probs.
    run: async (ids) => {
      let sum = 0;
      for (const id of ids) {
        const lp = await onnx.step(id);
        if (lp) sum += argmax(lp);
      }
      return sum;
    },
  };
}

/**
 * Everything: parity on the dense model, then `rounds` interleaved rounds of `tokens`
 * tokens per engine (the order rotated each round, after one untimed warm-up round),
 * then our own per-part timer (bench) for each model and build.
 * `dkp`: {simd, scalar} loaded modules; `files`: {name: bytes} with `dense` plus others;
 * `onnx`: {step, lstm, output} graph bytes of the dense model, and optionally `step_i8`,
 * the step graph of `files['dense-i8']`'s weights (int8 values widened to f32 exactly as
 * our reader does), for that model's parity check only: its timing equals `step`'s; and
 * optionally `step_q8`, onnxruntime's own int8 step graph (quantize_dynamic), timed only.
 */
export async function runAll({ dkp, ort, files, onnx, ptb, rounds = 11, tokens = 400, parityTokens = 200, log = () => {} }) {
  const tokenizer = tokenizerOf(files.dense);
  const vocab = tokenizer.tokens.length;
  const n = Number(new DataView(files.dense.buffer, files.dense.byteOffset).getBigUint64(0, true));
  const layers = JSON.parse(JSON.parse(new TextDecoder().decode(files.dense.subarray(8, 8 + n))).__metadata__.config).layers;
  const seq = ptbTokens(ptb, tokenizer, parityTokens);
  const timingIds = ptbTokens(ptb, tokenizer, tokens).ids.slice(0, tokens);

  const models = {};
  for (const [variant, api] of Object.entries(dkp)) {
    for (const [name, bytes] of Object.entries(files)) models[`${variant}/${name}`] = api.Model.load(bytes);
  }
  const { step_i8: stepI8, ...timed } = onnx;
  const graphs = {};
  for (const [part, bytes] of Object.entries(timed)) graphs[part] = await onnxEngine(ort, bytes, layers);

  const checks = {};
  for (const variant of Object.keys(dkp)) {
    checks[variant] = await parity(models[`${variant}/dense`], graphs.step, seq, vocab);
    log({ parity: variant, ...checks[variant] });
  }
  if (stepI8 && files['dense-i8']) {
    const graph = await onnxEngine(ort, stepI8, layers);
    for (const variant of Object.keys(dkp)) {
      checks[`${variant} dense-i8`] = await parity(models[`${variant}/dense-i8`], graph, seq, vocab, I8_TOLERANCE);
      log({ parity: `${variant} dense-i8`, ...checks[`${variant} dense-i8`] });
    }
    await graph.session.release();
  }

  const engines = {
    ...Object.fromEntries(Object.entries(models).map(([k, m]) => [`ours ${k}`, oursTimed(m)])),
    ...Object.fromEntries(Object.entries(graphs).map(([k, g]) => [`onnx ${k}`, onnxTimed(g, seq.eos)])),
  };
  const names = Object.keys(engines);
  const samples = Object.fromEntries(names.map((k) => [k, []]));
  const sums = {};
  for (let r = -1; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + Math.max(r, 0)) % names.length]);
    for (const k of order) {
      const { us, sum } = await round(engines[k], timingIds);
      if (r >= 0) samples[k].push(us);
      sums[k] = sum;
    }
    if (r >= 0) log({ round: r, ...Object.fromEntries(names.map((k) => [k, +samples[k][r].toFixed(1)])) });
  }
  const timing = names.map((k) => ({
    engine: k,
    median_us: median(samples[k]),
    min_us: Math.min(...samples[k]),
    max_us: Math.max(...samples[k]),
    // Paired: the onnx step graph's time over this engine's time in the same round.
    onnx_over_this: median(samples[k].map((us, r) => samples['onnx step'][r] / us)),
    top1_checksum: sums[k],
  }));

  const parts = [];
  for (const [k, m] of Object.entries(models)) {
    m.bench(50); // warm-up
    const b = m.bench(tokens);
    parts.push({ model: k, us: b.us_per_token, lstm_us: b.lstm_us_per_token, output_us: b.output_us_per_token });
  }
  for (const m of Object.values(models)) m.free();
  for (const g of Object.values(graphs)) await g.session.release();
  // The same tokens from the same states: every dense engine must have picked the same top-1 ids.
  const top1Match = Object.keys(dkp).every((v) => sums[`ours ${v}/dense`] === sums['onnx step']);
  return { parity: checks, ok: Object.values(checks).every((c) => c.ok), top1_match: top1Match, rounds, tokens, timing, parts,
    build: dkp.simd.buildInfo(), ort_version: ort.env.versions?.web };
}

/** Markdown tables of runAll's result. */
export function markdown(res) {
  const f = (x) => x.toFixed(1);
  const lines = [
    '| engine / model | µs/token median | min – max | onnx step / this (paired median) |',
    '| --- | ---: | ---: | ---: |',
    ...res.timing.map((t) => `| ${t.engine} | ${f(t.median_us)} | ${f(t.min_us)} – ${f(t.max_us)} | ${t.onnx_over_this.toFixed(2)}x |`),
    '',
    '| ours, bench(n) | µs/token | LSTM µs | output µs |',
    '| --- | ---: | ---: | ---: |',
    ...res.parts.map((p) => `| ${p.model} | ${f(p.us)} | ${f(p.lstm_us)} | ${f(p.output_us)} |`),
    '',
    '| parity, dense model | positions | max abs diff (log-prob) | top-1 agree | NLL ours | NLL onnx | ok |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...Object.entries(res.parity).map(([v, c]) =>
      `| ours ${v} vs onnx | ${c.positions} | ${c.max_abs_diff.toExponential(2)} | ${c.top1_agree}/${c.positions} | ${c.nll_ours.toFixed(4)} | ${c.nll_onnx.toFixed(4)} | ${c.ok} |`),
    '',
    `Timed rounds: the top-1 ids of ours (both builds) and onnx on the dense model ${res.top1_match ? 'are the same' : 'DIFFER'} (checksums).`,
  ];
  return lines.join('\n');
}
