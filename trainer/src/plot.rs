//! SVG training curves from `metrics.jsonl`, of one run or of several side by side.
//!
//! Perplexities, co-matrix densities and path norms.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::Value;

use crate::error::{io_err, Error, Result};
use crate::fs::{write_atomically, Overwrite};

type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The parsed lines of a `metrics.jsonl` (lines that are not JSON are skipped).
fn read_metrics(metrics: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(metrics).map_err(io_err(metrics))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// Writes `ppl.svg`, and `density.svg` and `norms.svg` when the run has masked or doped weights.
pub fn write_plots(metrics: &Path, dir: &Path) -> Result<()> {
    let (mut ppl, mut density, mut norms) = (Series::new(), Series::new(), Series::new());
    for v in read_metrics(metrics)? {
        let Some(step) = v["step"].as_f64() else {
            continue;
        };
        match v["type"].as_str() {
            Some("train") => {
                if let Some(p) = v["train_ppl"].as_f64() {
                    ppl.entry("train".into()).or_default().push((step, p));
                }
                for (k, d) in v["density"].as_object().into_iter().flatten() {
                    density.entry(k.clone()).or_default().push((step, d.as_f64().unwrap_or(0.0)));
                }
                for n in v["norms"].as_array().into_iter().flatten() {
                    let name = n["name"].as_str().unwrap_or("?");
                    norms
                        .entry(format!("{name} ‖base·x‖"))
                        .or_default()
                        .push((step, n["base"].as_f64().unwrap_or(0.0)));
                    norms.entry(format!("{name} ‖S·x‖")).or_default().push((step, n["sparse"].as_f64().unwrap_or(0.0)));
                }
            }
            Some("valid") => {
                if let Some(p) = v["valid_ppl"].as_f64() {
                    ppl.entry("valid".into()).or_default().push((step, p));
                }
            }
            _ => {}
        }
    }
    chart(&dir.join("ppl.svg"), "perplexity", "step", &ppl, Axis::Log, UPPER_RIGHT)?;
    chart(&dir.join("density.svg"), "density of S (or of pruned W)", "step", &density, Axis::Linear, UPPER_RIGHT)?;
    chart(&dir.join("norms.svg"), "mean path norms of doped weights", "step", &norms, Axis::Linear, UPPER_RIGHT)
}

/// What a chart of several runs shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    /// Validation perplexity at each epoch's end, and training perplexity.
    Ppl,
    /// Density of each masked weight.
    Density,
    /// `‖S·x‖ / ‖base·x‖` of each doped weight (base: `A⊗B` or the low-rank product):
    /// how much of the layer's output the co-matrix carries, which co-matrix dropout is
    /// meant to keep small (the paper's co-matrix adaptation).
    Norms,
}

/// One chart of several runs against epochs, each run a `(label, metrics.jsonl)` pair.
pub fn compare(runs: &[(String, PathBuf)], what: Compare, title: &str, out: &Path) -> Result<()> {
    let mut series = Series::new();
    for (label, metrics) in runs {
        for v in read_metrics(metrics)? {
            let Some(epoch) = v["epoch"].as_f64() else {
                continue;
            };
            match (what, v["type"].as_str()) {
                (Compare::Ppl, Some("valid")) => {
                    if let Some(p) = v["valid_ppl"].as_f64() {
                        series.entry(format!("{label} valid")).or_default().push((epoch, p));
                    }
                }
                (Compare::Ppl, Some("train")) => {
                    if let Some(p) = v["train_ppl"].as_f64() {
                        series.entry(format!("{label} train")).or_default().push((epoch, p));
                    }
                }
                (Compare::Density, Some("train")) => {
                    for (k, d) in v["density"].as_object().into_iter().flatten() {
                        series.entry(format!("{label} {k}")).or_default().push((epoch, d.as_f64().unwrap_or(0.0)));
                    }
                }
                (Compare::Norms, Some("train")) => {
                    for n in v["norms"].as_array().into_iter().flatten() {
                        let (Some(name), Some(base), Some(sparse)) =
                            (n["name"].as_str(), n["base"].as_f64(), n["sparse"].as_f64())
                        else {
                            continue;
                        };
                        if base > 0.0 {
                            series.entry(format!("{label} {name}")).or_default().push((epoch, sparse / base));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if series.is_empty() {
        return Err(Error::Io {
            path: out.to_path_buf(),
            source: std::io::Error::other("the runs' metrics hold nothing to plot"),
        });
    }
    let axis = match what {
        // Early training perplexities (thousands) would flatten the differences that
        // matter; show from the lowest point to a little above the worst validation.
        Compare::Ppl => {
            let all = series.values().flatten().map(|p| p.1);
            let valid = series.iter().filter(|(k, _)| k.ends_with(" valid")).flat_map(|(_, v)| v).map(|p| p.1);
            let lo = all.fold(f64::MAX, f64::min);
            match valid.fold(f64::MIN, f64::max) {
                hi if hi > lo => Axis::Window(0.9 * lo, 1.2 * hi),
                _ => Axis::Log,
            }
        }
        Compare::Density => Axis::Linear,
        // Ratios from a few hundredths to a few: equal factors, equal distances.
        Compare::Norms => Axis::Log,
    };
    // Ratios sit in the top decades of their axis; curves that fall leave the top right free.
    let legend = if what == Compare::Norms { SeriesLabelPosition::LowerLeft } else { UPPER_RIGHT };
    chart(out, title, "epoch", &series, axis, legend)
}

/// The y axis of a chart.
#[derive(Clone, Copy)]
enum Axis {
    /// Logarithmic, whole decades around the data.
    Log,
    /// Linear from 0 (or the lowest value, if negative) to a little above the data.
    Linear,
    /// Linear over this window; points outside it are left out.
    Window(f64, f64),
}

/// Colour and width of series `i`. Perplexity charts of several runs hold a "train" and
/// a "valid" series per run, adjacent in name order: one colour per run, train faint.
fn style(i: usize, name: &str) -> ShapeStyle {
    const PALETTE: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    if name.ends_with(" train") || name.ends_with(" valid") {
        let color = PALETTE[(i / 2) % PALETTE.len()];
        return match name.ends_with(" train") {
            true => color.mix(0.35).stroke_width(1),
            false => color.stroke_width(2),
        };
    }
    PALETTE[i % PALETTE.len()].stroke_width(1)
}

const UPPER_RIGHT: SeriesLabelPosition = SeriesLabelPosition::UpperRight;

fn chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    series: &Series,
    axis: Axis,
    legend: SeriesLabelPosition,
) -> Result<()> {
    let shown = |p: &(f64, f64)| match axis {
        Axis::Log => p.1.is_finite() && p.1 > 0.0,
        Axis::Linear => p.1.is_finite(),
        Axis::Window(lo, hi) => p.1 >= lo && p.1 <= hi,
    };
    let points: Vec<&(f64, f64)> = series.values().flatten().filter(|p| shown(p)).collect();
    if points.is_empty() {
        return Ok(());
    }
    let fail = |e: String| Error::Io { path: path.to_path_buf(), source: std::io::Error::other(e) };
    let x_max = points.iter().map(|p| p.0).fold(1.0, f64::max);
    let (y_min, y_max) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let y_max = if y_max > y_min { y_max } else { y_min + 1.0 };
    // Drawn in memory and written whole, so a viewer never loads a half-drawn chart.
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut builder = ChartBuilder::on(&root);
    builder.caption(title, ("sans-serif", 20)).margin(10).x_label_area_size(35).y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart.configure_mesh().x_desc(x_desc).draw().map_err(|e| fail(e.to_string()))?;
            for (i, (name, pts)) in series.iter().enumerate() {
                let color = style(i, name);
                chart
                    .draw_series(LineSeries::new(pts.iter().copied().filter(|p| shown(p)), color))
                    .map_err(|e| fail(e.to_string()))?
                    .label(name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            }
            chart
                .configure_series_labels()
                .position(legend)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(e.to_string()))?;
        }};
    }
    match axis {
        Axis::Log => {
            // Whole decades: plotters labels a log axis only within complete decades, and the
            // end of training (perplexity well under 100) would otherwise have no labels.
            let (lo, hi) = (10f64.powf(y_min.log10().floor()), 10f64.powf(y_max.log10().ceil()));
            draw!(builder.build_cartesian_2d(0.0..x_max, (lo..hi).log_scale()).map_err(|e| fail(e.to_string()))?);
        }
        Axis::Linear | Axis::Window(..) => {
            let (lo, hi) = match axis {
                Axis::Window(lo, hi) => (lo, hi),
                _ => (y_min.min(0.0), y_max * 1.05),
            };
            draw!(builder.build_cartesian_2d(0.0..x_max, lo..hi).map_err(|e| fail(e.to_string()))?);
        }
    }
    root.present().map_err(|e| fail(e.to_string()))?;
    drop(root);
    write_atomically(path, Overwrite::Replace, svg.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perplexity_axis_is_labelled_where_training_ends() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = dir.path().join("metrics.jsonl");
        let lines: Vec<String> = (1..=20)
            .map(|i| format!(r#"{{"type":"train","step":{},"train_ppl":{}}}"#, i * 100, 5000.0 / i as f64))
            .collect();
        std::fs::write(&metrics, lines.join("\n")).unwrap();
        write_plots(&metrics, dir.path()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("ppl.svg")).unwrap();
        // The run ends at 250: some axis label must lie at or below it.
        let labels: Vec<f64> =
            svg.split("<text").filter_map(|t| t.split('>').nth(1)?.split('<').next()?.trim().parse().ok()).collect();
        assert!(labels.iter().any(|&l| l > 0.0 && l <= 250.0 && l != 200.0), "labels {labels:?}");
        assert!(!dir.path().join("density.svg").exists(), "no density plot without doped weights");
    }

    #[test]
    fn runs_side_by_side_carry_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut runs = vec![];
        for (name, ppl) in [("with CMR", 120.0), ("without", 140.0)] {
            let path = dir.path().join(format!("{ppl}.jsonl"));
            let lines: Vec<String> = (1..=4)
                .flat_map(|e| {
                    [
                        format!(
                            r#"{{"type":"train","epoch":{e}.5,"step":1,"train_ppl":{},"density":{{"w":{}}},"norms":[{{"name":"w","base":{},"sparse":1.0}}]}}"#,
                            ppl - 10.0 * e as f64,
                            1.0 / e as f64,
                            2.0 * e as f64
                        ),
                        format!(r#"{{"type":"valid","epoch":{e},"step":1,"valid_ppl":{}}}"#, ppl + 20.0 / e as f64),
                    ]
                })
                .collect();
            std::fs::write(&path, lines.join("\n")).unwrap();
            runs.push((name.to_string(), path));
        }
        let out = dir.path().join("c.svg");
        compare(&runs, Compare::Ppl, "ablation", &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        for label in ["with CMR valid", "with CMR train", "without valid", "ablation", "epoch"] {
            assert!(svg.contains(label), "{label} missing");
        }
        compare(&runs, Compare::Density, "density", &out).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().contains("without w"));
        compare(&runs, Compare::Norms, "norms", &out).unwrap();
        assert!(std::fs::read_to_string(&out).unwrap().contains("with CMR w"));
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        assert!(compare(&[("x".into(), empty.clone())], Compare::Ppl, "", &out).is_err());
        assert!(compare(&[("x".into(), empty)], Compare::Norms, "", &out).is_err());
    }
}
