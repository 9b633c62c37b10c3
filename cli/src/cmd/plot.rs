//! `dkp plot`: training curves of several runs in one SVG; the work is done by `dkp_train`.

use anyhow::Result;

/// Chart several training runs side by side.
pub type Args = dkp_train::cli::PlotArgs;

pub fn run(args: Args) -> Result<()> {
    Ok(dkp_train::cli::run_plot(&args)?)
}
