//! Custom candle ops: the output projection fused with softmax cross-entropy, plain softmax
//! cross-entropy, and the LSTM cell.
//!
//! With a 10k vocabulary the output layer is most of a step. Done as candle ops it builds
//! and differentiates several `N × V` tensors (logits, logits + bias, their zero-initialised
//! gradient accumulators); [`projected_cross_entropy`] instead computes
//! `softmax(h·Wᵀ + b)` into one buffer in the forward pass and turns it into the three
//! gradients with two matmuls and a column sum in the backward pass.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

/// `e^x` to about 1e-7 relative error, in a form the compiler vectorises: `x = n·ln2 + r`,
/// `2^n` from the exponent bits, `e^r` by its degree-6 Taylor polynomial (`|r| ≤ ln2/2`).
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
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

/// Replaces a row of logits by its softmax; returns `ln Σ exp` of the row.
fn softmax_in_place(row: &mut [f32]) -> f32 {
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
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
    max + sum.ln()
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
}

/// `dst (m×n, row-major) (+)= lhs · rhs`.
fn matmul(dst: &mut [f32], accumulate: bool, lhs: View, rhs: View) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(rhs.rows == k && dst.len() == m * n, "matmul shapes");
    let last = |v: &View| if v.rows == 0 || v.cols == 0 { 0 } else { (v.rows - 1) * v.rs + (v.cols - 1) * v.cs };
    assert!((m == 0 || k == 0 || last(&lhs) < lhs.data.len()) && (k == 0 || n == 0 || last(&rhs) < rhs.data.len()), "matmul bounds");
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
            parallelism(),
        )
    }
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    match s {
        CpuStorage::F32(d) => Ok(&d[a..b]),
        _ => Err(candle_core::Error::Msg(format!("{what} must be f32"))),
    }
}

/// Mean negative log-likelihood of `targets` under `softmax(h·Wᵀ + b)`, for `h` (`N × H`),
/// `w` (`V × H`) and `b` (`V`), without an `N × V` tensor in the graph.
pub fn projected_cross_entropy(h: &Tensor, w: &Tensor, b: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
    let op = ProjectedCrossEntropy { targets: targets.to_vec(), probs: Mutex::new(None) };
    h.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, op)
}

struct ProjectedCrossEntropy {
    targets: Vec<u32>,
    /// The softmax of the forward pass, consumed by the backward pass.
    probs: Mutex<Option<Vec<f32>>>,
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
        if hd != hd2 || v != v2 || self.targets.len() != n || self.targets.iter().any(|&t| t as usize >= v) {
            return Err(candle_core::Error::Msg(format!("shapes h {n}×{hd}, w {v}×{hd2}, b {v2}, {} targets < {v} disagree", self.targets.len())));
        }
        let mut logits: Vec<f32> = b.repeat(n);
        matmul(&mut logits, true, View::new(h, n, hd), View::new(w, v, hd).t());
        let nll: f64 = logits
            .par_chunks_mut(v.max(1))
            .zip(self.targets.par_iter())
            .map(|(row, &t)| {
                let x = row[t as usize];
                (softmax_in_place(row) - x) as f64
            })
            .sum();
        *self.probs.lock().expect("not poisoned") = Some(logits);
        Ok((CpuStorage::F32(vec![(nll / n.max(1) as f64) as f32]), Shape::from(())))
    }

    fn bwd(&self, h: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let mut g = self.probs.lock().expect("not poisoned").take().ok_or_else(|| candle_core::Error::Msg("backward ran twice".into()))?;
        let ((n, hd), (v, _)) = (h.dims2()?, w.dims2()?);
        let k = grad.to_scalar::<f32>()? / n.max(1) as f32;
        g.par_chunks_mut(v.max(1)).zip(self.targets.par_iter()).for_each(|(row, &t)| {
            row.iter_mut().for_each(|p| *p *= k);
            row[t as usize] -= k;
        });
        let (hv, wv): (Vec<f32>, Vec<f32>) = (h.flatten_all()?.to_vec1()?, w.flatten_all()?.to_vec1()?);
        let mut dh = vec![0f32; n * hd];
        matmul(&mut dh, false, View::new(&g, n, v), View::new(&wv, v, hd));
        let mut dw = vec![0f32; v * hd];
        matmul(&mut dw, false, View::new(&g, n, v).t(), View::new(&hv, n, hd));
        let mut db = vec![0f32; v];
        for row in g.chunks_exact(v.max(1)) {
            db.iter_mut().zip(row).for_each(|(d, &x)| *d += x);
        }
        let dev = h.device();
        Ok((Some(Tensor::from_vec(dh, (n, hd), dev)?), Some(Tensor::from_vec(dw, (v, hd), dev)?), Some(Tensor::from_vec(db, v, dev)?)))
    }
}

/// One LSTM cell update from the gate pre-activations `g` (`B × 4H`, gates i, f, g, o) and
/// the previous cell state `c` (`B × H`): returns `[h' | c']` (`B × 2H`) with
/// `c' = σ(f)·c + σ(i)·tanh(g)` and `h' = σ(o)·tanh(c')`. One op instead of a dozen small
/// ones per time step, forward and backward.
pub fn lstm_cell(g: &Tensor, c: &Tensor) -> candle_core::Result<Tensor> {
    g.contiguous()?.apply_op2(&c.contiguous()?, LstmCell)
}

struct LstmCell;

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + fast_exp(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    2.0 * sigmoid1(2.0 * x) - 1.0
}

/// Activated gates of one row: (i, f, g, o) slices of length H.
fn activate(g: &[f32], hd: usize, out: &mut [f32]) {
    for (j, (o, &x)) in out.iter_mut().zip(g).enumerate() {
        *o = if j / hd == 2 { tanh1(x) } else { sigmoid1(x) };
    }
}

impl CustomOp2 for LstmCell {
    fn name(&self) -> &'static str {
        "lstm-cell"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, c) = (contiguous(s1, l1, "gates")?, contiguous(s2, l2, "cell state")?);
        let (&[b, h4], &[b2, hd]) = (l1.dims(), l2.dims()) else {
            return Err(candle_core::Error::Msg("need gates B×4H and cell state B×H".into()));
        };
        if b != b2 || h4 != 4 * hd {
            return Err(candle_core::Error::Msg(format!("gates {b}×{h4} do not match cell state {b2}×{hd}")));
        }
        let mut out = vec![0f32; b * 2 * hd];
        let mut a = vec![0f32; h4];
        for ((gr, cr), or) in g.chunks_exact(h4).zip(c.chunks_exact(hd)).zip(out.chunks_exact_mut(2 * hd)) {
            activate(gr, hd, &mut a);
            let (h_out, c_out) = or.split_at_mut(hd);
            for j in 0..hd {
                let c_new = a[hd + j] * cr[j] + a[j] * a[2 * hd + j];
                c_out[j] = c_new;
                h_out[j] = a[3 * hd + j] * tanh1(c_new);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, 2 * hd))))
    }

    fn bwd(&self, g: &Tensor, c: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (b, h4) = g.dims2()?;
        let hd = h4 / 4;
        let (gv, cv): (Vec<f32>, Vec<f32>) = (g.flatten_all()?.to_vec1()?, c.flatten_all()?.to_vec1()?);
        let (rv, dv): (Vec<f32>, Vec<f32>) = (res.flatten_all()?.to_vec1()?, grad.flatten_all()?.to_vec1()?);
        let (mut dg, mut dc) = (vec![0f32; b * h4], vec![0f32; b * hd]);
        let mut a = vec![0f32; h4];
        for r in 0..b {
            activate(&gv[r * h4..(r + 1) * h4], hd, &mut a);
            let (res_r, d_r) = (&rv[r * 2 * hd..(r + 1) * 2 * hd], &dv[r * 2 * hd..(r + 1) * 2 * hd]);
            let (dg_r, dc_r, c_r) = (&mut dg[r * h4..(r + 1) * h4], &mut dc[r * hd..(r + 1) * hd], &cv[r * hd..(r + 1) * hd]);
            for j in 0..hd {
                let (i, f, gg, o) = (a[j], a[hd + j], a[2 * hd + j], a[3 * hd + j]);
                let tc = tanh1(res_r[hd + j]);
                let (dh, dc_out) = (d_r[j], d_r[hd + j]);
                let dct = dc_out + dh * o * (1.0 - tc * tc);
                dg_r[j] = dct * gg * i * (1.0 - i);
                dg_r[hd + j] = dct * c_r[j] * f * (1.0 - f);
                dg_r[2 * hd + j] = dct * i * (1.0 - gg * gg);
                dg_r[3 * hd + j] = dh * tc * o * (1.0 - o);
                dc_r[j] = dct * f;
            }
        }
        let dev = g.device();
        Ok((Some(Tensor::from_vec(dg, (b, h4), dev)?), Some(Tensor::from_vec(dc, (b, hd), dev)?)))
    }
}

/// Mean negative log-likelihood of `targets` (u32, `N`) under `logits` (f32, `N × V`).
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    logits.apply_op2(targets, SoftmaxCrossEntropy)
}

struct SoftmaxCrossEntropy;

/// `d mean_nll / d logits = (softmax − onehot)·scale/N`.
struct SoftmaxCrossEntropyGrad {
    scale: f32,
}

fn rows<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<(&'a [f32], usize, usize)> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("logits must be contiguous".into()))?;
    let &[n, v] = l.dims() else {
        return Err(candle_core::Error::Msg(format!("logits must be N × V, got {:?}", l.dims())));
    };
    match s {
        CpuStorage::F32(d) => Ok((&d[start..end], n, v)),
        _ => Err(candle_core::Error::Msg("logits must be f32".into())),
    }
}

fn targets<'a>(s: &'a CpuStorage, l: &Layout, n: usize, v: usize) -> candle_core::Result<&'a [u32]> {
    let (start, end) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("targets must be contiguous".into()))?;
    let t = match s {
        CpuStorage::U32(d) => &d[start..end],
        _ => return Err(candle_core::Error::Msg("targets must be u32".into())),
    };
    if t.len() != n || t.iter().any(|&id| id as usize >= v) {
        return Err(candle_core::Error::Msg(format!("need {n} targets below {v}")));
    }
    Ok(t)
}

/// `(max, ln Σ exp(x − max))` of a row.
fn log_sum_exp(row: &[f32]) -> (f32, f32) {
    let max = row_max(row);
    let sum: f32 = row.iter().map(|&x| fast_exp(x - max)).sum();
    (max, sum.ln())
}

impl CustomOp2 for SoftmaxCrossEntropy {
    fn name(&self) -> &'static str {
        "softmax-cross-entropy"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, n, v) = rows(s1, l1)?;
        let t = targets(s2, l2, n, v)?;
        let nll: f64 = x
            .par_chunks(v)
            .zip(t.par_iter())
            .map(|(row, &id)| {
                let (max, lse) = log_sum_exp(row);
                (max + lse - row[id as usize]) as f64
            })
            .sum();
        Ok((CpuStorage::F32(vec![(nll / n.max(1) as f64) as f32]), Shape::from(())))
    }

    fn bwd(&self, logits: &Tensor, targets: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let scale = grad.to_scalar::<f32>()?;
        Ok((Some(logits.apply_op2_no_bwd(targets, &SoftmaxCrossEntropyGrad { scale })?), None))
    }
}

impl CustomOp2 for SoftmaxCrossEntropyGrad {
    fn name(&self) -> &'static str {
        "softmax-cross-entropy-grad"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, n, v) = rows(s1, l1)?;
        let t = targets(s2, l2, n, v)?;
        let k = self.scale / n.max(1) as f32;
        let mut out = vec![0f32; n * v];
        out.par_chunks_mut(v).zip(x.par_chunks(v)).zip(t.par_iter()).for_each(|((o, row), &id)| {
            let (max, lse) = log_sum_exp(row);
            let shift = max + lse;
            for (oi, &xi) in o.iter_mut().zip(row) {
                *oi = fast_exp(xi - shift) * k;
            }
            o[id as usize] -= k;
        });
        Ok((CpuStorage::F32(out), Shape::from((n, v))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_unfused_softmax_and_its_gradient() {
        let dev = Device::Cpu;
        let data: Vec<f32> = (0..3 * 5).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.3).collect();
        let x = Var::from_vec(data, (3, 5), &dev).unwrap();
        let t = Tensor::new(&[4u32, 0, 2], &dev).unwrap();
        let fused = cross_entropy(x.as_tensor(), &t).unwrap();
        // Unfused reference: −mean(log_softmax(x)[t]).
        let lse = x.as_tensor().exp().unwrap().sum_keepdim(1).unwrap().log().unwrap();
        let log_p = x.as_tensor().broadcast_sub(&lse).unwrap();
        let picked = log_p.gather(&t.unsqueeze(1).unwrap(), 1).unwrap();
        let reference = picked.mean_all().unwrap().neg().unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let g1 = (fused * 3.0).unwrap().backward().unwrap();
        let g2 = (reference * 3.0).unwrap().backward().unwrap();
        let (g1, g2) = (g1.get(&x).unwrap(), g2.get(&x).unwrap());
        let diff = (g1 - g2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
        assert!(cross_entropy(x.as_tensor(), &Tensor::new(&[9u32, 0, 2], &dev).unwrap()).is_err());
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
        let (n, hd, v) = (5, 4, 7);
        let h = Var::from_vec(rng.uniform_vec(n * hd, 1.0), (n, hd), &dev).unwrap();
        let w = Var::from_vec(rng.uniform_vec(v * hd, 1.0), (v, hd), &dev).unwrap();
        let b = Var::from_vec(rng.uniform_vec(v, 1.0), v, &dev).unwrap();
        let targets = [0u32, 6, 3, 3, 1];
        let fused = projected_cross_entropy(h.as_tensor(), w.as_tensor(), b.as_tensor(), &targets).unwrap();
        let logits = h.as_tensor().matmul(&w.as_tensor().t().unwrap()).unwrap().broadcast_add(b.as_tensor()).unwrap();
        let plain = cross_entropy(&logits, &Tensor::new(&targets, &dev).unwrap()).unwrap();
        assert!((fused.to_scalar::<f32>().unwrap() - plain.to_scalar::<f32>().unwrap()).abs() < 1e-5);
        let (g1, g2) = ((fused * 2.0).unwrap().backward().unwrap(), (plain * 2.0).unwrap().backward().unwrap());
        for var in [&h, &w, &b] {
            let d = (g1.get(var).unwrap() - g2.get(var).unwrap()).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
        }
    }

    #[test]
    fn lstm_cell_matches_its_definition_and_gradient() {
        let dev = Device::Cpu;
        let mut rng = crate::rng::Rng::new(4);
        let (b, hd) = (3, 5);
        let g = Var::from_vec(rng.uniform_vec(b * 4 * hd, 2.0), (b, 4 * hd), &dev).unwrap();
        let c = Var::from_vec(rng.uniform_vec(b * hd, 1.0), (b, hd), &dev).unwrap();
        let w = Tensor::from_vec(rng.uniform_vec(b * 2 * hd, 1.0), (b, 2 * hd), &dev).unwrap();
        let fused = lstm_cell(g.as_tensor(), c.as_tensor()).unwrap();
        let gt = g.as_tensor();
        let sig = |t: Tensor| (t.neg().unwrap().exp().unwrap() + 1.0).unwrap().recip().unwrap();
        let (i, f) = (sig(gt.narrow(1, 0, hd).unwrap()), sig(gt.narrow(1, hd, hd).unwrap()));
        let (gg, o) = (gt.narrow(1, 2 * hd, hd).unwrap().tanh().unwrap(), sig(gt.narrow(1, 3 * hd, hd).unwrap()));
        let c2 = ((f * c.as_tensor()).unwrap() + (i * gg).unwrap()).unwrap();
        let h2 = (o * c2.tanh().unwrap()).unwrap();
        let plain = Tensor::cat(&[&h2, &c2], 1).unwrap();
        let diff = (&fused - &plain).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "{diff}");
        let (g1, g2) = ((fused * &w).unwrap().sum_all().unwrap().backward().unwrap(), (plain * &w).unwrap().sum_all().unwrap().backward().unwrap());
        for v in [&g, &c] {
            let d = (g1.get(v).unwrap() - g2.get(v).unwrap()).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-5, "{d}");
        }
    }
}
