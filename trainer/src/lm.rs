//! The LSTM language model being trained, its training forward pass and its stream NLL.
//!
//! Embedding → LSTM layers (fused gates `[W_ih | W_hh]`, order i, f, g, o) → output
//! projection, each weight of any kind.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use dkp_lstm::format::names;
use dkp_lstm::{Embedding, Gates, LstmLayer, MatVec, Matrix, Model, Provenance, Tokenizer, Weight};

use crate::config::{CmrConfig, CmrMode, TrainConfig};
use crate::error::{Error, Result};
use crate::ops::{cross_entropy, lstm_layer, projected_cross_entropy, CoMatrix, SoftTargets};
use crate::rng::{RandomVec, Rng};
use crate::sparse::{spmm, Entries};
use crate::weights::WeightParam;

/// Tokens per forward pass when scoring a stream. The total is a sum of per-window f32
/// means, so another value would change the last digits of every recorded perplexity.
const EVAL_WINDOW: usize = 256;

/// A negative log-likelihood (nats) and the tokens it covers: the one measure behind every
/// perplexity the trainer reports, of held-out streams ([`Lm::stream_nll`]) and of
/// training windows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Nll {
    /// Total negative log-likelihood, nats.
    pub nll: f64,
    /// Tokens scored.
    pub tokens: usize,
}

impl Nll {
    /// Adds `tokens` tokens whose mean loss is `mean`.
    pub fn add(&mut self, mean: f64, tokens: usize) {
        self.nll += mean * tokens as f64;
        self.tokens += tokens;
    }

    /// `exp(nll / tokens)`; with no tokens the NLL is not divided (an empty stream reads 1).
    pub fn perplexity(&self) -> f64 {
        (self.nll / self.tokens.max(1) as f64).exp()
    }
}

/// One LSTM layer's parameters.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Input size I.
    pub input: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// Gate weights, `4H × (I+H)`.
    pub w: WeightParam,
    /// Gate bias (`b_ih + b_hh`), `4H`.
    pub bias: Var,
}

/// The whole model's parameters.
#[derive(Debug, Clone)]
pub struct Lm {
    /// Own embedding, or `None` when tied to the output projection.
    pub embedding: Option<WeightParam>,
    /// LSTM layers, bottom first.
    pub layers: Vec<Layer>,
    /// Output projection, `vocab × H`.
    pub output: WeightParam,
    /// Output bias, `vocab`.
    pub output_bias: Var,
}

/// Recurrent state, `batch × H` per layer.
#[derive(Debug, Clone)]
pub struct State {
    /// Hidden states.
    pub h: Vec<Tensor>,
    /// Cell states.
    pub c: Vec<Tensor>,
}

impl State {
    /// All zeros.
    pub fn zeros(lm: &Lm, batch: usize, dev: &Device) -> Result<State> {
        let z = |l: &Layer| Tensor::zeros((batch, l.hidden), DType::F32, dev);
        Ok(State {
            h: lm.layers.iter().map(z).collect::<candle_core::Result<_>>()?,
            c: lm.layers.iter().map(z).collect::<candle_core::Result<_>>()?,
        })
    }

    /// Cuts the gradient history (truncated back-propagation).
    pub fn detach(&mut self) {
        for t in self.h.iter_mut().chain(self.c.iter_mut()) {
            *t = t.detach();
        }
    }
}

/// Training-time randomness and diagnostics for one forward pass.
pub struct TrainCtx<'a> {
    /// Dropout between layers.
    pub dropout: f32,
    /// Co-matrix dropout.
    pub cmr: CmrConfig,
    /// Source of every mask.
    pub rng: &'a mut Rng,
    /// Record ‖base·x‖ and ‖S·x‖ of doped weights.
    pub norms: bool,
}

/// The output projection ready for a window: materialised, or applied path by path when
/// co-matrix dropout needs the two paths apart.
enum Ready<'a> {
    Fixed(Tensor),
    Paths(&'a WeightParam),
}

/// Transposed gate weights for a window, as co-matrix dropout needs them.
enum Gate {
    /// `Wᵀ`, `(I+H) × 4H`.
    One(Tensor),
    /// The structured part and S side by side, `(I+H) × 8H`: dropout per element.
    Parts(Tensor),
    /// `baseᵀ` and `(base + S/(1 − p))ᵀ`, each `(I+H) × 4H`, one of them per time step:
    /// dropout of the whole term.
    Pick(Tensor, Tensor),
    /// `baseᵀ`, `(I+H) × 4H`, and a sparse S's entries in the input and the recurrent
    /// columns with their values: dropout per element once S is sparse.
    Sparse(Tensor, [SparsePart; 2]),
}

/// Some of S's columns as entries, with their values (gathered from S's parameter, so
/// that gradients reach it).
type SparsePart = (Arc<Entries>, Tensor);

/// S's density below which dropout per element multiplies S entry by entry rather than
/// as a dense matrix (docs/benchmarks.md, *Co-matrix dropout per element on a sparse S*).
const SPARSE_BELOW: f64 = 0.2;

struct Prepared<'a> {
    embedding: Tensor,
    gates: Vec<Gate>,
    biases: Vec<Tensor>,
    output: Ready<'a>,
    output_bias: Tensor,
}

/// `‖base·x‖` and `‖S·x‖` of one doped weight, averaged over a batch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PathNorms {
    /// Weight name.
    pub name: String,
    /// Mean norm of the structured path.
    pub base: f32,
    /// Mean norm of the co-matrix path.
    pub sparse: f32,
}

fn dropout(x: Tensor, p: f32, rng: &mut Rng) -> Result<Tensor> {
    if p == 0.0 {
        return Ok(x);
    }
    let mask = Tensor::from_vec(rng.dropout_mask(x.elem_count(), p), x.shape(), x.device())?;
    Ok((x * mask)?)
}

impl Lm {
    /// A freshly initialised model for `vocab` tokens.
    pub fn new(cfg: &TrainConfig, vocab: usize, rng: &mut Rng, dev: &Device) -> Result<Lm> {
        let (m, acc, init) = (&cfg.model, cfg.accounting, cfg.model.init);
        let e = if m.tie_weights { m.hidden } else { cfg.embedding_dim() };
        let embedding = match m.tie_weights {
            true => None,
            false => Some(WeightParam::new(
                names::EMBEDDING,
                cfg.embedding.kind,
                vocab,
                e,
                cfg.embedding.cf,
                acc,
                init,
                rng,
                dev,
            )?),
        };
        let mut layers = vec![];
        let mut input = e;
        for i in 0..m.layers {
            let h = m.hidden;
            let w = WeightParam::new(
                &names::layer_weight(i, "w"),
                cfg.lstm.kind,
                4 * h,
                input + h,
                cfg.lstm.cf,
                acc,
                init,
                rng,
                dev,
            )?;
            let bias = Var::from_vec(rng.uniform_vec(4 * h, init), 4 * h, dev)?;
            layers.push(Layer { input, hidden: h, w, bias });
            input = h;
        }
        let output =
            WeightParam::new(names::OUTPUT, cfg.output.kind, vocab, input, cfg.output.cf, acc, init, rng, dev)?;
        let output_bias = Var::from_vec(rng.uniform_vec(vocab, init), vocab, dev)?;
        Ok(Lm { embedding, layers, output, output_bias })
    }

    /// Every weight matrix.
    pub fn weights(&self) -> Vec<&WeightParam> {
        self.embedding.iter().chain(self.layers.iter().map(|l| &l.w)).chain([&self.output]).collect()
    }

    /// Every weight matrix, mutably.
    pub fn weights_mut(&mut self) -> Vec<&mut WeightParam> {
        self.embedding.iter_mut().chain(self.layers.iter_mut().map(|l| &mut l.w)).chain([&mut self.output]).collect()
    }

    /// A copy that shares no storage with `self`.
    pub fn deep_copy(&self) -> Result<Lm> {
        let copy = |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().copy()?)?) };
        Ok(Lm {
            embedding: self.embedding.as_ref().map(WeightParam::deep_copy).transpose()?,
            layers: self
                .layers
                .iter()
                .map(|l| Ok(Layer { w: l.w.deep_copy()?, bias: copy(&l.bias)?, ..l.clone() }))
                .collect::<Result<_>>()?,
            output: self.output.deep_copy()?,
            output_bias: copy(&self.output_bias)?,
        })
    }

    /// Parameters (`param.NAME`) and masks (`mask.WEIGHT`) as named tensors.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> =
            self.vars().into_iter().map(|(n, var)| (format!("param.{n}"), var.as_tensor().clone())).collect();
        for w in self.weights() {
            if let Some(m) = &w.masked {
                v.push((format!("mask.{}", w.name), m.mask.clone()));
            }
        }
        v
    }

    /// Restores what [`Lm::state_tensors`] saved (under `prefix`); every tensor must be there
    /// with the right shape.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::BTreeMap<String, Tensor>,
        prefix: &str,
    ) -> std::result::Result<(), String> {
        let get = |k: String, shape: &[usize]| -> std::result::Result<Tensor, String> {
            let t = tensors.get(&k).ok_or_else(|| format!("tensor `{k}` is missing"))?;
            if t.dims() != shape {
                return Err(format!("tensor `{k}` has shape {:?}, this configuration needs {shape:?}", t.dims()));
            }
            Ok(t.clone())
        };
        for (n, var) in self.vars() {
            let t = get(format!("{prefix}param.{n}"), var.dims())?;
            var.set(&t).map_err(|e| e.to_string())?;
        }
        for w in self.weights_mut() {
            let name = w.name.clone();
            if let Some(m) = w.masked.as_mut() {
                m.mask = get(format!("{prefix}mask.{name}"), m.mask.dims())?;
            }
        }
        Ok(())
    }

    /// Every trainable tensor by name, in a fixed order.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut v: Vec<(String, Var)> = self.weights().iter().flat_map(|w| w.vars()).collect();
        v.extend(self.layers.iter().enumerate().map(|(i, l)| (names::layer_bias(i), l.bias.clone())));
        v.push((names::OUTPUT_BIAS.into(), self.output_bias.clone()));
        v
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.output.rows
    }

    /// With co-matrix dropout (`cmr`, not `Off`), doped gate weights come apart as its
    /// mode needs them, and so do the paths of a doped output projection if it says so.
    fn prepare(&self, cmr: Option<CmrConfig>, detach: bool) -> Result<Prepared<'_>> {
        let fix = |t: Tensor| if detach { t.detach() } else { t };
        let cmr = cmr.filter(|c| c.mode != CmrMode::Off);
        let output_w = match cmr.is_some_and(|c| c.output) && self.output.is_doped() {
            true => None,
            false => Some(fix(self.output.materialise()?)),
        };
        let embedding = match (&self.embedding, &output_w) {
            (Some(e), _) => fix(e.materialise()?),
            (None, Some(w)) => w.clone(),
            (None, None) => fix(self.output.materialise()?),
        };
        let mut gates = vec![];
        let wt = |w: Tensor| -> Result<Tensor> { Ok(fix(w.t()?.contiguous()?)) };
        for l in &self.layers {
            let parts = || -> Result<(Tensor, Tensor)> {
                Ok((l.w.materialise_base()?.expect("doped"), l.w.sparse()?.expect("doped")))
            };
            gates.push(match cmr.filter(|_| l.w.is_doped()) {
                None => Gate::One(wt(l.w.materialise()?)?),
                Some(CmrConfig { mode: CmrMode::Term, rate, .. }) => {
                    // Summed after transposing, so that the gradients meeting at `baseᵀ`
                    // add up contiguous rather than strided (4 % of a step).
                    let (base, s) = parts()?;
                    let base = wt(base)?;
                    let kept = (&base + wt(s)?.affine(1.0 / (1.0 - rate as f64), 0.0)?)?;
                    Gate::Pick(base, kept)
                }
                Some(_) => match sparse_parts(&l.w, l.input, detach)? {
                    Some(s) => Gate::Sparse(wt(l.w.materialise_base()?.expect("doped"))?, s),
                    None => {
                        let (base, s) = parts()?;
                        Gate::Parts(wt(Tensor::cat(&[&base, &s], 0)?)?)
                    }
                },
            });
        }
        Ok(Prepared {
            embedding,
            gates,
            biases: self.layers.iter().map(|l| fix(l.bias.as_tensor().clone())).collect(),
            output: match output_w {
                Some(w) => Ready::Fixed(w),
                None => Ready::Paths(&self.output),
            },
            output_bias: fix(self.output_bias.as_tensor().clone()),
        })
    }

    /// `x · Wᵀ` of a doped weight, path by path, with co-matrix dropout on the sparse path.
    fn apply_paths(w: &WeightParam, x: &Tensor, ctx: &mut Option<&mut TrainCtx>) -> Result<Tensor> {
        let base = w.apply_base(x)?.expect("doped");
        let s = w.apply_sparse(x)?.expect("doped");
        let Some(ctx) = ctx.as_deref_mut() else {
            return Ok((base + s)?);
        };
        let rate = ctx.cmr.rate;
        let s = match ctx.cmr.mode {
            CmrMode::Off => Some(s),
            CmrMode::Element => Some(dropout(s, rate, ctx.rng)?),
            CmrMode::Term => {
                (ctx.rng.uniform() >= rate).then(|| s.affine(1.0 / (1.0 - rate as f64), 0.0)).transpose()?
            }
        };
        Ok(match s {
            Some(s) => (base + s)?,
            None => base,
        })
    }

    /// Runs a window of `ids` (time-major, `len·batch`) from `state`, which is advanced.
    /// Returns the top layer's outputs (`len·batch × H`) and, if asked, path norms.
    fn run(
        &self,
        p: &Prepared,
        ids: &[u32],
        batch: usize,
        state: &mut State,
        mut ctx: Option<&mut TrainCtx>,
    ) -> Result<(Tensor, Vec<PathNorms>)> {
        let dev = p.embedding.device();
        let steps = ids.len() / batch;
        let idx = Tensor::from_slice(ids, ids.len(), dev)?;
        let mut x = p.embedding.index_select(&idx, 0)?;
        let p_drop = ctx.as_ref().map_or(0.0, |c| c.dropout);
        if let Some(c) = ctx.as_deref_mut() {
            x = dropout(x, p_drop, c.rng)?;
        }
        let mut norms = vec![];
        let want_norms = ctx.as_ref().is_some_and(|c| c.norms);
        for (l, layer) in self.layers.iter().enumerate() {
            let (hd, input) = (layer.hidden, layer.input);
            if want_norms {
                let xh = Tensor::cat(&[&x.narrow(0, 0, batch)?, &state.h[l]], 1)?;
                if let Some((b, s)) = layer.w.path_norms(&xh)? {
                    norms.push(PathNorms { name: layer.w.name.clone(), base: b, sparse: s });
                }
            }
            // The input half of every step is one matmul for the whole window (two with
            // whole-term co-matrix dropout: the steps that keep S, and the others).
            let bias = &p.biases[l];
            let (gx, w_hh, s_hh, co) = match &p.gates[l] {
                Gate::One(wt) => (
                    x.matmul(&wt.narrow(0, 0, input)?)?.broadcast_add(bias)?,
                    wt.narrow(0, input, hd)?,
                    None,
                    CoMatrix::None,
                ),
                Gate::Parts(wt) => {
                    let ctx = ctx.as_deref_mut().expect("co-matrix dropout is for training");
                    let mask = ctx.rng.dropout_mask(steps * batch * 4 * hd, ctx.cmr.rate);
                    let bias = Tensor::cat(&[bias, &bias.zeros_like()?], 0)?;
                    (
                        x.matmul(&wt.narrow(0, 0, input)?)?.broadcast_add(&bias)?,
                        wt.narrow(0, input, hd)?,
                        None,
                        CoMatrix::Mask(mask),
                    )
                }
                Gate::Sparse(base, [(e_in, v_in), (e_hh, v_hh)]) => {
                    let ctx = ctx.as_deref_mut().expect("co-matrix dropout is for training");
                    let mask = ctx.rng.dropout_mask(steps * batch * 4 * hd, ctx.cmr.rate);
                    let gx = x.matmul(&base.narrow(0, 0, input)?)?.broadcast_add(bias)?;
                    let gx = Tensor::cat(&[&gx, &spmm(&x, v_in, e_in.clone())?], 1)?;
                    (gx, base.narrow(0, input, hd)?, Some(v_hh), CoMatrix::SparseMask(mask, e_hh.clone()))
                }
                Gate::Pick(base, kept) => {
                    let ctx = ctx.as_deref_mut().expect("co-matrix dropout is for training");
                    let pick: Vec<bool> = (0..steps).map(|_| ctx.rng.uniform() >= ctx.cmr.rate).collect();
                    let gx = picked_matmul(&x, [&base.narrow(0, 0, input)?, &kept.narrow(0, 0, input)?], &pick, batch)?;
                    let w_hh = Tensor::cat(&[&base.narrow(0, input, hd)?, &kept.narrow(0, input, hd)?], 1)?;
                    (gx.broadcast_add(bias)?, w_hh, None, CoMatrix::Pick(pick))
                }
            };
            let vec = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1()?) };
            let y = lstm_layer(&gx, &w_hh, s_hh, vec(&state.h[l])?, vec(&state.c[l])?, co)?;
            let last = y.narrow(0, (steps - 1) * batch, batch)?.detach();
            state.h[l] = last.narrow(1, 0, hd)?.contiguous()?;
            state.c[l] = last.narrow(1, hd, hd)?.contiguous()?;
            x = y.narrow(1, 0, hd)?.contiguous()?;
            if let Some(c) = ctx.as_deref_mut() {
                x = dropout(x, p_drop, c.rng)?;
            }
        }
        if want_norms {
            if let Some((b, s)) = self.output.path_norms(&x.narrow(0, 0, batch)?)? {
                norms.push(PathNorms { name: self.output.name.clone(), base: b, sparse: s });
            }
        }
        Ok((x, norms))
    }

    /// Logits of the top layer's outputs.
    fn project(p: &Prepared, x: &Tensor, ctx: &mut Option<&mut TrainCtx>) -> Result<Tensor> {
        let y = match &p.output {
            Ready::Fixed(w) => x.matmul(&w.t()?)?,
            Ready::Paths(w) => Self::apply_paths(w, x, ctx)?,
        };
        Ok(y.broadcast_add(&p.output_bias)?)
    }

    /// Mean loss of `targets` (and soft targets) given the top layer's outputs, and the mean
    /// data NLL.
    fn loss(
        p: &Prepared,
        x: &Tensor,
        targets: &[u32],
        soft: Option<&SoftTargets>,
        ctx: &mut Option<&mut TrainCtx>,
    ) -> Result<(Tensor, f64)> {
        Ok(match &p.output {
            Ready::Fixed(w) => projected_cross_entropy(x, w, &p.output_bias, targets, soft)?,
            Ready::Paths(_) => cross_entropy(&Self::project(p, x, ctx)?, targets, soft)?,
        })
    }

    /// Mean loss of one training window (with dropout, co-matrix dropout and, given soft
    /// targets, distillation), its mean data NLL, and path norms if asked for.
    pub fn train_loss(
        &self,
        ids: &[u32],
        targets: &[u32],
        batch: usize,
        state: &mut State,
        ctx: &mut TrainCtx,
        soft: Option<&SoftTargets>,
    ) -> Result<(Tensor, f64, Vec<PathNorms>)> {
        let p = self.prepare(Some(ctx.cmr), false)?;
        let mut ctx = Some(ctx);
        let (x, norms) = self.run(&p, ids, batch, state, ctx.as_deref_mut())?;
        let (loss, nll) = Self::loss(&p, &x, targets, soft, &mut ctx)?;
        Ok((loss, nll, norms))
    }

    /// Logits of a window without dropout or gradient (for tests and tools).
    pub fn logits(&self, ids: &[u32], batch: usize, state: &mut State) -> Result<Tensor> {
        let p = self.prepare(None, true)?;
        let x = self.run(&p, ids, batch, state, None)?.0;
        Self::project(&p, &x, &mut None)
    }

    /// The negative log-likelihood of the first `max_tokens` of `ids` (all of them with
    /// `None`) read as one stream with batch 1, from a zero state fed `boundary` first —
    /// what `dkp_lstm::Session::perplexity`, and so `dkp eval`, computes. Without a
    /// boundary the first token is scored from the zero state. Every perplexity the
    /// trainer reports for held-out text (validation, test, `dkp compress`) comes from here.
    pub fn stream_nll(&self, ids: &[u32], boundary: Option<u32>, max_tokens: Option<usize>) -> Result<Nll> {
        let ids = &ids[..max_tokens.unwrap_or(usize::MAX).min(ids.len())];
        let dev = self.output_bias.device();
        let p = self.prepare(None, true)?;
        let mut state = State::zeros(self, 1, dev)?;
        let (inputs, targets): (Vec<u32>, &[u32]) = match boundary {
            Some(b) => (std::iter::once(b).chain(ids[..ids.len().saturating_sub(1)].iter().copied()).collect(), ids),
            None => (ids[..ids.len().saturating_sub(1)].to_vec(), ids.get(1..).unwrap_or(&[])),
        };
        let mut nll = 0.0f64;
        if boundary.is_none() && !ids.is_empty() {
            // A zero state gives logits = output bias.
            let b = p.output_bias.reshape((1, self.vocab()))?;
            nll += cross_entropy(&b, &ids[..1], None)?.0.to_scalar::<f32>()? as f64;
        }
        for (xs, ys) in inputs.chunks(EVAL_WINDOW).zip(targets.chunks(EVAL_WINDOW)) {
            let (x, _) = self.run(&p, xs, 1, &mut state, None)?;
            let mean = Self::loss(&p, &x, ys, None, &mut None)?.0.to_scalar::<f32>()?;
            nll += mean as f64 * ys.len() as f64;
        }
        Ok(Nll { nll, tokens: ids.len() })
    }

    /// The trained model in the runtime's form.
    pub fn to_model(
        &self,
        tokenizer: &Tokenizer,
        provenance: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Model> {
        let vec = |v: &Var| -> Result<Vec<f32>> { Ok(v.as_tensor().to_vec1()?) };
        let embedding = match &self.embedding {
            Some(e) => Embedding::Own(Weight::f32(e.to_matrix()?)),
            None => Embedding::Tied,
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(LstmLayer {
                    input: l.input,
                    hidden: l.hidden,
                    gates: Gates::Fused(Weight::f32(l.w.to_matrix()?)),
                    bias: vec(&l.bias)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = Weight::f32(self.output.to_matrix()?);
        Ok(Model::new(
            tokenizer.clone(),
            embedding,
            layers,
            output,
            vec(&self.output_bias)?,
            Provenance::from_map(provenance),
        )?)
    }

    /// A dense trainable copy of a runtime model whose weights are all dense (what
    /// `dkp compress` decomposes).
    pub fn from_model(model: &Model, path: &std::path::Path, dev: &Device) -> Result<Lm> {
        Self::copy_of(model, dev, &|name, m| match m {
            Matrix::Dense(_) => Ok(()),
            _ => Err(Error::Model {
                path: path.to_path_buf(),
                reason: format!("weight `{name}` is {}, but only dense models can be decomposed", m.kind()),
            }),
        })
    }

    /// A copy of any runtime model with every weight materialised dense (a distillation
    /// teacher): it computes the runtime model's function, so its logits are the file's.
    pub fn materialised(model: &Model, dev: &Device) -> Result<Lm> {
        Self::copy_of(model, dev, &|_, _| Ok(()))
    }

    fn copy_of(model: &Model, dev: &Device, check: &dyn Fn(&str, &Matrix) -> Result<()>) -> Result<Lm> {
        let dense = |name: &str, m: &Matrix| -> Result<WeightParam> {
            check(name, m)?;
            WeightParam::dense_from(name, m, dev)
        };
        let embedding = match model.embedding() {
            Embedding::Own(w) => Some(dense(names::EMBEDDING, &w.matrix)?),
            Embedding::Tied => None,
        };
        let mut layers = vec![];
        for (i, l) in model.layers().iter().enumerate() {
            let name = names::layer_weight(i, "w");
            let w = match &l.gates {
                Gates::Fused(w) => dense(&name, &w.matrix)?,
                Gates::Split { ih, hh } => {
                    let (a, b) = (dense(&name, &ih.matrix)?.materialise()?, dense(&name, &hh.matrix)?.materialise()?);
                    let fused = Tensor::cat(&[&a, &b], 1)?;
                    let (rows, cols) = fused.dims2()?;
                    let m = Matrix::Dense(
                        dkp_lstm::matrix::Dense::new(rows, cols, fused.flatten_all()?.to_vec1()?)
                            .map_err(|reason| Error::Export { name: name.clone(), reason })?,
                    );
                    WeightParam::dense_from(&name, &m, dev)?
                }
            };
            layers.push(Layer {
                input: l.input,
                hidden: l.hidden,
                w,
                bias: Var::from_slice(&l.bias, l.bias.len(), dev)?,
            });
        }
        let output = dense(names::OUTPUT, &model.output().matrix)?;
        let ob = model.output_bias();
        debug_assert_eq!(output.rows, model.output().matrix.rows());
        Ok(Lm { embedding, layers, output, output_bias: Var::from_slice(ob, ob.len(), dev)? })
    }
}

/// A doped weight's S as entries in its input and its recurrent columns (`input..`), if
/// it is sparse enough for that to pay ([`SPARSE_BELOW`]).
fn sparse_parts(w: &WeightParam, input: usize, detach: bool) -> Result<Option<[SparsePart; 2]>> {
    let m = w.masked.as_ref().expect("doped");
    let (rows, width) = m.mask.dims2()?;
    let mask = m.mask.flatten_all()?.to_vec1::<f32>()?;
    let nnz = mask.iter().filter(|&&x| x != 0.0).count();
    if nnz as f64 > SPARSE_BELOW * mask.len() as f64 {
        return Ok(None);
    }
    let var = m.var.as_tensor().flatten_all()?;
    let part = |from: usize, cols: usize| -> Result<SparsePart> {
        let (e, at) = Entries::from_mask(&mask, rows, width, from, cols);
        let values = var.index_select(&Tensor::from_vec(at, e.nnz(), var.device())?, 0)?;
        Ok((Arc::new(e), if detach { values.detach() } else { values }))
    };
    Ok(Some([part(0, input)?, part(input, width - input)?]))
}

/// `x · W` for the rows of a window (`steps·batch × I`, time-major), step `t`'s rows
/// with `w[pick[t] as usize]` (`I × 4H` each): each row is multiplied once.
fn picked_matmul(x: &Tensor, w: [&Tensor; 2], pick: &[bool], batch: usize) -> Result<Tensor> {
    let dev = x.device();
    let (mut parts, mut order) = (vec![], vec![]);
    for (half, w) in w.into_iter().enumerate() {
        let rows: Vec<u32> = (0..pick.len())
            .filter(|&t| pick[t] as usize == half)
            .flat_map(|t| (t * batch) as u32..((t + 1) * batch) as u32)
            .collect();
        if !rows.is_empty() {
            parts.push(x.index_select(&Tensor::from_slice(&rows, rows.len(), dev)?, 0)?.matmul(w)?);
            order.extend(rows);
        }
    }
    if parts.len() == 1 {
        return Ok(parts.remove(0));
    }
    // Back to time order: row `order[i]` of the window is row `i` of the parts.
    let mut inverse = vec![0u32; order.len()];
    for (i, &r) in order.iter().enumerate() {
        inverse[r as usize] = i as u32;
    }
    Ok(Tensor::cat(&parts, 0)?.index_select(&Tensor::from_vec(inverse, order.len(), dev)?, 0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CmrConfig, CmrMode};
    use dkp_lstm::WeightKind;

    /// Dropout per element on a sparse S (`Gate::Sparse`) gives the window the outputs and
    /// gradients of the dense path (`Gate::Parts`), for the same masks.
    #[test]
    fn a_sparse_s_gives_what_the_dense_one_gives() {
        let dev = Device::Cpu;
        let mut cfg = TrainConfig::default();
        (cfg.model.layers, cfg.model.hidden, cfg.model.embedding_dim) = (2, 8, Some(6));
        (cfg.lstm.kind, cfg.lstm.cf) = (WeightKind::Dkp, 4.0);
        let mut lm = Lm::new(&cfg, 11, &mut Rng::new(1), &dev).unwrap();
        for l in &mut lm.layers {
            l.w.update_mask(0.15).unwrap();
        }
        let cmr = CmrConfig { mode: CmrMode::Element, rate: 0.5, output: false };
        let sparse = lm.prepare(Some(cmr), false).unwrap();
        assert!(sparse.gates.iter().all(|g| matches!(g, Gate::Sparse(..))));
        let mut dense = lm.prepare(Some(cmr), false).unwrap();
        for (g, l) in dense.gates.iter_mut().zip(&lm.layers) {
            let (base, s) = (l.w.materialise_base().unwrap().unwrap(), l.w.sparse().unwrap().unwrap());
            *g = Gate::Parts(Tensor::cat(&[&base, &s], 0).unwrap().t().unwrap().contiguous().unwrap());
        }
        let ids: Vec<u32> = (0..12).map(|i| (i * 7 % 11) as u32).collect();
        let r = Tensor::from_vec(Rng::new(9).uniform_vec(12 * 8, 1.0), (12, 8), &dev).unwrap();
        let out = |p: &Prepared| {
            let mut rng = Rng::new(3);
            let mut ctx = TrainCtx { dropout: 0.0, cmr, rng: &mut rng, norms: false };
            let mut state = State::zeros(&lm, 3, &dev).unwrap();
            let x = lm.run(p, &ids, 3, &mut state, Some(&mut ctx)).unwrap().0;
            let grads = (&x * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (x, grads)
        };
        let ((x1, g1), (x2, g2)) = (out(&sparse), out(&dense));
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
        };
        assert!(diff(&x1, &x2) < 1e-5, "outputs differ by {}", diff(&x1, &x2));
        for (name, var) in lm.vars() {
            match (g1.get(&var), g2.get(&var)) {
                (Some(a), Some(b)) => assert!(diff(a, b) < 1e-5, "{name}: gradients differ by {}", diff(a, b)),
                (None, None) => {}
                _ => panic!("{name}: a gradient on one path only"),
            }
        }
    }
}
