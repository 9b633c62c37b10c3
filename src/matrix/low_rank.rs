//! Low-rank matrices W = U·V, applied as U·(V·x).

use super::{Dense, MatVec, Storage};
use crate::kernels::Kernels;

/// `U (rows × r) · V (r × cols)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRank {
    u: Dense,
    v: Dense,
}

impl LowRank {
    /// Pairs the factors; U's column count must equal V's row count.
    pub fn new(u: Dense, v: Dense) -> Result<LowRank, String> {
        if u.cols() != v.rows() {
            return Err(format!("U has rank {} but V has {} rows", u.cols(), v.rows()));
        }
        Ok(LowRank { u, v })
    }
    /// The left factor.
    pub fn u(&self) -> &Dense {
        &self.u
    }
    /// The right factor.
    pub fn v(&self) -> &Dense {
        &self.v
    }
    /// The rank r.
    pub fn rank(&self) -> usize {
        self.v.rows()
    }
}

impl MatVec for LowRank {
    fn rows(&self) -> usize {
        self.u.rows()
    }
    fn cols(&self) -> usize {
        self.v.cols()
    }
    fn scratch_len(&self) -> usize {
        self.rank()
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let t = &mut scratch[..self.rank()];
        t.fill(0.0);
        (k.gemv)(self.v.data(), x, t);
        (k.gemv)(self.u.data(), t, y);
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        out.fill(0.0);
        for (j, &ur) in self.u.row_slice(r).iter().enumerate() {
            crate::kernels::scalar::axpy(ur, self.v.row_slice(j), out);
        }
    }
    fn storage(&self) -> Storage {
        Storage { values: self.u.data().len() + self.v.data().len(), indices: 0 }
    }
    fn memory(&self) -> usize {
        self.u.memory() + self.v.memory()
    }
    fn macs(&self) -> usize {
        self.rank() * (self.rows() + self.cols())
    }
}
