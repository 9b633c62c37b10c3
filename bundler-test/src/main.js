// A user's app: the model from dkp-lstm-models, run in a module Worker through
// dkp-lstm/worker. No configuration tells Vite where the worker, the .wasm or the
// model file are: it finds them from the packages' `new URL('./…', import.meta.url)`.
import { createWorkerModel } from 'dkp-lstm/worker';
import { metadata, modelUrl } from 'dkp-lstm-models';

const PROMPT = 'the stock market';
const SENTENCE = 'the company said it expects sales to rise in the fourth quarter\n';
const $ = (id) => document.getElementById(id);

async function main() {
  $('prompt').textContent = PROMPT;
  $('sentence').textContent = SENTENCE.trim();
  const model = await createWorkerModel();
  const info = await model.load(modelUrl);
  await model.feed(PROMPT);
  const { predictions } = await model.topK(5);
  for (const p of predictions) {
    const li = document.createElement('li');
    li.className = 'prediction';
    li.dataset.token = p.token;
    li.dataset.prob = String(p.prob);
    li.textContent = `${p.token} ${(100 * p.prob).toFixed(1)}%`;
    $('predictions').append(li);
  }
  const score = await model.perplexity(SENTENCE);
  $('perplexity').value = score.perplexity.toFixed(2);
  $('perplexity').dataset.value = String(score.perplexity);
  $('perplexity').dataset.tokens = String(score.tokens);
  const b = $('build');
  b.textContent = `${model.variant} build, ${info.vocab} words, ${metadata.bytes} bytes (test perplexity ${metadata.testPerplexity})`;
  Object.assign(b.dataset, {
    variant: model.variant,
    vocab: String(info.vocab),
    isolated: String(model.timer.crossOriginIsolated),
    modelUrl: modelUrl.href,
  });
  $('status').textContent = 'Ready.';
  $('status').dataset.state = 'ready';
}

main().catch((err) => {
  $('status').textContent = `Failed: ${err?.message ?? err}`;
  $('status').dataset.state = 'error';
});
