//! `dkp predict`: the most likely next tokens after a text.

use anyhow::Result;
use dkp_lstm::Session;

use super::{print_json, table, ModelArgs};

/// Show the most likely next tokens after a text.
///
/// The text is read from a fresh state, as at the start of a document.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The text whose continuation to predict.
    #[arg(long, default_value = "")]
    pub text: String,
    /// How many tokens to show.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Print the predictions as a JSON array of `{id, token, prob}`.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let mut session = Session::new(loaded.model);
    let enc = session.feed_text(&args.text);
    if enc.unknown > 0 {
        eprintln!("note: {} of the text's {} words are outside the vocabulary", enc.unknown, enc.words);
    }
    let top = session.top_k(args.k);
    if args.json {
        return print_json(&top);
    }
    let mut rows = vec![["rank", "token", "id", "prob"].map(String::from).to_vec()];
    for (i, p) in top.iter().enumerate() {
        let token = if p.token == "\n" { "\\n".to_string() } else { p.token.clone() };
        rows.push(vec![(i + 1).to_string(), token, p.id.to_string(), format!("{:.4}", p.prob)]);
    }
    print!("{}", table(&rows));
    Ok(())
}
