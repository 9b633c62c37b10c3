//! The `dkp train`, `dkp compress` and `dkp plot` arguments (clap) and the glue to run them.
//!
//! The `dkp` binary's modules only forward to these; the work is done by [`crate::train`],
//! [`crate::compress`] and [`crate::plot`].

use std::path::PathBuf;

use clap::Args;
use dkp_lstm::plan::Accounting;

use crate::compress::{compress, CompressData, CompressOptions, CompressReport, Finetune};
use crate::config::{CmrMode, TrainConfig, WeightKind};
use crate::data::DataSpec;
use crate::error::{config_err, io_err, Result};
use crate::train::{config_of_run, RunOptions, TrainReport, Trainer};

/// Train an LSTM language model and write it in the runtime's format.
///
/// Settings come from `--config` (TOML; see `experiments/` and `docs/training.md`),
/// overridden by the flags below and by `--set KEY=VALUE`. The run directory
/// `RUNS_DIR/NAME` receives `model.safetensors` (the best model), `checkpoint.safetensors`,
/// `metrics.jsonl` and SVG curves; a JSON report is printed at the end.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Run configuration (TOML, see experiments/); flags below override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data: a directory with PTB-layout word files, or one text file for char level.
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Run name (the run directory is RUNS_DIR/NAME).
    #[arg(long)]
    pub name: Option<String>,
    /// Parent of run directories [default: runs].
    #[arg(long, value_name = "DIR")]
    pub runs_dir: Option<PathBuf>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Stop after this many steps (the model is still evaluated and exported).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Evaluate on at most this many validation/test tokens.
    #[arg(long)]
    pub max_eval_tokens: Option<usize>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Kind of the LSTM gate weights.
    #[arg(long, value_enum)]
    pub lstm: Option<WeightKind>,
    /// Compression factor of the LSTM gate weights.
    #[arg(long)]
    pub cf: Option<f64>,
    /// Co-matrix dropout variant.
    #[arg(long, value_enum)]
    pub cmr: Option<CmrMode>,
    /// Any other setting as KEY=VALUE (TOML value), e.g. `--set optim.lr=0.5`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue the run from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Also write the final model here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut cfg = match (&self.config, self.resume, &self.name) {
            (Some(path), _, _) => {
                let text = std::fs::read_to_string(path).map_err(io_err(path))?;
                TrainConfig::from_toml(&text, &path.display().to_string())?
            }
            (None, true, Some(name)) => {
                config_of_run(&self.runs_dir.clone().unwrap_or_else(|| "runs".into()).join(name))?
            }
            (None, true, None) => {
                return Err(config_err("--resume", "needs --config FILE or --name NAME to find the run"))
            }
            _ => TrainConfig::default(),
        };
        if let Some(d) = &self.data {
            cfg.data = Some(DataSpec::from_path(d)?);
        }
        if let Some(v) = &self.name {
            cfg.name = v.clone();
        }
        if let Some(v) = &self.runs_dir {
            cfg.runs_dir = v.clone();
        }
        if let Some(v) = self.epochs {
            cfg.epochs = v;
        }
        if self.max_steps.is_some() {
            cfg.max_steps = self.max_steps;
        }
        if self.max_eval_tokens.is_some() {
            cfg.max_eval_tokens = self.max_eval_tokens;
        }
        if let Some(v) = self.seed {
            cfg.seed = v;
        }
        if let Some(v) = self.lstm {
            cfg.lstm.kind = v;
        }
        if let Some(v) = self.cf {
            cfg.lstm.cf = v;
        }
        if let Some(v) = self.cmr {
            cfg.cmr.mode = v;
        }
        let cfg = cfg.with_overrides(&self.set)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// candle's element-wise thread pool spin-waits between ops; on two cores shared with other
/// work that halved training throughput (578 vs 1252 tokens/s for 2×200 PTB), while the
/// matmuls keep their own rayon threads. So it is off unless `CANDLE_NUM_THREADS` asks for it.
fn single_threaded_elementwise() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

/// A training step allocates and frees the same large tensors every time (a 2×650 gate
/// matrix is 13.5 MB, a window's logits 28 MB). glibc serves blocks that large with fresh
/// `mmap`s and returns them on free, so every step paid page faults and the kernel's zeroing
/// for all of them again. Keeping blocks up to 32 MiB (glibc's ceiling for this setting) in
/// the heap, and the heap from shrinking, made 2×650 training 8 % faster
/// (docs/benchmarks.md, "The allocator keeps the step's memory").
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds; it is called before any
    // training thread exists, and a rejected value (return 0) leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Subnormal floats are flushed to zero, on this thread and on rayon's, where the
/// matmuls run. A model whose gates saturate (low rank at lr 1) produces gradients in the
/// subnormal range, and every multiply-add on one takes a microcode assist: a 2×650 low-rank
/// run fell from ~880 to ~200 tokens/s with 80 % of its time in the gemm microkernel
/// (docs/benchmarks.md, "Subnormal gradients"). Values below 1.2e-38 change nothing a
/// float of the model can show. Only the first pool built is the global one; a later
/// call (tests, a second command in one process) keeps it as it is.
fn flush_subnormals() {
    set_flush_to_zero();
    let _ = rayon::ThreadPoolBuilder::new().start_handler(|_| set_flush_to_zero()).build_global();
}

/// Sets this thread's FTZ and DAZ bits (SSE control register): subnormal results become
/// zero, and subnormal inputs are read as zero.
fn set_flush_to_zero() {
    #[cfg(target_arch = "x86_64")]
    {
        const FTZ: u32 = 1 << 15;
        const DAZ: u32 = 1 << 6;
        let mut csr = 0u32;
        // SAFETY: stmxcsr stores this thread's MXCSR into `csr` and ldmxcsr loads it back
        // with two mode bits set; neither touches other memory or the stack.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr as *mut u32, options(nostack, preserves_flags));
            csr |= FTZ | DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr as *const u32, options(nostack, preserves_flags, readonly));
        }
    }
}

/// The process-wide settings of a training command.
fn set_up_process() {
    single_threaded_elementwise();
    keep_freed_memory();
    flush_subnormals();
}

/// Runs `dkp train`.
pub fn run_train(args: &TrainArgs) -> Result<TrainReport> {
    set_up_process();
    let cfg = args.config()?;
    let mut trainer = Trainer::new(cfg, args.resume)?;
    trainer.run(&RunOptions { resume: args.resume, progress: !args.quiet, out: args.out.clone() })
}

/// Decompose a trained dense model into doped Kronecker products.
///
/// Each LSTM gate matrix becomes its nearest Kronecker product A⊗B at the planner's
/// shapes plus its largest residual entries as S, optionally fine-tuned with the mask
/// frozen. With `--data`, test perplexity is reported before and after.
#[derive(Debug, Clone, Args)]
pub struct CompressArgs {
    /// The dense model file.
    pub model: PathBuf,
    /// Compression factor of the LSTM gate weights.
    #[arg(long)]
    pub cf: f64,
    /// Where to write the compressed model.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Fine-tune this many epochs with the mask frozen (needs --data).
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    /// Data for perplexities and fine-tuning (PTB-layout directory or a char text file).
    #[arg(long, value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Count CSR indices against the budget too.
    #[arg(long)]
    pub with_indices: bool,
    /// Fine-tuning learning rate (SGD, constant).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Fine-tuning dropout.
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Fine-tuning seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Evaluate on at most this many test tokens.
    #[arg(long)]
    pub max_eval_tokens: Option<usize>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl CompressArgs {
    /// The compression these arguments describe; fine-tuning needs `--data`.
    pub fn options(&self) -> Result<CompressOptions> {
        let finetune = (self.finetune_epochs > 0).then_some(Finetune {
            epochs: self.finetune_epochs,
            lr: self.lr,
            dropout: self.dropout,
            seed: self.seed,
        });
        let data = match (&self.data, finetune) {
            (Some(d), _) => {
                Some(CompressData { spec: DataSpec::from_path(d)?, max_eval_tokens: self.max_eval_tokens, finetune })
            }
            (None, Some(_)) => return Err(config_err("--finetune-epochs", "fine-tuning needs --data")),
            (None, None) => None,
        };
        Ok(CompressOptions {
            model: self.model.clone(),
            cf: self.cf,
            accounting: if self.with_indices { Accounting::ValuesAndIndices } else { Accounting::Values },
            out: self.out.clone(),
            data,
            progress: !self.quiet,
        })
    }
}

/// Runs `dkp compress`.
pub fn run_compress(args: &CompressArgs) -> Result<CompressReport> {
    set_up_process();
    compress(&args.options()?)
}

/// Chart several training runs side by side (SVG), against epochs.
///
/// Each `--run LABEL=DIR` names a run directory holding `metrics.jsonl` (as `dkp train`
/// writes it). `--what ppl` draws each run's validation perplexity per epoch (bold) and
/// training perplexity (faint); `--what density` the density of each masked weight;
/// `--what norms` the ratio ‖S·x‖ / ‖(A⊗B)·x‖ of each doped weight (log scale).
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A run to draw, as LABEL=DIR (repeatable).
    #[arg(long = "run", value_name = "LABEL=DIR", required = true)]
    pub runs: Vec<String>,
    /// What to draw.
    #[arg(long, value_enum, default_value = "ppl")]
    pub what: crate::plot::Compare,
    /// Chart title.
    #[arg(long, default_value = "")]
    pub title: String,
    /// The SVG file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Runs `dkp plot`.
pub fn run_plot(args: &PlotArgs) -> Result<()> {
    let mut runs = vec![];
    for spec in &args.runs {
        let Some((label, dir)) = spec.split_once('=') else {
            return Err(config_err("--run", format!("`{spec}` is not LABEL=DIR")));
        };
        runs.push((label.to_string(), PathBuf::from(dir).join("metrics.jsonl")));
    }
    crate::plot::compare(&runs, args.what, &args.title, &args.out)
}

#[cfg(test)]
mod tests {
    /// After `set_flush_to_zero` a subnormal result is zero, and a subnormal input reads as
    /// zero; before it, neither (on a thread of its own, whose mode ends with it).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn flush_to_zero_flushes_subnormals() {
        use std::hint::black_box;
        std::thread::spawn(|| {
            let (tiny, sub) = (black_box(f32::MIN_POSITIVE), black_box(f32::from_bits(1)));
            assert!(tiny / black_box(2.0) > 0.0 && sub * black_box(2.0) > 0.0);
            super::set_flush_to_zero();
            assert_eq!(tiny / black_box(2.0), 0.0);
            assert_eq!(sub * black_box(2.0), 0.0);
        })
        .join()
        .unwrap();
    }
}
