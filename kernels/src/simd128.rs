//! WebAssembly SIMD128 kernels (f32x4), compiled in with `-C target-feature=+simd128`.
//!
//! The feature is fixed at compile time (a wasm module either validates with SIMD or
//! not at all), so the intrinsics are safe to call here; only the loads and stores
//! through raw pointers are `unsafe`. SIMD128 has no fused multiply-add outside
//! relaxed-SIMD, which these builds deliberately leave off, so products and sums
//! round separately as in the scalar set.

use super::cephes::{EXP_MIN, EXP_P, LN2_HI, LN2_LO, LOG2E, TANH_P, TANH_SMALL};
use super::{scalar, Kernels, Sell, Q8, SELL_LANES};
use core::arch::wasm32::*;

/// The SIMD128 kernel table.
pub const KERNELS: Kernels =
    Kernels { name: "simd128", gemv, gemm, gemm_q8, axpy, sell, sell4, sigmoid, tanh, log_softmax };

/// Loads four f32 from the start of `s`.
#[inline(always)]
fn load(s: &[f32]) -> v128 {
    assert!(s.len() >= 4);
    // SAFETY: `s` holds at least four f32 (checked above; the check folds away at every
    // call site, which passes exact chunks); v128_load has no alignment requirement.
    unsafe { v128_load(s.as_ptr().cast()) }
}

/// Stores four f32 at the start of `s`.
#[inline(always)]
fn store(s: &mut [f32], v: v128) {
    assert!(s.len() >= 4);
    // SAFETY: as in `load`, four writable f32 at an address with no alignment requirement.
    unsafe { v128_store(s.as_mut_ptr().cast(), v) }
}

/// Dense matrix × vector: [`gemm`] with one vector.
pub fn gemv(w: &[f32], x: &[f32], y: &mut [f32]) {
    gemm(w, x, y, 1)
}

/// Dense matrix × `batch` vectors, four rows at a time so that each load of `x` feeds
/// four rows (the four accumulators are independent chains); each block of four rows
/// is applied to every vector before the next, so W streams from memory once.
pub fn gemm(w: &[f32], x: &[f32], y: &mut [f32], batch: usize) {
    let Some((n, m)) = scalar::batch_shape(w.len(), x, y, batch) else { return };
    if n == 1 {
        // One column (a Kronecker factor B of shape m×1) is an axpy.
        for (&xt, yt) in x.iter().zip(y.chunks_exact_mut(m)) {
            axpy(xt, w, yt);
        }
        return;
    }
    let n4 = n / 4 * 4;
    let blocks = w.chunks_exact(4 * n);
    let first_left = blocks.len() * 4;
    for (b, w4) in blocks.enumerate() {
        let (r0, rest) = w4.split_at(n);
        let (r1, rest) = rest.split_at(n);
        let (r2, r3) = rest.split_at(n);
        for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
            let mut acc = [f32x4_splat(0.0); 4];
            let quads = r0.chunks_exact(4).zip(r1.chunks_exact(4)).zip(r2.chunks_exact(4)).zip(r3.chunks_exact(4));
            for (x4, (((a, b), c), d)) in x.chunks_exact(4).zip(quads) {
                let xv = load(x4);
                acc[0] = f32x4_add(acc[0], f32x4_mul(load(a), xv));
                acc[1] = f32x4_add(acc[1], f32x4_mul(load(b), xv));
                acc[2] = f32x4_add(acc[2], f32x4_mul(load(c), xv));
                acc[3] = f32x4_add(acc[3], f32x4_mul(load(d), xv));
            }
            let mut sums = [0.0f32; 4];
            store(&mut sums, hsum4(acc));
            for ((yr, sum), row) in y[4 * b..4 * b + 4].iter_mut().zip(sums).zip([r0, r1, r2, r3]) {
                *yr += sum + scalar::dot(&row[n4..], &x[n4..]);
            }
        }
    }
    for (r, row) in w.chunks_exact(n).enumerate().skip(first_left) {
        for (x, y) in x.chunks_exact(n).zip(y.chunks_exact_mut(m)) {
            y[r] += dot(row, x);
        }
    }
}

/// Int8 matrix × `batch` vectors (the frame of `kernels::gemm_q8_frame`): 16 columns
/// per step, the weights widened to i16 and multiplied with the 16-bit activations by
/// `i32x4.dot_i16x8_s`, eight products and their pairwise sums per instruction; four rows
/// share each load of the activations. A quarter of the f32 kernel's bytes per weight,
/// and fewer instructions than converting the weights to f32 (widen twice, convert,
/// multiply, add for every four).
pub fn gemm_q8(w: &Q8, x: &[f32], y: &mut [f32], batch: usize) {
    // The (at most three) rows after the blocks of four — none in the project's models,
    // whose row counts are multiples of four — take the scalar dot product: the integer
    // sums are exact, so the bits are the same, and a second copy of `dot4_q8` cost the
    // module 0.5 KB.
    super::gemm_q8_frame(w, x, y, batch, dot4_q8, scalar::dot_q8);
}

/// Eight i8 from the start of `s`, widened to i16 by the load itself (`v128.load8x8_s`:
/// one `pmovsxbw` from memory in V8, where loading sixteen and widening each half takes
/// three instructions more).
#[inline(always)]
fn load_i8_as_i16(s: &[i8]) -> v128 {
    assert!(s.len() >= 8);
    // SAFETY: `s` holds at least eight bytes; the load has no alignment requirement.
    unsafe { i16x8_load_extend_i8x8(s.as_ptr()) }
}

/// Eight i16 from the start of `s`.
#[inline(always)]
fn load_i16(s: &[i16]) -> v128 {
    assert!(s.len() >= 8);
    // SAFETY: `s` holds at least eight i16; no alignment requirement.
    unsafe { v128_load(s.as_ptr().cast()) }
}

/// Exact dot products of four int8 rows with the same 16-bit activations (each row as
/// long as `x`; the sums cannot overflow, see `Q8_BLOCK`).
#[inline(always)]
fn dot4_q8(rows: [&[i8]; 4], x: &[i16]) -> [i32; 4] {
    let n16 = x.len() / 16 * 16;
    let mut acc = [i32x4_splat(0); 4];
    let [r0, r1, r2, r3] = rows.map(|r| r.chunks_exact(16));
    for (x16, (((a, b), c), d)) in x.chunks_exact(16).zip(r0.zip(r1).zip(r2).zip(r3)) {
        let (xa, xb) = (load_i16(&x16[..8]), load_i16(&x16[8..]));
        for (acc, w) in acc.iter_mut().zip([a, b, c, d]) {
            let lo = i32x4_dot_i16x8(load_i8_as_i16(&w[..8]), xa);
            let hi = i32x4_dot_i16x8(load_i8_as_i16(&w[8..]), xb);
            *acc = i32x4_add(*acc, i32x4_add(lo, hi));
        }
    }
    // Eight columns more in one step where they are left (a 200-wide block, the output
    // layer's, ends in eight): done as scalars they took a quarter of the product's time.
    let mut done = n16;
    if x.len() - n16 >= 8 {
        let xv = load_i16(&x[n16..]);
        for (acc, row) in acc.iter_mut().zip(rows) {
            *acc = i32x4_add(*acc, i32x4_dot_i16x8(load_i8_as_i16(&row[n16..]), xv));
        }
        done += 8;
    }
    let mut out = [0i32; 4];
    for ((o, acc), row) in out.iter_mut().zip(acc).zip(rows) {
        let lanes = i32x4_extract_lane::<0>(acc)
            + i32x4_extract_lane::<1>(acc)
            + i32x4_extract_lane::<2>(acc)
            + i32x4_extract_lane::<3>(acc);
        *o = lanes + scalar::dot_q8(&row[done..], &x[done..]);
    }
    out
}

/// `[Σa0, Σa1, Σa2, Σa3]`: a 4×4 transpose folded into the additions.
#[inline(always)]
fn hsum4(a: [v128; 4]) -> v128 {
    // [a0₀+a0₂, a1₀+a1₂, a0₁+a0₃, a1₁+a1₃] and the same for a2, a3.
    let u01 = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a[0], a[1]), i32x4_shuffle::<2, 6, 3, 7>(a[0], a[1]));
    let u23 = f32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a[2], a[3]), i32x4_shuffle::<2, 6, 3, 7>(a[2], a[3]));
    f32x4_add(i32x4_shuffle::<0, 1, 4, 5>(u01, u23), i32x4_shuffle::<2, 3, 6, 7>(u01, u23))
}

/// One row's dot product, for the rows left over after blocks of four.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = f32x4_splat(0.0);
    let (mut ca, mut cb) = (a.chunks_exact(4), b.chunks_exact(4));
    for (x, y) in (&mut ca).zip(&mut cb) {
        acc = f32x4_add(acc, f32x4_mul(load(x), load(y)));
    }
    let lanes = (f32x4_extract_lane::<0>(acc) + f32x4_extract_lane::<1>(acc))
        + (f32x4_extract_lane::<2>(acc) + f32x4_extract_lane::<3>(acc));
    lanes + scalar::dot(ca.remainder(), cb.remainder())
}

/// Sparse matrix × vector, eight rows at a time in two vectors. wasm has no gather: the
/// eight `x[col]` of a step are loaded one by one into lanes (`v128.load32_lane`), but
/// with every row in a lane of its own there is no per-row loop, tail or reduction
/// (doping rows hold about a dozen entries, so those dominated the row-by-row kernel).
/// The loads are unchecked: every index is below `m.col_bound()` (a property of
/// [`Sell`]), which is checked against `x` once per call. Each index is read as a
/// scalar, not as a vector whose lanes are then extracted: an extract and a lane load
/// both take x86's one shuffle port, and that port was the kernel's bottleneck.
pub fn sell(m: &Sell, x: &[f32], y: &mut [f32]) {
    // A caller's error (`MatVec` passes x as wide as the matrix), reported as the scalar set would.
    assert!(x.len() >= m.col_bound(), "sell: x shorter than the matrix's column bound");
    // Each part's x is inside the whole x: a part exists only for columns that hold
    // entries, all below col_bound.
    super::sell_frame(m, x, 1, y, |cols, vals, x| {
        let gather = |cols: &[u16]| -> v128 {
            let at = |c: u16| x.as_ptr().wrapping_add(c as usize).cast::<u32>();
            // SAFETY: every index plus col0 is below m.col_bound() ≤ the whole x's length
            // (checked above), so each pointer is inside `x`; the lane loads have no
            // alignment requirement.
            unsafe {
                let g = v128_load32_zero(at(cols[0]));
                let g = v128_load32_lane::<1>(g, at(cols[1]));
                let g = v128_load32_lane::<2>(g, at(cols[2]));
                v128_load32_lane::<3>(g, at(cols[3]))
            }
        };
        let (mut lo, mut hi) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (c, v) in cols.chunks_exact(SELL_LANES).zip(vals.chunks_exact(SELL_LANES)) {
            lo = f32x4_add(lo, f32x4_mul(load(&v[..4]), gather(&c[..4])));
            hi = f32x4_add(hi, f32x4_mul(load(&v[4..]), gather(&c[4..])));
        }
        let mut sums = [0.0f32; SELL_LANES];
        store(&mut sums[..4], lo);
        store(&mut sums[4..], hi);
        sums
    });
}

/// Sparse matrix × four vectors: what SIMD128 lacks for one vector, a gather, four
/// vectors do not need. Their values of a column lie side by side in the interleaved
/// `x4`, so an entry is one load of four, one splat of its value, a multiply and an add
/// into its row's accumulator (lane `t`: vector `t`), where one vector takes a lane load
/// per entry. Each lane's products and sums are those of [`sell`], in the same order.
pub fn sell4(m: &Sell, x4: &[f32], y: &mut [f32]) {
    // A caller's error (`Csr::matmat` in `dkp_lstm` sizes both), reported as the scalar set would.
    assert!(x4.len() >= 4 * m.col_bound() && y.len().is_multiple_of(4), "sell4: x4 or y too short");
    super::sell_frame(m, x4, 4, y, |cols, vals, x4| {
        let mut acc = [f32x4_splat(0.0); SELL_LANES];
        for (c, v) in cols.chunks_exact(SELL_LANES).zip(vals.chunks_exact(SELL_LANES)) {
            for (l, acc) in acc.iter_mut().enumerate() {
                // SAFETY: every index plus col0 is below m.col_bound(), and the whole x4
                // holds 4·col_bound values (checked above), so the four values at 4·c[l]
                // of the part's x4 are inside it; no alignment requirement.
                let xv = unsafe { v128_load(x4.as_ptr().add(4 * c[l] as usize).cast()) };
                *acc = f32x4_add(*acc, f32x4_mul(f32x4_splat(v[l]), xv));
            }
        }
        acc.map(|a| {
            let mut sums = [0.0f32; 4];
            store(&mut sums, a);
            sums
        })
    });
}

/// `y += a·x`.
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    assert!(x.len() == y.len(), "axpy: x and y differ in length");
    let av = f32x4_splat(a);
    let mut yc = y.chunks_exact_mut(4);
    let mut xc = x.chunks_exact(4);
    for (y4, x4) in (&mut yc).zip(&mut xc) {
        store(y4, f32x4_add(load(y4), f32x4_mul(av, load(x4))));
    }
    scalar::axpy(a, xc.remainder(), yc.into_remainder());
}

/// Applies `f` to `v` four lanes at a time; the tail goes through a zero-padded copy
/// so that it sees exactly the same arithmetic.
#[inline(always)]
fn map4(v: &mut [f32], f: impl Fn(v128) -> v128) {
    let mut chunks = v.chunks_exact_mut(4);
    for c in &mut chunks {
        store(c, f(load(c)));
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut buf = [0.0f32; 4];
        buf[..tail.len()].copy_from_slice(tail);
        let out = f(load(&buf));
        store(&mut buf, out);
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// `exp(x)` for `x ≤ 0` (Cephes range reduction, see `kernels::cephes`); inputs below
/// `EXP_MIN` give the smallest normal number instead of a subnormal or zero.
///
/// Written for V8's code generation, which matters here (every token's log-softmax runs
/// this over the whole vocabulary): `f32x4.max` must order NaN and ±0 and costs about
/// seven x86 instructions where `pmax` is one `maxps`, and `i32x4.trunc_sat_f32x4_s`
/// costs about as many. So the clamp is a `pmax` (a NaN input stays NaN, as before) and
/// `n = round(x·log₂e)` is taken with the 1.5·2²³ shifter: adding it rounds to the nearest
/// integer (ties to even, as `f32x4.nearest`) and leaves `n` in the low mantissa bits,
/// from which 2ⁿ is built. The results are the same bits as with `nearest` and
/// `trunc_sat`, because `−126 ≤ n ≤ 0` is far inside the shifter's exact range.
#[inline(always)]
fn exp_nonpositive(x: v128) -> v128 {
    const SHIFTER: f32 = 12_582_912.0; // 1.5·2²³
    let x = f32x4_pmax(x, f32x4_splat(EXP_MIN));
    let shifted = f32x4_add(f32x4_mul(x, f32x4_splat(LOG2E)), f32x4_splat(SHIFTER));
    let n = f32x4_sub(shifted, f32x4_splat(SHIFTER));
    let r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(LN2_HI)));
    let r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(LN2_LO)));
    let mut p = f32x4_splat(EXP_P[0]);
    for &c in &EXP_P[1..] {
        p = f32x4_add(f32x4_mul(p, r), f32x4_splat(c));
    }
    let p = f32x4_add(f32x4_mul(p, f32x4_mul(r, r)), f32x4_add(r, f32x4_splat(1.0)));
    // 2ⁿ built in the exponent field: the shifter's bits minus its own are n; n ≥ −126,
    // so the biased exponent n + 127 stays ≥ 1.
    let bias = i32x4_splat(127 - SHIFTER.to_bits() as i32);
    let pow2n = i32x4_shl(i32x4_add(shifted, bias), 23);
    f32x4_mul(p, pow2n)
}

/// `1/(1+e^−x)` through `e = exp(−|x|)`, so that exp never overflows:
/// `σ(x) = 1/(1+e)` for `x ≥ 0` and `e/(1+e)` for `x < 0`.
#[inline(always)]
fn sigmoid4(x: v128) -> v128 {
    let e = exp_nonpositive(v128_or(x, f32x4_splat(-0.0)));
    let d = f32x4_div(f32x4_splat(1.0), f32x4_add(f32x4_splat(1.0), e));
    v128_bitselect(f32x4_mul(e, d), d, f32x4_lt(x, f32x4_splat(0.0)))
}

/// Cephes `tanhf`: an odd polynomial below `TANH_SMALL`, else `(1−e)/(1+e)` with
/// `e = exp(−2|x|)` and the sign of `x`.
#[inline(always)]
fn tanh4(x: v128) -> v128 {
    let sign = f32x4_splat(-0.0);
    let ax = f32x4_abs(x);
    let e = exp_nonpositive(f32x4_mul(ax, f32x4_splat(-2.0)));
    let one = f32x4_splat(1.0);
    let large = f32x4_div(f32x4_sub(one, e), f32x4_add(one, e));
    let large = v128_or(large, v128_and(x, sign));
    let z = f32x4_mul(x, x);
    let mut p = f32x4_splat(TANH_P[0]);
    for &c in &TANH_P[1..] {
        p = f32x4_add(f32x4_mul(p, z), f32x4_splat(c));
    }
    let small = f32x4_add(f32x4_mul(f32x4_mul(p, z), x), x);
    v128_bitselect(small, large, f32x4_lt(ax, f32x4_splat(TANH_SMALL)))
}

/// Logistic sigmoid in place.
pub fn sigmoid(v: &mut [f32]) {
    map4(v, sigmoid4);
}

/// Hyperbolic tangent in place.
pub fn tanh(v: &mut [f32]) {
    map4(v, tanh4);
}

/// Log-softmax in place, shifted by the maximum for stability.
pub fn log_softmax(v: &mut [f32]) {
    if v.is_empty() {
        return;
    }
    let mut chunks = v.chunks_exact(4);
    let mut m4 = f32x4_splat(f32::NEG_INFINITY);
    for c in &mut chunks {
        // `pmax`, one `maxps` (see `exp_nonpositive`); a NaN makes the sum NaN below.
        m4 = f32x4_pmax(m4, load(c));
    }
    let lanes = [
        f32x4_extract_lane::<0>(m4),
        f32x4_extract_lane::<1>(m4),
        f32x4_extract_lane::<2>(m4),
        f32x4_extract_lane::<3>(m4),
    ];
    let max = lanes.iter().chain(chunks.remainder()).copied().fold(f32::NEG_INFINITY, f32::max);
    let mv = f32x4_splat(max);
    let mut s4 = f32x4_splat(0.0);
    let mut chunks = v.chunks_exact(4);
    for c in &mut chunks {
        s4 = f32x4_add(s4, exp_nonpositive(f32x4_sub(load(c), mv)));
    }
    // The tail is padded with `max`, whose lanes are left out of the sum below.
    let tail = chunks.remainder();
    let mut buf = [max; 4];
    buf[..tail.len()].copy_from_slice(tail);
    let e = exp_nonpositive(f32x4_sub(load(&buf), mv));
    store(&mut buf, e);
    let sum = (f32x4_extract_lane::<0>(s4) + f32x4_extract_lane::<1>(s4))
        + (f32x4_extract_lane::<2>(s4) + f32x4_extract_lane::<3>(s4))
        + buf[..tail.len()].iter().sum::<f32>();
    // Two subtractions, as in `scalar::log_softmax` (precision near f32's range).
    let ln_sum = f32x4_splat(sum.ln());
    map4(v, |x| f32x4_sub(f32x4_sub(x, mv), ln_sum));
}
