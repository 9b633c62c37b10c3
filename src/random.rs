//! Random-weight models of any kind and shape, for tests, benchmarks and the demo's
//! "untrained" models. They are marked `"trained": false` in their provenance.

use crate::error::{Error, Result};
use crate::format::MAX_ELEMENTS;
use crate::lstm::{Gates, LstmLayer};
use crate::matrix::{checked, Csr, Dense, Doped, Hmd, Kron, LowRank, Matrix};
use crate::matrix::{ValueType, Weight, WeightKind};
use crate::model::{Embedding, Model, MAX_DIM, MAX_LAYERS};
use crate::plan::{plan, Accounting, Plan};
use crate::sample::Rng;
use crate::tokenizer::{Tokenizer, TokenizerKind};
use crate::Provenance;

/// What random model to make.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomSpec {
    /// LSTM layers.
    pub layers: usize,
    /// Hidden size of every layer.
    pub hidden: usize,
    /// Vocabulary size (including `<unk>` and, for word models, `<eos>`).
    pub vocab: usize,
    /// Embedding size; `None` means the hidden size.
    pub embedding_dim: Option<usize>,
    /// Kind of the LSTM gate weights.
    pub kind: WeightKind,
    /// Compression factor of the LSTM gate weights.
    pub cf: f64,
    /// Kind of the output projection.
    pub output_kind: WeightKind,
    /// Compression factor of the output projection.
    pub output_cf: f64,
    /// Embedding kind; `None` shares the output projection (a tied embedding).
    pub embedding_kind: Option<WeightKind>,
    /// Gate weights as one `[W_ih | W_hh]` matrix (true) or two.
    pub fused: bool,
    /// Word or char vocabulary.
    pub tokenizer: TokenizerKind,
    /// Storage precision.
    pub dtype: ValueType,
    /// How compression budgets count stored numbers.
    pub accounting: Accounting,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for RandomSpec {
    fn default() -> Self {
        RandomSpec {
            layers: 2,
            hidden: 32,
            vocab: 100,
            embedding_dim: None,
            kind: WeightKind::Dense,
            cf: 1.0,
            output_kind: WeightKind::Dense,
            output_cf: 1.0,
            embedding_kind: Some(WeightKind::Dense),
            fused: true,
            tokenizer: TokenizerKind::Word,
            dtype: ValueType::F32,
            accounting: Accounting::Values,
            seed: 0,
        }
    }
}

/// Largest random model, counted as if every matrix were dense: 2²⁸ values (1 GiB
/// of f32), so that no spec can exhaust a WebAssembly instance's memory, which traps it.
pub const MAX_RANDOM_VALUES: u64 = 1 << 28;

impl RandomSpec {
    /// Checks every size before anything is allocated, so that each spec either builds
    /// a model that the reader accepts or is refused with the argument at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason| Err(Error::InvalidArgument { name, reason });
        if !(1..=MAX_LAYERS).contains(&self.layers) {
            return bad("layers", format!("{} is outside 1..={MAX_LAYERS}", self.layers));
        }
        if !(3..=MAX_DIM).contains(&self.vocab) {
            return bad("vocab", format!("{} is outside 3..={MAX_DIM}", self.vocab));
        }
        if !(1..=MAX_DIM).contains(&self.hidden) {
            return bad("hidden", format!("{} is outside 1..={MAX_DIM}", self.hidden));
        }
        let e = self.embedding_dim();
        if !(1..=MAX_DIM).contains(&e) {
            return bad("embedding_dim", format!("{e} is outside 1..={MAX_DIM}"));
        }
        for (name, cf) in [("cf", self.cf), ("output_cf", self.output_cf)] {
            if !(cf.is_finite() && cf >= 1.0) {
                return bad(name, format!("{cf} is not a number ≥ 1"));
            }
        }
        let (h, e, v, l) = (self.hidden as u64, e as u64, self.vocab as u64, self.layers as u64);
        let largest = (4 * h * (e.max(h) + h)).max(v * e.max(h));
        if largest > MAX_ELEMENTS {
            return bad("spec", format!("its largest matrix of {largest} elements exceeds {MAX_ELEMENTS}"));
        }
        let dense = 4 * h * (e + h) + (l - 1) * 8 * h * h + 2 * v * e.max(h);
        if dense > MAX_RANDOM_VALUES {
            return bad("spec", format!("a {l}x{h} model over {v} tokens exceeds {MAX_RANDOM_VALUES} dense values"));
        }
        Ok(())
    }

    /// The embedding size: the hidden size when tied or not given.
    pub fn embedding_dim(&self) -> usize {
        match self.embedding_kind {
            None => self.hidden,
            Some(_) => self.embedding_dim.unwrap_or(self.hidden),
        }
    }
}

/// A vocabulary of `n` tokens: `<unk>`, `<eos>`, then `the`, `of`, … and `w7`, `w8`, …
/// for word models; `<unk>`, newline, space and printable ASCII for char models.
pub fn synthetic_vocab(kind: TokenizerKind, n: usize) -> Vec<String> {
    const WORDS: [&str; 16] =
        ["the", "of", "and", "to", "a", "in", "N", "is", "that", "for", "it", "was", "on", "with", "as", "cat"];
    match kind {
        TokenizerKind::Word => ["<unk>", "<eos>"]
            .into_iter()
            .chain(WORDS)
            .map(str::to_string)
            .chain((0..).map(|i| format!("w{i}")))
            .take(n)
            .collect(),
        TokenizerKind::Char => ["<unk>".to_string(), "\n".to_string()]
            .into_iter()
            .chain((b' '..=b'~').map(|c| (c as char).to_string()))
            .chain((0x00C0u32..).filter_map(char::from_u32).map(|c| c.to_string()))
            .take(n)
            .collect(),
    }
}

/// Builds a random model ([`RandomSpec::validate`] first).
pub fn random_model(spec: &RandomSpec) -> Result<Model> {
    spec.validate()?;
    let mut rng = Rng::new(spec.seed);
    let tokens = synthetic_vocab(spec.tokenizer, spec.vocab);
    let eos = (spec.tokenizer == TokenizerKind::Word).then_some("<eos>");
    let tokenizer = Tokenizer::new(spec.tokenizer, tokens, "<unk>", eos)?;
    let vocab = tokenizer.len();
    let (h, e) = (spec.hidden, spec.embedding_dim());
    let weight = |kind: WeightKind, rows: usize, cols: usize, cf: f64, rng: &mut Rng| -> Result<Weight> {
        let p = plan(kind, rows, cols, cf, spec.accounting)?;
        Ok(Weight { matrix: random_matrix(p, rows, cols, rng), dtype: spec.dtype })
    };
    let embedding = match spec.embedding_kind {
        None => Embedding::Tied,
        Some(kind) => Embedding::Own(weight(kind, vocab, e, 1.0, &mut rng)?),
    };
    let mut layers = vec![];
    for i in 0..spec.layers {
        let input = if i == 0 { e } else { h };
        let gates = if spec.fused {
            Gates::Fused(weight(spec.kind, 4 * h, input + h, spec.cf, &mut rng)?)
        } else {
            Gates::Split {
                ih: weight(spec.kind, 4 * h, input, spec.cf, &mut rng)?,
                hh: weight(spec.kind, 4 * h, h, spec.cf, &mut rng)?,
            }
        };
        let bias = (0..4 * h).map(|_| rng.symmetric(0.1)).collect();
        layers.push(LstmLayer { input, hidden: h, gates, bias });
    }
    let output = weight(spec.output_kind, vocab, h, spec.output_cf, &mut rng)?;
    let output_bias = (0..vocab).map(|_| rng.symmetric(0.1)).collect();
    let provenance = serde_json::json!({
        "trained": false,
        "method": spec.kind.name(),
        "note": "random weights for tests and benchmarks",
        "seed": spec.seed,
    });
    let serde_json::Value::Object(provenance) = provenance else { unreachable!() };
    Model::new(tokenizer, embedding, layers, output, output_bias, Provenance::from_map(provenance))
}

/// A random matrix of the planned shape, scaled so that `W·x` keeps the scale of `x`.
pub fn random_matrix(p: Plan, rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    let scale = 1.0 / (cols as f32).sqrt();
    let mut dense =
        |r: usize, c: usize, a: f32| checked(Dense::new(r, c, (0..r * c).map(|_| rng.symmetric(a)).collect()));
    let kron = |dense: &mut dyn FnMut(usize, usize, f32) -> Dense, a: [usize; 2], b: [usize; 2]| {
        let s = scale.sqrt();
        Matrix::Kron(checked(Kron::new(dense(a[0], a[1], s), dense(b[0], b[1], s))))
    };
    let low_rank = |dense: &mut dyn FnMut(usize, usize, f32) -> Dense, rows: usize, rank: usize| {
        let s = (scale / (rank as f32).sqrt()).sqrt();
        checked(LowRank::new(dense(rows, rank, s), dense(rank, cols, s)))
    };
    let hmd = |dense: &mut dyn FnMut(usize, usize, f32) -> Dense, dense_rows: usize, rank: usize| {
        let top = dense(dense_rows, cols, scale);
        Matrix::Hmd(checked(Hmd::new(top, low_rank(dense, rows - dense_rows, rank))))
    };
    // The structured part first, then the co-matrix of a doped kind (in that order from
    // the generator, so a seed gives the same base doped or not).
    let (base, doping) = match p {
        Plan::Dense => (Matrix::Dense(dense(rows, cols, scale)), None),
        Plan::Kp { a, b } => (kron(&mut dense, a, b), None),
        Plan::Dkp { a, b, nnz } => (kron(&mut dense, a, b), Some(nnz)),
        Plan::LowRank { rank } => (Matrix::LowRank(low_rank(&mut dense, rows, rank)), None),
        Plan::DLowRank { rank, nnz } => (Matrix::LowRank(low_rank(&mut dense, rows, rank)), Some(nnz)),
        Plan::Hmd { dense_rows, rank } => (hmd(&mut dense, dense_rows, rank), None),
        Plan::DHmd { dense_rows, rank, nnz } => (hmd(&mut dense, dense_rows, rank), Some(nnz)),
        Plan::Sparse { nnz } => return Matrix::Sparse(random_csr(rows, cols, nnz, scale, rng)),
    };
    match doping {
        Some(nnz) => Matrix::Doped(checked(Doped::new(base, random_csr(rows, cols, nnz, scale, rng)))),
        None => base,
    }
}

/// A CSR matrix with `nnz` non-zeros spread evenly over the rows at random columns.
pub fn random_csr(rows: usize, cols: usize, nnz: usize, scale: f32, rng: &mut Rng) -> Csr {
    let nnz = nnz.min(rows * cols);
    let (mut row_ptr, mut col_idx, mut values) = (vec![0u32], Vec::with_capacity(nnz), Vec::with_capacity(nnz));
    let mut picked = vec![false; cols];
    for r in 0..rows {
        let k = nnz / rows + usize::from(r < nnz % rows);
        // Floyd's algorithm: k distinct columns without shuffling all of them.
        let mut chosen = Vec::with_capacity(k);
        for j in cols - k..cols {
            let t = rng.below(j + 1);
            let c = if picked[t] { j } else { t };
            picked[c] = true;
            chosen.push(c as u32);
        }
        chosen.sort_unstable();
        for &c in &chosen {
            picked[c as usize] = false;
            col_idx.push(c);
            values.push(rng.symmetric(scale * 2.0));
        }
        row_ptr.push(col_idx.len() as u32);
    }
    checked(Csr::new(rows, cols, row_ptr, col_idx, values))
}
