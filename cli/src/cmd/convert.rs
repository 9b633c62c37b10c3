//! `dkp convert`: rewrite a model with its values stored in another precision.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use dkp_lstm::{Model, Provenance, Session, ValueType};
use dkp_train::fs::{write_atomically, Overwrite};
use serde_json::{json, Value};

use super::{load_model, pairs, read_text, thousands, Dtype};

/// Rewrite a model with its weight values stored as f16, int8 or f32.
///
/// Weights, structure and tokenizer are kept; f16 halves the bytes of every value
/// (computation stays f32), i8 quarters them (plus one absmax per row; dense matrices
/// stay int8 in memory and compute on integers). Rounding changes the model a little,
/// so the perplexities the source recorded no longer describe it: they move to
/// `converted` in the provenance, and `--test` / `--valid` measure the converted file
/// and record its own.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The model to convert.
    pub model: PathBuf,
    /// Where to write the converted model.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Storage precision of the values.
    #[arg(long, value_enum, default_value = "f16")]
    pub dtype: Dtype,
    /// Score the converted model on this text and record it as `test_ppl`.
    #[arg(long, value_name = "FILE")]
    pub test: Option<PathBuf>,
    /// Score the converted model on this text and record it as `valid_ppl`.
    #[arg(long, value_name = "FILE")]
    pub valid: Option<PathBuf>,
    /// Replace `--out` if it exists.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> Result<()> {
    if !args.force && args.out.exists() {
        bail!("`{}` exists; pass --force to replace it", args.out.display());
    }
    let (mut model, source_bytes) = load_model(&args.model)?;
    let dtype = ValueType::from(args.dtype);
    let name = args.dtype.to_possible_value().map_or_else(String::new, |v| v.get_name().to_string());
    let mut provenance = model.provenance().to_map()?;
    let mut moved = serde_json::Map::new();
    for key in ["test_ppl", "valid_ppl"] {
        if let Some(v) = provenance.remove(key) {
            moved.insert(key.into(), v);
        }
    }
    moved.insert("dtype".into(), json!(name));
    moved.insert("source_bytes".into(), json!(source_bytes));
    provenance.insert("converted".into(), Value::Object(moved));
    model.store_as(dtype);
    model.set_provenance(Provenance::from_map(provenance.clone()));

    // Scores come from the written bytes, which hold the rounded values.
    let mut rows = vec![];
    let converted = Model::from_bytes(&model.to_bytes()?).context("cannot reload the converted model")?;
    for (key, path) in [("test_ppl", &args.test), ("valid_ppl", &args.valid)] {
        let Some(path) = path else { continue };
        let text = read_text(path)?;
        let ppl = Session::new(converted.clone())
            .perplexity(&text)
            .with_context(|| format!("cannot score `{}`", path.display()))?;
        provenance.insert(key.into(), json!(ppl.perplexity));
        rows.push((key.to_string(), format!("{:.3} on `{}`", ppl.perplexity, path.display())));
    }
    model.set_provenance(Provenance::from_map(provenance));
    let bytes = model.to_bytes()?;
    write_atomically(&args.out, Overwrite::forced(args.force), &bytes)?;
    rows.insert(
        0,
        ("wrote".into(), format!("{} ({} bytes, values {name})", args.out.display(), thousands(bytes.len() as u64))),
    );
    print!("{}", pairs(&rows));
    Ok(())
}
