//! What only the tools module (the `tools` feature; `loadTools()` in the package) has:
//! `randomModel`, random-weight model files for tests, demos and benchmarks.

use super::{fields, invalid, to_seed, JsResult};
use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::TokenizerKind;
use dkp_lstm::WeightKind;
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
