//! Run configuration: what `experiments/*.toml` files hold, with Zaremba et al.'s small-model defaults.

use std::path::PathBuf;

use dkp_lstm::plan::Accounting;
pub use dkp_lstm::WeightKind;
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::error::{config_err, Result};

/// Everything that determines a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: the run directory is `runs_dir/name`.
    pub name: String,
    /// Parent of run directories.
    pub runs_dir: PathBuf,
    /// The corpus.
    pub data: Option<DataSpec>,
    /// Seed of initialisation and dropout.
    pub seed: u64,
    /// Network shape.
    pub model: ModelConfig,
    /// LSTM gate weights (`4H × (I+H)`, fused `[W_ih | W_hh]`).
    pub lstm: WeightConfig,
    /// Output projection (`vocab × H`).
    pub output: WeightConfig,
    /// Embedding (`vocab × E`), unless `model.tie_weights`.
    pub embedding: WeightConfig,
    /// How compression budgets count stored numbers.
    pub accounting: Accounting,
    /// Sparsity annealing of co-matrices and pruned weights.
    pub doping: DopingConfig,
    /// Co-matrix dropout regularisation.
    pub cmr: CmrConfig,
    /// Knowledge distillation from a teacher model.
    pub distill: DistillConfig,
    /// Optimiser and learning-rate schedule.
    pub optim: OptimConfig,
    /// Passes over the training data.
    pub epochs: usize,
    /// Parallel streams per step.
    pub batch_size: usize,
    /// Truncated back-propagation length.
    pub bptt: usize,
    /// Minutes between mid-epoch checkpoints (0: only at epoch ends).
    pub checkpoint_minutes: f64,
    /// Steps between metric lines.
    pub log_every: usize,
    /// Stop after this many steps in total (smoke runs); the model is still evaluated and exported.
    pub max_steps: Option<usize>,
    /// Evaluate validation and test perplexity on at most this many tokens (smoke runs).
    pub max_eval_tokens: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "run".into(),
            runs_dir: "runs".into(),
            data: None,
            seed: 1,
            model: ModelConfig::default(),
            lstm: WeightConfig::default(),
            output: WeightConfig::default(),
            embedding: WeightConfig::default(),
            accounting: Accounting::Values,
            doping: DopingConfig::default(),
            cmr: CmrConfig::default(),
            distill: DistillConfig::default(),
            optim: OptimConfig::default(),
            epochs: 13,
            batch_size: 20,
            bptt: 35,
            checkpoint_minutes: 10.0,
            log_every: 50,
            max_steps: None,
            max_eval_tokens: None,
        }
    }
}

/// Network shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// LSTM layers.
    pub layers: usize,
    /// Hidden size of every layer.
    pub hidden: usize,
    /// Embedding size (default: the hidden size).
    pub embedding_dim: Option<usize>,
    /// Dropout on the embedding output, between layers and before the output projection.
    pub dropout: f32,
    /// Weights start uniform in ±init (factors are scaled so their product has that spread).
    pub init: f32,
    /// Share the output projection as the embedding.
    pub tie_weights: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { layers: 2, hidden: 200, embedding_dim: None, dropout: 0.0, init: 0.1, tie_weights: false }
    }
}

/// A weight's kind and compression factor.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightConfig {
    /// The parameterisation.
    pub kind: WeightKind,
    /// Compression factor (ignored for dense).
    pub cf: f64,
}

impl Default for WeightConfig {
    fn default() -> Self {
        WeightConfig { kind: WeightKind::Dense, cf: 1.0 }
    }
}

/// Gradual magnitude pruning (Zhu & Gupta 2017) of every masked weight:
/// density `d(t) = d_f + (d_i − d_f)·(1 − (t − t0)/(t1 − t0))³` between `start_epoch` and
/// `end_epoch`, mask recomputed from the magnitudes every `mask_every` steps, frozen after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DopingConfig {
    /// Density d_i at the start (1 = dense).
    pub start_density: f64,
    /// Epoch (fractional) at which annealing starts.
    pub start_epoch: f64,
    /// Epoch at which the target density is reached and the mask freezes.
    pub end_epoch: f64,
    /// Steps between mask updates.
    pub mask_every: usize,
    /// Entries kept in aligned runs of this many columns of a row (1: one by one); the
    /// hidden and embedding sizes must be multiples of it.
    pub run: usize,
}

impl Default for DopingConfig {
    fn default() -> Self {
        DopingConfig { start_density: 1.0, start_epoch: 1.0, end_epoch: 8.0, mask_every: 100, run: 1 }
    }
}

/// Which co-matrix dropout to apply during training (also a `dkp train` flag value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CmrMode {
    /// No co-matrix dropout.
    #[default]
    Off,
    /// Inverted dropout on each element of S·x.
    Element,
    /// The whole S·x term of a matrix dropped (or kept, scaled) at each time step.
    Term,
}

/// Co-matrix dropout regularisation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CmrConfig {
    /// The variant.
    pub mode: CmrMode,
    /// Drop probability.
    pub rate: f32,
    /// Also on a doped output projection. Off makes a large-vocabulary output layer
    /// about twice as fast to train: it is then materialised once per window and goes
    /// through the fused softmax-cross-entropy, instead of paying a `tokens × vocab`
    /// dropout mask and an unfused softmax.
    pub output: bool,
}

impl Default for CmrConfig {
    fn default() -> Self {
        CmrConfig { mode: CmrMode::Off, rate: 0.5, output: true }
    }
}

/// Knowledge distillation (Hinton et al. 2015): the loss of every training token mixes the
/// data's cross-entropy with the cross-entropy against a teacher's softened distribution,
/// `(1 − w)·CE(y, softmax z) + w·T²·CE(q_T, softmax(z/T))`, where `q_T` is the teacher's
/// distribution at temperature `T` reduced to `top_k + 1` outcomes: its `top_k` most likely
/// tokens and "any other token" (`ops::SoftTargets`). `T²` keeps the soft term's gradient
/// on the data term's scale, as Hinton et al. do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistillConfig {
    /// The teacher: a model file in the runtime's format with dense weights and this corpus's
    /// vocabulary (none: no distillation). Its contents are part of the run's identity.
    pub teacher: Option<PathBuf>,
    /// Weight `w` of the soft-target term, in [0, 1].
    pub weight: f64,
    /// Temperature `T` (> 0).
    pub temperature: f64,
    /// Teacher probabilities kept per position.
    pub top_k: usize,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig { teacher: None, weight: 0.5, temperature: 1.0, top_k: 32 }
    }
}

/// Optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimKind {
    /// Plain SGD (Zaremba et al.).
    #[default]
    Sgd,
    /// AdamW.
    Adamw,
}

/// Optimiser settings and learning-rate schedule: `lr · lr_decay^max(0, epoch + 1 − decay_after)`
/// with 0-based epochs, so `decay_after = 4` trains 4 epochs at `lr` (the TensorFlow tutorial).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// The optimiser.
    pub kind: OptimKind,
    /// Initial learning rate.
    pub lr: f64,
    /// Per-epoch decay factor.
    pub lr_decay: f64,
    /// Epochs at the initial rate.
    pub decay_after: usize,
    /// Global gradient-norm clip (0: none).
    pub clip: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// AdamW β1.
    pub beta1: f64,
    /// AdamW β2.
    pub beta2: f64,
    /// AdamW ε.
    pub eps: f64,
    /// Factor on the learning rate of every doped weight's sparse part S (`dkp`,
    /// `dlowrank`, `dhmd`), so that S can train at a rate its structured part stalls at
    /// (doped HMD at 2×650, docs/results.md). Left out of a config when 1, so that
    /// checkpoints of runs from before it keep their identity.
    #[serde(skip_serializing_if = "is_one")]
    pub sparse_lr_scale: f64,
}

fn is_one(x: &f64) -> bool {
    *x == 1.0
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: OptimKind::Sgd,
            lr: 1.0,
            lr_decay: 0.5,
            decay_after: 4,
            clip: 5.0,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            sparse_lr_scale: 1.0,
        }
    }
}

impl OptimConfig {
    /// The learning rate of 0-based epoch `epoch`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.lr * self.lr_decay.powi((epoch + 1).saturating_sub(self.decay_after) as i32)
    }
}

impl TrainConfig {
    /// Reads a TOML config.
    pub fn from_toml(text: &str, origin: &str) -> Result<TrainConfig> {
        toml::from_str(text).map_err(|e| config_err(origin, e.to_string()))
    }

    /// Applies `key.path=value` overrides (the value is TOML: `0.5`, `"dkp"`, `true`).
    pub fn with_overrides(&self, overrides: &[String]) -> Result<TrainConfig> {
        if overrides.is_empty() {
            return Ok(self.clone());
        }
        let mut root = toml::Value::try_from(self).map_err(|e| config_err("config", e.to_string()))?;
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| config_err(o, "expected KEY=VALUE"))?;
            let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
                Ok(mut t) => t.remove("v").expect("parsed"),
                Err(_) => toml::Value::String(value.to_string()),
            };
            let mut node = &mut root;
            let parts: Vec<&str> = key.trim().split('.').collect();
            for (i, part) in parts.iter().enumerate() {
                let table = node.as_table_mut().ok_or_else(|| config_err(key, "is not a table path"))?;
                if i + 1 == parts.len() {
                    table.insert(part.to_string(), value.clone());
                    break;
                }
                node = table.entry(part.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
            }
        }
        root.try_into().map_err(|e: toml::de::Error| config_err("override", e.to_string()))
    }

    /// Checks the settings that the rest of the trainer relies on.
    pub fn validate(&self) -> Result<()> {
        let m = &self.model;
        if m.layers == 0 || m.hidden == 0 {
            return Err(config_err("model", "layers and hidden must be at least 1"));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return Err(config_err("model.dropout", format!("{} is not in [0, 1)", m.dropout)));
        }
        if m.tie_weights && m.embedding_dim.is_some_and(|e| e != m.hidden) {
            return Err(config_err("model.embedding_dim", "tied weights need embedding_dim = hidden"));
        }
        if self.cmr.mode != CmrMode::Off && !(0.0..1.0).contains(&self.cmr.rate) {
            return Err(config_err("cmr.rate", format!("{} is not in [0, 1)", self.cmr.rate)));
        }
        if self.epochs == 0 || self.batch_size == 0 || self.bptt == 0 || self.log_every == 0 {
            return Err(config_err("epochs/batch_size/bptt/log_every", "must be at least 1"));
        }
        let s = self.optim.sparse_lr_scale;
        if !(s.is_finite() && s > 0.0) {
            return Err(config_err("optim.sparse_lr_scale", format!("{s} is not a positive number")));
        }
        let d = &self.doping;
        if !(0.0..=1.0).contains(&d.start_density)
            || d.end_epoch < d.start_epoch
            || d.start_epoch < 0.0
            || d.mask_every == 0
        {
            return Err(config_err(
                "doping",
                "need 0 ≤ start_density ≤ 1, 0 ≤ start_epoch ≤ end_epoch and mask_every ≥ 1",
            ));
        }
        // Every masked matrix's width is a hidden or an embedding size (or their sum).
        let widths = [Some(m.hidden), m.embedding_dim];
        if d.run == 0 || widths.into_iter().flatten().any(|w| !w.is_multiple_of(d.run)) {
            let reason = format!("{} must be ≥ 1 and divide the hidden and embedding sizes", d.run);
            return Err(config_err("doping.run", reason));
        }
        for (name, w) in [("lstm", &self.lstm), ("output", &self.output), ("embedding", &self.embedding)] {
            if !(w.cf.is_finite() && w.cf >= 1.0) {
                return Err(config_err(format!("{name}.cf"), format!("{} is not a number ≥ 1", w.cf)));
            }
        }
        let k = &self.distill;
        if k.teacher.is_some()
            && !((0.0..=1.0).contains(&k.weight) && k.temperature.is_finite() && k.temperature > 0.0 && k.top_k >= 1)
        {
            return Err(config_err("distill", "need 0 ≤ weight ≤ 1, temperature > 0 and top_k ≥ 1"));
        }
        if self.data.is_none() {
            return Err(config_err("data", "no data given (set [data] in the config or pass --data DIR)"));
        }
        Ok(())
    }

    /// The embedding size.
    pub fn embedding_dim(&self) -> usize {
        self.model.embedding_dim.unwrap_or(self.model.hidden)
    }

    /// The run directory.
    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir.join(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_reach_nested_fields() {
        let c = TrainConfig::default()
            .with_overrides(&["lstm.kind=\"dkp\"".into(), "lstm.cf=25".into(), "cmr.mode=element".into()])
            .unwrap();
        assert_eq!(c.lstm.kind, WeightKind::Dkp);
        assert_eq!(c.lstm.cf, 25.0);
        assert_eq!(c.cmr.mode, CmrMode::Element);
        assert!(TrainConfig::default().with_overrides(&["nope=1".into()]).is_err());
    }

    #[test]
    fn doping_runs_must_tile_every_width() {
        let with = |o: &[&str]| {
            let data = ["data.kind=\"char\"", "data.file=\"t.txt\""];
            let o: Vec<String> = data.iter().chain(o).map(|s| s.to_string()).collect();
            TrainConfig::default().with_overrides(&o).unwrap().validate()
        };
        with(&["model.hidden=200", "doping.run=4"]).unwrap();
        let err = with(&["model.hidden=200", "doping.run=3"]).unwrap_err().to_string();
        assert!(err.contains("doping.run"), "{err}");
        assert!(with(&["model.hidden=200", "model.embedding_dim=198", "doping.run=4"]).is_err());
        assert!(with(&["doping.run=0"]).is_err());
    }

    #[test]
    fn zaremba_schedule() {
        let o = OptimConfig::default();
        assert_eq!((o.lr_at(0), o.lr_at(3), o.lr_at(4), o.lr_at(5)), (1.0, 1.0, 0.5, 0.25));
    }
}
