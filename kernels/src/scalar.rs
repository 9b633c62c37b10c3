//! Portable scalar kernels: the specification every other instruction set must match.

use super::{Kernels, Sell, Q8, SELL_LANES};

/// The scalar kernel table.
pub const KERNELS: Kernels =
    Kernels { name: "scalar", gemv, gemm, gemm_q8, axpy, sell, sell4, sigmoid, tanh, log_softmax };

/// Dense matrix × vector, accumulating into `y`.
pub fn gemv(w: &[f32], x: &[f32], y: &mut [f32]) {
    gemm(w, x, y, 1)
}

/// `gemv` on `batch` vectors, row by row so that each row of W is read from memory once
/// for all of them.
pub fn gemm(w: &[f32], x: &[f32], y: &mut [f32], batch: usize) {
    let Some((n, m)) = batch_shape(w.len(), x, y, batch) else { return };
    for (r, row) in w.chunks_exact(n).enumerate() {
        for (xt, yt) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
            yt[r] += dot(row, xt);
        }
    }
}

/// Int8 matrix × `batch` vectors: the frame with plain integer loops.
pub fn gemm_q8(w: &Q8, x: &[f32], y: &mut [f32], batch: usize) {
    super::gemm_q8_frame(w, x, y, batch, dot4_q8, dot_q8);
}

/// Four rows against one block of activations: each activation loaded once for four
/// independent sums (one chain per row, as for the f32 kernels' four accumulators).
fn dot4_q8(rows: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let mut acc = [0i32; 4];
    let quads = rows[0].iter().zip(rows[1]).zip(rows[2]).zip(rows[3]);
    for (&xc, (((&a, &b), &c), &d)) in x.iter().zip(quads) {
        let xc = xc as i32;
        acc[0] += a as i32 * xc;
        acc[1] += b as i32 * xc;
        acc[2] += c as i32 * xc;
        acc[3] += d as i32 * xc;
    }
    acc
}

/// Exact integer dot product of one block (no overflow: see `Q8_BLOCK`).
pub fn dot_q8(a: &[i8], x: &[i16]) -> i32 {
    a.iter().zip(x).map(|(&a, &x)| a as i32 * x as i32).sum()
}

/// `(n, m)`, the input and output lengths of each of `batch` vectors, or `None` when
/// there is nothing to compute. Panics on inconsistent lengths (a caller's bug).
pub(super) fn batch_shape(w_len: usize, x: &[f32], y: &[f32], batch: usize) -> Option<(usize, usize)> {
    if batch == 0 {
        assert!(x.is_empty() && y.is_empty(), "gemm: no vectors, but non-empty x or y");
        return None;
    }
    let (n, m) = (x.len() / batch, y.len() / batch);
    assert!(x.len() == batch * n && y.len() == batch * m && w_len == m * n, "gemm: inconsistent lengths");
    (n > 0 && m > 0).then_some((n, m))
}

/// Dot product with four independent accumulators, so the result does not depend on
/// a single long dependency chain (and matches the SIMD sets' summation order closely).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `y += a·x`.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Sparse matrix × vector: each lane of a slice is one row, summed in entry order.
pub fn sell(m: &Sell, x: &[f32], y: &mut [f32]) {
    sell_strided(m, x, 1, y);
}

/// Sparse matrix × four interleaved vectors: `sell` on each, reading every fourth value.
pub fn sell4(m: &Sell, x4: &[f32], y: &mut [f32]) {
    assert!(x4.len() >= 4 * m.col_bound() && y.len().is_multiple_of(4), "sell4: x4 or y too short");
    let rows = y.len() / 4;
    for t in 0..4 {
        // Vector t starts at x4[t]; x4 is empty only for a matrix without entries.
        sell_strided(m, x4.get(t..).unwrap_or_default(), 4, &mut y[t * rows..(t + 1) * rows]);
    }
}

/// `sell` of the vector `x[0], x[stride], x[2·stride], …`.
fn sell_strided(m: &Sell, x: &[f32], stride: usize, y: &mut [f32]) {
    super::sell_frame(m, x, stride, y, |cols, vals, x| {
        let mut acc = [0.0f32; SELL_LANES];
        for (c, v) in cols.chunks_exact(SELL_LANES).zip(vals.chunks_exact(SELL_LANES)) {
            for l in 0..SELL_LANES {
                acc[l] += v[l] * x[stride * c[l] as usize];
            }
        }
        acc
    });
}

/// Logistic sigmoid in place.
pub fn sigmoid(v: &mut [f32]) {
    for x in v {
        *x = 1.0 / (1.0 + (-*x).exp());
    }
}

/// Hyperbolic tangent in place.
pub fn tanh(v: &mut [f32]) {
    for x in v {
        *x = x.tanh();
    }
}

/// Log-softmax in place, shifted by the maximum for stability.
pub fn log_softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Summed in f64: one f32 chain over a 10 000-word vocabulary put the normaliser
    // 8e-5 off (bench/onnx's parity check against onnxruntime), against 1.5e-5 for
    // the SIMD sets' lane-wise sums.
    let sum: f64 = v.iter().map(|&x| (x - max).exp() as f64).sum();
    // `(x − max) − ln(sum)`, not `x − (max + ln(sum))`: with logits near f32's range the
    // sum `max + ln(sum)` rounds back to `max` and every log-probability became 0.
    let ln_sum = sum.ln() as f32;
    for x in v {
        *x = (*x - max) - ln_sum;
    }
}
