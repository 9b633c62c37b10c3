//! The training loop: truncated BPTT from a config to an exported best model.
//!
//! Zaremba-style truncated BPTT with sparsity annealing, co-matrix dropout, per-epoch
//! validation, best-model tracking, resumable checkpoints and export.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use dkp_lstm::info::ModelInfo;
use dkp_lstm::plan::Accounting;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::checkpoint::{self, CHECKPOINT_VERSION};
use crate::config::TrainConfig;
use crate::data::{Batches, Corpus};
use crate::distill::Teacher;
use crate::error::{io_err, Error, Result};
use crate::fs::{write_atomically, Overwrite};
use crate::lm::{Lm, Nll, PathNorms, State, TrainCtx};
use crate::optim::Optimizer;
use crate::rng::Rng;

/// Where a run stands: the next window to train on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// 0-based epoch.
    pub epoch: usize,
    /// Next window within the epoch.
    pub window: usize,
    /// Steps taken in total.
    pub step: usize,
}

/// One finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Steps taken by its end.
    pub step: usize,
    /// Learning rate used.
    pub lr: f64,
    /// Mean training perplexity over the epoch.
    pub train_ppl: f64,
    /// Validation perplexity at its end.
    pub valid_ppl: f64,
    /// Whether the sparsity schedule had reached its target.
    pub at_target: bool,
}

/// The best model so far (only models at the target sparsity count).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BestInfo {
    /// Its validation perplexity.
    pub valid_ppl: f64,
    /// The epoch it ended.
    pub epoch: usize,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The exported model file.
    pub model: PathBuf,
    /// Validation perplexity of the exported model.
    pub valid_ppl: f64,
    /// Test perplexity of the exported model (batch 1, one stream from the boundary token).
    pub test_ppl: f64,
    /// Epochs completed.
    pub epochs: usize,
    /// Steps taken.
    pub steps: usize,
    /// Mean training throughput in this process, tokens per second of training steps.
    pub tokens_per_s: f64,
    /// Validation and test words mapped to `<unk>`.
    pub unknown: [usize; 2],
    /// LSTM gate CF (values only, values + indices), as `dkp info` computes it.
    pub lstm_cf: [f64; 2],
    /// Whole-model CF (values only, values + indices).
    pub total_cf: [f64; 2],
}

/// What one optimiser step reports.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// Mean data NLL (nats per token) of the window: the loss, less any distillation term.
    pub loss: f64,
    /// Tokens in the window.
    pub tokens: usize,
    /// Path norms of the doped weights, when asked for.
    pub path_norms: Vec<PathNorms>,
    /// Each parameter's gradient norm before clipping.
    pub grad_norms: BTreeMap<String, f64>,
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue from `run_dir/checkpoint.safetensors`.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Also write the model here (besides `run_dir/model.safetensors`).
    pub out: Option<PathBuf>,
}

/// A training run in memory.
pub struct Trainer {
    cfg: TrainConfig,
    corpus: Corpus,
    lm: Lm,
    opt: Optimizer,
    rng: Rng,
    batches: Batches,
    /// The distillation teacher's predictions over `batches`.
    teacher: Option<Teacher>,
    state: State,
    pos: Position,
    best: Option<(BestInfo, Lm)>,
    history: Vec<EpochRecord>,
    run_dir: PathBuf,
    dev: Device,
}

/// Fields that may differ between a checkpoint and the run resuming it (`runs_dir`: a run
/// directory may move).
const OPERATIONAL: [&str; 5] = ["checkpoint_minutes", "max_steps", "log_every", "max_eval_tokens", "runs_dir"];

fn config_identity(cfg: &TrainConfig) -> Value {
    let mut v = serde_json::to_value(cfg).expect("configs serialize");
    for k in OPERATIONAL {
        v.as_object_mut().expect("object").remove(k);
    }
    v
}

/// The identity without the schedule's length and decay: a resumed run may lengthen or
/// shorten its budget as long as the epochs already trained ran at the same rates
/// (checked separately in `restore`), so its trajectory so far is the one it would have had.
fn identity_without_schedule(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("epochs");
        if let Some(optim) = o.get_mut("optim").and_then(Value::as_object_mut) {
            optim.remove("lr_decay");
            optim.remove("decay_after");
        }
    }
    v
}

/// The `cf` entry of a model's provenance: its compression factors, counted both ways.
pub(crate) fn cf_provenance(accounting: Accounting, info: &ModelInfo) -> Value {
    json!({
        "accounting": accounting,
        "lstm_values": info.lstm_cf, "lstm_values_and_indices": info.lstm_cf_with_indices,
        "total_values": info.total_cf, "total_values_and_indices": info.total_cf_with_indices,
    })
}

impl Trainer {
    /// Loads the data and builds a fresh run (or the checkpointed one with `resume`).
    pub fn new(cfg: TrainConfig, resume: bool) -> Result<Trainer> {
        cfg.validate()?;
        let corpus = Corpus::load(cfg.data.as_ref().expect("validated"))?;
        Self::with_corpus(cfg, corpus, None, resume)
    }

    /// Builds a run on a loaded corpus, optionally starting from given parameters.
    pub fn with_corpus(cfg: TrainConfig, corpus: Corpus, init: Option<Lm>, resume: bool) -> Result<Trainer> {
        cfg.validate()?;
        let dev = Device::Cpu;
        let mut rng = Rng::new(cfg.seed);
        let lm = match init {
            Some(lm) => lm,
            None => Lm::new(&cfg, corpus.tokenizer.len(), &mut rng, &dev)?,
        };
        let batches = Batches::new(&corpus.train, cfg.batch_size, cfg.bptt)?;
        let teacher = match cfg.distill.teacher {
            Some(_) => {
                std::fs::create_dir_all(cfg.run_dir()).map_err(io_err(cfg.run_dir()))?;
                let cache = cfg.run_dir().join("teacher.safetensors");
                Some(Teacher::load(&cfg.distill, &corpus.tokenizer, &batches, Some(&cache), &dev)?)
            }
            None => None,
        };
        let state = State::zeros(&lm, cfg.batch_size, &dev)?;
        let run_dir = cfg.run_dir();
        let mut t = Trainer {
            opt: Optimizer::new(cfg.optim),
            cfg,
            corpus,
            lm,
            rng,
            batches,
            teacher,
            state,
            pos: Position::default(),
            best: None,
            history: vec![],
            run_dir,
            dev,
        };
        if resume {
            t.restore()?;
        }
        Ok(t)
    }

    /// The model being trained.
    pub fn lm(&self) -> &Lm {
        &self.lm
    }

    /// The corpus.
    pub fn corpus(&self) -> &Corpus {
        &self.corpus
    }

    /// Where the run stands.
    pub fn position(&self) -> Position {
        self.pos
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.run_dir.join("checkpoint.safetensors")
    }

    fn metrics_path(&self) -> PathBuf {
        self.run_dir.join("metrics.jsonl")
    }

    /// Steps at which annealing starts and ends.
    fn anneal_steps(&self) -> (usize, usize) {
        let per_epoch = self.batches.len() as f64;
        let d = &self.cfg.doping;
        let t0 = (d.start_epoch * per_epoch).round() as usize;
        (t0, ((d.end_epoch * per_epoch).round() as usize).max(t0))
    }

    /// Whether every masked weight holds no more than its target number of non-zeros. The
    /// mask update due at the schedule's last step runs before that step trains, but the
    /// cubic has reached the target (to the entry) some updates earlier; counting
    /// non-zeros, not steps, lets the epoch that ends the schedule compete for the best
    /// model like any later one.
    fn at_target(&self) -> Result<bool> {
        for w in self.lm.weights() {
            if let Some(m) = &w.masked {
                if w.nnz()? > m.target_nnz {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Recomputes masks when the schedule says so (Zhu & Gupta's cubic).
    fn anneal(&mut self) -> Result<()> {
        let (t0, t1) = self.anneal_steps();
        let step = self.pos.step;
        if step < t0 || step > t1 || (step != t1 && !(step - t0).is_multiple_of(self.cfg.doping.mask_every)) {
            return Ok(());
        }
        let progress = if t1 == t0 { 1.0 } else { (step - t0) as f64 / (t1 - t0) as f64 };
        let d_i = self.cfg.doping.start_density;
        for w in self.lm.weights_mut() {
            let Some(target) = w.masked.as_ref().map(|m| m.target_nnz as f64 / (w.rows * w.cols) as f64) else {
                continue;
            };
            let density = target + (d_i.max(target) - target) * (1.0 - progress).powi(3);
            if let Some(mask) = w.update_mask_in_runs(density, self.cfg.doping.run)? {
                let name = w.vars().last().expect("masked weights have a var").0.clone();
                self.opt.apply_mask(&name, &mask)?;
            }
        }
        Ok(())
    }

    /// Densities of the masked weights.
    fn densities(&self) -> Result<BTreeMap<String, f64>> {
        let mut d = BTreeMap::new();
        for w in self.lm.weights() {
            if w.masked.is_some() {
                d.insert(w.name.clone(), w.nnz()? as f64 / (w.rows * w.cols) as f64);
            }
        }
        Ok(d)
    }

    /// One optimiser step on window `self.pos.window`.
    pub fn step(&mut self, want_norms: bool) -> Result<StepReport> {
        self.anneal()?;
        let (x, y, _) = self.batches.window(self.pos.window);
        let lr = self.cfg.optim.lr_at(self.pos.epoch);
        let mut ctx =
            TrainCtx { dropout: self.cfg.model.dropout, cmr: self.cfg.cmr, rng: &mut self.rng, norms: want_norms };
        let soft = self.teacher.as_ref().map(|t| t.window(&self.batches, self.pos.window, &self.cfg.distill));
        let (loss, nll, norms) =
            self.lm.train_loss(&x, &y, self.cfg.batch_size, &mut self.state, &mut ctx, soft.as_ref())?;
        let mean = loss.to_scalar::<f32>()? as f64;
        if !mean.is_finite() {
            return Err(Error::Config {
                field: "optim.lr".into(),
                reason: format!("the loss became {mean} at step {} (learning rate {lr} too high?)", self.pos.step),
            });
        }
        // Zaremba et al. sum the loss over the window and average over the batch; their
        // learning rate and clip assume that scale.
        let scaled = loss.affine((y.len() / self.cfg.batch_size) as f64, 0.0)?;
        let grads = scaled.backward()?;
        let co_matrices: Vec<String> = self.lm.weights().iter().filter_map(|w| w.co_matrix_name()).collect();
        let sparse_lr = lr * self.cfg.optim.sparse_lr_scale;
        let lr_of = |name: &str| if co_matrices.iter().any(|c| c == name) { sparse_lr } else { lr };
        let grad_norms = self.opt.step(&self.lm.vars(), &grads, lr_of)?;
        self.state.detach();
        self.pos.step += 1;
        self.pos.window += 1;
        Ok(StepReport { loss: nll, tokens: y.len(), path_norms: norms, grad_norms })
    }

    /// Validation perplexity of `lm` (batch 1, from the boundary token).
    pub fn valid_ppl(&self, lm: &Lm) -> Result<f64> {
        self.ppl_of(lm, &self.corpus.valid.ids)
    }

    /// Test perplexity of `lm` (batch 1, from the boundary token), as `dkp eval` computes it.
    pub fn test_ppl(&self, lm: &Lm) -> Result<f64> {
        self.ppl_of(lm, &self.corpus.test.ids)
    }

    /// Perplexity of `lm` on the first `max_eval_tokens` of `ids`, one stream from the boundary.
    fn ppl_of(&self, lm: &Lm, ids: &[u32]) -> Result<f64> {
        Ok(lm.stream_nll(ids, self.corpus.tokenizer.boundary(), self.cfg.max_eval_tokens)?.perplexity())
    }

    fn append_metric(&self, v: Value) -> Result<()> {
        let path = self.metrics_path();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        writeln!(f, "{v}").map_err(io_err(&path))
    }

    /// Trains to the end (or `max_steps`), then exports the best model.
    pub fn run(&mut self, opts: &RunOptions) -> Result<TrainReport> {
        std::fs::create_dir_all(&self.run_dir).map_err(io_err(&self.run_dir))?;
        if !opts.resume {
            let cfg_path = self.run_dir.join("config.toml");
            let text = toml::to_string(&self.cfg)
                .map_err(|e| Error::Config { field: "config".into(), reason: e.to_string() })?;
            write_atomically(&cfg_path, Overwrite::Replace, text.as_bytes())?;
            write_atomically(&self.metrics_path(), Overwrite::Replace, b"")?;
        }
        let per_epoch = self.batches.len();
        let total = per_epoch * self.cfg.epochs;
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            if opts.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() },
        );
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps, ETA {eta} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_position(self.pos.step as u64);
        let mut last_ckpt = Instant::now();
        // Training loss since the last log line; tokens of this process's steps.
        let (mut log_nll, mut run_tokens) = (Nll::default(), 0usize);
        // Seconds spent in training steps only: evaluation and checkpoints do not count.
        let (mut log_secs, mut run_secs) = (0.0f64, 0.0f64);
        let mut stopped = false;
        while self.pos.epoch < self.cfg.epochs && !stopped {
            let mut ep_nll = Nll::default();
            while self.pos.window < per_epoch {
                if self.cfg.max_steps.is_some_and(|m| self.pos.step >= m) {
                    stopped = true;
                    break;
                }
                let log_now = (self.pos.step + 1).is_multiple_of(self.cfg.log_every);
                let t0 = Instant::now();
                let StepReport { loss, tokens, path_norms: norms, grad_norms } = self.step(log_now)?;
                let secs = t0.elapsed().as_secs_f64();
                (log_secs, run_secs) = (log_secs + secs, run_secs + secs);
                ep_nll.add(loss, tokens);
                log_nll.add(loss, tokens);
                run_tokens += tokens;
                bar.inc(1);
                if log_now {
                    let tok_s = log_nll.tokens as f64 / log_secs.max(1e-9);
                    bar.set_message(format!("train ppl {:.1}, {tok_s:.0} tok/s", log_nll.perplexity()));
                    self.append_metric(json!({
                        "type": "train", "step": self.pos.step, "epoch": self.pos.epoch as f64 + self.pos.window as f64 / per_epoch as f64,
                        "lr": self.cfg.optim.lr_at(self.pos.epoch), "train_ppl": log_nll.perplexity(), "tokens_per_s": tok_s,
                        "density": self.densities()?, "norms": norms,
                        "grad_norm": grad_norms.values().map(|n| n * n).sum::<f64>().sqrt(), "grad_norms": grad_norms,
                    }))?;
                    (log_nll, log_secs) = (Nll::default(), 0.0);
                }
                if self.cfg.checkpoint_minutes > 0.0
                    && last_ckpt.elapsed().as_secs_f64() >= 60.0 * self.cfg.checkpoint_minutes
                {
                    self.save_checkpoint()?;
                    last_ckpt = Instant::now();
                }
            }
            if stopped {
                break;
            }
            let valid_ppl = self.valid_ppl(&self.lm)?;
            let record = EpochRecord {
                epoch: self.pos.epoch,
                step: self.pos.step,
                lr: self.cfg.optim.lr_at(self.pos.epoch),
                train_ppl: ep_nll.perplexity(),
                valid_ppl,
                at_target: self.at_target()?,
            };
            let line =
                format!("epoch {}: train ppl {:.2}, valid ppl {:.2}", record.epoch + 1, record.train_ppl, valid_ppl);
            // A bar drawn to a file or pipe is hidden, and so would be its printed lines.
            match (opts.progress, bar.is_hidden()) {
                (true, true) => eprintln!("{line}"),
                (true, false) => bar.println(line),
                (false, _) => {}
            }
            self.append_metric(
                json!({"type": "valid", "epoch": self.pos.epoch + 1, "step": self.pos.step, "valid_ppl": valid_ppl,
                "train_ppl": record.train_ppl, "lr": record.lr, "at_target": record.at_target, "density": self.densities()?}),
            )?;
            if record.at_target && self.best.as_ref().is_none_or(|(b, _)| valid_ppl < b.valid_ppl) {
                self.best = Some((BestInfo { valid_ppl, epoch: self.pos.epoch }, self.lm.deep_copy()?));
            }
            self.history.push(record);
            self.pos.epoch += 1;
            self.pos.window = 0;
            self.state = State::zeros(&self.lm, self.cfg.batch_size, &self.dev)?;
            self.save_checkpoint()?;
            last_ckpt = Instant::now();
            crate::plot::write_plots(&self.metrics_path(), &self.run_dir)?;
        }
        bar.finish_and_clear();
        if stopped {
            self.save_checkpoint()?;
        }
        let tokens_per_s = run_tokens as f64 / run_secs.max(1e-9);
        self.export(opts, stopped, tokens_per_s)
    }

    /// Evaluates the best model (or the current one if none is at the target yet) and writes it.
    fn export(&self, opts: &RunOptions, stopped: bool, tokens_per_s: f64) -> Result<TrainReport> {
        let (lm, valid_ppl) = match &self.best {
            Some((b, lm)) => (lm, b.valid_ppl),
            None => (&self.lm, self.valid_ppl(&self.lm)?),
        };
        let test_ppl = self.test_ppl(lm)?;
        let c = &self.cfg;
        let mut prov = serde_json::Map::new();
        let mut put = |k: &str, v: Value| {
            prov.insert(k.into(), v);
        };
        put("trained", json!(true));
        put("trainer", json!(concat!("dkp-train ", env!("CARGO_PKG_VERSION"))));
        put("dataset", json!(self.corpus.description));
        put("vocab_size", json!(self.corpus.tokenizer.len()));
        put("epochs", json!(self.history.len()));
        put("steps", json!(self.pos.step));
        put("stopped_early", json!(stopped || self.best.is_none()));
        put("best_epoch", json!(self.best.as_ref().map(|(b, _)| b.epoch + 1)));
        put("valid_ppl", json!(valid_ppl));
        put("test_ppl", json!(test_ppl));
        put("eval", json!("batch 1, one stream from the boundary token"));
        put("unknown_words", json!({"valid": self.corpus.valid.unknown, "test": self.corpus.test.unknown}));
        put(
            "method",
            json!({"lstm": c.lstm.kind.name(), "output": c.output.kind.name(), "embedding": if c.model.tie_weights { "tied" } else { c.embedding.kind.name() }, "cmr": c.cmr.mode, "cmr_rate": c.cmr.rate, "cmr_output": c.cmr.output}),
        );
        put("settings", serde_json::to_value(c).expect("configs serialize"));
        if let Some(t) = &self.teacher {
            put("distillation", t.provenance(&c.distill));
        }
        let mut model = lm.to_model(&self.corpus.tokenizer, prov.clone())?;
        let info = model.info();
        prov.insert("cf".into(), cf_provenance(c.accounting, &info));
        model.set_provenance(dkp_lstm::Provenance::from_map(prov));
        let bytes = model.to_bytes()?;
        let path = self.run_dir.join("model.safetensors");
        write_atomically(&path, Overwrite::Replace, &bytes)?;
        if let Some(out) = &opts.out {
            write_atomically(out, Overwrite::Replace, &bytes)?;
        }
        let report = TrainReport {
            model: opts.out.clone().unwrap_or(path),
            valid_ppl,
            test_ppl,
            epochs: self.history.len(),
            steps: self.pos.step,
            tokens_per_s,
            unknown: [self.corpus.valid.unknown, self.corpus.test.unknown],
            lstm_cf: [info.lstm_cf, info.lstm_cf_with_indices],
            total_cf: [info.total_cf, info.total_cf_with_indices],
        };
        self.append_metric(json!({"type": "final", "report": report}))?;
        Ok(report)
    }

    /// Writes the whole run state atomically.
    pub fn save_checkpoint(&self) -> Result<()> {
        let metrics_bytes = std::fs::metadata(self.metrics_path()).map(|m| m.len()).unwrap_or(0);
        let meta = json!({
            "version": CHECKPOINT_VERSION,
            "config": config_identity(&self.cfg),
            "position": self.pos,
            "rng": self.rng,
            "opt_step": self.opt.step,
            "best": self.best.as_ref().map(|(b, _)| *b),
            "history": self.history,
            "metrics_bytes": metrics_bytes,
            "teacher": self.teacher.as_ref().map(|t| t.provenance(&self.cfg.distill)),
        });
        let mut tensors = self.lm.state_tensors();
        tensors.extend(self.opt.tensors()?.into_iter().map(|(n, t)| (format!("opt.{n}"), t)));
        for (l, (h, c)) in self.state.h.iter().zip(&self.state.c).enumerate() {
            tensors.push((format!("state.h.{l}"), h.clone()));
            tensors.push((format!("state.c.{l}"), c.clone()));
        }
        if let Some((_, best)) = &self.best {
            tensors.extend(best.state_tensors().into_iter().map(|(n, t)| (format!("best.{n}"), t)));
        }
        checkpoint::save(&self.checkpoint_path(), &meta, &tensors)
    }

    fn restore(&mut self) -> Result<()> {
        let path = self.checkpoint_path();
        if !path.is_file() {
            return Err(Error::Checkpoint { path, reason: "does not exist, so there is nothing to resume".into() });
        }
        let bad = |reason: String| Error::Checkpoint { path: path.clone(), reason };
        let (meta, tensors) = checkpoint::load(&path, &self.dev)?;
        let mine = config_identity(&self.cfg);
        // Read through today's `TrainConfig`, so a setting added since the checkpoint was
        // written compares as its default.
        let field =
            |k: &str| -> Result<Value> { meta.get(k).cloned().ok_or_else(|| bad(format!("description lacks `{k}`"))) };
        let parse = |k: &str, e: serde_json::Error| bad(format!("bad `{k}`: {e}"));
        self.pos = serde_json::from_value(field("position")?).map_err(|e| parse("position", e))?;
        let (theirs, their_cfg) = match serde_json::from_value::<TrainConfig>(meta["config"].clone()) {
            Ok(cfg) => (config_identity(&cfg), Some(cfg)),
            Err(_) => (meta["config"].clone(), None),
        };
        let same_so_far = their_cfg.is_some_and(|t| {
            identity_without_schedule(theirs.clone()) == identity_without_schedule(mine.clone())
                && (0..=self.pos.epoch).all(|e| t.optim.lr_at(e) == self.cfg.optim.lr_at(e))
        });
        if theirs != mine && !same_so_far {
            let theirs = theirs.as_object().cloned().unwrap_or_default();
            let diff: Vec<String> = mine
                .as_object()
                .expect("object")
                .iter()
                .filter(|(k, v)| theirs.get(*k) != Some(v))
                .map(|(k, v)| {
                    format!("`{k}` is {} there, {v} here", theirs.get(k).map_or("missing".into(), |t| t.to_string()))
                })
                .collect();
            return Err(bad(format!("was written by a different configuration: {}", diff.join("; "))));
        }
        if let Some(t) = &self.teacher {
            t.same_as(meta.get("teacher").unwrap_or(&Value::Null)).map_err(&bad)?;
        }
        self.rng = serde_json::from_value(field("rng")?).map_err(|e| parse("rng", e))?;
        self.history = serde_json::from_value(field("history")?).map_err(|e| parse("history", e))?;
        let best: Option<BestInfo> = serde_json::from_value(field("best")?).map_err(|e| parse("best", e))?;
        self.lm.load_state(&tensors, "").map_err(&bad)?;
        if let Some(b) = best {
            let mut lm = self.lm.deep_copy()?;
            lm.load_state(&tensors, "best.").map_err(&bad)?;
            self.best = Some((b, lm));
        }
        let opt: BTreeMap<String, Tensor> =
            tensors.iter().filter_map(|(k, t)| k.strip_prefix("opt.").map(|n| (n.to_string(), t.clone()))).collect();
        self.opt.restore(field("opt_step")?.as_u64().ok_or_else(|| bad("bad `opt_step`".into()))?, &opt)?;
        for l in 0..self.state.h.len() {
            let get = |k: String| tensors.get(&k).cloned().ok_or_else(|| bad(format!("tensor `{k}` is missing")));
            self.state.h[l] = get(format!("state.h.{l}"))?;
            self.state.c[l] = get(format!("state.c.{l}"))?;
        }
        // Drop metric lines written after the checkpoint, so the log matches the resumed trajectory.
        let metrics_bytes = field("metrics_bytes")?.as_u64().unwrap_or(0);
        let mpath = self.metrics_path();
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&mpath) {
            f.set_len(metrics_bytes).map_err(io_err(&mpath))?;
        }
        Ok(())
    }
}

/// Loads a run's config from its directory (for `--resume` without `--config`).
pub fn config_of_run(dir: &Path) -> Result<TrainConfig> {
    let path = dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
    TrainConfig::from_toml(&text, &path.display().to_string())
}
