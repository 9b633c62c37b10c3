//! The model file: a safetensors container whose metadata holds the config (see `docs/format.md`).
//!
//! Reading validates everything before any arithmetic: header size, container
//! layout, config, every tensor's presence, dtype, shape and values, CSR
//! invariants, and finally the model's shapes as a whole (`read`). Writing (`write`) gives
//! the smallest encoding of each weight (narrow indices, gaps, row lengths, f16 scales)
//! and counts a file's bytes without writing it. What both need, the config of a model,
//! lives here.

mod config;
mod container;
mod json;
mod parse;
mod read;
mod write;

pub use config::{names, Config, EmbeddingSpec, LayerSpec, TokenizerSpec, WeightSpec, FORMAT_NAME, FORMAT_VERSION};
pub use container::MAX_HEADER_BYTES;
pub use parse::{MAX_PROVENANCE_VALUES, MAX_SIZE, MAX_VOCAB};
pub use write::{bias_bytes, weight_bytes};

use crate::error::Result;
use crate::lstm::Gates;
use crate::matrix::{Csr, MatVec, Matrix, Weight};
use crate::model::{Embedding, Model};

/// Largest number of elements in one (materialised or virtual) weight matrix.
pub const MAX_ELEMENTS: u64 = 1 << 32;

impl Model {
    /// Reads and validates a model file (see `docs/format.md`): every defect is an
    /// [`Error`] that names the tensor or field at fault.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        read::read(bytes)
    }
    /// Writes the model file; [`Model::from_bytes`] reads it back to the same model.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        write::write(self)
    }
    /// The config that describes this model in a file.
    pub fn config(&self) -> Config {
        config_of(self)
    }
    /// Bytes of the tensors this model writes (file size minus header).
    pub fn tensor_bytes(&self) -> usize {
        write::tensor_bytes(self)
    }
}

fn config_of(model: &Model) -> Config {
    let tok = model.tokenizer();
    Config {
        architecture: "lstm-lm".into(),
        tokenizer: TokenizerSpec {
            kind: tok.kind(),
            unk: tok.token(tok.unk()).unwrap_or_default().to_string(),
            eos: tok.eos().and_then(|e| tok.token(e)).map(str::to_string),
            tokens: tok.tokens().to_vec(),
        },
        embedding: match model.embedding() {
            Embedding::Tied => EmbeddingSpec::Tied,
            Embedding::Own(w) => EmbeddingSpec::Own(spec_of(w)),
        },
        layers: model
            .layers()
            .iter()
            .map(|l| {
                let (w, w_ih, w_hh) = match &l.gates {
                    Gates::Fused(w) => (Some(spec_of(w)), None, None),
                    Gates::Split { ih, hh } => (None, Some(spec_of(ih)), Some(spec_of(hh))),
                };
                LayerSpec { input: l.input, hidden: l.hidden, w, w_ih, w_hh }
            })
            .collect(),
        output: spec_of(model.output()),
        provenance: model.provenance().clone(),
    }
}

fn sparse_part(m: &Matrix) -> Option<&Csr> {
    match m {
        Matrix::Doped(d) => Some(d.s()),
        Matrix::Sparse(s) => Some(s),
        _ => None,
    }
}

impl From<&Weight> for WeightSpec {
    fn from(w: &Weight) -> WeightSpec {
        spec_of(w)
    }
}

fn spec_of(w: &Weight) -> WeightSpec {
    let m = &w.matrix;
    let mut spec = WeightSpec {
        kind: m.kind(),
        rows: m.rows(),
        cols: m.cols(),
        dtype: w.dtype,
        a: None,
        b: None,
        rank: None,
        dense_rows: None,
        nnz: None,
    };
    let base = match m {
        Matrix::Doped(d) => d.base(),
        m => m,
    };
    match base {
        Matrix::Kron(k) => {
            spec.a = Some([k.a().rows(), k.a().cols()]);
            spec.b = Some([k.b().rows(), k.b().cols()]);
        }
        Matrix::LowRank(l) => spec.rank = Some(l.rank()),
        Matrix::Hmd(h) => {
            spec.dense_rows = Some(h.dense_rows());
            spec.rank = Some(h.rank());
        }
        _ => {}
    }
    spec.nnz = sparse_part(m).map(|s| s.nnz());
    spec
}

/// `N` bytes of a `chunks_exact(N)` item as an array, for `from_le_bytes`. Not
/// `try_into().expect(..)`, whose failure path prints its error through `Debug` (see
/// `checked`), nor `copy_from_slice`, a `memcpy` call per value at this crate's
/// opt-level: twice the load time of a model.
#[inline(always)]
fn le<const N: usize>(bytes: &[u8]) -> [u8; N] {
    bytes.try_into().unwrap_or_else(|_| unreachable!("chunks of N bytes"))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::container::Dtype;
    use super::read::columns_from_gaps;
    use super::write::{col_gaps, col_index};
    use super::*;

    #[test]
    fn column_gaps_escape_long_gaps_and_decode_back() {
        let s = Csr::new(3, 1000, vec![0, 3, 3, 4], vec![3, 258, 600, 999], vec![1.0; 4]).unwrap();
        let bytes = col_gaps(&s);
        assert_eq!(bytes, [3, 255, 0, 255, 87, 255, 255, 255, 234]);
        assert_eq!(columns_from_gaps(&bytes, s.row_ptr(), 1000), Ok(s.col_idx().to_vec()));
        // Written as gaps only where that is smaller: here 9 bytes against 8 of U16.
        assert_eq!(col_index(&s).0, names::SPARSE_COL_IDX);
        let short = Csr::new(2, 400, vec![0, 3, 4], vec![3, 258, 300, 399], vec![1.0; 4]).unwrap();
        assert_eq!(col_index(&short), (names::SPARSE_COL_GAP, Dtype::U8, vec![3, 255, 0, 42, 255, 144]));
        assert_eq!(
            columns_from_gaps(&bytes, s.row_ptr(), 999),
            Err("the gaps of row 2 reach column 999 at byte 8, beyond the 999 columns".into())
        );
        assert_eq!(
            columns_from_gaps(&bytes[..6], s.row_ptr(), 1000),
            Err("the gaps end in row 2 at its entry 0 of 1".into())
        );
        assert_eq!(
            columns_from_gaps(&[&bytes[..], &[7]].concat(), s.row_ptr(), 1000),
            Err("extra bytes after the last row's gaps: 1".into())
        );
    }
}
