// Compiled (not run) by types.test.mjs: every API call with the types the package declares.
import { load, loadTools, simdSupported, type DkpLstm, type DkpLstmTools, type Model, type ModelInfo, type Prediction } from 'dkp-lstm';
import { createWorkerModel, type WorkerModel } from 'dkp-lstm/worker';

async function main(): Promise<void> {
  const simd: boolean = simdSupported();
  const m: DkpLstm = await load({ simd: simd ? 'auto' : false, wasm: new Uint8Array(0) });
  const variant: 'simd' | 'scalar' = m.variant;
  const tools: DkpLstmTools = await loadTools({ simd: false, wasm: new URL('file:///tools.wasm') });
  const bytes: Uint8Array = tools.randomModel({ kind: 'dkp', cf: 25, embeddingKind: 'tied', tokenizer: 'char', seed: 1 });
  const model: Model = m.Model.load(bytes);
  const info: ModelInfo = model.info();
  const cf: number = info.lstm_cf + info.weights[0].shape[0] + info.output.cf_with_indices;
  model.reset();
  const fed: number = model.feed('the cat').tokens + model.feedToken(1).ms;
  const top: Prediction[] = model.topK(5).predictions;
  const ppl: number = model.perplexity('the cat\n').perplexity;
  model.setSeed(42);
  const next: string = model.sampleNext(0.8, 40).token + model.sampleNext(1, 0, { allowUnk: true }).token;
  const text: string = model.generate(10, 1, 0, 7).text + model.generate(1, 1, 0, 7, {}).text;
  const reused: number = model.perplexity('the').reused;
  const us: number[] = model.bench(10).samples_us;
  const call: number = tools.benchKernel('gemv', 2600, 1300, 10).us_per_call;
  const kernels: string = m.buildInfo().kernels;
  model.free();
  // @ts-expect-error: kernel names are checked
  tools.benchKernel('fft', 1, 1, 1);
  // @ts-expect-error: benchKernel is a tool, not in the runtime module
  m.benchKernel('gemv', 1, 1, 1);
  // @ts-expect-error: tokenizers are 'word' or 'char'
  tools.randomModel({ tokenizer: 'bpe' });
  // @ts-expect-error: the runtime module has no randomModel
  m.randomModel();
  console.log(variant, cf, fed, top, ppl, next, text, reused, us, call, kernels);
}

async function inWorker(bytes: Uint8Array): Promise<void> {
  const controller = new AbortController();
  const wm: WorkerModel = await createWorkerModel({ simd: 'auto' });
  const info: ModelInfo = await wm.load(bytes, { transfer: false, signal: controller.signal });
  await wm.load(new URL('https://example.com/m.safetensors'));
  await wm.load({ random: { kind: 'kp', cf: 4 } });
  const fed: number = (await wm.feed('the cat')).tokens;
  const top: Prediction[] = (await wm.topK(5, { signal: controller.signal })).predictions;
  const ppl = await wm.perplexity('the cat\n', { onProgress: ({ done, total, tokens }) => console.log(done / total, tokens) });
  for await (const step of wm.generate(10, 0.8, 40, 1, { allowUnk: false, signal: controller.signal })) {
    const token: string = step.token;
    console.log(token, step.id, step.ms);
  }
  const res: number = wm.timer.resolutionMs;
  console.log(info.vocab, fed, top, ppl.reused, res, wm.variant, (await wm.bench(5)).us_per_token, wm.broken?.message);
  await wm.free();
  wm.terminate();
  // @ts-expect-error: a number is not a model source
  await wm.load(5);
}

void main();
void inWorker(new Uint8Array(0));
