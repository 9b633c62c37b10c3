//! The JSON config stored in the safetensors header, and the tensor-name schema.

use serde::{Deserialize, Serialize};

use crate::model::ValueType;
use crate::tokenizer::TokenizerKind;

/// Value of the `format` metadata key.
pub const FORMAT_NAME: &str = "dkp-lstm";
/// The format version this runtime reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// The whole model description, stored as JSON under the `config` metadata key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Always `lstm-lm`.
    pub architecture: String,
    /// Tokenizer and vocabulary.
    pub tokenizer: TokenizerSpec,
    /// The input embedding (`vocab × E`), or `{"kind": "tied"}`.
    pub embedding: WeightSpec,
    /// LSTM layers, bottom first.
    pub layers: Vec<LayerSpec>,
    /// The output projection (`vocab × H_last`).
    pub output: WeightSpec,
    /// Free-form: how the model was made and how well it does.
    #[serde(default)]
    pub provenance: serde_json::Map<String, serde_json::Value>,
}

/// Tokenizer and vocabulary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenizerSpec {
    /// `word` or `char`.
    pub kind: TokenizerKind,
    /// The unknown token, which must be in `tokens`.
    pub unk: String,
    /// The end-of-sentence token (word tokenizers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eos: Option<String>,
    /// The vocabulary; a token's id is its index.
    pub tokens: Vec<String>,
}

/// One LSTM layer: either fused gates `w` or split `w_ih` and `w_hh`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Input size.
    pub input: usize,
    /// Hidden size.
    pub hidden: usize,
    /// Fused `4H × (I+H)` gate weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w: Option<WeightSpec>,
    /// Split `4H × I` input weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_ih: Option<WeightSpec>,
    /// Split `4H × H` recurrent weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_hh: Option<WeightSpec>,
}

/// One weight matrix's kind and shapes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightSpec {
    /// `dense`, `kp`, `dkp`, `lowrank`, `dlowrank`, `sparse`, or `tied` (embedding only).
    pub kind: String,
    /// Rows of the full matrix.
    #[serde(default)]
    pub rows: usize,
    /// Columns of the full matrix.
    #[serde(default)]
    pub cols: usize,
    /// Storage precision of the values (`F32` or `F16`); CSR indices are U16, I32 or I64
    /// (the writer uses U16 where the columns allow it, I32 otherwise).
    #[serde(default)]
    pub dtype: ValueType,
    /// Shape `[m1, n1]` of the Kronecker factor A (`kp`, `dkp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a: Option<[usize; 2]>,
    /// Shape `[m2, n2]` of the Kronecker factor B (`kp`, `dkp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<[usize; 2]>,
    /// Rank of a low-rank matrix (`lowrank`, `dlowrank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    /// Stored non-zeros of the sparse part (`sparse`, `dkp`, `dlowrank`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    /// Low-rank left factor.
    pub const LOW_RANK_U: &str = "u";
    /// Low-rank right factor.
    pub const LOW_RANK_V: &str = "v";
    /// Values of the sparse part.
    pub const SPARSE_VALUES: &str = "s.values";
    /// Column indices of the sparse part.
    pub const SPARSE_COL_IDX: &str = "s.col_idx";
    /// Row pointers of the sparse part.
    pub const SPARSE_ROW_PTR: &str = "s.row_ptr";

    /// `prefix.suffix`.
    pub fn join(prefix: &str, suffix: &str) -> String {
        format!("{prefix}.{suffix}")
    }
}
