//! Conformance of every kernel set against the scalar specification.
//!
//! Every set in `Kernels::available()` (scalar included, as a check of the harness)
//! runs the same seeded inputs as `scalar`; runs natively and, through
//! `wasm_bindgen_test`, in both wasm builds.
//!
//! Tolerances are relative, and for sums rigorous error bounds rather than tuned
//! constants, so the tests cannot flake and still catch any dropped, doubled or
//! misplaced term (an error of the order of the terms themselves):
//! - sums (`gemv`, `sell`, `axpy`): with unit roundoff u = ε/2, a sum evaluated in
//!   chains of at most k additions errs by at most k·u·Σ|terms| (Higham, *Accuracy
//!   and Stability*, §4.2); two implementations therefore differ by at most
//!   k·ε·Σ|terms|. Scalar `gemv` keeps four accumulators (k ≤ n/4 + 8 counting the
//!   final reductions, the product and the add into y; the SIMD sets have shorter
//!   chains); for `sell` the bound takes k ≤ nnz + 8 for a row summed serially, as
//!   every set does (one lane per row).
//! - `sigmoid`, `tanh`: the SIMD sets use the Cephes polynomials (≤ 2 ulp for exp,
//!   one division), the scalar set libm; [`ACTIVATION_ULPS`]·ε relative to the
//!   scalar value (twice the worst error observed),
//!   plus `f32::MIN_POSITIVE` because SIMD `exp` flushes below it to the smallest
//!   normal number instead of a subnormal.
//! - `log_softmax`: `v[i] − (max + ln Σ e^(v−max))`: the sum carries the summation
//!   bound plus the exp error, which `ln` turns into an absolute error of the same size,
//!   and the two subtractions add an ulp of the operands each.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{scalar, Kernels, Sell};

/// The tests' seeded generator (SplitMix64, Steele et al. 2014): the kernels crate has
/// no dependencies, and any fixed stream of inputs will do.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in `[−a, a)`.
    fn symmetric(&mut self, a: f32) -> f32 {
        (2.0 * self.uniform() - 1.0) * a
    }

    /// In `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const EPS: f32 = f32::EPSILON;
/// Relative error allowed between two implementations of sigmoid or tanh, in units of
/// ε: twice the worst seen on `activation_inputs` (1.9 for sigmoid, 1.5 for tanh with AVX2).
const ACTIVATION_ULPS: f32 = 4.0;
/// Vector lengths: empty, below, at and around the 4- and 8-lane widths and their
/// multiples, and one long enough for the main loops to dominate.
const LENGTHS: [usize; 13] = [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 1000];
/// Matrix shapes `rows × cols`: degenerate, single row or column, every remainder
/// of 4 rows and 8/16 columns, primes.
const SHAPES: [(usize, usize); 14] = [
    (0, 0),
    (0, 5),
    (5, 0),
    (1, 1),
    (1, 17),
    (17, 1),
    (3, 7),
    (4, 8),
    (5, 9),
    (7, 33),
    (13, 16),
    (33, 15),
    (8, 1000),
    (101, 67),
];

fn random_vec(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.symmetric(scale)).collect()
}

fn sets() -> Vec<Kernels> {
    let sets = Kernels::available();
    assert_eq!(sets[0].name, "scalar", "the specification comes first");
    sets
}

/// `got[i]` within `tol(i)` of `want[i]`, with a message naming the set and place.
fn assert_close(set: &str, what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f32) {
    assert_eq!(got.len(), want.len(), "{set} {what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let t = tol(i);
        assert!((g - w).abs() <= t, "{set} {what}[{i}]: got {g}, want {w} (|diff| {} > tol {t})", (g - w).abs());
    }
}

#[test]
fn best_is_the_fastest_set_compiled_in() {
    let best = Kernels::best();
    let expected = if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        "simd128"
    } else if Kernels::available().iter().any(|k| k.name == "avx2") {
        "avx2"
    } else {
        "scalar"
    };
    assert_eq!(best.name, expected);
    assert_eq!(Kernels::available().last().map(|k| k.name), Some(expected), "best comes last");
    assert_eq!(Kernels::by_name(expected).map(|k| k.name), Some(expected));
    assert!(Kernels::by_name("no-such-set").is_none());
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        expected == "avx2",
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        "avx2 is offered exactly when the CPU has AVX2 and FMA"
    );
}

/// The guard a test script relies on when it forces a set with `DKP_KERNELS`: the
/// run must fail rather than silently exercise another set.
#[test]
fn requested_set_is_the_one_used() {
    if let Ok(name) = std::env::var("DKP_KERNELS") {
        if !name.is_empty() {
            let used = Kernels::by_name(&name).map(|k| k.name);
            assert_eq!(used, Some(name.as_str()), "DKP_KERNELS={name} asks for a set this build or CPU lacks");
        }
    }
    let names: Vec<_> = Kernels::available().iter().map(|k| k.name).collect();
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "set {n} listed twice");
    }
}

#[test]
fn gemv_matches_scalar() {
    let mut rng = Rng::new(1);
    for (rows, cols) in SHAPES.into_iter().chain(LENGTHS.map(|n| (n % 7 + 1, n))) {
        let w = random_vec(&mut rng, rows * cols, 1.0);
        let x = random_vec(&mut rng, cols, 1.0);
        let y0 = random_vec(&mut rng, rows, 1.0);
        let mut want = y0.clone();
        scalar::gemv(&w, &x, &mut want);
        let magnitude = |r: usize| {
            y0[r].abs() + w[r * cols..(r + 1) * cols].iter().zip(&x).map(|(a, b)| (a * b).abs()).sum::<f32>()
        };
        for k in sets() {
            let mut got = y0.clone();
            (k.gemv)(&w, &x, &mut got);
            let what = format!("gemv {rows}x{cols}");
            assert_close(k.name, &what, &got, &want, |r| (cols as f32 / 4.0 + 8.0) * EPS * magnitude(r));
        }
    }
}

/// Batching changes speed, never results: each output of `gemm` is bit for bit what
/// the same set's `gemv` gives for that vector alone, for every shape and batch size
/// (including none).
#[test]
fn gemm_is_gemv_on_each_vector() {
    let mut rng = Rng::new(2);
    for (rows, cols) in SHAPES {
        for batch in [0, 1, 2, 3, 5] {
            let w = random_vec(&mut rng, rows * cols, 1.0);
            let x = random_vec(&mut rng, batch * cols, 1.0);
            let y0 = random_vec(&mut rng, batch * rows, 1.0);
            for k in sets() {
                let mut got = y0.clone();
                (k.gemm)(&w, &x, &mut got, batch);
                for t in 0..batch {
                    let mut want = y0[t * rows..(t + 1) * rows].to_vec();
                    (k.gemv)(&w, &x[t * cols..(t + 1) * cols], &mut want);
                    let got = &got[t * rows..(t + 1) * rows];
                    let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                    assert!(same, "{} gemm {rows}x{cols}, vector {t} of {batch}: {got:?} vs gemv {want:?}", k.name);
                }
            }
        }
    }
}

/// Random int8 rows: symmetric integers with a few at the ends of the range, and row
/// absmaxes of several magnitudes (zero included).
fn random_q8(rng: &mut Rng, rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let q = (0..rows * cols).map(|_| [127, -127, rng.below(255) as i8 ^ -128][rng.below(3).min(2)]).collect();
    let absmax =
        (0..rows).map(|r| if r % 7 == 3 { 0.0 } else { rng.uniform() * 10f32.powi(r as i32 % 5 - 2) }).collect();
    (q, absmax)
}

/// `gemm_q8` of every set gives the scalar set's bits (its dot products are exact
/// integers), on every shape and batch, for `gemv`-like single vectors too, with
/// columns beyond one block (`Q8_BLOCK`), and at the extremes of both ranges, where
/// an overflowing sum would show.
#[test]
fn gemm_q8_matches_scalar_bit_for_bit() {
    use super::Q8_BLOCK;
    let mut rng = Rng::new(5);
    let shapes = SHAPES.into_iter().chain([(5, Q8_BLOCK), (6, Q8_BLOCK + 17), (9, 3 * Q8_BLOCK - 1)]);
    for (rows, cols) in shapes {
        for batch in [0, 1, 2, 5, 33] {
            let (mut q, absmax) = random_q8(&mut rng, rows, cols);
            let mut x = random_vec(&mut rng, batch * cols, 1.0);
            if batch == 2 {
                // Worst case for the sums: every product at ±127 · 32 767, one sign.
                q.iter_mut().for_each(|v| *v = 127);
                x.iter_mut().for_each(|v| *v = 0.5);
            }
            let y0 = random_vec(&mut rng, batch * rows, 1.0);
            let mut want = y0.clone();
            let w = super::Q8 { q: &q, absmax: &absmax };
            scalar::gemm_q8(&w, &x, &mut want, batch);
            for k in sets() {
                let mut got = y0.clone();
                (k.gemm_q8)(&w, &x, &mut got, batch);
                let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "{} gemm_q8 {rows}x{cols} batch {batch}: {got:?} vs {want:?}", k.name);
                for t in 0..batch.min(3) {
                    let mut one = y0[t * rows..(t + 1) * rows].to_vec();
                    (k.gemm_q8)(&w, &x[t * cols..(t + 1) * cols], &mut one, 1);
                    assert_eq!(one, &got[t * rows..(t + 1) * rows], "{} gemm_q8 vector {t} alone", k.name);
                }
            }
            // Against the exact product of the quantised weights with x: the only error is
            // the activations' 16-bit rounding (half a step per term) and f32 rounding.
            for t in 0..batch {
                for r in 0..rows {
                    let row = &q[r * cols..(r + 1) * cols];
                    let xt = &x[t * cols..(t + 1) * cols];
                    let w = |c: usize| absmax[r] as f64 * row[c] as f64 / 127.0;
                    let exact: f64 = (0..cols).map(|c| w(c) * xt[c] as f64).sum();
                    let mut tol = 1e-6 * (y0[t * rows + r].abs() as f64);
                    for (b, block) in xt.chunks(Q8_BLOCK).enumerate() {
                        let step = block.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64 / 32_767.0;
                        tol += (0..block.len())
                            .map(|c| w(b * Q8_BLOCK + c).abs() * (step + 1e-6 * xt[b * Q8_BLOCK + c].abs() as f64))
                            .sum::<f64>();
                    }
                    let got = want[t * rows + r] as f64 - y0[t * rows + r] as f64;
                    assert!(
                        (got - exact).abs() <= tol,
                        "gemm_q8 {rows}x{cols} vector {t} row {r}: {got} vs {exact} (tol {tol})"
                    );
                }
            }
        }
    }
}

/// A NaN or infinite activation reaches the outputs it feeds instead of being quantised away.
#[test]
fn gemm_q8_propagates_non_finite_inputs() {
    for bad in [f32::NAN, f32::INFINITY] {
        let x = [0.5, bad, -0.25];
        for k in sets() {
            let mut y = [0.0; 2];
            (k.gemm_q8)(&super::Q8 { q: &[1, 2, 3, 4, 5, 6], absmax: &[1.0, 1.0] }, &x, &mut y, 1);
            assert!(y.iter().all(|v| v.is_nan()), "{} with {bad}: {y:?}", k.name);
        }
    }
}

#[test]
fn axpy_matches_scalar() {
    let mut rng = Rng::new(2);
    for n in LENGTHS {
        let a = rng.symmetric(2.0);
        let x = random_vec(&mut rng, n, 1.0);
        let y0 = random_vec(&mut rng, n, 1.0);
        let mut want = y0.clone();
        scalar::axpy(a, &x, &mut want);
        for k in sets() {
            let mut got = y0.clone();
            (k.axpy)(a, &x, &mut got);
            // One product and one sum, fused or not: 2 roundings of the operands' size.
            assert_close(k.name, &format!("axpy n={n}"), &got, &want, |i| 2.0 * EPS * (y0[i].abs() + (a * x[i]).abs()));
        }
    }
}

/// A random CSR matrix with about `density·cols` entries per row; every row length
/// from 0 up occurs, so the kernels' unrolled loops meet every remainder.
fn random_csr(rng: &mut Rng, rows: usize, cols: usize, density: f32) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let (mut row_ptr, mut col_idx, mut values) = (vec![0u32], vec![], vec![]);
    for _ in 0..rows {
        for c in 0..cols {
            if rng.uniform() < density {
                col_idx.push(c as u32);
                values.push(rng.symmetric(1.0));
            }
        }
        row_ptr.push(values.len() as u32);
    }
    (row_ptr, col_idx, values)
}

#[test]
fn sell_matches_scalar() {
    let mut rng = Rng::new(3);
    for (rows, cols) in SHAPES {
        for density in [0.0, 0.05, 0.3, 1.0] {
            let (row_ptr, col_idx, values) = random_csr(&mut rng, rows, cols, density);
            let m = Sell::from_csr(rows, &row_ptr, &col_idx, &values);
            let x = random_vec(&mut rng, cols, 1.0);
            let y0 = random_vec(&mut rng, rows, 1.0);
            let mut want = y0.clone();
            scalar::sell(&m, &x, &mut want);
            let range = |r: usize| row_ptr[r] as usize..row_ptr[r + 1] as usize;
            let magnitude =
                |r: usize| y0[r].abs() + range(r).map(|k| (values[k] * x[col_idx[k] as usize]).abs()).sum::<f32>();
            // The specification itself: every row is its CSR sum, whatever its slice.
            let exact: Vec<f64> = (0..rows)
                .map(|r| y0[r] as f64 + range(r).map(|k| values[k] as f64 * x[col_idx[k] as usize] as f64).sum::<f64>())
                .collect();
            for (r, (&w, &e)) in want.iter().zip(&exact).enumerate() {
                let tol = (range(r).len() as f32 + 2.0) * EPS * magnitude(r);
                assert!((w as f64 - e).abs() <= tol as f64, "scalar sell {rows}x{cols} row {r}: {w} vs {e}");
            }
            for k in sets() {
                let mut got = y0.clone();
                (k.sell)(&m, &x, &mut got);
                let what = format!("sell {rows}x{cols} density {density}");
                assert_close(k.name, &what, &got, &want, |r| (range(r).len() as f32 + 8.0) * EPS * magnitude(r));
            }
        }
    }
}

/// Four vectors interleaved as `sell4` reads them: `x4[4c + t] = xs[t][c]`.
fn interleave4(xs: &[Vec<f32>]) -> Vec<f32> {
    (0..xs[0].len()).flat_map(|c| xs.iter().map(move |x| x[c])).collect()
}

/// `sell4` of every set gives each of its four vectors the bits that set's `sell` gives
/// that vector alone (the batched scoring path relies on it), on every shape and
/// density, and the scalar set's `sell4` agrees with the scalar `sell` likewise.
#[test]
fn sell4_matches_sell_bit_for_bit() {
    let mut rng = Rng::new(6);
    for (rows, cols) in SHAPES {
        for density in [0.0, 0.05, 0.3, 1.0] {
            let (row_ptr, col_idx, values) = random_csr(&mut rng, rows, cols, density);
            let m = Sell::from_csr(rows, &row_ptr, &col_idx, &values);
            let xs: Vec<Vec<f32>> = (0..4).map(|_| random_vec(&mut rng, cols, 1.0)).collect();
            let y0 = random_vec(&mut rng, 4 * rows, 1.0);
            for k in sets() {
                let mut want = y0.clone();
                for (x, y) in xs.iter().zip(want.chunks_exact_mut(rows.max(1))) {
                    (k.sell)(&m, x, &mut y[..rows]);
                }
                let mut got = y0.clone();
                (k.sell4)(&m, &interleave4(&xs), &mut got);
                let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
                assert!(same, "{} sell4 {rows}x{cols} density {density}: {got:?} vs {want:?}", k.name);
            }
        }
    }
}

#[test]
fn sell_reads_no_column_beyond_its_bound() {
    // 3×6 with nothing in columns 4 and 5: the layout's bound is 4, so every set may be
    // given exactly four values of x (the SIMD sets' loads are unchecked below it).
    let m = Sell::from_csr(3, &[0, 2, 2, 4], &[0, 3, 1, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.col_bound(), 4);
    let x = [1.0, 10.0, 100.0, 1000.0];
    for k in sets() {
        let mut y = [0.5; 3];
        (k.sell)(&m, &x, &mut y);
        assert_eq!(y, [2001.5, 0.5, 430.5], "{}", k.name);
        let mut y4 = [0.5; 12];
        (k.sell4)(&m, &interleave4(&[x.to_vec(), x.to_vec(), x.to_vec(), x.to_vec()]), &mut y4);
        assert_eq!(y4, [2001.5, 0.5, 430.5].repeat(4).as_slice(), "{} sell4", k.name);
    }
    let empty = Sell::from_csr(2, &[0, 0, 0], &[], &[]);
    assert_eq!(empty.col_bound(), 0);
    for k in sets() {
        let mut y = [1.0; 2];
        (k.sell)(&empty, &[], &mut y);
        assert_eq!(y, [1.0; 2], "{}", k.name);
    }
}

#[test]
fn sell_splits_wide_matrices_into_parts_of_16_bit_columns() {
    // 5 rows × 200 000 columns: entries in parts 0, 1 and 3 (none in columns 131 072 to
    // 196 607), rows reaching across parts, a row with none; every set against the
    // CSR sums, which each part's partial sum reproduces exactly here (small integers).
    let entries: [&[(u32, f32)]; 5] = [
        &[(0, 1.0), (65_535, 2.0), (65_536, 3.0), (199_999, 4.0)],
        &[],
        &[(70_000, 5.0), (131_071, 6.0)],
        &[(196_608, 7.0), (3, 8.0)],
        &[(65_535, 9.0)],
    ];
    let mut row_ptr = vec![0u32];
    let (mut col_idx, mut values) = (vec![], vec![]);
    for row in entries {
        col_idx.extend(row.iter().map(|e| e.0));
        values.extend(row.iter().map(|e| e.1));
        row_ptr.push(values.len() as u32);
    }
    let m = Sell::from_csr(5, &row_ptr, &col_idx, &values);
    assert_eq!(m.col_bound(), 200_000);
    assert_eq!(m.parts().iter().map(|p| p.col0()).collect::<Vec<_>>(), [0, 65_536, 196_608]);
    let x: Vec<f32> = (0..200_000).map(|c| (c % 7) as f32 - 3.0).collect();
    let want: Vec<f32> =
        entries.iter().map(|row| 0.5 + row.iter().map(|&(c, v)| v * x[c as usize]).sum::<f32>()).collect();
    let xs = [x.clone(), x.iter().map(|v| -v).collect(), x.iter().map(|v| 2.0 * v).collect(), vec![0.0; 200_000]];
    let x4 = interleave4(&xs);
    for k in sets() {
        let mut y = [0.5; 5];
        (k.sell)(&m, &x, &mut y);
        assert_eq!(y.as_slice(), want.as_slice(), "{}", k.name);
        let mut y4 = [0.5; 20];
        (k.sell4)(&m, &x4, &mut y4);
        let want4: Vec<f32> =
            [1.0, -1.0, 2.0, 0.0].iter().flat_map(|&f| want.iter().map(move |w| 0.5 + f * (w - 0.5))).collect();
        assert_eq!(y4.as_slice(), want4.as_slice(), "{} sell4", k.name);
    }
}

/// Inputs for the activations: random values of several scales at every length,
/// then a sweep over [−100, 100] with the polynomial boundaries, zero, tiny values
/// and the exp underflow threshold spelled out.
fn activation_inputs() -> Vec<Vec<f32>> {
    let mut rng = Rng::new(4);
    let mut inputs: Vec<Vec<f32>> =
        LENGTHS.iter().flat_map(|&n| [0.01, 1.0, 30.0].map(|s| random_vec(&mut rng, n, s))).collect();
    let mut sweep: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 0.005).collect();
    for special in [0.0, 1e-30, 1e-6, 0.624_999_9, 0.625, 0.625_000_1, 9.0, 44.0, 87.3, 87.4, 88.8, 1e4] {
        sweep.extend([special, -special]);
    }
    inputs.push(sweep);
    inputs
}

fn check_activation(name: &str, f: fn(&Kernels) -> fn(&mut [f32]), spec: fn(&mut [f32])) {
    for input in activation_inputs() {
        let mut want = input.clone();
        spec(&mut want);
        for k in sets() {
            let mut got = input.clone();
            f(&k)(&mut got);
            let what = format!("{name} n={}", input.len());
            assert_close(k.name, &what, &got, &want, |i| ACTIVATION_ULPS * EPS * want[i].abs() + f32::MIN_POSITIVE);
        }
    }
}

#[test]
fn sigmoid_matches_scalar() {
    check_activation("sigmoid", |k| k.sigmoid, scalar::sigmoid);
}

#[test]
fn tanh_matches_scalar() {
    check_activation("tanh", |k| k.tanh, scalar::tanh);
}

#[test]
fn log_softmax_matches_scalar() {
    let mut rng = Rng::new(5);
    let mut inputs: Vec<Vec<f32>> =
        LENGTHS.iter().flat_map(|&n| [0.1, 5.0, 50.0].map(|s| random_vec(&mut rng, n, s))).collect();
    // A vocabulary-sized vector, and one dominated by a single logit.
    inputs.push(random_vec(&mut rng, 10_000, 10.0));
    inputs.push((0..77).map(|i| if i == 40 { 100.0 } else { -(i as f32) }).collect());
    for input in inputs {
        let n = input.len() as f32;
        let max = input.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut want = input.clone();
        scalar::log_softmax(&mut want);
        for k in sets() {
            let mut got = input.clone();
            (k.log_softmax)(&mut got);
            let what = format!("log_softmax n={n}");
            assert_close(k.name, &what, &got, &want, |i| {
                EPS * ((n + 8.0 + 2.0 * ACTIVATION_ULPS) + 2.0 * (input[i].abs() + max.abs() + want[i].abs()))
            });
        }
    }
}

#[test]
fn activations_keep_their_ranges() {
    // Beyond closeness: sigmoid in [0, 1], tanh in [−1, 1] and odd, log-softmax ≤ 0
    // and normalised, for every set (properties a polynomial can break at the edges).
    for k in sets() {
        for input in activation_inputs() {
            let (mut s, mut t) = (input.clone(), input.clone());
            (k.sigmoid)(&mut s);
            (k.tanh)(&mut t);
            assert!(s.iter().all(|v| (0.0..=1.0).contains(v)), "{}: sigmoid out of [0, 1]", k.name);
            assert!(t.iter().all(|v| (-1.0..=1.0).contains(v)), "{}: tanh out of [-1, 1]", k.name);
            let mut neg: Vec<f32> = input.iter().map(|x| -x).collect();
            (k.tanh)(&mut neg);
            assert!(neg.iter().zip(&t).all(|(a, b)| *a == -*b), "{}: tanh is not odd", k.name);
            let mut l = input.clone();
            (k.log_softmax)(&mut l);
            if !l.is_empty() {
                let total: f32 = l.iter().map(|v| v.exp()).sum();
                assert!(l.iter().all(|&v| v <= 1e-6) && (total - 1.0).abs() < 1e-3, "{}: log_softmax {total}", k.name);
            }
        }
    }
}
