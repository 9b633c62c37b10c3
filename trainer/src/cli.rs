//! `dkp train` and `dkp compress`: argument structs (clap) and what they run. The `dkp`
//! binary's modules only forward to these.

use std::path::PathBuf;

use candle_core::Device;
use clap::Args;
use dkp_lstm::plan::Accounting;
use dkp_lstm::Model;
use serde::Serialize;
use serde_json::json;

use crate::checkpoint::write_atomic;
use crate::config::{CmrMode, TrainConfig, WeightKind};
use crate::data::{Corpus, DataSpec};
use crate::decompose::{dkp_from_dense, require_dense};
use crate::error::{config_err, io_err, Error, Result};
use crate::lm::Lm;
use crate::train::{config_of_run, RunOptions, TrainReport, Trainer};

/// Train an LSTM language model and write it in the runtime's format.
///
/// Settings come from `--config` (TOML; see `experiments/` and `docs/training.md`),
/// overridden by the flags below and by `--set KEY=VALUE`. The run directory
/// `RUNS_DIR/NAME` receives `model.safetensors` (the best model), `checkpoint.safetensors`,
/// `metrics.jsonl` and SVG curves; a JSON report is printed at the end.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Run configuration (TOML, see experiments/); flags below override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data: a directory with PTB-layout word files, or one text file for char level.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Run name (the run directory is RUNS_DIR/NAME).
    #[arg(long)]
    pub name: Option<String>,
    /// Parent of run directories [default: runs].
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many steps (the model is still evaluated and exported).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Evaluate on at most this many validation/test tokens.
    #[arg(long)]
    pub max_eval_tokens: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Kind of the LSTM gate weights.
    #[arg(long, value_enum)]
    pub lstm: Option<WeightKind>,
    /// Compression factor of the LSTM gate weights.
    #[arg(long)]
    pub cf: Option<f64>,
    /// Co-matrix dropout variant.
    #[arg(long, value_enum)]
    pub cmr: Option<CmrMode>,
    /// Any other setting as KEY=VALUE (TOML value), e.g. `--set optim.lr=0.5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Also write the final model here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut cfg = match (&self.config, self.resume, &self.name) {
            (Some(path), _, _) => {
                let text = std::fs::read_to_string(path).map_err(io_err(path))?;
                TrainConfig::from_toml(&text, &path.display().to_string())?
            }
            (None, true, Some(name)) => {
                config_of_run(&self.runs_dir.clone().unwrap_or_else(|| "runs".into()).join(name))?
            }
            (None, true, None) => {
                return Err(config_err("--resume", "needs --config FILE or --name NAME to find the run"))
            }
            _ => TrainConfig::default(),
        };
        if let Some(d) = &self.data {
            cfg.data = Some(DataSpec::from_path(d)?);
        }
        if let Some(v) = &self.name {
            cfg.name = v.clone();
        }
        if let Some(v) = &self.runs_dir {
            cfg.runs_dir = v.clone();
        }
        if let Some(v) = self.epochs {
            cfg.epochs = v;
        }
        if self.max_steps.is_some() {
            cfg.max_steps = self.max_steps;
        }
        if self.max_eval_tokens.is_some() {
            cfg.max_eval_tokens = self.max_eval_tokens;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        if let Some(v) = self.lstm {
            cfg.lstm.kind = v;
        }
        if let Some(v) = self.cf {
            cfg.lstm.cf = v;
        }
        if let Some(v) = self.cmr {
            cfg.cmr.mode = v;
        }
        let cfg = cfg.with_overrides(&self.set)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// candle's element-wise thread pool spin-waits between ops; on two cores shared with other
/// work that halved training throughput (578 vs 1252 tokens/s for 2×200 PTB), while the
/// matmuls keep their own rayon threads. So it is off unless `CANDLE_NUM_THREADS` asks for it.
fn single_threaded_elementwise() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// Runs `dkp train`.
pub fn run_train(args: &TrainArgs) -> Result<TrainReport> {
    single_threaded_elementwise();
    let cfg = args.config()?;
    let mut trainer = Trainer::new(cfg, args.resume)?;
    trainer.run(&RunOptions { resume: args.resume, progress: !args.quiet, out: args.out.clone() })
}

/// Decompose a trained dense model into doped Kronecker products.
///
/// Each LSTM gate matrix becomes its nearest Kronecker product A⊗B at the planner's
/// shapes plus its largest residual entries as S, optionally fine-tuned with the mask
/// frozen. With `--data`, test perplexity is reported before and after.
#[derive(Debug, Clone, Args)]
pub struct CompressArgs {
    /// The dense model file.
    pub model: PathBuf,
    /// Compression factor of the LSTM gate weights.
    #[arg(long)]
    pub cf: f64,
    /// Where to write the compressed model.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Fine-tune this many epochs with the mask frozen (needs --data).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Data for perplexities and fine-tuning (PTB-layout directory or a char text file).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Count CSR indices against the budget too.
    #[arg(long)]
    pub with_indices: bool,
    /// Fine-tuning learning rate (SGD, constant).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Fine-tuning dropout.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Fine-tuning seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evaluate on at most this many test tokens.
    #[arg(long)]
    pub max_eval_tokens: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// What `dkp compress` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    /// The written model.
    pub out: PathBuf,
    /// Test perplexity of the dense model (with --data).
    pub ppl_before: Option<f64>,
    /// Test perplexity right after decomposition.
    pub ppl_decomposed: Option<f64>,
    /// Test perplexity after fine-tuning.
    pub ppl_finetuned: Option<f64>,
    /// LSTM gate CF, values only and values + indices.
    pub lstm_cf: [f64; 2],
}

/// Runs `dkp compress`.
pub fn run_compress(args: &CompressArgs) -> Result<CompressReport> {
    single_threaded_elementwise();
    let dev = Device::Cpu;
    let bytes = std::fs::read(&args.model).map_err(io_err(&args.model))?;
    let model =
        Model::from_bytes(&bytes).map_err(|e| Error::Model { path: args.model.clone(), reason: e.to_string() })?;
    let mut lm = Lm::from_model(&model, &args.model, &dev)?;
    for w in lm.weights() {
        require_dense(w, &args.model)?;
    }
    if args.finetune_epochs > 0 && args.data.is_none() {
        return Err(config_err("--finetune-epochs", "fine-tuning needs --data"));
    }
    let acc = if args.with_indices { Accounting::ValuesAndIndices } else { Accounting::Values };
    let corpus = match &args.data {
        Some(d) => Some(Corpus::load_with(&DataSpec::from_path(d)?, Some(model.tokenizer()))?),
        None => None,
    };
    let test_ppl = |lm: &Lm| -> Result<Option<f64>> {
        let Some(c) = &corpus else { return Ok(None) };
        let n = args.max_eval_tokens.unwrap_or(usize::MAX).min(c.test.ids.len());
        let (nll, count) = lm.stream_nll(&c.test.ids[..n], c.tokenizer.boundary(), 256)?;
        Ok(Some((nll / count.max(1) as f64).exp()))
    };
    let ppl_before = test_ppl(&lm)?;
    for layer in &mut lm.layers {
        layer.w = dkp_from_dense(&layer.w, args.cf, acc, &dev)?;
    }
    let ppl_decomposed = test_ppl(&lm)?;
    let mut provenance = model.provenance().clone();
    provenance.insert("trained".into(), json!(true));
    let mut compression = json!({
        "method": "post-training decomposition: nearest Kronecker product (Van Loan–Pitsianis) + largest residual entries as S",
        "source": args.model.display().to_string(),
        "cf_target": args.cf, "accounting": acc,
        "test_ppl_before": ppl_before, "test_ppl_decomposed": ppl_decomposed,
        "finetune_epochs": args.finetune_epochs,
    });
    let (final_model, ppl_finetuned) = match (&corpus, args.finetune_epochs) {
        (Some(corpus), n) if n > 0 => {
            let out_dir = args
                .out
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .to_path_buf();
            let stem =
                args.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "compressed".into());
            let mut cfg = TrainConfig {
                name: format!("{stem}.finetune"),
                runs_dir: out_dir,
                data: Some(DataSpec::from_path(args.data.as_ref().expect("checked"))?),
                seed: args.seed,
                epochs: n,
                max_eval_tokens: args.max_eval_tokens,
                ..TrainConfig::default()
            };
            cfg.model.layers = lm.layers.len();
            cfg.model.hidden = lm.layers[0].hidden;
            cfg.model.embedding_dim = Some(lm.layers[0].input);
            cfg.model.tie_weights = lm.embedding.is_none();
            cfg.model.dropout = args.dropout;
            cfg.lstm.kind = WeightKind::Dkp;
            cfg.lstm.cf = args.cf;
            cfg.accounting = acc;
            // The mask is already at its target: only the final, frozen phase remains.
            cfg.doping.start_epoch = 0.0;
            cfg.doping.end_epoch = 0.0;
            cfg.optim.lr = args.lr;
            cfg.optim.lr_decay = 1.0;
            if lm.layers.iter().any(|l| l.hidden != cfg.model.hidden) {
                return Err(Error::Model {
                    path: args.model.clone(),
                    reason: "fine-tuning needs every layer to have the same hidden size".into(),
                });
            }
            let mut trainer = Trainer::with_corpus(cfg, corpus.clone(), Some(lm), false)?;
            let report = trainer.run(&RunOptions { resume: false, progress: !args.quiet, out: None })?;
            let tuned = std::fs::read(&report.model).map_err(io_err(&report.model))?;
            (Model::from_bytes(&tuned)?, Some(report.test_ppl))
        }
        _ => (lm.to_model(model.tokenizer(), provenance.clone())?, None),
    };
    compression["test_ppl_finetuned"] = json!(ppl_finetuned);
    let mut out_model = final_model;
    let info = out_model.info();
    let mut prov = out_model.provenance().clone();
    if ppl_finetuned.is_none() {
        // The source's figures no longer describe this model: replace what changed.
        prov.remove("valid_ppl");
        prov.insert("test_ppl".into(), json!(ppl_decomposed));
        prov.insert(
            "cf".into(),
            json!({
                "accounting": acc,
                "lstm_values": info.lstm_cf, "lstm_values_and_indices": info.lstm_cf_with_indices,
                "total_values": info.total_cf, "total_values_and_indices": info.total_cf_with_indices,
            }),
        );
        if let Some(m) = prov.get_mut("method").and_then(|m| m.as_object_mut()) {
            m.insert("lstm".into(), json!("dkp"));
        }
    }
    for (k, v) in &provenance {
        prov.entry(k.clone()).or_insert(v.clone());
    }
    prov.insert("compression".into(), compression);
    out_model.set_provenance(prov);
    write_atomic(&args.out, &out_model.to_bytes()?)?;
    Ok(CompressReport {
        out: args.out.clone(),
        ppl_before,
        ppl_decomposed,
        ppl_finetuned,
        lstm_cf: [info.lstm_cf, info.lstm_cf_with_indices],
    })
}

/// Chart several training runs side by side (SVG), against epochs.
///
/// Each `--run LABEL=DIR` names a run directory holding `metrics.jsonl` (as `dkp train`
/// writes it). `--what ppl` draws each run's validation perplexity per epoch (bold) and
/// training perplexity (faint); `--what density` the density of each masked weight;
/// `--what norms` the ratio ‖S·x‖ / ‖(A⊗B)·x‖ of each doped weight (log scale).
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A run to draw, as LABEL=DIR (repeatable).
    #[arg(long = "run", value_name = "LABEL=DIR", required = true)]
    pub runs: Vec<String>,
    /// What to draw.
    #[arg(long, value_enum, default_value = "ppl")]
    pub what: crate::plot::Compare,
    /// Chart title.
    #[arg(long, default_value = "")]
    pub title: String,
    /// The SVG file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `dkp plot`.
pub fn run_plot(args: &PlotArgs) -> Result<()> {
    let mut runs = vec![];
    for spec in &args.runs {
        let Some((label, dir)) = spec.split_once('=') else {
            return Err(config_err("--run", format!("`{spec}` is not LABEL=DIR")));
        };
        runs.push((label.to_string(), PathBuf::from(dir).join("metrics.jsonl")));
    }
    crate::plot::compare(&runs, args.what, &args.title, &args.out)
}
