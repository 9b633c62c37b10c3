//! Golden outputs: committed model files give the committed log-probabilities, on every
//! kernel set natively and, through `wasm_bindgen_test`, in the scalar and SIMD wasm builds.
//!
//! `tests/data/golden.json` holds, per model, a text, its token ids and the full
//! next-token log-probability vector after feeding them (from a reset state), computed
//! with the scalar kernels when the files were made. Regenerate the models and the
//! JSON (only after a deliberate change of numerics or format) with
//! `cargo test --test golden -- --ignored bless`.
//!
//! Tolerance: |Δ log p| ≤ 1e-4 per entry. The kernel sets differ only in summation
//! order and in their exp/tanh approximations (a few ulp, see `kernels/src/tests.rs`).
//! Through these hidden-16 models and 8 tokens that is bounded by roughly a hundred
//! roundings of log-probabilities of size ~4, a few 1e-5 at worst (natively, scalar and AVX2
//! even agree to the bit on these files), so 1e-4 leaves headroom for the wasm
//! builds' libm and SIMD128 sums, while a real defect (a swapped gate, a wrong index,
//! a misread tensor) moves log-probabilities by 1e-2 or more.

use dkp_lstm::random::{random_model, RandomSpec};
use dkp_lstm::{Kernels, Model, Session, TokenizerKind, ValueType, WeightKind};
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const TOLERANCE: f32 = 1e-4;

/// One golden case: a model file and what it predicts after a text.
#[derive(Serialize, Deserialize)]
struct Case {
    file: String,
    /// How the file was made (`dkp_lstm::random::random_model`).
    recipe: String,
    text: String,
    ids: Vec<u32>,
    log_probs: Vec<f32>,
}

/// The files, embedded so that the wasm runs (which have no file system) read the same bytes.
const FILES: [(&str, &[u8]); 4] = [
    ("word-dkp-fused-tied.safetensors", include_bytes!("data/word-dkp-fused-tied.safetensors")),
    ("char-dkp-split.safetensors", include_bytes!("data/char-dkp-split.safetensors")),
    ("word-dhmd-hmd-output.safetensors", include_bytes!("data/word-dhmd-hmd-output.safetensors")),
    ("word-dense-i8-split.safetensors", include_bytes!("data/word-dense-i8-split.safetensors")),
];
const GOLDEN: &str = include_str!("data/golden.json");

fn model_bytes(file: &str) -> &'static [u8] {
    FILES.iter().find(|(name, _)| *name == file).map(|(_, b)| *b).unwrap_or_else(|| panic!("no file {file}"))
}

/// Feeds the case's ids from a reset state and returns the next-token log-probabilities.
fn run(model: Model, ids: &[u32]) -> Vec<f32> {
    let mut session = Session::new(model);
    for &id in ids {
        session.feed(id).unwrap();
    }
    session.log_probs().to_vec()
}

#[test]
fn golden_log_probs_on_every_kernel_set() {
    let cases: Vec<Case> = serde_json::from_str(GOLDEN).unwrap();
    assert_eq!(cases.len(), FILES.len());
    let sets = Kernels::available();
    // The SIMD build must really test its SIMD kernels (and x86-64 its AVX2 ones, where the CPU has them).
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    assert!(sets.iter().any(|k| k.name == "simd128"));
    for case in &cases {
        let model = Model::from_bytes(model_bytes(&case.file)).unwrap();
        assert_eq!(model.tokenizer().encode(&case.text).ids, case.ids, "{}: tokenization", case.file);
        for &kernels in &sets {
            let got = run(model.clone().with_kernels(kernels), &case.ids);
            assert_eq!(got.len(), case.log_probs.len());
            let (worst, at) = got.iter().zip(&case.log_probs).map(|(g, e)| (g - e).abs()).zip(0..).fold(
                (0.0f32, 0),
                |best, (d, i)| {
                    if d > best.0 || d.is_nan() {
                        (d, i)
                    } else {
                        best
                    }
                },
            );
            assert!(
                worst <= TOLERANCE,
                "{} on {}: log p[{at}] is {} instead of {} (|Δ| {worst} > {TOLERANCE})",
                case.file,
                kernels.name,
                got[at],
                case.log_probs[at]
            );
        }
    }
}

/// Rewrites `tests/data/`: the models from their recipes and the expected outputs,
/// computed with the scalar kernels (the specification).
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore = "rewrites tests/data/; run deliberately with --ignored bless"]
fn bless() {
    let word = RandomSpec {
        layers: 2,
        hidden: 16,
        vocab: 50,
        kind: WeightKind::Dkp,
        cf: 4.0,
        embedding_kind: None,
        fused: true,
        seed: 2024,
        ..RandomSpec::default()
    };
    let char = RandomSpec {
        layers: 1,
        hidden: 16,
        vocab: 60,
        kind: WeightKind::Dkp,
        cf: 4.0,
        fused: false,
        tokenizer: TokenizerKind::Char,
        seed: 7,
        ..RandomSpec::default()
    };
    // Doped HMD gates and a plain HMD output projection: both row blocks of both kinds.
    let hmd = RandomSpec {
        layers: 2,
        hidden: 16,
        vocab: 50,
        kind: WeightKind::DHmd,
        cf: 4.0,
        output_kind: WeightKind::Hmd,
        output_cf: 2.0,
        fused: true,
        seed: 12,
        ..RandomSpec::default()
    };
    // Int8: dense gates, embedding and output on the integer kernels.
    let int8 = RandomSpec {
        layers: 2,
        hidden: 16,
        vocab: 50,
        fused: false,
        dtype: ValueType::I8,
        seed: 8,
        ..RandomSpec::default()
    };
    let recipes = [
        ("word-dkp-fused-tied.safetensors", word, "the cat sat on the mat\nit was"),
        ("char-dkp-split.safetensors", char, "The cat, 42!"),
        ("word-dhmd-hmd-output.safetensors", hmd, "the cat sat on the mat\nit was"),
        ("word-dense-i8-split.safetensors", int8, "the cat sat on the mat\nit was"),
    ];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut cases = vec![];
    for (file, spec, text) in recipes {
        let bytes = random_model(&spec).unwrap().to_bytes().unwrap();
        std::fs::write(dir.join(file), &bytes).unwrap();
        let model = Model::from_bytes(&bytes).unwrap().with_kernels(Kernels::scalar());
        let ids = model.tokenizer().encode(text).ids;
        let log_probs = run(model, &ids);
        cases.push(Case { file: file.into(), recipe: format!("{spec:?}"), text: text.into(), ids, log_probs });
    }
    std::fs::write(dir.join("golden.json"), serde_json::to_string_pretty(&cases).unwrap() + "\n").unwrap();
}
