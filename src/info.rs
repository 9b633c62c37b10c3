//! Size and compression accounting of a model: per weight, per part and in total.
//!
//! A compression factor (CF) compares a matrix with the dense matrix of the same
//! shape: `rows·cols / stored`, where `stored` counts either values only (`cf`) or
//! values plus CSR indices, each index costing one value (`cf_with_indices`). The
//! LSTM figures cover the gate weights (biases excluded); the whole-model figures
//! cover every tensor, biases included, against the same architecture with every
//! matrix dense (a tied embedding stays tied).

use serde::Serialize;

use crate::format::{bias_bytes, weight_bytes};
use crate::matrix::{MatVec, ValueType, Weight, WeightKind};
use crate::model::{Embedding, Model};

/// One weight matrix.
#[derive(Debug, Clone, Serialize)]
pub struct WeightInfo {
    /// Tensor prefix in the file, e.g. `layers.0.w`.
    pub name: String,
    /// The weight's kind.
    pub kind: WeightKind,
    /// Full shape `[rows, cols]`.
    pub shape: [usize; 2],
    /// Storage precision of the values.
    pub dtype: ValueType,
    /// Kronecker factor shapes, dense rows, rank and non-zeros, where they apply.
    pub detail: String,
    /// Stored values.
    pub values: usize,
    /// Stored indices.
    pub indices: usize,
    /// Bytes in the file.
    pub bytes: usize,
    /// Bytes in memory once loaded (int8 dense matrices stay int8; other values are f32).
    pub memory: usize,
    /// Multiply-adds per token.
    pub macs: usize,
    /// CF, values only.
    pub cf: f64,
    /// CF, values and indices.
    pub cf_with_indices: f64,
}

/// Totals of a group of tensors.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PartInfo {
    /// Stored values.
    pub params: usize,
    /// Stored indices.
    pub indices: usize,
    /// Bytes in the file.
    pub bytes: usize,
    /// Bytes in memory once loaded.
    pub memory: usize,
    /// Values the same tensors would hold dense.
    pub dense_params: usize,
    /// Multiply-adds per token.
    pub macs: usize,
    /// CF, values only.
    pub cf: f64,
    /// CF, values and indices.
    pub cf_with_indices: f64,
}

/// Everything `dkp info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// `word` or `char`.
    pub tokenizer: crate::tokenizer::TokenizerKind,
    /// Vocabulary size.
    pub vocab: usize,
    /// Embedding size.
    pub embedding_dim: usize,
    /// Hidden size of each layer.
    pub hidden: Vec<usize>,
    /// Whether the embedding is tied to the output projection.
    pub tied: bool,
    /// Kernel set in use.
    pub kernels: &'static str,
    /// Stored values in the whole model, biases included.
    pub params: usize,
    /// Bytes of all tensors.
    pub bytes: usize,
    /// Bytes the weights and biases occupy in memory once loaded.
    pub memory: usize,
    /// LSTM gate-weight CF, values only.
    pub lstm_cf: f64,
    /// LSTM gate-weight CF, values and indices.
    pub lstm_cf_with_indices: f64,
    /// Whole-model CF, values only.
    pub total_cf: f64,
    /// Whole-model CF, values and indices.
    pub total_cf_with_indices: f64,
    /// LSTM gate weights.
    pub lstm: PartInfo,
    /// Embedding (zero when tied).
    pub embedding: PartInfo,
    /// Output projection.
    pub output: PartInfo,
    /// Biases.
    pub biases: PartInfo,
    /// Every weight.
    pub weights: Vec<WeightInfo>,
}

fn ratio(dense: usize, stored: usize) -> f64 {
    if stored == 0 {
        1.0
    } else {
        dense as f64 / stored as f64
    }
}

fn weight_info(name: String, w: &Weight) -> WeightInfo {
    let m = &w.matrix;
    let s = m.storage();
    let dense = m.rows() * m.cols();
    let spec = crate::format::WeightSpec::from(w);
    let mut detail = vec![];
    if let (Some(a), Some(b)) = (spec.a, spec.b) {
        detail.push(format!("A {}x{} ⊗ B {}x{}", a[0], a[1], b[0], b[1]));
    }
    if let Some(d) = spec.dense_rows {
        detail.push(format!("{d} dense rows"));
    }
    if let Some(r) = spec.rank {
        detail.push(format!("rank {r}"));
    }
    if let Some(nnz) = spec.nnz {
        // Hundredths of a percent, rounded, in integers: float formatting would cost the
        // WebAssembly module 20 KB (docs/benchmarks.md).
        let h = (20_000 * nnz as u64 + dense as u64) / (2 * dense.max(1) as u64);
        detail.push(format!("S {nnz} nnz ({}.{:02}%)", h / 100, h % 100));
    }
    WeightInfo {
        name,
        kind: m.kind(),
        shape: [m.rows(), m.cols()],
        dtype: w.dtype,
        detail: detail.join(", "),
        values: s.values,
        indices: s.indices,
        bytes: weight_bytes(w),
        memory: m.memory(),
        macs: m.macs(),
        cf: ratio(dense, s.values),
        cf_with_indices: ratio(dense, s.values + s.indices),
    }
}

fn part<'a>(ws: impl Iterator<Item = &'a WeightInfo>) -> PartInfo {
    let mut p = PartInfo::default();
    for w in ws {
        p.params += w.values;
        p.indices += w.indices;
        p.bytes += w.bytes;
        p.memory += w.memory;
        p.dense_params += w.shape[0] * w.shape[1];
        p.macs += w.macs;
    }
    p.cf = ratio(p.dense_params, p.params);
    p.cf_with_indices = ratio(p.dense_params, p.params + p.indices);
    p
}

impl Model {
    /// Size and compression figures (`dkp info`).
    pub fn info(&self) -> ModelInfo {
        model_info(self)
    }
}

fn model_info(model: &Model) -> ModelInfo {
    let weights: Vec<WeightInfo> = model.weights().into_iter().map(|(n, w)| weight_info(n, w)).collect();
    let lstm = part(weights.iter().filter(|w| w.name.starts_with("layers.")));
    let embedding = part(weights.iter().filter(|w| w.name == "embedding"));
    let output = part(weights.iter().filter(|w| w.name == "output"));
    let n_bias = model.layers().iter().map(|l| l.bias.len()).sum::<usize>() + model.output_bias().len();
    let biases = PartInfo {
        params: n_bias,
        bytes: bias_bytes(model),
        memory: 4 * n_bias,
        dense_params: n_bias,
        cf: 1.0,
        cf_with_indices: 1.0,
        ..PartInfo::default()
    };
    let all = [lstm, embedding, output, biases];
    let sum = |f: fn(&PartInfo) -> usize| all.iter().map(f).sum::<usize>();
    let (params, indices, dense) = (sum(|p| p.params), sum(|p| p.indices), sum(|p| p.dense_params));
    ModelInfo {
        tokenizer: model.tokenizer().kind(),
        vocab: model.vocab_size(),
        embedding_dim: model.embedding_dim(),
        hidden: model.layers().iter().map(|l| l.hidden).collect(),
        tied: matches!(model.embedding(), Embedding::Tied),
        kernels: model.kernels().name,
        params,
        bytes: sum(|p| p.bytes),
        memory: sum(|p| p.memory),
        lstm_cf: lstm.cf,
        lstm_cf_with_indices: lstm.cf_with_indices,
        total_cf: ratio(dense, params),
        total_cf_with_indices: ratio(dense, params + indices),
        lstm,
        embedding,
        output,
        biases,
        weights,
    }
}
