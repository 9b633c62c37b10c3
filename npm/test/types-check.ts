// Compiled (not run) by types.test.mjs: every API call with the types the package declares.
import { load, simdSupported, type DkpLstm, type Model, type ModelInfo, type Prediction } from 'dkp-lstm';

async function main(): Promise<void> {
  const simd: boolean = simdSupported();
  const m: DkpLstm = await load({ simd: simd ? 'auto' : false, wasm: new Uint8Array(0) });
  const variant: 'simd' | 'scalar' = m.variant;
  const bytes: Uint8Array = m.randomModel({ kind: 'dkp', cf: 25, embeddingKind: 'tied', tokenizer: 'char', seed: 1 });
  const model: Model = m.Model.load(bytes);
  const info: ModelInfo = model.info();
  const cf: number = info.lstm_cf + info.weights[0].shape[0] + info.output.cf_with_indices;
  model.reset();
  const fed: number = model.feed('the cat').tokens + model.feedToken(1).ms;
  const top: Prediction[] = model.topK(5).predictions;
  const ppl: number = model.perplexity('the cat\n').perplexity;
  model.setSeed(42);
  const next: string = model.sampleNext(0.8, 40).token;
  const text: string = model.generate(10, 1, 0, 7).text;
  const us: number[] = model.bench(10).samples_us;
  const call: number = m.benchKernel('gemv', 2600, 1300, 10).us_per_call;
  const kernels: string = m.buildInfo().kernels;
  model.free();
  // @ts-expect-error: kernel names are checked
  m.benchKernel('fft', 1, 1, 1);
  // @ts-expect-error: tokenizers are 'word' or 'char'
  m.randomModel({ tokenizer: 'bpe' });
  console.log(variant, cf, fed, top, ppl, next, text, us, call, kernels);
}

void main();
