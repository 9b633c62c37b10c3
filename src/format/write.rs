//! Writing a model file, and counting its bytes without writing it.

use std::borrow::Cow;
use std::collections::HashMap;

use super::config::{names, FORMAT_NAME, FORMAT_VERSION};
use super::container::Dtype;
use super::{config_of, sparse_part};

use crate::error::{Error, Result};
use crate::matrix::{absmaxes, dense_bounds, dequantise, fits_f16, pack4, quantise, quantise4, scales4, Quantised};
use crate::matrix::{Csr, Dense, DenseI8, MatVec, Matrix, ValueType, Weight};
use crate::model::Model;

pub(super) fn tensor_bytes(model: &Model) -> usize {
    let weights: usize = model.weights().iter().map(|(_, w)| weight_bytes(w)).sum();
    weights + bias_bytes(model)
}

/// Bytes of the bias tensors in the file.
pub fn bias_bytes(model: &Model) -> usize {
    let biases: usize = model.layers().iter().map(|l| l.bias.len()).sum::<usize>() + model.output_bias().len();
    bias_type(model).bits() / 8 * biases
}

/// How the writer stores the biases: F16 when every weight is stored below f32 and every
/// bias is exactly an f16 (what `Model::store_as` makes them), so that writing never
/// rounds; else F32.
fn bias_type(model: &Model) -> ValueType {
    let compact = model.weights().iter().all(|(_, w)| w.dtype != ValueType::F32)
        && model.layers().iter().all(|l| fits_f16(&l.bias))
        && fits_f16(model.output_bias());
    if compact {
        ValueType::F16
    } else {
        ValueType::F32
    }
}

/// A tensor as the writer assembles it: name, dtype, shape, little-endian bytes.
type Written = (String, Dtype, Vec<usize>, Vec<u8>);

pub(super) fn write(model: &Model) -> Result<Vec<u8>> {
    let mut tensors: Vec<Written> = vec![];
    for (prefix, w) in model.weights() {
        push_matrix(&mut tensors, &prefix, w);
    }
    let bias = bias_type(model);
    for (i, l) in model.layers().iter().enumerate() {
        tensors.push(values_tensor(names::layer_bias(i), &l.bias, vec![l.bias.len()], bias));
    }
    let ob = model.output_bias();
    tensors.push(values_tensor(names::OUTPUT_BIAS.into(), ob, vec![ob.len()], bias));
    let config = serde_json::to_string(&config_of(model)).expect("configs serialize");
    let meta = HashMap::from([
        ("format".to_string(), FORMAT_NAME.to_string()),
        ("format_version".to_string(), FORMAT_VERSION.to_string()),
        ("config".to_string(), config),
    ]);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            let view = safetensors::tensor::TensorView::new(st_dtype(*d), s.clone(), b);
            (n.clone(), view.expect("sizes match by construction"))
        })
        .collect();
    let file =
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::NotSafetensors { reason: e.to_string() })?;
    Ok(sort_header(file))
}

/// safetensors writes `__metadata__` in `HashMap` order, which differs from run to run;
/// rewriting the header with sorted keys makes a model's file bytes deterministic.
/// A `Value` sorts them at every level: its objects are `BTreeMap`s (serde_json's
/// `preserve_order` feature is off; `tests/roundtrip.rs` checks the bytes). Going
/// through `Value`, which the provenance needs anyway, rather than a map of maps
/// keeps 8 KB of map code out of the WebAssembly module.
fn sort_header(file: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().expect("safetensors writes an 8-byte length")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).expect("safetensors writes JSON");
    let mut text = serde_json::to_vec(&header).expect("JSON values serialize");
    text.resize(text.len().next_multiple_of(8), b' ');
    [&(text.len() as u64).to_le_bytes()[..], &text, &file[8 + n..]].concat()
}

/// Bytes a weight occupies in a file, counted without writing it: `info()` in the
/// browser needs the count, and the writer (quantisation, byte encoding) stays out of
/// the WebAssembly module.
pub fn weight_bytes(w: &Weight) -> usize {
    // Row scales take 2 bytes each when every one is exactly an f16, else 4.
    let scales = |s: &[f32]| s.len() * if fits_f16(s) { 2 } else { 4 };
    let values: usize = match w.dtype {
        ValueType::F32 | ValueType::F16 => w.matrix.storage().values * w.dtype.bits() / 8,
        ValueType::I8 | ValueType::I4 => value_tensors(w)
            .iter()
            .map(|t| match (&t.values, w.dtype) {
                (Values::I8(d), _) => d.q().len() + scales(d.absmax()),
                (Values::F32 { data, rows }, ValueType::I8) => data.len() + scales(&absmaxes(data, &rows.bounds())),
                (Values::F32 { data, rows }, _) => data.len().div_ceil(2) + scales(&scales4(data, &rows.bounds())),
            })
            .sum(),
    };
    let index_bytes = sparse_part(&w.matrix).map_or(0, |s| {
        let (_, col_dtype, cols) = col_index(s);
        let (_, row_dtype, rows) = row_index(s);
        col_dtype.size() * cols.len() + row_dtype.size() * rows.len()
    });
    values + index_bytes
}

/// Column indices are written in the narrowest dtype that holds them: U8 up to 256
/// columns (an output layer or embedding of width ≤ 256), U16 up to 65 536 (every LSTM
/// matrix we make), I32 beyond. Next to f16 values, I32 indices would make up two thirds
/// of a sparse part's bytes; next to int8 values even U16 ones are most of them.
fn col_index_dtype(cols: usize) -> Dtype {
    match cols {
        0..=256 => Dtype::U8,
        257..=65_536 => Dtype::U16,
        _ => Dtype::I32,
    }
}

/// How the writer stores S's columns: as gaps within rows (bytes, below) where that takes
/// fewer bytes than column indices in the narrowest dtype, as it does for an LSTM matrix of
/// 400 or 1 300 columns whose rows hold a dozen to fifty entries (half the bytes of U16
/// indices); else as column indices. Returns the tensor's suffix, dtype and values.
pub(super) fn col_index(s: &Csr) -> (&'static str, Dtype, Vec<u32>) {
    let dtype = col_index_dtype(s.cols());
    let gaps = col_gaps(s);
    if gaps.len() < s.nnz() * dtype.size() {
        return (names::SPARSE_COL_GAP, Dtype::U8, gaps.into_iter().map(u32::from).collect());
    }
    (names::SPARSE_COL_IDX, dtype, s.col_idx().to_vec())
}

/// Each entry's column minus the previous one in its row (the first entry's: its column),
/// in bytes: a gap `g` is `⌊g / 255⌋` bytes of 255 followed by `g mod 255`, so that the
/// rare gap beyond a byte costs one byte more per 255 rather than a wider dtype for all.
pub(super) fn col_gaps(s: &Csr) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.nnz());
    for r in s.row_ptr().windows(2) {
        let mut prev = 0;
        for &c in &s.col_idx()[r[0] as usize..r[1] as usize] {
            let gap = c - std::mem::replace(&mut prev, c);
            out.extend(std::iter::repeat_n(255, (gap / 255) as usize));
            out.push((gap % 255) as u8);
        }
    }
    out
}

/// How the writer stores where S's rows start: as row lengths in U8 or U16 when the longest
/// row fits (a doping row holds about a dozen entries), else as I32 row pointers — one
/// byte a row instead of four, 30 KB of a 10 000-row output layer. Returns the tensor's
/// suffix, dtype and values.
fn row_index(s: &Csr) -> (&'static str, Dtype, Vec<u32>) {
    let lengths: Vec<u32> = s.row_ptr().windows(2).map(|w| w[1] - w[0]).collect();
    match lengths.iter().max().copied().unwrap_or(0) {
        0..=255 => (names::SPARSE_ROW_LEN, Dtype::U8, lengths),
        256..=65_535 => (names::SPARSE_ROW_LEN, Dtype::U16, lengths),
        _ => (names::SPARSE_ROW_PTR, Dtype::I32, s.row_ptr().to_vec()),
    }
}

/// A tensor of a weight's values as the writer lays it out: its name's suffix, its shape
/// and its values. The writer and the byte count ([`weight_bytes`]) both go by it.
struct ValueTensor<'a> {
    suffix: &'static str,
    shape: Vec<usize>,
    values: Values<'a>,
}

enum Values<'a> {
    /// Values to store in the weight's dtype, and their rows (for the row scales of `I8`
    /// and `I4`): `rows × cols` dense, or along a CSR's row pointers.
    F32 { data: Cow<'a, [f32]>, rows: Rows<'a> },
    /// A dense int8 matrix's own integers and absmaxes, stored as they are.
    I8(&'a DenseI8),
}

enum Rows<'a> {
    Dense(usize, usize),
    Csr(&'a [u32]),
}

impl Rows<'_> {
    /// Where each row starts in the values, and the end.
    fn bounds(&self) -> Vec<usize> {
        match *self {
            Rows::Dense(rows, cols) => dense_bounds(rows, cols),
            Rows::Csr(row_ptr) => row_ptr.iter().map(|&p| p as usize).collect(),
        }
    }
}

/// The value tensors of `w` in file order (a doped weight's structured part first, then
/// S's values, whose index tensors follow them in the file).
fn value_tensors(w: &Weight) -> Vec<ValueTensor<'_>> {
    fn dense<'a>(out: &mut Vec<ValueTensor<'a>>, suffix: &'static str, d: &'a Dense) {
        let (rows, cols) = (d.rows(), d.cols());
        let values = Values::F32 { data: Cow::Borrowed(d.data()), rows: Rows::Dense(rows, cols) };
        out.push(ValueTensor { suffix, shape: vec![rows, cols], values });
    }
    fn structured<'a>(out: &mut Vec<ValueTensor<'a>>, m: &'a Matrix, dtype: ValueType) {
        match m {
            Matrix::Dense(d) => dense(out, names::DENSE, d),
            Matrix::DenseI8(d) if dtype == ValueType::I8 => {
                out.push(ValueTensor { suffix: names::DENSE, shape: vec![d.rows(), d.cols()], values: Values::I8(d) })
            }
            Matrix::DenseI8(d) => {
                let (rows, cols) = (d.rows(), d.cols());
                let data = Cow::Owned(dequantise(d.q(), d.absmax(), &dense_bounds(rows, cols)));
                let values = Values::F32 { data, rows: Rows::Dense(rows, cols) };
                out.push(ValueTensor { suffix: names::DENSE, shape: vec![rows, cols], values });
            }
            Matrix::Kron(k) => {
                dense(out, names::KRON_A, k.a());
                dense(out, names::KRON_B, k.b());
            }
            Matrix::LowRank(l) => {
                dense(out, names::LOW_RANK_U, l.u());
                dense(out, names::LOW_RANK_V, l.v());
            }
            Matrix::Hmd(h) => {
                dense(out, names::HMD_DENSE, h.dense());
                dense(out, names::LOW_RANK_U, h.low_rank().u());
                dense(out, names::LOW_RANK_V, h.low_rank().v());
            }
            Matrix::Sparse(_) => {}
            Matrix::Doped(_) => unreachable!("doping does not nest"),
        }
    }
    let mut out = vec![];
    match &w.matrix {
        Matrix::Doped(d) => structured(&mut out, d.base(), w.dtype),
        m => structured(&mut out, m, w.dtype),
    }
    if let Some(s) = sparse_part(&w.matrix) {
        let values = Values::F32 { data: Cow::Borrowed(s.values()), rows: Rows::Csr(s.row_ptr()) };
        out.push(ValueTensor { suffix: names::SPARSE_VALUES, shape: vec![s.nnz()], values });
    }
    out
}

fn push_matrix(out: &mut Vec<Written>, prefix: &str, w: &Weight) {
    for t in value_tensors(w) {
        let name = names::join(prefix, t.suffix);
        match t.values {
            Values::I8(d) => push_int8(out, name, d.q(), t.shape, d.absmax()),
            Values::F32 { data, rows } => push_values(out, name, &data, t.shape, w.dtype, || rows.bounds()),
        }
    }
    if let Some(s) = sparse_part(&w.matrix) {
        let (suffix, dtype, cols) = col_index(s);
        out.push(index_tensor(names::join(prefix, suffix), &cols, dtype));
        let (suffix, dtype, rows) = row_index(s);
        out.push(index_tensor(names::join(prefix, suffix), &rows, dtype));
    }
}

/// A values tensor in `dtype`; for `I8` and `I4` quantised row by row (`bounds`, only
/// built then) and followed by its tensor of row scales.
fn push_values(
    out: &mut Vec<Written>,
    name: String,
    v: &[f32],
    shape: Vec<usize>,
    dtype: ValueType,
    bounds: impl FnOnce() -> Vec<usize>,
) {
    match dtype {
        ValueType::I8 => {
            let q = quantise(v, &bounds());
            push_int8(out, name, &q.q, shape, &q.scale);
        }
        ValueType::I4 => {
            // Packed, the tensor's shape is its byte count; the config gives the matrix's.
            let Quantised { q, scale } = quantise4(v, &bounds());
            let packed = pack4(&q);
            let scale_name = names::scale(&name);
            out.push((name, Dtype::U8, vec![packed.len()], packed));
            push_scales(out, scale_name, &scale);
        }
        _ => out.push(values_tensor(name, v, shape, dtype)),
    }
}

/// An `I8` tensor and its absmaxes, in F16 when every one is exactly an f16 (what
/// `quantise` makes wherever it can), else in F32.
fn push_int8(out: &mut Vec<Written>, name: String, q: &[i8], shape: Vec<usize>, absmax: &[f32]) {
    let absmax_name = names::absmax(&name);
    out.push((name, Dtype::I8, shape, q.iter().map(|&v| v as u8).collect()));
    push_scales(out, absmax_name, absmax);
}

/// Row scales in F16 when every one is exactly an f16, else in F32.
fn push_scales(out: &mut Vec<Written>, name: String, scale: &[f32]) {
    let dtype = if fits_f16(scale) { ValueType::F16 } else { ValueType::F32 };
    out.push(values_tensor(name, scale, vec![scale.len()], dtype));
}

/// An F32 or F16 tensor.
fn values_tensor(name: String, v: &[f32], shape: Vec<usize>, dtype: ValueType) -> Written {
    match dtype {
        ValueType::F16 => {
            (name, Dtype::F16, shape, v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect())
        }
        _ => (name, Dtype::F32, shape, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    }
}

/// `v`'s entries must fit `dtype` (U8, U16 or I32), which the callers' shapes guarantee.
fn index_tensor(name: String, v: &[u32], dtype: Dtype) -> Written {
    let bytes = match dtype {
        Dtype::U8 => v.iter().map(|&x| x as u8).collect(),
        Dtype::U16 => v.iter().flat_map(|&x| (x as u16).to_le_bytes()).collect(),
        _ => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
    };
    (name, dtype, vec![v.len()], bytes)
}

/// The `safetensors` crate's name for a dtype, for the writer.
fn st_dtype(d: Dtype) -> safetensors::Dtype {
    use safetensors::Dtype as St;
    match d {
        Dtype::BOOL => St::BOOL,
        Dtype::U8 => St::U8,
        Dtype::I8 => St::I8,
        Dtype::F8_E5M2 => St::F8_E5M2,
        Dtype::F8_E4M3 => St::F8_E4M3,
        Dtype::I16 => St::I16,
        Dtype::U16 => St::U16,
        Dtype::F16 => St::F16,
        Dtype::BF16 => St::BF16,
        Dtype::I32 => St::I32,
        Dtype::U32 => St::U32,
        Dtype::F32 => St::F32,
        Dtype::F64 => St::F64,
        Dtype::I64 => St::I64,
        Dtype::U64 => St::U64,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::matrix::{Doped, Kron};

    /// `weight_bytes` counts what the writer writes, for every dtype, with scales in F16
    /// and in F32: rows whose largest magnitude is beyond f16's range, a subnormal f16,
    /// just above the subnormals (where int4's search may pick a smaller scale) or 0.
    #[test]
    fn weight_bytes_count_what_the_writer_writes() {
        let rows = [[70_000.0, -1.0, 0.5], [1e-6, 2e-7, 0.0], [0.0; 3], [1.0, -0.25, 0.125], [7e-5, 1e-6, 1e-6]];
        let mut matrices = vec![];
        for pick in [&[3usize, 0][..], &[1, 2], &[3, 3], &[4, 2], &[0, 1, 2, 3, 4]] {
            let data: Vec<f32> = pick.iter().flat_map(|&r| rows[r]).collect();
            let d = Dense::new(pick.len(), 3, data).unwrap();
            let s = Csr::from_dense_where(&d, |r, c, _| (r + c) % 2 == 0);
            let k = Kron::new(d.clone(), Dense::new(1, 2, vec![3.0, -4e-6]).unwrap()).unwrap();
            matrices.extend([
                Matrix::Dense(d.clone()),
                Matrix::DenseI8(DenseI8::quantise(d.rows(), d.cols(), d.data())),
                Matrix::Sparse(s.clone()),
                Matrix::Doped(
                    Doped::new(
                        Matrix::Kron(k.clone()),
                        Csr::from_dense_where(
                            &Dense::new(pick.len(), 6, vec![0.5; pick.len() * 6]).unwrap(),
                            |r, c, _| r == c,
                        ),
                    )
                    .unwrap(),
                ),
            ]);
        }
        for m in matrices {
            for dtype in [ValueType::F32, ValueType::F16, ValueType::I8, ValueType::I4] {
                let w = Weight { matrix: m.clone(), dtype };
                let mut written = vec![];
                push_matrix(&mut written, "w", &w);
                let bytes: usize = written.iter().map(|t| t.3.len()).sum();
                assert_eq!(weight_bytes(&w), bytes, "{dtype:?} {:?}", m.kind());
            }
        }
    }
}
