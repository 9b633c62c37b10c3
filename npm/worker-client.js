// 'dkp-lstm/worker': a model running in its own worker, behind promises.
// `createWorkerModel()` starts model-worker.js — a module Worker in browsers, a
// worker_threads Worker in Node — or adopts a worker the caller made (a bundler's
// worker URL, a worker with other options), and returns a client whose methods are the
// Model's, asynchronous. Calls run one at a time in call order; the client keeps the
// queue itself, so a call cancelled (AbortSignal) while queued is never sent and
// never runs.

/** Starts a worker, loads the WebAssembly module in it and resolves to its client. */
export function createWorkerModel(options) {
  return WorkerModel.create(options);
}

async function startWorker() {
  if (typeof Worker === 'function') {
    // Written out in full so that bundlers (Vite, webpack) find and emit the worker.
    return new Worker(new URL('./model-worker.js', import.meta.url), { type: 'module' });
  }
  const { Worker: NodeWorker } = await import(/* webpackIgnore: true */ /* @vite-ignore */ 'node:worker_threads');
  return new NodeWorker(new URL('./model-worker.js', import.meta.url));
}

// Node resolves a relative model path against the working directory; everything else
// against the page (the worker's own location is the package's folder).
const isNode = typeof process === 'object' && Boolean(process.versions?.node) && typeof location === 'undefined';

/** The load source for a model URL or path, absolute so that the worker reads the same file. */
function urlSource(source) {
  if (source instanceof URL) return { url: source.href };
  if (!isNode) return { url: new URL(source, globalThis.location?.href).href };
  return URL.canParse(source) ? { url: new URL(source).href } : { path: source };
}

function abortReason(signal) {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * Splits a method's last argument into what the client handles (signal, onProgress)
 * and what goes to the model (everything else). Anything but a plain object goes to
 * the model as it is, so that the binding refuses it with the same error as Model's.
 */
function splitOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) return [{}, options];
  const { signal, onProgress, ...rest } = options;
  return [{ signal, onProgress }, Object.keys(rest).length ? rest : undefined];
}

class WorkerModel {
  #worker;
  #queue = [];
  #running = null;
  #nextId = 1;
  #broken = null;

  static async create({ worker, simd = 'auto', wasm, signal } = {}) {
    const client = new WorkerModel(worker ?? (await startWorker()));
    try {
      const { variant, build, timer } = await client.#call('init', { simd, wasm }, { signal });
      Object.assign(client, { variant, build, timer });
    } catch (err) {
      client.terminate();
      throw err;
    }
    return client;
  }

  constructor(worker) {
    this.#worker = worker;
    const fail = (err) => this.#fail(err);
    if (typeof worker.addEventListener === 'function') {
      worker.addEventListener('message', (e) => this.#answer(e.data));
      worker.addEventListener('error', (e) => {
        e.preventDefault?.(); // reported through the rejected calls, not the console
        fail(new Error(`dkp-lstm: the model worker failed: ${e.message || 'it did not start (is model-worker.js served next to worker-client.js?)'}`));
      });
      worker.addEventListener('messageerror', () => fail(new Error('dkp-lstm: a message from the model worker could not be read')));
    } else {
      // Node's worker_threads.Worker is an EventEmitter.
      worker.on('message', (data) => this.#answer(data));
      worker.on('error', (err) => fail(err instanceof Error ? err : new Error(String(err))));
      worker.on('exit', (code) => fail(new Error(`dkp-lstm: the model worker exited (code ${code})`)));
    }
  }

  /** Whether the worker can still take calls; else the reason it cannot. */
  get broken() {
    return this.#broken;
  }

  /** Queues `op`; `transfer` lists buffers handed over to the worker with it. */
  #call(op, args, options) {
    const { signal, onProgress, transfer } = options ?? {};
    return new Promise((resolve, reject) => {
      if (this.#broken) return reject(this.#broken);
      if (signal?.aborted) return reject(abortReason(signal));
      const entry = { id: this.#nextId++, op, args, transfer, onProgress, resolve, reject, settled: false };
      entry.settle = (fn, value) => {
        if (entry.settled) return;
        entry.settled = true;
        signal?.removeEventListener('abort', entry.abort);
        fn(value);
      };
      entry.abort = () => {
        const queued = this.#queue.indexOf(entry);
        if (queued >= 0) this.#queue.splice(queued, 1);
        // A running call stops at its next pause (perplexity, generate) or runs to its
        // end; either way the worker answers before the next call is sent.
        else if (this.#running === entry) this.#worker.postMessage({ cancel: entry.id });
        entry.settle(reject, abortReason(signal));
      };
      signal?.addEventListener('abort', entry.abort, { once: true });
      this.#queue.push(entry);
      this.#pump();
    });
  }

  #pump() {
    while (!this.#running && this.#queue.length) {
      const entry = this.#queue.shift();
      try {
        this.#worker.postMessage({ id: entry.id, op: entry.op, args: entry.args }, entry.transfer ?? []);
        this.#running = entry;
      } catch (err) {
        entry.settle(entry.reject, err); // e.g. a DataCloneError: arguments that cannot be sent
      }
    }
  }

  #answer(data) {
    const entry = this.#running;
    if (!entry || data?.id !== entry.id) return;
    if ('progress' in data) {
      if (!entry.settled) entry.onProgress?.(data.progress);
      return;
    }
    this.#running = null;
    if (data.ok) {
      entry.settle(entry.resolve, data.result);
    } else {
      const { name, message } = data.error;
      const err = name === 'AbortError' ? new DOMException(message, 'AbortError') : name === 'TypeError' ? new TypeError(message) : new Error(message);
      entry.settle(entry.reject, err);
    }
    if (data.fatal) this.#fail(new Error(`dkp-lstm: ${data.error.message}; the model worker is unusable, create a new one`));
    this.#pump();
  }

  #fail(err) {
    this.#broken ??= err;
    for (const entry of [this.#running, ...this.#queue]) entry?.settle(entry.reject, this.#broken);
    this.#running = null;
    this.#queue = [];
  }

  /**
   * Loads a model file, replacing the current model once the new one is valid (a bad
   * file rejects and leaves the current model answering). Bytes are transferred, not
   * copied: the caller's buffer is detached afterwards, unless `transfer: false` or the
   * array views part of a larger buffer (a copy is sent then).
   */
  load(source, options) {
    const { signal, transfer = true } = options ?? {};
    const send = (message, sent) => this.#call('load', { source: message }, { signal, transfer: sent });
    if (source instanceof ArrayBuffer) source = new Uint8Array(source);
    if (source instanceof Uint8Array) {
      const whole = source.byteOffset === 0 && source.byteLength === source.buffer.byteLength && source.buffer instanceof ArrayBuffer;
      const bytes = transfer && whole ? source : source.slice();
      return send({ bytes }, [bytes.buffer]);
    }
    if (typeof Blob === 'function' && source instanceof Blob) return send({ blob: source });
    if (typeof source === 'string' || source instanceof URL) return send(urlSource(source));
    if (source !== null && typeof source === 'object' && 'random' in source) return send({ random: source.random });
    const what = source === null ? 'null' : typeof source;
    return Promise.reject(new TypeError(`dkp-lstm: load(source) takes a Uint8Array, an ArrayBuffer, a Blob, a URL or { random: spec }, not ${what}`));
  }

  info(options) {
    return this.#call('info', {}, options);
  }

  reset(options) {
    return this.#call('reset', {}, options);
  }

  feed(text, options) {
    return this.#call('feed', { text }, options);
  }

  feedToken(id, options) {
    return this.#call('feedToken', { id }, options);
  }

  topK(k, options) {
    return this.#call('topK', { k }, options);
  }

  /** Model.perplexity, with `onProgress({done, total, tokens})` for long texts (characters done). */
  perplexity(text, options) {
    return this.#call('perplexity', { text }, splitOptions(options)[0]);
  }

  setSeed(seed, options) {
    return this.#call('setSeed', { seed }, options);
  }

  sampleNext(temperature, topK, options) {
    const [own, model] = splitOptions(options);
    return this.#call('sampleNext', { temperature, topK, options: model }, own);
  }

  /**
   * Samples n tokens as an async iterator of {id, token, ms}, queued at once like any
   * call. Leaving the loop early (break, return, throw) cancels the rest.
   */
  generate(n, temperature, topK, seed, options) {
    const [{ signal }, model] = splitOptions(options);
    const stop = new AbortController();
    const stopWith = () => stop.abort(abortReason(signal));
    if (signal?.aborted) stopWith();
    else signal?.addEventListener('abort', stopWith, { once: true });
    const steps = [];
    let wake = null;
    let end = null; // {done: true} or {error}
    const notify = () => {
      wake?.();
      wake = null;
    };
    this.#call('generate', { n, temperature, topK, seed, options: model }, {
      signal: stop.signal,
      onProgress: (step) => {
        steps.push(step);
        notify();
      },
    }).then(
      () => {
        end = { done: true };
        notify();
      },
      (error) => {
        end = { error };
        notify();
      },
    );
    let finished = false;
    const finish = () => {
      finished = true;
      signal?.removeEventListener('abort', stopWith);
      stop.abort();
    };
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      async next() {
        for (;;) {
          if (finished) return { done: true, value: undefined };
          if (steps.length) return { done: false, value: steps.shift() };
          if (end) {
            finish();
            if (end.error) throw end.error;
            return { done: true, value: undefined };
          }
          await new Promise((resolve) => (wake = resolve));
        }
      },
      async return() {
        finish();
        return { done: true, value: undefined };
      },
    };
  }

  bench(n, options) {
    return this.#call('bench', { n }, options);
  }

  /** Releases the model's WebAssembly memory; the worker stays, ready for load. */
  free(options) {
    return this.#call('free', {}, options);
  }

  /** Ends the worker: pending calls reject, later ones too. */
  terminate() {
    this.#worker.terminate();
    this.#fail(new Error('dkp-lstm: the model worker was terminated'));
  }
}
