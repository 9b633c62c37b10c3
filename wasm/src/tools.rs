//! What only the tools module (the `tools` feature; `loadTools()` in the package) has:
//! `randomModel`, random-weight model files for tests, demos and benchmarks, and
//! `benchKernel`, the kernels timed on random matrices.

use super::js::Obj;
use super::{count, fields, invalid, now, text, to_seed, JsResult, MAX_COUNT};
use dkp_lstm::matrix::DenseI8;
use dkp_lstm::plan::{plan, Accounting, Plan};
use dkp_lstm::random::{random_matrix, random_model, RandomSpec, MAX_RANDOM_VALUES};
use dkp_lstm::sample::Rng;
use dkp_lstm::{Kernels, MatVec, Matrix, TokenizerKind, WeightKind};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::prelude::*;

/// A random-weight model file (see `dkp_lstm::random`); unset fields take the core's defaults.
#[wasm_bindgen(js_name = randomModel)]
pub fn random_model_bytes(spec: JsValue) -> JsResult<Vec<u8>> {
    let js: JsSpec = from_js(&spec, |e| JsError::new(&format!("invalid random model spec: {e}")))?;
    let d = RandomSpec::default();
    let spec = RandomSpec {
        layers: js.layers.unwrap_or(d.layers),
        hidden: js.hidden.unwrap_or(d.hidden),
        vocab: js.vocab.unwrap_or(d.vocab),
        kind: js.kind.unwrap_or(d.kind),
        cf: js.cf.unwrap_or(d.cf),
        output_kind: js.output_kind.unwrap_or(d.output_kind),
        output_cf: js.output_cf.unwrap_or(d.output_cf),
        embedding_kind: match js.embedding_kind.as_deref() {
            None => d.embedding_kind,
            Some("tied") => None,
            Some(k) => Some(k.parse::<WeightKind>().map_err(|e| invalid("embeddingKind", e.to_string()))?),
        },
        fused: js.fused.unwrap_or(d.fused),
        tokenizer: js.tokenizer.unwrap_or(d.tokenizer),
        seed: js.seed.map(|s| to_seed(&s.into())).transpose()?.unwrap_or(d.seed),
        ..d
    };
    // `random_model` validates the spec before allocating: running out of wasm memory
    // traps the instance.
    Ok(random_model(&spec)?.to_bytes()?)
}

/// Mean time of one `rows × cols` matrix–vector product over `iters` calls: `gemv`
/// dense, `kp` A⊗B and `dkp` A⊗B + S (both at 25x compression), on this build's kernels.
#[wasm_bindgen(js_name = benchKernel)]
pub fn bench_kernel(name: JsValue, rows: JsValue, cols: JsValue, iters: JsValue) -> JsResult<JsValue> {
    let name = text("name", &name)?;
    let (rows, cols) = (count("rows", &rows, MAX_COUNT)?, count("cols", &cols, MAX_COUNT)?);
    let iters = count("iters", &iters, MAX_COUNT)?;
    if rows == 0 || cols == 0 || rows as u64 * cols as u64 > MAX_RANDOM_VALUES || iters == 0 {
        let reason =
            format!("{rows}x{cols} over {iters} calls; need sides ≥ 1, at most {MAX_RANDOM_VALUES} values, ≥ 1 call");
        return Err(invalid("shape", reason));
    }
    let shape = match name.as_str() {
        "gemv" | "gemv_q8" => Plan::Dense,
        "kp" => plan(WeightKind::Kp, rows, cols, 25.0, Accounting::Values)?,
        "dkp" => plan(WeightKind::Dkp, rows, cols, 25.0, Accounting::Values)?,
        _ => return Err(invalid("name", format!("`{name}` is not one of gemv, gemv_q8, kp, dkp"))),
    };
    let mut rng = Rng::new(1);
    let mut m = random_matrix(shape, rows, cols, &mut rng);
    if name == "gemv_q8" {
        m = Matrix::DenseI8(DenseI8::quantise(rows, cols, m.to_dense().data()));
    }
    let x: Vec<f32> = (0..cols).map(|_| rng.symmetric(1.0)).collect();
    let (mut y, mut scratch) = (vec![0.0; rows], vec![0.0; m.scratch_len()]);
    let kernels = Kernels::best();
    let t0 = now();
    for _ in 0..iters {
        m.matvec(&kernels, &x, &mut y, &mut scratch);
        std::hint::black_box(&mut y);
    }
    Ok(Obj::new().set("us_per_call", 1e3 * (now() - t0) / iters as f64).build())
}

/// A JS object of named fields (`undefined` or `null`: every field unset) as `T`; a
/// misspelled field or a value of the wrong type is `bad(reason)`.
fn from_js<T: DeserializeOwned + Default>(v: &JsValue, bad: impl Fn(String) -> JsError) -> JsResult<T> {
    if v.is_undefined() || v.is_null() {
        return Ok(T::default());
    }
    // serde_json has no NaN or infinity: it would read them as null, that is unset.
    for (name, value) in fields(v).map_err(&bad)? {
        if let Some(x) = value.as_f64().filter(|x| !x.is_finite()) {
            return Err(bad(format!("`{name}` is {x}, not a finite number")));
        }
    }
    // Through serde_json, which (unlike serde-wasm-bindgen) reports misspelled fields.
    let value: serde_json::Value = serde_wasm_bindgen::from_value(v.clone()).map_err(|e| bad(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JsSpec {
    layers: Option<usize>,
    hidden: Option<usize>,
    vocab: Option<usize>,
    kind: Option<WeightKind>,
    cf: Option<f64>,
    output_kind: Option<WeightKind>,
    output_cf: Option<f64>,
    embedding_kind: Option<String>,
    fused: Option<bool>,
    tokenizer: Option<TokenizerKind>,
    seed: Option<f64>,
}
