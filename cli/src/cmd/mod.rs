//! The subcommands, one module each, and what they share: loading a model and printing.

pub mod bench;
pub mod compress;
pub mod convert;
pub mod eval;
pub mod generate;
pub mod info;
pub mod plot;
pub mod predict;
pub mod random;
pub mod train;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use dkp_lstm::{Kernels, Model, ValueType};

/// Storage precision of weight values, as flags spell it (`docs/format.md`: `F32`, `F16`,
/// `I8`, `I4`); computation is f32, or integer for int8 dense matrices.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Dtype {
    F32,
    F16,
    /// Symmetric int8 with one absmax per row.
    I8,
    /// Symmetric int4 with one scale per row, two values a byte: for compressed kinds
    /// (a dense matrix stored so is computed in f32).
    I4,
}

impl From<Dtype> for ValueType {
    fn from(d: Dtype) -> ValueType {
        match d {
            Dtype::F32 => ValueType::F32,
            Dtype::F16 => ValueType::F16,
            Dtype::I8 => ValueType::I8,
            Dtype::I4 => ValueType::I4,
        }
    }
}

/// The model file and kernel choice that every command reading a model takes.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// The model file (safetensors, dkp-lstm format).
    pub model: PathBuf,
    /// Kernel set to run on (e.g. `scalar`, `avx2`); defaults to `$DKP_KERNELS`, else
    /// the fastest one this CPU supports.
    #[arg(long, value_name = "NAME")]
    pub kernels: Option<String>,
}

/// A loaded model and the size of its file.
pub struct Loaded {
    pub model: Model,
    pub file_bytes: u64,
}

impl ModelArgs {
    /// Reads and validates the model and puts it on the chosen kernels.
    pub fn load(&self) -> Result<Loaded> {
        let kernels = self.kernels()?;
        let (model, file_bytes) = load_model(&self.model)?;
        Ok(Loaded { model: model.with_kernels(kernels), file_bytes })
    }

    fn kernels(&self) -> Result<Kernels> {
        // An unknown or unavailable name is an error, so that a run that asked for a set
        // (a test script forcing one with `DKP_KERNELS`) cannot silently run another.
        let (name, from) = match (&self.kernels, std::env::var("DKP_KERNELS")) {
            (Some(name), _) => (name.clone(), "--kernels"),
            (None, Ok(name)) if !name.is_empty() => (name, "DKP_KERNELS"),
            _ => return Ok(Kernels::best()),
        };
        Kernels::by_name(&name).ok_or_else(|| {
            let names: Vec<_> = Kernels::available().iter().map(|k| k.name).collect();
            anyhow!("{from}: kernel set `{name}` is not available here (available: {})", names.join(", "))
        })
    }
}

/// Reads a model file; errors name the path.
pub fn load_model(path: &Path) -> Result<(Model, u64)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read model file `{}`", path.display()))?;
    let model = Model::from_bytes(&bytes).with_context(|| format!("cannot load model `{}`", path.display()))?;
    Ok((model, bytes.len() as u64))
}

/// Reads a UTF-8 text file; errors name the path.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read text file `{}`", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!("text file `{}` is not UTF-8 (invalid byte at offset {})", path.display(), e.utf8_error().valid_up_to())
    })
}

/// Prints a JSON value, pretty, on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `key  value` lines with the values aligned.
pub fn pairs(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k}{}  {v}\n", " ".repeat(width - k.chars().count()))).collect()
}

/// A plain-text table: the first row is the header; columns whose cells all look
/// numeric are right-aligned, others left-aligned.
pub fn table(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width = |c: usize| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncols).map(width).collect();
    let numeric: Vec<bool> = (0..ncols)
        .map(|c| {
            rows.iter()
                .skip(1)
                .filter_map(|r| r.get(c))
                .all(|s| s.chars().all(|ch| ch.is_ascii_digit() || ",.-%x".contains(ch)))
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                let pad = " ".repeat(widths[c] - s.chars().count());
                if numeric[c] {
                    format!("{pad}{s}")
                } else {
                    format!("{s}{pad}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            vec!["name".into(), "n".into()],
            vec!["a".into(), "1,000".into()],
            vec!["long name".into(), "7".into()],
        ]);
        assert_eq!(t, "name           n\na          1,000\nlong name      7\n");
    }
}
