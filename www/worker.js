// Runs one model of the demo page off the main thread.
//
// Protocol: the page posts `{id, op, ...args}`; the worker answers `{id, ok, result}`
// or `{id, ok: false, error}`, and a streaming op posts `{id, progress}` before its
// answer. Messages are handled one at a time, in order, so a model is never used by
// two ops at once. Each panel of the page owns one worker, so a model that fails
// (a bad file, a trap) cannot take the other panel's model down with it.

import { load } from './pkg/index.js';

let dkp = null; // the loaded npm package: { Model, randomModel, buildInfo, benchKernel, variant }
let model = null; // the current Model, or null
const WARM_UP_TOKENS = 32;

/** Plain JSON-like data from what wasm-bindgen hands back (Maps, BigInts). */
function plain(value) {
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, plain(v)]));
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'bigint') return Number(value);
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

function current() {
  if (!model) throw new Error('no model is loaded in this panel');
  return model;
}

/** The bytes of a model source: `{random: spec}`, `{url}` or `{bytes}`. */
async function sourceBytes(source) {
  if (source.random) return dkp.randomModel(source.random);
  if (source.url) {
    const response = await fetch(source.url);
    if (!response.ok) throw new Error(`cannot fetch ${source.url}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  if (source.bytes) return new Uint8Array(source.bytes);
  throw new Error('model source has none of random, url or bytes');
}

const ops = {
  async init({ simd }) {
    dkp = await load({ simd });
    return { variant: dkp.variant, build: plain(dkp.buildInfo()) };
  },

  async load({ source }) {
    // The old model goes first: a panel whose new file is bad shows the error, not
    // a stale model under a new name.
    model?.free();
    model = null;
    const bytes = await sourceBytes(source);
    model = dkp.Model.load(bytes);
    // Warm-up: the engine moves the hot code to its optimising tier during the first
    // tokens, which would otherwise dominate the session's latency statistics.
    model.bench(WARM_UP_TOKENS);
    return { info: plain(model.info()), fileBytes: bytes.length };
  },

  /** Scores the text, then predicts the next token after it. */
  predict({ text, k }) {
    const m = current();
    let perplexity = null;
    let perplexityError = null;
    try {
      // Every scored token runs the LSTM layers and the output layer, so this is
      // also the per-token latency sample; it leaves the state after the text.
      perplexity = plain(m.perplexity(text));
    } catch (err) {
      perplexityError = message(err);
      m.reset();
      m.feed(text);
    }
    const top = plain(m.topK(k));
    return { perplexity, perplexityError, predictions: top.predictions, topMs: top.ms };
  },

  /** Samples `n` tokens after `text`, posting each one as it comes. */
  generate({ text, n, temperature, topK, seed }, progress) {
    const m = current();
    m.reset();
    m.feed(text);
    m.setSeed(seed);
    const ms = [];
    for (let i = 0; i < n; i++) {
      const step = plain(m.sampleNext(temperature, topK));
      ms.push(step.ms);
      progress(step);
    }
    return { ms };
  },

  bench({ n }) {
    return plain(current().bench(n));
  },
};

function message(err) {
  return err instanceof Error ? err.message : String(err);
}

async function handle({ id, op, ...args }) {
  try {
    if (!ops[op]) throw new Error(`unknown worker op '${op}'`);
    if (op !== 'init' && !dkp) throw new Error('the wasm runtime is not initialised');
    const result = await ops[op](args, (progress) => self.postMessage({ id, progress }));
    self.postMessage({ id, ok: true, result });
  } catch (err) {
    // A trap (a Rust panic, out of memory) leaves the instance unusable: the page
    // replaces this worker before its next load.
    const fatal = err instanceof WebAssembly.RuntimeError;
    self.postMessage({ id, ok: false, error: fatal ? `the runtime trapped: ${message(err)}` : message(err), fatal });
  }
}

// Ops that await (init, load) must not let the next message in half-way.
let queue = Promise.resolve();
self.onmessage = ({ data }) => {
  queue = queue.then(() => handle(data));
};
