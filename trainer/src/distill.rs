//! Knowledge distillation: a teacher model's top-k predictions at every training position.
//!
//! The teacher (any runtime model file over the corpus's vocabulary, materialised dense)
//! reads the training stream once, laid out in the same parallel rows as the student's
//! [`Batches`] and carrying its state across windows exactly as the student does, so the
//! soft target of a position is the teacher's prediction from the context the student
//! sees there. Only the `k` most likely tokens are kept, with their probabilities at the
//! distillation temperature; the rest of each distribution is one more outcome, "any other
//! token" (see [`crate::ops::SoftTargets`]).
//!
//! Reading the stream costs a forward pass of the teacher over every training token (for
//! the dense 2×650 PTB teacher, minutes), so the predictions are cached in the run
//! directory, keyed by the teacher's hash, the layout and the training tokens, and a resumed
//! run reads them back.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use dkp_lstm::{Model, Tokenizer};
use rayon::prelude::*;
use serde_json::{json, Value};

use crate::checkpoint::{self, fnv1a, CHECKPOINT_VERSION};
use crate::config::DistillConfig;
use crate::data::Batches;
use crate::error::{io_err, Error, Result};
use crate::lm::{Lm, State};
use crate::ops::{exp_in_place, SoftTargets};
use crate::storage::with_values;

/// The hash that names a teacher file in checkpoints and provenance.
pub fn file_hash(bytes: &[u8]) -> String {
    fnv1a(bytes.iter().copied())
}

/// A teacher's top-k predictions over one layout of the training stream.
#[derive(Debug, Clone)]
pub struct Teacher {
    /// The model file.
    pub path: PathBuf,
    /// [`file_hash`] of its bytes.
    pub hash: String,
    /// The teacher's own recorded test perplexity, if its provenance has one.
    pub test_ppl: Option<f64>,
    k: usize,
    batch: usize,
    /// Per training position (time-major over the epoch, `position·batch + row`), `k` ids
    /// and their probabilities at the temperature, most likely first.
    ids: Vec<u32>,
    probs: Vec<f32>,
}

impl Teacher {
    /// Loads the teacher of `cfg` and runs it over the training stream in `batches`' layout,
    /// or reads its predictions from `cache` when that file holds them for this teacher,
    /// layout and stream (otherwise they are computed and written there).
    pub fn load(
        cfg: &DistillConfig,
        tokenizer: &Tokenizer,
        batches: &Batches,
        cache: Option<&Path>,
        dev: &Device,
    ) -> Result<Teacher> {
        let path = cfg.teacher.clone().expect("a teacher is configured");
        let bad = |reason: String| Error::Model { path: path.clone(), reason };
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        let model = Model::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
        if model.tokenizer().tokens() != tokenizer.tokens() {
            return Err(bad(format!(
                "its vocabulary ({} tokens) is not the corpus's ({} tokens): a teacher must predict the same tokens",
                model.tokenizer().len(),
                tokenizer.len()
            )));
        }
        let k = cfg.top_k.min(tokenizer.len());
        let hash = file_hash(&bytes);
        let key = json!({"version": CHECKPOINT_VERSION, "teacher_hash": hash, "top_k": k,
            "temperature": cfg.temperature, "rows": batches.rows(), "bptt": batches.bptt(),
            "stream_hash": batches.hash()});
        let (ids, probs) = match cache.and_then(|c| read_cache(c, &key, dev)) {
            Some(hit) => hit,
            None => {
                let lm = Lm::materialised(&model, dev)?;
                let (ids, probs) = top_k_over(&lm, batches, k, cfg.temperature as f32, dev)?;
                if let Some(c) = cache {
                    let n = ids.len();
                    let ids_f32 = ids.iter().map(|&i| i as f32).collect::<Vec<_>>();
                    let tensors = [
                        ("ids".into(), Tensor::from_vec(ids_f32, n, dev)?),
                        ("probs".into(), Tensor::from_slice(&probs, n, dev)?),
                    ];
                    checkpoint::save(c, &key, &tensors)?;
                }
                (ids, probs)
            }
        };
        let test_ppl = model.provenance().to_map().ok().and_then(|p| p.get("test_ppl").and_then(Value::as_f64));
        Ok(Teacher { hash, path, test_ppl, k, batch: batches.rows(), ids, probs })
    }

    /// The soft targets of window `i` of `batches` (time-major, as its targets), with
    /// `cfg`'s weight (its temperature is the one the predictions were taken at).
    pub fn window(&self, batches: &Batches, i: usize, cfg: &DistillConfig) -> SoftTargets {
        let (start, len) = batches.span(i);
        let at = start * self.batch * self.k..(start + len) * self.batch * self.k;
        let probs = self.probs[at.clone()].to_vec();
        let rest = probs.chunks_exact(self.k).map(|q| (1.0 - q.iter().map(|&x| x as f64).sum::<f64>()).max(0.0) as f32);
        SoftTargets {
            ids: self.ids[at].to_vec(),
            rest: rest.collect(),
            probs,
            k: self.k,
            weight: cfg.weight as f32,
            temperature: cfg.temperature as f32,
        }
    }

    /// What the exported model's provenance says about its teacher.
    pub fn provenance(&self, cfg: &DistillConfig) -> Value {
        json!({
            "teacher": self.path.display().to_string(), "teacher_hash": self.hash, "teacher_test_ppl": self.test_ppl,
            "weight": cfg.weight, "temperature": cfg.temperature, "top_k": self.k,
        })
    }

    /// Checks that `path` still holds the teacher a checkpoint was trained with.
    pub fn same_as(&self, recorded: &Value) -> std::result::Result<(), String> {
        match recorded.get("teacher_hash").and_then(Value::as_str) {
            Some(h) if h == self.hash => Ok(()),
            Some(h) => Err(format!(
                "its teacher had hash {h}, but {} now hashes to {}: the soft targets would change mid-run",
                self.path.display(),
                self.hash
            )),
            None => Err("it was trained without a teacher".into()),
        }
    }
}

/// The predictions in a cache file written for `key`, if it is one (a missing, stale or
/// corrupt cache is recomputed, so it is not an error).
fn read_cache(path: &Path, key: &Value, dev: &Device) -> Option<(Vec<u32>, Vec<f32>)> {
    let (meta, tensors) = checkpoint::load(path, dev).ok()?;
    if !key.as_object()?.iter().all(|(k, v)| meta.get(k) == Some(v)) {
        return None;
    }
    // Ids are stored as f32, exact below 2^24 (a vocabulary of 16M tokens).
    let ids = tensors.get("ids")?.to_vec1::<f32>().ok()?.into_iter().map(|x| x as u32).collect();
    Some((ids, tensors.get("probs")?.to_vec1().ok()?))
}

/// Runs `lm` over every window of `batches` (no dropout, state carried across windows)
/// and keeps each position's `k` most likely tokens and their probabilities at
/// temperature `t`, `softmax(z/t)`.
fn top_k_over(lm: &Lm, batches: &Batches, k: usize, t: f32, dev: &Device) -> Result<(Vec<u32>, Vec<f32>)> {
    let mut state = State::zeros(lm, batches.rows(), dev)?;
    let (mut ids, mut probs) = (vec![], vec![]);
    for i in 0..batches.len() {
        let (x, _, _) = batches.window(i);
        let logits = lm.logits(&x, batches.rows(), &mut state)?;
        let v = lm.vocab();
        let rows: Vec<(Vec<u32>, Vec<f32>)> = with_values(&logits.contiguous()?, |z| {
            z.par_chunks(v)
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |(pairs, row), z| {
                        pairs.clear();
                        pairs.extend(z.iter().copied().zip(0u32..));
                        pairs.select_nth_unstable_by(k - 1, |a: &(f32, u32), b| b.0.total_cmp(&a.0));
                        pairs.truncate(k);
                        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
                        row.clear();
                        row.extend(z.iter().map(|&x| x / t));
                        let (lse, _) = exp_in_place(row);
                        (pairs.iter().map(|p| p.1).collect(), pairs.iter().map(|p| (p.0 / t - lse).exp()).collect())
                    },
                )
                .collect()
        })?;
        for (i, q) in rows {
            ids.extend(i);
            probs.extend(q);
        }
    }
    Ok((ids, probs))
}
