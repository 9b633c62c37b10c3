// Types of the dkp-lstm npm package: the loader and the module it returns.

/** Which build of the module runs. */
export type Variant = 'simd' | 'scalar';

export interface LoadOptions {
  /** 'auto' (default) picks the SIMD128 build where the engine supports it; true or false forces one. */
  simd?: 'auto' | boolean;
  /** Where the chosen build's .wasm comes from, replacing the file next to this module. */
  wasm?: string | URL | ArrayBuffer | ArrayBufferView | WebAssembly.Module;
}

/** The loaded module. */
export interface DkpLstm {
  Model: ModelClass;
  buildInfo(): BuildInfo;
  variant: Variant;
}

/** Loads (once per variant) and returns the module. */
export function load(options?: LoadOptions): Promise<DkpLstm>;

/** The tools module: a module of its own, loaded only by those who call `loadTools`. */
export interface DkpLstmTools {
  /** A random-weight model file ("trained": false in its provenance). */
  randomModel(spec?: RandomSpec): Uint8Array;
  /** Mean time of one rows×cols matrix–vector product on this build's kernels. */
  benchKernel(name: KernelName, rows: number, cols: number, iters: number): { us_per_call: number };
  variant: Variant;
}

/** Loads (once per variant) and returns the tools module of the build `simd` picks, as for `load`. */
export function loadTools(options?: LoadOptions): Promise<DkpLstmTools>;

/** Whether this engine runs WebAssembly SIMD128. */
export function simdSupported(): boolean;

export interface ModelClass {
  /** Reads and validates a model file; throws an Error that names what is wrong. */
  load(bytes: Uint8Array): Model;
}

/** A model with its recurrent state. Methods throw Error on bad arguments. */
export interface Model {
  info(): ModelInfo;
  /** Zeroes the state, as at the start of a text. */
  reset(): void;
  feed(text: string): { tokens: number; unknown: number; ms: number };
  feedToken(id: number): { ms: number };
  /** The k most likely next tokens, most likely first. */
  topK(k: number): { predictions: Prediction[]; ms: number };
  /**
   * Perplexity of a text read from a fresh state; the state is left after the text.
   * Tokens shared with the previous texts' common prefix are not scored again.
   */
  perplexity(text: string): PerplexityResult;
  /** Seeds the generator of sampleNext (an integer in 0..2^53). */
  setSeed(seed: number): void;
  /** Draws the next token and feeds it. temperature 0 is greedy; topK 0 samples among all. */
  sampleNext(temperature: number, topK: number, options?: SampleOptions): Sampled;
  /** Samples n tokens from the current state with a generator seeded by seed. */
  generate(n: number, temperature: number, topK: number, seed: number, options?: SampleOptions): { text: string; tokens: string[]; ms: number[] };
  /** Median per-token times over n random tokens; the state is restored afterwards. */
  bench(n: number): BenchResult;
  /** Releases the model's WebAssembly memory. */
  free(): void;
}

export interface SampleOptions {
  /** Whether the unknown token `<unk>` may be drawn; default false. */
  allowUnk?: boolean;
}

/** One sampled token. */
export interface Sampled {
  id: number;
  token: string;
  ms: number;
}

export interface RandomSpec {
  layers?: number;
  hidden?: number;
  vocab?: number;
  /** Kind of the LSTM gate weights. */
  kind?: WeightKind;
  /** Compression factor of the LSTM gate weights. */
  cf?: number;
  outputKind?: WeightKind;
  outputCf?: number;
  /** A weight kind, or 'tied' to share the output projection. */
  embeddingKind?: WeightKind | 'tied';
  /** Gate weights as one [W_ih | W_hh] matrix (default) or two. */
  fused?: boolean;
  tokenizer?: 'word' | 'char';
  seed?: number;
}

export type WeightKind = 'dense' | 'kp' | 'dkp' | 'lowrank' | 'dlowrank' | 'sparse' | 'hmd' | 'dhmd';
export type KernelName = 'gemv' | 'gemv_q8' | 'kp' | 'dkp';

export interface BuildInfo {
  simd: boolean;
  /** Kernel set: 'simd128' or 'scalar'. */
  kernels: string;
  version: string;
}

export interface Prediction {
  id: number;
  token: string;
  prob: number;
}

export interface PerplexityResult {
  perplexity: number;
  /** Total negative log-likelihood in nats. */
  nll: number;
  /** Tokens scored, end-of-sentence tokens included. */
  tokens: number;
  /** Words mapped to the unknown token. */
  unknown: number;
  /** Time spent scoring the tokens that were not reused. */
  ms: number;
  /** Leading tokens whose scores came from earlier calls (the texts' common prefix). */
  reused: number;
}

export interface BenchResult {
  us_per_token: number;
  /** The LSTM layers. */
  lstm_us_per_token: number;
  /** The output projection and log-softmax. */
  output_us_per_token: number;
  /** Every token's total, in order. */
  samples_us: number[];
}

export interface PartInfo {
  params: number;
  indices: number;
  bytes: number;
  /** Bytes in memory once loaded. */
  memory: number;
  dense_params: number;
  macs: number;
  cf: number;
  cf_with_indices: number;
}

export interface WeightInfo {
  /** Tensor prefix in the file, e.g. 'layers.0.w'. */
  name: string;
  kind: WeightKind;
  shape: [number, number];
  /** Storage precision of the values (I8: int8 with one absmax per row; I4: int4 with one scale per row). */
  dtype: 'F32' | 'F16' | 'I8' | 'I4';
  detail: string;
  values: number;
  indices: number;
  bytes: number;
  /** Bytes in memory once loaded (int8 dense matrices stay int8, other values are f32). */
  memory: number;
  macs: number;
  cf: number;
  cf_with_indices: number;
}

export interface ModelInfo {
  tokenizer: 'word' | 'char';
  vocab: number;
  embedding_dim: number;
  hidden: number[];
  tied: boolean;
  kernels: string;
  params: number;
  bytes: number;
  /** Bytes the weights and biases occupy in memory once loaded. */
  memory: number;
  lstm_cf: number;
  lstm_cf_with_indices: number;
  total_cf: number;
  total_cf_with_indices: number;
  lstm: PartInfo;
  embedding: PartInfo;
  output: PartInfo;
  biases: PartInfo;
  weights: WeightInfo[];
  provenance: Record<string, unknown>;
  /** Size of the file given to Model.load. */
  file_bytes: number;
  format_version: number;
}
