//! Custom candle ops: fused softmax cross-entropy and the logistic sigmoid.
//!
//! The loss makes one pass per row forward and one backward, with no `N × V` probability
//! tensor kept between them; with a 10k vocabulary it and the output matmul are most of a step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Element-wise `1 / (1 + e^(−x))` with its gradient `σ(1 − σ)`.
pub fn sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Sigmoid)
}

struct Sigmoid;

impl CustomOp1 for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(d) = s else { return Err(candle_core::Error::Msg("sigmoid needs f32".into())) };
        let (a, b) = l.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("sigmoid input must be contiguous".into()))?;
        let out: Vec<f32> = d[a..b].iter().map(|&x| 1.0 / (1.0 + (-x).exp())).collect();
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.mul(&(res * (1.0 - res)?)?)?))
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
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
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
                *oi = (xi - shift).exp() * k;
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
    fn sigmoid_and_its_gradient() {
        let x = Var::new(&[-3f32, 0.0, 2.0], &Device::Cpu).unwrap();
        let y = sigmoid(x.as_tensor()).unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        let (y, g) = (y.to_vec1::<f32>().unwrap(), g.get(&x).unwrap().to_vec1::<f32>().unwrap());
        for (i, xv) in [-3f32, 0.0, 2.0].into_iter().enumerate() {
            let s = 1.0 / (1.0 + (-xv).exp());
            assert!((y[i] - s).abs() < 1e-6 && (g[i] - s * (1.0 - s)).abs() < 1e-6);
        }
    }
}
