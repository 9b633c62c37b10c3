//! Custom candle ops where plain candle ops would be too slow or build too large a graph.
//!
//! The output projection fused with softmax cross-entropy, plain softmax cross-entropy
//! (both optionally mixed with a teacher's soft targets, for distillation), a whole LSTM
//! layer, the Kronecker product, and in-place updates.
//!
//! With a 10k vocabulary the output layer is most of a step. Done as candle ops it builds
//! and differentiates several `N × V` tensors (logits, logits + bias, their zero-initialised
//! gradient accumulators); [`projected_cross_entropy`] instead computes
//! `softmax(h·Wᵀ + b)` into one buffer in the forward pass, turns it into the gradient of the
//! logits there, and makes the three gradients from it with two matmuls and a column sum in
//! the backward pass.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, InplaceOp2, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::sparse::{transpose, Entries};
use crate::storage::{contiguous, with_values};

/// `e^x` to about 1e-7 relative error, in a form the compiler vectorises: `x = n·ln2 + r`,
/// `2^n` from the exponent bits, `e^r` by its degree-6 Taylor polynomial (`|r| ≤ ln2/2`).
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer without a call to
    // `floorf` (the baseline x86-64 target has no rounding instruction).
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) as u32) << 23) * p
}

/// Max of a row, with independent lanes so that it vectorises.
fn row_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.into_iter().fold(tail, f32::max)
}

/// Replaces a row of logits `x` by `exp(x − max)`; returns `ln Σ exp x` and `1 / Σ exp(x − max)`,
/// so `softmax = row · inv` without another pass.
pub(crate) fn exp_in_place(row: &mut [f32]) -> (f32, f32) {
    let max = row_max(row);
    for v in row.iter_mut() {
        *v = fast_exp(*v - max);
    }
    let mut acc = [0f32; 16];
    let chunks = row.chunks_exact(16);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let sum = acc.iter().sum::<f32>() + tail;
    (max + sum.ln(), 1.0 / sum)
}

fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// A row-major matrix view: `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View { data, rows, cols, rs: cols, cs: 1 }
    }
    fn t(self) -> View<'a> {
        View { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// Columns `from..from + cols` of a row-major `rows × width` matrix.
    fn columns(data: &'a [f32], rows: usize, width: usize, from: usize, cols: usize) -> View<'a> {
        View { data: &data[from..], rows, cols, rs: width, cs: 1 }
    }
}

/// `dst (m×n, row-major) (+)= lhs · rhs`, on the rayon threads when it is large enough to pay.
fn matmul(dst: &mut [f32], accumulate: bool, lhs: View, rhs: View) {
    let big = lhs.rows * lhs.cols * rhs.cols >= 1 << 20;
    matmul_with(dst, accumulate, lhs, rhs, if big { parallelism() } else { Parallelism::None })
}

fn matmul_with(dst: &mut [f32], accumulate: bool, lhs: View, rhs: View, par: Parallelism) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(rhs.rows == k && dst.len() == m * n, "matmul shapes");
    let last = |v: &View| {
        if v.rows == 0 || v.cols == 0 {
            0
        } else {
            (v.rows - 1) * v.rs + (v.cols - 1) * v.cs
        }
    };
    assert!(
        (m == 0 || k == 0 || last(&lhs) < lhs.data.len()) && (k == 0 || n == 0 || last(&rhs) < rhs.data.len()),
        "matmul bounds"
    );
    // SAFETY: every index gemm touches, `r·rs + c·cs` for r < rows and c < cols, is inside its
    // slice (checked above), and `dst` is an exclusive m×n row-major buffer.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// A teacher's soft targets for the `N` rows of a window (knowledge distillation): per row,
/// the teacher's `k` most likely token ids, their probabilities at temperature `T`, and
/// the probability `r` it gives all other tokens together, so that each row is a whole
/// distribution over `k + 1` outcomes; and the weight `w` of the soft term in the loss
/// (see [`crate::config::DistillConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SoftTargets {
    /// Token ids, `N × k`.
    pub ids: Vec<u32>,
    /// Their probabilities `q`, `N × k`.
    pub probs: Vec<f32>,
    /// The rest of each row's probability, `r = 1 − Σ q`, `N`.
    pub rest: Vec<f32>,
    /// Targets per row.
    pub k: usize,
    /// Weight `w` of the soft term.
    pub weight: f32,
    /// Temperature `T`.
    pub temperature: f32,
}

/// The loss of one row of logits `z` with data target `t`, returned as `(loss, nll)`; `row`
/// is replaced by the loss's gradient `∂loss/∂z`.
///
/// Without soft targets `loss = nll = lse(z) − z_t` and the gradient is `p − e_t`
/// (`p = softmax z`). With them `loss = (1 − w)·nll + w·T²·CE(q, p_T)`, the cross-entropy of
/// the teacher's `k + 1` outcomes against the student's at temperature `T`
/// (`p_T = softmax(z/T)`, `P_rest` its mass outside the teacher's top k):
/// `CE = −Σ_j q_j·log p_T(i_j) − r·log P_rest`, with gradient
/// `(1 − w)(p − e_t) + w·T·(p_T − q − r·p_T·[i ∉ top k] / P_rest)`. Keeping the rest as an
/// outcome of its own matters: renormalising `q` over the top k instead asks the student
/// to put no mass outside them, which costs a token outside them `ln 1/(1 − w)` nats.
fn row_loss(row: &mut [f32], t: u32, soft: Option<Soft>, scratch: &mut (Vec<f32>, Vec<f32>)) -> (f64, f64) {
    let z_t = row[t as usize];
    let Some(Soft { ids, q, rest, w, temp }) = soft else {
        let (lse, inv) = exp_in_place(row);
        row.iter_mut().for_each(|p| *p *= inv);
        row[t as usize] -= 1.0;
        let nll = (lse - z_t) as f64;
        return (nll, nll);
    };
    let qz: f32 = ids.iter().zip(q).map(|(&i, &q)| q * row[i as usize]).sum();
    // p_T in `scratch`, with the top k's entries taken out (kept in `top`) so that the
    // rest's mass is a sum of its own terms rather than 1 − Σ top, which cancels.
    let (scratch, top) = scratch;
    scratch.clear();
    scratch.extend(row.iter().map(|&z| z / temp));
    let (lse_t, inv_t) = exp_in_place(scratch);
    scratch.iter_mut().for_each(|p| *p *= inv_t);
    top.clear();
    top.extend(ids.iter().map(|&i| std::mem::take(&mut scratch[i as usize])));
    let p_rest = scratch.iter().map(|&p| p as f64).sum::<f64>().max(f64::MIN_POSITIVE);
    let (lse, inv) = exp_in_place(row);
    let nll = (lse - z_t) as f64;
    let soft_ce =
        (temp * temp * (1.0 - rest) * lse_t - temp * qz) as f64 - (temp * temp) as f64 * rest as f64 * p_rest.ln();
    // The rest's term, −w·T·r·p_T/P_rest, lands outside the top k only.
    let c = w * temp * (rest as f64 / p_rest) as f32;
    row.iter_mut().zip(scratch.iter()).for_each(|(g, &pt)| *g = (1.0 - w) * *g * inv + (w * temp - c) * pt);
    for ((&i, &q), &pt) in ids.iter().zip(q).zip(top.iter()) {
        row[i as usize] += w * temp * (pt - q);
    }
    row[t as usize] -= 1.0 - w;
    ((1.0 - w as f64) * nll + w as f64 * soft_ce, nll)
}

/// One row's soft targets, as [`row_loss`] takes them.
struct Soft<'a> {
    ids: &'a [u32],
    q: &'a [f32],
    rest: f32,
    w: f32,
    temp: f32,
}

/// Turns `N × V` logits into the gradient of the summed loss, in place, on the rayon
/// threads; returns the summed loss and the summed data NLL.
fn losses(
    logits: &mut [f32],
    v: usize,
    targets: &[u32],
    soft: Option<&SoftTargets>,
) -> candle_core::Result<(f64, f64)> {
    let n = targets.len();
    if logits.len() != n * v || targets.iter().any(|&t| t as usize >= v) {
        return Err(candle_core::Error::Msg(format!("need {n} targets below {v} for {} logits", logits.len())));
    }
    if let Some(s) = soft {
        if s.ids.len() != n * s.k
            || s.probs.len() != n * s.k
            || s.rest.len() != n
            || s.ids.iter().any(|&i| i as usize >= v)
        {
            return Err(candle_core::Error::Msg(format!("need {n} × {} soft targets below {v} and {n} rests", s.k)));
        }
    }
    let per_row: Vec<(f64, f64)> = logits
        .par_chunks_mut(v.max(1))
        .enumerate()
        .map_init(<(Vec<f32>, Vec<f32>)>::default, |scratch, (r, row)| {
            let soft = soft.map(|s| {
                let at = r * s.k..(r + 1) * s.k;
                Soft { ids: &s.ids[at.clone()], q: &s.probs[at], rest: s.rest[r], w: s.weight, temp: s.temperature }
            });
            row_loss(row, targets[r], soft, scratch)
        })
        .collect();
    Ok(per_row.iter().fold((0.0, 0.0), |(l, n), &(a, b)| (l + a, n + b)))
}

/// What a loss op hands its caller besides the loss tensor: the mean data NLL (which differs
/// from the loss under distillation), filled in by the forward pass.
type NllCell = std::sync::Arc<Mutex<f64>>;

/// What both loss ops score logits against: the data's targets, the teacher's soft
/// targets if any, and where the mean data NLL goes.
struct Targets {
    targets: Vec<u32>,
    soft: Option<SoftTargets>,
    nll: NllCell,
}

impl Targets {
    fn new(targets: &[u32], soft: Option<&SoftTargets>) -> (Targets, NllCell) {
        let nll = NllCell::default();
        (Targets { targets: targets.to_vec(), soft: soft.cloned(), nll: nll.clone() }, nll)
    }

    /// Turns `N × V` logits into the gradient of the summed loss, in place; records the
    /// mean data NLL and returns the mean loss.
    fn score(&self, logits: &mut [f32], v: usize) -> candle_core::Result<f32> {
        let (loss, nll) = losses(logits, v, &self.targets, self.soft.as_ref())?;
        let per = self.targets.len().max(1) as f64;
        *self.nll.lock().expect("not poisoned") = nll / per;
        Ok((loss / per) as f32)
    }
}

/// Mean loss of `targets` (and, with `soft`, the teacher's soft targets) under
/// `softmax(h·Wᵀ + b)`, for `h` (`N × H`), `w` (`V × H`) and `b` (`V`), without an `N × V`
/// tensor in the graph. Returns the loss and the mean data NLL (nats per token).
pub fn projected_cross_entropy(
    h: &Tensor,
    w: &Tensor,
    b: &Tensor,
    targets: &[u32],
    soft: Option<&SoftTargets>,
) -> candle_core::Result<(Tensor, f64)> {
    let (targets, nll) = Targets::new(targets, soft);
    let op = ProjectedCrossEntropy { targets, grad: Mutex::new(None) };
    let loss = h.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op)?;
    let nll = *nll.lock().expect("not poisoned");
    Ok((loss, nll))
}

struct ProjectedCrossEntropy {
    targets: Targets,
    /// `∂ summed loss / ∂ logits`, from the forward pass for the backward pass.
    grad: Mutex<Option<Vec<f32>>>,
}

impl CustomOp3 for ProjectedCrossEntropy {
    fn name(&self) -> &'static str {
        "projected-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (h, w, b) = (contiguous(s1, l1, "h")?, contiguous(s2, l2, "w")?, contiguous(s3, l3, "b")?);
        let (&[n, hd], &[v, hd2], &[v2]) = (l1.dims(), l2.dims(), l3.dims()) else {
            return Err(candle_core::Error::Msg("need h: N×H, w: V×H, b: V".into()));
        };
        if hd != hd2 || v != v2 || self.targets.targets.len() != n {
            return Err(candle_core::Error::Msg(format!(
                "shapes h {n}×{hd}, w {v}×{hd2}, b {v2} and {} targets disagree",
                self.targets.targets.len()
            )));
        }
        let mut logits: Vec<f32> = b.repeat(n);
        matmul(&mut logits, true, View::new(h, n, hd), View::new(w, v, hd).t());
        let loss = self.targets.score(&mut logits, v)?;
        *self.grad.lock().expect("not poisoned") = Some(logits);
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        h: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let mut g = self
            .grad
            .lock()
            .expect("not poisoned")
            .take()
            .ok_or_else(|| candle_core::Error::Msg("backward ran twice".into()))?;
        let ((n, hd), (v, _)) = (h.dims2()?, w.dims2()?);
        let k = grad.to_scalar::<f32>()? / n.max(1) as f32;
        g.par_iter_mut().for_each(|x| *x *= k);
        let mut dh = vec![0f32; n * hd];
        with_values(w, |wv| matmul(&mut dh, false, View::new(&g, n, v), View::new(wv, v, hd)))?;
        let mut dw = vec![0f32; v * hd];
        with_values(h, |hv| matmul(&mut dw, false, View::new(&g, n, v).t(), View::new(hv, n, hd)))?;
        let mut db = vec![0f32; v];
        for row in g.chunks_exact(v.max(1)) {
            db.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
        }
        let dev = h.device();
        Ok((
            Some(Tensor::from_vec(dh, (n, hd), dev)?),
            Some(Tensor::from_vec(dw, (v, hd), dev)?),
            Some(Tensor::from_vec(db, v, dev)?),
        ))
    }
}

/// How the recurrent weights of [`lstm_layer`] are laid out, and co-matrix dropout on them.
#[derive(Debug, Clone, PartialEq)]
pub enum CoMatrix {
    /// One weight: `w` is `H × 4H`, `gx` `T·B × 4H`.
    None,
    /// Two parts (structured, then co-matrix) whose pre-activations add up, the second's
    /// under `mask` (`T·B × 4H`): `pre₁ + mask_t ⊙ pre₂`, co-matrix dropout per element.
    /// `w` is `H × 8H` and `gx` `T·B × 8H`, the two parts side by side.
    Mask(Vec<f32>),
    /// Two alternative weights `w = [W₀ | W₁]` (`H × 8H`), step `t` taking `W₁` where
    /// `pick[t]`; `gx` (`T·B × 4H`) holds each step's input half made with the same
    /// choice. Co-matrix dropout of the whole term, `W₀ = base` and
    /// `W₁ = base + S / (1 − p)`, at the cost of one weight rather than two.
    Pick(Vec<bool>),
    /// [`CoMatrix::Mask`] with S sparse: `w` is the structured part alone (`H × 4H`),
    /// S's recurrent columns come as `entries` with their values as the op's third input,
    /// `gx` is `T·B × 8H` as for `Mask` (the caller makes S's input half sparsely too).
    SparseMask(Vec<f32>, Arc<Entries>),
}

/// A whole LSTM layer over a window, as one op.
///
/// `gx` holds each step's input contribution (bias included) and `w` the transposed
/// recurrent weights, laid out as `co` says. Starting from `h0`, `c0` (`B × H`, no
/// gradient), returns `[h_t | c_t]` for every step (`T·B × 2H`). Backward runs
/// back-propagation through time by hand: one small matmul per step and one large one
/// for the weight gradient (two with [`CoMatrix::Pick`], one per weight). `s` holds the
/// values of [`CoMatrix::SparseMask`]'s entries, and is `None` otherwise.
pub fn lstm_layer(
    gx: &Tensor,
    w: &Tensor,
    s: Option<&Tensor>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    co: CoMatrix,
) -> candle_core::Result<Tensor> {
    let none = Tensor::zeros(0, candle_core::DType::F32, gx.device())?;
    let op = LstmLayer { h0, c0, co, gates: Mutex::new(None) };
    gx.contiguous()?.apply_op3(&w.contiguous()?, &s.unwrap_or(&none).contiguous()?, op)
}

struct LstmLayer {
    h0: Vec<f32>,
    c0: Vec<f32>,
    co: CoMatrix,
    /// Gate pre-activations of the forward pass, for the backward pass.
    gates: Mutex<Option<Vec<f32>>>,
}

impl LstmLayer {
    /// `(T, B, H)` from the shapes, checked against the layout.
    fn dims(&self, gx: &[usize], w: &[usize], s: &[usize]) -> candle_core::Result<(usize, usize, usize)> {
        let err = |m: String| candle_core::Error::Msg(m);
        let (&[tb, gx_width], &[hd, w_width]) = (gx, w) else {
            return Err(err("need gx: T·B × 4H or 8H and w: H × 4H or 8H".into()));
        };
        let b = self.h0.len() / hd.max(1);
        let h4 = 4 * hd;
        let widths = match self.co {
            CoMatrix::None => (h4, h4),
            CoMatrix::Mask(_) => (2 * h4, 2 * h4),
            CoMatrix::Pick(_) => (h4, 2 * h4),
            CoMatrix::SparseMask(..) => (2 * h4, h4),
        };
        if hd == 0 || b == 0 || (gx_width, w_width) != widths || self.c0.len() != b * hd || tb % b != 0 {
            return Err(err(format!(
                "lstm layer shapes disagree: gx {tb}×{gx_width}, w {hd}×{w_width}, state {}",
                self.h0.len()
            )));
        }
        let values = match &self.co {
            CoMatrix::SparseMask(_, e) => e.nnz(),
            _ => 0,
        };
        let ok = s == [values]
            && match &self.co {
                CoMatrix::None => true,
                CoMatrix::Mask(m) => m.len() == tb * h4,
                CoMatrix::Pick(p) => p.len() == tb / b,
                CoMatrix::SparseMask(m, e) => m.len() == tb * h4 && (e.rows, e.cols) == (h4, hd),
            };
        if !ok {
            return Err(err("the co-matrix mask, choice or entries do not fit the window".into()));
        }
        Ok((tb / b, b, hd))
    }

    /// The recurrent weight step `t` multiplies `h` by: all of `w` (`H × width`), or the
    /// picked half.
    fn weight_at<'a>(&self, w: &'a [f32], t: usize, hd: usize) -> View<'a> {
        match &self.co {
            CoMatrix::Pick(p) => View::columns(w, hd, 8 * hd, if p[t] { 4 * hd } else { 0 }, 4 * hd),
            CoMatrix::None | CoMatrix::SparseMask(..) => View::new(w, hd, 4 * hd),
            CoMatrix::Mask(_) => View::new(w, hd, 8 * hd),
        }
    }

    /// The co-matrix dropout mask, if any.
    fn mask(&self) -> Option<&[f32]> {
        match &self.co {
            CoMatrix::Mask(m) | CoMatrix::SparseMask(m, _) => Some(m),
            _ => None,
        }
    }
}

impl CustomOp3 for LstmLayer {
    fn name(&self) -> &'static str {
        "lstm-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (gx, w, sv) = (contiguous(s1, l1, "gx")?, contiguous(s2, l2, "w")?, contiguous(s3, l3, "s")?);
        let (t_len, b, hd) = self.dims(l1.dims(), l2.dims(), l3.dims())?;
        let (h4, width) = (4 * hd, l1.dims()[1]);
        let mut gates = vec![0f32; t_len * b * h4];
        let mut out = vec![0f32; t_len * b * 2 * hd];
        let (mut h, mut c) = (self.h0.clone(), self.c0.clone());
        let mut pre = vec![0f32; b * width];
        let mut act = vec![0f32; h4];
        for t in 0..t_len {
            pre.copy_from_slice(&gx[t * b * width..(t + 1) * b * width]);
            match &self.co {
                // The structured part into the first half of each row, S into the second.
                CoMatrix::SparseMask(_, e) => {
                    let mut base = vec![0f32; b * h4];
                    matmul_with(&mut base, false, View::new(&h, b, hd), View::new(w, hd, h4), Parallelism::None);
                    let mut st = vec![0f32; h4 * b];
                    e.forward_t(sv, &transpose(&h, b, hd), b, &mut st);
                    for (r, p) in pre.chunks_exact_mut(width).enumerate() {
                        let (p1, p2) = p.split_at_mut(h4);
                        p1.iter_mut().zip(&base[r * h4..(r + 1) * h4]).for_each(|(p, &x)| *p += x);
                        p2.iter_mut().enumerate().for_each(|(i, p)| *p += st[i * b + r]);
                    }
                }
                _ => matmul_with(&mut pre, true, View::new(&h, b, hd), self.weight_at(w, t, hd), Parallelism::None),
            }
            let g_t = &mut gates[t * b * h4..(t + 1) * b * h4];
            for (r, g) in g_t.chunks_exact_mut(h4).enumerate() {
                let p = &pre[r * width..(r + 1) * width];
                g.copy_from_slice(&p[..h4]);
                if let Some(mask) = self.mask() {
                    let m = &mask[(t * b + r) * h4..(t * b + r + 1) * h4];
                    g.iter_mut().zip(&p[h4..]).zip(m).for_each(|((g, &s), &m)| *g += m * s);
                }
            }
            let o_t = &mut out[t * b * 2 * hd..(t + 1) * b * 2 * hd];
            for r in 0..b {
                activate(&g_t[r * h4..(r + 1) * h4], hd, &mut act);
                let (h_out, c_out) = o_t[r * 2 * hd..(r + 1) * 2 * hd].split_at_mut(hd);
                for j in 0..hd {
                    let c_new = act[hd + j] * c[r * hd + j] + act[j] * act[2 * hd + j];
                    c_out[j] = c_new;
                    h_out[j] = act[3 * hd + j] * tanh1(c_new);
                }
                h[r * hd..(r + 1) * hd].copy_from_slice(h_out);
                c[r * hd..(r + 1) * hd].copy_from_slice(c_out);
            }
        }
        *self.gates.lock().expect("not poisoned") = Some(gates);
        Ok((CpuStorage::F32(out), Shape::from((t_len * b, 2 * hd))))
    }

    fn bwd(
        &self,
        gx: &Tensor,
        w: &Tensor,
        s: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let gates = self
            .gates
            .lock()
            .expect("not poisoned")
            .take()
            .ok_or_else(|| candle_core::Error::Msg("backward ran twice".into()))?;
        let (t_len, b, hd) = self.dims(gx.dims(), w.dims(), s.dims())?;
        let (h4, width) = (4 * hd, gx.dims()[1]);
        let grad = grad.contiguous()?;
        let sv = s.to_vec1::<f32>()?;
        let mut dpre = vec![0f32; t_len * b * width];
        let mut h_prev_all = vec![0f32; t_len * b * hd];
        let (mut dh_next, mut dc_next) = (vec![0f32; b * hd], vec![0f32; b * hd]);
        let mut act = vec![0f32; h4];
        with_values(res, |y| {
            with_values(&grad, |dy| {
                with_values(w, |wv| {
                    for t in (0..t_len).rev() {
                        let prev = |r: usize| -> (&[f32], &[f32]) {
                            if t == 0 {
                                (&self.h0[r * hd..(r + 1) * hd], &self.c0[r * hd..(r + 1) * hd])
                            } else {
                                let row = &y[((t - 1) * b + r) * 2 * hd..((t - 1) * b + r + 1) * 2 * hd];
                                row.split_at(hd)
                            }
                        };
                        let dp_t = &mut dpre[t * b * width..(t + 1) * b * width];
                        for r in 0..b {
                            let (h_prev, c_prev) = prev(r);
                            h_prev_all[(t * b + r) * hd..(t * b + r + 1) * hd].copy_from_slice(h_prev);
                            let i_row = t * b + r;
                            activate(&gates[i_row * h4..(i_row + 1) * h4], hd, &mut act);
                            let (yr, dyr) =
                                (&y[i_row * 2 * hd..(i_row + 1) * 2 * hd], &dy[i_row * 2 * hd..(i_row + 1) * 2 * hd]);
                            let dg = &mut dp_t[r * width..r * width + h4];
                            for j in 0..hd {
                                let (i, f, gg, o) = (act[j], act[hd + j], act[2 * hd + j], act[3 * hd + j]);
                                let tc = tanh1(yr[hd + j]);
                                let dh = dyr[j] + dh_next[r * hd + j];
                                let dct = dyr[hd + j] + dc_next[r * hd + j] + dh * o * (1.0 - tc * tc);
                                dg[j] = dct * gg * i * (1.0 - i);
                                dg[hd + j] = dct * c_prev[j] * f * (1.0 - f);
                                dg[2 * hd + j] = dct * i * (1.0 - gg * gg);
                                dg[3 * hd + j] = dh * tc * o * (1.0 - o);
                                dc_next[r * hd + j] = dct * f;
                            }
                            if let Some(mask) = self.mask() {
                                let m = &mask[i_row * h4..(i_row + 1) * h4];
                                let (d1, d2) = dp_t[r * width..(r + 1) * width].split_at_mut(h4);
                                d2.iter_mut().zip(d1.iter()).zip(m).for_each(|((d2, &d1), &m)| *d2 = d1 * m);
                            }
                        }
                        // dh_{t-1} = dpre_t · wᵀ (the structured half, then S's, for a sparse S).
                        match &self.co {
                            CoMatrix::SparseMask(_, e) => {
                                let (d1, w1) = (View::columns(dp_t, b, width, 0, h4), View::new(wv, hd, h4));
                                matmul_with(&mut dh_next, false, d1, w1.t(), Parallelism::None);
                                let d2t: Vec<f32> = (0..h4 * b).map(|k| dp_t[(k % b) * width + h4 + k / b]).collect();
                                let mut dht = vec![0f32; hd * b];
                                e.backward_t(&sv, &d2t, b, &mut dht);
                                dh_next.iter_mut().enumerate().for_each(|(k, d)| *d += dht[(k % hd) * b + k / hd]);
                            }
                            _ => matmul_with(
                                &mut dh_next,
                                false,
                                View::new(dp_t, b, width),
                                self.weight_at(wv, t, hd).t(),
                                Parallelism::None,
                            ),
                        }
                    }
                })
            })
        })???;
        let tb = t_len * b;
        let (dw, ds) = match &self.co {
            // dw = Σ_t h_{t-1}ᵀ · dpre_t as one matmul.
            CoMatrix::None | CoMatrix::Mask(_) => {
                let mut dw = vec![0f32; hd * width];
                matmul(&mut dw, false, View::new(&h_prev_all, tb, hd).t(), View::new(&dpre, tb, width));
                (dw, None)
            }
            // Each weight's gradient from the steps that took it, side by side.
            CoMatrix::Pick(pick) => {
                let mut dw = vec![0f32; hd * 2 * h4];
                for half in [false, true] {
                    let steps: Vec<usize> = (0..t_len).filter(|&t| pick[t] == half).collect();
                    let rows = |v: &[f32], n: usize| -> Vec<f32> {
                        steps.iter().flat_map(|&t| &v[t * b * n..(t + 1) * b * n]).copied().collect()
                    };
                    let mut part = vec![0f32; hd * h4];
                    let n = steps.len() * b;
                    matmul(
                        &mut part,
                        false,
                        View::new(&rows(&h_prev_all, hd), n, hd).t(),
                        View::new(&rows(&dpre, h4), n, h4),
                    );
                    let at = if half { h4 } else { 0 };
                    for (dst, src) in dw.chunks_exact_mut(2 * h4).zip(part.chunks_exact(h4)) {
                        dst[at..at + h4].copy_from_slice(src);
                    }
                }
                (dw, None)
            }
            // The structured part's as one matmul, S's entry by entry.
            CoMatrix::SparseMask(_, e) => {
                let mut dw = vec![0f32; hd * h4];
                matmul(&mut dw, false, View::new(&h_prev_all, tb, hd).t(), View::columns(&dpre, tb, width, 0, h4));
                let d2t: Vec<f32> = (0..h4 * tb).map(|k| dpre[(k % tb) * width + h4 + k / tb]).collect();
                (dw, Some(e.value_grads(&d2t, &transpose(&h_prev_all, tb, hd), tb)))
            }
        };
        let dev = gx.device();
        let ds = ds.map(|d| Tensor::from_vec(d, s.dims(), dev)).transpose()?;
        Ok((Some(Tensor::from_vec(dpre, (tb, width), dev)?), Some(Tensor::from_vec(dw, w.dims(), dev)?), ds))
    }
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    2.0 * sigmoid1(2.0 * x) - 1.0
}

/// Activated gates of one row: σ on i, f and o, tanh on g (each H long).
fn activate(g: &[f32], hd: usize, out: &mut [f32]) {
    for (k, (o, x)) in out.chunks_exact_mut(hd).zip(g.chunks_exact(hd)).enumerate() {
        if k == 2 {
            o.iter_mut().zip(x).for_each(|(o, &x)| *o = tanh1(x));
        } else {
            o.iter_mut().zip(x).for_each(|(o, &x)| *o = sigmoid1(x));
        }
    }
}

/// `w ← a·w + b·x` element-wise, in place (`w` and `x` same shape, contiguous).
pub fn axpby_in_place(w: &Tensor, a: f32, b: f32, x: &Tensor) -> candle_core::Result<()> {
    w.inplace_op2(x, &Axpby { a, b })
}

struct Axpby {
    a: f32,
    b: f32,
}

impl InplaceOp2 for Axpby {
    fn name(&self) -> &'static str {
        "axpby"
    }

    fn cpu_fwd(&self, s1: &mut CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<()> {
        let x = contiguous(s2, l2, "x")?;
        let (a, b) = l1.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("w must be contiguous".into()))?;
        let CpuStorage::F32(w) = s1 else {
            return Err(candle_core::Error::Msg("w must be f32".into()));
        };
        let w = &mut w[a..b];
        if w.len() != x.len() {
            return Err(candle_core::Error::Msg(format!("axpby of {} and {} values", w.len(), x.len())));
        }
        w.iter_mut().zip(x).for_each(|(w, &x)| *w = self.a * *w + self.b * x);
        Ok(())
    }
}

/// The Kronecker product `A ⊗ B` (`m1·m2 × n1·n2`), in the runtime's convention
/// `W[i1·m2 + i2, j1·n2 + j2] = A[i1, j1]·B[i2, j2]`, with its gradients
/// `dA[i1, j1] = Σ G[block (i1, j1)] ⊙ B` and `dB = Σ_{i1, j1} A[i1, j1]·G[block (i1, j1)]`.
pub fn kron(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    a.contiguous()?.apply_op2(&b.contiguous()?, Kron)
}

struct Kron;

impl CustomOp2 for Kron {
    fn name(&self) -> &'static str {
        "kron"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (a, b) = (contiguous(s1, l1, "A")?, contiguous(s2, l2, "B")?);
        let (&[m1, n1], &[m2, n2]) = (l1.dims(), l2.dims()) else {
            return Err(candle_core::Error::Msg("Kronecker factors must be matrices".into()));
        };
        let cols = n1 * n2;
        let mut w = vec![0f32; m1 * m2 * cols];
        for i1 in 0..m1 {
            for i2 in 0..m2 {
                let row = &mut w[(i1 * m2 + i2) * cols..][..cols];
                let br = &b[i2 * n2..(i2 + 1) * n2];
                for (j1, chunk) in row.chunks_exact_mut(n2.max(1)).enumerate().take(n1) {
                    let av = a[i1 * n1 + j1];
                    chunk.iter_mut().zip(br).for_each(|(o, &bv)| *o = av * bv);
                }
            }
        }
        Ok((CpuStorage::F32(w), Shape::from((m1 * m2, cols))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let ((m1, n1), (m2, n2)) = (a.dims2()?, b.dims2()?);
        let grad = grad.contiguous()?;
        let cols = n1 * n2;
        let (mut da, mut db) = (vec![0f32; m1 * n1], vec![0f32; m2 * n2]);
        with_values(a, |av| {
            with_values(b, |bv| {
                with_values(&grad, |g| {
                    for i1 in 0..m1 {
                        for i2 in 0..m2 {
                            let row = &g[(i1 * m2 + i2) * cols..][..cols];
                            let (br, dbr) = (&bv[i2 * n2..(i2 + 1) * n2], &mut db[i2 * n2..(i2 + 1) * n2]);
                            for (j1, chunk) in row.chunks_exact(n2.max(1)).enumerate().take(n1) {
                                da[i1 * n1 + j1] += chunk.iter().zip(br).map(|(&x, &y)| x * y).sum::<f32>();
                                let aw = av[i1 * n1 + j1];
                                dbr.iter_mut().zip(chunk).for_each(|(d, &x)| *d += aw * x);
                            }
                        }
                    }
                })
            })
        })???;
        let dev = a.device();
        Ok((Some(Tensor::from_vec(da, (m1, n1), dev)?), Some(Tensor::from_vec(db, (m2, n2), dev)?)))
    }
}

/// Mean loss of `targets` (and, with `soft`, the teacher's soft targets) under
/// `softmax(logits)` (`N × V`), with the loss of [`projected_cross_entropy`]; returns the
/// loss and the mean data NLL.
pub fn cross_entropy(
    logits: &Tensor,
    targets: &[u32],
    soft: Option<&SoftTargets>,
) -> candle_core::Result<(Tensor, f64)> {
    let (targets, nll) = Targets::new(targets, soft);
    let loss = logits.contiguous()?.apply_op1(SoftmaxCrossEntropy(targets))?;
    let nll = *nll.lock().expect("not poisoned");
    Ok((loss, nll))
}

struct SoftmaxCrossEntropy(Targets);

impl SoftmaxCrossEntropy {
    /// The mean loss of `logits` and the summed loss's gradient.
    fn run(&self, logits: &[f32], dims: &[usize]) -> candle_core::Result<(f32, Vec<f32>)> {
        let &[n, v] = dims else {
            return Err(candle_core::Error::Msg(format!("logits must be N × V, got {dims:?}")));
        };
        if self.0.targets.len() != n {
            return Err(candle_core::Error::Msg(format!("{} targets for {n} rows", self.0.targets.len())));
        }
        let mut g = logits.to_vec();
        let loss = self.0.score(&mut g, v)?;
        Ok((loss, g))
    }
}

impl CustomOp1 for SoftmaxCrossEntropy {
    fn name(&self) -> &'static str {
        "softmax-cross-entropy"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (loss, _) = self.run(contiguous(s, l, "logits")?, l.dims())?;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    /// Recomputes the gradient instead of keeping an `N × V` buffer from the forward pass,
    /// which scoring (no backward pass) would pay for nothing.
    fn bwd(&self, logits: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let logits = logits.contiguous()?;
        let (_, mut g) = with_values(&logits, |x| self.run(x, logits.dims()))??;
        let k = grad.to_scalar::<f32>()? / logits.dims()[0].max(1) as f32;
        g.par_iter_mut().for_each(|x| *x *= k);
        Ok(Some(Tensor::from_vec(g, logits.shape(), logits.device())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Largest absolute difference between two tensors of one shape.
    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn matches_unfused_softmax_and_its_gradient() {
        let dev = Device::Cpu;
        let data: Vec<f32> = (0..3 * 5).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
        let x = Var::from_vec(data, (3, 5), &dev).unwrap();
        let t = Tensor::new(&[4u32, 0, 2], &dev).unwrap();
        let (fused, nll) = cross_entropy(x.as_tensor(), &[4, 0, 2], None).unwrap();
        // Unfused reference: −mean(log_softmax(x)[t]).
        let lse = x.as_tensor().exp().unwrap().sum_keepdim(1).unwrap().log().unwrap();
        let log_p = x.as_tensor().broadcast_sub(&lse).unwrap();
        let picked = log_p.gather(&t.unsqueeze(1).unwrap(), 1).unwrap();
        let reference = picked.mean_all().unwrap().neg().unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 && (nll - a as f64).abs() < 1e-6, "{a} vs {b}, nll {nll}");
        let g1 = (fused * 3.0).unwrap().backward().unwrap();
        let g2 = (reference * 3.0).unwrap().backward().unwrap();
        let (g1, g2) = (g1.get(&x).unwrap(), g2.get(&x).unwrap());
        let diff = max_diff(g1, g2);
        assert!(diff < 1e-5, "{diff}");
        assert!(cross_entropy(x.as_tensor(), &[9, 0, 2], None).is_err());
    }

    #[test]
    fn kron_matches_broadcasting_and_its_gradient() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(6);
        use crate::rng::RandomVec;
        let a = Var::from_vec(rng.uniform_vec(3 * 4, 1.0), (3, 4), &dev).unwrap();
        let b = Var::from_vec(rng.uniform_vec(2 * 5, 1.0), (2, 5), &dev).unwrap();
        let fused = kron(a.as_tensor(), b.as_tensor()).unwrap();
        let plain = a
            .reshape((3, 1, 4, 1))
            .unwrap()
            .broadcast_mul(&b.reshape((1, 2, 1, 5)).unwrap())
            .unwrap()
            .reshape((6, 20))
            .unwrap();
        assert_eq!(fused.to_vec2::<f32>().unwrap(), plain.to_vec2::<f32>().unwrap());
        let r = Tensor::from_vec(rng.uniform_vec(6 * 20, 1.0), (6, 20), &dev).unwrap();
        let (g1, g2) = (
            (fused * &r).unwrap().sum_all().unwrap().backward().unwrap(),
            (plain * &r).unwrap().sum_all().unwrap().backward().unwrap(),
        );
        for v in [&a, &b] {
            let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(d < 1e-5, "{d}");
        }
    }

    #[test]
    fn fast_exp_is_accurate() {
        for i in -2000..=800 {
            let x = i as f32 * 0.1;
            let (a, b) = (fast_exp(x), x.exp());
            assert!((a - b).abs() <= 3e-7 * b + 1e-37, "exp({x}) = {b}, got {a}");
        }
    }

    #[test]
    fn projected_loss_matches_matmul_then_cross_entropy() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(9);
        use crate::rng::RandomVec;
        let (n, hd, v) = (5, 4, 7);
        let h = Var::from_vec(rng.uniform_vec(n * hd, 1.0), (n, hd), &dev).unwrap();
        let w = Var::from_vec(rng.uniform_vec(v * hd, 1.0), (v, hd), &dev).unwrap();
        let b = Var::from_vec(rng.uniform_vec(v, 1.0), v, &dev).unwrap();
        let targets = [0u32, 6, 3, 3, 1];
        // With and without soft targets (k = 3, T = 2, w = 0.4).
        let soft = SoftTargets {
            ids: (0..n * 3).map(|i| (i * 5 % v) as u32).collect(),
            probs: [0.5, 0.2, 0.1].repeat(n),
            rest: vec![0.2; n],
            k: 3,
            weight: 0.4,
            temperature: 2.0,
        };
        for soft in [None, Some(&soft)] {
            let (fused, nll1) =
                projected_cross_entropy(h.as_tensor(), w.as_tensor(), b.as_tensor(), &targets, soft).unwrap();
            let logits =
                h.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap().broadcast_add(b.as_tensor()).unwrap();
            let (plain, nll2) = cross_entropy(&logits, &targets, soft).unwrap();
            assert!((fused.to_scalar::<f32>().unwrap() - plain.to_scalar::<f32>().unwrap()).abs() < 1e-5);
            assert!((nll1 - nll2).abs() < 1e-6);
            let (g1, g2) = ((fused * 2.0).unwrap().backward().unwrap(), (plain * 2.0).unwrap().backward().unwrap());
            for var in [&h, &w, &b] {
                assert!(max_diff(g1.get(var).unwrap(), g2.get(var).unwrap()) < 1e-5);
            }
        }
    }

    /// The distillation loss of two rows, worked out by hand in f64 from its definition
    /// (`DistillConfig`), and its gradient against central differences of that formula.
    #[test]
    fn distillation_loss_is_the_hand_computed_mixture() {
        let dev = Device::Cpu;
        let z = [[1.0f64, -0.5, 0.25, 2.0], [0.0, 0.3, -1.2, 0.7]];
        let targets = [3u32, 1];
        // The teacher's top two of each row and the rest of its probability.
        let (ids, q, rest) = ([[3u32, 0], [2, 1]], [[0.6f64, 0.25], [0.5, 0.3]], [0.15f64, 0.2]);
        let (w, t) = (0.3f64, 2.0f64);
        let hand = |z: &[[f64; 4]; 2]| -> (f64, f64) {
            let (mut loss, mut nll) = (0.0, 0.0);
            for r in 0..2 {
                let lse = |s: f64| z[r].iter().map(|x| (x / s).exp()).sum::<f64>().ln();
                let data = lse(1.0) - z[r][targets[r] as usize];
                // Cross-entropy of the teacher's three outcomes (two tokens and "any other")
                // against softmax(z/T): −Σ_j q_j·log p_T(i_j) − r·log Σ_{i ∉ top} p_T(i).
                let log_p = |c: usize| z[r][c] / t - lse(t);
                let outside: f64 = (0..4).filter(|c| !ids[r].contains(&(*c as u32))).map(|c| log_p(c).exp()).sum();
                let soft = -(0..2).map(|j| q[r][j] * log_p(ids[r][j] as usize)).sum::<f64>() - rest[r] * outside.ln();
                loss += (1.0 - w) * data + w * t * t * soft;
                nll += data;
            }
            (loss / 2.0, nll / 2.0)
        };
        let soft = SoftTargets {
            ids: ids.concat(),
            probs: q.concat().iter().map(|&x| x as f32).collect(),
            rest: rest.iter().map(|&x| x as f32).collect(),
            k: 2,
            weight: w as f32,
            temperature: t as f32,
        };
        let x = Var::from_vec(z.concat().iter().map(|&v| v as f32).collect(), (2, 4), &dev).unwrap();
        let (loss, nll) = cross_entropy(x.as_tensor(), &targets, Some(&soft)).unwrap();
        let (want_loss, want_nll) = hand(&z);
        let got = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((got - want_loss).abs() < 1e-6, "loss {got} vs {want_loss}");
        assert!((nll - want_nll).abs() < 1e-6, "nll {nll} vs {want_nll}");
        let g = loss.backward().unwrap().get(&x).unwrap().to_vec2::<f32>().unwrap();
        for r in 0..2 {
            for c in 0..4 {
                let (mut up, mut down) = (z, z);
                up[r][c] += 1e-5;
                down[r][c] -= 1e-5;
                let numeric = (hand(&up).0 - hand(&down).0) / 2e-5;
                assert!((g[r][c] as f64 - numeric).abs() < 1e-5, "∂/∂z[{r}][{c}]: {} vs {numeric}", g[r][c]);
            }
        }
        // w = 0 is the data's loss alone, whatever the soft targets say.
        let plain = SoftTargets { weight: 0.0, ..soft.clone() };
        let (l0, _) = cross_entropy(x.as_tensor(), &targets, Some(&plain)).unwrap();
        assert!((l0.to_scalar::<f32>().unwrap() as f64 - want_nll).abs() < 1e-6);
        let bad = SoftTargets { ids: vec![9, 0, 2, 1], ..soft };
        assert!(cross_entropy(x.as_tensor(), &targets, Some(&bad)).is_err());
    }

    /// The layer written with plain candle ops, step by step.
    fn reference_layer(gx: &Tensor, w: &Tensor, h0: &Tensor, c0: &Tensor, co: &CoMatrix, b: usize) -> Tensor {
        let hd = h0.dim(1).unwrap();
        let sig = |t: Tensor| (t.neg().unwrap().exp().unwrap() + 1.0).unwrap().recip().unwrap();
        let (mut h, mut c) = (h0.clone(), c0.clone());
        let mut outs = vec![];
        for t in 0..gx.dim(0).unwrap() / b {
            let gx_t = gx.narrow(0, t * b, b).unwrap();
            let g = match co {
                CoMatrix::None => (gx_t + h.matmul(w).unwrap()).unwrap(),
                CoMatrix::Mask(m) => {
                    let pre = (gx_t + h.matmul(w).unwrap()).unwrap();
                    let m =
                        Tensor::from_slice(&m[t * b * 4 * hd..(t + 1) * b * 4 * hd], (b, 4 * hd), gx.device()).unwrap();
                    (pre.narrow(1, 0, 4 * hd).unwrap() + (pre.narrow(1, 4 * hd, 4 * hd).unwrap() * m).unwrap()).unwrap()
                }
                CoMatrix::Pick(p) => {
                    let w = w.narrow(1, if p[t] { 4 * hd } else { 0 }, 4 * hd).unwrap();
                    (gx_t + h.matmul(&w.contiguous().unwrap()).unwrap()).unwrap()
                }
                CoMatrix::SparseMask(..) => unreachable!("checked against `Mask`"),
            };
            let (i, f) = (sig(g.narrow(1, 0, hd).unwrap()), sig(g.narrow(1, hd, hd).unwrap()));
            let (gg, o) = (g.narrow(1, 2 * hd, hd).unwrap().tanh().unwrap(), sig(g.narrow(1, 3 * hd, hd).unwrap()));
            c = ((f * &c).unwrap() + (i * gg).unwrap()).unwrap();
            h = (o * c.tanh().unwrap()).unwrap();
            outs.push(Tensor::cat(&[&h, &c], 1).unwrap());
        }
        Tensor::cat(&outs, 0).unwrap()
    }

    #[test]
    fn lstm_layer_matches_step_by_step_ops_and_their_gradients() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(4);
        use crate::rng::RandomVec;
        let (t_len, b, hd) = (4, 3, 5);
        let h4 = 4 * hd;
        let layouts = [
            CoMatrix::None,
            CoMatrix::Mask(rng.dropout_mask(t_len * b * h4, 0.5)),
            CoMatrix::Pick(vec![true, false, false, true]),
            CoMatrix::Pick(vec![false; 4]),
        ];
        for co in layouts {
            let (gx_width, w_width) = match co {
                CoMatrix::None => (h4, h4),
                CoMatrix::Mask(_) => (2 * h4, 2 * h4),
                CoMatrix::Pick(_) => (h4, 2 * h4),
                CoMatrix::SparseMask(..) => unreachable!("tested below"),
            };
            let gx = Var::from_vec(rng.uniform_vec(t_len * b * gx_width, 1.5), (t_len * b, gx_width), &dev).unwrap();
            let w = Var::from_vec(rng.uniform_vec(hd * w_width, 0.5), (hd, w_width), &dev).unwrap();
            let (h0, c0) = (rng.uniform_vec(b * hd, 1.0), rng.uniform_vec(b * hd, 1.0));
            let fused = lstm_layer(gx.as_tensor(), w.as_tensor(), None, h0.clone(), c0.clone(), co.clone()).unwrap();
            let (h0, c0) = (Tensor::from_vec(h0, (b, hd), &dev).unwrap(), Tensor::from_vec(c0, (b, hd), &dev).unwrap());
            let plain = reference_layer(gx.as_tensor(), w.as_tensor(), &h0, &c0, &co, b);
            let parts = format!("{co:?}");
            let diff = max_diff(&fused, &plain);
            assert!(diff < 1e-5, "{parts}: {diff}");
            let r = Tensor::from_vec(rng.uniform_vec(t_len * b * 2 * hd, 1.0), (t_len * b, 2 * hd), &dev).unwrap();
            let g1 = (fused * &r).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = (plain * &r).unwrap().sum_all().unwrap().backward().unwrap();
            for v in [&gx, &w] {
                let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
                assert!(d < 1e-4, "{parts} parts: gradient differs by {d}");
            }
        }
    }

    /// With S sparse, the layer equals the one with S dense beside the structured part
    /// (checked above against plain candle ops), values and gradients, S's included.
    #[test]
    fn lstm_layer_with_a_sparse_s_matches_the_dense_one() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(5);
        use crate::rng::RandomVec;
        let (t_len, b, hd) = (4, 3, 5);
        let h4 = 4 * hd;
        let keep: Vec<f32> = rng.dropout_mask(h4 * hd, 0.7).iter().map(|&m| (m > 0.0) as u8 as f32).collect();
        let (e, at) = crate::sparse::Entries::from_mask(&keep, h4, hd, 0, hd);
        let mask = rng.dropout_mask(t_len * b * h4, 0.5);
        let gx = Var::from_vec(rng.uniform_vec(t_len * b * 2 * h4, 1.5), (t_len * b, 2 * h4), &dev).unwrap();
        let w = Var::from_vec(rng.uniform_vec(hd * h4, 0.5), (hd, h4), &dev).unwrap();
        let s = Var::from_vec(rng.uniform_vec(h4 * hd, 0.5), h4 * hd, &dev).unwrap();
        let (h0, c0) = (rng.uniform_vec(b * hd, 1.0), rng.uniform_vec(b * hd, 1.0));
        let n = at.len();
        let values = s.as_tensor().index_select(&Tensor::from_vec(at, n, &dev).unwrap(), 0).unwrap();
        let co = CoMatrix::SparseMask(mask.clone(), std::sync::Arc::new(e));
        let sparse = lstm_layer(gx.as_tensor(), w.as_tensor(), Some(&values), h0.clone(), c0.clone(), co).unwrap();
        let s_dense = (s.as_tensor() * Tensor::from_vec(keep, h4 * hd, &dev).unwrap()).unwrap();
        let st = s_dense.reshape((h4, hd)).unwrap().t().unwrap();
        let w_both = Tensor::cat(&[w.as_tensor(), &st], 1).unwrap();
        let dense = lstm_layer(gx.as_tensor(), &w_both, None, h0, c0, CoMatrix::Mask(mask)).unwrap();
        assert!(max_diff(&sparse, &dense) < 1e-5);
        let r = Tensor::from_vec(rng.uniform_vec(t_len * b * 2 * hd, 1.0), (t_len * b, 2 * hd), &dev).unwrap();
        let g1 = (sparse * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (dense * &r).unwrap().sum_all().unwrap().backward().unwrap();
        for v in [&gx, &w, &s] {
            let d = max_diff(g1.get(v).unwrap(), g2.get(v).unwrap());
            assert!(d < 1e-4, "gradient differs by {d}");
        }
    }
}
