// Every function the package exports, called with hostile arguments (zero and huge
// sizes, negative and fractional numbers, NaN, wrong types, freed models): each call
// throws a JS Error — never a RuntimeError, which would mean the instance trapped —
// and the module keeps working afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load, loadTools } from 'dkp-lstm';

const BAD_NUMBERS = [-1, 1.5, NaN, Infinity, -Infinity, 2 ** 60, '3', null, undefined, true, {}, [], 3n];
const BAD_COUNTS = [-1, 1.5, NaN, Infinity, 2 ** 40, '1', null, undefined, false, {}];
const BAD_TEXTS = [5, null, undefined, {}, [], true, ''];

const { randomModel } = await loadTools();

for (const variant of ['simd', 'scalar']) {
  const wasm = await load({ simd: variant === 'simd' });
  const { benchKernel } = await loadTools({ simd: variant === 'simd' });
  const bytes = randomModel({ kind: 'dkp', cf: 4, hidden: 16, vocab: 40, seed: 3 });
  const sentinel = wasm.Model.load(bytes);
  sentinel.feed('the cat');
  const expected = sentinel.topK(5).predictions;

  /** `call()` throws an Error that is not a trap, and the module still answers. */
  function refuses(what, call) {
    let thrown;
    try {
      call();
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof Error, `${variant}: ${what} should throw an Error, returned normally`);
    assert.ok(!(thrown instanceof WebAssembly.RuntimeError), `${variant}: ${what} trapped: ${thrown}`);
    assert.ok(thrown.message.length > 0, `${variant}: ${what} threw an empty message`);
    assert.deepEqual(sentinel.topK(5).predictions, expected, `${variant}: the module is intact after ${what}`);
  }
  const fresh = () => wasm.Model.load(bytes);

  test(`${variant}: Model.load refuses what is not a model file`, () => {
    for (const arg of ['abc', 5, {}, null, undefined, [], new Uint8Array(0), new Uint8Array(64).fill(255),
      bytes.slice(0, bytes.length - 3), new Float32Array(4)]) {
      refuses(`Model.load(${String(arg).slice(0, 20)})`, () => wasm.Model.load(arg));
    }
  });

  test(`${variant}: model methods refuse bad numbers and wrong types`, () => {
    const m = fresh();
    for (const v of BAD_COUNTS) {
      refuses(`topK(${String(v)})`, () => m.topK(v));
      refuses(`feedToken(${String(v)})`, () => m.feedToken(v));
      refuses(`bench(${String(v)})`, () => m.bench(v));
      refuses(`generate(${String(v)}, ...)`, () => m.generate(v, 1, 0, 1));
      refuses(`generate(..., topK ${String(v)}, ...)`, () => m.generate(2, 1, v, 1));
      refuses(`sampleNext(1, ${String(v)})`, () => m.sampleNext(1, v));
    }
    for (const v of BAD_NUMBERS) {
      refuses(`setSeed(${String(v)})`, () => m.setSeed(v));
      refuses(`generate(2, 1, 0, seed ${String(v)})`, () => m.generate(2, 1, 0, v));
    }
    for (const t of [-1, NaN, Infinity, 1e300, '1', null, undefined]) {
      refuses(`sampleNext(${String(t)}, 0)`, () => m.sampleNext(t, 0));
      refuses(`generate(2, ${String(t)}, 0, 1)`, () => m.generate(2, t, 0, 1));
    }
    for (const o of [5, 'x', true, [], { allowUnk: 1 }, { allowUnk: 'yes' }, { allowunk: true }, { temperature: 1 }]) {
      refuses(`sampleNext(1, 0, ${JSON.stringify(o)})`, () => m.sampleNext(1, 0, o));
      refuses(`generate(2, 1, 0, 1, ${JSON.stringify(o)})`, () => m.generate(2, 1, 0, 1, o));
    }
    refuses('feedToken(vocab)', () => m.feedToken(40));
    refuses('feedToken(2 ** 32)', () => m.feedToken(2 ** 32));
    refuses('bench(0)', () => m.bench(0));
    refuses('bench(2 ** 21)', () => m.bench(2 ** 21));
    refuses('generate(2 ** 21)', () => m.generate(2 ** 21, 1, 0, 1));
    for (const t of BAD_TEXTS) {
      refuses(`feed(${String(t)})`, () => (t === '' ? m.perplexity(t) : m.feed(t)));
      refuses(`perplexity(${String(t)})`, () => m.perplexity(t));
    }
    refuses('perplexity of unknown words only', () => m.perplexity('zebra okapi'));
    // The model still works after all of that.
    assert.equal(m.topK(3).predictions.length, 3);
    m.free();
  });

  test(`${variant}: a freed model refuses every call`, () => {
    const m = fresh();
    m.free();
    for (const [what, call] of Object.entries({
      info: () => m.info(), reset: () => m.reset(), feed: () => m.feed('the'), feedToken: () => m.feedToken(1),
      topK: () => m.topK(1), perplexity: () => m.perplexity('the cat'), setSeed: () => m.setSeed(1),
      sampleNext: () => m.sampleNext(1, 0), generate: () => m.generate(1, 1, 0, 1), bench: () => m.bench(1),
    })) {
      refuses(`${what} after free`, call);
    }
    m.free(); // freeing twice is harmless
  });

  test(`${variant}: randomModel (tools module) refuses bad specs`, () => {
    for (const spec of [
      { layers: 1, hidden: 0, vocab: 10, kind: 'dkp', cf: 2, tokenizer: 'word', seed: 1 },
      { layers: 1, hidden: 0, vocab: 10, kind: 'kp', cf: 2 },
      { layers: 0 }, { layers: 65 }, { vocab: 2 }, { vocab: -1 }, { hidden: 1.5 }, { hidden: -4 }, { hidden: 1e6 },
      { cf: 0.5 }, { cf: NaN }, { cf: 'big' }, { kind: 'nope' }, { outputKind: 'tied' }, { embeddingKind: 'nope' },
      { kind: 'kp', cf: 1e9 }, { seed: -1 }, { seed: 0.5 }, { unknownField: 1 }, { tokenizer: 'bpe' },
      { hidden: 2 ** 31, vocab: 2 ** 31 }, 'abc', 5, [], true,
    ]) {
      refuses(`randomModel(${JSON.stringify(spec)})`, () => randomModel(spec));
    }
  });

  test(`${variant}: benchKernel refuses bad names and sizes`, () => {
    for (const args of [
      ['nope', 8, 8, 1], [5, 8, 8, 1], [null, 8, 8, 1], ['gemv', 0, 8, 1], ['gemv', 8, 0, 1], ['gemv', 8, 8, 0],
      ['gemv', -1, 8, 1], ['gemv', 1.5, 8, 1], ['gemv', NaN, 8, 1], ['kp', 2 ** 20, 2 ** 20, 1], ['dkp', '8', 8, 1],
      ['gemv', 8, 8, Infinity],
    ]) {
      refuses(`benchKernel(${args.map(String).join(', ')})`, () => benchKernel(...args));
    }
  });
}
