//! `dkp train`: train a model and write it in the runtime's format.
//!
//! The work is done by `dkp_train::train` (see `docs/training.md`).

use anyhow::Result;

use super::print_json;

/// Train an LSTM language model (dense, KP, DKP, pruned or low-rank weights).
pub type Args = dkp_train::cli::TrainArgs;

pub fn run(args: Args) -> Result<()> {
    print_json(&dkp_train::cli::run_train(&args)?)
}
