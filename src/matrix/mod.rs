//! Weight kinds behind one matrix–vector trait: dense (f32 or int8), Kronecker, low-rank, HMD, sparse, doped; int8 and int4 storage.

mod csr;
mod dense;
mod hmd;
mod int4;
mod int8;
mod kind;
mod kron;
mod low_rank;
mod weight;

pub use csr::Csr;
pub use dense::Dense;
pub use hmd::Hmd;
pub use int4::{dequantise4, pack4, quantise4, scales4, unpack4, Q4_MAX};
pub use int8::{absmaxes, dense_bounds, dequantise, fits_f16, quantise, DenseI8, Quantised, Q_MAX};
pub use kind::{UnknownKind, WeightKind};
pub use kron::Kron;
pub use low_rank::LowRank;
pub use weight::{ValueType, Weight};

use crate::kernels::Kernels;

/// `x`, or 0 where `x` is subnormal: how every stored weight is read (docs/format.md).
/// Below f32's smallest normal number (1.2e-38) a weight adds nothing that a product can
/// show, while x86 cores take a slow microcode assist for every multiplication that meets
/// one, and so do the browsers' wasm engines on them (a low-rank LSTM with 30 % of its
/// factors' values subnormal ran 27x slower).
pub(crate) fn normal_or_zero(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0
    } else {
        x
    }
}

/// What every weight kind can do.
pub trait MatVec {
    /// Output length.
    fn rows(&self) -> usize;
    /// Input length.
    fn cols(&self) -> usize;
    /// Length of the scratch buffer [`MatVec::matvec`] needs.
    fn scratch_len(&self) -> usize {
        0
    }
    /// `y += W·x`. `x.len() == cols`, `y.len() == rows`, `scratch.len() >= scratch_len()`.
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]);
    /// [`MatVec::matvec`] on several vectors: `x` holds inputs of length `cols` back to
    /// back, `y` as many outputs of length `rows`. Each output is bit for bit what
    /// `matvec` gives for its input alone; kinds that can read their weights once for
    /// the whole batch override this loop.
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        let (rows, cols) = (self.rows(), self.cols());
        if rows == 0 || cols == 0 {
            return; // W·x is empty or zero, whatever the batch
        }
        for (xt, yt) in x.chunks_exact(cols).zip(y.chunks_exact_mut(rows)) {
            self.matvec(k, xt, yt, scratch);
        }
    }
    /// Writes row `r` of W into `out` (length `cols`) without materialising W.
    fn row(&self, r: usize, out: &mut [f32]);
    /// Stored numbers: values and integer indices.
    fn storage(&self) -> Storage;
    /// Multiply-adds per matrix–vector product.
    fn macs(&self) -> usize;
    /// Bytes its weights occupy in memory (the resident size, beside the file's).
    fn memory(&self) -> usize;
}

/// How many numbers a matrix stores, for compression accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Storage {
    /// Stored weight values.
    pub values: usize,
    /// Stored integer indices (CSR column indices and row pointers).
    pub indices: usize,
}

impl std::ops::Add for Storage {
    type Output = Storage;
    fn add(self, o: Storage) -> Storage {
        Storage { values: self.values + o.values, indices: self.indices + o.indices }
    }
}

/// A weight matrix of any supported kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    /// Plain row-major dense matrix.
    Dense(Dense),
    /// A dense matrix held in int8 (kind `dense`, stored `I8`).
    DenseI8(DenseI8),
    /// Kronecker product A⊗B.
    Kron(Kron),
    /// Low-rank product U·V.
    LowRank(LowRank),
    /// Hybrid matrix decomposition `[D; U·V]`.
    Hmd(Hmd),
    /// Sparse CSR matrix (the magnitude-pruning baseline).
    Sparse(Csr),
    /// A structured matrix plus a sparse "doping" co-matrix S of the same shape.
    Doped(Doped),
}

/// The matrix a constructor built from parts the caller has already checked. Not
/// `expect`, which would print the error through `Debug`: string escaping and Unicode's
/// printable tables in the WebAssembly module (docs/benchmarks.md).
pub(crate) fn checked<T>(built: Result<T, String>) -> T {
    built.unwrap_or_else(|e| panic!("{e}"))
}

/// `base + S`: a Kronecker, low-rank or HMD matrix doped with a sparse co-matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Doped {
    base: Box<Matrix>,
    s: Csr,
}

impl Doped {
    /// Dopes `base` (Kronecker, low-rank or HMD) with `s`, which must have its shape.
    pub fn new(base: Matrix, s: Csr) -> Result<Doped, String> {
        if !matches!(base, Matrix::Kron(_) | Matrix::LowRank(_) | Matrix::Hmd(_)) {
            return Err(format!("only kp, lowrank and hmd matrices can be doped, not {}", base.kind()));
        }
        if (base.rows(), base.cols()) != (s.rows(), s.cols()) {
            return Err(format!(
                "co-matrix is {}x{} but the matrix it dopes is {}x{}",
                s.rows(),
                s.cols(),
                base.rows(),
                base.cols()
            ));
        }
        Ok(Doped { base: Box::new(base), s })
    }
    /// The structured part.
    pub fn base(&self) -> &Matrix {
        &self.base
    }
    /// The sparse co-matrix.
    pub fn s(&self) -> &Csr {
        &self.s
    }
}

impl Matrix {
    /// The matrix's kind.
    pub fn kind(&self) -> WeightKind {
        match self {
            Matrix::Dense(_) | Matrix::DenseI8(_) => WeightKind::Dense,
            Matrix::Kron(_) => WeightKind::Kp,
            Matrix::LowRank(_) => WeightKind::LowRank,
            Matrix::Hmd(_) => WeightKind::Hmd,
            Matrix::Sparse(_) => WeightKind::Sparse,
            Matrix::Doped(d) => match *d.base {
                Matrix::LowRank(_) => WeightKind::DLowRank,
                Matrix::Hmd(_) => WeightKind::DHmd,
                _ => WeightKind::Dkp,
            },
        }
    }

    /// Materialises W row by row; for tests, decomposition and small matrices only.
    pub fn to_dense(&self) -> Dense {
        let (rows, cols) = (self.rows(), self.cols());
        let mut data = vec![0.0; rows * cols];
        for (r, out) in data.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
            self.row(r, out);
        }
        checked(Dense::new(rows, cols, data))
    }

    fn inner(&self) -> &dyn MatVec {
        match self {
            Matrix::Dense(m) => m,
            Matrix::DenseI8(m) => m,
            Matrix::Kron(m) => m,
            Matrix::LowRank(m) => m,
            Matrix::Hmd(m) => m,
            Matrix::Sparse(m) => m,
            Matrix::Doped(m) => m,
        }
    }
}

impl MatVec for Matrix {
    fn rows(&self) -> usize {
        self.inner().rows()
    }
    fn cols(&self) -> usize {
        self.inner().cols()
    }
    fn scratch_len(&self) -> usize {
        self.inner().scratch_len()
    }
    #[inline]
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        self.inner().matvec(k, x, y, scratch)
    }
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        self.inner().matmat(k, x, y, scratch)
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        self.inner().row(r, out)
    }
    fn storage(&self) -> Storage {
        self.inner().storage()
    }
    fn macs(&self) -> usize {
        self.inner().macs()
    }
    fn memory(&self) -> usize {
        self.inner().memory()
    }
}

impl MatVec for Doped {
    fn rows(&self) -> usize {
        self.s.rows()
    }
    fn cols(&self) -> usize {
        self.s.cols()
    }
    fn scratch_len(&self) -> usize {
        self.base.scratch_len().max(self.s.scratch_len())
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        self.base.matvec(k, x, y, scratch);
        self.s.matvec(k, x, y, scratch);
    }
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], scratch: &mut [f32]) {
        self.base.matmat(k, x, y, scratch);
        self.s.matmat(k, x, y, scratch);
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        self.base.row(r, out);
        self.s.add_row(r, out);
    }
    fn storage(&self) -> Storage {
        self.base.storage() + self.s.storage()
    }
    fn macs(&self) -> usize {
        self.base.macs() + self.s.macs()
    }
    fn memory(&self) -> usize {
        self.base.memory() + self.s.memory()
    }
}

#[cfg(test)]
mod tests;
