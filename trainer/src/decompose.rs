//! Post-training decomposition of one trained dense weight into a doped Kronecker product.
//!
//! The nearest Kronecker product (Van Loan–Pitsianis rearrangement, leading singular pair
//! by power iteration), with the largest residual entries kept as the co-matrix S; the
//! pipeline around it (which weights, fine-tuning, export) is [`crate::compress`].

use candle_core::{Device, Tensor, Var};
use dkp_lstm::plan::{self, Accounting, Plan};

use crate::config::WeightKind;
use crate::error::{Error, Result};
use crate::weights::{Base, Masked, WeightParam};

/// The `A (m1×n1)`, `B (m2×n2)` minimising `‖W − A⊗B‖_F` for a row-major `W`.
///
/// Rearranging W so that row `i1·n1 + j1` of R holds block `(i1, j1)` of W (row-major,
/// `m2·n2` values) turns the problem into the best rank-1 approximation of R.
pub fn nearest_kron(w: &[f32], cols: usize, a: [usize; 2], b: [usize; 2]) -> (Vec<f32>, Vec<f32>) {
    let ([m1, n1], [m2, n2]) = (a, b);
    let (p, q) = (m1 * n1, m2 * n2);
    let mut r = vec![0f64; p * q];
    for i1 in 0..m1 {
        for j1 in 0..n1 {
            let row = &mut r[(i1 * n1 + j1) * q..][..q];
            for i2 in 0..m2 {
                for j2 in 0..n2 {
                    row[i2 * n2 + j2] = w[(i1 * m2 + i2) * cols + j1 * n2 + j2] as f64;
                }
            }
        }
    }
    // Power iteration on RᵀR from a deterministic start that no singular vector is orthogonal to in practice.
    let mut v: Vec<f64> = (0..q).map(|j| 1.0 + 0.01 * ((j * 7919) % 101) as f64).collect();
    let mut u = vec![0f64; p];
    let mut sigma = 0.0;
    for _ in 0..1000 {
        for (i, ui) in u.iter_mut().enumerate() {
            *ui = r[i * q..][..q].iter().zip(&v).map(|(x, y)| x * y).sum();
        }
        let nu = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        if nu == 0.0 {
            break;
        }
        u.iter_mut().for_each(|x| *x /= nu);
        let mut nv = vec![0f64; q];
        for (i, &ui) in u.iter().enumerate() {
            for (acc, x) in nv.iter_mut().zip(&r[i * q..][..q]) {
                *acc += ui * x;
            }
        }
        let s = nv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if s == 0.0 {
            break;
        }
        let converged = (s - sigma).abs() <= 1e-12 * s;
        sigma = s;
        v = nv.into_iter().map(|x| x / s).collect();
        if converged {
            break;
        }
    }
    let k = sigma.sqrt();
    (u.iter().map(|x| (x * k) as f32).collect(), v.iter().map(|x| (x * k) as f32).collect())
}

/// A doped Kronecker weight approximating the dense `w` at compression `cf`: nearest A⊗B,
/// and the largest residual entries as S with a frozen mask.
pub fn dkp_from_dense(w: &WeightParam, cf: f64, acc: Accounting, dev: &Device) -> Result<WeightParam> {
    let Plan::Dkp { a, b, nnz } = plan::plan(WeightKind::Dkp, w.rows, w.cols, cf, acc)? else {
        unreachable!("dkp plans are dkp")
    };
    let dense: Vec<f32> = w.materialise()?.flatten_all()?.to_vec1()?;
    let (av, bv) = nearest_kron(&dense, w.cols, a, b);
    let at = Tensor::from_vec(av, (a[0], a[1]), dev)?;
    let bt = Tensor::from_vec(bv, (b[0], b[1]), dev)?;
    let kron = crate::ops::kron(&at, &bt)?;
    let residual: Vec<f32> = (Tensor::from_vec(dense, (w.rows, w.cols), dev)? - kron)?.flatten_all()?.to_vec1()?;
    let mut order: Vec<usize> = (0..residual.len()).collect();
    let k = nnz.min(residual.len());
    if k < residual.len() {
        order.select_nth_unstable_by(k, |&i, &j| residual[j].abs().total_cmp(&residual[i].abs()).then(i.cmp(&j)));
    }
    let mut mask = vec![0f32; residual.len()];
    for &i in &order[..k] {
        mask[i] = 1.0;
    }
    let s: Vec<f32> = residual.iter().zip(&mask).map(|(r, m)| r * m).collect();
    Ok(WeightParam {
        name: w.name.clone(),
        kind: WeightKind::Dkp,
        rows: w.rows,
        cols: w.cols,
        base: Some(Base::Kron { a: Var::from_tensor(&at)?, b: Var::from_tensor(&bt)? }),
        masked: Some(Masked {
            var: Var::from_vec(s, (w.rows, w.cols), dev)?,
            mask: Tensor::from_vec(mask, (w.rows, w.cols), dev)?,
            target_nnz: nnz,
        }),
    })
}

/// Rejects anything but a dense weight, naming it.
pub fn require_dense(w: &WeightParam, path: &std::path::Path) -> Result<()> {
    if w.kind != WeightKind::Dense {
        return Err(Error::Model { path: path.into(), reason: format!("weight `{}` is not dense", w.name) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{RandomVec, Rng};

    #[test]
    fn recovers_an_exact_kronecker_product() {
        let mut rng = Rng::new(5);
        let (a, b) = (rng.uniform_vec(3 * 4, 1.0), rng.uniform_vec(2 * 5, 1.0));
        let (rows, cols) = (6, 20);
        let mut w = vec![0f32; rows * cols];
        for i1 in 0..3 {
            for j1 in 0..4 {
                for i2 in 0..2 {
                    for j2 in 0..5 {
                        w[(i1 * 2 + i2) * cols + j1 * 5 + j2] = a[i1 * 4 + j1] * b[i2 * 5 + j2];
                    }
                }
            }
        }
        let (ea, eb) = nearest_kron(&w, cols, [3, 4], [2, 5]);
        for i1 in 0..3 {
            for j1 in 0..4 {
                for i2 in 0..2 {
                    for j2 in 0..5 {
                        let got = ea[i1 * 4 + j1] * eb[i2 * 5 + j2];
                        assert!((got - w[(i1 * 2 + i2) * cols + j1 * 5 + j2]).abs() < 1e-5);
                    }
                }
            }
        }
    }

    #[test]
    fn residual_is_no_larger_than_the_dense_norm() {
        let dev = Device::Cpu;
        let w = WeightParam::new("w", WeightKind::Dense, 16, 12, 1.0, Accounting::Values, 0.1, &mut Rng::new(2), &dev)
            .unwrap();
        let d = dkp_from_dense(&w, 4.0, Accounting::Values, &dev).unwrap();
        let diff = (w.materialise().unwrap() - d.materialise().unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let norm = w.materialise().unwrap().sqr().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 0.5 * norm, "{diff} vs {norm}");
        assert_eq!(d.nnz().unwrap(), d.masked.as_ref().unwrap().target_nnz);
    }
}
