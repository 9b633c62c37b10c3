//! `dkp random`: write a random-weight model of any kind and size.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use dkp_lstm::plan::Accounting;
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{TokenizerKind, ValueType, WeightKind};
use dkp_train::fs::{write_atomically, Overwrite};

use super::{thousands, Dtype};

/// The embedding's kind: a weight kind, or `tied`.
#[derive(Clone, Copy, Debug)]
pub enum EmbeddingKind {
    /// Share the output projection's rows.
    Tied,
    /// A matrix of its own.
    Own(WeightKind),
}

impl ValueEnum for EmbeddingKind {
    fn value_variants<'a>() -> &'a [Self] {
        // Every weight kind, then `tied`; built from `WeightKind::ALL` so that a new kind
        // is offered here without being listed twice.
        const ALL: [EmbeddingKind; WeightKind::ALL.len() + 1] = {
            let mut all = [EmbeddingKind::Tied; WeightKind::ALL.len() + 1];
            let mut i = 0;
            while i < WeightKind::ALL.len() {
                all[i] = EmbeddingKind::Own(WeightKind::ALL[i]);
                i += 1;
            }
            all
        };
        &ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            EmbeddingKind::Tied => Some(clap::builder::PossibleValue::new("tied").help("share the output projection")),
            EmbeddingKind::Own(k) => k.to_possible_value(),
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
    #[arg(long, value_enum, default_value_t = WeightKind::Dense)]
    pub kind: WeightKind,
    /// Compression factor of the LSTM gate weights (≥ 1).
    #[arg(long, default_value_t = 1.0)]
    pub cf: f64,
    /// Kind of the output projection.
    #[arg(long, value_enum, default_value_t = WeightKind::Dense)]
    pub output_kind: WeightKind,
    /// Compression factor of the output projection (≥ 1).
    #[arg(long, default_value_t = 1.0)]
    pub output_cf: f64,
    /// Kind of the input embedding, or `tied` to share the output projection.
    #[arg(long, value_enum, default_value = "dense")]
    pub embedding_kind: EmbeddingKind,
    /// Store gate weights as separate `W_ih` and `W_hh` instead of one `[W_ih | W_hh]`.
    #[arg(long)]
    pub split_gates: bool,
    /// A character-level vocabulary instead of a word-level one.
    #[arg(long)]
    pub char: bool,
    /// Storage precision of the weight values.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
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
    if !args.force && args.out.exists() {
        bail!("`{}` exists; pass --force to replace it", args.out.display());
    }
    let spec = RandomSpec {
        layers: args.layers,
        hidden: args.hidden,
        vocab: args.vocab,
        embedding_dim: args.embedding_dim,
        kind: args.kind,
        cf: args.cf,
        output_kind: args.output_kind,
        output_cf: args.output_cf,
        embedding_kind: match args.embedding_kind {
            EmbeddingKind::Tied => None,
            EmbeddingKind::Own(k) => Some(k),
        },
        fused: !args.split_gates,
        tokenizer: if args.char { TokenizerKind::Char } else { TokenizerKind::Word },
        dtype: ValueType::from(args.dtype),
        accounting: if args.count_indices { Accounting::ValuesAndIndices } else { Accounting::Values },
        seed: args.seed,
    };
    let model = random_model(&spec).context("cannot build the model")?;
    let bytes = model.to_bytes().context("cannot serialise the model")?;
    write_atomically(&args.out, Overwrite::forced(args.force), &bytes)?;
    let info = model.info();
    println!(
        "wrote {}: {} bytes, {} LSTM layers of {}, vocab {}, {} LSTM weights at CF {:.2}, untrained",
        args.out.display(),
        thousands(bytes.len() as u64),
        args.layers,
        args.hidden,
        info.vocab,
        args.kind,
        info.lstm_cf
    );
    Ok(())
}
