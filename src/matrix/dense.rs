//! Row-major dense matrices.

use super::{MatVec, Storage};
use crate::kernels::Kernels;

/// A row-major `rows × cols` matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Dense {
    /// Wraps row-major `data`, which must hold `rows·cols` values.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Dense, String> {
        match rows.checked_mul(cols) {
            Some(n) if n == data.len() => Ok(Dense { rows, cols, data }),
            _ => Err(format!("{} values cannot fill a {rows}x{cols} matrix", data.len())),
        }
    }
    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Row `r`.
    pub fn row_slice(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
    /// Element `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }
}

impl MatVec for Dense {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        (k.gemv)(&self.data, x, y);
    }
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        (k.gemm)(&self.data, x, y, x.len() / self.cols);
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        out.copy_from_slice(self.row_slice(r));
    }
    fn storage(&self) -> Storage {
        Storage { values: self.data.len(), indices: 0 }
    }
    fn memory(&self) -> usize {
        4 * self.data.len()
    }
    fn macs(&self) -> usize {
        self.rows * self.cols
    }
}
