//! The config, read from its JSON text: typed fields, bounded sizes, the vocabulary and
//! the provenance, every refusal naming the field (`layers[1].w.kind`).
//!
//! Unknown fields are refused, optional ones may be `null`, and nothing is built that
//! the config does not keep: sizes are bounded while read, the vocabulary is capped
//! before it grows, and the free-form provenance has a budget of values.

use super::config::{Config, EmbeddingSpec, LayerSpec, TokenizerSpec, WeightSpec};
use super::json::{Fault, Json, Kind, Path};
use crate::matrix::{ValueType, WeightKind};
use crate::tokenizer::TokenizerKind;
use crate::Provenance;

/// Largest vocabulary a file may hold (the largest word vocabularies in use have a few
/// hundred thousand entries).
pub const MAX_VOCAB: usize = 1 << 20;

/// Most JSON values (objects, arrays, strings, numbers, …) the provenance may hold. It
/// is free-form, held as `serde_json` values whose objects cost a B-tree node of ~630
/// bytes from as little as 7 bytes of JSON; this bound keeps that under 1 MB (the
/// trainer writes about 80 values).
pub const MAX_PROVENANCE_VALUES: usize = 1024;

/// Largest size (side, rank, count) a config may give: sizes must fit 32 bits on every
/// platform, so that the same file gives the same message everywhere.
pub const MAX_SIZE: u64 = u32::MAX as u64;

type Result<T> = std::result::Result<T, Fault>;

/// Reads a config; a fault at path `.` concerns the whole text (a missing top-level field).
pub fn config(text: &str) -> Result<Config> {
    let mut j = Json::new(text);
    let root = Path::Root;
    let mut f = Fields::<6>::new(&root, ["architecture", "tokenizer", "embedding", "layers", "output", "provenance"]);
    let (mut architecture, mut tokenizer, mut embedding, mut layers, mut output) = (None, None, None, None, None);
    let mut provenance = Provenance::default();
    j.object(&root, |j, key| {
        let at = Path::Field(&root, key);
        match f.field(key)? {
            0 => architecture = Some(j.string(&at)?),
            1 => tokenizer = Some(tokenizer_spec(j, &at)?),
            2 => embedding = Some(embedding_spec(j, &at)?),
            3 => layers = Some(list(j, &at, layer_spec)?),
            4 => output = Some(weight_spec(j, &at)?),
            _ => provenance = provenance_object(j, &at)?,
        }
        Ok(())
    })?;
    j.end()?;
    Ok(Config {
        architecture: f.required(architecture, 0)?,
        tokenizer: f.required(tokenizer, 1)?,
        embedding: f.required(embedding, 2)?,
        layers: f.required(layers, 3)?,
        output: f.required(output, 4)?,
        provenance,
    })
}

/// The fields of one object: which are allowed, which were seen.
struct Fields<'p, const N: usize> {
    at: &'p Path<'p>,
    names: [&'static str; N],
    seen: [bool; N],
}

impl<'p, const N: usize> Fields<'p, N> {
    fn new(at: &'p Path<'p>, names: [&'static str; N]) -> Self {
        Fields { at, names, seen: [false; N] }
    }

    /// The index of field `key`; an unknown or repeated field is a fault.
    fn field(&mut self, key: &str) -> Result<usize> {
        let Some(i) = self.names.iter().position(|&n| n == key) else {
            let expected = self.names.map(|n| format!("`{n}`")).join(", ");
            return Err(self.at.fault(format!("unknown field `{key}`, expected one of {expected}")));
        };
        if std::mem::replace(&mut self.seen[i], true) {
            return Err(self.at.fault(format!("duplicate field `{key}`")));
        }
        Ok(i)
    }

    fn required<T>(&self, v: Option<T>, i: usize) -> Result<T> {
        v.ok_or_else(|| self.at.fault(format!("missing field `{}`", self.names[i])))
    }
}

/// An array read element by element.
fn list<T>(j: &mut Json, at: &Path, mut read: impl FnMut(&mut Json, &Path) -> Result<T>) -> Result<Vec<T>> {
    let mut v = vec![];
    j.array(at, |j, i| {
        v.push(read(j, &Path::Index(at, i))?);
        Ok(())
    })?;
    Ok(v)
}

/// `null` or a value read by `read`.
fn optional<T>(j: &mut Json, read: impl FnOnce(&mut Json) -> Result<T>) -> Result<Option<T>> {
    if j.null()? {
        Ok(None)
    } else {
        read(j).map(Some)
    }
}

fn size(j: &mut Json, at: &Path) -> Result<usize> {
    Ok(j.integer(at, MAX_SIZE)? as usize)
}

/// `[m, n]`; a side beyond [`MAX_SIZE`] is reported at the field, as a size is.
fn shape(j: &mut Json, at: &Path) -> Result<[usize; 2]> {
    let mut sides = Vec::with_capacity(2);
    j.array(at, |j, i| {
        if i == 2 {
            return Err(at.fault("expected [rows, cols], found more than two numbers"));
        }
        sides.push(j.integer(&Path::Index(at, i), u64::MAX)?);
        Ok(())
    })?;
    let [m, n] = sides[..] else {
        return Err(at.fault(format!("expected [rows, cols], found {} numbers", sides.len())));
    };
    for v in [m, n] {
        if v > MAX_SIZE {
            return Err(at.fault(format!("{v} exceeds {MAX_SIZE}, the largest size a model file may give")));
        }
    }
    Ok([m as usize, n as usize])
}

/// A string that must be one of `names`, mapped to its value.
fn one_of<T: Copy>(j: &mut Json, at: &Path, names: &[(&str, T)]) -> Result<T> {
    let s = j.string(at)?;
    match names.iter().find(|(n, _)| *n == s) {
        Some(&(_, v)) => Ok(v),
        None => {
            let expected: Vec<String> = names.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(at.fault(format!("unknown variant `{s}`, expected one of {}", expected.join(", "))))
        }
    }
}

fn tokenizer_spec(j: &mut Json, at: &Path) -> Result<TokenizerSpec> {
    let mut f = Fields::<4>::new(at, ["kind", "unk", "eos", "tokens"]);
    let (mut kind, mut unk, mut eos, mut tokens) = (None, None, None, None);
    j.object(at, |j, key| {
        let at = Path::Field(at, key);
        match f.field(key)? {
            0 => kind = Some(one_of(j, &at, &[("word", TokenizerKind::Word), ("char", TokenizerKind::Char)])?),
            1 => unk = Some(j.string(&at)?),
            2 => eos = optional(j, |j| j.string(&at))?,
            _ => tokens = Some(token_list(j, &at)?),
        }
        Ok(())
    })?;
    Ok(TokenizerSpec { kind: f.required(kind, 0)?, unk: f.required(unk, 1)?, eos, tokens: f.required(tokens, 3)? })
}

/// `tokens`: an array of strings, or one string of tokens separated by single spaces
/// (what the writer uses when no token holds a space: 1 byte per token instead of 5,
/// about 40 KB of a 10 000-word header). Either way capped at [`MAX_VOCAB`] while read.
fn token_list(j: &mut Json, at: &Path) -> Result<Vec<String>> {
    let too_many = || at.fault(format!("more than {MAX_VOCAB} tokens"));
    if j.peek()? == Kind::String {
        let joined = j.string(at)?;
        if joined.split(' ').nth(MAX_VOCAB).is_some() {
            return Err(too_many());
        }
        return Ok(joined.split(' ').map(str::to_string).collect());
    }
    let mut v = Vec::new();
    j.array(at, |j, i| {
        if v.len() == MAX_VOCAB {
            return Err(too_many());
        }
        v.push(j.string(&Path::Index(at, i))?);
        Ok(())
    })?;
    Ok(v)
}

fn layer_spec(j: &mut Json, at: &Path) -> Result<LayerSpec> {
    let mut f = Fields::<5>::new(at, ["input", "hidden", "w", "w_ih", "w_hh"]);
    let (mut input, mut hidden, mut w, mut w_ih, mut w_hh) = (None, None, None, None, None);
    j.object(at, |j, key| {
        let at = Path::Field(at, key);
        match f.field(key)? {
            0 => input = Some(size(j, &at)?),
            1 => hidden = Some(size(j, &at)?),
            2 => w = optional(j, |j| weight_spec(j, &at))?,
            3 => w_ih = optional(j, |j| weight_spec(j, &at))?,
            _ => w_hh = optional(j, |j| weight_spec(j, &at))?,
        }
        Ok(())
    })?;
    Ok(LayerSpec { input: f.required(input, 0)?, hidden: f.required(hidden, 1)?, w, w_ih, w_hh })
}

/// A weight spec whose kind is a weight kind.
fn weight_spec(j: &mut Json, at: &Path) -> Result<WeightSpec> {
    spec(j, at, |j, at| {
        let name = j.string(at)?;
        name.parse::<WeightKind>().map_err(|e| at.fault(e.to_string()))
    })
}

/// The embedding: `{"kind": "tied"}` or a weight spec.
fn embedding_spec(j: &mut Json, at: &Path) -> Result<EmbeddingSpec> {
    let raw = spec(j, at, |j, at| match j.string(at)?.as_str() {
        "tied" => Ok(None),
        name => name.parse::<WeightKind>().map(Some).map_err(|e| at.fault(e.to_string())),
    })?;
    let WeightSpec { kind, rows, cols, dtype, a, b, rank, dense_rows, nnz } = raw;
    match kind {
        Some(kind) => Ok(EmbeddingSpec::Own(WeightSpec { kind, rows, cols, dtype, a, b, rank, dense_rows, nnz })),
        // Files of the first writers also carry `rows`, `cols` and `dtype` here (zero and
        // F32); a shape, rank or count is a mistake.
        None if (a, b, rank, dense_rows, nnz) == (None, None, None, None, None) => Ok(EmbeddingSpec::Tied),
        None => Err(at.fault("a tied embedding has no shapes, rank or nnz")),
    }
}

/// The fields of a weight spec, its kind read by `kind`.
fn spec<K>(j: &mut Json, at: &Path, mut kind: impl FnMut(&mut Json, &Path) -> Result<K>) -> Result<WeightSpec<K>> {
    let names = ["kind", "rows", "cols", "dtype", "a", "b", "rank", "dense_rows", "nnz"];
    let mut f = Fields::<9>::new(at, names);
    let mut k = None;
    let mut s = WeightSpec {
        kind: (),
        rows: 0,
        cols: 0,
        dtype: ValueType::F32,
        a: None,
        b: None,
        rank: None,
        dense_rows: None,
        nnz: None,
    };
    let dtypes = [("F32", ValueType::F32), ("F16", ValueType::F16), ("I8", ValueType::I8), ("I4", ValueType::I4)];
    j.object(at, |j, key| {
        let at = Path::Field(at, key);
        match f.field(key)? {
            0 => k = Some(kind(j, &at)?),
            1 => s.rows = size(j, &at)?,
            2 => s.cols = size(j, &at)?,
            3 => s.dtype = one_of(j, &at, &dtypes)?,
            4 => s.a = optional(j, |j| shape(j, &at))?,
            5 => s.b = optional(j, |j| shape(j, &at))?,
            6 => s.rank = optional(j, |j| size(j, &at))?,
            7 => s.dense_rows = optional(j, |j| size(j, &at))?,
            _ => s.nnz = optional(j, |j| size(j, &at))?,
        }
        Ok(())
    })?;
    let WeightSpec { rows, cols, dtype, a, b, rank, dense_rows, nnz, .. } = s;
    Ok(WeightSpec { kind: f.required(k, 0)?, rows, cols, dtype, a, b, rank, dense_rows, nnz })
}

/// The provenance object's text, checked within [`MAX_PROVENANCE_VALUES`].
fn provenance_object(j: &mut Json, at: &Path) -> Result<Provenance> {
    let text = j.raw_value(at, MAX_PROVENANCE_VALUES)?;
    if !text.starts_with('{') {
        return Err(at.fault("expected an object"));
    }
    Ok(Provenance::from_checked(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::{random_model, RandomSpec};
    use serde_json::{json, Value};

    fn data(path: &str, reason: &str) -> Fault {
        Fault::Data { path: path.into(), reason: reason.into() }
    }

    /// The config of a small model, as JSON to edit.
    fn base(kind: WeightKind) -> Value {
        let spec = RandomSpec { kind, cf: 4.0, hidden: 8, vocab: 20, fused: false, ..RandomSpec::default() };
        serde_json::to_value(random_model(&spec).unwrap().config()).unwrap()
    }

    #[test]
    fn reads_back_what_the_writer_writes() {
        for kind in WeightKind::ALL {
            let spec =
                RandomSpec { kind, cf: 4.0, hidden: 8, vocab: 20, embedding_kind: None, ..RandomSpec::default() };
            let written = random_model(&spec).unwrap().config();
            assert_eq!(config(&serde_json::to_string(&written).unwrap()).unwrap(), written, "{kind}");
        }
    }

    #[test]
    fn refusals_name_the_field() {
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut c = base(WeightKind::Dkp);
            f(&mut c);
            config(&c.to_string()).unwrap_err()
        };
        assert_eq!(
            edit(&|c| c["layers"][0]["w_ih"]["dropout"] = json!(0.5)),
            data(
                "layers[0].w_ih",
                "unknown field `dropout`, expected one of `kind`, `rows`, `cols`, `dtype`, `a`, `b`, `rank`, `dense_rows`, `nnz`"
            )
        );
        assert_eq!(
            edit(&|c| c["layers"][1]["w_hh"]["a"] = json!([2, 3, 4])),
            data("layers[1].w_hh.a", "expected [rows, cols], found more than two numbers")
        );
        assert_eq!(
            edit(&|c| c["layers"][1]["w_hh"]["a"] = json!([2])),
            data("layers[1].w_hh.a", "expected [rows, cols], found 1 numbers")
        );
        assert_eq!(
            edit(&|c| c["tokenizer"]["kind"] = json!("bpe")),
            data("tokenizer.kind", "unknown variant `bpe`, expected one of `word`, `char`")
        );
        assert_eq!(
            edit(&|c| c["output"]["dtype"] = json!("F64")),
            data("output.dtype", "unknown variant `F64`, expected one of `F32`, `F16`, `I8`, `I4`")
        );
        assert_eq!(
            edit(&|c| drop(c["layers"][0].as_object_mut().unwrap().remove("hidden"))),
            data("layers[0]", "missing field `hidden`")
        );
        assert_eq!(edit(&|c| drop(c.as_object_mut().unwrap().remove("output"))), data(".", "missing field `output`"));
        assert_eq!(
            edit(&|c| c["embedding"] = json!({"kind": "tied", "nnz": 3})),
            data("embedding", "a tied embedding has no shapes, rank or nnz")
        );
        assert_eq!(edit(&|c| c["provenance"] = json!([1])), data("provenance", "expected an object"));
        let many: Vec<u32> = (0..MAX_PROVENANCE_VALUES as u32).collect();
        assert_eq!(
            edit(&|c| c["provenance"]["many"] = json!(many)),
            data(
                &format!("provenance.many[{}]", MAX_PROVENANCE_VALUES - 2),
                &format!("holds more than {MAX_PROVENANCE_VALUES} values")
            )
        );
        // A key given twice: serde_json would keep the last, the reader refuses both.
        let text = base(WeightKind::Dense).to_string().replacen(
            "\"architecture\"",
            "\"architecture\":\"x\",\"architecture\"",
            1,
        );
        assert_eq!(config(&text).unwrap_err(), data(".", "duplicate field `architecture`"));
    }

    #[test]
    fn the_vocabulary_is_one_string_or_an_array() {
        let mut c = base(WeightKind::Dense);
        let joined = c["tokenizer"]["tokens"].as_str().expect("a word vocabulary is written as one string").to_string();
        let words: Vec<String> = joined.split(' ').map(str::to_string).collect();
        assert_eq!(words.len(), 20);
        assert_eq!(config(&c.to_string()).unwrap().tokenizer.tokens, words);
        c["tokenizer"]["tokens"] = json!(words);
        assert_eq!(config(&c.to_string()).unwrap().tokenizer.tokens, words, "the array form reads the same");
        // A token holding a space (a char vocabulary) keeps the writer to the array form.
        let mut spec = config(&c.to_string()).unwrap();
        spec.tokenizer.tokens[3] = "a b".into();
        let text = serde_json::to_value(&spec).unwrap();
        assert_eq!(text["tokenizer"]["tokens"][3], "a b");
        assert_eq!(config(&text.to_string()).unwrap(), spec);
        // The split keeps empty pieces, which the tokenizer then refuses by index.
        c["tokenizer"]["tokens"] = json!("a  b");
        assert_eq!(config(&c.to_string()).unwrap().tokenizer.tokens, ["a", "", "b"]);
        c["tokenizer"]["tokens"] = json!(" ".repeat(MAX_VOCAB));
        assert_eq!(
            config(&c.to_string()).unwrap_err(),
            data("tokenizer.tokens", &format!("more than {MAX_VOCAB} tokens"))
        );
        c["tokenizer"]["tokens"] = json!(7);
        assert!(matches!(config(&c.to_string()).unwrap_err(), Fault::Data { path, .. } if path == "tokenizer.tokens"));
    }

    #[test]
    fn optional_fields_may_be_null_and_defaults_apply() {
        let mut c = base(WeightKind::Dense);
        c["tokenizer"]["eos"] = json!(null);
        c["layers"][0]["w"] = json!(null);
        c["output"].as_object_mut().unwrap().remove("dtype");
        c.as_object_mut().unwrap().remove("provenance");
        let read = config(&c.to_string()).unwrap();
        assert_eq!((read.tokenizer.eos, read.layers[0].w.is_none()), (None, true));
        assert_eq!((read.output.dtype, read.provenance.json()), (ValueType::F32, "{}"));
    }
}
