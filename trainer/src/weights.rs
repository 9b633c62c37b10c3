//! Trainable weight matrices of every kind, as `W = base + S⊙M`.
//!
//! The base is dense, Kronecker A⊗B, low-rank U·V or HMD `[D; U·V]` (or absent, for magnitude pruning)
//! and S⊙M is the mask-annealed sparse part. Shapes and budgets come from
//! `dkp_lstm::plan` only.

use candle_core::{Device, Tensor, Var};
use dkp_lstm::format::names;
use dkp_lstm::matrix::{Csr, Dense, Doped, Hmd, Kron, LowRank, Matrix};
use dkp_lstm::plan::{self, Accounting, Plan};
use dkp_lstm::MatVec;

use crate::config::WeightKind;
use crate::error::{Error, Result};
use crate::rng::{RandomVec, Rng};

/// The structured part of a weight.
#[derive(Debug, Clone)]
pub enum Base {
    /// A dense matrix.
    Dense(Var),
    /// `A ⊗ B` in the runtime's convention `W[i1·m2+i2, j1·n2+j2] = A[i1,j1]·B[i2,j2]`.
    Kron {
        /// Left factor, `m1 × n1`.
        a: Var,
        /// Right factor, `m2 × n2`.
        b: Var,
    },
    /// `U · V`.
    LowRank {
        /// `rows × rank`.
        u: Var,
        /// `rank × cols`.
        v: Var,
    },
    /// `[D; U · V]`: the first rows dense, the rest low rank.
    Hmd {
        /// `dense_rows × cols`.
        d: Var,
        /// `(rows − dense_rows) × rank`.
        u: Var,
        /// `rank × cols`.
        v: Var,
    },
}

/// A sparse part: values, the 0/1 mask that selects the kept entries, and the number of
/// entries the compression budget allows once annealing ends.
#[derive(Debug, Clone)]
pub struct Masked {
    /// Values (entries outside the mask are kept at zero).
    pub var: Var,
    /// 0/1, same shape.
    pub mask: Tensor,
    /// Non-zeros at the target density.
    pub target_nnz: usize,
}

/// One trainable weight matrix.
#[derive(Debug, Clone)]
pub struct WeightParam {
    /// Tensor-name prefix, e.g. `layers.0.w` (the runtime's names).
    pub name: String,
    /// Its parameterisation.
    pub kind: WeightKind,
    /// Rows of W.
    pub rows: usize,
    /// Columns of W.
    pub cols: usize,
    /// Structured part (none for pruned weights).
    pub base: Option<Base>,
    /// Sparse part (doped and pruned weights).
    pub masked: Option<Masked>,
}

fn uniform(rng: &mut Rng, shape: (usize, usize), r: f32, dev: &Device) -> Result<Var> {
    Ok(Var::from_vec(rng.uniform_vec(shape.0 * shape.1, r), shape, dev)?)
}

fn dense_of(name: &str, t: &Tensor) -> Result<Dense> {
    let (r, c) = t.dims2()?;
    Dense::new(r, c, t.flatten_all()?.to_vec1()?).map_err(|reason| Error::Export { name: name.into(), reason })
}

impl WeightParam {
    /// A freshly initialised `rows × cols` weight of `kind` compressed by `cf`. Entries of
    /// dense parts are uniform in ±`init`; factors are scaled so their product has the same
    /// spread.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        kind: WeightKind,
        rows: usize,
        cols: usize,
        cf: f64,
        acc: Accounting,
        init: f32,
        rng: &mut Rng,
        dev: &Device,
    ) -> Result<WeightParam> {
        let cf = if kind == WeightKind::Dense { 1.0 } else { cf };
        let plan = plan::plan(kind, rows, cols, cf, acc)?;
        let sigma = init / 3f32.sqrt();
        let kron = |rng: &mut Rng, a: [usize; 2], b: [usize; 2]| -> Result<Base> {
            let r = (3.0 * sigma).sqrt();
            Ok(Base::Kron { a: uniform(rng, (a[0], a[1]), r, dev)?, b: uniform(rng, (b[0], b[1]), r, dev)? })
        };
        // U (`rows × rank`) and V, scaled so that U·V has the spread of a dense part.
        let factors = |rng: &mut Rng, rows: usize, rank: usize| -> Result<(Var, Var)> {
            let r = 3f32.sqrt() * (sigma / (rank as f32).sqrt()).sqrt();
            Ok((uniform(rng, (rows, rank), r, dev)?, uniform(rng, (rank, cols), r, dev)?))
        };
        let low_rank = |rng: &mut Rng, rank: usize| -> Result<Base> {
            let (u, v) = factors(rng, rows, rank)?;
            Ok(Base::LowRank { u, v })
        };
        let hmd = |rng: &mut Rng, dense_rows: usize, rank: usize| -> Result<Base> {
            let d = uniform(rng, (dense_rows, cols), init, dev)?;
            let (u, v) = factors(rng, rows - dense_rows, rank)?;
            Ok(Base::Hmd { d, u, v })
        };
        let masked = |rng: &mut Rng, nnz: usize| -> Result<Masked> {
            Ok(Masked {
                var: uniform(rng, (rows, cols), init, dev)?,
                mask: Tensor::ones((rows, cols), candle_core::DType::F32, dev)?,
                target_nnz: nnz,
            })
        };
        let (base, masked) = match plan {
            Plan::Dense => (Some(Base::Dense(uniform(rng, (rows, cols), init, dev)?)), None),
            Plan::Kp { a, b } => (Some(kron(rng, a, b)?), None),
            Plan::Dkp { a, b, nnz } => (Some(kron(rng, a, b)?), Some(masked(rng, nnz)?)),
            Plan::LowRank { rank } => (Some(low_rank(rng, rank)?), None),
            Plan::DLowRank { rank, nnz } => (Some(low_rank(rng, rank)?), Some(masked(rng, nnz)?)),
            Plan::Hmd { dense_rows, rank } => (Some(hmd(rng, dense_rows, rank)?), None),
            Plan::DHmd { dense_rows, rank, nnz } => (Some(hmd(rng, dense_rows, rank)?), Some(masked(rng, nnz)?)),
            Plan::Sparse { nnz } => (None, Some(masked(rng, nnz)?)),
        };
        Ok(WeightParam { name: name.into(), kind, rows, cols, base, masked })
    }

    /// A dense weight holding `m`'s values (any runtime kind is materialised).
    pub fn dense_from(name: &str, m: &Matrix, dev: &Device) -> Result<WeightParam> {
        let d = m.to_dense();
        let (rows, cols) = (d.rows(), d.cols());
        Ok(WeightParam {
            name: name.into(),
            kind: WeightKind::Dense,
            rows,
            cols,
            base: Some(Base::Dense(Var::from_vec(d.data().to_vec(), (rows, cols), dev)?)),
            masked: None,
        })
    }

    /// A copy that shares no storage with `self` (for keeping the best model).
    pub fn deep_copy(&self) -> Result<WeightParam> {
        let copy = |v: &Var| -> Result<Var> { Ok(Var::from_tensor(&v.as_tensor().copy()?)?) };
        let base = match &self.base {
            Some(Base::Dense(w)) => Some(Base::Dense(copy(w)?)),
            Some(Base::Kron { a, b }) => Some(Base::Kron { a: copy(a)?, b: copy(b)? }),
            Some(Base::LowRank { u, v }) => Some(Base::LowRank { u: copy(u)?, v: copy(v)? }),
            Some(Base::Hmd { d, u, v }) => Some(Base::Hmd { d: copy(d)?, u: copy(u)?, v: copy(v)? }),
            None => None,
        };
        let masked = match &self.masked {
            Some(m) => Some(Masked { var: copy(&m.var)?, mask: m.mask.copy()?, target_nnz: m.target_nnz }),
            None => None,
        };
        Ok(WeightParam { base, masked, ..self.clone() })
    }

    /// Every trainable tensor with its full name (`prefix.a`, `prefix.s.values`, …).
    pub fn vars(&self) -> Vec<(String, Var)> {
        let n = |s: &str| names::join(&self.name, s);
        let mut v = vec![];
        match &self.base {
            Some(Base::Dense(w)) => v.push((n(names::DENSE), w.clone())),
            Some(Base::Kron { a, b }) => v.extend([(n(names::KRON_A), a.clone()), (n(names::KRON_B), b.clone())]),
            Some(Base::LowRank { u, v: vv }) => {
                v.extend([(n(names::LOW_RANK_U), u.clone()), (n(names::LOW_RANK_V), vv.clone())])
            }
            Some(Base::Hmd { d, u, v: vv }) => v.extend([
                (n(names::HMD_DENSE), d.clone()),
                (n(names::LOW_RANK_U), u.clone()),
                (n(names::LOW_RANK_V), vv.clone()),
            ]),
            None => {}
        }
        if let Some(m) = &self.masked {
            let name = self.co_matrix_name().unwrap_or_else(|| n(names::DENSE));
            v.push((name, m.var.clone()));
        }
        v
    }

    /// The full name of S (`prefix.s`) if this is a doped weight: a structured part and
    /// a sparse one.
    pub fn co_matrix_name(&self) -> Option<String> {
        (self.base.is_some() && self.masked.is_some()).then(|| names::join(&self.name, "s"))
    }

    /// `S ⊙ M`, if the weight has a sparse part.
    pub fn sparse(&self) -> Result<Option<Tensor>> {
        Ok(match &self.masked {
            Some(m) => Some(m.var.as_tensor().mul(&m.mask)?),
            None => None,
        })
    }

    /// The structured part as one dense tensor, if the weight has one.
    pub fn materialise_base(&self) -> Result<Option<Tensor>> {
        Ok(match &self.base {
            Some(Base::Dense(w)) => Some(w.as_tensor().clone()),
            Some(Base::Kron { a, b }) => Some(crate::ops::kron(a, b)?),
            Some(Base::LowRank { u, v }) => Some(u.matmul(v)?),
            Some(Base::Hmd { d, u, v }) => Some(Tensor::cat(&[d.as_tensor(), &u.matmul(v)?], 0)?),
            None => None,
        })
    }

    /// W as one dense tensor (done once per BPTT window).
    pub fn materialise(&self) -> Result<Tensor> {
        Ok(match (self.materialise_base()?, self.sparse()?) {
            (Some(b), Some(s)) => (b + s)?,
            (Some(b), None) => b,
            (None, Some(s)) => s,
            (None, None) => unreachable!("a weight has a base or a sparse part"),
        })
    }

    /// `x · baseᵀ` for `x` of shape `N × cols`, without materialising a Kronecker base
    /// (the vec trick, with the cheaper bracketing).
    pub fn apply_base(&self, x: &Tensor) -> Result<Option<Tensor>> {
        let n = x.dim(0)?;
        Ok(match &self.base {
            None => None,
            Some(Base::Dense(w)) => Some(x.matmul(&w.t()?)?),
            Some(Base::LowRank { u, v }) => Some(x.matmul(&v.t()?)?.matmul(&u.t()?)?),
            // The dense rows' outputs first, then the low-rank rows'.
            Some(Base::Hmd { d, u, v }) => {
                Some(Tensor::cat(&[&x.matmul(&d.t()?)?, &x.matmul(&v.t()?)?.matmul(&u.t()?)?], 1)?)
            }
            Some(Base::Kron { a, b }) => {
                let ((m1, n1), (m2, n2)) = (a.dims2()?, b.dims2()?);
                let xr = x.reshape((n, n1, n2))?;
                let y = if plan::kron_macs(m1, n1, m2, n2) == m1 * n2 * (n1 + m2) {
                    // Z = A·X (m1 × n2 per row), then Y = Z·Bᵀ.
                    let xt = xr.transpose(1, 2)?.contiguous()?.reshape((n * n2, n1))?;
                    let z = xt.matmul(&a.t()?)?.reshape((n, n2, m1))?.transpose(1, 2)?.contiguous()?;
                    z.reshape((n * m1, n2))?.matmul(&b.t()?)?
                } else {
                    // T = X·Bᵀ (n1 × m2 per row), then Y = A·T.
                    let t = xr.reshape((n * n1, n2))?.matmul(&b.t()?)?.reshape((n, n1, m2))?;
                    let t = t.transpose(1, 2)?.contiguous()?.reshape((n * m2, n1))?;
                    t.matmul(&a.t()?)?.reshape((n, m2, m1))?.transpose(1, 2)?.contiguous()?
                };
                Some(y.reshape((n, m1 * m2))?)
            }
        })
    }

    /// `x · (S⊙M)ᵀ`.
    pub fn apply_sparse(&self, x: &Tensor) -> Result<Option<Tensor>> {
        Ok(match self.sparse()? {
            Some(s) => Some(x.matmul(&s.t()?)?),
            None => None,
        })
    }

    /// Whether co-matrix dropout applies: a structured base plus a co-matrix.
    pub fn is_doped(&self) -> bool {
        self.base.is_some() && self.masked.is_some()
    }

    /// Stored non-zeros of the sparse part now.
    pub fn nnz(&self) -> Result<usize> {
        Ok(match &self.masked {
            Some(m) => m.mask.sum_all()?.to_scalar::<f32>()? as usize,
            None => 0,
        })
    }

    /// Recomputes the mask to keep the `density·rows·cols` (at least the target number of)
    /// largest-magnitude entries of `S⊙M`, and zeroes the rest of S. Returns the new mask.
    pub fn update_mask(&mut self, density: f64) -> Result<Option<Tensor>> {
        self.update_mask_in_runs(density, 1)
    }

    /// [`update_mask`](Self::update_mask) with the entries kept in aligned runs of `run`
    /// columns of a row (columns `run·j .. run·j + run`), chosen by their L1 norm: a kernel
    /// could read a run's inputs with one vector load instead of a gather per entry
    /// (docs/benchmarks.md, *Doping in runs of four*).
    /// Keeps as many runs as hold the entries `update_mask` would keep, rounded up.
    pub fn update_mask_in_runs(&mut self, density: f64, run: usize) -> Result<Option<Tensor>> {
        let (rows, cols) = (self.rows, self.cols);
        let Some(m) = self.masked.as_mut() else {
            return Ok(None);
        };
        if run == 0 || !cols.is_multiple_of(run) {
            let reason = format!("runs of {run} columns do not tile its {cols} columns");
            return Err(Error::Config { field: format!("doping.run (weight `{}`)", self.name), reason });
        }
        let total = rows * cols;
        let k = ((density * total as f64).round() as usize).clamp(m.target_nnz.min(total), total);
        let s: Vec<f32> = m.var.as_tensor().mul(&m.mask)?.flatten_all()?.to_vec1()?;
        // A run's score: the sum of its entries' magnitudes (one entry when `run` is 1).
        let score: Vec<f32> = s.chunks_exact(run).map(|r| r.iter().map(|v| v.abs()).sum()).collect();
        // k ≤ rows·cols, so keep ≤ n.
        let (n, keep) = (score.len(), k.div_ceil(run));
        let mut order: Vec<u32> = (0..n as u32).collect();
        if keep < n {
            // Largest first; the index breaks ties so the mask is deterministic.
            order
                .select_nth_unstable_by(keep, |&i, &j| score[j as usize].total_cmp(&score[i as usize]).then(i.cmp(&j)));
        }
        let mut mask = vec![0f32; total];
        for &i in &order[..keep] {
            mask[i as usize * run..][..run].fill(1.0);
        }
        let kept: Vec<f32> = s.iter().zip(&mask).map(|(v, k)| v * k).collect();
        let dev = m.var.device().clone();
        m.var.set(&Tensor::from_vec(kept, (rows, cols), &dev)?)?;
        m.mask = Tensor::from_vec(mask, (rows, cols), &dev)?;
        Ok(Some(m.mask.clone()))
    }

    /// Mean L2 norms of `base·x` and `(S⊙M)·x` over the rows of `x` (diagnostics, no gradient).
    pub fn path_norms(&self, x: &Tensor) -> Result<Option<(f32, f32)>> {
        if !self.is_doped() {
            return Ok(None);
        }
        let x = x.detach();
        let norm = |t: Option<Tensor>| -> Result<f32> {
            let t = t.expect("doped weights have both parts").detach();
            Ok(t.sqr()?.sum(1)?.sqrt()?.mean_all()?.to_scalar::<f32>()?)
        };
        Ok(Some((norm(self.apply_base(&x)?)?, norm(self.apply_sparse(&x)?)?)))
    }

    /// The weight as a runtime matrix.
    pub fn to_matrix(&self) -> Result<Matrix> {
        let err = |reason: String| Error::Export { name: self.name.clone(), reason };
        let dense = |v: &Var| dense_of(&self.name, v.as_tensor());
        let base = match &self.base {
            Some(Base::Dense(w)) => Some(Matrix::Dense(dense(w)?)),
            Some(Base::Kron { a, b }) => Some(Matrix::Kron(Kron::new(dense(a)?, dense(b)?).map_err(err)?)),
            Some(Base::LowRank { u, v }) => Some(Matrix::LowRank(LowRank::new(dense(u)?, dense(v)?).map_err(err)?)),
            Some(Base::Hmd { d, u, v }) => {
                let low = LowRank::new(dense(u)?, dense(v)?).map_err(err)?;
                Some(Matrix::Hmd(Hmd::new(dense(d)?, low).map_err(err)?))
            }
            None => None,
        };
        let Some(m) = &self.masked else {
            return Ok(base.expect("a weight has a base or a sparse part"));
        };
        let mask: Vec<f32> = m.mask.flatten_all()?.to_vec1()?;
        let cols = self.cols;
        let s = Csr::from_dense_where(&dense_of(&self.name, &m.var.as_tensor().mul(&m.mask)?)?, |r, c, _| {
            mask[r * cols + c] > 0.5
        });
        Ok(match base {
            Some(b) => Matrix::Doped(Doped::new(b, s).map_err(err)?),
            None => Matrix::Sparse(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dkp_lstm::Kernels;

    #[test]
    fn materialised_base_and_export_agree_with_the_runtime() {
        let dev = Device::Cpu;
        for kind in WeightKind::ALL {
            let mut w =
                WeightParam::new("w", kind, 12, 10, 2.0, Accounting::Values, 0.1, &mut Rng::new(3), &dev).unwrap();
            w.update_mask(0.4).unwrap();
            let x = Tensor::from_vec(Rng::new(4).uniform_vec(2 * 10, 1.0), (2, 10), &dev).unwrap();
            let full = x.matmul(&w.materialise().unwrap().t().unwrap()).unwrap();
            let split = match (w.apply_base(&x).unwrap(), w.apply_sparse(&x).unwrap()) {
                (Some(b), Some(s)) => (b + s).unwrap(),
                (Some(b), None) => b,
                (None, Some(s)) => s,
                _ => unreachable!(),
            };
            let m = w.to_matrix().unwrap();
            assert_eq!(m.kind(), kind, "{kind:?}");
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let (full, split): (Vec<f32>, Vec<f32>) =
                (full.flatten_all().unwrap().to_vec1().unwrap(), split.flatten_all().unwrap().to_vec1().unwrap());
            for r in 0..2 {
                let mut y = vec![0.0; 12];
                let mut scratch = vec![0.0; m.scratch_len()];
                m.matvec(&Kernels::scalar(), &xs[r * 10..(r + 1) * 10], &mut y, &mut scratch);
                for i in 0..12 {
                    assert!((y[i] - full[r * 12 + i]).abs() < 1e-5, "{kind:?} runtime vs materialised");
                    assert!((split[r * 12 + i] - full[r * 12 + i]).abs() < 1e-5, "{kind:?} vec trick vs materialised");
                }
            }
        }
    }

    /// A 16×16 DKP weight at 4x, S dense (mask all ones).
    fn doped_16x16() -> WeightParam {
        WeightParam::new("w", WeightKind::Dkp, 16, 16, 4.0, Accounting::Values, 0.1, &mut Rng::new(1), &Device::Cpu)
            .unwrap()
    }

    #[test]
    fn mask_in_runs_keeps_whole_aligned_runs_by_their_norm() {
        let (dev, mut w) = (Device::Cpu, doped_16x16());
        w.masked.as_mut().unwrap().target_nnz = 4;
        // One run of four middling entries outweighs a single large entry in the next run.
        let mut s = vec![0.01f32; 256];
        s[4..8].fill(0.3);
        s[9] = 1.0;
        w.masked.as_mut().unwrap().var.set(&Tensor::from_vec(s.clone(), (16, 16), &dev).unwrap()).unwrap();
        w.update_mask_in_runs(4.0 / 256.0, 4).unwrap();
        let m = w.masked.as_ref().unwrap();
        let mask: Vec<f32> = m.mask.flatten_all().unwrap().to_vec1().unwrap();
        let runs: Vec<usize> = (0..64).filter(|&r| mask[r * 4] > 0.0).collect();
        assert!(mask.chunks_exact(4).all(|r| r.iter().all(|&k| k == r[0])), "runs kept whole");
        assert_eq!(runs, [1], "the run of 0.3s, not the one with the 1.0");
        // Kept values are untouched, dropped ones zeroed.
        let v: Vec<f32> = m.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().zip(&s).zip(&mask).all(|((v, s), &k)| *v == if k > 0.0 { *s } else { 0.0 }));
        let err = w.update_mask_in_runs(0.5, 5).unwrap_err().to_string();
        assert!(err.contains("runs of 5 columns") && err.contains("`w`"), "{err}");
    }

    #[test]
    fn mask_keeps_the_largest_entries_down_to_the_budget() {
        let mut w = doped_16x16();
        let target = w.masked.as_ref().unwrap().target_nnz;
        w.update_mask(0.5).unwrap();
        assert_eq!(w.nnz().unwrap(), 128);
        w.update_mask(0.0).unwrap();
        assert_eq!(w.nnz().unwrap(), target);
        let m = w.masked.as_ref().unwrap();
        let s: Vec<f32> = m.var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let mask: Vec<f32> = m.mask.flatten_all().unwrap().to_vec1().unwrap();
        let min_kept = s.iter().zip(&mask).filter(|(_, &k)| k > 0.0).map(|(v, _)| v.abs()).fold(f32::MAX, f32::min);
        assert!(s.iter().zip(&mask).all(|(v, &k)| k > 0.0 || *v == 0.0));
        assert!(min_kept > 0.0);
    }
}
