// Tests of the packed `dkp-lstm` npm package, installed from its tarball: both
// builds, every weight kind, SIMD/scalar agreement, and errors at the boundary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { load, loadTools, simdSupported } from 'dkp-lstm';

const KINDS = ['dense', 'kp', 'dkp', 'lowrank', 'dlowrank', 'sparse', 'hmd', 'dhmd'];
const TEXT = 'the cat sat on the mat\nit was N years old\n';
// The SIMD kernels sum in another order and approximate exp/tanh differently; on
// these small models probabilities agree to well within this relative difference.
const REL_TOL = 1e-3;

const simd = await load({ simd: true });
const scalar = await load({ simd: false });
const builds = [simd, scalar];
// The tools modules of both builds; random model files come from the one `loadTools`
// picks, for both builds.
const tools = { simd: await loadTools({ simd: true }), scalar: await loadTools({ simd: false }) };
const { randomModel } = await loadTools();

function spec(kind, extra = {}) {
  return { kind, cf: kind === 'dense' ? 1 : 8, layers: 2, hidden: 32, vocab: 120, seed: 11, ...extra };
}

function close(a, b, what) {
  assert.ok(Math.abs(a - b) <= REL_TOL * Math.max(Math.abs(a), Math.abs(b)), `${what}: ${a} vs ${b}`);
}

test('the loader picks SIMD where supported and honours the override', async () => {
  assert.equal(simd.variant, 'simd');
  assert.equal(scalar.variant, 'scalar');
  assert.deepEqual(simd.buildInfo().simd, true);
  assert.equal(simd.buildInfo().kernels, 'simd128');
  assert.deepEqual(scalar.buildInfo(), { simd: false, kernels: 'scalar', version: simd.buildInfo().version });
  assert.equal(simdSupported(), true, 'Node 20 runs SIMD128');
  assert.equal((await load()).variant, 'simd');
  await assert.rejects(load({ simd: 'yes' }), /takes 'auto', true or false/);
});

for (const build of builds) {
  for (const kind of KINDS) {
    test(`${build.variant}: ${kind} model predicts, scores and generates`, () => {
      const model = build.Model.load(randomModel(spec(kind)));
      const info = model.info();
      assert.equal(info.weights.find((w) => w.name === 'layers.0.w').kind, kind);
      assert.equal(info.kernels, build.variant === 'simd' ? 'simd128' : 'scalar');
      assert.equal(info.provenance.trained, false);

      const fed = model.feed('the cat sat on the');
      assert.equal(fed.tokens, 5);
      const { predictions } = model.topK(10);
      assert.equal(predictions.length, 10);
      const sum = predictions.reduce((s, p) => s + p.prob, 0);
      assert.ok(sum > 0 && sum <= 1 + 1e-6, `top-10 probabilities sum to ${sum}`);
      for (let i = 1; i < predictions.length; i++) {
        assert.ok(predictions[i - 1].prob >= predictions[i].prob, 'sorted most likely first');
      }
      assert.ok(predictions.every((p) => typeof p.token === 'string' && p.token.length > 0));

      const ppl = model.perplexity(TEXT);
      assert.ok(Number.isFinite(ppl.perplexity) && ppl.perplexity > 1, `perplexity ${ppl.perplexity}`);
      assert.equal(ppl.tokens, 13, 'eleven words and two <eos>');
      close(Math.log(ppl.perplexity), ppl.nll / ppl.tokens, 'perplexity = exp(nll / tokens)');

      model.reset();
      const a = model.generate(12, 1.0, 0, 7);
      model.reset();
      const b = model.generate(12, 1.0, 0, 7);
      assert.deepEqual(a.tokens, b.tokens, 'same seed, same text');
      assert.equal(a.text, b.text);
      assert.equal(a.ms.length, 12);
      model.free();
    });
  }

  test(`${build.variant}: char model`, () => {
    // 97 tokens: <unk>, newline and the 95 printable ASCII characters.
    const model = build.Model.load(randomModel({ tokenizer: 'char', vocab: 97, kind: 'dkp', cf: 4, embeddingKind: 'tied', seed: 5 }));
    const info = model.info();
    assert.equal(info.tokenizer, 'char');
    assert.equal(info.tied, true);
    assert.equal(info.embedding.params, 0);
    const fed = model.feed('héllo');
    assert.deepEqual([fed.tokens, fed.unknown], [5, 1]);
    const ppl = model.perplexity('hello world\n');
    assert.equal(ppl.tokens, 12);
    assert.ok(Number.isFinite(ppl.perplexity));
    model.reset();
    assert.equal(model.generate(20, 0.8, 10, 9).tokens.length, 20);
  });

  test(`${build.variant}: sampling and bench keep the state consistent`, () => {
    const model = build.Model.load(randomModel(spec('dkp')));
    model.feed('the cat');
    const before = model.topK(5).predictions;
    const bench = model.bench(20);
    assert.equal(bench.samples_us.length, 20);
    assert.ok(bench.us_per_token > 0 && bench.lstm_us_per_token > 0 && bench.output_us_per_token > 0);
    assert.deepEqual(model.topK(5).predictions, before, 'bench restores the state');

    model.setSeed(3);
    const first = model.sampleNext(0, 0);
    const likeliest = before.find((p) => p.token !== '<unk>');
    assert.equal(first.id, likeliest.id, 'temperature 0 takes the most likely token other than <unk>');
    assert.equal(first.token, likeliest.token);
  });

  test(`${build.variant}: sampling leaves out <unk> unless allowUnk`, () => {
    const model = build.Model.load(randomModel(spec('dkp', { vocab: 40 })));
    const tokens = (options) => {
      model.reset();
      return options === undefined ? model.generate(400, 1.5, 0, 2).tokens : model.generate(400, 1.5, 0, 2, options).tokens;
    };
    assert.ok(!tokens().includes('<unk>'), 'left out by default');
    assert.ok(!tokens({ allowUnk: false }).includes('<unk>'));
    assert.ok(tokens({ allowUnk: true }).includes('<unk>'), 'drawn when allowed');
    model.reset();
    model.setSeed(1);
    const steps = Array.from({ length: 400 }, () => model.sampleNext(1.5, 0).token);
    assert.ok(!steps.includes('<unk>'));
    // Greedy on a model whose likeliest next token is <unk>: the next likeliest instead.
    model.reset();
    for (let i = 0; i < 400; i++) {
      const [top, second] = model.topK(2).predictions;
      if (top.token === '<unk>') {
        assert.equal(model.sampleNext(0, 0).id, second.id);
        return;
      }
      model.feedToken(top.id);
    }
  });

  test(`${build.variant}: perplexity scores only what changed since the previous text`, () => {
    const bytes = randomModel(spec('dkp'));
    const [model, fresh] = [build.Model.load(bytes), build.Model.load(bytes)];
    const base = 'the cat sat on the mat\nit was N years old and the cat was on a mat '.repeat(20).trim();
    const prefix = base.slice(0, base.indexOf(' ', 200) + 1); // whole words: its tokens begin base's
    const tokens = (text) => fresh.perplexity(text).tokens;
    const first = model.perplexity(base);
    assert.equal(first.reused, 0);
    for (const [text, reused] of [
      [`${base} and`, first.tokens], // a word appended
      [`${base} and it`, first.tokens + 1],
      [`${base} and in`, first.tokens + 1], // the last word changed
      [`cat ${base.slice(4)} and in`, 0], // the first word changed
      [prefix, 0],
      [base, tokens(prefix)], // the prefix's scores reused
      [prefix, tokens(prefix)], // a prefix of what was scored: nothing new to score
    ]) {
      const r = model.perplexity(text);
      const expected = fresh.perplexity(text);
      assert.equal(r.reused, reused, `reused for …${text.slice(-12)}`);
      // Bit for bit a fresh reading, and the state is left after the text.
      assert.deepEqual({ ...r, ms: 0, reused: 0 }, { ...expected, ms: 0, reused: 0 });
      assert.deepEqual(model.topK(5).predictions, fresh.topK(5).predictions);
    }
  });

  test(`${build.variant}: bad input is a readable Error and the instance keeps working`, () => {
    const bad = [
      [new Uint8Array([1, 2, 3]), /truncated/],
      [new Uint8Array(64), /safetensors|truncated|header/],
      [new TextEncoder().encode('not a model at all, just some text of reasonable length'), /safetensors|header|truncated/],
    ];
    for (const [bytes, message] of bad) {
      assert.throws(() => build.Model.load(bytes), (e) => e instanceof Error && message.test(e.message));
    }
    const good = randomModel(spec('dense'));
    const cut = good.slice(0, good.length - 10);
    assert.throws(() => build.Model.load(cut), (e) => e instanceof Error && /truncated|tensor/.test(e.message));

    const model = build.Model.load(good);
    assert.throws(() => model.feedToken(120), /token id 120 is outside the vocabulary of 120 tokens/);
    assert.throws(() => model.perplexity('   '), /the text holds no tokens/);
    assert.throws(() => model.setSeed(-1), /invalid `seed`/);
    assert.throws(() => model.setSeed(1.5), /invalid `seed`/);
    assert.throws(() => model.sampleNext(Number.NaN, 0), /invalid `temperature`/);
    assert.throws(() => model.bench(0), /invalid `n`/);
    assert.throws(() => tools[build.variant].benchKernel('fft', 4, 4, 1), /invalid `name`/);

    // Still alive: nothing above trapped the instance.
    model.feedToken(3);
    assert.equal(model.topK(3).predictions.length, 3);
    assert.ok(Number.isFinite(build.Model.load(good).perplexity(TEXT).perplexity));
  });
}

test('the tools module refuses bad specs with readable Errors and keeps working', async () => {
  assert.throws(() => randomModel({ hiden: 32 }), /invalid random model spec: unknown field `hiden`/);
  assert.throws(() => randomModel({ kind: 'kronecker' }), /unknown variant `kronecker`, expected one of `dense`/);
  assert.throws(() => randomModel({ hidden: 1 << 20, vocab: 1 << 20 }), /exceed/);
  assert.equal((await loadTools()).randomModel, randomModel, 'instantiated once');
  assert.deepEqual(randomModel(spec('dkp')), randomModel(spec('dkp')), 'seeded: the same file');
  assert.equal(simd.randomModel, undefined, 'the runtime modules do not carry it');
  assert.equal(simd.benchKernel, undefined, 'nor benchKernel');
  assert.deepEqual(tools.simd.randomModel(spec('dkp')), tools.scalar.randomModel(spec('dkp')), 'both builds write the same file');
});

for (const kind of KINDS) {
  test(`simd and scalar agree: ${kind}`, () => {
    const bytes = randomModel(spec(kind, { seed: 21 }));
    const [a, b] = [simd.Model.load(bytes), scalar.Model.load(bytes)];
    for (const m of [a, b]) m.feed('the cat sat on the mat');
    const pa = a.topK(8).predictions;
    const pb = new Map(b.topK(120).predictions.map((p) => [p.id, p.prob]));
    for (const p of pa) close(p.prob, pb.get(p.id), `P(${p.token})`);
    close(a.perplexity(TEXT).nll, b.perplexity(TEXT).nll, 'nll');
    a.reset();
    b.reset();
    assert.deepEqual(a.generate(10, 0, 0, 1).tokens, b.generate(10, 0, 0, 1).tokens, 'greedy text');
  });
}

test('benchKernel times every kernel on both builds', () => {
  for (const [variant, t] of Object.entries(tools)) {
    assert.equal(t.variant, variant);
    for (const name of ['gemv', 'gemv_q8', 'kp', 'dkp']) {
      const { us_per_call } = t.benchKernel(name, 256, 128, 5);
      assert.ok(us_per_call > 0 && Number.isFinite(us_per_call), `${variant} ${name}: ${us_per_call}`);
    }
  }
});
