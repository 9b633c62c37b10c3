//! `dkp bench`: per-token latency of a model, LSTM layers and output layer apart.

use std::time::Instant;

use anyhow::{bail, Result};
use dkp_lstm::sample::{sample, Rng, Sampling};
use dkp_lstm::Session;

use super::{pairs, print_json, thousands, ModelArgs};

/// Measure per-token latency, split into the LSTM layers and the output layer.
///
/// The LSTM layers (`Session::feed`) and the output layer (`Session::log_probs`) are
/// timed apart, token by token, and summarised by median and 90th percentile. The
/// tokens fed are sampled from the model itself (untimed).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Tokens to time.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub tokens: usize,
    /// Tokens to run before timing starts (warms caches and branch predictors).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub warmup: usize,
    /// Seed of the sampled token sequence.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the figures as JSON (`us_per_token`, `lstm_us_per_token`, `output_us_per_token`, `kernels`, …).
    #[arg(long)]
    pub json: bool,
}

/// Median and 90th percentile, in microseconds.
#[derive(serde::Serialize, Clone, Copy)]
struct Spread {
    median: f64,
    p90: f64,
}

fn spread(mut us: Vec<f64>) -> Spread {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    Spread { median: at(0.5), p90: at(0.9) }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    model: String,
    kernels: &'a str,
    tokens: usize,
    warmup: usize,
    /// Median of (LSTM + output) per token.
    us_per_token: f64,
    lstm_us_per_token: f64,
    output_us_per_token: f64,
    p90_us_per_token: f64,
    lstm_p90_us_per_token: f64,
    output_p90_us_per_token: f64,
    tokens_per_second: f64,
    lstm_macs_per_token: usize,
    output_macs_per_token: usize,
}

pub fn run(args: Args) -> Result<()> {
    if args.tokens == 0 {
        bail!("--tokens must be at least 1");
    }
    let loaded = args.model.load()?;
    let info = loaded.model.info();
    let mut session = Session::new(loaded.model);
    let mut rng = Rng::new(args.seed);
    let sampling = Sampling::default();
    let (mut lstm, mut output, mut total) = (vec![], vec![], vec![]);
    let mut next = session.model().tokenizer().boundary().unwrap_or(0);
    for i in 0..args.warmup + args.tokens {
        let t0 = Instant::now();
        session.feed(next)?;
        let t1 = Instant::now();
        let log_probs = session.log_probs();
        let t2 = Instant::now();
        next = sample(log_probs, sampling, &mut rng);
        if i >= args.warmup {
            let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
            lstm.push(us(t1 - t0));
            output.push(us(t2 - t1));
            total.push(us(t2 - t0));
        }
    }
    let mean = total.iter().sum::<f64>() / total.len() as f64;
    let (lstm, output, total) = (spread(lstm), spread(output), spread(total));
    let report = Report {
        model: args.model.model.display().to_string(),
        kernels: info.kernels,
        tokens: args.tokens,
        warmup: args.warmup,
        us_per_token: total.median,
        lstm_us_per_token: lstm.median,
        output_us_per_token: output.median,
        p90_us_per_token: total.p90,
        lstm_p90_us_per_token: lstm.p90,
        output_p90_us_per_token: output.p90,
        tokens_per_second: 1e6 / mean.max(1e-9),
        lstm_macs_per_token: info.lstm.macs,
        output_macs_per_token: info.output.macs,
    };
    if args.json {
        return print_json(&report);
    }
    let row = |name: &str, s: Spread, macs: Option<usize>| {
        let macs = macs.map(|m| format!(", {} MACs", thousands(m as u64))).unwrap_or_default();
        (name.to_string(), format!("{:>9.2} µs median, {:>9.2} µs p90{macs}", s.median, s.p90))
    };
    println!("{} tokens after {} warm-up tokens, {} kernels", args.tokens, args.warmup, info.kernels);
    print!(
        "{}",
        pairs(&[
            row("LSTM layers", lstm, Some(info.lstm.macs)),
            row("output layer", output, Some(info.output.macs)),
            row("per token", total, None),
            ("throughput".into(), format!("{:.0} tokens/s (mean)", report.tokens_per_second)),
        ])
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_picks_order_statistics() {
        let s = spread((1..=11).rev().map(f64::from).collect());
        assert_eq!((s.median, s.p90), (6.0, 10.0));
        let one = spread(vec![3.0]);
        assert_eq!((one.median, one.p90), (3.0, 3.0));
    }
}
