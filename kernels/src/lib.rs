//! Hot loops behind one table of function pointers, one module per instruction set.
//!
//! The kernels of `dkp-lstm` (which re-exports this crate as `dkp_lstm::kernels`): a
//! crate of their own, so that a release build can optimise them for speed and the
//! rest of the runtime for size (the root `Cargo.toml`).
//!
//! The instruction set is picked once, when a model is loaded (`Kernels::best`), and
//! the table travels with the model. Every set implements the same contract as
//! [`scalar`], which is the specification and the test oracle. Kernels run loops
//! over slices whose lengths the caller has already checked, and each handles the
//! tails of its own vector width (a masked step, a padded buffer or a scalar loop:
//! any length is valid input); matrix structure (Kronecker reshapes, CSR
//! validation, the sparse layout's construction) lives in `dkp_lstm::matrix`.
#![deny(missing_docs)]

pub mod scalar;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub mod simd128;

#[cfg(target_arch = "x86_64")]
pub mod avx2;

/// Constants of the vectorised `exp` and `tanh` shared by the SIMD sets (Cephes
/// `expf`/`tanhf`, S. L. Moshier): `exp(x) = 2ⁿ·exp(r)` with `n = round(x·log₂e)`,
/// `r = x − n·ln 2` (ln 2 split in two so that `n·LN2_HI` is exact), and `exp(r)` on
/// `|r| ≤ ln2/2` by a degree-7 polynomial, within 2 ulp of the exact value. The
/// coefficients are Cephes' decimal constants rounded to the nearest f32.
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
#[allow(dead_code)] // each SIMD set uses the subset its instructions need
mod cephes {
    pub const LOG2E: f32 = std::f32::consts::LOG2_E;
    pub const LN2_HI: f32 = 0.693_359_4;
    pub const LN2_LO: f32 = -2.121_944_4e-4;
    /// `ln(f32::MIN_POSITIVE)`: below it `exp` is clamped to the smallest normal
    /// number rather than going subnormal (the callers only ever add it to ≥ 1).
    pub const EXP_MIN: f32 = -87.336_55;
    /// exp(r) ≈ 1 + r + r²·(P0·r⁵ + … + P5).
    pub const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_6e-1, 0.5];
    /// Below this `|x|`, tanh(x) ≈ x + x³·(T0·x⁸ + … + T4); above it, (1 − e)/(1 + e)
    /// with `e = exp(−2|x|)` has no cancellation.
    pub const TANH_SMALL: f32 = 0.625;
    /// Cephes `tanhf` odd polynomial on `|x| < 0.625`.
    pub const TANH_P: [f32; 5] = [-5.704_988_7e-3, 2.063_908_8e-2, -5.373_971_5e-2, 1.333_144_2e-1, -3.333_328e-1];
}

/// Rows per slice of a [`Sell`] matrix: one SIMD lane per row (eight f32 in AVX2, two
/// vectors of four in SIMD128).
pub const SELL_LANES: usize = 8;

/// Marks a lane of the last slice that holds no row.
pub const NO_ROW: u32 = u32::MAX;

/// Columns per part of a [`Sell`] matrix: its column indices are stored in 16 bits.
pub const SELL_PART_COLS: usize = 1 << 16;

/// A sparse matrix in the layout the sparse kernel reads: SELL-8 (sliced ELLPACK,
/// Kreutzer et al., *SIAM J. Sci. Comput.* 36(5), 2014), in parts of at most
/// [`SELL_PART_COLS`] columns, so that each column index takes two bytes: a doping
/// entry then streams six bytes instead of eight (the whole models' tokens 1.0–1.2x
/// faster in wasm than with u32 indices, docs/benchmarks.md). Every model
/// of the project has one part; wider matrices add one per 65 536 columns that hold
/// entries, each adding its rows' partial sums into `y`.
///
/// Every column index is below [`Sell::col_bound`], by construction: the SIMD kernels
/// load `x[col]` unchecked once they have checked `x.len() ≥ col_bound()` (wasm has no
/// gather, so a check or clamp per entry was a large part of the product's time).
#[derive(Debug, Clone, PartialEq)]
pub struct Sell {
    parts: Vec<SellPart>,
    col_bound: usize,
}

/// The columns `col0..col0 + 65 536` of a [`Sell`] matrix. Rows are grouped in slices
/// of [`SELL_LANES`]; slice `s` is `slice_ptr[s]..slice_ptr[s + 1]` steps, and step `t`
/// holds one entry of each of its rows, `values[8t + l]` at column `col0 + col_idx[8t + l]`
/// for lane `l`, zero-padded to the slice's longest row. Lane `l` of slice `s` adds its
/// sum into `y[rows[8s + l]]` (nothing for [`NO_ROW`], nor for a row beyond `y`).
#[derive(Debug, Clone, PartialEq)]
pub struct SellPart {
    col0: usize,
    slice_ptr: Vec<u32>,
    col_idx: Vec<u16>,
    values: Vec<f32>,
    rows: Vec<u32>,
}

impl Sell {
    /// The layout of the CSR matrix `(row_ptr, col_idx, values)` with `rows` rows, which
    /// must be valid (as `dkp_lstm::matrix::Csr::new` checks).
    pub fn from_csr(rows: usize, row_ptr: &[u32], col_idx: &[u32], values: &[f32]) -> Sell {
        // The bound is taken from the stored indices themselves, so it holds whatever
        // the caller passed.
        let col_bound = col_idx.iter().max().map_or(0, |&c| c as usize + 1);
        // One part for every 65 536 columns that hold entries (and one for a matrix without).
        // (Loops rather than iterator adaptors, here and in `SellPart::new`: this crate is
        // built for speed, and the adaptors unrolled cost the WebAssembly module 0.5 KB.)
        let mut parts = vec![];
        for p in 0..col_bound.div_ceil(SELL_PART_COLS).max(1) {
            let part = SellPart::new(p * SELL_PART_COLS, rows, row_ptr, col_idx, values);
            if p == 0 || part.slice_ptr.last() != Some(&0) {
                parts.push(part);
            }
        }
        Sell { parts, col_bound }
    }

    /// The parts, each covering 65 536 columns that hold entries.
    pub fn parts(&self) -> &[SellPart] {
        &self.parts
    }

    /// One more than the largest column index stored (0 without entries).
    pub fn col_bound(&self) -> usize {
        self.col_bound
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.parts.iter().map(SellPart::memory).sum()
    }
}

impl SellPart {
    /// The entries of the CSR matrix in columns `col0..col0 + 65 536`. Rows are sorted by
    /// length, longest first (stable), so that the rows of a slice are about as long as
    /// each other: the padding is then at most `SELL_LANES − 1` times the longest row in all
    /// (the slices' length differences telescope), rather than up to eight times the
    /// entries.
    fn new(col0: usize, rows: usize, row_ptr: &[u32], col_idx: &[u32], values: &[f32]) -> SellPart {
        // Entry k's column from col0, if it lies in this part.
        let local = |k: usize| u16::try_from((col_idx[k] as usize).wrapping_sub(col0)).ok();
        let entries = |r: usize| row_ptr[r] as usize..row_ptr[r + 1] as usize;
        let mut len = vec![0usize; rows];
        for (r, len) in len.iter_mut().enumerate() {
            for k in entries(r) {
                *len += local(k).is_some() as usize;
            }
        }
        // A counting sort by length: stable, linear, and no sort routine in the WebAssembly
        // module (a generic one costs it 3–6 KB).
        let longest = len.iter().copied().max().unwrap_or(0);
        let mut first = vec![0u32; longest + 2]; // where the rows of length `longest − i` start
        (0..rows).for_each(|r| first[longest - len[r] + 1] += 1);
        (1..first.len()).for_each(|i| first[i] += first[i - 1]);
        let mut order = vec![0u32; rows];
        for r in 0..rows {
            let slot = &mut first[longest - len[r]];
            order[*slot as usize] = r as u32;
            *slot += 1;
        }
        let slices = rows.div_ceil(SELL_LANES);
        let mut slice_ptr = Vec::with_capacity(slices + 1);
        slice_ptr.push(0u32);
        for s in 0..slices {
            // The first row of a slice is its longest; steps ≤ nnz, so u32 holds them.
            let longest = len[order[s * SELL_LANES] as usize] as u32;
            slice_ptr.push(slice_ptr[s] + longest);
        }
        let lanes = slice_ptr[slices] as usize * SELL_LANES;
        // Padding is column 0 of the part with value 0.
        let (mut cols, mut vals) = (vec![0u16; lanes], vec![0.0f32; lanes]);
        let mut out_rows = vec![NO_ROW; slices * SELL_LANES];
        for (i, &r) in order.iter().enumerate() {
            out_rows[i] = r;
            // The row's t-th entry goes to step t of its slice, in its lane.
            let mut at = slice_ptr[i / SELL_LANES] as usize * SELL_LANES + i % SELL_LANES;
            for k in entries(r as usize) {
                if let Some(c) = local(k) {
                    cols[at] = c;
                    vals[at] = values[k];
                    at += SELL_LANES;
                }
            }
        }
        SellPart { col0, slice_ptr, col_idx: cols, values: vals, rows: out_rows }
    }

    /// The first column: lane entries index `x[col0..]`.
    #[inline]
    pub fn col0(&self) -> usize {
        self.col0
    }

    /// The lane entries of slice `s`: `(columns from col0, values)`, `SELL_LANES` per step.
    #[inline]
    pub fn slice(&self, s: usize) -> (&[u16], &[f32]) {
        let (a, b) = (self.slice_ptr[s] as usize * SELL_LANES, self.slice_ptr[s + 1] as usize * SELL_LANES);
        (&self.col_idx[a..b], &self.values[a..b])
    }

    /// Slices.
    pub fn slices(&self) -> usize {
        self.slice_ptr.len().saturating_sub(1)
    }

    /// Bytes held.
    fn memory(&self) -> usize {
        4 * (self.slice_ptr.len() + self.values.len() + self.rows.len()) + 2 * self.col_idx.len()
    }

    /// Adds slice `s`'s lane sums for four vectors (`sums[l][t]`: lane `l`, vector `t`)
    /// into their rows of the four outputs `y` holds back to back. Not inlined: once per
    /// slice (a few thousand times a product) it costs nothing, and inlined and unrolled
    /// it cost the SIMD128 module a kilobyte.
    #[inline(never)]
    pub fn scatter4(&self, s: usize, sums: &[[f32; 4]; SELL_LANES], y: &mut [f32]) {
        let rows = y.len() / 4;
        for (&r, lane) in self.rows[s * SELL_LANES..(s + 1) * SELL_LANES].iter().zip(sums) {
            if (r as usize) < rows {
                for (t, &v) in lane.iter().enumerate() {
                    y[t * rows + r as usize] += v;
                }
            }
        }
    }

    /// Adds slice `s`'s lane sums into their rows of `y`.
    #[inline]
    pub fn scatter(&self, s: usize, sums: &[f32; SELL_LANES], y: &mut [f32]) {
        for (&r, &v) in self.rows[s * SELL_LANES..(s + 1) * SELL_LANES].iter().zip(sums) {
            if let Some(yr) = y.get_mut(r as usize) {
                *yr += v;
            }
        }
    }
}

/// The loop around a sparse kernel (the frame of [`Kernels::sell`] and
/// [`Kernels::sell4`]): every part, every slice; `slice(cols, vals, x)` gives a slice's
/// eight lane sums — of one vector (`[f32; 8]`) or of four (`[[f32; 4]; 8]`) — from its
/// entries and the part's `x` (`x[stride·col0..]`: `stride` values per column), which go
/// into their rows of `y`.
#[inline(always)]
pub(crate) fn sell_frame<S: LaneSums>(
    m: &Sell,
    x: &[f32],
    stride: usize,
    y: &mut [f32],
    slice: impl Fn(&[u16], &[f32], &[f32]) -> S,
) {
    for p in m.parts() {
        let x = &x[stride * p.col0()..];
        for s in 0..p.slices() {
            let (cols, vals) = p.slice(s);
            slice(cols, vals, x).scatter(p, s, y);
        }
    }
}

/// A slice's lane sums, for one vector or for four, and how they reach `y`.
pub(crate) trait LaneSums {
    /// Adds them into their rows of `y` (one output, or four back to back).
    fn scatter(&self, p: &SellPart, s: usize, y: &mut [f32]);
}

impl LaneSums for [f32; SELL_LANES] {
    #[inline(always)]
    fn scatter(&self, p: &SellPart, s: usize, y: &mut [f32]) {
        p.scatter(s, self, y)
    }
}

impl LaneSums for [[f32; 4]; SELL_LANES] {
    #[inline(always)]
    fn scatter(&self, p: &SellPart, s: usize, y: &mut [f32]) {
        p.scatter4(s, self, y)
    }
}

/// Columns per block of an int8 matrix–vector product ([`Kernels::gemm_q8`]). Each block
/// of activations is quantised on its own, and with `|q| ≤ 127`, `|x_q| ≤ 32 767` a
/// block's dot product and every partial sum of it stay below `512 · 127 · 32 767 < 2³¹`,
/// so the integer sums are exact in any order and every set gives the same bits.
pub const Q8_BLOCK: usize = 512;

/// The largest quantised activation: 16 bits, so that `i16 × i16 → i32` dot-product
/// instructions apply and activations add no error beside the weights' 8 bits.
const X_MAX: f32 = 32_767.0;

/// The largest stored int8 magnitude (`dkp_lstm::matrix::DenseI8`); `−128` is
/// rejected to keep the grid symmetric.
pub const Q_MAX: i8 = 127;

/// Vectors quantised at once by [`gemm_q8_frame`], into an 8 KB stack buffer that every
/// call zeroes: small enough to cost nothing next to one product, and a scoring window
/// of 32 vectors still reads the (int8) matrix only four times.
const Q8_GROUP: usize = 8;

/// An int8 row-major matrix as [`Kernels::gemm_q8`] reads it: `W[r, c] ≈ absmax[r] ·
/// q[r·n + c] / 127` (`dkp_lstm::matrix::DenseI8`).
#[derive(Debug, Clone, Copy)]
pub struct Q8<'a> {
    /// The integers, `−127..=127`, row-major.
    pub q: &'a [i8],
    /// Each row's absmax.
    pub absmax: &'a [f32],
}

/// Whether every value is finite: the scoring path's check of each row of logits. Here
/// rather than at its caller because this crate is built for speed, so the check
/// vectorises (a fold rather than `all`: no early exit).
pub fn all_finite(v: &[f32]) -> bool {
    v.iter().fold(true, |ok, x| ok & x.is_finite())
}

/// Quantises one block of activations to 16 bits with its absmax, and returns the
/// block's factor `absmax / (127 · 32 767)`: `x ≈ xq · absmax / 32 767`. A NaN or
/// infinite input makes the factor NaN, so it reaches the output instead of vanishing.
pub fn quantise_activations(x: &[f32], xq: &mut [i16]) -> f32 {
    // Not `f32::max`, which drops NaN: here a NaN sticks.
    let m = x.iter().fold(0.0f32, |m, &v| if v.abs() <= m || m.is_nan() { m } else { v.abs() });
    let unit = if m > 0.0 && m.is_finite() { X_MAX / m } else { 0.0 };
    for (q, &v) in xq.iter_mut().zip(x) {
        *q = (v * unit).round() as i16;
    }
    if m.is_finite() {
        m / (Q_MAX as f32 * X_MAX)
    } else {
        f32::NAN
    }
}

/// The frame of every set's `gemm_q8`, around its exact integer dot products of four
/// rows (`dot4`) and of one row (`dot1`) with a block of quantised activations. For each
/// group of vectors and block of columns it quantises the activations, then adds
/// `dot · (absmax[r] · factor)` into each output, blocks in column order; since the dots
/// are exact, the sets agree bit for bit.
#[inline(always)]
pub(crate) fn gemm_q8_frame(
    w: &Q8,
    x: &[f32],
    y: &mut [f32],
    batch: usize,
    dot4: impl Fn([&[i8]; 4], &[i16]) -> [i32; 4],
    dot1: impl Fn(&[i8], &[i16]) -> i32,
) {
    let Q8 { q, absmax } = *w;
    let Some((n, m)) = scalar::batch_shape(q.len(), x, y, batch) else { return };
    assert!(absmax.len() == m, "gemm_q8: one absmax per row");
    let mut xq = [0i16; Q8_GROUP * Q8_BLOCK];
    let mut factor = [0.0f32; Q8_GROUP];
    let (xs, ys) = (x.chunks(Q8_GROUP * n), y.chunks_mut(Q8_GROUP * m));
    for (xg, yg) in xs.zip(ys) {
        for c0 in (0..n).step_by(Q8_BLOCK) {
            let bl = Q8_BLOCK.min(n - c0);
            for ((xt, xqt), f) in xg.chunks_exact(n).zip(xq.chunks_exact_mut(bl)).zip(&mut factor) {
                *f = quantise_activations(&xt[c0..c0 + bl], xqt);
            }
            let block = |r: usize| &q[r * n + c0..r * n + c0 + bl];
            let full = m / 4 * 4;
            for r in (0..full).step_by(4) {
                let rows = [block(r), block(r + 1), block(r + 2), block(r + 3)];
                for ((xqt, &f), yt) in xq.chunks_exact(bl).zip(&factor).zip(yg.chunks_exact_mut(m)) {
                    let d = dot4(rows, xqt);
                    for k in 0..4 {
                        yt[r + k] += d[k] as f32 * (absmax[r + k] * f);
                    }
                }
            }
            for r in full..m {
                for ((xqt, &f), yt) in xq.chunks_exact(bl).zip(&factor).zip(yg.chunks_exact_mut(m)) {
                    yt[r] += dot1(block(r), xqt) as f32 * (absmax[r] * f);
                }
            }
        }
    }
}

/// A set of kernels for one instruction set.
///
/// Contracts (lengths are checked by callers in debug builds only):
/// - `gemv(w, x, y)`: `y[r] += Σ_c w[r·n + c]·x[c]` with `n = x.len()`, `w.len() = y.len()·n`;
/// - `gemm(w, x, y, t)`: `gemv` on each of `t` vectors at once, `x` holding `t` inputs of
///   length `n` and `y` `t` outputs of length `m` back to back (`w.len() = m·n`). Every
///   output is bit for bit what `gemv` gives for its vector alone (`gemv` is `gemm` with
///   one), so batching changes speed, never results; W is read once per call instead of
///   once per vector;
/// - `gemm_q8(w, x, y, t)`: `gemm` for an int8 matrix [`Q8`], as [`gemm_q8_frame`]
///   defines it: per block of [`Q8_BLOCK`] columns, activations quantised to 16 bits, an
///   exact integer dot product and one scale; every set gives the same bits;
/// - `axpy(a, x, y)`: `y[i] += a·x[i]`;
/// - `sell(m, x, y)`: `y += M·x` for a sparse [`Sell`] matrix, each row of each part
///   summed in the order of its entries (one lane, no reassociation) and added to `y`; `x` shorter than the matrix's
///   [`Sell::col_bound`] is a caller's error (every set then panics);
/// - `sell4(m, x4, y)`: `sell` on four vectors at once, each output bit for bit what
///   `sell` gives for its vector alone; `x4` holds them interleaved (`x4[4c + t]` is
///   vector `t`'s `x[c]`, so that one load reads an entry's column of all four) and `y`
///   the four outputs back to back; `x4` shorter than `4·col_bound` (or `y` not four
///   outputs) is a caller's error, as for `sell`;
/// - `sigmoid(v)`, `tanh(v)`: in place;
/// - `log_softmax(v)`: in place, `v[i] - ln Σ exp v[j]`.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// The instruction set's name: `scalar`, `simd128` or `avx2`.
    pub name: &'static str,
    /// Dense matrix × vector, accumulating.
    pub gemv: fn(w: &[f32], x: &[f32], y: &mut [f32]),
    /// Dense matrix × several vectors, accumulating.
    pub gemm: fn(w: &[f32], x: &[f32], y: &mut [f32], batch: usize),
    /// Int8 dense matrix × several vectors, accumulating.
    pub gemm_q8: fn(w: &Q8, x: &[f32], y: &mut [f32], batch: usize),
    /// `y += a·x`.
    pub axpy: fn(a: f32, x: &[f32], y: &mut [f32]),
    /// Sparse (SELL-8) matrix × vector, accumulating.
    pub sell: fn(m: &Sell, x: &[f32], y: &mut [f32]),
    /// Sparse (SELL-8) matrix × four interleaved vectors, accumulating.
    pub sell4: fn(m: &Sell, x4: &[f32], y: &mut [f32]),
    /// Logistic sigmoid in place.
    pub sigmoid: fn(v: &mut [f32]),
    /// Hyperbolic tangent in place.
    pub tanh: fn(v: &mut [f32]),
    /// Log-softmax in place.
    pub log_softmax: fn(v: &mut [f32]),
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernels").field("name", &self.name).finish()
    }
}

impl Kernels {
    /// The portable reference kernels.
    pub fn scalar() -> Kernels {
        scalar::KERNELS
    }

    /// The fastest set this build and this CPU support.
    pub fn best() -> Kernels {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        return simd128::KERNELS;
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = avx2::detect() {
            return k;
        }
        #[allow(unreachable_code)]
        scalar::KERNELS
    }

    /// Every set this build and this CPU can run, best last; used by tests and benches.
    pub fn available() -> Vec<Kernels> {
        #[allow(unused_mut)]
        let mut sets = vec![scalar::KERNELS];
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        sets.push(simd128::KERNELS);
        #[cfg(target_arch = "x86_64")]
        sets.extend(avx2::detect());
        sets
    }

    /// The set called `name`, if this build and CPU can run it.
    pub fn by_name(name: &str) -> Option<Kernels> {
        Kernels::available().into_iter().find(|k| k.name == name)
    }
}

#[cfg(test)]
mod tests;
