//! Kronecker products A⊗B, multiplied by the vec trick and never materialised.

use super::{Dense, MatVec, Storage};
use crate::kernels::Kernels;

/// `A (m1 × n1) ⊗ B (m2 × n2)`, a `(m1·m2) × (n1·n2)` matrix with
/// `W[i1·m2 + i2, j1·n2 + j2] = A[i1, j1]·B[i2, j2]`.
///
/// With `x` read row-major as `X (n1 × n2)`, `W·x = vec(A·X·Bᵀ)`. The two ways of
/// bracketing cost `m1·n2·(n1 + m2)` and `n1·m2·(n2 + m1)` multiply-adds; the cheaper
/// one is chosen when the matrix is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Kron {
    a: Dense,
    b: Dense,
    a_first: bool,
}

impl Kron {
    /// Pairs the factors.
    pub fn new(a: Dense, b: Dense) -> Result<Kron, String> {
        let (rows, cols) = (a.rows().checked_mul(b.rows()), a.cols().checked_mul(b.cols()));
        if rows.is_none() || cols.is_none() {
            return Err("Kronecker product size overflows".into());
        }
        let (m1, n1, m2, n2) = (a.rows(), a.cols(), b.rows(), b.cols());
        let a_first = m1 * n2 * (n1 + m2) <= n1 * m2 * (n2 + m1); // see plan::kron_macs
        Ok(Kron { a, b, a_first })
    }
    /// The left factor A.
    pub fn a(&self) -> &Dense {
        &self.a
    }
    /// The right factor B.
    pub fn b(&self) -> &Dense {
        &self.b
    }
    /// Whether `matvec` computes `A·X` first (else `X·Bᵀ`); for tests of both paths.
    pub(crate) fn a_first(&self) -> bool {
        self.a_first
    }
}

impl MatVec for Kron {
    fn rows(&self) -> usize {
        self.a.rows() * self.b.rows()
    }
    fn cols(&self) -> usize {
        self.a.cols() * self.b.cols()
    }
    fn scratch_len(&self) -> usize {
        if self.a_first {
            self.a.rows() * self.b.cols()
        } else {
            self.a.cols() * self.b.rows()
        }
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (m1, n1, m2, n2) = (self.a.rows(), self.a.cols(), self.b.rows(), self.b.cols());
        if m1 == 0 || m2 == 0 || n1 == 0 || n2 == 0 {
            return;
        }
        if self.a_first {
            // Z = A·X (m1 × n2), then each row of Y is B·Z[i1].
            let z = &mut scratch[..m1 * n2];
            z.fill(0.0);
            for (i1, zr) in z.chunks_exact_mut(n2).enumerate() {
                for (j1, xr) in x.chunks_exact(n2).enumerate() {
                    (k.axpy)(self.a.at(i1, j1), xr, zr);
                }
            }
            for (zr, yr) in z.chunks_exact(n2).zip(y.chunks_exact_mut(m2)) {
                (k.gemv)(self.b.data(), zr, yr);
            }
        } else {
            // T = X·Bᵀ (n1 × m2), then each row of Y is Σ_j1 A[i1, j1]·T[j1].
            let t = &mut scratch[..n1 * m2];
            t.fill(0.0);
            for (xr, tr) in x.chunks_exact(n2).zip(t.chunks_exact_mut(m2)) {
                (k.gemv)(self.b.data(), xr, tr);
            }
            for (i1, yr) in y.chunks_exact_mut(m2).enumerate() {
                for (&a, tr) in self.a.row_slice(i1).iter().zip(t.chunks_exact(m2)) {
                    (k.axpy)(a, tr, yr);
                }
            }
        }
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        let m2 = self.b.rows();
        let (ar, br) = (self.a.row_slice(r / m2), self.b.row_slice(r % m2));
        for (chunk, &a) in out.chunks_exact_mut(br.len().max(1)).zip(ar) {
            for (o, &b) in chunk.iter_mut().zip(br) {
                *o = a * b;
            }
        }
    }
    fn storage(&self) -> Storage {
        Storage { values: self.a.data().len() + self.b.data().len(), indices: 0 }
    }
    fn macs(&self) -> usize {
        crate::plan::kron_macs(self.a.rows(), self.a.cols(), self.b.rows(), self.b.cols())
    }
}
