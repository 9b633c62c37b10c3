// Types of 'dkp-lstm/worker': a model in its own worker (model-worker.js) behind a
// promise-based client with the methods of Model.

import type { BenchResult, BuildInfo, LoadOptions, ModelInfo, PerplexityResult, Prediction, RandomSpec, SampleOptions, Sampled, Variant } from './index.js';

/**
 * A worker running model-worker.js: a browser `Worker` (module type) or a Node
 * `worker_threads` Worker; the client listens with addEventListener or on.
 */
export interface WorkerLike {
  postMessage(message: unknown, transfer?: any[]): void;
  terminate(): unknown;
}

export interface CreateWorkerModelOptions extends LoadOptions {
  /** A worker started by the caller; by default one is started from the package's model-worker.js. */
  worker?: WorkerLike;
  /** Cancels the start-up. */
  signal?: AbortSignal;
}

/** Options every call takes. */
export interface CallOptions {
  /**
   * Cancels the call: a queued call rejects with an AbortError and never runs; a
   * running perplexity or generate stops at its next pause; other running calls finish
   * but their promise has already rejected.
   */
  signal?: AbortSignal;
}

export interface WorkerLoadOptions extends CallOptions {
  /** Transfer the bytes to the worker (default true: the caller's buffer is detached), or send a copy. */
  transfer?: boolean;
}

/** Progress of a long perplexity call, in characters of the text. */
export interface PerplexityProgress {
  done: number;
  total: number;
  /** Tokens scored so far. */
  tokens: number;
}

export interface WorkerPerplexityOptions extends CallOptions {
  onProgress?: (progress: PerplexityProgress) => void;
}

/** A model file: bytes, a Blob (File), a URL (relative to the page; in Node a path or URL) or a random model's spec. */
export type ModelSource = Uint8Array | ArrayBuffer | Blob | string | URL | { random: RandomSpec };

/** The client of one model worker. Calls run one at a time, in call order. */
export interface WorkerModel {
  /** The wasm build the worker runs. */
  readonly variant: Variant;
  readonly build: BuildInfo;
  /** The worker's performance.now(): finest step seen (ms) and whether it runs cross-origin isolated (null in Node). */
  readonly timer: { resolutionMs: number; crossOriginIsolated: boolean | null };
  /** Why the worker takes no more calls (it trapped, failed or was terminated), else null. */
  readonly broken: Error | null;
  /** Loads a model; a bad file rejects and leaves the previous model loaded. */
  load(source: ModelSource, options?: WorkerLoadOptions): Promise<ModelInfo>;
  info(options?: CallOptions): Promise<ModelInfo>;
  reset(options?: CallOptions): Promise<void>;
  feed(text: string, options?: CallOptions): Promise<{ tokens: number; unknown: number; ms: number }>;
  feedToken(id: number, options?: CallOptions): Promise<{ ms: number }>;
  topK(k: number, options?: CallOptions): Promise<{ predictions: Prediction[]; ms: number }>;
  perplexity(text: string, options?: WorkerPerplexityOptions): Promise<PerplexityResult>;
  setSeed(seed: number, options?: CallOptions): Promise<void>;
  sampleNext(temperature: number, topK: number, options?: SampleOptions & CallOptions): Promise<Sampled>;
  /** n sampled tokens as they come; leaving the loop early cancels the rest. */
  generate(n: number, temperature: number, topK: number, seed: number, options?: SampleOptions & CallOptions): AsyncIterableIterator<Sampled>;
  bench(n: number, options?: CallOptions): Promise<BenchResult>;
  /** Releases the model; the worker stays for the next load. */
  free(options?: CallOptions): Promise<void>;
  /** Ends the worker; every pending and later call rejects. */
  terminate(): void;
}

/** Starts a model worker (or adopts `options.worker`), loads the wasm module in it and resolves to its client. */
export function createWorkerModel(options?: CreateWorkerModelOptions): Promise<WorkerModel>;
