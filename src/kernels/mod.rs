//! Hot loops behind one table of function pointers, one module per instruction set.
//!
//! The instruction set is picked once, when a model is loaded (`Kernels::best`), and
//! the table travels with the model. Every set implements the same contract as
//! [`scalar`], which is the specification and the test oracle. Kernels run loops
//! over slices whose lengths the caller has already checked, and each handles the
//! tails of its own vector width (a masked step, a padded buffer or a scalar loop:
//! any length is valid input); matrix structure (Kronecker reshapes, CSR
//! validation, the sparse layout's construction) lives in `crate::matrix`.

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

/// A sparse matrix in the layout the sparse kernel reads: SELL-8 (sliced ELLPACK,
/// Kreutzer et al., *SIAM J. Sci. Comput.* 36(5), 2014). Rows are grouped in slices of
/// [`SELL_LANES`]; slice `s` is `slice_ptr[s]..slice_ptr[s + 1]` steps, and step `t`
/// holds one entry of each of its rows, `values[8t + l]` at column `col_idx[8t + l]`
/// for lane `l`, zero-padded to the slice's longest row. Lane `l` of slice `s` adds its
/// sum into `y[rows[8s + l]]` (nothing for [`NO_ROW`]). Built and validated by
/// `crate::matrix::Csr`: columns `< x.len()`, rows `< y.len()` or `NO_ROW`.
#[derive(Debug, Clone, Copy)]
pub struct Sell<'a> {
    /// Step offsets of the slices (`slices + 1`, non-decreasing, from 0).
    pub slice_ptr: &'a [u32],
    /// Column of every lane of every step.
    pub col_idx: &'a [u32],
    /// Value of every lane of every step (0 for padding).
    pub values: &'a [f32],
    /// Output row of every lane of every slice.
    pub rows: &'a [u32],
}

impl Sell<'_> {
    /// The lane entries of slice `s`: `(columns, values)`, `SELL_LANES` per step.
    #[inline]
    pub fn slice(&self, s: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.slice_ptr[s] as usize * SELL_LANES, self.slice_ptr[s + 1] as usize * SELL_LANES);
        (&self.col_idx[a..b], &self.values[a..b])
    }

    /// Slices.
    pub fn slices(&self) -> usize {
        self.slice_ptr.len().saturating_sub(1)
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

/// A set of kernels for one instruction set.
///
/// Contracts (lengths are checked by callers in debug builds only):
/// - `gemv(w, x, y)`: `y[r] += Σ_c w[r·n + c]·x[c]` with `n = x.len()`, `w.len() = y.len()·n`;
/// - `gemm(w, x, y, t)`: `gemv` on each of `t` vectors at once, `x` holding `t` inputs of
///   length `n` and `y` `t` outputs of length `m` back to back (`w.len() = m·n`). Every
///   output is bit for bit what `gemv` gives for its vector alone (`gemv` is `gemm` with
///   one), so batching changes speed, never results; W is read once per call instead of
///   once per vector;
/// - `axpy(a, x, y)`: `y[i] += a·x[i]`;
/// - `sell(m, x, y)`: `y += M·x` for a sparse [`Sell`] matrix, each row summed in the
///   order of its entries (one lane, no reassociation), indices already validated;
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
    /// `y += a·x`.
    pub axpy: fn(a: f32, x: &[f32], y: &mut [f32]),
    /// Sparse (SELL-8) matrix × vector, accumulating.
    pub sell: fn(m: &Sell, x: &[f32], y: &mut [f32]),
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

    /// `best()`, unless the environment variable `DKP_KERNELS` names another set
    /// (native builds only). An unknown or unavailable name is an error, so that a
    /// test run that asked for a set cannot silently run another.
    pub fn from_env() -> crate::Result<Kernels> {
        match std::env::var("DKP_KERNELS") {
            Ok(name) if !name.is_empty() => Kernels::by_name(&name).ok_or_else(|| crate::Error::InvalidArgument {
                name: "DKP_KERNELS",
                reason: format!(
                    "kernel set `{name}` is not available here (available: {})",
                    Kernels::available().iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            }),
            _ => Ok(Kernels::best()),
        }
    }
}

#[cfg(test)]
mod tests;
