//! dkp-lstm: LSTM language models compressed with doped Kronecker products, run token by
//! token natively and in WebAssembly.
//!
//! A model file (see `docs/format.md`) holds an embedding, LSTM layers and an output
//! projection, each weight of any kind: dense, Kronecker A⊗B, doped Kronecker
//! A⊗B + S, low-rank U·V, HMD (dense rows above low-rank rows; both optionally doped)
//! or sparse CSR. [`Model::from_bytes`] validates a file completely; a [`Session`] runs
//! it without allocating per token.
//!
//! ```
//! use dkp_lstm::{random::{random_model, RandomSpec}, Model, Session, WeightKind};
//!
//! let spec = RandomSpec { kind: WeightKind::Dkp, cf: 8.0, ..RandomSpec::default() };
//! let bytes = random_model(&spec).unwrap().to_bytes().unwrap();
//! let mut session = Session::new(Model::from_bytes(&bytes).unwrap());
//! session.feed_text("the cat");
//! let next = session.top_k(3);
//! assert_eq!(next.len(), 3);
//! assert!(next.iter().map(|p| p.prob).sum::<f32>() <= 1.0 + 1e-5);
//! ```
//!
//! # Kernels
//! The hot loops live in [`kernels`], one module per instruction set: portable
//! scalar, WebAssembly SIMD128 (compiled in with `-C target-feature=+simd128`) and
//! x86-64 AVX2+FMA (detected at run time). [`Kernels::best`] picks one when a model
//! is loaded; [`Model::with_kernels`] overrides it.
//!
//! # Numerics
//! All arithmetic is f32. Kernel sets differ only in summation order and in the
//! approximations of `exp`/`tanh`; the golden tests bound the difference of
//! log-probabilities between sets.
#![deny(missing_docs)]

mod error;
pub mod format;
pub mod info;
mod lstm;
pub mod matrix;
mod model;
pub mod plan;
mod provenance;
pub mod random;
pub mod sample;
mod scores;
mod session;
pub mod tokenizer;

pub use dkp_kernels as kernels;
pub use error::{Error, Result};
pub use kernels::Kernels;
pub use lstm::{Gates, LstmLayer, StepBuffers};
pub use matrix::{MatVec, Matrix, ValueType, Weight, WeightKind};
pub use model::{Embedding, Model, MAX_DIM, MAX_LAYERS};
pub use provenance::Provenance;
pub use session::{Perplexity, Prediction, Session, State};
pub use tokenizer::{Tokenizer, TokenizerKind};
