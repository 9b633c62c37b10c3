/** The package's models: the main entry is 'ptb-whole-model'; each other one is the entry `dkp-lstm-models/<id>`. */
export type ModelId = 'ptb-whole-model' | 'ptb-whole-model-1mb' | 'ptb-whole-model-2mb';

/** What a shipped model is; the numbers are read from the file's own provenance when the package is built. */
export interface ModelMetadata {
  /** Stable identifier; also the entry that exports it and the file's name. */
  id: ModelId;
  /** File name inside the package: `<id>.safetensors`. */
  file: `${ModelId}.safetensors`;
  /** File size in bytes. */
  bytes: number;
  /** SHA-256 of the file, lowercase hex. */
  sha256: string;
  /** Training data. */
  dataset: string;
  tokenizer: 'word';
  vocab: number;
  layers: number;
  hidden: number;
  /** Weight kinds: LSTM gates, output layer and embedding ('tied': the output layer's rows). */
  weights: { lstm: string; output: string; embedding: string };
  /** How values are stored in the file. */
  dtype: 'i8';
  /** Perplexity of this int8 file on the PTB test and validation sets (batch 1, one stream). */
  testPerplexity: number;
  validPerplexity: number;
  /** Compression factor of the LSTM layers, counting sparse indices. */
  lstmCompression: number;
  epochs: number;
  trainer: string;
  /** The training configuration in the dkp-lstm repository. */
  config: string;
}

/** What this entry's model is. */
export declare const metadata: ModelMetadata;

/** URL of this entry's model file, next to its module (a file: URL in Node, an asset URL once bundled). */
export declare const modelUrl: URL;
