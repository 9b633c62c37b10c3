//! Symmetric int8 storage (one absmax per row, value = absmax · q / 127) and the dense matrix that computes on it.
//!
//! The file format's `I8` dtype (`docs/format.md`). A row's values are stored as
//! integers `q` in `−127..=127` and the row's largest magnitude `absmax`; the value is
//! `absmax · (q / 127)`, with `q / 127` rounded to f32 first so that `q = ±127` gives
//! `±absmax` exactly. That makes quantisation idempotent: requantising dequantised
//! values finds the same absmax (it is one of the values) and the same integers, so a
//! model read from an `I8` file writes the same file again.

use super::{normal_or_zero, Dense, MatVec, Storage};
pub use crate::kernels::Q_MAX;
use crate::kernels::{Kernels, Q8};

/// A value's fraction of its row's absmax: `q / 127`, rounded to f32.
#[inline]
pub fn level(q: i8) -> f32 {
    q as f32 / Q_MAX as f32
}

/// Quantised rows: `q` holds every value, row `r` being `q[bounds[r]..bounds[r + 1]]`
/// (a dense matrix's rows, or a sparse part's rows of stored values).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantised {
    /// The integers, `−127..=127`.
    pub q: Vec<i8>,
    /// Each row's scale, the magnitude of its top level (≥ 0, finite): for int8 the row's
    /// largest magnitude, for int4 the one [`crate::matrix::quantise4`] chose.
    pub scale: Vec<f32>,
}

/// Whether every value is exactly an f16, so that a file stores them in 2 bytes each
/// without loss (absmaxes: [`quantise`] makes them so wherever it can; biases:
/// `Model::store_as`).
pub fn fits_f16(values: &[f32]) -> bool {
    values.iter().all(|&m| half::f16::from_f32(m).to_f32() == m)
}

/// Whether `m` (≥ 0) is 0 or a normal f16: then rounding it to f16 keeps the 11 bits
/// that matter next to 7-bit integers, and the absmax costs 2 bytes per row.
pub(super) fn f16_normal(m: f32) -> bool {
    m == 0.0 || (half::f16::MIN_POSITIVE.to_f32()..=half::f16::MAX.to_f32()).contains(&m)
}

/// Quantises `values` row by row (`bounds` as in [`Quantised`], from 0 to
/// `values.len()`), on the row scales of [`absmaxes`].
pub fn quantise(values: &[f32], bounds: &[usize]) -> Quantised {
    let rows = bounds.windows(2).map(|b| &values[b[0]..b[1]]);
    let absmax = absmaxes(values, bounds);
    let mut q = Vec::with_capacity(values.len());
    for (row, &m) in rows.zip(&absmax) {
        // `v / m · 127` rather than `v · (127 / m)`: for v = m·level(q) it is within a few
        // ulp of q, so dequantised values requantise to the same integers.
        let grid = |v: f32| (v / m * Q_MAX as f32).round().clamp(-127.0, 127.0) as i8;
        q.extend(row.iter().map(|&v| if m > 0.0 { grid(v) } else { 0 }));
    }
    Quantised { q, scale: absmax }
}

/// The row scales [`quantise`] stores: each row's largest magnitude, rounded to f16 when
/// every one is 0 or a normal f16 (those rows then still reach ±127, as f16 rounding
/// moves 127 by less than 0.07). Apart from `quantise` so that a file's bytes can be
/// counted without quantising.
pub fn absmaxes(values: &[f32], bounds: &[usize]) -> Vec<f32> {
    let rows = bounds.windows(2).map(|b| &values[b[0]..b[1]]);
    let mut absmax: Vec<f32> = rows.map(|row| row.iter().fold(0.0f32, |m, v| m.max(v.abs()))).collect();
    if absmax.iter().all(|&m| f16_normal(m)) {
        absmax.iter_mut().for_each(|m| *m = half::f16::from_f32(*m).to_f32());
    }
    absmax
}

/// The values of quantised rows.
pub fn dequantise(q: &[i8], absmax: &[f32], bounds: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(q.len());
    for (b, &m) in bounds.windows(2).zip(absmax) {
        out.extend(q[b[0]..b[1]].iter().map(|&q| normal_or_zero(m * level(q))));
    }
    out
}

/// Row bounds of a `rows × cols` matrix.
pub fn dense_bounds(rows: usize, cols: usize) -> Vec<usize> {
    (0..=rows).map(|r| r * cols).collect()
}

/// A row-major dense matrix held in int8: a quarter of the f32 bytes, and the matrix–vector
/// product runs on integers (the `gemm_q8` kernel: activations quantised to 16 bits per
/// block of columns, exact integer dot products, one scale per row and block).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseI8 {
    rows: usize,
    cols: usize,
    q: Vec<i8>,
    absmax: Vec<f32>,
}

impl DenseI8 {
    /// Wraps row-major integers (`rows·cols`, each in `−127..=127`) and one absmax per row
    /// (finite, ≥ 0).
    pub fn new(rows: usize, cols: usize, q: Vec<i8>, absmax: Vec<f32>) -> Result<DenseI8, String> {
        if rows.checked_mul(cols) != Some(q.len()) {
            return Err(format!("{} values cannot fill a {rows}x{cols} matrix", q.len()));
        }
        if absmax.len() != rows {
            return Err(format!("{} row scales for {rows} rows", absmax.len()));
        }
        if let Some(i) = q.iter().position(|&v| v < -Q_MAX) {
            return Err(format!("value {} at position {i} is outside -127..=127", q[i]));
        }
        if let Some(r) = absmax.iter().position(|m| !(m.is_finite() && *m >= 0.0)) {
            return Err(format!("row {r}'s absmax is negative, NaN or infinite"));
        }
        Ok(DenseI8 { rows, cols, q, absmax })
    }
    /// Quantises an f32 matrix row by row.
    pub fn quantise(rows: usize, cols: usize, data: &[f32]) -> DenseI8 {
        let Quantised { q, scale } = quantise(data, &dense_bounds(rows, cols));
        DenseI8 { rows, cols, q, absmax: scale }
    }
    /// The integers, row-major.
    pub fn q(&self) -> &[i8] {
        &self.q
    }
    /// Each row's absmax.
    pub fn absmax(&self) -> &[f32] {
        &self.absmax
    }
    /// The values in f32.
    pub fn to_f32(&self) -> Dense {
        let data = dequantise(&self.q, &self.absmax, &dense_bounds(self.rows, self.cols));
        super::checked(Dense::new(self.rows, self.cols, data))
    }
    fn view(&self) -> Q8<'_> {
        Q8 { q: &self.q, absmax: &self.absmax }
    }
}

impl MatVec for DenseI8 {
    fn rows(&self) -> usize {
        self.rows
    }
    fn cols(&self) -> usize {
        self.cols
    }
    fn matvec(&self, k: &Kernels, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        (k.gemm_q8)(&self.view(), x, y, 1);
    }
    fn matmat(&self, k: &Kernels, x: &[f32], y: &mut [f32], _scratch: &mut [f32]) {
        if self.rows == 0 || self.cols == 0 {
            return;
        }
        (k.gemm_q8)(&self.view(), x, y, x.len() / self.cols);
    }
    fn row(&self, r: usize, out: &mut [f32]) {
        let m = self.absmax[r];
        for (o, &q) in out.iter_mut().zip(&self.q[r * self.cols..(r + 1) * self.cols]) {
            *o = m * level(q);
        }
    }
    fn storage(&self) -> Storage {
        Storage { values: self.q.len(), indices: 0 }
    }
    fn memory(&self) -> usize {
        self.q.len() + 4 * self.absmax.len()
    }
    fn macs(&self) -> usize {
        self.rows * self.cols
    }
}

#[cfg(test)]
pub(super) mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::sample::Rng;

    /// Rows of every length from 0, values of several magnitudes, a zero row; with
    /// `outliers`, four more rows that each end in one value 8 times their magnitude
    /// (where int4's chosen scale lies below the largest magnitude).
    pub(in crate::matrix) fn rows(rng: &mut Rng, scale: f32, outliers: bool) -> (Vec<f32>, Vec<usize>) {
        let mut bounds = vec![0];
        let mut values = vec![];
        for r in 0..if outliers { 16 } else { 12 } {
            let m = if r == 5 { 0.0 } else { scale * 10f32.powi(r % 4 - 2) };
            values.extend((0..r).map(|_| rng.symmetric(m)));
            if r >= 12 {
                values.push(m * 8.0);
            }
            bounds.push(values.len());
        }
        (values, bounds)
    }

    #[test]
    fn dequantised_values_below_the_smallest_normal_are_zero() {
        // A row whose absmax is the smallest normal number: q / 127 of it is subnormal
        // except at ±127, and so are int4's q / 7 of it except at ±7.
        let m = f32::MIN_POSITIVE;
        assert_eq!(dequantise(&[1, -126, 127, -127, 0], &[m], &[0, 5]), [0.0, 0.0, m, -m, 0.0]);
        assert_eq!(super::super::dequantise4(&[1, -6, 7, -7], &[m], &[0, 4]), [0.0, 0.0, m, -m]);
        // A larger absmax keeps its smallest levels.
        let big = 127.0 * m;
        assert!(dequantise(&[1, -1], &[big], &[0, 2]).iter().all(|v| v.is_normal()));
    }

    #[test]
    fn quantisation_is_idempotent_and_reaches_the_ends_of_the_range() {
        let mut rng = Rng::new(8);
        // Absmaxes within f16's normal range, and some beyond it (then kept in f32).
        for (scale, f16) in [(1.0, true), (1e-5, false), (1e7, false)] {
            let (values, bounds) = rows(&mut rng, scale, false);
            let first = quantise(&values, &bounds);
            assert_eq!(fits_f16(&first.scale), f16, "scale {scale}");
            let back = dequantise(&first.q, &first.scale, &bounds);
            assert_eq!(quantise(&back, &bounds), first, "scale {scale}: requantising changed the integers or scales");
            for (b, &m) in bounds.windows(2).zip(&first.scale) {
                let row = &first.q[b[0]..b[1]];
                assert!(row.iter().all(|&q| q >= -Q_MAX));
                if m > 0.0 {
                    assert!(row.iter().any(|q| q.abs() == Q_MAX), "each non-zero row reaches ±127");
                }
            }
            // Each value within half a step (plus the f16 rounding of the absmax).
            for (r, b) in bounds.windows(2).enumerate() {
                let true_max = values[b[0]..b[1]].iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (&v, &d) in values[b[0]..b[1]].iter().zip(&back[b[0]..b[1]]) {
                    let tol = true_max * (0.5 / 127.0 + 1e-3) + f32::MIN_POSITIVE;
                    assert!((v - d).abs() <= tol, "row {r}: {v} became {d}");
                }
            }
        }
    }

    #[test]
    fn dense_i8_checks_its_parts() {
        assert!(DenseI8::new(2, 2, vec![1, 2, 3, 4], vec![1.0, 0.0]).is_ok());
        let err = |q: Vec<i8>, m: Vec<f32>| DenseI8::new(2, 2, q, m).unwrap_err();
        assert_eq!(err(vec![1, 2, 3], vec![1.0; 2]), "3 values cannot fill a 2x2 matrix");
        assert_eq!(err(vec![1; 4], vec![1.0]), "1 row scales for 2 rows");
        assert_eq!(err(vec![1, -128, 0, 0], vec![1.0; 2]), "value -128 at position 1 is outside -127..=127");
        assert_eq!(err(vec![1; 4], vec![1.0, -1.0]), "row 1's absmax is negative, NaN or infinite");
    }
}
