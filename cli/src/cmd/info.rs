//! `dkp info`: what a model file holds and how much it is compressed.

use anyhow::Result;
use dkp_lstm::info::{ModelInfo, PartInfo};
use serde_json::Value;

use super::{pairs, print_json, table, thousands, ModelArgs};

/// Show a model's layers, weight shapes, sizes, compression factors and provenance.
///
/// Compression factors (CF) compare each matrix with the dense matrix of the same
/// shape, counting stored values only ("CF") or values plus sparse indices ("CF+idx").
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print `Model::info()` as JSON (plus `file_bytes` and `provenance`) instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let loaded = args.model.load()?;
    let info = loaded.model.info();
    let provenance = loaded.model.provenance().to_map()?;
    if args.json {
        let mut v = serde_json::to_value(&info)?;
        if let Value::Object(map) = &mut v {
            map.insert("file_bytes".into(), loaded.file_bytes.into());
            map.insert("provenance".into(), Value::Object(provenance));
        }
        return print_json(&v);
    }
    print!("{}", render(&args.model.model.display().to_string(), loaded.file_bytes, &info, &provenance));
    Ok(())
}

fn render(path: &str, file_bytes: u64, info: &ModelInfo, prov: &serde_json::Map<String, Value>) -> String {
    let hidden: Vec<String> = info.hidden.iter().map(|h| h.to_string()).collect();
    let embedding = if info.tied {
        format!("{} (tied to the output projection)", info.embedding_dim)
    } else {
        format!("{} (own matrix)", info.embedding_dim)
    };
    let tokenizer = serde_json::to_value(info.tokenizer).ok().and_then(|v| v.as_str().map(str::to_string));
    let mut out = pairs(&[
        ("model".into(), format!("{path} ({} bytes)", thousands(file_bytes))),
        ("tokenizer".into(), format!("{}, {} tokens", tokenizer.unwrap_or_default(), thousands(info.vocab as u64))),
        ("embedding".into(), embedding),
        ("layers".into(), format!("{} LSTM, hidden {}", info.hidden.len(), hidden.join(", "))),
        ("kernels".into(), info.kernels.into()),
        ("memory".into(), format!("{} bytes of weights once loaded", thousands(info.memory as u64))),
    ]);
    out += "\nprovenance\n";
    out += &provenance(prov);

    let mut weights = vec![["weight", "kind", "shape", "structure", "values", "indices", "bytes", "CF", "CF+idx"]
        .map(String::from)
        .to_vec()];
    for w in &info.weights {
        weights.push(vec![
            w.name.clone(),
            w.kind.to_string(),
            format!("{}x{}", w.shape[0], w.shape[1]),
            if w.detail.is_empty() { "-".into() } else { w.detail.clone() },
            thousands(w.values as u64),
            thousands(w.indices as u64),
            thousands(w.bytes as u64),
            format!("{:.2}", w.cf),
            format!("{:.2}", w.cf_with_indices),
        ]);
    }
    out += "\n";
    out += &table(&weights);

    let total = PartInfo {
        params: info.params,
        indices: info.lstm.indices + info.embedding.indices + info.output.indices,
        bytes: info.bytes,
        cf: info.total_cf,
        cf_with_indices: info.total_cf_with_indices,
        ..PartInfo::default()
    };
    let mut parts = vec![["part", "params", "indices", "bytes", "CF", "CF+idx"].map(String::from).to_vec()];
    let part_row = |name: &str, p: &PartInfo| {
        vec![
            name.to_string(),
            thousands(p.params as u64),
            thousands(p.indices as u64),
            thousands(p.bytes as u64),
            format!("{:.2}", p.cf),
            format!("{:.2}", p.cf_with_indices),
        ]
    };
    parts.push(part_row("LSTM weights", &info.lstm));
    if !info.tied {
        parts.push(part_row("embedding", &info.embedding));
    }
    parts.push(part_row("output", &info.output));
    parts.push(part_row("biases", &info.biases));
    parts.push(part_row("whole model", &total));
    out += "\n";
    out += &table(&parts);
    out
}

/// One line per provenance entry, `trained` first; strings unquoted.
fn provenance(p: &serde_json::Map<String, Value>) -> String {
    let trained = match p.get("trained") {
        Some(Value::Bool(true)) => "yes",
        Some(Value::Bool(false)) => "no (random or untrained weights)",
        _ => "unknown",
    };
    let mut rows = vec![("  trained".to_string(), trained.to_string())];
    for (k, v) in p.iter().filter(|(k, _)| k.as_str() != "trained") {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        rows.push((format!("  {k}"), shown));
    }
    pairs(&rows)
}
