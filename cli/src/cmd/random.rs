//! `dkp random`: write a random-weight model of any kind and size.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use dkp_lstm::format::MAX_ELEMENTS;
use dkp_lstm::plan::Accounting;
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{TokenizerKind, ValueType, MAX_DIM, MAX_LAYERS};

use super::{thousands, write_atomically};

/// Weight kinds.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    /// Uncompressed.
    Dense,
    /// Kronecker product A⊗B.
    Kp,
    /// Doped Kronecker product A⊗B + S (S sparse).
    Dkp,
    /// Low-rank U·V.
    Lowrank,
    /// Doped low-rank U·V + S.
    Dlowrank,
    /// Sparse (CSR) only.
    Sparse,
    /// Embedding only: share the output projection's rows.
    Tied,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Dense => "dense",
            Kind::Kp => "kp",
            Kind::Dkp => "dkp",
            Kind::Lowrank => "lowrank",
            Kind::Dlowrank => "dlowrank",
            Kind::Sparse => "sparse",
            Kind::Tied => "tied",
        }
    }
}

/// Write a model with random weights (marked untrained), of any kind and size.
///
/// Every matrix is sized by the same planner as the trainer, so `--cf 10` gives LSTM
/// weights with one tenth of the dense values. The file is written to a temporary
/// file and renamed into place.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// LSTM layers.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Hidden size of every layer.
    #[arg(long, default_value_t = 32)]
    pub hidden: usize,
    /// Vocabulary size (at least 3; synthetic tokens `<unk>`, `<eos>`, `the`, …).
    #[arg(long, default_value_t = 100)]
    pub vocab: usize,
    /// Embedding size (defaults to the hidden size; a tied embedding always has it).
    #[arg(long)]
    pub embedding_dim: Option<usize>,
    /// Kind of the LSTM gate weights.
    #[arg(long, value_enum, default_value_t = Kind::Dense)]
    pub kind: Kind,
    /// Compression factor of the LSTM gate weights (≥ 1).
    #[arg(long, default_value_t = 1.0)]
    pub cf: f64,
    /// Kind of the output projection.
    #[arg(long, value_enum, default_value_t = Kind::Dense)]
    pub output_kind: Kind,
    /// Compression factor of the output projection (≥ 1).
    #[arg(long, default_value_t = 1.0)]
    pub output_cf: f64,
    /// Kind of the input embedding, or `tied` to share the output projection.
    #[arg(long, value_enum, default_value_t = Kind::Dense)]
    pub embedding_kind: Kind,
    /// Store gate weights as separate `W_ih` and `W_hh` instead of one `[W_ih | W_hh]`.
    #[arg(long)]
    pub split_gates: bool,
    /// A character-level vocabulary instead of a word-level one.
    #[arg(long)]
    pub char: bool,
    /// Store weight values as f16 (computation stays f32).
    #[arg(long)]
    pub f16: bool,
    /// Count CSR indices against the compression budget (by default only values count).
    #[arg(long)]
    pub count_indices: bool,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the model.
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    check_sizes(&args)?;
    for (flag, kind) in [("--kind", args.kind), ("--output-kind", args.output_kind)] {
        if matches!(kind, Kind::Tied) {
            bail!("{flag} cannot be `tied`; only the embedding can be tied");
        }
    }
    if !args.force && args.out.exists() {
        bail!("`{}` exists; pass --force to replace it", args.out.display());
    }
    let spec = RandomSpec {
        layers: args.layers,
        hidden: args.hidden,
        vocab: args.vocab,
        embedding_dim: args.embedding_dim,
        kind: args.kind.name().into(),
        cf: args.cf,
        output_kind: args.output_kind.name().into(),
        output_cf: args.output_cf,
        embedding_kind: args.embedding_kind.name().into(),
        fused: !args.split_gates,
        tokenizer: if args.char { TokenizerKind::Char } else { TokenizerKind::Word },
        dtype: if args.f16 { ValueType::F16 } else { ValueType::F32 },
        accounting: if args.count_indices { Accounting::ValuesAndIndices } else { Accounting::Values },
        seed: args.seed,
    };
    let model = random_model(&spec).context("cannot build the model")?;
    let bytes = model.to_bytes().context("cannot serialise the model")?;
    write_atomically(&args.out, args.force, &bytes)?;
    let info = model.info();
    println!(
        "wrote {}: {} bytes, {} LSTM layers of {}, vocab {}, {} LSTM weights at CF {:.2}, untrained",
        args.out.display(),
        thousands(bytes.len() as u64),
        args.layers,
        args.hidden,
        info.vocab,
        args.kind.name(),
        info.lstm_cf
    );
    Ok(())
}

/// Rejects sizes the reader would refuse (so every written file loads) before
/// anything is allocated.
fn check_sizes(a: &Args) -> Result<()> {
    if a.layers == 0 || a.layers > MAX_LAYERS {
        bail!("--layers {} is outside 1..={MAX_LAYERS}", a.layers);
    }
    if !(3..=MAX_DIM).contains(&a.vocab) {
        bail!("--vocab {} is outside 3..={MAX_DIM}", a.vocab);
    }
    for (flag, v) in [("--hidden", a.hidden), ("--embedding-dim", a.embedding_dim.unwrap_or(a.hidden))] {
        if v == 0 || v > MAX_DIM {
            bail!("{flag} {v} is outside 1..={MAX_DIM}");
        }
    }
    let (h, e) = (a.hidden as u64, a.embedding_dim.unwrap_or(a.hidden) as u64);
    let largest = (4 * h * (e.max(h) + h)).max(a.vocab as u64 * e.max(h));
    if largest > MAX_ELEMENTS {
        bail!("the largest matrix would have {largest} elements, more than the {MAX_ELEMENTS} a model file may hold");
    }
    Ok(())
}
