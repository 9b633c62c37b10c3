//! The plain JS objects the package returns, built field by field.
//!
//! Not through serde-wasm-bindgen: its serialiser and the code it instantiates for each
//! type took 17 KB of the runtime module (docs/benchmarks.md). The field names are the
//! core types' serde names, as `dkp info --json` writes them and `npm/index.d.ts`
//! declares them; the wasm tests check `info()` against the core's serde form.

use dkp_lstm::info::{ModelInfo, PartInfo, WeightInfo};
use dkp_lstm::{Perplexity, Prediction};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `Object()`: a new empty object.
    #[wasm_bindgen(js_name = Object)]
    fn new_object() -> JsValue;

    /// `Reflect.set`, on objects this module made (it cannot throw on them).
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &JsValue, key: &str, value: &JsValue) -> bool;
}

/// A plain object under construction.
pub struct Obj(JsValue);

impl Obj {
    pub fn new() -> Obj {
        Obj(new_object())
    }

    /// Sets `key`. Callers pass counts as `f64`, the one number type that reaches
    /// JavaScript as a number on every target (a `u64` becomes a `BigInt`).
    pub fn set(self, key: &str, value: impl Into<JsValue>) -> Obj {
        reflect_set(&self.0, key, &value.into());
        self
    }

    pub fn build(self) -> JsValue {
        self.0
    }
}

impl From<Obj> for JsValue {
    fn from(o: Obj) -> JsValue {
        o.0
    }
}

/// A JS array of `items`.
pub fn array<T: Into<JsValue>>(items: impl IntoIterator<Item = T>) -> JsValue {
    JsValue::from(items.into_iter().map(Into::into).collect::<Vec<JsValue>>())
}

/// A JS array of numbers (an `Array`, not a `Float64Array`).
pub fn numbers(items: impl IntoIterator<Item = f64>) -> JsValue {
    array(items.into_iter().map(JsValue::from_f64))
}

/// `ModelInfo`'s fields; the caller adds the file facts and the provenance.
pub fn model_info(i: &ModelInfo) -> Obj {
    Obj::new()
        .set("tokenizer", i.tokenizer.name())
        .set("vocab", i.vocab as f64)
        .set("embedding_dim", i.embedding_dim as f64)
        .set("hidden", numbers(i.hidden.iter().map(|&h| h as f64)))
        .set("tied", i.tied)
        .set("kernels", i.kernels)
        .set("params", i.params as f64)
        .set("bytes", i.bytes as f64)
        .set("memory", i.memory as f64)
        .set("lstm_cf", i.lstm_cf)
        .set("lstm_cf_with_indices", i.lstm_cf_with_indices)
        .set("total_cf", i.total_cf)
        .set("total_cf_with_indices", i.total_cf_with_indices)
        .set("lstm", part(&i.lstm))
        .set("embedding", part(&i.embedding))
        .set("output", part(&i.output))
        .set("biases", part(&i.biases))
        .set("weights", array(i.weights.iter().map(weight)))
}

fn part(p: &PartInfo) -> Obj {
    Obj::new()
        .set("params", p.params as f64)
        .set("indices", p.indices as f64)
        .set("bytes", p.bytes as f64)
        .set("memory", p.memory as f64)
        .set("dense_params", p.dense_params as f64)
        .set("macs", p.macs as f64)
        .set("cf", p.cf)
        .set("cf_with_indices", p.cf_with_indices)
}

fn weight(w: &WeightInfo) -> Obj {
    Obj::new()
        .set("name", w.name.as_str())
        .set("kind", w.kind.name())
        .set("shape", numbers(w.shape.iter().map(|&s| s as f64)))
        .set("dtype", w.dtype.name())
        .set("detail", w.detail.as_str())
        .set("values", w.values as f64)
        .set("indices", w.indices as f64)
        .set("bytes", w.bytes as f64)
        .set("memory", w.memory as f64)
        .set("macs", w.macs as f64)
        .set("cf", w.cf)
        .set("cf_with_indices", w.cf_with_indices)
}

pub fn predictions(ps: &[Prediction]) -> JsValue {
    array(ps.iter().map(|p| Obj::new().set("id", p.id).set("token", p.token.as_str()).set("prob", p.prob)))
}

/// `Perplexity`'s fields.
pub fn perplexity(p: &Perplexity) -> Obj {
    Obj::new()
        .set("perplexity", p.perplexity)
        .set("nll", p.nll)
        .set("tokens", p.tokens as f64)
        .set("unknown", p.unknown as f64)
        .set("reused", p.reused as f64)
}
