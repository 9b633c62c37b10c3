//! Kronecker products A⊗B, multiplied by the vec trick and never materialised.

use super::{Dense, MatVec, Storage};
use crate::kernels::Kernels;

/// `A (m1 × n1) ⊗ B (m2 × n2)`, a `(m1·m2) × (n1·n2)` matrix with
/// `W[i1·m2 + i2, j1·n2 + j2] = A[i1, j1]·B[i2, j2]`.
///
/// With `x` read row-major as `X (n1 × n2)`, `W·x = vec(A·X·Bᵀ)`. The two ways of
/// bracketing cost `m1·n2·(n1 + m2)` and `n1·m2·(n2 + m1)` multiply-adds; the cheaper
/// one is chosen when the matrix is built. Either is computed as row-wise `gemv`s, with
/// a transposed copy of the small intermediate in the scratch buffer — except products
/// with B when B has fewer than [`NARROW`] columns (an output layer's `B` is 250×5):
/// a dot product of five is all tail, so those are sums of B's columns instead (`axpy`s
/// over a transposed copy of B, kept with the matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Kron {
    a: Dense,
    b: Dense,
    /// Bᵀ, row-major, when B is narrow.
    bt: Option<Vec<f32>>,
    a_first: bool,
    scratch: usize,
}

/// Below this many columns a factor is multiplied column by column (see [`Kron`]).
const NARROW: usize = 8;

impl Kron {
    /// Pairs the factors. Sizes are checked in `usize`, which is 32 bits in WebAssembly:
    /// the product's shape and the scratch it needs must be addressable there too.
    pub fn new(a: Dense, b: Dense) -> Result<Kron, String> {
        let (m1, n1, m2, n2) = (a.rows(), a.cols(), b.rows(), b.cols());
        if m1.checked_mul(m2).is_none() || n1.checked_mul(n2).is_none() {
            return Err("Kronecker product size overflows".into());
        }
        // The costs of plan::kron_macs, in u128 so that no shape can overflow them.
        let w = |x: usize| x as u128;
        let a_first = w(m1) * w(n2) * (w(n1) + w(m2)) <= w(n1) * w(m2) * (w(n2) + w(m1));
        let scratch = if a_first {
            m1.checked_mul(n2).and_then(|z| z.checked_add(n1 * n2))
        } else {
            n1.checked_mul(m2).and_then(|t| t.checked_mul(2))
        };
        let scratch =
            scratch.ok_or_else(|| format!("{m1}x{n1} ⊗ {m2}x{n2} needs more scratch than this platform addresses"))?;
        let bt = (n2 < NARROW).then(|| {
            let mut bt = vec![0.0; m2 * n2];
            transpose(b.data(), m2, n2, &mut bt);
            bt
        });
        Ok(Kron { a, b, bt, a_first, scratch })
    }
    /// The left factor A.
    pub fn a(&self) -> &Dense {
        &self.a
    }
    /// The right factor B.
    pub fn b(&self) -> &Dense {
        &self.b
    }
    /// `out_j += B·v_j` for the `batch` vectors `v` holds back to back: one `gemm`, or,
    /// when B is narrow, sums of its columns.
    fn b_times(&self, k: &Kernels, v: &[f32], out: &mut [f32], batch: usize) {
        match &self.bt {
            Some(bt) => {
                let m2 = self.b.rows();
                for (vr, or) in v.chunks_exact(self.b.cols()).zip(out.chunks_exact_mut(m2)).take(batch) {
                    for (&vj, col) in vr.iter().zip(bt.chunks_exact(m2)) {
                        (k.axpy)(vj, col, or);
                    }
                }
            }
            None => (k.gemm)(self.b.data(), v, out, batch),
        }
    }
    /// Whether `matvec` computes `A·X` first (else `X·Bᵀ`); for tests of both paths.
    #[cfg(test)]
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
        self.scratch
    }
    // Each bracketing is two matrix products over small transposed copies, never `axpy`
    // per element of A: the rows of one factor are the batch of a `gemm` whose matrix is
    // the (transposed) intermediate or the other factor — bit for bit the `gemv` per row
    // it replaces, in one call (at 2600×1300 that is 2 calls instead of ~100 `gemv`s,
    // and ~2 500 `axpy`s before those).
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (m1, n1, m2, n2) = (self.a.rows(), self.a.cols(), self.b.rows(), self.b.cols());
        if m1 == 0 || m2 == 0 || n1 == 0 || n2 == 0 {
            return;
        }
        if self.a_first {
            // Z = A·X (m1 × n2): row i1 of Z is Xᵀ·A[i1]; then row i1 of Y is B·Z[i1].
            let (xt, z) = scratch[..n2 * n1 + m1 * n2].split_at_mut(n2 * n1);
            transpose(x, n1, n2, xt);
            z.fill(0.0);
            (k.gemm)(xt, self.a.data(), z, m1);
            self.b_times(k, z, y, m1);
        } else {
            // T = X·Bᵀ (n1 × m2): row j1 of T is B·X[j1]; then row i1 of Y is Tᵀ·A[i1].
            let (t, tt) = scratch[..2 * n1 * m2].split_at_mut(n1 * m2);
            t.fill(0.0);
            self.b_times(k, x, t, n1);
            transpose(t, n1, m2, tt);
            (k.gemm)(tt, self.a.data(), y, m1);
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
    fn memory(&self) -> usize {
        self.a.memory() + self.b.memory() + 4 * self.bt.as_ref().map_or(0, Vec::len)
    }
    fn macs(&self) -> usize {
        crate::plan::kron_macs(self.a.rows(), self.a.cols(), self.b.rows(), self.b.cols())
    }
}

/// Writes the transpose of the row-major `rows × cols` matrix `m` into `out` (`cols × rows`).
fn transpose(m: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for (r, row) in m.chunks_exact(cols).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
}
