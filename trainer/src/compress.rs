//! The `dkp compress` pipeline: a trained dense model in, a doped Kronecker model out.
//!
//! [`compress`] loads a runtime model whose weights are all dense, replaces each LSTM gate
//! matrix by its nearest Kronecker product plus the largest residual entries
//! ([`crate::decompose::dkp_from_dense`]), optionally fine-tunes the result with the masks
//! frozen (a short [`Trainer`] run next to the output), and writes it with its provenance.
//! With data, the test perplexity is measured before, after decomposition and after
//! fine-tuning, by the same [`Lm::stream_nll`] as every other trainer figure.

use std::path::{Path, PathBuf};

use candle_core::Device;
use dkp_lstm::plan::Accounting;
use dkp_lstm::{Model, Provenance};
use serde::Serialize;
use serde_json::json;

use crate::config::{TrainConfig, WeightKind};
use crate::data::{Corpus, DataSpec};
use crate::decompose::{dkp_from_dense, require_dense};
use crate::error::{io_err, Error, Result};
use crate::fs::{write_atomically, Overwrite};
use crate::lm::Lm;
use crate::train::{cf_provenance, RunOptions, Trainer};

/// What to compress, how much, and with which data.
#[derive(Debug, Clone)]
pub struct CompressOptions {
    /// The dense model file.
    pub model: PathBuf,
    /// Compression factor of the LSTM gate weights.
    pub cf: f64,
    /// What counts against the budget.
    pub accounting: Accounting,
    /// Where to write the compressed model (replaced if it exists).
    pub out: PathBuf,
    /// Data to measure and fine-tune on; without it the model is only decomposed.
    pub data: Option<CompressData>,
    /// Draw a progress bar while fine-tuning.
    pub progress: bool,
}

/// The data of a compression: test perplexities, and fine-tuning if asked for.
#[derive(Debug, Clone)]
pub struct CompressData {
    /// Where the corpus is; it is read with the model's own tokenizer.
    pub spec: DataSpec,
    /// Evaluate on at most this many test tokens.
    pub max_eval_tokens: Option<usize>,
    /// Fine-tuning after decomposition.
    pub finetune: Option<Finetune>,
}

/// Fine-tuning of a decomposed model: SGD at a constant rate with every mask frozen at
/// its target, as the last phase of a doped training run.
#[derive(Debug, Clone, Copy)]
pub struct Finetune {
    /// Epochs (at least 1).
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// Dropout between layers.
    pub dropout: f32,
    /// Seed of the run.
    pub seed: u64,
}

/// What `dkp compress` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CompressReport {
    /// The written model.
    pub out: PathBuf,
    /// Test perplexity of the dense model (with data).
    pub ppl_before: Option<f64>,
    /// Test perplexity right after decomposition.
    pub ppl_decomposed: Option<f64>,
    /// Test perplexity after fine-tuning.
    pub ppl_finetuned: Option<f64>,
    /// LSTM gate CF, values only and values + indices.
    pub lstm_cf: [f64; 2],
}

/// Decomposes, optionally fine-tunes, and writes the model `opts` describe.
pub fn compress(opts: &CompressOptions) -> Result<CompressReport> {
    let dev = Device::Cpu;
    let (model, mut lm) = load_dense(&opts.model, &dev)?;
    let data = match &opts.data {
        Some(d) => Some((d, Corpus::load_with(&d.spec, Some(model.tokenizer()))?)),
        None => None,
    };
    let test_ppl = |lm: &Lm| -> Result<Option<f64>> {
        let Some((d, c)) = &data else { return Ok(None) };
        Ok(Some(lm.stream_nll(&c.test.ids, c.tokenizer.boundary(), d.max_eval_tokens)?.perplexity()))
    };
    let ppl_before = test_ppl(&lm)?;
    for layer in &mut lm.layers {
        layer.w = dkp_from_dense(&layer.w, opts.cf, opts.accounting, &dev)?;
    }
    let ppl_decomposed = test_ppl(&lm)?;
    let mut provenance = model.provenance().to_map()?;
    provenance.insert("trained".into(), json!(true));
    let finetune = data.as_ref().and_then(|(d, c)| d.finetune.map(|f| (d, c, f)));
    let mut compression = json!({
        "method": "post-training decomposition: nearest Kronecker product (Van Loan–Pitsianis) + largest residual entries as S",
        "source": opts.model.display().to_string(),
        "cf_target": opts.cf, "accounting": opts.accounting,
        "test_ppl_before": ppl_before, "test_ppl_decomposed": ppl_decomposed,
        "finetune_epochs": finetune.map_or(0, |(_, _, f)| f.epochs),
    });
    let (mut out_model, ppl_finetuned) = match finetune {
        Some((d, corpus, f)) => {
            let (model, ppl) = fine_tune(lm, corpus, d, f, opts)?;
            (model, Some(ppl))
        }
        None => (lm.to_model(model.tokenizer(), provenance.clone())?, None),
    };
    compression["test_ppl_finetuned"] = json!(ppl_finetuned);
    let info = out_model.info();
    let mut prov = out_model.provenance().to_map()?;
    if ppl_finetuned.is_none() {
        // The source's figures no longer describe this model: replace what changed.
        prov.remove("valid_ppl");
        prov.insert("test_ppl".into(), json!(ppl_decomposed));
        prov.insert("cf".into(), cf_provenance(opts.accounting, &info));
        if let Some(m) = prov.get_mut("method").and_then(|m| m.as_object_mut()) {
            m.insert("lstm".into(), json!("dkp"));
        }
    }
    for (k, v) in &provenance {
        prov.entry(k.clone()).or_insert(v.clone());
    }
    prov.insert("compression".into(), compression);
    out_model.set_provenance(Provenance::from_map(prov));
    write_atomically(&opts.out, Overwrite::Replace, &out_model.to_bytes()?)?;
    Ok(CompressReport {
        out: opts.out.clone(),
        ppl_before,
        ppl_decomposed,
        ppl_finetuned,
        lstm_cf: [info.lstm_cf, info.lstm_cf_with_indices],
    })
}

/// The model at `path` and a trainable copy of it; anything but an all-dense model is an
/// error naming the first weight that is not dense.
fn load_dense(path: &Path, dev: &Device) -> Result<(Model, Lm)> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let model = Model::from_bytes(&bytes).map_err(|e| Error::Model { path: path.into(), reason: e.to_string() })?;
    let lm = Lm::from_model(&model, path, dev)?;
    for w in lm.weights() {
        require_dense(w, path)?;
    }
    Ok((model, lm))
}

/// Fine-tunes the decomposed `lm` in the run directory `OUT_STEM.finetune` next to the
/// output, and returns the exported best model with its test perplexity.
fn fine_tune(
    lm: Lm,
    corpus: &Corpus,
    data: &CompressData,
    f: Finetune,
    opts: &CompressOptions,
) -> Result<(Model, f64)> {
    if lm.layers.iter().any(|l| l.hidden != lm.layers[0].hidden) {
        return Err(Error::Model {
            path: opts.model.clone(),
            reason: "fine-tuning needs every layer to have the same hidden size".into(),
        });
    }
    let out_dir = opts.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    let stem = opts.out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "compressed".into());
    let mut cfg = TrainConfig {
        name: format!("{stem}.finetune"),
        runs_dir: out_dir,
        data: Some(data.spec.clone()),
        seed: f.seed,
        epochs: f.epochs,
        max_eval_tokens: data.max_eval_tokens,
        ..TrainConfig::default()
    };
    cfg.model.layers = lm.layers.len();
    cfg.model.hidden = lm.layers[0].hidden;
    cfg.model.embedding_dim = Some(lm.layers[0].input);
    cfg.model.tie_weights = lm.embedding.is_none();
    cfg.model.dropout = f.dropout;
    cfg.lstm.kind = WeightKind::Dkp;
    cfg.lstm.cf = opts.cf;
    cfg.accounting = opts.accounting;
    // The mask is already at its target: only the final, frozen phase remains.
    cfg.doping.start_epoch = 0.0;
    cfg.doping.end_epoch = 0.0;
    cfg.optim.lr = f.lr;
    cfg.optim.lr_decay = 1.0;
    let mut trainer = Trainer::with_corpus(cfg, corpus.clone(), Some(lm), false)?;
    let report = trainer.run(&RunOptions { resume: false, progress: opts.progress, out: None })?;
    let tuned = std::fs::read(&report.model).map_err(io_err(&report.model))?;
    Ok((Model::from_bytes(&tuned)?, report.test_ppl))
}
