//! dkp-train: trains LSTM language models with candle and writes them in the dkp-lstm format.
//!
//! Word- and char-level models, with dense, Kronecker (KP), doped Kronecker
//! (DKP = A⊗B + S⊙M), magnitude-pruned, low-rank and doped low-rank weights.
//!
//! - [`data`]: corpora tokenized by the runtime's own [`dkp_lstm::Tokenizer`].
//! - [`weights`]: every weight kind, sized by `dkp_lstm::plan` and exported as runtime matrices.
//! - [`sparse`]: S's products over its entries alone, once the anneal has made it sparse.
//! - [`ops`]: the custom candle ops (fused output layer and loss, LSTM layer, Kronecker
//!   product), over [`storage`]'s zero-copy views of tensors.
//! - [`lm`]: the LSTM language model, its training forward pass (with co-matrix dropout)
//!   and [`lm::Lm::stream_nll`], the batch-1 stream evaluation behind every reported
//!   perplexity, which `dkp eval` reproduces.
//! - [`train`]: the loop: sparsity annealing, checkpoints, resume, metrics, export.
//! - [`distill`]: a teacher's top-k soft targets over the training stream (knowledge distillation).
//! - [`decompose`]: nearest-Kronecker decomposition of a trained dense weight.
//! - [`compress`]: the `dkp compress` pipeline: decompose, fine-tune, export.
//! - [`fs`]: the atomic file writer every model, checkpoint and chart goes through.
//! - [`cli`]: the `dkp train`, `dkp compress` and `dkp plot` arguments.
#![deny(missing_docs)]

pub mod checkpoint;
pub mod cli;
pub mod compress;
pub mod config;
pub mod data;
pub mod decompose;
pub mod distill;
mod error;
pub mod fs;
pub mod lm;
pub mod ops;
pub mod optim;
pub mod plot;
pub mod rng;
pub mod sparse;
pub mod storage;
pub mod train;
pub mod weights;

pub use config::TrainConfig;
pub use error::{Error, Result};
