//! `dkp compress`: decompose a trained dense model into doped Kronecker products.
//!
//! The work is done by `dkp_train::compress` (see `docs/training.md`).

use anyhow::Result;

use super::print_json;

/// Compress a dense model's LSTM gates to A⊗B + S (post-training decomposition).
pub type Args = dkp_train::cli::CompressArgs;

pub fn run(args: Args) -> Result<()> {
    print_json(&dkp_train::cli::run_compress(&args)?)
}
