//! Hybrid matrix decomposition (HMD): the first rows of W dense, the remaining rows low rank.

use super::{Dense, LowRank, MatVec, Storage};
use crate::kernels::Kernels;

/// `W = [D; U·V]` (Thakker et al. 2019, arXiv 1906.04886): rows `0..dense_rows` are the
/// dense block D (`dense_rows × cols`), rows `dense_rows..rows` the low-rank block
/// U·V (`(rows − dense_rows) × cols`). The two blocks are a [`Dense`] and a [`LowRank`]
/// matrix, so each part's product is exactly that kind's, kernels included.
#[derive(Debug, Clone, PartialEq)]
pub struct Hmd {
    d: Dense,
    low: LowRank,
}

impl Hmd {
    /// Stacks the dense block above the low-rank block; both must have the same columns.
    pub fn new(d: Dense, low: LowRank) -> Result<Hmd, String> {
        if d.cols() != low.cols() {
            return Err(format!("the dense block has {} columns but the low-rank block {}", d.cols(), low.cols()));
        }
        if d.rows().checked_add(low.rows()).is_none() {
            return Err("HMD size overflows".into());
        }
        Ok(Hmd { d, low })
    }
    /// The dense block D (the first rows).
    pub fn dense(&self) -> &Dense {
        &self.d
    }
    /// The low-rank block U·V (the remaining rows).
    pub fn low_rank(&self) -> &LowRank {
        &self.low
    }
    /// Rows of the dense block.
    pub fn dense_rows(&self) -> usize {
        self.d.rows()
    }
    /// Rank of the low-rank block.
    pub fn rank(&self) -> usize {
        self.low.rank()
    }
}

impl MatVec for Hmd {
    fn rows(&self) -> usize {
        self.d.rows() + self.low.rows()
    }
    fn cols(&self) -> usize {
        self.d.cols()
    }
    fn scratch_len(&self) -> usize {
        self.low.scratch_len()
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (top, bottom) = y.split_at_mut(self.d.rows());
        self.d.matvec(k, x, top, scratch);
        self.low.matvec(k, x, bottom, scratch);
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        match r.checked_sub(self.d.rows()) {
            None => self.d.row(r, out),
            Some(r) => self.low.row(r, out),
        }
    }
    fn storage(&self) -> Storage {
        self.d.storage() + self.low.storage()
    }
    fn memory(&self) -> usize {
        self.d.memory() + self.low.memory()
    }
    fn macs(&self) -> usize {
        self.d.macs() + self.low.macs()
    }
}
