//! x86-64 AVX2 + FMA kernels, selected at run time.
//!
//! Every `#[target_feature]` function here is private and reached only through the
//! table [`detect`] returns after checking the CPU, which is what makes the safe
//! wrappers sound.

use super::cephes::{EXP_MIN, EXP_P, LN2_HI, LN2_LO, LOG2E, TANH_P, TANH_SMALL};
use super::{scalar, Kernels, Sell, Q8, SELL_LANES};
use std::arch::x86_64::*;

/// The AVX2 kernel table if this CPU supports AVX2 and FMA.
pub fn detect() -> Option<Kernels> {
    (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(KERNELS)
}

/// Private so that it cannot be used without [`detect`]'s check.
const KERNELS: Kernels = Kernels { name: "avx2", gemv, gemm, gemm_q8, axpy, sell, sell4, sigmoid, tanh, log_softmax };

fn gemv(w: &[f32], x: &[f32], y: &mut [f32]) {
    gemm(w, x, y, 1)
}

fn gemm(w: &[f32], x: &[f32], y: &mut [f32], batch: usize) {
    let Some((n, m)) = scalar::batch_shape(w.len(), x, y, batch) else { return };
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA; lengths checked above.
    unsafe { gemm_avx2(w, x, y, n, m) }
}

fn gemm_q8(w: &Q8, x: &[f32], y: &mut [f32], batch: usize) {
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA.
    unsafe { gemm_q8_avx2(w, x, y, batch) }
}

fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    assert!(x.len() == y.len(), "axpy: x and y differ in length");
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA; lengths checked above.
    unsafe { axpy_avx2(a, x, y) }
}

fn sell(m: &Sell, x: &[f32], y: &mut [f32]) {
    // A caller's error (`MatVec` passes x as wide as the matrix), reported as the scalar set would.
    assert!(x.len() >= m.col_bound(), "sell: x shorter than the matrix's column bound");
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA; every index is
    // below m.col_bound() ≤ x.len().
    unsafe { sell_avx2(m, x, y) }
}

fn sell4(m: &Sell, x4: &[f32], y: &mut [f32]) {
    // A caller's error (`Csr::matmat` in `dkp_lstm` sizes both), reported as the scalar set would.
    assert!(x4.len() >= 4 * m.col_bound() && y.len().is_multiple_of(4), "sell4: x4 or y too short");
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA; every index is
    // below m.col_bound(), and x4 holds 4·col_bound values.
    unsafe { sell4_avx2(m, x4, y) }
}

fn sigmoid(v: &mut [f32]) {
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA.
    unsafe { sigmoid_avx2(v) }
}

fn tanh(v: &mut [f32]) {
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA.
    unsafe { tanh_avx2(v) }
}

fn log_softmax(v: &mut [f32]) {
    // SAFETY: only reachable through `detect`, which checked AVX2 and FMA.
    unsafe { log_softmax_avx2(v) }
}

/// Four rows at a time so that each load of `x` feeds four FMAs; two column blocks of
/// eight per step give eight independent accumulators, enough to hide FMA latency.
/// The last `n mod 8` columns take one masked step instead of a scalar loop per row,
/// which matters for the small factors of a Kronecker product (26 or 50 columns).
/// Each block of four rows (a few KB) is applied to every vector before the next, so
/// that W streams from memory once per batch: one vector is bound by memory
/// bandwidth, a batch by the FMAs.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `x` holds vectors of `n ≥ 1` values, `y` as many
/// of `m ≥ 1`, and `w.len() == m * n`.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_avx2(w: &[f32], x: &[f32], y: &mut [f32], n: usize, m: usize) {
    if n == 1 {
        // One column (a Kronecker factor of shape m×1) is an axpy, which streams
        // instead of reducing four 1-element rows at a time.
        for (&xt, yt) in x.iter().zip(y.chunks_exact_mut(m)) {
            // SAFETY: this function's CPU contract, and w.len() == m == yt.len() when n == 1.
            unsafe { axpy_avx2(xt, w, yt) };
        }
        return;
    }
    let (n16, n8) = (n / 16 * 16, n / 8 * 8);
    let mask = tail_mask(n - n8);
    let blocks = w.chunks_exact(4 * n);
    let first_left = blocks.len() * 4;
    for (b, w4) in blocks.enumerate() {
        let wp = w4.as_ptr();
        for (xt, yt) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
            let xp = xt.as_ptr();
            let mut acc = [_mm256_setzero_ps(); 8];
            let mut c = 0;
            // SAFETY: c + 16 ≤ n16 ≤ n (resp. c + 8 ≤ n8) keeps every load inside xt and
            // inside row k of the block (w4 holds 4·n values, row k starts at k·n); the
            // masked step reads only lanes n8..n of xt and of each row.
            unsafe {
                while c < n16 {
                    let (xa, xb) = (_mm256_loadu_ps(xp.add(c)), _mm256_loadu_ps(xp.add(c + 8)));
                    for (k, pair) in acc.chunks_exact_mut(2).enumerate() {
                        let row = wp.add(k * n + c);
                        pair[0] = _mm256_fmadd_ps(_mm256_loadu_ps(row), xa, pair[0]);
                        pair[1] = _mm256_fmadd_ps(_mm256_loadu_ps(row.add(8)), xb, pair[1]);
                    }
                    c += 16;
                }
                if c < n8 {
                    let xa = _mm256_loadu_ps(xp.add(c));
                    for (k, pair) in acc.chunks_exact_mut(2).enumerate() {
                        pair[0] = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(k * n + c)), xa, pair[0]);
                    }
                }
                if n8 < n {
                    let xa = _mm256_maskload_ps(xp.add(n8), mask);
                    for (k, pair) in acc.chunks_exact_mut(2).enumerate() {
                        pair[1] = _mm256_fmadd_ps(_mm256_maskload_ps(wp.add(k * n + n8), mask), xa, pair[1]);
                    }
                }
            }
            let sums = hsum4([
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
                _mm256_add_ps(acc[4], acc[5]),
                _mm256_add_ps(acc[6], acc[7]),
            ]);
            let y4 = &mut yt[4 * b..4 * b + 4];
            // SAFETY: `y4` holds exactly four f32, one unaligned 128-bit load and store.
            unsafe { _mm_storeu_ps(y4.as_mut_ptr(), _mm_add_ps(_mm_loadu_ps(y4.as_ptr()), sums)) };
        }
    }
    for (r, row) in w.chunks_exact(n).enumerate().skip(first_left) {
        for (xt, yt) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
            // SAFETY: this function's CPU contract; row and xt both hold n values.
            yt[r] += unsafe { dot_avx2(row, xt) };
        }
    }
}

/// The frame of `kernels::gemm_q8_frame` around [`dot4_q8`], compiled with AVX2 so that
/// the dot products inline into it.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_q8_avx2(w: &Q8, x: &[f32], y: &mut [f32], batch: usize) {
    // The (at most three) rows after the blocks of four go through the same code.
    super::gemm_q8_frame(w, x, y, batch, |rows, x| dot4_q8(rows, x), |row, x| dot4_q8([row; 4], x)[0]);
}

/// Exact dot products of four int8 rows with the same 16-bit activations, 16 columns per
/// step: the weights sign-extended to i16 (`vpmovsxbw`), multiplied and pairwise added
/// into eight i32 by `vpmaddwd`; each load of `x` feeds four rows.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn dot4_q8(rows: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let n = x.len();
    assert!(rows.iter().all(|r| r.len() == n), "dot4_q8: rows as long as x");
    let n16 = n / 16 * 16;
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut c = 0;
    while c < n16 {
        // SAFETY: c + 16 ≤ n16 ≤ n, and every row holds n values (checked above).
        unsafe {
            let xv = _mm256_loadu_si256(x.as_ptr().add(c).cast());
            for (acc, row) in acc.iter_mut().zip(rows) {
                let w = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.as_ptr().add(c).cast()));
                *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(w, xv));
            }
        }
        c += 16;
    }
    // Eight columns more in one half-width step where they are left (a 200-wide block,
    // the output layer's, ends in eight), the rest as scalars.
    let mut done = n16;
    if n - n16 >= 8 {
        // SAFETY: n16 + 8 ≤ n, and every row holds n values.
        unsafe {
            let xv = _mm_loadu_si128(x.as_ptr().add(n16).cast());
            for (acc, row) in acc.iter_mut().zip(rows) {
                let w = _mm_cvtepi8_epi16(_mm_loadl_epi64(row.as_ptr().add(n16).cast()));
                *acc = _mm256_add_epi32(*acc, _mm256_zextsi128_si256(_mm_madd_epi16(w, xv)));
            }
        }
        done += 8;
    }
    // [a0 a1 a2 a3] pairwise: two hadds leave each row's four partial sums in each half.
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(acc[0], acc[1]), _mm256_hadd_epi32(acc[2], acc[3]));
    let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
    let mut out = [0i32; 4];
    // SAFETY: `out` holds exactly four i32.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), s) };
    for (o, row) in out.iter_mut().zip(rows) {
        *o += scalar::dot_q8(&row[done..], &x[done..]);
    }
    out
}

/// A mask enabling the first `r` of eight lanes (`r ≤ 8`).
#[target_feature(enable = "avx2,fma")]
fn tail_mask(r: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(r as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// The sums of four vectors' lanes, as one 128-bit vector `[Σs0, Σs1, Σs2, Σs3]`.
#[target_feature(enable = "avx2,fma")]
fn hsum4(s: [__m256; 4]) -> __m128 {
    let h = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
    _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h))
}

/// The sum of the eight lanes.
#[target_feature(enable = "avx2,fma")]
fn hsum(s: __m256) -> f32 {
    let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
    let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)))
}

/// One row's dot product, for the rows left over after blocks of four.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `a.len() == b.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let n8 = n / 8 * 8;
    let (ap, bp) = (a.as_ptr(), b.as_ptr());
    let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut c = 0;
    // SAFETY: c + 16 ≤ n8 (resp. c + 8 ≤ n8) keeps every load inside both slices; the
    // masked loads read only lanes n8..n.
    unsafe {
        while c + 16 <= n8 {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(ap.add(c)), _mm256_loadu_ps(bp.add(c)), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(ap.add(c + 8)), _mm256_loadu_ps(bp.add(c + 8)), acc1);
            c += 16;
        }
        if c < n8 {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(ap.add(c)), _mm256_loadu_ps(bp.add(c)), acc0);
        }
        if n8 < n {
            let mask = tail_mask(n - n8);
            let (ta, tb) = (_mm256_maskload_ps(ap.add(n8), mask), _mm256_maskload_ps(bp.add(n8), mask));
            acc1 = _mm256_fmadd_ps(ta, tb, acc1);
        }
    }
    hsum(_mm256_add_ps(acc0, acc1))
}

/// One gather of eight `x[col]` per step, one lane per row.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `m.col_bound() ≤ x.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn sell_avx2(m: &Sell, x: &[f32], y: &mut [f32]) {
    // Each part's x is inside the whole x: a part exists only for columns that hold
    // entries, all below col_bound.
    super::sell_frame(m, x, 1, y, |cols, vals, x| {
        let mut acc = _mm256_setzero_ps();
        for (c, v) in cols.chunks_exact(SELL_LANES).zip(vals.chunks_exact(SELL_LANES)) {
            // SAFETY: both chunks hold exactly eight values; every index plus col0 is below
            // m.col_bound() ≤ the whole x's length, and a u16 is a non-negative i32, so
            // every gathered address lies inside x.
            unsafe {
                let idx = _mm256_cvtepu16_epi32(_mm_loadu_si128(c.as_ptr().cast()));
                let xv = _mm256_i32gather_ps::<4>(x.as_ptr(), idx);
                acc = _mm256_fmadd_ps(_mm256_loadu_ps(v.as_ptr()), xv, acc);
            }
        }
        let mut sums = [0.0f32; SELL_LANES];
        // SAFETY: `sums` holds exactly eight f32.
        unsafe { _mm256_storeu_ps(sums.as_mut_ptr(), acc) };
        sums
    });
}

/// [`sell_avx2`] on four interleaved vectors: per entry one broadcast of its value and
/// one 128-bit load of its column's four values instead of a gather; the same fused
/// multiply-add per lane and vector, in the same order, so each vector gets the bits
/// `sell` gives it.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `x4.len() ≥ 4·m.col_bound()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn sell4_avx2(m: &Sell, x4: &[f32], y: &mut [f32]) {
    super::sell_frame(m, x4, 4, y, |cols, vals, x4| {
        let mut acc = [_mm_setzero_ps(); SELL_LANES];
        for (c, v) in cols.chunks_exact(SELL_LANES).zip(vals.chunks_exact(SELL_LANES)) {
            for (l, acc) in acc.iter_mut().enumerate() {
                // SAFETY: every index plus col0 is below m.col_bound(), so the four values
                // at 4·c[l] of the part's x4 lie inside the whole x4 (this function's contract).
                unsafe {
                    let xv = _mm_loadu_ps(x4.as_ptr().add(4 * c[l] as usize));
                    *acc = _mm_fmadd_ps(_mm_set1_ps(v[l]), xv, *acc);
                }
            }
        }
        acc.map(|a| {
            let mut sums = [0.0f32; 4];
            // SAFETY: `sums` holds exactly four f32.
            unsafe { _mm_storeu_ps(sums.as_mut_ptr(), a) };
            sums
        })
    });
}

/// # Safety
/// The CPU must support AVX2 and FMA; `x.len() == y.len()`.
#[target_feature(enable = "avx2,fma")]
unsafe fn axpy_avx2(a: f32, x: &[f32], y: &mut [f32]) {
    let av = _mm256_set1_ps(a);
    let mut yc = y.chunks_exact_mut(8);
    let mut xc = x.chunks_exact(8);
    for (y8, x8) in (&mut yc).zip(&mut xc) {
        // SAFETY: both chunks hold exactly eight f32, one unaligned 256-bit load or store.
        unsafe {
            let v = _mm256_fmadd_ps(av, _mm256_loadu_ps(x8.as_ptr()), _mm256_loadu_ps(y8.as_ptr()));
            _mm256_storeu_ps(y8.as_mut_ptr(), v);
        }
    }
    scalar::axpy(a, xc.remainder(), yc.into_remainder());
}

/// Applies `f` to `v` eight lanes at a time; the tail goes through a padded copy so
/// that it sees exactly the same arithmetic.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn map8(v: &mut [f32], f: impl Fn(__m256) -> __m256) {
    let mut chunks = v.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: the chunk holds exactly eight f32.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), f(_mm256_loadu_ps(c.as_ptr()))) };
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0.0f32; 8];
        buf[..tail.len()].copy_from_slice(tail);
        // SAFETY: `buf` holds exactly eight f32.
        unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), f(_mm256_loadu_ps(buf.as_ptr()))) };
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn sigmoid_avx2(v: &mut [f32]) {
    map8(v, |x| sigmoid8(x))
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_avx2(v: &mut [f32]) {
    map8(v, |x| tanh8(x))
}

/// `exp(x)` for `x ≤ 0` (Cephes range reduction, see `kernels::cephes`); inputs below
/// `EXP_MIN` give the smallest normal number instead of a subnormal or zero.
#[target_feature(enable = "avx2,fma")]
fn exp8_nonpositive(x: __m256) -> __m256 {
    let x = _mm256_max_ps(x, _mm256_set1_ps(EXP_MIN));
    let n =
        _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let mut p = _mm256_set1_ps(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0)));
    // 2ⁿ built in the exponent field; n ≥ −126, so the biased exponent stays ≥ 1.
    let pow2n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
    _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n))
}

/// `1/(1+e^−x)` through `e = exp(−|x|)`, so that exp never overflows:
/// `σ(x) = 1/(1+e)` for `x ≥ 0` and `e/(1+e)` for `x < 0`.
#[target_feature(enable = "avx2,fma")]
fn sigmoid8(x: __m256) -> __m256 {
    let sign = _mm256_set1_ps(-0.0);
    let e = exp8_nonpositive(_mm256_or_ps(x, sign));
    let d = _mm256_div_ps(_mm256_set1_ps(1.0), _mm256_add_ps(_mm256_set1_ps(1.0), e));
    let negative = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_setzero_ps());
    _mm256_blendv_ps(d, _mm256_mul_ps(e, d), negative)
}

/// Cephes `tanhf`: an odd polynomial below `TANH_SMALL`, else `(1−e)/(1+e)` with
/// `e = exp(−2|x|)` and the sign of `x`.
#[target_feature(enable = "avx2,fma")]
fn tanh8(x: __m256) -> __m256 {
    let sign = _mm256_set1_ps(-0.0);
    let ax = _mm256_andnot_ps(sign, x);
    let e = exp8_nonpositive(_mm256_mul_ps(ax, _mm256_set1_ps(-2.0)));
    let one = _mm256_set1_ps(1.0);
    let large = _mm256_div_ps(_mm256_sub_ps(one, e), _mm256_add_ps(one, e));
    let large = _mm256_or_ps(large, _mm256_and_ps(x, sign));
    let z = _mm256_mul_ps(x, x);
    let mut p = _mm256_set1_ps(TANH_P[0]);
    for &c in &TANH_P[1..] {
        p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(c));
    }
    let small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    let is_small = _mm256_cmp_ps::<_CMP_LT_OQ>(ax, _mm256_set1_ps(TANH_SMALL));
    _mm256_blendv_ps(large, small, is_small)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn log_softmax_avx2(v: &mut [f32]) {
    let mut chunks = v.chunks_exact(8);
    let mut m8 = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in &mut chunks {
        // SAFETY: the chunk holds exactly eight f32.
        m8 = _mm256_max_ps(m8, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds exactly eight f32.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m8) };
    let max = lanes.iter().chain(chunks.remainder()).copied().fold(f32::NEG_INFINITY, f32::max);
    if v.is_empty() {
        return;
    }
    let mv = _mm256_set1_ps(max);
    let mut s8 = _mm256_setzero_ps();
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        // SAFETY: the chunk holds exactly eight f32.
        let x = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        s8 = _mm256_add_ps(s8, exp8_nonpositive(_mm256_sub_ps(x, mv)));
    }
    let tail = chunks.remainder();
    let mut buf = [max; 8];
    buf[..tail.len()].copy_from_slice(tail);
    // SAFETY: `buf` and `lanes` hold exactly eight f32.
    unsafe {
        _mm256_storeu_ps(buf.as_mut_ptr(), exp8_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), mv)));
        _mm256_storeu_ps(lanes.as_mut_ptr(), s8);
    }
    let sum: f32 = lanes.iter().sum::<f32>() + buf[..tail.len()].iter().sum::<f32>();
    // Two subtractions, as in `scalar::log_softmax` (precision near f32's range).
    let ln_sum = _mm256_set1_ps(sum.ln());
    map8(v, |x| _mm256_sub_ps(_mm256_sub_ps(x, mv), ln_sum))
}
