//! dkp-train: trains word- and char-level LSTM language models with candle, with dense,
//! Kronecker (KP), doped Kronecker (DKP = A⊗B + S⊙M), magnitude-pruned, low-rank and doped
//! low-rank weights, and writes them in the dkp-lstm runtime's format.
//!
//! - [`data`]: corpora tokenized by the runtime's own [`dkp_lstm::Tokenizer`].
//! - [`weights`]: every weight kind, sized by `dkp_lstm::plan` and exported as runtime matrices.
//! - [`lm`]: the LSTM language model, its training forward pass (with co-matrix dropout)
//!   and the batch-1 stream evaluation that `dkp eval` reproduces.
//! - [`train`]: the loop: sparsity annealing, checkpoints, resume, metrics, export.
//! - [`decompose`]: post-training nearest-Kronecker decomposition (`dkp compress`).
//! - [`cli`]: the `dkp train` and `dkp compress` arguments.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod data;
pub mod decompose;
mod error;
pub mod lm;
pub mod ops;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod train;
pub mod weights;

pub use config::TrainConfig;
pub use error::{Error, Result};
