//! The binding layer as JavaScript sees it: plain objects, JS `Error`s with the core's
//! messages, state kept consistent. Runs under `wasm-pack test` in Node, Chrome and
//! Firefox (`WASM_BINDGEN_USE_BROWSER=1`), in the scalar and the SIMD build, with the
//! `tools` feature (`randomModel`) on, as `scripts/test-wasm.sh` builds them.
#![cfg(target_arch = "wasm32")]

use dkp_lstm::random::{random_model, RandomSpec};
#[cfg(feature = "tools")]
use dkp_lstm_wasm::{bench_kernel, random_model_bytes};
use dkp_lstm_wasm::{build_info, Model};
use serde_json::{json, Value};
use wasm_bindgen::{JsError, JsValue};
use wasm_bindgen_test::wasm_bindgen_test as test;

/// A returned JS object as JSON, to compare with `json!` literals.
fn plain(v: Result<JsValue, JsError>) -> Value {
    serde_wasm_bindgen::from_value(v.map_err(message).unwrap()).unwrap()
}

/// The message of a thrown JS `Error`.
fn message(e: JsError) -> String {
    js_sys::Error::from(JsValue::from(e)).message().into()
}

#[cfg(feature = "tools")]
fn spec(v: Value) -> JsValue {
    serde_wasm_bindgen::to_value(&v).unwrap()
}

fn model(kind: &str) -> (Vec<u8>, Model) {
    let spec =
        RandomSpec { kind: kind.parse().unwrap(), cf: 4.0, hidden: 16, vocab: 40, seed: 9, ..Default::default() };
    let bytes = random_model(&spec).unwrap().to_bytes().unwrap();
    let model = Model::load(&bytes).unwrap();
    (bytes, model)
}

#[test]
fn build_info_tells_the_truth() {
    let info = plain(build_info());
    let simd = cfg!(target_feature = "simd128");
    assert_eq!(info["simd"], json!(simd));
    assert_eq!(info["kernels"], json!(if simd { "simd128" } else { "scalar" }));
    assert_eq!(info["version"], json!(env!("CARGO_PKG_VERSION")));
}

#[test]
fn info_is_a_plain_object_with_file_facts() {
    let (bytes, m) = model("dkp");
    let info = plain(m.info());
    assert_eq!(info["file_bytes"], json!(bytes.len()));
    assert_eq!(info["format_version"], json!(dkp_lstm::format::FORMAT_VERSION));
    assert_eq!(info["kernels"], plain(build_info())["kernels"]);
    assert_eq!(info["provenance"]["trained"], json!(false));
    assert_eq!(info["vocab"], json!(40));
    assert!(info["weights"].as_array().unwrap().iter().any(|w| w["kind"] == "dkp"));
}

/// `v` with every number as an f64: JavaScript has no integers, serde_json does.
fn floats(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(a) => Value::Array(a.into_iter().map(floats).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, floats(v))).collect()),
        v => v,
    }
}

/// The object built field by field (`src/js.rs`) is the core's `ModelInfo` as serde
/// writes it (`dkp info --json`), plus the file facts and the provenance.
#[test]
fn info_is_the_cores_model_info() {
    for kind in ["dense", "dkp", "hmd", "sparse"] {
        let (bytes, m) = model(kind);
        let core = dkp_lstm::Model::from_bytes(&bytes).unwrap();
        let mut want = serde_json::to_value(core.info()).unwrap();
        want["file_bytes"] = json!(bytes.len());
        want["format_version"] = json!(dkp_lstm::format::FORMAT_VERSION);
        want["provenance"] = serde_json::to_value(core.provenance()).unwrap();
        assert_eq!(floats(plain(m.info())), floats(want), "{kind}");
    }
}

#[test]
fn predictions_match_the_core() {
    let (bytes, mut m) = model("dkp");
    let mut session = dkp_lstm::Session::new(dkp_lstm::Model::from_bytes(&bytes).unwrap());
    let fed = plain(m.feed(JsValue::from("the cat sat")));
    assert_eq!((fed["tokens"].clone(), fed["unknown"].clone()), (json!(3), json!(1)));
    session.feed_text("the cat sat");
    let top = plain(m.top_k(JsValue::from(5.0)));
    let expected: Vec<Value> =
        session.top_k(5).into_iter().map(|p| json!({ "id": p.id, "token": p.token, "prob": p.prob })).collect();
    assert_eq!(top["predictions"], json!(expected));
    assert!(top["ms"].as_f64().unwrap() >= 0.0);

    let ppl = plain(m.perplexity(JsValue::from("the cat\n")));
    let core = session.perplexity("the cat\n").unwrap();
    assert_eq!(ppl["perplexity"], json!(core.perplexity));
    assert_eq!(ppl["tokens"], json!(3));
}

#[test]
fn errors_carry_the_core_message() {
    let truncated = [7u8, 0, 0, 0, 0, 0, 0, 0, b'{'];
    let core = dkp_lstm::Model::from_bytes(&truncated).unwrap_err().to_string();
    assert_eq!(message(Model::load(&truncated).err().unwrap()), core);

    let (_, mut m) = model("dense");
    assert_eq!(
        message(m.feed_token(JsValue::from(40.0)).unwrap_err()),
        "token id 40 is outside the vocabulary of 40 tokens"
    );
    assert_eq!(message(m.perplexity(JsValue::from("")).unwrap_err()), "the text holds no tokens");
    assert!(message(m.set_seed(JsValue::from(f64::NAN)).unwrap_err()).starts_with("invalid `seed`"));
    assert!(message(m.sample_next(JsValue::from(-1.0), JsValue::from(0.0)).unwrap_err())
        .starts_with("invalid `temperature`"));
    // The model still answers after every error above.
    // Wrong types and non-integers are refused, not coerced.
    assert_eq!(message(m.top_k(JsValue::from("3")).unwrap_err()), "invalid `k`: expected a number, got string");
    assert_eq!(message(m.feed(JsValue::from(5.0)).unwrap_err()), "invalid `text`: expected a string, got number");
    assert_eq!(message(m.bench(JsValue::NULL).unwrap_err()), "invalid `n`: expected a number, got null");
    assert!(message(m.top_k(JsValue::from(-1.0)).unwrap_err()).starts_with("invalid `k`: -1 is not an integer"));
    assert!(message(
        m.generate(JsValue::from(2.5), JsValue::from(1.0), JsValue::from(0.0), JsValue::from(1.0)).unwrap_err()
    )
    .starts_with("invalid `n`: 2.5"));
    assert_eq!(plain(m.top_k(JsValue::from(2.0)))["predictions"].as_array().unwrap().len(), 2);
}

#[test]
fn generation_is_deterministic_and_bench_restores_the_state() {
    let (_, mut m) = model("dkp");
    m.feed(JsValue::from("the cat")).unwrap();
    let before = plain(m.top_k(JsValue::from(5.0)))["predictions"].clone();
    let bench = plain(m.bench(JsValue::from(8.0)));
    assert_eq!(bench["samples_us"].as_array().unwrap().len(), 8);
    assert_eq!(plain(m.top_k(JsValue::from(5.0)))["predictions"], before);

    let a = plain(m.generate(JsValue::from(6.0), JsValue::from(1.0), JsValue::from(0.0), JsValue::from(5.0)));
    m.reset();
    m.feed(JsValue::from("the cat")).unwrap();
    let b = plain(m.generate(JsValue::from(6.0), JsValue::from(1.0), JsValue::from(0.0), JsValue::from(5.0)));
    assert_eq!(a["text"], b["text"]);
    assert_eq!(a["tokens"].as_array().unwrap().len(), 6);

    m.set_seed(JsValue::from(1.0)).unwrap();
    let greedy = plain(m.sample_next(JsValue::from(0.0), JsValue::from(0.0)));
    let top = plain(m.top_k(JsValue::from(40.0)))["predictions"].clone();
    assert!(greedy["token"].is_string() && top.as_array().unwrap().len() == 40);
}

/// The tools module's `benchKernel`: every kernel timed, bad shapes and names refused.
#[cfg(feature = "tools")]
#[test]
fn kernel_bench_runs_every_kernel() {
    let bench = |name: &str, rows: f64| {
        bench_kernel(JsValue::from(name), JsValue::from(rows), JsValue::from(4.0), JsValue::from(1.0))
    };
    assert!(message(bench("gemv", 0.0).unwrap_err()).starts_with("invalid `shape`"));
    assert!(message(bench("fft", 4.0).unwrap_err()).starts_with("invalid `name`"));
    for name in ["gemv", "gemv_q8", "kp", "dkp"] {
        let us =
            plain(bench_kernel(JsValue::from(name), JsValue::from(256.0), JsValue::from(128.0), JsValue::from(3.0)))
                ["us_per_call"]
                .as_f64()
                .unwrap();
        assert!(us >= 0.0 && us.is_finite(), "{name}: {us}");
    }
}

/// The tools module's `randomModel`: the core's random model, bad specs refused by name.
#[cfg(feature = "tools")]
#[test]
fn random_model_is_the_cores_and_refuses_bad_specs() {
    let bytes =
        random_model_bytes(spec(json!({ "kind": "dkp", "cf": 4, "hidden": 16, "vocab": 40, "seed": 9 }))).unwrap();
    assert_eq!(bytes, model("dkp").0);
    assert!(message(random_model_bytes(spec(json!({ "layer": 2 }))).unwrap_err()).contains("unknown field `layer`"));
    assert!(
        message(random_model_bytes(spec(json!({ "kind": "kp", "cf": 1e9 }))).unwrap_err()).starts_with("cannot build")
    );
}
