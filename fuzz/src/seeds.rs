//! The seed corpus: small valid model files of every weight kind, gate layout,
//! embedding, dtype and tokenizer, and what the mutators need to know about each.

use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{TokenizerKind, ValueType, WeightKind};
use serde_json::Value;

use crate::doc::{pointer_token, Doc};

/// One seed file, taken apart, with an index of what can be mutated in it.
#[derive(Debug, Clone)]
pub struct Seed {
    /// A short name (`dkp-split-tied-f16-char`, …).
    pub name: String,
    /// The valid file.
    pub bytes: Vec<u8>,
    /// The file as pieces.
    pub doc: Doc,
    /// `doc.build()`: what a mutant that changes nothing looks like.
    pub rebuilt: Vec<u8>,
    /// JSON pointers into the config of every number, with its value.
    pub numbers: Vec<(String, Value)>,
    /// Pointers of every string, with its value.
    pub strings: Vec<(String, String)>,
    /// Pointers of every object, with its keys.
    pub objects: Vec<(String, Vec<String>)>,
    /// Pointers of every array, with its length.
    pub arrays: Vec<(String, usize)>,
    /// Every pointer (the root is `""`).
    pub paths: Vec<String>,
    /// The weight specs.
    pub specs: Vec<SpecInfo>,
    /// Number of LSTM layers.
    pub layers: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Whether the tokenizer is `char`.
    pub char: bool,
}

/// A weight spec of a seed: where it is in the config and which tensors are its.
#[derive(Debug, Clone)]
pub struct SpecInfo {
    /// Tensor prefix (`layers.0.w`, `output`, …).
    pub prefix: String,
    /// Pointer of the spec in the config (`/layers/0/w`).
    pub path: String,
    /// `kind`.
    pub kind: String,
    /// `rows`.
    pub rows: usize,
    /// `cols`.
    pub cols: usize,
    /// `dtype` (`F32` or `F16`).
    pub dtype: String,
    /// Its tensors (not the biases).
    pub tensors: Vec<String>,
}

/// A row of the seed table: gate kind, cf, output kind, output cf, embedding kind
/// (`None`: tied), fused, dtype, tokenizer, layers, hidden size, vocabulary size.
type Row = (WeightKind, f64, WeightKind, f64, Option<WeightKind>, bool, ValueType, TokenizerKind, usize, usize, usize);

/// The seed specs: every weight kind as gates and as output, fused and split gates,
/// own and tied embeddings of several kinds, f32, f16 and i8, word and char vocabularies.
pub fn seed_specs() -> Vec<(String, RandomSpec)> {
    use WeightKind::*;
    #[rustfmt::skip]
    let table: [Row; 20] = [
        // kind, cf, output kind, output cf, embedding, fused, dtype, tokenizer, layers, hidden, vocab
        (Dense, 1.0, Dense, 1.0, Some(Dense), true, ValueType::F32, TokenizerKind::Word, 2, 8, 20),
        (Dense, 1.0, Dense, 1.0, None, false, ValueType::F16, TokenizerKind::Char, 1, 4, 12),
        (Kp, 4.0, Kp, 2.0, Some(Dense), true, ValueType::F32, TokenizerKind::Word, 2, 8, 16),
        (Kp, 4.0, Dense, 1.0, None, false, ValueType::F16, TokenizerKind::Word, 1, 8, 20),
        (Dkp, 4.0, Sparse, 3.0, None, false, ValueType::F32, TokenizerKind::Word, 1, 4, 12),
        (Dkp, 4.0, Dkp, 2.0, Some(Kp), true, ValueType::F16, TokenizerKind::Char, 2, 8, 24),
        (Dkp, 2.0, Dense, 1.0, Some(Dense), false, ValueType::F32, TokenizerKind::Char, 2, 6, 30),
        (LowRank, 4.0, LowRank, 2.0, Some(LowRank), true, ValueType::F32, TokenizerKind::Word, 2, 8, 20),
        (LowRank, 2.0, Dense, 1.0, None, false, ValueType::F16, TokenizerKind::Char, 1, 5, 10),
        (DLowRank, 4.0, DLowRank, 2.0, Some(Sparse), true, ValueType::F32, TokenizerKind::Word, 1, 8, 20),
        (DLowRank, 2.0, Sparse, 2.0, None, false, ValueType::F16, TokenizerKind::Word, 2, 6, 14),
        (Sparse, 4.0, Sparse, 4.0, Some(Dense), true, ValueType::F32, TokenizerKind::Word, 2, 8, 20),
        (Sparse, 2.0, Dense, 1.0, Some(Dkp), false, ValueType::F16, TokenizerKind::Char, 1, 8, 16),
        (Sparse, 8.0, Kp, 2.0, None, true, ValueType::F32, TokenizerKind::Char, 2, 4, 16),
        (Dkp, 4.0, Dense, 1.0, Some(Dense), true, ValueType::I8, TokenizerKind::Word, 2, 8, 20),
        (Dense, 1.0, Dkp, 2.0, None, false, ValueType::I8, TokenizerKind::Char, 1, 8, 16),
        (DHmd, 3.0, Sparse, 2.0, Some(LowRank), true, ValueType::I8, TokenizerKind::Word, 1, 8, 20),
        // Int4: packed values with an unused nibble where a count is odd (21 × 7).
        (Dkp, 4.0, Dkp, 2.0, None, true, ValueType::I4, TokenizerKind::Word, 2, 7, 21),
        (Dense, 1.0, Sparse, 2.0, Some(Hmd), false, ValueType::I4, TokenizerKind::Char, 1, 5, 12),
        // Gates of 258 columns: S's columns written as gaps (`s.col_gap`).
        (Dkp, 8.0, Dense, 1.0, None, true, ValueType::I8, TokenizerKind::Char, 1, 129, 12),
    ];
    let mut rows: Vec<_> = table.to_vec();
    // Kinds added after this table (WeightKind::ALL grows with the format) still get a
    // seed as gates and one as output, at the first compression factor they can reach.
    for kind in WeightKind::ALL {
        if !rows.iter().any(|r| r.0 == kind) {
            rows.push((kind, 4.0, Dense, 1.0, Some(Dense), true, ValueType::F32, TokenizerKind::Word, 2, 8, 20));
        }
        if !rows.iter().any(|r| r.2 == kind) {
            rows.push((Dense, 1.0, kind, 2.0, None, false, ValueType::F16, TokenizerKind::Char, 1, 8, 16));
        }
    }
    rows.iter()
        .enumerate()
        .map(
            |(
                i,
                &(kind, cf, output_kind, output_cf, embedding_kind, fused, dtype, tokenizer, layers, hidden, vocab),
            )| {
                let spec = RandomSpec {
                    layers,
                    hidden,
                    vocab,
                    embedding_dim: None,
                    kind,
                    cf,
                    output_kind,
                    output_cf,
                    embedding_kind,
                    fused,
                    tokenizer,
                    dtype,
                    seed: 100 + i as u64,
                    ..RandomSpec::default()
                };
                let name = format!(
                    "{}-{}-out_{}-emb_{}-{}-{}-{}x{}-v{}",
                    kind.name(),
                    if fused { "fused" } else { "split" },
                    output_kind.name(),
                    embedding_kind.map_or("tied", |k| k.name()),
                    match dtype {
                        ValueType::F32 => "f32",
                        ValueType::F16 => "f16",
                        ValueType::I8 => "i8",
                        ValueType::I4 => "i4",
                    },
                    match tokenizer {
                        TokenizerKind::Word => "word",
                        TokenizerKind::Char => "char",
                    },
                    layers,
                    hidden,
                    vocab
                );
                (name, spec)
            },
        )
        .collect()
}

/// Builds every seed; panics if one cannot be made or does not read back (a bug here, not in the reader).
pub fn seeds() -> Vec<Seed> {
    seed_specs()
        .into_iter()
        .map(|(name, spec)| {
            // A generated row's compression factor may be out of reach for its kind: try lower ones.
            let model = [spec.cf, 2.0, 1.5, 1.0]
                .into_iter()
                .find_map(|cf| random_model(&RandomSpec { cf, ..spec.clone() }).ok())
                .unwrap_or_else(|| panic!("seed {name}: {:?}", random_model(&spec).err()));
            let bytes = model.to_bytes().unwrap_or_else(|e| panic!("seed {name}: {e}"));
            Seed::new(name, bytes)
        })
        .collect()
}

impl Seed {
    /// Indexes a valid file.
    pub fn new(name: String, bytes: Vec<u8>) -> Seed {
        let doc = Doc::parse(&bytes);
        // The header is rebuilt in data order, not the writer's key order: the same file up to that.
        let rebuilt = doc.build();
        let again = dkp_lstm::Model::from_bytes(&rebuilt).and_then(|m| m.to_bytes());
        assert_eq!(again.as_ref(), Ok(&bytes), "seed {name}: the file does not survive being taken apart");
        let config = doc.config.clone().expect("a config");
        let mut s = Seed {
            name,
            bytes,
            doc,
            rebuilt,
            numbers: vec![],
            strings: vec![],
            objects: vec![],
            arrays: vec![],
            paths: vec![],
            specs: vec![],
            layers: config["layers"].as_array().map_or(0, Vec::len),
            vocab: config["tokenizer"]["tokens"].as_array().map_or(0, Vec::len),
            char: config["tokenizer"]["kind"] == "char",
        };
        s.index(&config, String::new());
        let mut specs = vec![("embedding".to_string(), "/embedding".to_string())];
        for i in 0..s.layers {
            for w in ["w", "w_ih", "w_hh"] {
                specs.push((format!("layers.{i}.{w}"), format!("/layers/{i}/{w}")));
            }
        }
        specs.push(("output".into(), "/output".into()));
        for (prefix, path) in specs {
            let Some(v) = config.pointer(&path) else { continue };
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            if kind == "tied" {
                continue;
            }
            let dot = format!("{prefix}.");
            let tensors = s
                .doc
                .entries
                .iter()
                .map(|e| e.name.clone())
                .filter(|n| n.starts_with(&dot) && *n != "output.bias")
                .collect();
            s.specs.push(SpecInfo {
                prefix,
                path,
                kind,
                rows: v["rows"].as_u64().unwrap_or(0) as usize,
                cols: v["cols"].as_u64().unwrap_or(0) as usize,
                dtype: v["dtype"].as_str().unwrap_or("F32").to_string(),
                tensors,
            });
        }
        s
    }

    fn index(&mut self, v: &Value, path: String) {
        self.paths.push(path.clone());
        match v {
            Value::Number(_) => self.numbers.push((path, v.clone())),
            Value::String(x) => self.strings.push((path, x.clone())),
            Value::Array(a) => {
                self.arrays.push((path.clone(), a.len()));
                for (i, x) in a.iter().enumerate() {
                    self.index(x, format!("{path}/{i}"));
                }
            }
            Value::Object(m) => {
                self.objects.push((path.clone(), m.keys().cloned().collect()));
                for (k, x) in m {
                    self.index(x, format!("{path}/{}", pointer_token(k)));
                }
            }
            _ => {}
        }
    }

    /// Names of the tensors whose dtype is one of `dtypes`.
    pub fn tensors_of(&self, dtypes: &[&str]) -> Vec<&str> {
        self.doc
            .entries
            .iter()
            .filter(|e| e.dtype.as_str().is_some_and(|d| dtypes.contains(&d)))
            .map(|e| e.name.as_str())
            .collect()
    }
}
