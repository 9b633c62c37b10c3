//! `dkp`: inspect, evaluate, benchmark, sample from and create dkp-lstm model files.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// Work with dkp-lstm model files: LSTM language models whose weights are dense,
/// Kronecker (A⊗B), doped Kronecker (A⊗B + S), low-rank or sparse.
#[derive(Parser)]
#[command(name = "dkp", version, propagate_version = true)]
enum Cli {
    // Each subcommand's help is the doc comment of its `Args`: the first line is the
    // summary listed by `dkp --help`.
    Info(cmd::info::Args),
    Eval(cmd::eval::Args),
    Bench(cmd::bench::Args),
    Random(cmd::random::Args),
    Generate(cmd::generate::Args),
    Predict(cmd::predict::Args),
    Train(cmd::train::Args),
    Compress(cmd::compress::Args),
    Convert(cmd::convert::Args),
    Plot(cmd::plot::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::Info(args) => cmd::info::run(args),
        Cli::Eval(args) => cmd::eval::run(args),
        Cli::Bench(args) => cmd::bench::run(args),
        Cli::Random(args) => cmd::random::run(args),
        Cli::Generate(args) => cmd::generate::run(args),
        Cli::Predict(args) => cmd::predict::run(args),
        Cli::Train(args) => cmd::train::run(args),
        Cli::Compress(args) => cmd::compress::run(args),
        Cli::Convert(args) => cmd::convert::run(args),
        Cli::Plot(args) => cmd::plot::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain: "cannot load `m.dkp`: file is truncated: …".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
