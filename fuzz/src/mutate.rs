//! Mutations of a model file, as data — so that a finding's recipe prints, replays and
//! becomes a regression test — and the seeded generator that picks them.
//!
//! Most mutations edit one piece of a [`Doc`] (a config value, a metadata key, a tensor
//! entry's dtype, shape, offsets, name or bytes, a CSR array) and leave the rest of the
//! file well-formed; compound ones change several pieces consistently (a layer added
//! with its tensors, a weight replaced by one of another kind) so that mutants also
//! pass validation and exercise the model that comes out. Raw byte edits of the file
//! run at a lower rate.

use serde_json::{json, Value};

use crate::doc::{ByteEdit, Doc, Entry, Offsets};
use crate::rng::Rng;
use crate::seeds::Seed;

/// A float value written into a tensor, encoded in the tensor's dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Special {
    /// Not a number.
    NaN,
    /// +∞.
    Inf,
    /// −∞.
    NegInf,
    /// The dtype's largest finite value.
    Max,
    /// The dtype's most negative finite value.
    Lowest,
    /// The smallest positive subnormal.
    Tiny,
    /// −0.
    NegZero,
    /// 1e30 (infinite in f16).
    Huge,
    /// 1.
    One,
}

/// One edit of a model file. Names and pointers that no longer exist (an earlier
/// mutation removed them) make a mutation a no-op; indices and positions wrap.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// Sets the config value at a JSON pointer (any type).
    ConfigSet { path: String, value: Value },
    /// Sets the config value at a pointer to an array of `n` copies of [`item`]`(json, depth)`
    /// (strings get a distinct numeric suffix each).
    ConfigBulk { path: String, json: String, depth: usize, n: usize },
    /// Removes an object key or array element.
    ConfigRemove { path: String },
    /// Inserts a key into the object at `path` (or pushes onto an array when `key` is `-`).
    ConfigInsert { path: String, key: String, value: Value },
    /// Copies the value at `from` over `to` (`…/-` pushes onto an array).
    ConfigCopy { from: String, to: String },
    /// Swaps two values.
    ConfigSwap { a: String, b: String },
    /// Writes key `key` of the object at `path` twice.
    ConfigDupKey { path: String, key: String },
    /// A byte edit of the config text.
    ConfigText(ByteEdit),
    /// Sets a `__metadata__` value (any JSON value).
    MetaSet { key: String, value: Value },
    /// Removes a `__metadata__` key.
    MetaRemove { key: String },
    /// Writes a `__metadata__` key twice.
    MetaDupKey { key: String },
    /// Adds `n` metadata keys.
    MetaBulk { n: usize },
    /// Leaves `__metadata__` out.
    NoMetadata,
    /// Sets an entry's `dtype` value, bytes unchanged.
    TensorDtype { name: String, dtype: Value },
    /// Re-encodes an entry's numbers in another dtype (its size changes with it).
    TensorRetype { name: String, dtype: String },
    /// Sets an entry's `shape` value, bytes unchanged.
    TensorShape { name: String, shape: Value },
    /// Sets an entry's shape and resizes its bytes to fit (cut, or padded with zeros).
    TensorReshape { name: String, shape: Vec<usize> },
    /// Sets how an entry's `data_offsets` are written.
    TensorOffsets { name: String, offsets: Offsets },
    /// Renames an entry.
    TensorRename { name: String, to: String },
    /// Removes an entry and its bytes.
    TensorRemove { name: String },
    /// Appends a copy of an entry under another name, with bytes of its own.
    TensorCopy { name: String, to: String },
    /// Appends a second entry of the same name pointing at the same bytes (a key twice in the header).
    TensorAlias { name: String },
    /// Appends a zero-filled entry.
    TensorAdd { name: String, dtype: String, shape: Vec<usize> },
    /// Appends `n` empty `U8` entries.
    TensorBulk { n: usize },
    /// Adds a field to an entry.
    TensorField { name: String, key: String, value: Value },
    /// Adds a field to an entry holding an array of `n` copies of [`item`]`(json, depth)`.
    TensorFieldBulk { name: String, key: String, json: String, depth: usize, n: usize },
    /// Swaps the bytes of two entries.
    TensorSwapData { a: String, b: String },
    /// Cuts (negative) or extends (zeros) an entry's bytes, shape unchanged.
    TensorResize { name: String, delta: i64 },
    /// Moves an entry to another place in the layout (still a valid file).
    TensorMove { name: String, to: usize },
    /// Writes a special float at an element.
    ValueSet { name: String, index: usize, value: Special },
    /// Flips a bit of an entry's bytes.
    BitFlip { name: String, byte: usize, bit: u8 },
    /// Sets an element of an integer tensor (CSR arrays), wrapping to its dtype.
    IndexSet { name: String, index: usize, value: i64 },
    /// Swaps elements `index` and `index + 1` of an integer tensor.
    IndexSwap { name: String, index: usize },
    /// Sets a sparse part's `nnz` (spec at `path`) and cuts or pads its three arrays to match.
    SparseNnz { prefix: String, path: String, nnz: usize },
    /// Leaves the header unpadded (still valid).
    NoPad,
    /// A byte edit of the finished file.
    File(ByteEdit),
}

/// What a mutation that builds a large structure builds, and where: `ConfigBulk at
/// /provenance/bulk`, `TensorFieldBulk`, … (`None` for the other mutations).
pub fn amplifier_name(m: &Mutation) -> Option<String> {
    use Mutation::*;
    Some(match m {
        ConfigBulk { path, .. } => format!("ConfigBulk at {path}"),
        TensorFieldBulk { .. } => "TensorFieldBulk".into(),
        TensorBulk { .. } => "TensorBulk".into(),
        MetaBulk { .. } => "MetaBulk".into(),
        TensorShape { shape: Value::Array(a), .. } if a.len() > 64 => "a long TensorShape".into(),
        _ => return None,
    })
}

/// Applies mutations in order to a copy of the seed and writes the file.
pub fn mutant(seed: &Seed, mutations: &[Mutation]) -> Vec<u8> {
    let mut doc = seed.doc.clone();
    for m in mutations {
        m.apply(&mut doc);
    }
    doc.build()
}

fn split_pointer(path: &str) -> Option<(&str, String)> {
    let i = path.rfind('/')?;
    Some((&path[..i], path[i + 1..].replace("~1", "/").replace("~0", "~")))
}

fn remove_at(v: &mut Value, path: &str) -> Option<Value> {
    let (parent, key) = split_pointer(path)?;
    match v.pointer_mut(parent)? {
        Value::Object(m) => m.remove(&key),
        Value::Array(a) => key.parse::<usize>().ok().filter(|&i| i < a.len()).map(|i| a.remove(i)),
        _ => None,
    }
}

fn put_at(v: &mut Value, path: &str, value: Value) {
    if let Some(parent) = path.strip_suffix("/-") {
        if let Some(Value::Array(a)) = v.pointer_mut(parent) {
            a.push(value);
        }
    } else if path.is_empty() {
        *v = value;
    } else if let Some(slot) = v.pointer_mut(path) {
        *slot = value;
    }
}

/// Bytes per element of a safetensors dtype (`None` for sub-byte and unknown dtypes).
pub fn width(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ" | "F8_E5M2FNUZ" => 1,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F32" | "I32" | "U32" => 4,
        "F64" | "I64" | "U64" => 8,
        _ => return None,
    })
}

fn is_float(dtype: &str) -> bool {
    matches!(dtype, "F16" | "BF16" | "F32" | "F64")
}

/// The elements of a tensor as f64 (floats and integers).
fn floats(dtype: &str, data: &[u8]) -> Option<Vec<f64>> {
    let w = width(dtype)?;
    let ints = if is_float(dtype) { None } else { Some(ints(dtype, data)?) };
    Some(match (dtype, ints) {
        (_, Some(i)) => i.into_iter().map(|x| x as f64).collect(),
        ("F16", _) => data.chunks_exact(w).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f64()).collect(),
        ("BF16", _) => data.chunks_exact(w).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f64()).collect(),
        ("F32", _) => data.chunks_exact(w).map(|b| f32::from_le_bytes(b.try_into().expect("4")) as f64).collect(),
        _ => data.chunks_exact(w).map(|b| f64::from_le_bytes(b.try_into().expect("8"))).collect(),
    })
}

/// The elements of an integer tensor (unsigned 64-bit values wrap).
fn ints(dtype: &str, data: &[u8]) -> Option<Vec<i64>> {
    let w = width(dtype)?;
    let one = |b: &[u8]| -> i64 {
        match dtype {
            "U8" | "BOOL" => b[0] as i64,
            "I8" => b[0] as i8 as i64,
            "U16" => u16::from_le_bytes([b[0], b[1]]) as i64,
            "I16" => i16::from_le_bytes([b[0], b[1]]) as i64,
            "U32" => u32::from_le_bytes(b.try_into().expect("4")) as i64,
            "I32" => i32::from_le_bytes(b.try_into().expect("4")) as i64,
            _ => i64::from_le_bytes(b.try_into().expect("8")),
        }
    };
    if is_float(dtype) || dtype.starts_with("F8") {
        return None;
    }
    Some(data.chunks_exact(w).map(one).collect())
}

fn put_int(dtype: &str, v: i64, out: &mut Vec<u8>) {
    let w = width(dtype).unwrap_or(8);
    out.extend_from_slice(&v.to_le_bytes()[..w]);
}

fn put_float(dtype: &str, v: f64, out: &mut Vec<u8>) {
    match dtype {
        "F16" => out.extend_from_slice(&half::f16::from_f64(v).to_le_bytes()),
        "BF16" => out.extend_from_slice(&half::bf16::from_f64(v).to_le_bytes()),
        "F32" => out.extend_from_slice(&(v as f32).to_le_bytes()),
        "F64" => out.extend_from_slice(&v.to_le_bytes()),
        d if width(d) == Some(1) && d.starts_with('F') => out.push(v as i8 as u8),
        d => put_int(d, v as i64, out),
    }
}

fn special(dtype: &str, s: Special) -> f64 {
    let (max, tiny) = match dtype {
        "F16" => (65504.0, 5.960464477539063e-8),
        "BF16" => (3.3895313892515355e38, 9.183549615799121e-41),
        "F32" => (f32::MAX as f64, 1.401298464324817e-45),
        _ => (f64::MAX, 5e-324),
    };
    match s {
        Special::NaN => f64::NAN,
        Special::Inf => f64::INFINITY,
        Special::NegInf => f64::NEG_INFINITY,
        Special::Max => max,
        Special::Lowest => -max,
        Special::Tiny => tiny,
        Special::NegZero => -0.0,
        Special::Huge => 1e30,
        Special::One => 1.0,
    }
}

fn shape_of(e: &Entry) -> Vec<usize> {
    e.shape.as_array().map(|a| a.iter().map(|x| x.as_u64().unwrap_or(0) as usize).collect()).unwrap_or_default()
}

fn resize_to(e: &mut Entry, shape: &[usize]) {
    let w = e.dtype.as_str().and_then(width).unwrap_or(1);
    let n = shape.iter().try_fold(w, |a, &b| a.checked_mul(b)).unwrap_or(usize::MAX);
    // A guard against recipes that would make the fuzzer itself allocate gigabytes.
    e.data.resize(n.min(1 << 24), 0);
    e.shape = json!(shape);
}

fn with_ints(e: &mut Entry, f: impl FnOnce(&mut Vec<i64>)) {
    let Some(d) = e.dtype.as_str().map(str::to_string) else { return };
    let Some(mut v) = ints(&d, &e.data) else { return };
    f(&mut v);
    let mut out = Vec::with_capacity(e.data.len());
    for x in v {
        put_int(&d, x, &mut out);
    }
    e.data = out;
}

impl Mutation {
    /// Applies the mutation.
    pub fn apply(&self, doc: &mut Doc) {
        use Mutation::*;
        match self {
            ConfigSet { path, value } => {
                if let Some(c) = &mut doc.config {
                    put_at(c, path, value.clone());
                }
            }
            ConfigBulk { path, json, depth, n } => {
                let item = item(json, *depth);
                let items = (0..*n)
                    .map(|i| match &item {
                        Value::String(s) => Value::String(format!("{s}{i}")),
                        v => v.clone(),
                    })
                    .collect();
                if let Some(c) = &mut doc.config {
                    put_at(c, path, Value::Array(items));
                }
            }
            ConfigRemove { path } => {
                if let Some(c) = &mut doc.config {
                    remove_at(c, path);
                }
            }
            ConfigInsert { path, key, value } => match doc.config.as_mut().and_then(|c| c.pointer_mut(path)) {
                Some(Value::Object(m)) => {
                    m.insert(key.clone(), value.clone());
                }
                Some(Value::Array(a)) if key == "-" => a.push(value.clone()),
                _ => {}
            },
            ConfigCopy { from, to } => {
                if let Some(c) = &mut doc.config {
                    if let Some(v) = c.pointer(from).cloned() {
                        put_at(c, to, v);
                    }
                }
            }
            ConfigSwap { a, b } => {
                if let Some(c) = &mut doc.config {
                    if let (Some(x), Some(y)) = (c.pointer(a).cloned(), c.pointer(b).cloned()) {
                        put_at(c, a, y);
                        put_at(c, b, x);
                    }
                }
            }
            ConfigDupKey { path, key } => doc.config_dups.push((path.clone(), key.clone())),
            ConfigText(e) => doc.config_edits.push(e.clone()),
            MetaSet { key, value } => {
                if let Some(m) = &mut doc.meta {
                    match m.iter_mut().find(|(k, _)| k == key) {
                        Some(slot) => slot.1 = value.clone(),
                        None => m.push((key.clone(), value.clone())),
                    }
                    // A config set by hand is no longer rewritten from the parsed one.
                    if key == "config" {
                        doc.config = None;
                    }
                }
            }
            MetaRemove { key } => {
                if let Some(m) = &mut doc.meta {
                    m.retain(|(k, _)| k != key);
                }
            }
            MetaDupKey { key } => {
                if let Some(m) = &mut doc.meta {
                    if let Some(kv) = m.iter().find(|(k, _)| k == key).cloned() {
                        m.push(kv);
                    }
                }
            }
            MetaBulk { n } => {
                if let Some(m) = &mut doc.meta {
                    m.extend((0..*n).map(|i| (format!("k{i}"), Value::String(String::new()))));
                }
            }
            NoMetadata => doc.meta = None,
            TensorDtype { name, dtype } => {
                if let Some(e) = doc.entry_mut(name) {
                    e.dtype = dtype.clone();
                }
            }
            TensorRetype { name, dtype } => {
                if let Some(e) = doc.entry_mut(name) {
                    let from = e.dtype.as_str().unwrap_or_default().to_string();
                    let mut out = vec![];
                    if let (Some(v), Some(_)) = (floats(&from, &e.data), width(dtype)) {
                        if is_float(&from) || is_float(dtype) {
                            v.iter().for_each(|&x| put_float(dtype, x, &mut out));
                        } else {
                            ints(&from, &e.data).into_iter().flatten().for_each(|x| put_int(dtype, x, &mut out));
                        }
                        e.data = out;
                        e.dtype = Value::from(dtype.as_str());
                    }
                }
            }
            TensorShape { name, shape } => {
                if let Some(e) = doc.entry_mut(name) {
                    e.shape = shape.clone();
                }
            }
            TensorReshape { name, shape } => {
                if let Some(e) = doc.entry_mut(name) {
                    resize_to(e, shape);
                }
            }
            TensorOffsets { name, offsets } => {
                if let Some(e) = doc.entry_mut(name) {
                    if matches!(offsets, Offsets::SameAs(_)) {
                        e.data.clear();
                    }
                    e.offsets = offsets.clone();
                }
            }
            TensorRename { name, to } => {
                if let Some(e) = doc.entry_mut(name) {
                    e.name = to.clone();
                }
            }
            TensorRemove { name } => {
                if let Some(i) = doc.entries.iter().position(|e| &e.name == name) {
                    doc.entries.remove(i);
                }
            }
            TensorCopy { name, to } => {
                if let Some(e) = doc.entry(name).cloned() {
                    doc.entries.push(Entry { name: to.clone(), offsets: Offsets::Auto, ..e });
                }
            }
            TensorAlias { name } => {
                if let Some(e) = doc.entry(name).cloned() {
                    let alias = Entry { data: vec![], offsets: Offsets::SameAs(name.clone()), ..e };
                    doc.entries.push(alias);
                }
            }
            TensorAdd { name, dtype, shape } => {
                let mut e = Entry {
                    name: name.clone(),
                    dtype: Value::from(dtype.as_str()),
                    shape: json!([]),
                    data: vec![],
                    offsets: Offsets::Auto,
                    extra: vec![],
                };
                resize_to(&mut e, shape);
                doc.entries.push(e);
            }
            TensorBulk { n } => doc.entries.extend((0..*n).map(|i| Entry {
                name: format!("t{i}"),
                dtype: json!("U8"),
                shape: json!([0]),
                data: vec![],
                offsets: Offsets::Auto,
                extra: vec![],
            })),
            TensorField { name, key, value } => {
                if let Some(e) = doc.entry_mut(name) {
                    e.extra.push((key.clone(), value.clone()));
                }
            }
            TensorFieldBulk { name, key, json, depth, n } => {
                if let Some(e) = doc.entry_mut(name) {
                    e.extra.push((key.clone(), Value::Array(vec![item(json, *depth); *n])));
                }
            }
            TensorSwapData { a, b } => {
                let ia = doc.entries.iter().position(|e| &e.name == a);
                let ib = doc.entries.iter().position(|e| &e.name == b);
                if let (Some(ia), Some(ib)) = (ia, ib) {
                    let da = std::mem::take(&mut doc.entries[ia].data);
                    doc.entries[ia].data = std::mem::replace(&mut doc.entries[ib].data, da);
                }
            }
            TensorResize { name, delta } => {
                if let Some(e) = doc.entry_mut(name) {
                    let n = (e.data.len() as i64 + delta).clamp(0, 1 << 24) as usize;
                    e.data.resize(n, 0);
                }
            }
            TensorMove { name, to } => {
                if let Some(i) = doc.entries.iter().position(|e| &e.name == name) {
                    let e = doc.entries.remove(i);
                    let to = to % (doc.entries.len() + 1);
                    doc.entries.insert(to, e);
                }
            }
            ValueSet { name, index, value } => {
                if let Some(e) = doc.entry_mut(name) {
                    let d = e.dtype.as_str().unwrap_or_default().to_string();
                    if let Some(w) = width(&d) {
                        let n = e.data.len() / w;
                        if n > 0 {
                            let mut one = vec![];
                            put_float(&d, special(&d, *value), &mut one);
                            let at = index % n * w;
                            e.data[at..at + w].copy_from_slice(&one);
                        }
                    }
                }
            }
            BitFlip { name, byte, bit } => {
                if let Some(e) = doc.entry_mut(name) {
                    if !e.data.is_empty() {
                        let n = e.data.len();
                        e.data[byte % n] ^= 1 << (bit % 8);
                    }
                }
            }
            IndexSet { name, index, value } => {
                if let Some(e) = doc.entry_mut(name) {
                    with_ints(e, |v| {
                        if !v.is_empty() {
                            let n = v.len();
                            v[index % n] = *value;
                        }
                    });
                }
            }
            IndexSwap { name, index } => {
                if let Some(e) = doc.entry_mut(name) {
                    with_ints(e, |v| {
                        if v.len() >= 2 {
                            let i = index % (v.len() - 1);
                            v.swap(i, i + 1);
                        }
                    });
                }
            }
            SparseNnz { prefix, path, nnz } => {
                if let Some(c) = &mut doc.config {
                    put_at(c, &format!("{path}/nnz"), json!(nnz));
                }
                for part in ["s.values", "s.col_idx"] {
                    if let Some(e) = doc.entry_mut(&format!("{prefix}.{part}")) {
                        resize_to(e, &[*nnz]);
                    }
                }
                if let Some(e) = doc.entry_mut(&format!("{prefix}.s.row_ptr")) {
                    with_ints(e, |v| {
                        let last = v.len().saturating_sub(1);
                        for (i, x) in v.iter_mut().enumerate() {
                            *x = if i == last { *nnz as i64 } else { (*x).min(*nnz as i64) };
                        }
                    });
                }
            }
            NoPad => doc.pad = false,
            File(e) => doc.file_edits.push(e.clone()),
        }
    }
}

// ---- the generator ----

/// Kind names worth writing: every kind (`WeightKind::ALL`) and a few that are not one.
fn kind_name(rng: &mut Rng) -> &'static str {
    let all = dkp_lstm::WeightKind::ALL;
    let other = ["pruned", "tied", "Dense", "", "csr"];
    let i = rng.below(all.len() + other.len());
    all.get(i).map_or_else(|| other[i - all.len()], |k| k.name())
}
const DTYPES: [&str; 22] = [
    "F32", "F16", "BF16", "F64", "I64", "I32", "U32", "U16", "I16", "U8", "I8", "BOOL", "U64", "F8_E4M3", "F8_E5M2",
    "F8_E8M0", "F4", "F6_E2M3", "C64", "f32", "", "X",
];
const INDEX_DTYPES: [&str; 7] = ["U16", "I32", "I64", "U32", "U8", "I16", "F32"];
const FIELDS: [&str; 17] = [
    "a",
    "b",
    "rank",
    "nnz",
    "dtype",
    "rows",
    "cols",
    "w",
    "w_ih",
    "w_hh",
    "eos",
    "unk",
    "kind",
    "input",
    "hidden",
    "bogus",
    "provenance",
];

fn interesting_number(rng: &mut Rng, orig: Option<u64>) -> Value {
    let v = orig.unwrap_or(8);
    match rng.below(26) {
        0 => json!(0),
        1 => json!(1),
        2 => json!(2),
        3 => json!(v.saturating_sub(1)),
        4 => json!(v + 1),
        5 => json!(v * 2),
        6 => json!(v / 2),
        7 => json!(v * 4),
        8 => json!(-1),
        9 => json!(-(v as i64)),
        10 => json!(65535),
        11 => json!(65537),
        12 => json!(1u64 << 22),
        13 => json!((1u64 << 22) + 1),
        14 => json!(1u64 << 31),
        15 => json!(1u64 << 32),
        16 => json!((1u64 << 32) + 1),
        17 => json!(1u64 << 53),
        18 => json!(u64::MAX),
        19 => json!(i64::MIN),
        20 => json!(1.5),
        21 => json!(-0.0),
        22 => json!(1e300),
        23 => json!(v.to_string()),
        24 => json!(v * 3),
        _ => json!(rng.below(70)),
    }
}

fn any_value(rng: &mut Rng, seed: &Seed) -> Value {
    match rng.below(12) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!([]),
        3 => json!({}),
        4 => json!(""),
        5 => json!("x"),
        6 => json!([1, 2]),
        7 => json!({"kind": kind_name(rng)}),
        8 => {
            let p = rng.pick(&seed.paths);
            seed.doc.config.as_ref().and_then(|c| c.pointer(p)).cloned().unwrap_or(Value::Null)
        }
        9 => json!(kind_name(rng)),
        10 => json!(*rng.pick(&DTYPES)),
        _ => interesting_number(rng, None),
    }
}

fn token_value(rng: &mut Rng, seed: &Seed) -> Value {
    match rng.below(10) {
        0 => json!(""),
        1 => json!("x".repeat(1025)),
        2 => json!("ab"),
        3 => json!("\u{0}"),
        4 => json!(" "),
        5 => json!("<unk>"),
        6 => json!("\u{2603}"),
        7 => json!("x".repeat(1024)),
        _ => {
            let i = rng.below(seed.vocab.max(1));
            seed.doc.config.as_ref().map(|c| c["tokenizer"]["tokens"][i].clone()).unwrap_or(Value::Null)
        }
    }
}

fn byte_edit(rng: &mut Rng, file: bool) -> ByteEdit {
    let at = rng.next_u64() as usize;
    let some_bytes = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(6) {
            0 => vec![0],
            1 => b"{".to_vec(),
            2 => b"\"".to_vec(),
            3 => b",".to_vec(),
            4 => vec![0xff; 1 + rng.below(8)],
            _ => (0..1 + rng.below(16)).map(|_| rng.next_u64() as u8).collect(),
        }
    };
    match rng.below(if file { 9 } else { 7 }) {
        0 => ByteEdit::Truncate { keep: at },
        6 if !file => ByteEdit::Cut { len: 1 + rng.below(8) },
        8 => ByteEdit::Cut { len: 1 + rng.below(8) },
        1 => ByteEdit::Set { at, value: rng.next_u64() as u8 },
        2 => ByteEdit::Flip { at, bit: rng.below(8) as u8 },
        3 => ByteEdit::Insert { at, bytes: some_bytes(rng) },
        4 => ByteEdit::Delete { at, len: 1 + rng.below(16) },
        5 => ByteEdit::Extend { bytes: some_bytes(rng) },
        6 => ByteEdit::Length { value: *rng.pick(&[0, 1, 2, 7, 8, u64::MAX, 1 << 26, (1 << 26) + 1, 1 << 40]) },
        _ => ByteEdit::LengthDelta { delta: *rng.pick(&[-8, -2, -1, 1, 2, 8, 1000]) },
    }
}

/// Integer values worth writing into a CSR array of a `rows × cols` matrix with `nnz` entries.
fn index_value(rng: &mut Rng, rows: usize, cols: usize, nnz: usize) -> i64 {
    let (r, c, n) = (rows as i64, cols as i64, nnz as i64);
    *rng.pick(&[
        -1,
        0,
        1,
        c - 1,
        c,
        c + 1,
        n - 1,
        n,
        n + 1,
        r,
        65535,
        65536,
        i32::MAX as i64,
        i32::MIN as i64,
        u32::MAX as i64,
        1 << 32,
        i64::MAX,
        i64::MIN,
    ])
}

/// A seeded list of mutations of `seed`: one to four, most often one.
pub fn generate(seed: &Seed, rng: &mut Rng) -> Vec<Mutation> {
    let n = match rng.below(100) {
        0..=54 => 1,
        55..=79 => 2,
        80..=91 => 3,
        _ => 4,
    };
    let mut out = vec![];
    for _ in 0..n {
        // Amplifiers are rare: their inputs are large and slow to read.
        match rng.below(1000) {
            0..=299 => config_mutation(seed, rng, &mut out),
            300..=339 => meta_mutation(seed, rng, &mut out),
            340..=679 => tensor_mutation(seed, rng, &mut out),
            680..=849 => compound_mutation(seed, rng, &mut out),
            850..=997 => out.push(Mutation::File(byte_edit(rng, true))),
            _ => amplifier(seed, rng, &mut out),
        }
    }
    out
}

fn config_mutation(seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let path = |rng: &mut Rng| rng.pick(&seed.paths).clone();
    match rng.below(16) {
        0..=3 => {
            let (p, v) = rng.pick(&seed.numbers).clone();
            out.push(ConfigSet { path: p, value: interesting_number(rng, v.as_u64()) });
        }
        4 => {
            // A number set to another number of the config (sizes that agree by accident).
            let (p, _) = rng.pick(&seed.numbers).clone();
            let (_, v) = rng.pick(&seed.numbers).clone();
            out.push(ConfigSet { path: p, value: v });
        }
        5 => {
            // Kinds, dtypes, tokenizer kind, architecture, tokens.
            let (p, s) = rng.pick(&seed.strings).clone();
            let value = if p.ends_with("/kind") && p.starts_with("/tokenizer") {
                json!(*rng.pick(&["word", "char", "bpe", "Word"]))
            } else if p.ends_with("/kind") {
                json!(kind_name(rng))
            } else if p.ends_with("/dtype") {
                json!(*rng.pick(&DTYPES))
            } else if p.starts_with("/tokenizer") {
                token_value(rng, seed)
            } else if p == "/architecture" {
                json!(*rng.pick(&["gru-lm", "", "LSTM-LM", "lstm-lm "]))
            } else {
                json!(format!("{s}x"))
            };
            out.push(ConfigSet { path: p, value });
        }
        6 => {
            let p = path(rng);
            let value = any_value(rng, seed);
            out.push(ConfigSet { path: p, value });
        }
        7 => {
            let p = path(rng);
            if !p.is_empty() {
                out.push(ConfigRemove { path: p });
            }
        }
        8 => {
            let (p, _) = rng.pick(&seed.objects).clone();
            let key = rng.pick(&FIELDS).to_string();
            let value = any_value(rng, seed);
            out.push(ConfigInsert { path: p, key, value });
        }
        9 => {
            let (from, to) = (path(rng), path(rng));
            out.push(ConfigCopy { from, to });
        }
        10 => {
            let (a, b) = (path(rng), path(rng));
            out.push(ConfigSwap { a, b });
        }
        11 => {
            let (p, keys) = rng.pick(&seed.objects).clone();
            if !keys.is_empty() {
                let key = rng.pick(&keys).clone();
                out.push(ConfigDupKey { path: p, key });
            }
        }
        12 => out.push(ConfigText(byte_edit(rng, false))),
        13 => {
            // Vocabulary entries: duplicated, emptied, too long, several characters, removed.
            let i = rng.below(seed.vocab.max(1));
            let p = format!("/tokenizer/tokens/{i}");
            match rng.below(3) {
                0 => out.push(ConfigRemove { path: p }),
                _ => {
                    let value = token_value(rng, seed);
                    out.push(ConfigSet { path: p, value });
                }
            }
        }
        14 => match rng.below(5) {
            0 => out.push(ConfigRemove { path: "/tokenizer/eos".into() }),
            1 => out.push(ConfigSet { path: "/tokenizer/eos".into(), value: token_value(rng, seed) }),
            2 => out.push(ConfigInsert { path: "/tokenizer".into(), key: "eos".into(), value: json!("<unk>") }),
            3 => out.push(ConfigSet { path: "/tokenizer/unk".into(), value: token_value(rng, seed) }),
            _ => out.push(ConfigInsert {
                path: "/tokenizer/tokens".into(),
                key: "-".into(),
                value: token_value(rng, seed),
            }),
        },
        _ => {
            // An array element removed or duplicated (layers, tokens, factor shapes).
            let (p, len) = rng.pick(&seed.arrays).clone();
            if len > 0 {
                let i = rng.below(len);
                if rng.chance(0.5) {
                    out.push(ConfigRemove { path: format!("{p}/{i}") });
                } else {
                    out.push(ConfigCopy { from: format!("{p}/{i}"), to: format!("{p}/-") });
                }
            }
        }
    }
}

fn meta_mutation(_seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let key = rng.pick(&["format", "format_version", "config"]).to_string();
    match rng.below(9) {
        0 => out.push(MetaRemove { key }),
        1 => out.push(MetaDupKey { key }),
        2 => out.push(NoMetadata),
        3 => out.push(MetaSet { key, value: json!(1) }),
        4 => out.push(MetaSet {
            key: "format_version".into(),
            value: json!(*rng.pick(&["2", "0", " 1", "1 ", "01", "1.0", "", "+1", "\u{0}1"])),
        }),
        5 => out.push(MetaSet { key: "format".into(), value: json!(*rng.pick(&["pt", "", "DKP-LSTM", "dkp-lstm "])) }),
        6 => out.push(MetaSet {
            key: "config".into(),
            value: json!(*rng.pick(&["", "null", "[]", "{}", "{\"architecture\":\"lstm-lm\"}", "{\"a\":", "1e999"])),
        }),
        7 => out.push(MetaSet { key: rng.pick(&["extra", "", "__metadata__"]).to_string(), value: json!("x") }),
        _ => out.push(NoPad),
    }
}

fn tensor_mutation(seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let entries = &seed.doc.entries;
    let e = rng.pick(entries);
    let name = e.name.clone();
    let shape = shape_of(e);
    let elems: usize = shape.iter().product();
    match rng.below(24) {
        0 => out.push(TensorDtype { name, dtype: json!(*rng.pick(&DTYPES)) }),
        1 => out.push(TensorRetype { name, dtype: rng.pick(&DTYPES).to_string() }),
        2 | 3 => {
            let mut s: Vec<Value> = shape.iter().map(|&x| json!(x)).collect();
            match rng.below(6) {
                0 if !s.is_empty() => {
                    let i = rng.below(s.len());
                    s[i] = interesting_number(rng, Some(shape[i] as u64));
                }
                1 => s.push(json!(1)),
                2 => {
                    s.pop();
                }
                3 => s.reverse(),
                4 => s = vec![json!(elems)],
                _ => s.insert(0, json!(*rng.pick(&[0u64, 1, 2, u64::MAX, 1 << 32]))),
            }
            out.push(TensorShape { name, shape: Value::Array(s) });
        }
        4 => {
            let v = match rng.below(4) {
                0 => json!("x"),
                1 => json!([]),
                2 => json!(null),
                _ => json!([[elems]]),
            };
            out.push(TensorShape { name, shape: v });
        }
        5..=7 => {
            let len = e.data.len() as i64;
            let d = |rng: &mut Rng| *rng.pick(&[0, 1, -1, 2, -2, 4, -4, 8, -8, len, -len, 1 << 40, i64::MIN / 2]);
            let offsets = match rng.below(5) {
                0 => Offsets::Delta(d(rng), 0),
                1 => Offsets::Delta(0, d(rng)),
                2 => {
                    let x = d(rng);
                    Offsets::Delta(x, x)
                }
                3 => Offsets::Fixed(match rng.below(5) {
                    0 => json!([0, 0]),
                    1 => json!([len, 0]),
                    2 => json!([u64::MAX, u64::MAX]),
                    3 => json!([0]),
                    _ => json!("0"),
                }),
                _ => Offsets::SameAs(rng.pick(entries).name.clone()),
            };
            out.push(TensorOffsets { name, offsets });
        }
        8 => {
            let to = match rng.below(6) {
                0 => rng.pick(entries).name.clone(),
                1 => format!("{name}x"),
                2 => name[..name.len().saturating_sub(1)].to_string(),
                3 => String::new(),
                4 => "__metadata__".into(),
                _ => name.replace("layers.0", "layers.9"),
            };
            out.push(TensorRename { name, to });
        }
        9 => out.push(TensorRemove { name }),
        10 => out.push(TensorAlias { name }),
        11 => {
            let to = rng.pick(&["extra", "layers.0.w.weight", "output.a", "embedding.weight", "layers.1.bias"]);
            out.push(TensorCopy { name, to: to.to_string() });
        }
        12 => {
            let b = rng.pick(entries).name.clone();
            out.push(TensorSwapData { a: name, b });
        }
        13 => out.push(TensorResize { name, delta: *rng.pick(&[-1, 1, -2, 2, -4, 4, -8, 8, 1000]) }),
        14 => out.push(TensorMove { name, to: rng.below(entries.len() + 1) }),
        15 => out.push(TensorField {
            name,
            key: rng.pick(&["dtype", "shape", "data_offsets", "x"]).to_string(),
            value: json!(1),
        }),
        16 => {
            let key_dup = rng.pick(&["dtype", "shape"]).to_string();
            out.push(TensorField { name, key: key_dup, value: json!("F32") });
        }
        17..=19 => {
            let floats = seed.tensors_of(&["F32", "F16"]);
            let name = rng.pick(&floats).to_string();
            let value = *rng.pick(&[
                Special::NaN,
                Special::Inf,
                Special::NegInf,
                Special::Max,
                Special::Lowest,
                Special::Tiny,
                Special::NegZero,
                Special::Huge,
                Special::One,
            ]);
            out.push(ValueSet { name, index: rng.next_u64() as usize, value });
        }
        20 => out.push(BitFlip { name, byte: rng.next_u64() as usize, bit: rng.below(8) as u8 }),
        _ => csr_mutation(seed, rng, out),
    }
}

fn csr_mutation(seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let sparse: Vec<_> = seed.specs.iter().filter(|s| s.tensors.iter().any(|t| t.ends_with(".s.row_ptr"))).collect();
    if sparse.is_empty() {
        return;
    }
    let s = *rng.pick(&sparse);
    let nnz =
        seed.doc.entry(&format!("{}.s.values", s.prefix)).map_or(0, |e| shape_of(e).first().copied().unwrap_or(0));
    let array = format!("{}.{}", s.prefix, rng.pick(&["s.row_ptr", "s.col_idx", "s.values"]));
    match rng.below(6) {
        0 | 1 => out.push(IndexSet {
            name: array,
            index: rng.next_u64() as usize,
            value: index_value(rng, s.rows, s.cols, nnz),
        }),
        2 => out.push(IndexSwap { name: array, index: rng.next_u64() as usize }),
        3 => out.push(TensorRetype { name: array, dtype: rng.pick(&INDEX_DTYPES).to_string() }),
        4 => {
            let nnz = match rng.below(5) {
                0 => 0,
                1 => nnz.saturating_sub(1),
                2 => nnz + 1,
                3 => nnz / 2,
                _ => rng.below(s.rows * s.cols + 2),
            };
            out.push(SparseNnz { prefix: s.prefix.clone(), path: s.path.clone(), nnz });
        }
        _ => {
            // Shape and length of one array off by one, consistently.
            let len = seed.doc.entry(&array).map_or(0, |e| shape_of(e).first().copied().unwrap_or(0));
            let len = if rng.chance(0.5) { len + 1 } else { len.saturating_sub(1) };
            out.push(TensorReshape { name: array, shape: vec![len] });
        }
    }
}

/// Divisors of `n` (small `n`).
fn divisors(n: usize) -> Vec<usize> {
    (1..=n).filter(|&d| n.is_multiple_of(d)).collect()
}

fn compound_mutation(seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let spec = rng.pick(&seed.specs).clone();
    let last = seed.layers - 1;
    let layer_tensors = |i: usize| -> Vec<String> {
        let p = format!("layers.{i}.");
        seed.doc.entries.iter().filter(|e| e.name.starts_with(&p)).map(|e| e.name.clone()).collect()
    };
    let value_dtype = |s: &str| if s == "F16" { "F16" } else { "F32" };
    match rng.below(13) {
        0 => {
            // Tie the embedding (valid: the seeds' embedding size is the hidden size).
            if let Some(e) = seed.specs.iter().find(|s| s.prefix == "embedding") {
                out.push(ConfigSet { path: "/embedding".into(), value: json!({"kind": "tied"}) });
                out.extend(e.tensors.iter().map(|t| TensorRemove { name: t.clone() }));
            }
        }
        1 => {
            out.push(ConfigRemove { path: format!("/layers/{last}") });
            out.extend(layer_tensors(last).into_iter().map(|name| TensorRemove { name }));
        }
        2 => {
            // One more layer, a copy of the last with its tensors (valid).
            out.push(ConfigCopy { from: format!("/layers/{last}"), to: "/layers/-".into() });
            let to = format!("layers.{}.", seed.layers);
            out.extend(layer_tensors(last).into_iter().map(|name| {
                let rest = name.split_once('.').and_then(|(_, r)| r.split_once('.')).map_or("", |(_, r)| r);
                TensorCopy { name: name.clone(), to: format!("{to}{rest}") }
            }));
        }
        3 => {
            // One more token, with a zero row in a dense output and embedding (valid).
            let out_dense = seed.specs.iter().any(|s| s.prefix == "output" && s.kind == "dense");
            let emb = seed.specs.iter().find(|s| s.prefix == "embedding");
            if out_dense && emb.is_none_or(|e| e.kind == "dense") {
                let v = seed.vocab + 1;
                let token = if seed.char { "\u{2603}" } else { "zzz" };
                out.push(ConfigInsert { path: "/tokenizer/tokens".into(), key: "-".into(), value: json!(token) });
                let o = seed.specs.iter().find(|s| s.prefix == "output").expect("output");
                out.push(ConfigSet { path: "/output/rows".into(), value: json!(v) });
                out.push(TensorReshape { name: "output.weight".into(), shape: vec![v, o.cols] });
                out.push(TensorReshape { name: "output.bias".into(), shape: vec![v] });
                if let Some(e) = emb {
                    out.push(ConfigSet { path: "/embedding/rows".into(), value: json!(v) });
                    out.push(TensorReshape { name: "embedding.weight".into(), shape: vec![v, e.cols] });
                }
            }
        }
        4 => {
            // Other Kronecker factors of the same matrix (valid).
            if spec.kind == "kp" || spec.kind == "dkp" {
                let m1 = *rng.pick(&divisors(spec.rows));
                let n1 = *rng.pick(&divisors(spec.cols));
                let (m2, n2) = (spec.rows / m1, spec.cols / n1);
                let (m1, n1, m2, n2) = if rng.chance(0.2) { (m1 + 1, n1, m2, n2) } else { (m1, n1, m2, n2) };
                out.push(ConfigSet { path: format!("{}/a", spec.path), value: json!([m1, n1]) });
                out.push(ConfigSet { path: format!("{}/b", spec.path), value: json!([m2, n2]) });
                out.push(TensorReshape { name: format!("{}.a", spec.prefix), shape: vec![m1, n1] });
                out.push(TensorReshape { name: format!("{}.b", spec.prefix), shape: vec![m2, n2] });
            }
        }
        5 => {
            // Another rank (valid up to min(rows, cols)).
            if spec.kind == "lowrank" || spec.kind == "dlowrank" {
                let r = rng.below(spec.rows.min(spec.cols) + 2);
                out.push(ConfigSet { path: format!("{}/rank", spec.path), value: json!(r) });
                out.push(TensorReshape { name: format!("{}.u", spec.prefix), shape: vec![spec.rows, r] });
                out.push(TensorReshape { name: format!("{}.v", spec.prefix), shape: vec![r, spec.cols] });
            }
        }
        6 | 7 => {
            // The weight replaced by a dense or an empty sparse one of the same size (valid).
            let d = value_dtype(&spec.dtype).to_string();
            out.extend(spec.tensors.iter().map(|t| TensorRemove { name: t.clone() }));
            let p = &spec.prefix;
            if rng.chance(0.5) {
                let value = json!({"kind": "dense", "rows": spec.rows, "cols": spec.cols, "dtype": d});
                out.push(ConfigSet { path: spec.path.clone(), value });
                out.push(TensorAdd { name: format!("{p}.weight"), dtype: d, shape: vec![spec.rows, spec.cols] });
            } else {
                let value = json!({"kind": "sparse", "rows": spec.rows, "cols": spec.cols, "dtype": d, "nnz": 0});
                out.push(ConfigSet { path: spec.path.clone(), value });
                out.push(TensorAdd { name: format!("{p}.s.values"), dtype: d, shape: vec![0] });
                out.push(TensorAdd { name: format!("{p}.s.col_idx"), dtype: "U16".into(), shape: vec![0] });
                out.push(TensorAdd { name: format!("{p}.s.row_ptr"), dtype: "I32".into(), shape: vec![spec.rows + 1] });
            }
        }
        8 => {
            // The weight's values stored in the other float dtype (valid).
            let to = if spec.dtype == "F16" { "F32" } else { "F16" };
            out.push(ConfigSet { path: format!("{}/dtype", spec.path), value: json!(to) });
            for t in &spec.tensors {
                if !t.ends_with("col_idx") && !t.ends_with("row_ptr") {
                    out.push(TensorRetype { name: t.clone(), dtype: to.into() });
                }
            }
        }
        9 => {
            // A bias stored as F16 (valid), or as BF16 or F64 (not).
            let biases = seed.tensors_of(&["F32"]).into_iter().filter(|n| n.ends_with("bias")).collect::<Vec<_>>();
            if !biases.is_empty() {
                let name = rng.pick(&biases).to_string();
                out.push(TensorRetype { name, dtype: rng.pick(&["F16", "F64", "BF16"]).to_string() });
            }
        }
        10 => {
            // A CSR index array stored as I64, I32 or U16 (all valid).
            let idx: Vec<&str> =
                seed.doc.entries.iter().map(|e| e.name.as_str()).filter(|n| n.contains(".s.")).collect();
            if !idx.is_empty() && !idx.iter().all(|n| n.ends_with("values")) {
                let name = loop {
                    let n = *rng.pick(&idx);
                    if !n.ends_with("values") {
                        break n.to_string();
                    }
                };
                out.push(TensorRetype { name, dtype: rng.pick(&["I64", "I32", "U16"]).to_string() });
            }
        }
        11 => {
            // A sparse part cut to fewer entries (valid) or padded with more (invalid columns).
            if let Some(s) = seed.specs.iter().find(|s| s.tensors.iter().any(|t| t.ends_with("row_ptr"))) {
                let nnz = seed
                    .doc
                    .entry(&format!("{}.s.values", s.prefix))
                    .map_or(0, |e| shape_of(e).first().copied().unwrap_or(0));
                let nnz = if rng.chance(0.7) { rng.below(nnz + 1) } else { nnz + 1 + rng.below(4) };
                out.push(SparseNnz { prefix: s.prefix.clone(), path: s.path.clone(), nnz });
            }
        }
        _ => {
            // The weight transposed in the config (and a dense one's tensor shape with
            // it): the other checks of the model, not the tensor's, must catch it.
            out.push(ConfigSet { path: format!("{}/rows", spec.path), value: json!(spec.cols) });
            out.push(ConfigSet { path: format!("{}/cols", spec.path), value: json!(spec.rows) });
            if let Some(t) = spec.tensors.iter().find(|t| t.ends_with(".weight")) {
                out.push(TensorShape { name: t.clone(), shape: json!([spec.cols, spec.rows]) });
            }
        }
    }
}

/// The JSON value `json` (`null` if it does not parse) nested `depth` times under
/// empty keys: `item("0", 2)` is `{"":{"":0}}`, the JSON with the most map nodes per byte.
pub fn item(json: &str, depth: usize) -> Value {
    let v = serde_json::from_str(json).unwrap_or(Value::Null);
    (0..depth).fold(v, |v, _| json!({ "": v }))
}

/// Large structures from small inputs: the inputs that test the allocation bound.
fn amplifier(seed: &Seed, rng: &mut Rng, out: &mut Vec<Mutation>) {
    use Mutation::*;
    let n = *rng.pick(&[100, 1000, 10_000]);
    let json = rng.pick(&["0", "{}", "[]", "\"\"", "[[]]", "{\"\":0}"]).to_string();
    let depth = *rng.pick(&[0, 0, 1, 2, 8, 100]);
    // At most ~10^5 JSON values (an input under 1 MB): large enough to show a cost per
    // byte, small enough to keep the run fast.
    let n = if depth > 8 { n.min(1000) } else { n };
    let entry = rng.pick(&seed.doc.entries).name.clone();
    match rng.below(8) {
        0 => out.push(ConfigBulk { path: "/tokenizer/tokens".into(), json: "\"t\"".into(), depth: 0, n }),
        1 => {
            // Under a new key of `provenance` (free-form JSON) or of any other object
            // of the config (which must refuse the key, ideally before reading its value).
            let (object, keys) = match rng.below(3) {
                0 => ("/provenance".to_string(), vec![]),
                _ => rng.pick(&seed.objects).clone(),
            };
            let key = if !keys.is_empty() && rng.chance(0.3) { rng.pick(&keys).clone() } else { "bulk".into() };
            out.push(ConfigInsert { path: object.clone(), key: key.clone(), value: json!(null) });
            out.push(ConfigBulk { path: format!("{object}/{}", crate::doc::pointer_token(&key)), json, depth, n });
        }
        2 => out.push(TensorBulk { n }),
        3 => out.push(TensorShape { name: entry, shape: Value::Array(vec![json!(1); n]) }),
        4 => out.push(MetaBulk { n }),
        5 => out.push(ConfigBulk { path: "/layers".into(), json: r#"{"input":1,"hidden":1}"#.into(), depth: 0, n }),
        6 => {
            // In a tensor entry, where safetensors ignores it; with a byte more at the end
            // of the file, so that the reader looks at the header again for its error.
            out.push(TensorFieldBulk { name: entry, key: "x".into(), json, depth, n });
            match rng.below(3) {
                0 => out.push(File(ByteEdit::Extend { bytes: vec![0] })),
                1 => out.push(File(ByteEdit::Cut { len: 1 })),
                _ => {}
            }
        }
        _ => {
            let layer = seed.doc.config.as_ref().map(|c| c["layers"][0].to_string()).unwrap_or_default();
            out.push(ConfigBulk { path: "/layers".into(), json: layer, depth: 0, n: n.min(1000) });
        }
    }
}
