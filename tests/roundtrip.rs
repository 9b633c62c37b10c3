//! Files written by the runtime read back to the same model, for every weight kind.

use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{Model, Session, TokenizerKind, ValueType, WeightKind};

fn spec(kind: &str, cf: f64) -> RandomSpec {
    RandomSpec { kind: kind.parse().unwrap(), cf, hidden: 16, vocab: 40, seed: 3, ..RandomSpec::default() }
}

/// A compression factor that every matrix of the test models can reach in `kind`.
fn cf_of(kind: WeightKind) -> f64 {
    match kind {
        WeightKind::Dense => 1.0,
        WeightKind::Kp | WeightKind::Dkp | WeightKind::LowRank | WeightKind::Hmd => 4.0,
        WeightKind::DLowRank | WeightKind::DHmd => 3.0,
        WeightKind::Sparse => 5.0,
    }
}

#[test]
fn every_kind_round_trips() {
    for kind in WeightKind::ALL {
        let cf = cf_of(kind);
        for fused in [true, false] {
            let m =
                random_model(&RandomSpec { fused, output_kind: kind, output_cf: cf, ..spec(kind.name(), cf) }).unwrap();
            let bytes = m.to_bytes().unwrap();
            let back = Model::from_bytes(&bytes).unwrap();
            assert_eq!(back.config(), m.config(), "{kind}");
            assert_eq!(back.layers(), m.layers(), "{kind}");
            assert_eq!(back.output(), m.output(), "{kind}");
            let (mut a, mut b) = (Session::new(m), Session::new(back));
            a.feed_text("the cat of w3 w4");
            b.feed_text("the cat of w3 w4");
            assert_eq!(a.log_probs(), b.log_probs(), "{kind}");
        }
    }
}

#[test]
fn tied_char_and_f16_models_round_trip() {
    let s =
        RandomSpec { embedding_kind: None, tokenizer: TokenizerKind::Char, dtype: ValueType::F16, ..spec("dkp", 4.0) };
    let m = random_model(&s).unwrap();
    let bytes = m.to_bytes().unwrap();
    let back = Model::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes().unwrap(), bytes, "f16 values survive a second round trip exactly");
    assert!(back.info().tied);
    let dense = random_model(&RandomSpec { dtype: ValueType::F32, ..s.clone() }).unwrap();
    assert!(bytes.len() < dense.to_bytes().unwrap().len());
}

/// An int8 or int4 file reads back to a model that writes the same bytes again
/// (quantisation is idempotent), for every kind and both gate layouts; it is smaller than
/// the f32 file (an int8 dense one than the f16 one too, where rows are long: each row's
/// scale costs 2 bytes; an int4 one than the int8 one) and predicts close to the f32 model
/// it was made from.
#[test]
fn quantised_models_of_every_kind_round_trip_exactly() {
    for (dtype, tolerance) in [(ValueType::I8, 0.05), (ValueType::I4, 0.1)] {
        for kind in WeightKind::ALL {
            let cf = cf_of(kind);
            for fused in [true, false] {
                let s = RandomSpec { fused, output_kind: kind, output_cf: cf, ..spec(kind.name(), cf) };
                let f32_model = random_model(&s).unwrap();
                let q_model = random_model(&RandomSpec { dtype, ..s.clone() }).unwrap();
                let bytes = q_model.to_bytes().unwrap();
                let back = Model::from_bytes(&bytes).unwrap();
                assert_eq!(back.to_bytes().unwrap(), bytes, "{dtype:?} {kind}: a second round trip changes the file");
                // The accounting counts the scales as written, before and after quantisation.
                let data = bytes.len() - 8 - u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
                assert_eq!((q_model.tensor_bytes(), back.tensor_bytes()), (data, data), "{dtype:?} {kind}");
                let smaller = |than| {
                    bytes.len()
                        < random_model(&RandomSpec { dtype: than, ..s.clone() }).unwrap().to_bytes().unwrap().len()
                };
                assert!(smaller(ValueType::F32), "{dtype:?} {kind}");
                assert!(dtype != ValueType::I8 || kind != WeightKind::Dense || smaller(ValueType::F16), "{kind}");
                assert!(dtype != ValueType::I4 || smaller(ValueType::I8), "{kind}");
                let (mut a, mut b) = (Session::new(f32_model), Session::new(back));
                a.feed_text("the cat of w3 w4");
                b.feed_text("the cat of w3 w4");
                let worst = a.log_probs().iter().zip(b.log_probs()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
                assert!(worst < tolerance, "{dtype:?} {kind} fused={fused}: log-probs {worst} away from f32");
            }
        }
    }
}

/// `store_as` below f32 rounds the biases to f16, and the writer then stores them in two
/// bytes; biases that are not f16 values (random ones, or an older file's) stay F32, so
/// that writing never rounds.
#[test]
fn converted_models_store_their_biases_in_two_bytes() {
    let dtype_of = |bytes: &[u8], name: &str| {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        header[name]["dtype"].as_str().unwrap().to_string()
    };
    let f16 = random_model(&RandomSpec { dtype: ValueType::F16, ..spec("dkp", 4.0) }).unwrap();
    let before = f16.to_bytes().unwrap();
    assert_eq!(dtype_of(&before, "output.bias"), "F32");
    for dtype in [ValueType::F16, ValueType::I8, ValueType::I4] {
        let mut m = f16.clone();
        m.store_as(dtype);
        let after = m.to_bytes().unwrap();
        for name in ["output.bias", "layers.0.bias", "layers.1.bias"] {
            assert_eq!(dtype_of(&after, name), "F16", "{dtype:?} {name}");
        }
        let biases = m.layers().iter().map(|l| l.bias.len()).sum::<usize>() + m.output_bias().len();
        let weights_change = random_model(&RandomSpec { dtype, ..spec("dkp", 4.0) }).unwrap().tensor_bytes();
        assert_eq!(m.tensor_bytes(), weights_change - 2 * biases, "{dtype:?}: two bytes a bias instead of four");
        let back = Model::from_bytes(&after).unwrap();
        assert_eq!(back.output_bias(), m.output_bias(), "{dtype:?}: the rounded biases read back exactly");
        assert_eq!(back.to_bytes().unwrap(), after, "{dtype:?}");
    }
    let mut f32_model = f16.clone();
    f32_model.store_as(ValueType::F32);
    assert_eq!(dtype_of(&f32_model.to_bytes().unwrap(), "output.bias"), "F32");
}

#[test]
fn info_reports_compression() {
    let m = random_model(&RandomSpec { hidden: 50, ..spec("dkp", 10.0) }).unwrap();
    let info = m.info();
    assert!((info.lstm_cf - 10.0).abs() < 0.1, "{}", info.lstm_cf);
    assert!(info.lstm_cf_with_indices < info.lstm_cf);
    assert_eq!(info.bytes, m.tensor_bytes());
    let file = m.to_bytes().unwrap();
    let data_start = 8 + u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    assert_eq!(info.bytes, file.len() - data_start, "info counts the tensor data as written");
    assert!(info.total_cf > 1.0 && info.total_cf < info.lstm_cf);
}

/// The header is written with sorted keys, so that a model's file bytes do not
/// depend on the `HashMap` order in which safetensors emits the metadata.
#[test]
fn header_keys_are_sorted() {
    let bytes = random_model(&spec("dkp", 4.0)).unwrap().to_bytes().unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + n]).unwrap();
    let at = |key: &str| header.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no key {key} in {header}"));
    let keys = ["__metadata__", "config", "format", "format_version", "layers.0.bias", "output.bias"];
    assert!(keys.windows(2).all(|k| at(k[0]) < at(k[1])), "keys out of order: {header}");
}

#[test]
fn a_restored_state_predicts_as_before() {
    let mut s = Session::new(random_model(&spec("dkp", 4.0)).unwrap());
    s.feed_text("the cat of");
    let (saved, history) = (s.state(), s.history());
    let before = s.log_probs().to_vec();
    s.feed_text("w3 w4 w5");
    assert_ne!(s.log_probs(), &before[..]);
    s.restore(&saved);
    assert_eq!(s.log_probs(), &before[..]);
    assert_eq!(s.history(), history);
}
