//! Reading a model file: every tensor and config field validated before a model is built.

use std::collections::{HashMap, HashSet};

use super::config::{names, Config, EmbeddingSpec, WeightSpec, FORMAT_NAME, FORMAT_VERSION};
use super::container::{Container, Dtype, Tensor};
use super::json::Fault;
use super::{le, parse, MAX_ELEMENTS};

use crate::error::{config_err, Dims, Error, Result};
use crate::lstm::{Gates, LstmLayer};
use crate::matrix::{checked, dense_bounds, dequantise, dequantise4, normal_or_zero, unpack4, Q_MAX};
use crate::matrix::{Csr, Dense, DenseI8, Doped, Hmd, Kron, LowRank, Matrix, ValueType, Weight, WeightKind};
use crate::model::{Embedding, Model, MAX_DIM, MAX_LAYERS};
use crate::tokenizer::Tokenizer;

pub(super) fn read(bytes: &[u8]) -> Result<Model> {
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

/// Columns from the gap bytes of [`col_gaps`] along valid `row_ptr`, or why they do not
/// make `row_ptr`'s entries within `cols` columns (where, by row and byte).
pub(super) fn columns_from_gaps(bytes: &[u8], row_ptr: &[u32], cols: usize) -> std::result::Result<Vec<u32>, String> {
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

    /// Reads an f32 or f16 tensor (the dtype the config declares, when it declares one), an
    /// f32 subnormal as 0 (f16's subnormals are normal f32 numbers).
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
                t.data.chunks_exact(4).map(|b| normal_or_zero(f32::from_le_bytes(le(b)))).collect()
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
