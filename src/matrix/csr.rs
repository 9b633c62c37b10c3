//! Compressed sparse row matrices: the pruning baseline and the doping co-matrix.

use super::{Dense, MatVec, Storage};
use crate::kernels::{Kernels, Sell};

/// A `rows × cols` CSR matrix. Invariants (checked by [`Csr::new`]): `row_ptr` has
/// `rows + 1` non-decreasing entries from 0 to `nnz`; column indices are `< cols` and
/// strictly increasing within each row.
///
/// CSR is the file's layout and the one rows are read from; products go through a copy
/// in the kernels' SELL-8 layout ([`Sell`]), built with the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    rows: usize,
    cols: usize,
    row_ptr: Vec<u32>,
    col_idx: Vec<u32>,
    values: Vec<f32>,
    // Boxed: the layout is built once and read per product, and it would make every
    // weight kind as large as a sparse one.
    sell: Box<Sell>,
}

impl Csr {
    /// Validates and wraps the three CSR arrays.
    pub fn new(
        rows: usize,
        cols: usize,
        row_ptr: Vec<u32>,
        col_idx: Vec<u32>,
        values: Vec<f32>,
    ) -> Result<Csr, String> {
        if row_ptr.len() != rows + 1 {
            return Err(format!("row_ptr has {} entries, expected {}", row_ptr.len(), rows + 1));
        }
        if col_idx.len() != values.len() {
            return Err(format!("{} column indices but {} values", col_idx.len(), values.len()));
        }
        if row_ptr[0] != 0 {
            return Err(format!("row_ptr[0] is {}, expected 0", row_ptr[0]));
        }
        if row_ptr[rows] as usize != values.len() {
            return Err(format!("row_ptr[{rows}] is {} but there are {} values", row_ptr[rows], values.len()));
        }
        // All of row_ptr first: with it monotone and ending at nnz, every row's range
        // lies inside `col_idx`, so the slicing below cannot go out of bounds.
        if let Some(r) = (0..rows).find(|&r| row_ptr[r + 1] < row_ptr[r]) {
            return Err(format!("row_ptr is not monotone at row {r} ({} > {})", row_ptr[r], row_ptr[r + 1]));
        }
        for r in 0..rows {
            let (s, e) = (row_ptr[r], row_ptr[r + 1]);
            let row = &col_idx[s as usize..e as usize];
            for (i, &c) in row.iter().enumerate() {
                if c as usize >= cols {
                    return Err(format!("column index {c} at row {r} is out of range (cols = {cols})"));
                }
                if i > 0 && row[i - 1] >= c {
                    return Err(format!("column indices of row {r} are not strictly increasing"));
                }
            }
        }
        let sell = Box::new(Sell::from_csr(rows, &row_ptr, &col_idx, &values));
        Ok(Csr { rows, cols, row_ptr, col_idx, values, sell })
    }

    /// Keeps the entries of a dense matrix for which `keep(r, c, v)` holds.
    pub fn from_dense_where(m: &Dense, mut keep: impl FnMut(usize, usize, f32) -> bool) -> Csr {
        let (mut row_ptr, mut col_idx, mut values) = (vec![0u32], vec![], vec![]);
        for r in 0..m.rows() {
            for (c, &v) in m.row_slice(r).iter().enumerate() {
                if keep(r, c, v) {
                    col_idx.push(c as u32);
                    values.push(v);
                }
            }
            row_ptr.push(values.len() as u32);
        }
        let sell = Box::new(Sell::from_csr(m.rows(), &row_ptr, &col_idx, &values));
        Csr { rows: m.rows(), cols: m.cols(), row_ptr, col_idx, values, sell }
    }

    /// Stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }
    /// Row pointers (`rows + 1`).
    pub fn row_ptr(&self) -> &[u32] {
        &self.row_ptr
    }
    /// Column index of each stored value.
    pub fn col_idx(&self) -> &[u32] {
        &self.col_idx
    }
    /// Stored values.
    pub fn values(&self) -> &[f32] {
        &self.values
    }
    /// The layout the sparse kernel reads.
    pub fn sell(&self) -> &Sell {
        &self.sell
    }
    /// `out += row r`.
    pub fn add_row(&self, r: usize, out: &mut [f32]) {
        let (s, e) = (self.row_ptr[r] as usize, self.row_ptr[r + 1] as usize);
        for (&c, &v) in self.col_idx[s..e].iter().zip(&self.values[s..e]) {
            out[c as usize] += v;
        }
    }
}

impl MatVec for Csr {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    /// Room for four inputs interleaved ([`MatVec::matmat`]), up to the last column
    /// that holds entries.
    fn scratch_len(&self) -> usize {
        4 * self.sell.col_bound()
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        (k.sell)(&self.sell, x, y);
    }
    // Four vectors at a time through `sell4`, which reads an entry's column of all four
    // with one load where one vector takes a lane load per entry (SIMD128 has no gather;
    // docs/benchmarks.md has what it buys); each output is bit for bit `matvec`'s.
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (rows, cols) = (self.rows, self.cols);
        if rows == 0 || cols == 0 {
            return;
        }
        let x4 = &mut scratch[..4 * self.sell.col_bound()];
        let (mut xs, mut ys) = (x.chunks_exact(4 * cols), y.chunks_exact_mut(4 * rows));
        for (xb, yb) in (&mut xs).zip(&mut ys) {
            for (c, quad) in x4.chunks_exact_mut(4).enumerate() {
                for (t, v) in quad.iter_mut().enumerate() {
                    *v = xb[t * cols + c];
                }
            }
            (k.sell4)(&self.sell, x4, yb);
        }
        for (xt, yt) in xs.remainder().chunks_exact(cols).zip(ys.into_remainder().chunks_exact_mut(rows)) {
            (k.sell)(&self.sell, xt, yt);
        }
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        out.fill(0.0);
        self.add_row(r, out);
    }
    fn storage(&self) -> Storage {
        Storage { values: self.nnz(), indices: self.nnz() + self.rows + 1 }
    }
    fn macs(&self) -> usize {
        self.nnz()
    }
    fn memory(&self) -> usize {
        4 * (self.row_ptr.len() + self.col_idx.len() + self.values.len()) + self.sell.memory()
    }
}
