//! `dkp`: inspect, evaluate, benchmark, sample from and create dkp-lstm model files.

mod cmd;

use std::process::ExitCode;

use clap::Parser;

/// Work with dkp-lstm model files: LSTM language models whose weights are dense,
/// Kronecker (A⊗B), doped Kronecker (A⊗B + S), low-rank or sparse.
#[derive(Parser)]
#[command(name = "dkp", version, propagate_version = true)]
enum Cli {
    /// Show a model's layers, weight shapes, sizes, compression factors and provenance.
    Info(cmd::info::Args),
    /// Measure the perplexity of a model on a text file.
    Eval(cmd::eval::Args),
    /// Measure per-token latency, split into the LSTM layers and the output layer.
    Bench(cmd::bench::Args),
    /// Write a model with random weights (marked untrained), of any kind and size.
    Random(cmd::random::Args),
    /// Sample text from a model, optionally continuing a prompt.
    Generate(cmd::generate::Args),
    /// Show the most likely next tokens after a text.
    Predict(cmd::predict::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse() {
        Cli::Info(args) => cmd::info::run(args),
        Cli::Eval(args) => cmd::eval::run(args),
        Cli::Bench(args) => cmd::bench::run(args),
        Cli::Random(args) => cmd::random::run(args),
        Cli::Generate(args) => cmd::generate::run(args),
        Cli::Predict(args) => cmd::predict::run(args),
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
