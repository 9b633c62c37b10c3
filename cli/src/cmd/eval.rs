//! `dkp eval`: perplexity of a model on a text file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use dkp_lstm::Session;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{pairs, print_json, read_text, thousands, ModelArgs};

/// Measure the perplexity of a model on a text file.
///
/// The whole text is scored as one stream from a fresh state, exactly as one call of
/// `Session::perplexity` (PTB convention: end-of-sentence tokens count).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The UTF-8 text to score (e.g. `ptb.test.txt`).
    #[arg(long, value_name = "FILE")]
    pub text: PathBuf,
    /// Print `perplexity`, `tokens`, `unknown`, `nll` and `seconds` as JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not draw a progress bar on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    model: String,
    text: String,
    kernels: &'a str,
    perplexity: f64,
    tokens: usize,
    unknown: usize,
    nll: f64,
    seconds: f64,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let text = read_text(&args.text)?;
    let kernels = loaded.model.kernels().name;
    let mut session = Session::new(loaded.model);
    // Drawing is rate-limited by indicatif and hidden when stderr is not a terminal.
    let bar = if args.no_progress {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} tokens, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let ppl = session
        .perplexity_with_progress(&text, |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .with_context(|| format!("cannot score `{}`", args.text.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let report = Report {
        model: args.model.model.display().to_string(),
        text: args.text.display().to_string(),
        kernels,
        perplexity: ppl.perplexity,
        tokens: ppl.tokens,
        unknown: ppl.unknown,
        nll: ppl.nll,
        seconds,
    };
    if args.json {
        return print_json(&report);
    }
    print!(
        "{}",
        pairs(&[
            ("perplexity".into(), format!("{:.3}", report.perplexity)),
            (
                "tokens".into(),
                format!("{} ({} unknown words)", thousands(report.tokens as u64), thousands(report.unknown as u64))
            ),
            ("nll".into(), format!("{:.1} nats ({:.4} per token)", report.nll, report.nll / report.tokens as f64)),
            (
                "time".into(),
                format!(
                    "{:.2} s ({:.0} tokens/s, {kernels} kernels)",
                    seconds,
                    report.tokens as f64 / seconds.max(1e-9)
                )
            ),
        ])
    );
    Ok(())
}
