//! Every bad model file and bad input is rejected with its own `Error` variant, and
//! nothing reachable from input bytes panics.
//!
//! Bad files are made by taking a valid file apart ([`File`]), editing its config or
//! tensors, and serialising it again with `safetensors::serialize`, so each test
//! breaks exactly one thing.
//!
//! Runs natively and, through `wasm_bindgen_test`, in both wasm builds
//! (`scripts/test-wasm.sh`), so the messages are the same in both; the proptest
//! sections at the end are native only (proptest is a native-only dev-dependency).

use std::collections::{BTreeMap, HashMap};

use dkp_lstm::format::MAX_HEADER_BYTES;
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{Error, Model, Session, TokenizerKind, WeightKind, MAX_LAYERS};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{json, Value};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A small valid model file of the given kinds (hidden 8, vocab 20, fused gates).
fn valid(kind: &str, cf: f64) -> Vec<u8> {
    let spec = RandomSpec {
        kind: kind.parse().unwrap(),
        cf,
        hidden: 8,
        vocab: 20,
        layers: 2,
        seed: 5,
        ..RandomSpec::default()
    };
    random_model(&spec).unwrap().to_bytes().unwrap()
}

/// A model file taken apart into its metadata and tensors.
struct File {
    meta: Option<HashMap<String, String>>,
    tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl File {
    /// The file with every sparse part's row lengths (`s.row_len`, the writer's form where
    /// rows are short) turned into the equivalent I32 row pointers (`s.row_ptr`), and its
    /// column gaps (`s.col_gap`, the writer's form for wide matrices) into I32 column
    /// indices (`s.col_idx`), so that edits see one layout; [`File::raw`] keeps the file as
    /// written.
    fn parse(bytes: &[u8]) -> File {
        let mut f = File::raw(bytes);
        let lengths: Vec<String> = f.tensors.keys().filter(|n| n.ends_with(".s.row_len")).cloned().collect();
        for name in lengths {
            let mut at = 0;
            let ptr: Vec<i32> = std::iter::once(0)
                .chain(f.i32s(&name).iter().map(|l| {
                    at += l;
                    at
                }))
                .collect();
            f.tensors.remove(&name);
            let ptr_name = name.replace(".s.row_len", ".s.row_ptr");
            f.tensors.insert(ptr_name.clone(), (Dtype::I32, vec![ptr.len()], vec![]));
            f.set_i32s(&ptr_name, &ptr);
        }
        let gaps: Vec<String> = f.tensors.keys().filter(|n| n.ends_with(".s.col_gap")).cloned().collect();
        for name in gaps {
            // docs/format.md: a gap is its bytes' sum, every byte but its last being 255.
            let ptr = f.i32s(&name.replace(".s.col_gap", ".s.row_ptr"));
            let mut bytes = f.tensors.remove(&name).unwrap().2.into_iter().map(i32::from);
            let mut cols = vec![];
            for row in ptr.windows(2) {
                let mut col = 0;
                for _ in row[0]..row[1] {
                    loop {
                        let b = bytes.next().expect("the writer's gaps cover every entry");
                        col += b;
                        if b < 255 {
                            break;
                        }
                    }
                    cols.push(col);
                }
            }
            let idx_name = name.replace(".s.col_gap", ".s.col_idx");
            f.tensors.insert(idx_name.clone(), (Dtype::I32, vec![cols.len()], vec![]));
            f.set_i32s(&idx_name, &cols);
        }
        f
    }

    fn raw(bytes: &[u8]) -> File {
        let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
        let st = SafeTensors::deserialize(bytes).unwrap();
        let tensors =
            st.tensors().into_iter().map(|(n, t)| (n, (t.dtype(), t.shape().to_vec(), t.data().to_vec()))).collect();
        File { meta: header.metadata().clone(), tensors }
    }

    fn of(kind: &str, cf: f64) -> File {
        File::parse(&valid(kind, cf))
    }

    fn bytes(&self) -> Vec<u8> {
        let views = self.tensors.iter().map(|(n, (d, s, b))| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()));
        safetensors::serialize(views, self.meta.clone()).unwrap()
    }

    fn load(&self) -> Result<Model, Error> {
        Model::from_bytes(&self.bytes())
    }

    fn config(&mut self, edit: impl FnOnce(&mut Value)) {
        let meta = self.meta.as_mut().unwrap();
        let mut config: Value = serde_json::from_str(&meta["config"]).unwrap();
        // Edits see the vocabulary as an array, whichever of its two forms the writer
        // chose (a word vocabulary is one space-separated string).
        if let Some(joined) = config["tokenizer"]["tokens"].as_str() {
            config["tokenizer"]["tokens"] = joined.split(' ').map(Value::from).collect();
        }
        edit(&mut config);
        meta.insert("config".into(), config.to_string());
    }

    fn set_meta(&mut self, key: &str, value: &str) {
        self.meta.as_mut().unwrap().insert(key.into(), value.into());
    }

    fn f32s(&self, name: &str) -> Vec<f32> {
        let (d, _, b) = &self.tensors[name];
        assert_eq!(*d, Dtype::F32, "{name}");
        b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
    }

    fn set_f32s(&mut self, name: &str, v: &[f32]) {
        let t = self.tensors.get_mut(name).unwrap();
        t.0 = Dtype::F32;
        t.2 = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }

    /// An index tensor (the writer uses U8 or U16 for column indices, I32 for row pointers).
    fn i32s(&self, name: &str) -> Vec<i32> {
        match &self.tensors[name] {
            (Dtype::U8, _, b) => b.iter().map(|&c| c as i32).collect(),
            (Dtype::I32, _, b) => b.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect(),
            (Dtype::U16, _, b) => b.chunks_exact(2).map(|c| u16::from_le_bytes(c.try_into().unwrap()) as i32).collect(),
            (d, _, _) => panic!("{name} is {d:?}, not an index tensor"),
        }
    }

    /// Replaces an index tensor with I32 values.
    fn set_i32s(&mut self, name: &str, v: &[i32]) {
        let t = self.tensors.get_mut(name).unwrap();
        t.0 = Dtype::I32;
        t.2 = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    }

    /// Re-encodes a tensor's values in another dtype (same shape).
    fn retype(&mut self, name: &str, dtype: Dtype) {
        let v = self.f32s(name);
        let t = self.tensors.get_mut(name).unwrap();
        t.0 = dtype;
        t.2 = match dtype {
            Dtype::F64 => v.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
            Dtype::I64 => v.iter().flat_map(|&x| (x as i64).to_le_bytes()).collect(),
            Dtype::I32 => v.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect(),
            d => panic!("test helper does not write {d:?}"),
        };
    }
}

/// The length of the 8-byte prefix plus the JSON header: where tensor data starts.
fn data_start(bytes: &[u8]) -> usize {
    8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// The first row of `layers.0.w`'s sparse part with at least two entries, as a range into `col_idx`.
fn row_with_two(f: &File) -> (usize, std::ops::Range<usize>) {
    let rp = f.i32s("layers.0.w.s.row_ptr");
    (0..rp.len() - 1)
        .find(|&r| rp[r + 1] - rp[r] >= 2)
        .map(|r| (r, rp[r] as usize..rp[r + 1] as usize))
        .expect("the test model's S has a row with two entries")
}

fn sparse_reason(r: Result<Model, Error>, name: &str) -> String {
    match r {
        Err(Error::InvalidSparse { name: n, reason }) if n == name => reason,
        other => panic!("expected InvalidSparse for `{name}`, got {other:?}"),
    }
}

// ---- the container ----

#[test]
fn truncated_file_at_several_cut_points() {
    let bytes = valid("dkp", 4.0);
    let start = data_start(&bytes);
    for cut in [0, 1, 7, 8, 9, start / 2, start - 1, start, start + 1, (start + bytes.len()) / 2, bytes.len() - 1] {
        match Model::from_bytes(&bytes[..cut]) {
            Err(Error::Truncated { needed, found }) => {
                assert_eq!(found, cut as u64, "cut {cut}");
                assert!(needed > found && needed <= bytes.len() as u64, "cut {cut}: needed {needed}");
            }
            other => panic!("cut at {cut} of {}: {other:?}", bytes.len()),
        }
    }
}

#[test]
fn random_bytes_are_not_safetensors() {
    // A fixed LCG: reproducible noise without a dependency.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect();
    assert_ne!(noise[8], b'{');
    assert!(matches!(Model::from_bytes(&noise), Err(Error::NotSafetensors { .. })), "{:?}", Model::from_bytes(&noise));
}

#[test]
fn a_json_file_is_not_safetensors() {
    let json = br#"{"format": "dkp-lstm", "config": {"layers": []}}"#;
    assert!(matches!(Model::from_bytes(json), Err(Error::NotSafetensors { .. })));
}

#[test]
fn a_header_that_is_not_json_is_rejected() {
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{not json at all");
    assert!(matches!(Model::from_bytes(&bytes), Err(Error::NotSafetensors { .. })));
}

#[test]
fn header_too_large() {
    let mut bytes = (MAX_HEADER_BYTES + 1).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{\"a\": 1}");
    assert_eq!(
        Model::from_bytes(&bytes).unwrap_err(),
        Error::HeaderTooLarge { len: MAX_HEADER_BYTES + 1, max: MAX_HEADER_BYTES }
    );
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.push(b'{');
    assert!(matches!(Model::from_bytes(&huge), Err(Error::HeaderTooLarge { .. })));
}

#[test]
fn bytes_after_the_last_tensor_are_rejected() {
    let mut bytes = valid("dense", 1.0);
    bytes.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(Model::from_bytes(&bytes), Err(Error::NotSafetensors { .. })));
}

// ---- metadata and config ----

#[test]
fn missing_metadata() {
    let mut f = File::of("dense", 1.0);
    f.meta = None;
    assert!(matches!(f.load(), Err(Error::BadMetadata { .. })));
    for key in ["format", "format_version", "config"] {
        let mut f = File::of("dense", 1.0);
        f.meta.as_mut().unwrap().remove(key);
        match f.load() {
            Err(Error::BadMetadata { reason }) => assert!(reason.contains(key), "{key}: {reason}"),
            other => panic!("without `{key}`: {other:?}"),
        }
    }
}

#[test]
fn another_format_name_is_bad_metadata() {
    let mut f = File::of("dense", 1.0);
    f.set_meta("format", "pt");
    assert!(matches!(f.load(), Err(Error::BadMetadata { .. })));
}

#[test]
fn unknown_format_version() {
    for v in ["2", "0", "1.1", "one"] {
        let mut f = File::of("dense", 1.0);
        f.set_meta("format_version", v);
        assert_eq!(f.load().unwrap_err(), Error::UnsupportedVersion { found: v.into(), supported: 1 });
    }
}

#[test]
fn config_that_is_not_json_or_has_unknown_fields() {
    let mut f = File::of("dense", 1.0);
    f.set_meta("config", "{\"architecture\": ");
    assert!(matches!(f.load(), Err(Error::BadMetadata { .. })));
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["layers"][0]["dropout"] = json!(0.5));
    assert!(
        matches!(f.load(), Err(Error::InvalidConfig { field, reason }) if field.starts_with("layers[0]") && reason.contains("dropout"))
    );
}

#[test]
fn unknown_architecture() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["architecture"] = json!("gru-lm"));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "architecture"));
}

#[test]
fn unknown_weight_kind() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["layers"][1]["w"]["kind"] = json!("hologram"));
    match f.load() {
        Err(Error::InvalidConfig { field, reason }) => {
            assert_eq!(field, "layers[1].w.kind");
            assert!(reason.contains("hologram"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vocabulary_size_not_matching_the_embedding_or_output() {
    let drop_last = |c: &mut Value| {
        c["tokenizer"]["tokens"].as_array_mut().unwrap().pop();
    };
    let mut f = File::of("dense", 1.0);
    f.config(drop_last);
    assert_eq!(f.load().unwrap_err(), Error::VocabMismatch { vocab: 19, rows: 20, matrix: "embedding" });

    let tied = RandomSpec { embedding_kind: None, hidden: 8, vocab: 20, ..RandomSpec::default() };
    let mut f = File::parse(&random_model(&tied).unwrap().to_bytes().unwrap());
    f.config(|c| c["tokenizer"]["tokens"].as_array_mut().unwrap().push(json!("extra")));
    assert_eq!(f.load().unwrap_err(), Error::VocabMismatch { vocab: 21, rows: 20, matrix: "output" });
}

#[test]
fn bad_vocabulary_entries() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["tokenizer"]["tokens"][5] = json!("the"));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field.starts_with("tokenizer.tokens")));
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["tokenizer"]["unk"] = json!("<nope>"));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "tokenizer.unk"));
    // The space-separated form, token 1 left out: a doubled space is an empty token.
    let mut f = File::of("dense", 1.0);
    f.config(|c| {
        let words: Vec<&str> =
            c["tokenizer"]["tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        c["tokenizer"]["tokens"] = json!(format!("{}  {}", words[0], words[2..].join(" ")));
    });
    match f.load() {
        Err(Error::InvalidConfig { field, reason }) => {
            assert_eq!(field, "tokenizer.tokens[1]");
            assert!(reason.contains("1 to 1024 bytes"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

// ---- sizes ----

#[test]
fn absurd_hidden_size() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["layers"][0]["hidden"] = json!(1_000_000_000u64));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "layers[0]"));
}

#[test]
fn absurd_matrix_sides() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["output"]["cols"] = json!(u64::MAX));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "output.cols"));
}

#[test]
fn huge_kronecker_factors() {
    // Factor sides beyond any size a file may give (refused while parsing, the same way
    // on 32- and 64-bit platforms), and factors whose products overflow or do not make
    // the matrix (refused by the reader).
    for (a, b, at) in [
        ([1u64 << 62, 1 << 62], [1u64 << 62, 1 << 62], "layers[0].w.a"),
        ([1_000_000, 1_000_000], [1_000_000, 1_000_000], "layers.0.w.a"),
        ([1 << 31, 1 << 31], [4, 4], "layers.0.w.a"),
    ] {
        let mut f = File::of("kp", 4.0);
        f.config(|c| {
            c["layers"][0]["w"]["a"] = json!(a);
            c["layers"][0]["w"]["b"] = json!(b);
        });
        match f.load() {
            Err(Error::InvalidConfig { field, reason }) => assert_eq!(field, at, "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    // A virtual matrix within each side's limit but beyond the element limit.
    let mut f = File::of("kp", 4.0);
    f.config(|c| {
        let w = &mut c["layers"][0]["w"];
        w["rows"] = json!(1 << 22);
        w["cols"] = json!(1 << 22);
        w["a"] = json!([1 << 11, 1 << 11]);
        w["b"] = json!([1 << 11, 1 << 11]);
    });
    assert!(matches!(f.load(), Err(Error::TooLarge { .. })));
}

#[test]
fn absurd_non_zero_count_and_rank() {
    let mut f = File::of("dkp", 4.0);
    f.config(|c| c["layers"][0]["w"]["nnz"] = json!(1u64 << 50));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, reason })
        if field == "layers[0].w.nnz" && reason.contains("exceeds 4294967295")));
    f.config(|c| c["layers"][0]["w"]["nnz"] = json!(1u64 << 30));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "layers.0.w.nnz"));
    let mut f = File::of("lowrank", 4.0);
    f.config(|c| c["layers"][0]["w"]["rank"] = json!(1u64 << 40));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "layers[0].w.rank"));
    f.config(|c| c["layers"][0]["w"]["rank"] = json!(1000));
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "layers.0.w.rank"));
}

#[test]
fn too_many_layers() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| {
        let layer = c["layers"][1].clone();
        c["layers"] = Value::Array(vec![layer; 100_000]);
    });
    assert_eq!(
        f.load().unwrap_err(),
        Error::TooLarge { what: "layer count".into(), value: 100_000, max: MAX_LAYERS as u64 }
    );
}

// ---- tensors ----

#[test]
fn tensor_shape_inconsistent_with_the_config() {
    let mut f = File::of("dense", 1.0);
    let (_, shape, _) = f.tensors["layers.0.w.weight"].clone();
    f.tensors.get_mut("layers.0.w.weight").unwrap().1 = vec![shape[1], shape[0]];
    assert_eq!(
        f.load().unwrap_err(),
        Error::ShapeMismatch {
            name: "layers.0.w.weight".into(),
            expected: shape.clone(),
            found: vec![shape[1], shape[0]]
        }
    );
    // The config changed instead of the tensor.
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["layers"][0]["w"]["cols"] = json!(shape[1] + 1));
    assert!(matches!(f.load(), Err(Error::ShapeMismatch { name, .. }) if name == "layers.0.w.weight"));
    // A hidden size that disagrees with the layer's weights.
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["layers"][1]["hidden"] = json!(9));
    assert!(matches!(f.load(), Err(Error::ShapeMismatch { name, .. }) if name == "layers.1.bias"));
}

#[test]
fn kronecker_factors_not_making_the_matrix() {
    let mut f = File::of("kp", 4.0);
    f.config(|c| {
        let a = c["layers"][0]["w"]["a"].clone();
        c["layers"][0]["w"]["a"] = json!([a[0].as_u64().unwrap() + 1, a[1]]);
    });
    assert!(matches!(f.load(), Err(Error::InvalidConfig { field, .. }) if field == "layers.0.w.a"));
}

#[test]
fn missing_tensor() {
    for name in ["output.bias", "layers.1.w.b", "layers.0.w.s.row_ptr", "embedding.weight"] {
        let mut f = File::of("dkp", 4.0);
        assert!(f.tensors.remove(name).is_some(), "{name}");
        assert_eq!(f.load().unwrap_err(), Error::MissingTensor { name: name.into() });
    }
}

#[test]
fn unexpected_extra_tensor() {
    let mut f = File::of("dense", 1.0);
    f.tensors.insert("layers.0.w.extra".into(), (Dtype::F32, vec![2], vec![0; 8]));
    assert_eq!(f.load().unwrap_err(), Error::UnexpectedTensor { name: "layers.0.w.extra".into() });
}

#[test]
fn wrong_dtype_of_values() {
    for (name, dtype, found) in [
        ("output.bias", Dtype::F64, "F64"),
        ("layers.0.w.a", Dtype::I64, "I64"),
        ("layers.1.w.s.values", Dtype::I32, "I32"),
    ] {
        let mut f = File::of("dkp", 4.0);
        f.retype(name, dtype);
        match f.load() {
            Err(Error::WrongDtype { name: n, found: fnd, .. }) => {
                assert_eq!((n.as_str(), fnd.as_str()), (name, found))
            }
            other => panic!("{name} as {found}: {other:?}"),
        }
    }
}

#[test]
fn values_stored_in_another_dtype_than_the_config_declares() {
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["output"]["dtype"] = json!("F16"));
    assert_eq!(
        f.load().unwrap_err(),
        Error::WrongDtype { name: "output.weight".into(), found: "F32".into(), expected: "F16" }
    );
    // The sparse values too, once the Kronecker factors match the declared F16.
    let mut f = File::of("dkp", 4.0);
    f.config(|c| c["layers"][0]["w"]["dtype"] = json!("F16"));
    for name in ["layers.0.w.a", "layers.0.w.b"] {
        let halves = f.f32s(name).iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect();
        let t = f.tensors.get_mut(name).unwrap();
        (t.0, t.2) = (Dtype::F16, halves);
    }
    assert_eq!(
        f.load().unwrap_err(),
        Error::WrongDtype { name: "layers.0.w.s.values".into(), found: "F32".into(), expected: "F16" }
    );
}

#[test]
fn wrong_dtype_of_indices() {
    let mut f = File::of("dkp", 4.0);
    let idx: Vec<f32> = f.i32s("layers.0.w.s.col_idx").iter().map(|&i| i as f32).collect();
    f.set_f32s("layers.0.w.s.col_idx", &idx);
    assert!(
        matches!(f.load(), Err(Error::WrongDtype { name, found, .. }) if name == "layers.0.w.s.col_idx" && found == "F32")
    );
}

#[test]
fn nan_and_inf_weights() {
    for (name, index, bad) in [
        ("output.bias", 3, f32::NAN),
        ("layers.0.w.a", 2, f32::INFINITY),
        ("layers.1.w.s.values", 7, f32::NEG_INFINITY),
        ("embedding.weight", 0, f32::NAN),
    ] {
        let mut f = File::of("dkp", 4.0);
        let mut v = f.f32s(name);
        v[index] = bad;
        f.set_f32s(name, &v);
        assert_eq!(f.load().unwrap_err(), Error::NonFinite { name: name.into(), index }, "{name}");
    }
}

#[test]
fn nan_in_f16_weights() {
    let spec = RandomSpec { dtype: dkp_lstm::ValueType::F16, hidden: 8, vocab: 20, ..RandomSpec::default() };
    let mut f = File::parse(&random_model(&spec).unwrap().to_bytes().unwrap());
    let t = f.tensors.get_mut("output.weight").unwrap();
    assert_eq!(t.0, Dtype::F16);
    t.2[10..12].copy_from_slice(&0x7e00u16.to_le_bytes()); // f16 NaN at index 5
    assert_eq!(f.load().unwrap_err(), Error::NonFinite { name: "output.weight".into(), index: 5 });
}

/// Subnormal weights are no error: they read as zeros (docs/format.md), the model then
/// being the one whose file has zeros in their place.
#[test]
fn subnormal_weights_read_as_zero() {
    let places = [("output.bias", 3), ("layers.0.w.a", 2), ("layers.1.w.s.values", 7), ("embedding.weight", 0)];
    let with = |x: f32| {
        let mut f = File::of("dkp", 4.0);
        for (name, index) in places {
            let mut v = f.f32s(name);
            v[index] = x;
            f.set_f32s(name, &v);
        }
        f
    };
    let (tiny, zero) = (with(-f32::MIN_POSITIVE / 3.0), with(0.0));
    assert_ne!(tiny.bytes(), zero.bytes());
    assert_eq!(tiny.load().unwrap().to_bytes().unwrap(), zero.load().unwrap().to_bytes().unwrap());
    // The smallest normal number is kept.
    let least = with(f32::MIN_POSITIVE).load().unwrap().to_bytes().unwrap();
    assert_ne!(least, zero.load().unwrap().to_bytes().unwrap());
}

/// A file stored in `dtype` (dkp gates, dense embedding and output) taken apart.
fn quantised_file(dtype: dkp_lstm::ValueType, hidden: usize, vocab: usize) -> File {
    let spec = RandomSpec { kind: WeightKind::Dkp, cf: 4.0, dtype, hidden, vocab, seed: 5, ..RandomSpec::default() };
    File::parse(&random_model(&spec).unwrap().to_bytes().unwrap())
}

/// An int8 file, hidden 8, vocabulary 20.
fn int8_file() -> File {
    quantised_file(dkp_lstm::ValueType::I8, 8, 20)
}

#[test]
fn int8_values_outside_the_symmetric_range() {
    for (name, index) in [("output.weight", 13), ("layers.0.w.a", 1), ("layers.1.w.s.values", 2)] {
        let mut f = int8_file();
        let t = f.tensors.get_mut(name).unwrap();
        assert_eq!(t.0, Dtype::I8, "{name}");
        t.2[index] = 0x80; // -128
        assert_eq!(
            f.load().unwrap_err(),
            Error::InvalidQuantised {
                name: name.into(),
                index,
                reason: "-128 is outside the symmetric range -127..=127"
            },
            "{name}"
        );
    }
}

#[test]
fn int8_absmax_negative_missing_non_finite_or_misshapen() {
    let name = "output.weight.absmax";
    let mut f = int8_file();
    assert_eq!(f.tensors[name].0, Dtype::F16, "absmaxes that fit f16 are written as f16");
    f.tensors.get_mut(name).unwrap().2[6..8].copy_from_slice(&half::f16::from_f32(-0.5).to_le_bytes());
    let reason = "a row's absmax must not be negative";
    assert_eq!(f.load().unwrap_err(), Error::InvalidQuantised { name: name.into(), index: 3, reason });

    let mut f = int8_file();
    f.tensors.get_mut("layers.0.w.s.values.absmax").unwrap().2[0..2].copy_from_slice(&0x7c00u16.to_le_bytes());
    assert_eq!(f.load().unwrap_err(), Error::NonFinite { name: "layers.0.w.s.values.absmax".into(), index: 0 });

    let mut f = int8_file();
    f.tensors.remove("layers.1.w.b.absmax");
    assert_eq!(f.load().unwrap_err(), Error::MissingTensor { name: "layers.1.w.b.absmax".into() });

    let mut f = int8_file();
    let t = f.tensors.get_mut(name).unwrap();
    t.1 = vec![t.1[0] - 1];
    t.2.truncate(t.2.len() - 2);
    assert!(matches!(f.load(), Err(Error::ShapeMismatch { name: n, .. }) if n == name));
}

#[test]
fn int8_declared_but_stored_as_float_and_the_reverse() {
    // The config says I8; the tensor is f32 (and has no absmax).
    let mut f = File::of("dense", 1.0);
    f.config(|c| c["output"]["dtype"] = json!("I8"));
    assert_eq!(
        f.load().unwrap_err(),
        Error::WrongDtype { name: "output.weight".into(), found: "F32".into(), expected: "I8" }
    );
    // The config says F32 for an I8 tensor.
    let mut f = int8_file();
    f.config(|c| c["embedding"]["dtype"] = json!("F32"));
    assert_eq!(
        f.load().unwrap_err(),
        Error::WrongDtype { name: "embedding.weight".into(), found: "I8".into(), expected: "F32" }
    );
    // An absmax left over after a conversion is an extra tensor.
    let mut f = int8_file();
    f.tensors.insert("output.bias.absmax".into(), (Dtype::F32, vec![1], vec![0; 4]));
    assert_eq!(f.load().unwrap_err(), Error::UnexpectedTensor { name: "output.bias.absmax".into() });
}

#[test]
fn int8_sparse_values_with_broken_row_pointers_report_the_pointers() {
    let mut f = int8_file();
    let mut rp = f.i32s("layers.0.w.s.row_ptr");
    let last = rp.len() - 1;
    rp[last] += 1;
    f.set_i32s("layers.0.w.s.row_ptr", &rp);
    assert!(sparse_reason(f.load(), "layers.0.w").contains("but there are"), "row_ptr's end is checked as for f32");
}

// ---- CSR invariants ----

#[test]
fn csr_column_index_out_of_range() {
    let mut f = File::of("dkp", 4.0);
    let mut col = f.i32s("layers.0.w.s.col_idx");
    let last = col.len() - 1;
    col[last] = 1_000_000;
    f.set_i32s("layers.0.w.s.col_idx", &col);
    assert!(sparse_reason(f.load(), "layers.0.w").contains("out of range"));
}

#[test]
fn csr_unsorted_columns() {
    let mut f = File::of("dkp", 4.0);
    let (_, range) = row_with_two(&f);
    let mut col = f.i32s("layers.0.w.s.col_idx");
    col.swap(range.start, range.start + 1);
    f.set_i32s("layers.0.w.s.col_idx", &col);
    assert!(sparse_reason(f.load(), "layers.0.w").contains("strictly increasing"));
}

#[test]
fn csr_row_ptr_not_monotone() {
    // A row pointer that goes back.
    let mut f = File::of("dkp", 4.0);
    let mut rp = f.i32s("layers.0.w.s.row_ptr");
    let r = (1..rp.len() - 2).find(|&r| rp[r] > 0).expect("S has entries before its last row");
    rp[r + 1] = rp[r] - 1;
    f.set_i32s("layers.0.w.s.row_ptr", &rp);
    assert!(sparse_reason(f.load(), "layers.0.w").contains("monotone"));
    // One that jumps past the end of the values before coming back.
    let mut f = File::of("dkp", 4.0);
    let mut rp = f.i32s("layers.0.w.s.row_ptr");
    rp[1] = 1_000_000;
    f.set_i32s("layers.0.w.s.row_ptr", &rp);
    assert!(sparse_reason(f.load(), "layers.0.w").contains("monotone"));
}

#[test]
fn csr_row_ptr_not_ending_at_nnz() {
    let mut f = File::of("dkp", 4.0);
    let mut rp = f.i32s("layers.0.w.s.row_ptr");
    *rp.last_mut().unwrap() -= 1;
    f.set_i32s("layers.0.w.s.row_ptr", &rp);
    sparse_reason(f.load(), "layers.0.w");
}

#[test]
fn csr_negative_index() {
    for name in ["layers.0.w.s.col_idx", "layers.0.w.s.row_ptr"] {
        let mut f = File::of("dkp", 4.0);
        let mut v = f.i32s(name);
        v[1] = -1;
        f.set_i32s(name, &v);
        assert!(sparse_reason(f.load(), name).contains("negative"), "{name}");
    }
}

#[test]
fn csr_row_lengths_are_the_writers_form_and_are_checked() {
    let f = File::raw(&valid("dkp", 4.0));
    assert_eq!(f.tensors["layers.0.w.s.row_len"].0, Dtype::U8, "short rows: one byte each");
    assert!(!f.tensors.contains_key("layers.0.w.s.row_ptr"));
    // The lengths must add up to the values.
    let mut g = File::raw(&valid("dkp", 4.0));
    let mut lengths = g.i32s("layers.0.w.s.row_len");
    lengths[0] += 1;
    g.set_i32s("layers.0.w.s.row_len", &lengths);
    match g.load() {
        Err(Error::InvalidSparse { name, reason }) => {
            assert_eq!(name, "layers.0.w.s.row_len");
            assert!(reason.contains("add up to") && reason.contains("but there are"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Both forms at once: the pointers are read, the lengths refused as unexpected.
    let mut both = File::raw(&valid("dkp", 4.0));
    let pointers = File::parse(&valid("dkp", 4.0)).tensors["layers.0.w.s.row_ptr"].clone();
    both.tensors.insert("layers.0.w.s.row_ptr".into(), pointers);
    assert_eq!(both.load().unwrap_err(), Error::UnexpectedTensor { name: "layers.0.w.s.row_len".into() });
    // Neither: the pointers are what is missing.
    let mut neither = File::raw(&valid("dkp", 4.0));
    neither.tensors.remove("layers.0.w.s.row_len");
    assert_eq!(neither.load().unwrap_err(), Error::MissingTensor { name: "layers.0.w.s.row_ptr".into() });
    // A wrong shape is reported at the lengths.
    let mut short = File::raw(&valid("dkp", 4.0));
    let t = short.tensors.get_mut("layers.0.w.s.row_len").unwrap();
    t.1[0] -= 1;
    t.2.pop();
    assert!(matches!(short.load(), Err(Error::ShapeMismatch { name, .. }) if name == "layers.0.w.s.row_len"));
}

#[test]
fn csr_column_indices_are_written_in_the_narrowest_dtype_and_read_in_any_index_dtype() {
    let f = File::of("dkp", 4.0);
    assert_eq!(f.tensors["layers.0.w.s.col_idx"].0, Dtype::U8, "16 columns");
    assert_eq!(f.tensors["layers.0.w.s.row_ptr"].0, Dtype::I32, "as File::parse presents it");
    // 129 + 129 gate columns need U16; the 129-wide output layer still fits U8.
    let spec = RandomSpec {
        kind: WeightKind::Dkp,
        cf: 8.0,
        hidden: 129,
        output_kind: WeightKind::Dkp,
        output_cf: 4.0,
        vocab: 30,
        seed: 5,
        ..RandomSpec::default()
    };
    let written = random_model(&spec).unwrap().to_bytes().unwrap();
    let mut mixed = File::parse(&written);
    // Written as column gaps (below), presented as column indices by File::parse.
    let col = mixed.i32s("layers.0.w.s.col_idx");
    let t = mixed.tensors.get_mut("layers.0.w.s.col_idx").unwrap();
    t.0 = Dtype::U16;
    t.2 = col.iter().flat_map(|&c| (c as u16).to_le_bytes()).collect();
    assert_eq!(mixed.tensors["output.s.col_idx"].0, Dtype::U8);
    assert!(mixed.load().unwrap().to_bytes().unwrap() == written, "read back, written the same");
    let mut wide = File::of("dkp", 4.0);
    let col = wide.i32s("layers.0.w.s.col_idx");
    wide.set_i32s("layers.0.w.s.col_idx", &col);
    assert_eq!(wide.load().unwrap().to_bytes().unwrap(), valid("dkp", 4.0));
}

/// A model whose gate matrices have 258 columns (hidden 129): the writer stores their
/// columns as gaps within rows, one byte an entry.
fn wide_file() -> File {
    let spec = RandomSpec { kind: WeightKind::Dkp, cf: 8.0, hidden: 129, vocab: 30, seed: 5, ..RandomSpec::default() };
    File::raw(&random_model(&spec).unwrap().to_bytes().unwrap())
}

#[test]
fn csr_column_gaps_are_the_writers_form_for_wide_matrices_and_are_checked() {
    let name = "layers.0.w.s.col_gap";
    let f = wide_file();
    let nnz = f.tensors["layers.0.w.s.values"].1[0];
    assert_eq!(f.tensors[name].0, Dtype::U8);
    assert!(f.tensors[name].1[0] >= nnz && f.tensors[name].1[0] < 2 * nnz, "{:?} for {nnz}", f.tensors[name].1);
    assert!(!f.tensors.contains_key("layers.0.w.s.col_idx"));
    assert!(f.load().is_ok());
    // Gaps that add up beyond the columns.
    let mut g = wide_file();
    g.tensors.get_mut(name).unwrap().2.iter_mut().for_each(|b| *b = 200);
    assert!(sparse_reason(g.load(), name).contains("beyond the 258 columns"));
    // A byte of 255 continues its gap into the next byte: at the end nothing is left.
    let mut g = wide_file();
    *g.tensors.get_mut(name).unwrap().2.last_mut().unwrap() = 255;
    assert!(sparse_reason(g.load(), name).starts_with("the gaps end in row"));
    // A byte after the last gap.
    let mut g = wide_file();
    let t = g.tensors.get_mut(name).unwrap();
    t.1[0] += 1;
    t.2.push(0);
    assert_eq!(sparse_reason(g.load(), name), "extra bytes after the last row's gaps: 1");
    // Fewer bytes than entries, or not bytes.
    let mut g = wide_file();
    let t = g.tensors.get_mut(name).unwrap();
    t.1 = vec![nnz - 1];
    t.2.truncate(nnz - 1);
    assert!(sparse_reason(g.load(), name).contains("one byte or more each"));
    let mut g = wide_file();
    let t = g.tensors.get_mut(name).unwrap();
    t.0 = Dtype::I8;
    assert_eq!(g.load().unwrap_err(), Error::WrongDtype { name: name.into(), found: "I8".into(), expected: "U8" });
    // Both forms at once: the indices are read, the gaps refused as unexpected.
    let mut both = wide_file();
    let parsed = File::parse(&both.bytes());
    both.tensors.insert("layers.0.w.s.col_idx".into(), parsed.tensors["layers.0.w.s.col_idx"].clone());
    assert_eq!(both.load().unwrap_err(), Error::UnexpectedTensor { name: name.into() });
}

#[test]
fn csr_indices_as_i64_are_accepted_and_checked() {
    let mut f = File::of("dkp", 4.0);
    let col = f.i32s("layers.0.w.s.col_idx");
    let t = f.tensors.get_mut("layers.0.w.s.col_idx").unwrap();
    t.0 = Dtype::I64;
    t.2 = col.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    assert!(f.load().is_ok());
    let t = f.tensors.get_mut("layers.0.w.s.col_idx").unwrap();
    t.2[..8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    assert!(sparse_reason(f.load(), "layers.0.w.s.col_idx").contains("too large"));
}

// ---- texts and tokens ----

fn session() -> Session {
    Session::new(Model::from_bytes(&valid("dense", 1.0)).unwrap())
}

#[test]
fn empty_text() {
    let mut s = session();
    for text in ["", "   ", "\t \r"] {
        assert_eq!(s.perplexity(text).unwrap_err(), Error::EmptyText, "{text:?}");
    }
    let chars = RandomSpec { tokenizer: TokenizerKind::Char, hidden: 8, vocab: 40, ..RandomSpec::default() };
    let mut c = Session::new(random_model(&chars).unwrap());
    assert_eq!(c.perplexity("").unwrap_err(), Error::EmptyText);
}

#[test]
fn text_of_only_unknown_words() {
    let mut s = session();
    assert_eq!(s.perplexity("zebra giraffe okapi").unwrap_err(), Error::AllUnknown { words: 3 });
    assert!(s.perplexity("zebra the okapi").is_ok(), "one known word is enough");
}

#[test]
fn token_id_out_of_range() {
    let mut s = session();
    let vocab = s.model().vocab_size();
    assert_eq!(s.feed(vocab as u32).unwrap_err(), Error::TokenOutOfRange { id: vocab as u32, vocab });
    assert_eq!(s.feed(u32::MAX).unwrap_err(), Error::TokenOutOfRange { id: u32::MAX, vocab });
    assert!(s.feed(vocab as u32 - 1).is_ok());
}

#[test]
fn a_tensor_listed_twice_in_the_header() {
    // The first entry of `output.bias` points at the bytes of another tensor; a JSON
    // map keeps the last, so without the check two readers would disagree.
    let bytes = valid("dense", 1.0);
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let v: Value = serde_json::from_str(header).unwrap();
    let other = v["layers.0.bias"].to_string();
    let doubled = header.replacen('{', &format!("{{\"output.bias\":{other},"), 1);
    let mut text = doubled.into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    let file = [&(text.len() as u64).to_le_bytes()[..], &text, &bytes[8 + n..]].concat();
    match Model::from_bytes(&file) {
        Err(Error::NotSafetensors { reason }) => assert!(reason.contains("`output.bias` twice"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_vocabulary_longer_than_the_cap_is_refused_while_parsing() {
    let mut f = File::of("dense", 1.0);
    let huge: Vec<Value> = (0..dkp_lstm::format::MAX_VOCAB + 1).map(|i| json!(format!("t{i}"))).collect();
    f.config(|c| c["tokenizer"]["tokens"] = Value::Array(huge));
    match f.load() {
        Err(Error::InvalidConfig { field, reason }) => {
            assert_eq!(field, "tokenizer.tokens");
            assert!(reason.contains(&format!("more than {} tokens", dkp_lstm::format::MAX_VOCAB)), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn finite_but_huge_weights_score_exactly_or_are_an_error() {
    // Identical huge output rows give identical logits: a uniform distribution, which
    // log-softmax must still find (it used to round every log-probability to 0).
    let mut f = File::of("dense", 1.0);
    let v = f.f32s("output.weight");
    f.set_f32s("output.weight", &vec![f32::MAX / 8.0; v.len()]);
    f.set_f32s("output.bias", &[0.0; 20]);
    let p = Session::new(f.load().expect("finite weights load")).perplexity("the cat").unwrap();
    assert!((p.perplexity - 20.0).abs() < 1e-3, "{p:?}");

    // A log-probability near -f32::MAX, whose perplexity overflows f64: an error that
    // says so, never an infinite or NaN perplexity (`null` in JSON).
    let mut f = File::of("dense", 1.0);
    let mut bias = f.f32s("output.bias");
    bias[17] = -f32::MAX; // `cat`, the second token
    f.set_f32s("output.bias", &bias);
    let e = Session::new(f.load().unwrap()).perplexity("the cat").unwrap_err();
    assert_eq!(e, Error::NonFiniteOutput { position: 1 });
    assert!(e.to_string().contains("too large for f32"), "{e}");
}

// ---- fuzzing (native only) ----

#[cfg(not(target_arch = "wasm32"))]
mod fuzzing {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Random byte edits and cuts of a valid file never panic; what loads also runs.
        #[test]
        fn mutated_files_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = FUZZ_BASE.with(|b| b.clone());
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            if let Ok(model) = Model::from_bytes(&bytes) {
                scores_or_says_why(model)?;
            }
        }
    }

    /// A model that loads scores a text or says why: shifted tensor bytes can make finite
    /// weights overflow, which is an error, never a NaN.
    fn scores_or_says_why(model: Model) -> Result<(), TestCaseError> {
        match Session::new(model).perplexity("the of and\n") {
            Ok(p) => prop_assert!(p.perplexity.is_finite(), "{p:?}"),
            Err(e) => prop_assert!(
                matches!(e, Error::NonFiniteOutput { .. } | Error::AllUnknown { .. } | Error::EmptyText),
                "{e:?}"
            ),
        }
        Ok(())
    }

    /// Pointers (`/layers/0/w/rows`, …) to every number in a JSON value.
    fn number_paths(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Number(_) => out.push(at),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| number_paths(x, format!("{at}/{i}"), out)),
            Value::Object(o) => o.iter().for_each(|(k, x)| number_paths(x, format!("{at}/{k}"), out)),
            _ => {}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Any size, rank, non-zero count or factor shape in the config set to an edge
        /// value gives an error or a model that runs, never a panic or a huge allocation.
        #[test]
        fn config_numbers_at_edge_values_never_panic(
            field in any::<prop::sample::Index>(),
            value in prop::sample::select(vec![
                json!(0), json!(1), json!(2), json!(3), json!(-1), json!(1 << 22), json!((1 << 22) + 1),
                json!(1u64 << 32), json!(u64::MAX), json!(1.5),
            ]),
        ) {
            let mut f = File::parse(&FUZZ_BASE.with(|b| b.clone()));
            f.config(|c| {
                let mut paths = vec![];
                number_paths(c, String::new(), &mut paths);
                let path = &paths[field.index(paths.len())];
                *c.pointer_mut(path).unwrap() = value;
            });
            if let Ok(model) = f.load() {
                scores_or_says_why(model)?;
            }
        }
    }

    thread_local! {
        /// A small dkp model with split gates and a sparse output, so every tensor kind is in play.
        static FUZZ_BASE: Vec<u8> = {
            let spec = RandomSpec {
                kind: WeightKind::Dkp, cf: 4.0, output_kind: WeightKind::Sparse, output_cf: 3.0, fused: false,
                hidden: 4, vocab: 12, layers: 1, seed: 9, ..RandomSpec::default()
            };
            random_model(&spec).unwrap().to_bytes().unwrap()
        };
    }
}

/// An int4 file whose embedding and output layer hold 21 × 7 values, an odd count.
fn int4_file() -> File {
    quantised_file(dkp_lstm::ValueType::I4, 7, 21)
}

#[test]
fn int4_values_outside_the_symmetric_range_or_with_a_stray_nibble() {
    // −8 in the low and in the high nibble of a byte: the value's index is reported.
    for (name, byte, nibble, index) in [("output.weight", 6, 0x08, 12), ("layers.0.w.a", 0, 0x80, 1)] {
        let mut f = int4_file();
        let t = f.tensors.get_mut(name).unwrap();
        assert_eq!(t.0, Dtype::U8, "{name}: I4 values are packed in U8");
        t.2[byte] = (t.2[byte] & if nibble == 0x08 { 0xf0 } else { 0x0f }) | nibble;
        let reason = "-8 is outside the symmetric range -7..=7";
        assert_eq!(f.load().unwrap_err(), Error::InvalidQuantised { name: name.into(), index, reason }, "{name}");
    }
    // The output layer's 21 × 7 values take 74 bytes, the last one's high nibble unused.
    let mut f = int4_file();
    let t = f.tensors.get_mut("output.weight").unwrap();
    assert_eq!(t.1, vec![74]);
    t.2[73] |= 0x30;
    let reason = "the unused high nibble of the last byte must be 0";
    assert_eq!(f.load().unwrap_err(), Error::InvalidQuantised { name: "output.weight".into(), index: 147, reason });
}

#[test]
fn int4_scales_negative_missing_or_not_packed_as_bytes() {
    let name = "output.weight.scale";
    let mut f = int4_file();
    assert_eq!(f.tensors[name].0, Dtype::F16, "scales that fit f16 are written as f16");
    f.tensors.get_mut(name).unwrap().2[6..8].copy_from_slice(&half::f16::from_f32(-0.5).to_le_bytes());
    let reason = "a row's scale must not be negative";
    assert_eq!(f.load().unwrap_err(), Error::InvalidQuantised { name: name.into(), index: 3, reason });

    let mut f = int4_file();
    f.tensors.remove("layers.0.w.s.values.scale");
    assert_eq!(f.load().unwrap_err(), Error::MissingTensor { name: "layers.0.w.s.values.scale".into() });

    // Packed values must be U8 and hold ⌈n/2⌉ bytes.
    let mut f = int4_file();
    f.tensors.get_mut("layers.0.w.b").unwrap().0 = Dtype::I8;
    assert_eq!(
        f.load().unwrap_err(),
        Error::WrongDtype { name: "layers.0.w.b".into(), found: "I8".into(), expected: "U8" }
    );
    let mut f = int4_file();
    let t = f.tensors.get_mut("output.weight").unwrap();
    t.1 = vec![21, 7];
    t.2.resize(21 * 7, 0);
    assert_eq!(
        f.load().unwrap_err(),
        Error::ShapeMismatch { name: "output.weight".into(), expected: vec![74], found: vec![21, 7] }
    );
    // An int8 file declared I4 is caught at its first tensor, whose shape is the matrix's
    // rather than the packed bytes'.
    let mut f = int8_file();
    f.config(|c| c["embedding"]["dtype"] = json!("I4"));
    assert_eq!(
        f.load().unwrap_err(),
        Error::ShapeMismatch { name: "embedding.weight".into(), expected: vec![80], found: vec![20, 8] }
    );
}
