//! S once it is sparse: where its entries are, and its products with a window of rows.
//!
//! Co-matrix dropout per element needs S·x apart from the structured part's product. While
//! S is dense that is one more dense product; after the anneal S holds a few percent of
//! its entries, and a product over the entries alone costs that fraction. The products
//! run on transposed operands (`n` contiguous numbers per input column and per output
//! row), so each entry is one vector `axpy` or dot of length `n` — the window's rows
//! (`T·B`) for the input half, the batch for one time step of the recurrence.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::storage::contiguous;

/// The entries of S (`rows × width`, row-major 0/1 mask) in columns `from..from + cols`,
/// by row: entry `k` of row `i` (`row_ptr[i]..row_ptr[i + 1]`) lies in column
/// `from + col[k]` and its value is the `k`-th of the value vector the products take.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries {
    /// Rows of S.
    pub rows: usize,
    /// Columns taken.
    pub cols: usize,
    row_ptr: Vec<usize>,
    col: Vec<u32>,
}

impl Entries {
    /// The entries of `mask` in columns `from..from + cols`, and each one's index in the
    /// flattened mask (to gather the values from S's parameter).
    pub fn from_mask(mask: &[f32], rows: usize, width: usize, from: usize, cols: usize) -> (Entries, Vec<u32>) {
        let (mut row_ptr, mut col, mut flat) = (vec![0], vec![], vec![]);
        for r in 0..rows {
            for c in 0..cols {
                let at = r * width + from + c;
                if mask[at] != 0.0 {
                    col.push(c as u32);
                    flat.push(at as u32);
                }
            }
            row_ptr.push(col.len());
        }
        (Entries { rows, cols, row_ptr, col }, flat)
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.col.len()
    }

    /// `yᵀ += S·xᵀ`: `xt` holds `cols` rows of `n`, `yt` `rows` rows of `n`.
    pub fn forward_t(&self, v: &[f32], xt: &[f32], n: usize, yt: &mut [f32]) {
        for (i, y) in yt.chunks_exact_mut(n).enumerate() {
            for k in self.row_ptr[i]..self.row_ptr[i + 1] {
                let (x, s) = (&xt[self.col[k] as usize * n..][..n], v[k]);
                y.iter_mut().zip(x).for_each(|(y, &x)| *y += s * x);
            }
        }
    }

    /// `dxᵀ += Sᵀ·dyᵀ`: `dyt` holds `rows` rows of `n`, `dxt` `cols` rows of `n`.
    pub fn backward_t(&self, v: &[f32], dyt: &[f32], n: usize, dxt: &mut [f32]) {
        for (i, dy) in dyt.chunks_exact(n).enumerate() {
            for k in self.row_ptr[i]..self.row_ptr[i + 1] {
                let (dx, s) = (&mut dxt[self.col[k] as usize * n..][..n], v[k]);
                dx.iter_mut().zip(dy).for_each(|(dx, &dy)| *dx += s * dy);
            }
        }
    }

    /// Each entry's gradient, `dyᵀ[i] · xᵀ[col]`.
    pub fn value_grads(&self, dyt: &[f32], xt: &[f32], n: usize) -> Vec<f32> {
        let mut dv = vec![0f32; self.nnz()];
        for (i, dy) in dyt.chunks_exact(n).enumerate() {
            for k in self.row_ptr[i]..self.row_ptr[i + 1] {
                let x = &xt[self.col[k] as usize * n..][..n];
                dv[k] = dot(dy, x);
            }
        }
        dv
    }
}

/// A dot product in eight independent lanes, so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `a` (`rows × cols`, row-major) transposed.
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; a.len()];
    for (r, row) in a.chunks_exact(cols).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            t[c * rows + r] = x;
        }
    }
    t
}

/// `x · Sᵀ` for the rows of `x` (`n × cols`) and the entries `e` with values `values`
/// (`nnz`): `n × rows`, with gradients for `x` and the values.
pub fn spmm(x: &Tensor, values: &Tensor, e: Arc<Entries>) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&values.contiguous()?, SpMM(e))
}

struct SpMM(Arc<Entries>);

impl CustomOp2 for SpMM {
    fn name(&self) -> &'static str {
        "sparse-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let e = &self.0;
        let (x, v) = (contiguous(s1, l1, "x")?, contiguous(s2, l2, "values")?);
        let (&[n, cols], &[nnz]) = (l1.dims(), l2.dims()) else {
            return Err(candle_core::Error::Msg("need x: n × cols and values: nnz".into()));
        };
        if cols != e.cols || nnz != e.nnz() {
            return Err(candle_core::Error::Msg(format!(
                "x has {cols} columns and {nnz} values, the entries {} columns and {} values",
                e.cols,
                e.nnz()
            )));
        }
        let mut yt = vec![0f32; e.rows * n];
        e.forward_t(v, &transpose(x, n, cols), n, &mut yt);
        Ok((CpuStorage::F32(transpose(&yt, e.rows, n)), Shape::from((n, e.rows))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        values: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let e = &self.0;
        let (n, cols) = x.dims2()?;
        let dyt = transpose(&grad.contiguous()?.flatten_all()?.to_vec1::<f32>()?, n, e.rows);
        let xt = transpose(&x.flatten_all()?.to_vec1::<f32>()?, n, cols);
        let v = values.to_vec1::<f32>()?;
        let mut dxt = vec![0f32; cols * n];
        e.backward_t(&v, &dyt, n, &mut dxt);
        let dv = e.value_grads(&dyt, &xt, n);
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(transpose(&dxt, cols, n), (n, cols), dev)?),
            Some(Tensor::from_vec(dv, e.nnz(), dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;
    use crate::rng::{RandomVec, Rng};

    /// `spmm` equals the dense product with the masked matrix, values and gradients.
    #[test]
    fn spmm_is_the_masked_dense_product() {
        let (dev, mut rng) = (Device::Cpu, Rng::new(3));
        let (rows, width, from, cols, n) = (7, 9, 3, 5, 4);
        let mask = rng.dropout_mask(rows * width, 0.6).iter().map(|&m| (m > 0.0) as u8 as f32).collect::<Vec<_>>();
        let s = rng.uniform_vec(rows * width, 1.0);
        let (e, flat) = Entries::from_mask(&mask, rows, width, from, cols);
        assert!(e.nnz() > 0 && e.nnz() < rows * cols, "{} entries", e.nnz());
        let x = Var::from_vec(rng.uniform_vec(n * cols, 1.0), (n, cols), &dev).unwrap();
        let sv = Var::from_vec(s.clone(), rows * width, &dev).unwrap();
        let idx = Tensor::from_vec(flat, e.nnz(), &dev).unwrap();
        let y = spmm(x.as_tensor(), &sv.as_tensor().index_select(&idx, 0).unwrap(), Arc::new(e)).unwrap();
        let masked = (sv.as_tensor() * Tensor::from_vec(mask, rows * width, &dev).unwrap()).unwrap();
        let sm = masked.reshape((rows, width)).unwrap().narrow(1, from, cols).unwrap();
        let want = x.as_tensor().matmul(&sm.t().unwrap()).unwrap();
        let r = Tensor::from_vec(rng.uniform_vec(n * rows, 1.0), (n, rows), &dev).unwrap();
        let (g1, g2) = ((&y * &r).unwrap().sum_all().unwrap(), (&want * &r).unwrap().sum_all().unwrap());
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
        };
        assert!(diff(&y, &want) < 1e-5);
        let (g1, g2) = (g1.backward().unwrap(), g2.backward().unwrap());
        for v in [&x, &sv] {
            assert!(diff(g1.get(v).unwrap(), g2.get(v).unwrap()) < 1e-5);
        }
    }
}
