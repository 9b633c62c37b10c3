//! The JSON config stored in the safetensors header, and the tensor-name schema.
//!
//! Written through serde; read by `parse`, which bounds what an untrusted file may make.

use serde::Serialize;

use crate::matrix::{ValueType, WeightKind};
use crate::tokenizer::TokenizerKind;
use crate::Provenance;

/// Value of the `format` metadata key.
pub const FORMAT_NAME: &str = "dkp-lstm";
/// The format version this runtime reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The whole model description, stored as JSON under the `config` metadata key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Config {
    /// Always `lstm-lm`.
    pub architecture: String,
    /// Tokenizer and vocabulary.
    pub tokenizer: TokenizerSpec,
    /// The input embedding (`vocab × E`), or `{"kind": "tied"}`.
    pub embedding: EmbeddingSpec,
    /// LSTM layers, bottom first.
    pub layers: Vec<LayerSpec>,
    /// The output projection (`vocab × H_last`).
    pub output: WeightSpec,
    /// Free-form: how the model was made and how well it does.
    pub provenance: Provenance,
}

/// Tokenizer and vocabulary.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenizerSpec {
    /// `word` or `char`.
    pub kind: TokenizerKind,
    /// The unknown token, which must be in `tokens`.
    pub unk: String,
    /// The end-of-sentence token (word tokenizers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eos: Option<String>,
    /// The vocabulary; a token's id is its index. At most [`MAX_VOCAB`](crate::format::MAX_VOCAB) entries.
    #[serde(serialize_with = "tokens_compact")]
    pub tokens: Vec<String>,
}

/// Writes the vocabulary as one string of tokens separated by single spaces when that is
/// lossless (no token empty or holding a space: a word vocabulary, whose tokens come from
/// splitting on whitespace), else as an array. The config is itself a string in the
/// header, so each array element costs its quotes twice over, escaped.
fn tokens_compact<S: serde::Serializer>(tokens: &[String], s: S) -> Result<S::Ok, S::Error> {
    if !tokens.is_empty() && tokens.iter().all(|t| !t.is_empty() && !t.contains(' ')) {
        s.serialize_str(&tokens.join(" "))
    } else {
        serde::Serialize::serialize(tokens, s)
    }
}

/// One LSTM layer: either fused gates `w` or split `w_ih` and `w_hh`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LayerSpec {
    /// Input size.
    pub input: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Fused `4H × (I+H)` gate weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w: Option<WeightSpec>,
    /// Split `4H × I` input weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w_ih: Option<WeightSpec>,
    /// Split `4H × H` recurrent weights.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub w_hh: Option<WeightSpec>,
}

/// The input embedding: a weight of its own, or the output projection's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbeddingSpec {
    /// `{"kind": "tied"}`: no tensors; the embedding is the output projection.
    Tied,
    /// A `vocab × E` weight.
    Own(WeightSpec),
}

impl Serialize for EmbeddingSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            EmbeddingSpec::Tied => serde_json::json!({ "kind": "tied" }).serialize(s),
            EmbeddingSpec::Own(w) => w.serialize(s),
        }
    }
}

/// One weight matrix's kind and shapes (`K`: how its kind is read; the embedding's may
/// also be `tied`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WeightSpec<K = WeightKind> {
    /// The parameterisation.
    pub kind: K,
    /// Rows of the full matrix.
    pub rows: usize,
    /// Columns of the full matrix.
    pub cols: usize,
    /// Storage precision of the values (`F32`, `F16`, `I8` with an `.absmax` tensor of row
    /// scales beside each values tensor, or `I4`, packed two a byte in a U8 tensor, with a
    /// `.scale` tensor of row scales); CSR indices are U8, U16, I32 or
    /// I64 (the writer uses the narrowest of U8 and U16 that the columns allow, I32 otherwise).
    pub dtype: ValueType,
    /// Shape `[m1, n1]` of the Kronecker factor A (`kp`, `dkp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<[usize; 2]>,
    /// Shape `[m2, n2]` of the Kronecker factor B (`kp`, `dkp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<[usize; 2]>,
    /// Rank of a low-rank matrix or block (`lowrank`, `dlowrank`, `hmd`, `dhmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Rows of the dense block, the first rows of W (`hmd`, `dhmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dense_rows: Option<usize>,
    /// Stored non-zeros of the sparse part (`sparse`, `dkp`, `dlowrank`, `dhmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nnz: Option<usize>,
}

/// Tensor names, shared by the reader, the writer and the trainer's exporter.
pub mod names {
    /// Prefix of the embedding matrix.
    pub const EMBEDDING: &str = "embedding";
    /// Prefix of the output projection.
    pub const OUTPUT: &str = "output";
    /// The output bias.
    pub const OUTPUT_BIAS: &str = "output.bias";

    /// Prefix of a layer's weight (`w`, `w_ih` or `w_hh`).
    pub fn layer_weight(layer: usize, which: &str) -> String {
        format!("layers.{layer}.{which}")
    }
    /// A layer's gate bias.
    pub fn layer_bias(layer: usize) -> String {
        format!("layers.{layer}.bias")
    }
    /// Suffixes under a weight prefix.
    pub const DENSE: &str = "weight";
    /// Kronecker factor A.
    pub const KRON_A: &str = "a";
    /// Kronecker factor B.
    pub const KRON_B: &str = "b";
    /// Low-rank left factor (also of an HMD's low-rank block).
    pub const LOW_RANK_U: &str = "u";
    /// Low-rank right factor (also of an HMD's low-rank block).
    pub const LOW_RANK_V: &str = "v";
    /// The dense block (first rows) of an HMD.
    pub const HMD_DENSE: &str = "d";
    /// Values of the sparse part.
    pub const SPARSE_VALUES: &str = "s.values";
    /// Column indices of the sparse part.
    pub const SPARSE_COL_IDX: &str = "s.col_idx";
    /// Column gaps within rows of the sparse part, the alternative to its column indices.
    pub const SPARSE_COL_GAP: &str = "s.col_gap";
    /// Row pointers of the sparse part.
    pub const SPARSE_ROW_PTR: &str = "s.row_ptr";
    /// Row lengths of the sparse part, the alternative to its row pointers.
    pub const SPARSE_ROW_LEN: &str = "s.row_len";

    /// The row absmaxes that go with the `I8` values tensor `values`.
    pub fn absmax(values: &str) -> String {
        format!("{values}.absmax")
    }

    /// The row scales that go with the `I4` values tensor `values`.
    pub fn scale(values: &str) -> String {
        format!("{values}.scale")
    }

    /// `prefix.suffix`.
    pub fn join(prefix: &str, suffix: &str) -> String {
        format!("{prefix}.{suffix}")
    }
}
