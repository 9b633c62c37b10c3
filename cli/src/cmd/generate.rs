//! `dkp generate`: sample text from a model.

use std::io::Write;

use anyhow::{bail, Result};
use dkp_lstm::sample::{Rng, Sampling};
use dkp_lstm::{Session, TokenizerKind};

use super::ModelArgs;

/// Sample text from a model, optionally continuing a prompt.
///
/// Tokens are printed as they are drawn; the same seed gives the same text here and
/// in WebAssembly.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to continue.
    #[arg(long, default_value = "")]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub tokens: usize,
    /// Softmax temperature; 0 always picks the most likely token.
    #[arg(long, default_value_t = 1.0, value_name = "T")]
    pub temperature: f32,
    /// Sample among the K most likely tokens only; 0 means all.
    #[arg(long, default_value_t = 0, value_name = "K")]
    pub top_k: usize,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Let the sampler draw the unknown token (left out by default).
    #[arg(long)]
    pub allow_unk: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        bail!("--temperature must be a number ≥ 0, not {}", args.temperature);
    }
    let loaded = args.model.load()?;
    let mut session = Session::new(loaded.model);
    let prompt = session.feed_text(&args.prompt);
    if prompt.unknown > 0 {
        eprintln!("note: {} of the prompt's {} words are outside the vocabulary", prompt.unknown, prompt.words);
    }
    let sampling = Sampling { temperature: args.temperature, top_k: args.top_k, allow_unk: args.allow_unk };
    let mut rng = Rng::new(args.seed);
    let word = session.model().tokenizer().kind() == TokenizerKind::Word;
    let mut at_line_start = args.prompt.is_empty() || args.prompt.ends_with(char::is_whitespace);
    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt)?;
    for _ in 0..args.tokens {
        let id = session.sample_next(sampling, &mut rng);
        let tok = session.model().tokenizer();
        if word && Some(id) == tok.eos() {
            writeln!(out)?;
            at_line_start = true;
            continue;
        }
        let text = tok.token(id).unwrap_or_default();
        let sep = if word && !at_line_start { " " } else { "" };
        write!(out, "{sep}{text}")?;
        out.flush()?;
        at_line_start = false;
    }
    if !at_line_start || !word {
        writeln!(out)?;
    }
    Ok(())
}
