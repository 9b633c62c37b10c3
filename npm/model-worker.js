// The dkp-lstm model worker: runs in a module Worker (browsers) or a worker_threads
// Worker (Node), owns one WebAssembly instance and at most one model, and answers the
// client in worker-client.js (`createWorkerModel` from 'dkp-lstm/worker'). A long
// call here never blocks the page or the Node event loop that made it.
//
// Protocol, private to this package (the client is its only user):
//   client → worker  {id, op, args}        one call at a time: the client posts the next
//                                           one only after this one has answered, so a
//                                           call it cancels while queued never gets here
//                    {cancel: id}           stop the running call at its next pause
//   worker → client  {id, progress}         zero or more (perplexity, generate)
//                    {id, ok: true, result} or {id, ok: false, error: {name, message}, fatal}

import { load, loadTools } from './index.js';
import { readUrl } from './read-url.js';

// A text longer than this is scored in prefixes of growing length (see `perplexity`),
// each taking about CHUNK_MS, with a progress message and a pause for cancels between.
const FIRST_CHUNK_CHARS = 2000;
const CHUNK_MS = 100;
// Generation pauses for cancels this often; each pause costs up to a 4 ms timer clamp.
const PAUSE_EVERY_MS = 50;
// The binding's bound on generate's n (MAX_TOKENS in wasm/src/lib.rs).
const MAX_TOKENS = 2 ** 20;

// How this worker talks to its client: set once, below. No top-level await, which
// bundlers targeting older engines refuse; Node keeps early messages until a listener
// is attached.
let port = null;

let dkp = null; // the loaded package: { Model, buildInfo, variant }
let model = null;
let tokenizer = null; // the model's tokenizer kind, which decides where a text may be cut
// The text the model's last perplexity call scored: its tokens are in the binding's
// cache, so the chunks of a new text start where the two texts part.
let scoredText = '';

function current() {
  if (!model) throw new Error('no model is loaded (call load first)');
  return model;
}

function abortError() {
  return new DOMException('the call was cancelled', 'AbortError');
}

/** The bytes of a load source: {bytes}, {blob}, {url}, {path} or {random}. */
async function sourceBytes(source) {
  if (source?.bytes) return new Uint8Array(source.bytes);
  if (source?.blob) return new Uint8Array(await source.blob.arrayBuffer());
  if (source?.url) return new Uint8Array(await readUrl(new URL(source.url)));
  if (source?.path) {
    // Node: a path relative to the working directory, which the worker shares.
    const { pathToFileURL } = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:url');
    return new Uint8Array(await readUrl(pathToFileURL(source.path)));
  }
  if (source?.random !== undefined) return (await loadTools()).randomModel(source.random);
  throw new TypeError('dkp-lstm: a load source is bytes, a Blob, a URL or { random: spec }');
}

/** Finest step of performance.now() seen within a few milliseconds, in ms. */
function timerResolution() {
  let best = Infinity;
  const stop = performance.now() + 10;
  for (let last = performance.now(), steps = 0; steps < 50 && last < stop;) {
    const t = performance.now();
    if (t !== last) {
      best = Math.min(best, t - last);
      last = t;
      steps++;
    }
  }
  return best;
}

/**
 * Where a chunk that should end near `at` may end: right after a space or newline for
 * word models (the prefix then holds whole words, so its tokens begin the text's
 * tokens), and not inside a surrogate pair for char models. Cutting elsewhere would
 * only cost reuse, not correctness: the binding compares token ids.
 */
function cutNear(text, from, at) {
  if (at >= text.length) return text.length;
  if (tokenizer === 'char') return /[\uD800-\uDBFF]/.test(text[at - 1]) ? at + 1 : at;
  const back = Math.max(text.lastIndexOf(' ', at - 1), text.lastIndexOf('\n', at - 1));
  if (back >= from) return back + 1;
  const ahead = text.slice(at).search(/[ \n]/);
  return ahead < 0 ? text.length : at + ahead + 1;
}

function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

const ops = {
  async init({ simd, wasm }) {
    dkp = await load({ simd, wasm });
    const timer = { resolutionMs: timerResolution(), crossOriginIsolated: globalThis.crossOriginIsolated ?? null };
    return { variant: dkp.variant, build: dkp.buildInfo(), timer };
  },

  /** Replaces the model only once the new one has loaded: a bad file leaves the old one. */
  async load({ source }) {
    const next = dkp.Model.load(await sourceBytes(source));
    model?.free();
    model = next;
    scoredText = '';
    const info = model.info();
    tokenizer = info.tokenizer;
    return info;
  },

  info: () => current().info(),
  reset: () => current().reset(),
  feed: ({ text }) => current().feed(text),
  feedToken: ({ id }) => current().feedToken(id),
  topK: ({ k }) => current().topK(k),
  setSeed: ({ seed }) => current().setSeed(seed),
  sampleNext: ({ temperature, topK, options }) => current().sampleNext(temperature, topK, options),
  bench: ({ n }) => current().bench(n),

  /**
   * The binding's perplexity, which reuses the scores of the previous text's common
   * prefix. A long new part is scored through prefixes of growing length — each call
   * reuses the one before — so that progress can be posted and a cancel can get in
   * between; the chunk length adapts to take about CHUNK_MS.
   */
  async perplexity({ text }, call) {
    const m = current();
    if (typeof text !== 'string') return m.perplexity(text); // the binding's error
    let done = commonPrefix(text, scoredText);
    let size = FIRST_CHUNK_CHARS;
    let reused = null;
    let ms = 0;
    for (;;) {
      const end = text.length - done <= size ? text.length : cutNear(text, done, done + size);
      const t0 = performance.now();
      let r;
      try {
        r = m.perplexity(end === text.length ? text : text.slice(0, end));
      } catch (err) {
        // A prefix may have no scorable tokens (only unknown words) where the whole
        // text has: only the whole text's errors count.
        if (end === text.length || err instanceof WebAssembly.RuntimeError) throw err;
      }
      if (r) {
        scoredText = text.slice(0, end);
        reused ??= r.reused; // only the first call reuses what came before this one
        ms += r.ms;
      }
      if (end === text.length) return { ...r, reused, ms };
      call.progress({ done: end, total: text.length, tokens: r?.tokens ?? 0 });
      const took = performance.now() - t0;
      // At most 4x per step, so that even a fast engine reports progress more than once.
      size = Math.round(Math.min(4 * size, Math.max(200, (size * CHUNK_MS) / Math.max(took, 1))));
      done = end;
      await call.pause();
    }
  },

  /** setSeed, then sampleNext n times, posting each token as it comes. */
  async generate({ n, temperature, topK, seed, options }, call) {
    const m = current();
    if (!(Number.isInteger(n) && n >= 0 && n <= MAX_TOKENS)) {
      throw new Error(`invalid \`n\`: ${String(n)} is not an integer in 0..=${MAX_TOKENS}`);
    }
    // generate(0, …) checks every other argument and seeds the generator, like setSeed.
    m.generate(0, temperature, topK, seed, options);
    let paused = performance.now();
    for (let i = 0; i < n; i++) {
      call.progress(m.sampleNext(temperature, topK, options));
      if (performance.now() - paused > PAUSE_EVERY_MS) {
        await call.pause();
        paused = performance.now();
      }
    }
    return { tokens: n };
  },

  free() {
    model?.free();
    model = null;
    scoredText = '';
  },
};

let running = null; // the id of the call being run
const cancelled = new Set();

async function handle({ id, op, args }) {
  running = id;
  const call = {
    progress: (progress) => port.post({ id, progress }),
    // A timer task, so that the message loop delivers a pending cancel first.
    async pause() {
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (cancelled.has(id)) throw abortError();
    },
  };
  try {
    if (!Object.hasOwn(ops, op)) throw new Error(`unknown model worker op '${op}'`);
    if (op !== 'init' && !dkp) throw new Error('the wasm runtime is not initialised');
    const result = await ops[op](args ?? {}, call);
    port.post({ id, ok: true, result });
  } catch (err) {
    // A trap (a Rust panic, out of memory) leaves the instance unusable: the client
    // refuses every later call, and a new worker starts over.
    const fatal = err instanceof WebAssembly.RuntimeError;
    const name = err?.name === 'AbortError' ? 'AbortError' : err instanceof TypeError ? 'TypeError' : 'Error';
    const message = err instanceof Error ? err.message : String(err);
    port.post({ id, ok: false, error: { name, message: fatal ? `the runtime trapped: ${message}` : message }, fatal });
  } finally {
    running = null;
    cancelled.delete(id);
  }
}

// Calls that await (init, load, perplexity, generate) must not let the next one in
// half-way; the client sends one at a time anyway.
let queue = Promise.resolve();
function listen(messages) {
  port = messages;
  port.listen((data) => {
    if (data && 'cancel' in data) {
      if (data.cancel === running) cancelled.add(data.cancel);
      return;
    }
    queue = queue.then(() => handle(data));
  });
}

if (typeof WorkerGlobalScope === 'function') {
  listen({ post: (message, transfer) => self.postMessage(message, transfer ?? []), listen: (on) => self.addEventListener('message', (e) => on(e.data)) });
} else {
  import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:worker_threads').then(({ parentPort }) =>
    listen({ post: (message, transfer) => parentPort.postMessage(message, transfer ?? []), listen: (on) => parentPort.on('message', on) }));
}
