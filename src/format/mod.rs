//! The model file: a safetensors container whose metadata holds the config (see `docs/format.md`).
//!
//! Reading validates everything before any arithmetic: header size, container
//! layout, config, every tensor's presence, dtype, shape and values, CSR
//! invariants, and finally the model's shapes as a whole.

mod config;
mod container;
mod json;
mod parse;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

pub use config::{names, Config, EmbeddingSpec, LayerSpec, TokenizerSpec, WeightSpec, FORMAT_NAME, FORMAT_VERSION};
pub use container::MAX_HEADER_BYTES;
use container::{Container, Dtype, Tensor};
use json::Fault;
pub use parse::{MAX_PROVENANCE_VALUES, MAX_SIZE, MAX_VOCAB};

use crate::error::{config_err, Dims, Error, Result};
use crate::lstm::{Gates, LstmLayer};
use crate::matrix::LowRank;
use crate::matrix::{absmaxes, checked, dense_bounds, dequantise, fits_f16, quantise, Csr, Dense, DenseI8, Doped, Hmd};
use crate::matrix::{dequantise4, pack4, quantise4, scales4, unpack4, Kron, MatVec, Matrix, Quantised, Q_MAX};
use crate::matrix::{ValueType, Weight, WeightKind};
use crate::model::{Embedding, Model, MAX_DIM, MAX_LAYERS};
use crate::tokenizer::Tokenizer;

/// Largest number of elements in one (materialised or virtual) weight matrix.
pub const MAX_ELEMENTS: u64 = 1 << 32;

impl Model {
    /// Reads and validates a model file (see `docs/format.md`): every defect is an
    /// [`Error`] that names the tensor or field at fault.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        read(bytes)
    }
    /// Writes the model file; [`Model::from_bytes`] reads it back to the same model.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        write(self)
    }
    /// The config that describes this model in a file.
    pub fn config(&self) -> Config {
        config_of(self)
    }
    /// Bytes of the tensors this model writes (file size minus header).
    pub fn tensor_bytes(&self) -> usize {
        tensor_bytes(self)
    }
}

fn read(bytes: &[u8]) -> Result<Model> {
    let st = Container::read(bytes)?;
    let config = read_config(st.metadata.as_ref())?;
    let mut reader = Reader { st: &st, used: HashSet::new() };
    let model = reader.model(config)?;
    // The first in name order, so that a file gives the same error every time.
    if let Some(name) = st.names().filter(|n| !reader.used.contains(*n)).min() {
        return Err(Error::UnexpectedTensor { name: name.to_string() });
    }
    Ok(model)
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

fn tensor_bytes(model: &Model) -> usize {
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

fn write(model: &Model) -> Result<Vec<u8>> {
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
fn col_index(s: &Csr) -> (&'static str, Dtype, Vec<u32>) {
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
fn col_gaps(s: &Csr) -> Vec<u8> {
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

/// Columns from the gap bytes of [`col_gaps`] along valid `row_ptr`, or why they do not
/// make `row_ptr`'s entries within `cols` columns (where, by row and byte).
fn columns_from_gaps(bytes: &[u8], row_ptr: &[u32], cols: usize) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(*row_ptr.last().unwrap_or(&0) as usize);
    let mut at = 0;
    for (r, b) in row_ptr.windows(2).enumerate() {
        let mut col = 0u64;
        for k in b[0]..b[1] {
            loop {
                let Some(&g) = bytes.get(at) else {
                    return Err(format!("the gaps end in row {r} at its entry {} of {}", k - b[0], b[1] - b[0]));
                };
                col += u64::from(g);
                at += 1;
                if g < 255 {
                    break;
                }
            }
            if col >= cols as u64 {
                return Err(format!(
                    "the gaps of row {r} reach column {col} at byte {}, beyond the {cols} columns",
                    at - 1
                ));
            }
            out.push(col as u32);
        }
    }
    if at < bytes.len() {
        return Err(format!("extra bytes after the last row's gaps: {}", bytes.len() - at));
    }
    Ok(out)
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

/// Row pointers from row lengths, which must add up to `nnz` (≤ u32::MAX, as every size
/// in a config is, so no running sum overflows).
fn row_pointers(lengths: &[u32], nnz: usize) -> std::result::Result<Vec<u32>, String> {
    let total: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
    if total != nnz as u64 {
        return Err(format!("the row lengths add up to {total}, but there are {nnz} values"));
    }
    let mut at = 0u32;
    Ok(std::iter::once(0)
        .chain(lengths.iter().map(|&l| {
            at += l;
            at
        }))
        .collect())
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

fn read_config(meta: Option<&HashMap<String, String>>) -> Result<Config> {
    let bad = |reason: &str| Error::BadMetadata { reason: reason.into() };
    let meta = meta.ok_or_else(|| bad("the file has no `__metadata__`; it is not a dkp-lstm model"))?;
    match meta.get("format") {
        Some(f) if f == FORMAT_NAME => {}
        Some(f) => return Err(bad(&format!("`format` is `{f}`, expected `{FORMAT_NAME}`"))),
        None => return Err(bad("no `format` key; this safetensors file is not a dkp-lstm model")),
    }
    let version = meta.get("format_version").ok_or_else(|| bad("no `format_version` key"))?;
    if version.trim() != FORMAT_VERSION.to_string() {
        return Err(Error::UnsupportedVersion { found: version.clone(), supported: FORMAT_VERSION });
    }
    let json = meta.get("config").ok_or_else(|| bad("no `config` key"))?;
    // A wrong value is reported at its field (`layers[1].w.kind`); malformed JSON and
    // a missing top-level field concern the config as a whole.
    let config = parse::config(json).map_err(|fault| match fault {
        Fault::Data { path, reason } if path != "." => config_err(path, reason),
        Fault::Data { reason, .. } => bad(&format!("config JSON: {reason}")),
        Fault::Syntax(m) => bad(&format!("config JSON: {m}")),
    })?;
    if config.architecture != "lstm-lm" {
        return Err(config_err(
            "architecture",
            format!("`{}` is not supported (expected `lstm-lm`)", config.architecture),
        ));
    }
    Ok(config)
}

struct Reader<'a, 'd> {
    st: &'a Container<'d>,
    used: HashSet<String>,
}

impl<'a, 'd> Reader<'a, 'd> {
    fn model(&mut self, c: Config) -> Result<Model> {
        // Checked against the config before any tensor is read, so that a vocabulary
        // edit is reported as such rather than as a bias of the wrong shape, and before
        // the tokenizer's index is built, which costs more than the list itself.
        let vocab = c.tokenizer.tokens.len();
        if let EmbeddingSpec::Own(e) = &c.embedding {
            if e.rows != vocab {
                return Err(Error::VocabMismatch { vocab, rows: e.rows, matrix: "embedding" });
            }
        }
        if c.output.rows != vocab {
            return Err(Error::VocabMismatch { vocab, rows: c.output.rows, matrix: "output" });
        }
        let t = c.tokenizer;
        let tokenizer = Tokenizer::new(t.kind, t.tokens, &t.unk, t.eos.as_deref())?;
        let embedding = match &c.embedding {
            EmbeddingSpec::Tied => Embedding::Tied,
            EmbeddingSpec::Own(e) => Embedding::Own(self.weight(names::EMBEDDING, e)?),
        };
        // Before allocating per layer: the header alone may list millions of layers.
        if c.layers.len() > MAX_LAYERS {
            return Err(Error::TooLarge {
                what: "layer count".into(),
                value: c.layers.len() as u64,
                max: MAX_LAYERS as u64,
            });
        }
        let mut layers = Vec::with_capacity(c.layers.len());
        for (i, l) in c.layers.iter().enumerate() {
            if l.hidden == 0 || l.hidden > MAX_DIM || l.input > MAX_DIM {
                return Err(config_err(format!("layers[{i}]"), format!("sizes must lie in 1..={MAX_DIM}")));
            }
            let gates = match (&l.w, &l.w_ih, &l.w_hh) {
                (Some(w), None, None) => Gates::Fused(self.weight(&names::layer_weight(i, "w"), w)?),
                (None, Some(ih), Some(hh)) => Gates::Split {
                    ih: self.weight(&names::layer_weight(i, "w_ih"), ih)?,
                    hh: self.weight(&names::layer_weight(i, "w_hh"), hh)?,
                },
                _ => return Err(config_err(format!("layers[{i}]"), "give either `w` or both `w_ih` and `w_hh`")),
            };
            let bias = self.values(&names::layer_bias(i), &[4 * l.hidden])?;
            layers.push(LstmLayer { input: l.input, hidden: l.hidden, gates, bias });
        }
        let output = self.weight(names::OUTPUT, &c.output)?;
        let output_bias = self.values(names::OUTPUT_BIAS, &[tokenizer.len()])?;
        Model::new(tokenizer, embedding, layers, output, output_bias, c.provenance)
    }

    fn weight(&mut self, prefix: &str, spec: &WeightSpec) -> Result<Weight> {
        let field = |f: &str| format!("{prefix}.{f}");
        let (rows, cols) = (spec.rows, spec.cols);
        for (what, v) in [("rows", rows), ("cols", cols)] {
            if v == 0 || v > MAX_DIM {
                return Err(config_err(field(what), format!("{v} is outside 1..={MAX_DIM}")));
            }
        }
        fn need<T>(prefix: &str, kind: &str, name: &str, v: Option<T>) -> Result<T> {
            v.ok_or_else(|| config_err(format!("{prefix}.{name}"), format!("required for kind `{kind}`")))
        }
        let need_shape = |name: &str, v| need(prefix, spec.kind.name(), name, v);
        let need_count = |name: &str, v| need(prefix, spec.kind.name(), name, v);
        let kron = |this: &mut Self| -> Result<Matrix> {
            let (a, b) = (need_shape("a", spec.a)?, need_shape("b", spec.b)?);
            if a[0].checked_mul(b[0]) != Some(rows) || a[1].checked_mul(b[1]) != Some(cols) {
                return Err(config_err(
                    field("a"),
                    format!("factors {} and {} do not make a {rows}x{cols} matrix", Dims(&a), Dims(&b)),
                ));
            }
            let a = this.dense(&names::join(prefix, names::KRON_A), a[0], a[1], spec.dtype)?;
            let b = this.dense(&names::join(prefix, names::KRON_B), b[0], b[1], spec.dtype)?;
            Ok(Matrix::Kron(Kron::new(a, b).map_err(|r| config_err(prefix, r))?))
        };
        // The rank of U·V with `low_rows` rows: the whole matrix, or an HMD's lower block.
        let rank_within = |low_rows: usize| -> Result<usize> {
            let r = need_count("rank", spec.rank)?;
            if r == 0 || r > low_rows.min(cols) {
                return Err(config_err(field("rank"), format!("{r} is outside 1..={}", low_rows.min(cols))));
            }
            Ok(r)
        };
        let low_rank = |this: &mut Self, low_rows: usize, r: usize| -> Result<LowRank> {
            let u = this.dense(&names::join(prefix, names::LOW_RANK_U), low_rows, r, spec.dtype)?;
            let v = this.dense(&names::join(prefix, names::LOW_RANK_V), r, cols, spec.dtype)?;
            LowRank::new(u, v).map_err(|r| config_err(prefix, r))
        };
        let hmd = |this: &mut Self| -> Result<Matrix> {
            // At least one row is left to the low-rank block; `dense_rows = 0` is plain U·V.
            let d = need_count("dense_rows", spec.dense_rows)?;
            if d >= rows {
                return Err(config_err(field("dense_rows"), format!("{d} is outside 0..={}", rows - 1)));
            }
            let r = rank_within(rows - d)?;
            let top = this.dense(&names::join(prefix, names::HMD_DENSE), d, cols, spec.dtype)?;
            let low = low_rank(this, rows - d, r)?;
            Ok(Matrix::Hmd(Hmd::new(top, low).map_err(|r| config_err(prefix, r))?))
        };
        let sparse = |this: &mut Self| -> Result<Csr> {
            let nnz = need_count("nnz", spec.nnz)?;
            if nnz as u64 > rows as u64 * cols as u64 {
                return Err(config_err(field("nnz"), format!("{nnz} exceeds {rows}x{cols}")));
            }
            // Values are read first, as for every other kind; int8 ones are scaled once the
            // row pointers are known.
            enum Stored {
                Float(Vec<f32>),
                Int8(Vec<i8>),
                Int4(Vec<i8>),
            }
            let values_name = names::join(prefix, names::SPARSE_VALUES);
            let stored = match spec.dtype {
                ValueType::I8 => Stored::Int8(this.int8(&values_name, &[nnz])?),
                ValueType::I4 => Stored::Int4(this.int4(&values_name, nnz)?),
                dtype => Stored::Float(this.typed_values(&values_name, &[nnz], Some(dtype))?),
            };
            // Column indices, or gaps within rows where the file has those instead (with
            // both, the gaps are left unread and reported as an unexpected tensor).
            enum Columns<'b> {
                Indices(Vec<u32>),
                Gaps(&'b [u8]),
            }
            let (idx_name, gap_name) =
                (names::join(prefix, names::SPARSE_COL_IDX), names::join(prefix, names::SPARSE_COL_GAP));
            let columns = if this.st.tensor(&idx_name).is_none() && this.st.tensor(&gap_name).is_some() {
                Columns::Gaps(this.gap_bytes(&gap_name, nnz)?)
            } else {
                Columns::Indices(this.indices(&idx_name, nnz)?)
            };
            // Row pointers, or row lengths where the file has those instead (with both,
            // the lengths are left unread and reported as an unexpected tensor).
            let (ptr_name, len_name) =
                (names::join(prefix, names::SPARSE_ROW_PTR), names::join(prefix, names::SPARSE_ROW_LEN));
            let row_ptr = if this.st.tensor(&ptr_name).is_none() && this.st.tensor(&len_name).is_some() {
                let lengths = this.indices(&len_name, rows)?;
                row_pointers(&lengths, nnz).map_err(|reason| Error::InvalidSparse { name: len_name, reason })?
            } else {
                this.indices(&ptr_name, rows + 1)?
            };
            // Rows of quantised values need valid row pointers; if they are not, the values
            // are left unscaled for `Csr::new` to report the pointers precisely.
            let bounds: Vec<usize> = row_ptr.iter().map(|&p| p as usize).collect();
            let valid =
                bounds.first() == Some(&0) && bounds.last() == Some(&nnz) && bounds.windows(2).all(|w| w[0] <= w[1]);
            let (bounds, unscaled) = if valid { (bounds, None) } else { (vec![0, nnz], Some(vec![1.0])) };
            // Gaps become columns along valid rows; along invalid ones, zeros stand in for
            // them, for `Csr::new` to report the row pointers.
            let col_idx = match columns {
                Columns::Indices(col_idx) => col_idx,
                Columns::Gaps(bytes) if valid => columns_from_gaps(bytes, &row_ptr, cols)
                    .map_err(|reason| Error::InvalidSparse { name: gap_name, reason })?,
                Columns::Gaps(_) => vec![0; nnz],
            };
            let values = match stored {
                Stored::Float(values) => values,
                Stored::Int8(q) => {
                    let absmax = this.absmax(&values_name, rows)?;
                    dequantise(&q, unscaled.as_ref().unwrap_or(&absmax), &bounds)
                }
                Stored::Int4(q) => {
                    let scale = this.scale(&values_name, rows)?;
                    dequantise4(&q, unscaled.as_ref().unwrap_or(&scale), &bounds)
                }
            };
            Csr::new(rows, cols, row_ptr, col_idx, values)
                .map_err(|reason| Error::InvalidSparse { name: prefix.into(), reason })
        };
        if rows as u64 * cols as u64 > MAX_ELEMENTS {
            return Err(Error::TooLarge {
                what: format!("matrix `{prefix}`"),
                value: rows as u64 * cols as u64,
                max: MAX_ELEMENTS,
            });
        }
        let dope = |base: Matrix, s: Csr| Doped::new(base, s).map(Matrix::Doped).map_err(|r| config_err(prefix, r));
        let matrix = match spec.kind {
            WeightKind::Dense if spec.dtype == ValueType::I8 => {
                let name = names::join(prefix, names::DENSE);
                let q = self.int8(&name, &[rows, cols])?;
                let absmax = self.absmax(&name, rows)?;
                Matrix::DenseI8(checked(DenseI8::new(rows, cols, q, absmax)))
            }
            WeightKind::Dense => {
                Matrix::Dense(self.dense(&names::join(prefix, names::DENSE), rows, cols, spec.dtype)?)
            }
            WeightKind::Kp => kron(self)?,
            WeightKind::LowRank => Matrix::LowRank(low_rank(self, rows, rank_within(rows)?)?),
            WeightKind::Hmd => hmd(self)?,
            WeightKind::Sparse => Matrix::Sparse(sparse(self)?),
            WeightKind::Dkp => {
                let base = kron(self)?;
                dope(base, sparse(self)?)?
            }
            WeightKind::DLowRank => {
                let base = Matrix::LowRank(low_rank(self, rows, rank_within(rows)?)?);
                dope(base, sparse(self)?)?
            }
            WeightKind::DHmd => {
                let base = hmd(self)?;
                dope(base, sparse(self)?)?
            }
        };
        Ok(Weight { matrix, dtype: spec.dtype })
    }

    /// A factor: f32 in memory, whatever its dtype in the file.
    fn dense(&mut self, name: &str, rows: usize, cols: usize, dtype: ValueType) -> Result<Dense> {
        let data = match dtype {
            ValueType::I8 => {
                let q = self.int8(name, &[rows, cols])?;
                dequantise(&q, &self.absmax(name, rows)?, &dense_bounds(rows, cols))
            }
            ValueType::I4 => {
                let q = self.int4(name, rows * cols)?;
                dequantise4(&q, &self.scale(name, rows)?, &dense_bounds(rows, cols))
            }
            dtype => self.typed_values(name, &[rows, cols], Some(dtype))?,
        };
        Ok(checked(Dense::new(rows, cols, data)))
    }

    /// The integers of an `I8` tensor, each in `−127..=127`.
    fn int8(&mut self, name: &str, shape: &[usize]) -> Result<Vec<i8>> {
        let t = self.tensor(name, shape)?;
        if t.dtype != Dtype::I8 {
            return Err(Error::WrongDtype { name: name.into(), found: t.dtype.name().into(), expected: "I8" });
        }
        let q: Vec<i8> = t.data.iter().map(|&b| b as i8).collect();
        if let Some(index) = q.iter().position(|&v| v < -Q_MAX) {
            return Err(Error::InvalidQuantised {
                name: name.into(),
                index,
                reason: "-128 is outside the symmetric range -127..=127",
            });
        }
        Ok(q)
    }

    /// The `n` integers of an `I4` tensor (U8, two a byte), each in `−7..=7`.
    fn int4(&mut self, name: &str, n: usize) -> Result<Vec<i8>> {
        let t = self.tensor(name, &[n.div_ceil(2)])?;
        if t.dtype != Dtype::U8 {
            return Err(Error::WrongDtype { name: name.into(), found: t.dtype.name().into(), expected: "U8" });
        }
        unpack4(t.data, n).map_err(|(index, reason)| Error::InvalidQuantised { name: name.into(), index, reason })
    }

    /// The row absmaxes of the `I8` tensor `values`: F16 or F32, finite, ≥ 0.
    fn absmax(&mut self, values: &str, rows: usize) -> Result<Vec<f32>> {
        self.row_scales(names::absmax(values), rows, "a row's absmax must not be negative")
    }

    /// The row scales of the `I4` tensor `values`: F16 or F32, finite, ≥ 0.
    fn scale(&mut self, values: &str, rows: usize) -> Result<Vec<f32>> {
        self.row_scales(names::scale(values), rows, "a row's scale must not be negative")
    }

    fn row_scales(&mut self, name: String, rows: usize, negative: &'static str) -> Result<Vec<f32>> {
        let scale = self.typed_values(&name, &[rows], None)?;
        if let Some(index) = scale.iter().position(|&m| m < 0.0) {
            return Err(Error::InvalidQuantised { name, index, reason: negative });
        }
        Ok(scale)
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        self.typed_values(name, shape, None)
    }

    /// Reads an f32 or f16 tensor (the dtype the config declares, when it declares one).
    fn typed_values(&mut self, name: &str, shape: &[usize], dtype: Option<ValueType>) -> Result<Vec<f32>> {
        let t = self.tensor(name, shape)?;
        let wrong = || Error::WrongDtype {
            name: name.into(),
            found: t.dtype.name().into(),
            expected: match dtype {
                Some(ValueType::F16) => "F16",
                Some(ValueType::F32) => "F32",
                Some(ValueType::I8) => "I8",
                Some(ValueType::I4) => "U8",
                None => "F32 or F16",
            },
        };
        let v: Vec<f32> = match (t.dtype, dtype) {
            (Dtype::F32, None | Some(ValueType::F32)) => {
                t.data.chunks_exact(4).map(|b| f32::from_le_bytes(le(b))).collect()
            }
            (Dtype::F16, None | Some(ValueType::F16)) => {
                t.data.chunks_exact(2).map(|b| half::f16::from_le_bytes(le(b)).to_f32()).collect()
            }
            _ => return Err(wrong()),
        };
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite { name: name.into(), index });
        }
        Ok(v)
    }

    fn indices(&mut self, name: &str, len: usize) -> Result<Vec<u32>> {
        let t = self.tensor(name, &[len])?;
        let v: Vec<i64> = match t.dtype {
            Dtype::I32 => t.data.chunks_exact(4).map(|b| i32::from_le_bytes(le(b)) as i64).collect(),
            Dtype::I64 => t.data.chunks_exact(8).map(|b| i64::from_le_bytes(le(b))).collect(),
            Dtype::U16 => t.data.chunks_exact(2).map(|b| u16::from_le_bytes(le(b)) as i64).collect(),
            Dtype::U8 => t.data.iter().map(|&b| b as i64).collect(),
            d => {
                return Err(Error::WrongDtype {
                    name: name.into(),
                    found: d.name().into(),
                    expected: "U8, U16, I32 or I64",
                })
            }
        };
        v.into_iter()
            .enumerate()
            .map(|(i, x)| {
                u32::try_from(x).map_err(|_| Error::InvalidSparse {
                    name: name.into(),
                    reason: format!("index {x} at position {i} is negative or too large"),
                })
            })
            .collect()
    }

    /// The bytes of a sparse part's column gaps: a U8 vector of at least `nnz` of them
    /// (one per entry, and one more per 255 of a longer gap).
    fn gap_bytes(&mut self, name: &str, nnz: usize) -> Result<&'d [u8]> {
        let t = self.st.tensor(name).ok_or_else(|| Error::MissingTensor { name: name.into() })?;
        if t.dtype != Dtype::U8 {
            return Err(Error::WrongDtype { name: name.into(), found: t.dtype.name().into(), expected: "U8" });
        }
        if t.shape.len() != 1 || t.shape[0] < nnz {
            return Err(Error::InvalidSparse {
                name: name.into(),
                reason: format!("shape {}: the gaps of {nnz} entries take one byte or more each", Dims(&t.shape)),
            });
        }
        self.used.insert(name.to_string());
        Ok(t.data)
    }

    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<&'a Tensor<'d>> {
        let t = self.st.tensor(name).ok_or_else(|| Error::MissingTensor { name: name.into() })?;
        if t.shape != shape {
            return Err(Error::ShapeMismatch { name: name.into(), expected: shape.to_vec(), found: t.shape.clone() });
        }
        self.used.insert(name.to_string());
        Ok(t)
    }
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

    use super::*;

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
