//! WebAssembly bindings: the `Model` class and helpers of the `dkp-lstm` npm package.
//!
//! Thin by design: logic stays in `dkp_lstm`. Exported functions turn the core's
//! [`Error`] into a JS `Error` with the same message (through `?`), validate the
//! plain numbers JavaScript passes in, and return plain objects built field by field
//! ([`js`]). Nothing reachable from JavaScript input unwraps, so no panic (which would
//! trap the whole instance) crosses the boundary.
//!
//! `randomModel` (random-weight model files, with the file writer behind them) and
//! `benchKernel` (kernel timings on random matrices, with the planner behind them) are
//! built only with the `tools` feature: the package ships them as a module of its own
//! (`loadTools()`), so that the module an app loads to read and run models does not
//! carry their code (docs/benchmarks.md).
//!
//! Numbers and texts arrive as `JsValue`, not `usize`/`u32`/`&str`: wasm-bindgen would
//! wrap a negative or fractional JS number into a huge or truncated integer, and
//! coerce `'3'`, `null` or `true` into a number or `5` into a text, without a word. Each
//! is checked here ([`number`], [`count`], [`text`]; [`from_js`] and [`allow_unk`] for
//! option objects) and a bad one is an `Error` naming the argument.

use dkp_lstm::format::FORMAT_VERSION;
use dkp_lstm::sample::{Rng, Sampling};
use dkp_lstm::{Error, Kernels, Session};
use js::{numbers, Obj};
use wasm_bindgen::prelude::*;

mod js;

#[wasm_bindgen]
extern "C" {
    /// Milliseconds on a monotonic clock; `performance` exists in Node, browsers and workers.
    #[wasm_bindgen(js_namespace = performance)]
    fn now() -> f64;

    /// `Array.isArray`: arrays are objects too, and serde would read one as a struct.
    #[wasm_bindgen(js_namespace = Array, js_name = isArray)]
    fn is_array(v: &JsValue) -> bool;

    /// `Object.keys`; a Proxy may throw.
    #[wasm_bindgen(js_namespace = Object, js_name = keys, catch)]
    fn object_keys(v: &JsValue) -> Result<Vec<JsValue>, JsValue>;

    /// `Reflect.get`; a getter may throw.
    #[wasm_bindgen(js_namespace = Reflect, js_name = get, catch)]
    fn reflect_get(target: &JsValue, key: &JsValue) -> Result<JsValue, JsValue>;

    /// `String(v)`: a JS number in messages as JavaScript writes it (`Infinity`, `1e+21`),
    /// and without Rust's float formatting, 20 KB of this module (docs/benchmarks.md).
    #[wasm_bindgen(js_name = String)]
    fn js_string(v: f64) -> String;

    /// `JSON.parse`: the provenance is JSON text that the reader checked.
    #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
    fn json_parse(text: &str) -> Result<JsValue, JsValue>;
}

type JsResult<T> = Result<T, JsError>;

#[cfg(feature = "tools")]
mod tools;
#[cfg(feature = "tools")]
pub use tools::{bench_kernel, random_model_bytes};

/// A language model with its recurrent state and its sampling generator.
#[wasm_bindgen]
pub struct Model {
    session: Session,
    rng: Rng,
    file_bytes: usize,
}

#[wasm_bindgen]
impl Model {
    /// Reads and validates a model file; any defect becomes an `Error` naming it.
    pub fn load(bytes: &[u8]) -> JsResult<Model> {
        let model = dkp_lstm::Model::from_bytes(bytes)?;
        Ok(Model { session: Session::new(model), rng: Rng::new(0), file_bytes: bytes.len() })
    }

    /// Sizes and compression factors (the core's `ModelInfo`), file facts, and the
    /// provenance (read from its JSON text by `JSON.parse`).
    pub fn info(&self) -> JsResult<JsValue> {
        let model = self.session.model();
        let provenance =
            json_parse(model.provenance().json()).map_err(|_| JsError::new("the provenance could not be read"))?;
        Ok(js::model_info(&model.info())
            .set("file_bytes", self.file_bytes as f64)
            .set("format_version", FORMAT_VERSION)
            .set("provenance", provenance)
            .build())
    }

    /// Zeroes the state, as at the start of a text.
    pub fn reset(&mut self) {
        self.session.reset();
    }

    /// Tokenizes and feeds a text.
    pub fn feed(&mut self, text: JsValue) -> JsResult<JsValue> {
        let text = self::text("text", &text)?;
        let t0 = now();
        let enc = self.session.feed_text(&text);
        let ms = now() - t0;
        Ok(Obj::new().set("tokens", enc.ids.len() as f64).set("unknown", enc.unknown as f64).set("ms", ms).build())
    }

    /// Feeds one token by id.
    #[wasm_bindgen(js_name = feedToken)]
    pub fn feed_token(&mut self, id: JsValue) -> JsResult<JsValue> {
        let id = count("id", &id, u32::MAX as usize)? as u32;
        let t0 = now();
        self.session.feed(id)?;
        Ok(Obj::new().set("ms", now() - t0).build())
    }

    /// The `k` most likely next tokens, most likely first.
    #[wasm_bindgen(js_name = topK)]
    pub fn top_k(&mut self, k: JsValue) -> JsResult<JsValue> {
        // More than the vocabulary is all of it, as in the core.
        let k = count("k", &k, MAX_COUNT)?;
        let t0 = now();
        let predictions = self.session.top_k(k);
        Ok(Obj::new().set("predictions", js::predictions(&predictions)).set("ms", now() - t0).build())
    }

    /// Perplexity of a text read from a fresh state; the state is left after the text.
    /// Tokens scored by earlier calls in the same context are reused (`reused`), so
    /// appending to a long text costs only the new tokens; `ms` is the scoring time.
    pub fn perplexity(&mut self, text: JsValue) -> JsResult<JsValue> {
        let text = self::text("text", &text)?;
        let t0 = now();
        let score = self.session.perplexity(&text)?;
        let ms = now() - t0;
        Ok(js::perplexity(&score).set("ms", ms).build())
    }

    /// Seeds the generator used by `sampleNext`.
    #[wasm_bindgen(js_name = setSeed)]
    pub fn set_seed(&mut self, seed: JsValue) -> JsResult<()> {
        self.rng = Rng::new(to_seed(&seed)?);
        Ok(())
    }

    /// Draws the next token (temperature 0: the most likely; `topK` 0: among all) and
    /// feeds it. `options.allowUnk` (default false) lets it draw `<unk>`.
    #[wasm_bindgen(js_name = sampleNext)]
    pub fn sample_next_with(&mut self, temperature: JsValue, top_k: JsValue, options: JsValue) -> JsResult<JsValue> {
        let sampling = to_sampling(&temperature, &top_k, &options)?;
        let t0 = now();
        let id = self.session.sample_next(sampling, &mut self.rng);
        let ms = now() - t0;
        Ok(Obj::new().set("id", id).set("token", self.token(id)).set("ms", ms).build())
    }

    /// Samples `n` tokens from the current state with a fresh generator seeded by
    /// `seed`; `options` as for `sampleNext`.
    #[wasm_bindgen(js_name = generate)]
    pub fn generate_with(
        &mut self,
        n: JsValue,
        temperature: JsValue,
        top_k: JsValue,
        seed: JsValue,
        options: JsValue,
    ) -> JsResult<JsValue> {
        let n = count("n", &n, MAX_TOKENS)?;
        let sampling = to_sampling(&temperature, &top_k, &options)?;
        self.rng = Rng::new(to_seed(&seed)?);
        let (mut ids, mut ms) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let t0 = now();
            ids.push(self.session.sample_next(sampling, &mut self.rng));
            ms.push(now() - t0);
        }
        let text = self.session.model().tokenizer().decode(&ids);
        let tokens = js::array(ids.iter().map(|&id| self.token(id)));
        Ok(Obj::new().set("text", text).set("tokens", tokens).set("ms", numbers(ms)).build())
    }

    /// Median per-token times over `n` random tokens, split into the LSTM layers and
    /// the output layer (projection and log-softmax). The state is restored afterwards.
    pub fn bench(&mut self, n: JsValue) -> JsResult<JsValue> {
        let n = count("n", &n, MAX_TOKENS)?;
        if n == 0 {
            return Err(invalid("n", "bench needs at least one token".into()));
        }
        let vocab = self.session.model().vocab_size();
        let saved = self.session.state();
        let mut rng = Rng::new(0x5eed);
        let (mut lstm, mut output, mut total) = (vec![], vec![], vec![]);
        for _ in 0..n {
            let id = rng.below(vocab) as u32;
            let t0 = now();
            self.session.feed(id)?;
            let t1 = now();
            self.session.log_probs();
            let t2 = now();
            lstm.push(1e3 * (t1 - t0));
            output.push(1e3 * (t2 - t1));
            total.push(1e3 * (t2 - t0));
        }
        self.session.restore(&saved);
        Ok(Obj::new()
            .set("us_per_token", median(total.clone()))
            .set("lstm_us_per_token", median(lstm))
            .set("output_us_per_token", median(output))
            .set("samples_us", numbers(total))
            .build())
    }

    fn token(&self, id: u32) -> String {
        self.session.model().tokenizer().token(id).unwrap_or_default().to_string()
    }
}

/// The forms without options, for Rust callers such as the wasm tests (not exported:
/// JavaScript calls the `_with` methods, whose last argument may be left out).
impl Model {
    /// `sampleNext(temperature, topK)`.
    pub fn sample_next(&mut self, temperature: JsValue, top_k: JsValue) -> JsResult<JsValue> {
        self.sample_next_with(temperature, top_k, JsValue::UNDEFINED)
    }

    /// `generate(n, temperature, topK, seed)`.
    pub fn generate(&mut self, n: JsValue, temperature: JsValue, top_k: JsValue, seed: JsValue) -> JsResult<JsValue> {
        self.generate_with(n, temperature, top_k, seed, JsValue::UNDEFINED)
    }
}

/// Whether this build uses SIMD128, its kernel set and the package version.
#[wasm_bindgen(js_name = buildInfo)]
pub fn build_info() -> JsResult<JsValue> {
    Ok(Obj::new()
        .set("simd", cfg!(target_feature = "simd128"))
        .set("kernels", Kernels::best().name)
        .set("version", env!("CARGO_PKG_VERSION"))
        .build())
}

/// The core's error for a bad argument, as a JS `Error`.
fn invalid(name: &'static str, reason: String) -> JsError {
    Error::InvalidArgument { name, reason }.into()
}

/// Largest `n` of `generate` and `bench`: each token keeps a time and an id, so this
/// bounds what one call allocates (a few MB).
const MAX_TOKENS: usize = 1 << 20;
/// Largest other count (`k`, kernel sizes and iterations): 2³², beyond which a JS
/// number is no longer a sensible count.
const MAX_COUNT: usize = u32::MAX as usize;

/// A JS argument that must be a number.
fn number(name: &'static str, v: &JsValue) -> JsResult<f64> {
    v.as_f64().ok_or_else(|| invalid(name, format!("expected a number, got {}", type_of(v))))
}

/// A JS argument that must be a string.
fn text(name: &'static str, v: &JsValue) -> JsResult<String> {
    v.as_string().ok_or_else(|| invalid(name, format!("expected a string, got {}", type_of(v))))
}

/// The own fields of a plain JS object, or why `v` is not one.
fn fields(v: &JsValue) -> Result<Vec<(String, JsValue)>, String> {
    if !v.is_object() || is_array(v) {
        return Err(format!("expected an object, got {}", if is_array(v) { "array".into() } else { type_of(v) }));
    }
    let keys = object_keys(v).map_err(|_| "its fields cannot be listed".to_string())?;
    keys.into_iter()
        .map(|key| {
            let value = reflect_get(v, &key).map_err(|_| "a field cannot be read".to_string())?;
            Ok((key.as_string().unwrap_or_default(), value))
        })
        .collect()
}

/// The sampling options `{ allowUnk?: boolean }` (`undefined` or `null`: the defaults),
/// read field by field: a whole serde path would cost kilobytes of wasm for one flag.
fn allow_unk(options: &JsValue) -> JsResult<bool> {
    if options.is_undefined() || options.is_null() {
        return Ok(false);
    }
    let mut allow = false;
    for (name, value) in fields(options).map_err(|e| invalid("options", e))? {
        if name != "allowUnk" {
            return Err(invalid("options", format!("unknown field `{name}`, expected `allowUnk`")));
        }
        if !(value.is_undefined() || value.is_null()) {
            allow = value
                .as_bool()
                .ok_or_else(|| invalid("options", format!("`allowUnk` is a {}, not a boolean", type_of(&value))))?;
        }
    }
    Ok(allow)
}

/// `typeof v`, with `null` told apart from objects.
fn type_of(v: &JsValue) -> String {
    if v.is_null() {
        "null".into()
    } else {
        v.js_typeof().as_string().unwrap_or_default()
    }
}

/// A JS number as a count or id: an integer in `0..=max`, else an `Error` naming `name`.
fn count(name: &'static str, v: &JsValue, max: usize) -> JsResult<usize> {
    let v = number(name, v)?;
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= max as f64 {
        Ok(v as usize)
    } else {
        Err(invalid(name, format!("{} is not an integer in 0..={max}", js_string(v))))
    }
}

/// A JS number as a seed: a non-negative integer that JavaScript represents exactly.
fn to_seed(seed: &JsValue) -> JsResult<u64> {
    let seed = number("seed", seed)?;
    if seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 2f64.powi(53) {
        Ok(seed as u64)
    } else {
        Err(invalid("seed", format!("{} is not an integer in 0..=2^53", js_string(seed))))
    }
}

fn to_sampling(temperature: &JsValue, top_k: &JsValue, options: &JsValue) -> JsResult<Sampling> {
    let temperature = number("temperature", temperature)?;
    // f32's range: a larger finite f64 would become an infinite f32 temperature.
    if !(temperature.is_finite() && (0.0..=f32::MAX as f64).contains(&temperature)) {
        return Err(invalid("temperature", format!("{} is not a finite number ≥ 0", js_string(temperature))));
    }
    Ok(Sampling {
        temperature: temperature as f32,
        top_k: count("topK", top_k, MAX_COUNT)?,
        allow_unk: allow_unk(options)?,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_unstable_by(f64::total_cmp);
    v[v.len() / 2]
}
