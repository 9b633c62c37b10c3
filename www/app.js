// The demo page: two model panels (A and B), each with its model in its own worker
// through the package's 'dkp-lstm/worker' client (served from pkg/), compared on
// predictions, perplexity, size and per-token latency.

import { lineChart } from './chart.js';
import { createWorkerModel } from './pkg/worker-client.js';

const $ = (selector, root = document) => root.querySelector(selector);
const SIDES = ['a', 'b'];
const TYPING_DEBOUNCE_MS = 150;
const CHART_SAMPLES = 120;
const WARM_UP_TOKENS = 32;
const WARM_UP_TEXTS = [
  '\nthe company said it expects sales to rise in the fourth quarter\n',
  '\nshares fell N cents to $ N in new york stock exchange trading\n',
  '\nanalysts said the market was likely to remain volatile\n',
];
// performance.now() steps coarser than this make single-token latencies meaningless:
// browsers give 5–20 µs to cross-origin isolated pages and 100 µs–1 ms to others.
const FINE_TIMER_US = 25;

// ---------------------------------------------------------------- formatting

// Trained files record their method as an object ({lstm, output, embedding, cmr, ...});
// random models as a plain string.
function describeMethod(m) {
  if (m == null) return '–';
  if (typeof m !== 'object') return String(m);
  const parts = [`LSTM ${m.lstm}`, `output ${m.output}`, `embedding ${m.embedding}`];
  if (m.cmr && m.cmr !== 'off') parts.push(`co-matrix dropout ${m.cmr} ${m.cmr_rate}`);
  return parts.join(' · ');
}

// The trainer records `kind:path` (e.g. `word:../shared/data/ptb`); the reader wants
// the corpus, not the trainer's folder layout.
function describeDataset(d) {
  if (typeof d !== 'string' || d === '') return '–';
  const [kind, path] = d.includes(':') ? [d.slice(0, d.indexOf(':')), d.slice(d.indexOf(':') + 1)] : [null, d];
  const name = path.split(/[\\/]/).filter(Boolean).pop() ?? path;
  return kind ? `${name} (${kind} level)` : name;
}

const fmt = {
  us: (us) => (us < 1000 ? `${us.toFixed(us < 10 ? 1 : 0)} µs` : `${(us / 1000).toFixed(2)} ms`),
  bytes: (n) => (n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(2)} MiB`),
  count: (n) => n.toLocaleString('en-US'),
  cf: (x) => `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}×`,
  pct: (p) => `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`,
};

function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}
const median = (values) => quantile(values, 0.5);

const plural = (n, word) => `${fmt.count(n)} ${word}${n === 1 ? '' : 's'}`;

/** The text a predicted or sampled token adds after `text`. */
function tokenText(token, tokenizer, text) {
  if (tokenizer === 'char') return token;
  if (token === '<eos>') return '\n';
  return (text === '' || /\s$/.test(text) ? '' : ' ') + token;
}

// ---------------------------------------------------------------- one panel

class Panel {
  constructor(side, app) {
    this.side = side;
    this.app = app;
    this.model = null; // the client of this panel's model worker (dkp-lstm/worker)
    this.build = null;
    this.current = null; // {source, info} of the model that answers; source: {name, id, file, message}
    this.loading = null; // the source being loaded, until it answers or fails
    this.samples = []; // per-token latencies (µs) this session
    this.lock = Promise.resolve();
    this.predicting = null; // the AbortController of the latest prediction

    const root = $('#panel-template').content.firstElementChild.cloneNode(true);
    root.dataset.side = side;
    root.setAttribute('aria-labelledby', `panel-${side}-title`);
    $('h2', root).id = `panel-${side}-title`;
    $('.side-badge', root).textContent = side.toUpperCase();
    this.el = root;
    this.select = $('.model-select', root);
    this.fileInput = $('.file-input', root);
    this.select.id = `model-select-${side}`;
    this.fileInput.id = `model-file-${side}`;
    this.select.setAttribute('aria-label', `Model of panel ${side.toUpperCase()}`);
    this.fileInput.setAttribute('aria-label', `Open a model file in panel ${side.toUpperCase()}`);
    $('#panels').append(root);

    this.select.addEventListener('change', () => {
      const entry = app.manifest.models.find((m) => m.id === this.select.value);
      if (entry) this.loadEntry(entry);
    });
    this.fileInput.addEventListener('change', () => {
      if (this.fileInput.files[0]) this.loadFile(this.fileInput.files[0]);
      this.fileInput.value = '';
    });
    root.addEventListener('dragover', (e) => {
      e.preventDefault();
      root.classList.add('dragging');
    });
    root.addEventListener('dragleave', (e) => {
      if (!root.contains(e.relatedTarget)) root.classList.remove('dragging');
    });
    root.addEventListener('drop', (e) => {
      e.preventDefault();
      root.classList.remove('dragging');
      if (e.dataTransfer.files[0]) this.loadFile(e.dataTransfer.files[0]);
    });
  }

  get info() {
    return this.current?.info ?? null;
  }

  get label() {
    return `${this.side.toUpperCase()}: ${this.current?.source.name ?? '—'}`;
  }

  /**
   * Runs `job` once this panel's earlier jobs are done, so that the calls of a
   * prediction, a generation or a load never interleave (each moves the model's state).
   */
  exclusive(job) {
    const run = this.lock.then(job);
    this.lock = run.catch(() => {});
    return run;
  }

  /** Lists the manifest's models, plus `source` if it is a file, with `source` chosen. */
  showSource(source) {
    const options = (this.app.manifest?.models ?? []).map((m) => new Option(m.name, m.id));
    if (source?.file) options.push(new Option(`File: ${source.name}`, ''));
    this.select.replaceChildren(...options);
    this.select.value = source?.id ?? '';
  }

  /** (Re)starts the worker with the given wasm build choice. */
  async start(simd) {
    this.predicting?.abort();
    this.model?.terminate();
    this.model = null;
    this.build = null;
    const model = await createWorkerModel({ simd });
    this.model = model;
    this.build = { ...model.build, variant: model.variant, timer: model.timer };
    return this.build;
  }

  loadEntry(entry) {
    const message = entry.file ? new URL(entry.file, this.app.manifestUrl).href : { random: entry.random };
    return this.load({ name: entry.name, id: entry.id, file: false, message });
  }

  /** A File is a Blob: the worker reads it, not this page. */
  loadFile(file) {
    return this.load({ name: file.name, id: '', file: true, message: file });
  }

  /**
   * Loads a model into this panel's worker. Until it answers, the previous model keeps
   * answering; if it fails, the panel says so and keeps the previous model.
   */
  load(source) {
    this.predicting?.abort(); // its answer would describe the model being replaced
    this.loading = source;
    this.showSource(source);
    this.showError(null);
    this.setStatus(`Loading ${source.name}…`);
    this.el.classList.add('loading');
    return this.exclusive(async () => {
      if (this.loading !== source) return; // a later choice replaced this one
      if (!this.model || this.model.broken) await this.start(this.app.simd);
      let error = null;
      try {
        const info = await this.model.load(source.message);
        // Warm-up: the engine moves the hot code to its optimising tier during the first
        // tokens, which would otherwise dominate the session's latency statistics.
        await this.model.bench(WARM_UP_TOKENS);
        // ...and the scoring path, whose batched kernels (the output layer over a window
        // of tokens) the token-by-token bench does not run: without this the first text's
        // latency on the 2×400 model was 2–3x its later ones. The texts start with a
        // newline, so that no typed text shares a prefix with them (nothing is reused).
        for (const text of WARM_UP_TEXTS) await this.model.perplexity(text);
        this.current = { source, info };
        this.samples = [];
        this.clearResults();
        this.renderSize();
      } catch (err) {
        error = err;
        // A trap took the instance, and the previous model with it: load that one again.
        if (this.model.broken && this.current) await this.restore();
      }
      if (this.loading !== source) return;
      this.loading = null;
      this.setStatus('');
      this.el.classList.remove('loading');
      this.el.classList.toggle('failed', !this.current);
      if (error) {
        const message = /[.!?]$/.test(error.message) ? error.message : `${error.message}.`;
        const kept = this.current ? ` The panel keeps ${this.current.source.name}.` : '';
        this.showError(`Could not load ${source.name}: ${message}${kept}`);
        this.showSource(this.current?.source);
      }
      this.app.modelChanged(this);
    });
  }

  /** After a trap: a fresh worker with the model that answered before. */
  async restore() {
    try {
      await this.start(this.app.simd);
      await this.model.load(this.current.source.message);
    } catch {
      this.current = null;
      this.clearResults();
    }
  }

  reload() {
    const source = this.current?.source ?? this.loading;
    return source ? this.load(source) : Promise.resolve();
  }

  setModelName(name) {
    $('.model-name', this.el).textContent = name;
  }

  setStatus(text) {
    $('.status', this.el).textContent = text;
  }

  showError(text) {
    const box = $('.error', this.el);
    box.hidden = !text;
    box.textContent = text ?? '';
  }

  /**
   * Scores `text` and predicts the next token. A newer prediction cancels this one,
   * queued or running (a long scoring stops at its next chunk; the binding keeps what
   * was scored, so the next one goes on from there).
   */
  predict(text, k) {
    if (!this.current) return Promise.resolve();
    this.predicting?.abort();
    const controller = new AbortController();
    this.predicting = controller;
    const { signal } = controller;
    return this.exclusive(async () => {
      const model = this.model;
      if (signal.aborted || !model) return; // replaced, or the worker is restarting
      let perplexity = null;
      let perplexityError = null;
      try {
        perplexity = await model.perplexity(text, { signal, onProgress: (p) => this.showProgress(p) });
      } catch (err) {
        if (signal.aborted) return;
        // No scorable token (an empty text, only unknown words): predict after it anyway.
        perplexityError = err.message;
        await model.reset({ signal });
        await model.feed(text, { signal });
      }
      const top = await model.topK(k, { signal });
      if (!signal.aborted) this.showPrediction({ text, perplexity, perplexityError, predictions: top.predictions });
    }).catch((err) => {
      if (!signal.aborted) this.showError(err.message);
    }).finally(() => {
      if (this.predicting === controller) this.showProgress(null);
    });
  }

  /** Progress of a long scoring ({done, total} characters), or null when none runs. */
  showProgress(p) {
    const box = $('.scoring', this.el);
    box.hidden = !p;
    // What the panel shows is about the text before the edit until the scoring ends.
    this.el.classList.toggle('stale', Boolean(p));
    if (!p) return;
    this.el.dataset.progressReports = Number(this.el.dataset.progressReports ?? 0) + 1;
    $('progress', box).value = p.done / p.total;
    $('.scoring-text', box).textContent = `Scoring the text… ${Math.floor((100 * p.done) / p.total)}% (${fmt.count(p.tokens)} tokens)`;
  }

  showPrediction(r) {
    this.renderPredictions(r.predictions);
    const ppl = $('.ppl-value', this.el);
    const detail = $('.ppl-detail', this.el);
    ppl.dataset.chars = r.text.length; // which text this describes, for tests and tools
    if (r.perplexity) {
      const p = r.perplexity;
      const scored = p.tokens - p.reused;
      ppl.textContent = `${p.perplexity.toFixed(1)} over ${p.tokens} token${p.tokens === 1 ? '' : 's'}` +
        (p.unknown ? `, ${p.unknown} unknown` : '');
      Object.assign(ppl.dataset, { value: p.perplexity, tokens: p.tokens, scored, reused: p.reused });
      // Only the tokens after the previous text's common prefix are scored again.
      detail.textContent = p.reused === 0 ? `all ${plural(p.tokens, 'token')} scored`
        : scored === 0 ? `nothing new to score, ${fmt.count(p.reused)} reused`
          : `${plural(scored, 'new token')} scored, ${fmt.count(p.reused)} reused`;
      if (scored > 0) this.addSample((1000 * p.ms) / scored);
    } else {
      ppl.textContent = `– (${r.perplexityError})`;
      detail.textContent = '';
      for (const key of ['value', 'tokens', 'scored', 'reused']) delete ppl.dataset[key];
    }
  }

  addSample(us) {
    this.samples.push(us);
    const stats = {
      last: us,
      median: median(this.samples),
      p95: quantile(this.samples, 0.95),
    };
    for (const [name, value] of Object.entries(stats)) {
      const dd = $(`[data-stat=${name}]`, this.el);
      dd.textContent = fmt.us(value);
      dd.dataset.us = value;
    }
    $('[data-stat=count]', this.el).textContent = this.samples.length;
    this.app.latencyChanged();
  }

  /** Empties everything that described the previous model. */
  clearResults() {
    this.clearStats();
    $('.predictions', this.el).replaceChildren();
    $('.ppl-value', this.el).textContent = '…';
    $('.ppl-detail', this.el).textContent = '';
    $('table.size tbody', this.el).replaceChildren();
    $('.weights tbody', this.el).replaceChildren();
    this.setModelName(this.current?.source.name ?? '…');
  }

  clearStats() {
    for (const dd of this.el.querySelectorAll('[data-stat]')) {
      dd.textContent = dd.dataset.stat === 'count' ? '0' : '–';
      delete dd.dataset.us;
    }
  }

  renderPredictions(predictions) {
    const list = $('.predictions', this.el);
    list.replaceChildren(...predictions.map((p) => {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'prediction';
      button.dataset.prob = p.prob;
      button.dataset.token = p.token;
      button.setAttribute('aria-label', `Append “${p.token}”, probability ${fmt.pct(p.prob)}`);
      const word = document.createElement('span');
      word.className = 'word';
      word.textContent = p.token === '\n' ? '⏎' : p.token === ' ' ? '␣' : p.token;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.setProperty('--w', `${100 * p.prob}%`);
      const pct = document.createElement('span');
      pct.className = 'pct';
      pct.textContent = fmt.pct(p.prob);
      button.append(word, bar, pct);
      button.addEventListener('click', () => this.app.append(p.token, this.info.tokenizer));
      li.append(button);
      return li;
    }));
  }

  renderSize() {
    const i = this.info;
    const prov = i.provenance ?? {};
    const trained = prov.trained === false ? 'no (random weights)' : prov.trained === true ? 'yes' : '–';
    const layers = i.hidden.every((h) => h === i.hidden[0]) ? `${i.hidden.length}×${i.hidden[0]}` : i.hidden.join('/');
    const both = (values, withIndices) => `${fmt.cf(values)} values · ${fmt.cf(withIndices)} with indices`;
    const rows = [
      ['File', fmt.bytes(i.file_bytes)],
      ['Parameters', fmt.count(i.params)],
      ['LSTM layers', `${fmt.bytes(i.lstm.bytes)} (${fmt.count(i.lstm.params)} values)`],
      ['Embedding', i.tied ? 'tied to the output layer' : fmt.bytes(i.embedding.bytes)],
      ['Output layer', fmt.bytes(i.output.bytes)],
      ['CF, LSTM layers', both(i.lstm_cf, i.lstm_cf_with_indices)],
      ['CF, whole model', both(i.total_cf, i.total_cf_with_indices)],
      ['Method', describeMethod(prov.method)],
      ['Trained', trained],
      ['Dataset', describeDataset(prov.dataset)],
      ['Test perplexity', typeof prov.test_ppl === 'number' ? prov.test_ppl.toFixed(2) : prov.test_ppl ?? '–'],
      ['Architecture', `${layers} LSTM, ${fmt.count(i.vocab)}-token ${i.tokenizer ?? ''} vocabulary`],
      ['Kernels', i.kernels],
    ];
    $('table.size tbody', this.el).replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = k;
      const td = document.createElement('td');
      td.textContent = v;
      tr.dataset.key = k;
      tr.append(th, td);
      return tr;
    }));
    $('.weights tbody', this.el).replaceChildren(...i.weights.map((w) => {
      const tr = document.createElement('tr');
      for (const v of [w.name, w.kind, w.shape.join('×'), fmt.bytes(w.bytes), fmt.cf(w.cf), w.detail || '–']) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      return tr;
    }));
    const { name } = this.current.source;
    const untrained = prov.trained === false && !/untrained/i.test(name);
    this.setModelName(name + (untrained ? ' (untrained)' : ''));
  }

  /** Samples a continuation of `text`, streaming tokens into `figure`. */
  generate(text, { n, temperature, topK, seed, allowUnk }, figure) {
    const out = $('.out', figure);
    const meta = $('.meta', figure);
    $('figcaption', figure).textContent = this.label;
    delete meta.dataset.medianUs;
    if (!this.current) {
      meta.textContent = 'No model is loaded in this panel.';
      return Promise.resolve();
    }
    const prompt = document.createElement('span');
    prompt.className = 'prompt';
    prompt.textContent = text;
    const continuation = document.createElement('span');
    continuation.className = 'continuation';
    out.replaceChildren(prompt, continuation);
    meta.textContent = 'Generating…';
    this.predicting?.abort(); // it would be moved by the generation anyway
    return this.exclusive(async () => {
      const { model } = this;
      const { tokenizer } = this.info;
      await model.reset();
      await model.feed(text);
      let sofar = text;
      const us = [];
      for await (const step of model.generate(n, temperature, topK, seed, { allowUnk })) {
        const piece = tokenText(step.token, tokenizer, sofar);
        sofar += piece;
        continuation.textContent += piece;
        us.push(1000 * step.ms);
        meta.textContent = `${plural(us.length, 'token')} · last ${fmt.us(1000 * step.ms)}`;
      }
      meta.textContent = `${plural(us.length, 'token')} · median ${fmt.us(median(us))}/token · p95 ${fmt.us(quantile(us, 0.95))}`;
      meta.dataset.medianUs = median(us);
      us.forEach((x) => this.addSample(x));
    }).catch((err) => {
      meta.textContent = `Generation failed: ${err.message}`;
    });
  }
}

// ---------------------------------------------------------------- the page

class App {
  constructor() {
    this.text = $('#text');
    this.topK = $('#top-k');
    this.forceScalar = $('#force-scalar');
    this.manifestUrl = new URL('models/manifest.json', location.href).href;
    this.manifest = null;
    this.panels = SIDES.map((side) => new Panel(side, this));
    this.timer = null;

    this.text.addEventListener('input', () => this.updateSoon());
    this.topK.addEventListener('input', () => this.updateSoon());
    this.forceScalar.addEventListener('change', () => this.restart());
    $('#generate-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.generate(e.submitter?.value ?? 'a');
    });
    $('#bench-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.bench();
    });
    // A file dropped beside a panel must not replace the page.
    for (const type of ['dragover', 'drop']) addEventListener(type, (e) => e.preventDefault());
  }

  get simd() {
    return this.forceScalar.checked ? false : 'auto';
  }

  async start() {
    this.forceScalar.checked = new URLSearchParams(location.search).get('simd') === 'false';
    const response = await fetch(this.manifestUrl);
    if (!response.ok) throw new Error(`cannot fetch models/manifest.json: HTTP ${response.status}`);
    this.manifest = await response.json();
    const defaults = this.manifest.defaults ?? {};
    await Promise.all(this.panels.map(async (panel, i) => {
      const id = defaults[panel.side] ?? this.manifest.models[i]?.id;
      const entry = this.manifest.models.find((m) => m.id === id) ?? this.manifest.models[0];
      panel.showSource(entry);
      try {
        await panel.start(this.simd);
        this.showBuild();
        await panel.loadEntry(entry);
      } catch (err) {
        panel.showError(err.message);
      }
    }));
  }

  /** Restarts both workers on the chosen build and reloads their models. */
  async restart() {
    const build = $('#build');
    build.textContent = 'switching…';
    build.dataset.simd = '';
    this.forceScalar.disabled = true;
    // Keep the choice in the address, so a reload or a shared link runs the same build.
    const url = new URL(location.href);
    if (this.forceScalar.checked) url.searchParams.set('simd', 'false');
    else url.searchParams.delete('simd');
    history.replaceState(null, '', url);
    await Promise.all(this.panels.map(async (panel) => {
      panel.samples = [];
      panel.clearStats();
      try {
        await panel.start(this.simd);
        await panel.reload();
      } catch (err) {
        panel.showError(err.message);
      }
    }));
    this.forceScalar.disabled = false;
    this.showBuild();
    this.latencyChanged();
  }

  showBuild() {
    const build = this.panels.find((p) => p.build)?.build;
    if (!build) return;
    const el = $('#build');
    el.textContent = `${build.simd ? 'SIMD128' : 'scalar'} wasm · kernels ${build.kernels} · v${build.version}`;
    el.dataset.simd = String(Boolean(build.simd));
    // The workers' clock, which times every token: coarse unless the page is
    // cross-origin isolated (served with COOP and COEP headers, as scripts/serve.mjs does).
    const { resolutionMs, crossOriginIsolated } = build.timer;
    const us = 1000 * resolutionMs;
    const coarse = !crossOriginIsolated || us > FINE_TIMER_US;
    const timer = $('#timer');
    timer.textContent = coarse
      ? `Timer step ${fmt.us(us)}${crossOriginIsolated ? '' : ', not cross-origin isolated'}: ` +
        'single-token latencies are rounded to it; serve the page with COOP/COEP headers for a finer clock.'
      : `Timer step ${fmt.us(us)} (cross-origin isolated).`;
    timer.classList.toggle('coarse', coarse);
    Object.assign(timer.dataset, { isolated: String(crossOriginIsolated), resolutionUs: us, coarse: String(coarse) });
  }

  modelChanged(panel) {
    this.latencyChanged();
    if (panel.info) panel.predict(this.text.value, this.k);
  }

  get k() {
    const k = Math.round(Number(this.topK.value));
    return Number.isFinite(k) ? Math.min(20, Math.max(1, k)) : 8;
  }

  updateSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.update(), TYPING_DEBOUNCE_MS);
  }

  update() {
    clearTimeout(this.timer);
    for (const panel of this.panels) panel.predict(this.text.value, this.k);
  }

  append(token, tokenizer) {
    const piece = tokenText(token, tokenizer, this.text.value);
    this.text.value += piece + (tokenizer === 'word' && piece !== '\n' ? ' ' : '');
    this.text.focus();
    this.update();
  }

  latencyChanged() {
    const [a, b] = this.panels;
    lineChart($('#latency-chart'), this.panels.map((p) => ({
      label: p.side.toUpperCase(),
      className: `side-${p.side}`,
      points: p.samples.slice(-CHART_SAMPLES).map((us, i, all) => [p.samples.length - all.length + i + 1, us]),
    })), { xLabel: 'sample', yLabel: 'µs per token', xInteger: true });
    const speedup = $('#speedup');
    if (!a.samples.length || !b.samples.length) {
      speedup.textContent = 'Waiting for both models…';
      delete speedup.dataset.ratio;
      return;
    }
    const [ma, mb] = [median(a.samples), median(b.samples)];
    const [fast, slow, mf, ms] = ma <= mb ? [a, b, ma, mb] : [b, a, mb, ma];
    speedup.dataset.ratio = ma / mb;
    speedup.textContent = `${fast.label} runs a token ${(ms / mf).toFixed(2)}× faster than ${slow.label} ` +
      `(median ${fmt.us(mf)} vs ${fmt.us(ms)}).`;
  }

  async generate(side) {
    const form = $('#generate-form');
    const settings = {
      n: Math.min(500, Math.max(1, Math.round(Number(form.n.value)) || 30)),
      temperature: Math.max(0, Number(form.temperature.value) || 0),
      topK: Math.max(0, Math.round(Number(form.topK.value)) || 0),
      seed: Math.max(0, Math.round(Number(form.seed.value)) || 0),
      allowUnk: form.allowUnk.checked,
    };
    const button = $(`#generate-${side}`);
    button.disabled = true;
    const panel = this.panels.find((p) => p.side === side);
    await panel.generate(this.text.value, settings, $(`.generated[data-side=${side}]`));
    button.disabled = false;
    // Generation moved the model's state past the text; predictions start over.
    panel.predict(this.text.value, this.k);
  }

  async bench() {
    const form = $('#bench-form');
    const n = Math.min(20000, Math.max(10, Math.round(Number(form.n.value)) || 500));
    const status = $('#bench-status');
    const button = $('#bench-run');
    button.disabled = true;
    const results = [];
    // One model at a time, so the two runs do not compete for cores.
    for (const panel of this.panels) {
      if (!panel.info) continue;
      status.textContent = `Running ${n} tokens through ${panel.label}…`;
      try {
        const r = await panel.exclusive(() => panel.model.bench(n));
        const samples = Array.from(r.samples_us);
        const mean = samples.reduce((sum, us) => sum + us, 0) / samples.length;
        results.push({ panel, r, samples, mean, median: median(samples), p95: quantile(samples, 0.95) });
      } catch (err) {
        results.push({ panel, error: err.message });
      }
    }
    status.textContent = results.length ? `Done: ${n} tokens per model.` : 'No model is loaded.';
    button.disabled = false;
    this.renderBench(results);
    this.update();
  }

  renderBench(results) {
    const base = results.find((x) => !x.error);
    $('#bench-table tbody').replaceChildren(...results.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.side = x.panel.side;
      const cells = x.error
        ? [x.panel.label, `failed: ${x.error}`]
        : [
            x.panel.label,
            fmt.us(x.median),
            fmt.us(x.p95),
            fmt.us(x.mean),
            fmt.us(x.r.lstm_us_per_token),
            fmt.us(x.r.output_us_per_token),
            fmt.count(Math.round(1e6 / x.mean)),
            `${(base.median / x.median).toFixed(2)}×`,
          ];
      cells.forEach((v, i) => {
        const td = document.createElement(i ? 'td' : 'th');
        if (!i) td.scope = 'row';
        td.textContent = v;
        if (x.error && i) td.colSpan = 7;
        tr.append(td);
      });
      return tr;
    }));
    const ok = results.filter((x) => !x.error);
    const summary = $('#bench-summary');
    if (ok.length === 2) {
      const [a, b] = ok;
      const ratio = (key) => `${(a.r[key] / b.r[key]).toFixed(2)}×`; // the runtime reports medians
      summary.textContent = `${b.panel.side.toUpperCase()} against ${a.panel.side.toUpperCase()}: ` +
        `${ratio('us_per_token')} per token, ${ratio('lstm_us_per_token')} in the LSTM layers, ` +
        `${ratio('output_us_per_token')} in the output layer (medians; above 1× is faster).`;
    } else {
      summary.textContent = '';
    }
    const chart = $('#bench-chart');
    chart.removeAttribute('hidden'); // an SVG element has no `hidden` property
    // The latency distribution as a CDF: the share of tokens done within x µs, cut at
    // the slowest series' p99 so that a few stalls do not squeeze the rest.
    const cut = Math.max(...ok.map((x) => quantile(x.samples, 0.99)));
    lineChart(chart, ok.map((x) => {
      const sorted = [...x.samples].sort((p, q) => p - q);
      return {
        label: x.panel.side.toUpperCase(),
        className: `side-${x.panel.side}`,
        points: sorted.map((us, i) => [us, (100 * (i + 1)) / sorted.length]).filter(([us]) => us <= cut),
      };
    }), { xLabel: 'µs per token (to p99)', yLabel: '% of tokens within' });
  }
}

const app = new App();
app.start().catch((err) => {
  for (const panel of app.panels) panel.showError(err.message);
});
