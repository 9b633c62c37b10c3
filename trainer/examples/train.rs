//! Runs `dkp train` / `dkp compress` without the `dkp` binary.
//!
//! `cargo run --release -p dkp-train --example train -- train --data DIR ...`.

use clap::{Parser, Subcommand};
use dkp_train::cli::{run_compress, run_train, CompressArgs, TrainArgs};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Train(TrainArgs),
    Compress(CompressArgs),
}

fn main() {
    let out = match Cli::parse().cmd {
        Cmd::Train(a) => run_train(&a).map(|r| serde_json::to_string_pretty(&r).expect("reports serialize")),
        Cmd::Compress(a) => run_compress(&a).map(|r| serde_json::to_string_pretty(&r).expect("reports serialize")),
    };
    match out {
        Ok(s) => println!("{s}"),
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                msg += &format!(": {c}");
                cause = c.source();
            }
            eprintln!("{msg}");
            std::process::exit(1);
        }
    }
}
