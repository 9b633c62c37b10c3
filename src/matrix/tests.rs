//! Every weight kind against a naive dense reference.
//!
//! The reference is materialised in f64 straight from a matrix's parts (Kronecker
//! factors, low-rank factors, HMD blocks, CSR triplets), never through the code under test, and
//! the product `W·x` is taken in f64 too. Natively the reference uses ndarray and the
//! cases come from proptest; the wasm runs (`wasm_bindgen_test`) use the same checks on
//! seeded cases from `sample::Rng`, and a plain-loop reference.
//!
//! Tolerance of `y[r]` (and of a row entry) is `(cols + rank + 16)·ε·M[r]`, where
//! `M[r] = |y0[r]| + Σ_c |W|[r, c]·|x[c]|` with `|W|` built from the absolute values of
//! the parts: every path through the code (a Kronecker bracketing, U·(V·x), a CSR row,
//! a dense row) sums fewer than `cols + rank + 16` rounded terms of that magnitude, so
//! by the standard summation bound it cannot err by more, while any misplaced
//! or missing term shows up as an error of order `M[r]`. An int8 dense matrix's product
//! also quantises its input to 16 bits (per block, to its absmax), which adds at most half
//! a step `max|x| / 32 767` per term: `Σ_c |W|[r, c]·max|x| / 32 767` is allowed on top.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{Csr, Dense, DenseI8, Doped, Hmd, Kron, LowRank, MatVec, Matrix, Storage, WeightKind};
use crate::kernels::Kernels;
use crate::sample::Rng;

/// A row-major f64 matrix: the reference representation.
#[derive(Debug, Clone)]
struct Reference {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Reference {
    fn from_dense(d: &Dense) -> Reference {
        Reference { rows: d.rows(), cols: d.cols(), data: d.data().iter().map(|&v| v as f64).collect() }
    }

    fn from_csr(s: &Csr) -> Reference {
        let mut data = vec![0.0; s.rows() * s.cols()];
        for r in 0..s.rows() {
            for k in s.row_ptr()[r] as usize..s.row_ptr()[r + 1] as usize {
                data[r * s.cols() + s.col_idx()[k] as usize] += s.values()[k] as f64;
            }
        }
        Reference { rows: s.rows(), cols: s.cols(), data }
    }

    fn abs(&self) -> Reference {
        Reference { data: self.data.iter().map(|v| v.abs()).collect(), ..*self }
    }

    fn add(&self, o: &Reference) -> Reference {
        assert_eq!((self.rows, self.cols), (o.rows, o.cols));
        Reference { data: self.data.iter().zip(&o.data).map(|(a, b)| a + b).collect(), ..*self }
    }

    /// `self` above `below`.
    fn stack(&self, below: &Reference) -> Reference {
        assert_eq!(self.cols, below.cols);
        Reference { rows: self.rows + below.rows, cols: self.cols, data: [&self.data[..], &below.data].concat() }
    }

    fn row(&self, r: usize) -> &[f64] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod ops {
    //! The reference's linear algebra, by ndarray.
    use super::Reference;
    use ndarray::{Array1, Array2, ArrayView2};

    fn view(m: &Reference) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((m.rows, m.cols), &m.data).expect("consistent shape")
    }

    fn own(a: Array2<f64>) -> Reference {
        let (rows, cols) = a.dim();
        Reference { rows, cols, data: a.as_standard_layout().iter().copied().collect() }
    }

    pub fn kron(a: &Reference, b: &Reference) -> Reference {
        let (a, b) = (view(a), view(b));
        let (m2, n2) = b.dim();
        let mut out = Array2::zeros((a.nrows() * m2, a.ncols() * n2));
        for ((i, j), &v) in a.indexed_iter() {
            out.slice_mut(ndarray::s![i * m2..(i + 1) * m2, j * n2..(j + 1) * n2]).assign(&(&b * v));
        }
        own(out)
    }

    pub fn matmul(a: &Reference, b: &Reference) -> Reference {
        own(view(a).dot(&view(b)))
    }

    pub fn matvec(a: &Reference, x: &[f64]) -> Vec<f64> {
        view(a).dot(&Array1::from(x.to_vec())).to_vec()
    }
}

#[cfg(target_arch = "wasm32")]
mod ops {
    //! The reference's linear algebra, by plain loops (ndarray is a native-only dev-dependency).
    use super::Reference;

    pub fn kron(a: &Reference, b: &Reference) -> Reference {
        let (rows, cols) = (a.rows * b.rows, a.cols * b.cols);
        let mut data = vec![0.0; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                data[r * cols + c] = a.row(r / b.rows)[c / b.cols] * b.row(r % b.rows)[c % b.cols];
            }
        }
        Reference { rows, cols, data }
    }

    pub fn matmul(a: &Reference, b: &Reference) -> Reference {
        let mut data = vec![0.0; a.rows * b.cols];
        for r in 0..a.rows {
            for k in 0..a.cols {
                for c in 0..b.cols {
                    data[r * b.cols + c] += a.row(r)[k] * b.row(k)[c];
                }
            }
        }
        Reference { rows: a.rows, cols: b.cols, data }
    }

    pub fn matvec(a: &Reference, x: &[f64]) -> Vec<f64> {
        (0..a.rows).map(|r| a.row(r).iter().zip(x).map(|(w, v)| w * v).sum()).collect()
    }
}

/// `W` and `|W|` (entrywise bound on the magnitudes summed into each entry), from the parts.
fn reference(m: &Matrix) -> (Reference, Reference) {
    match m {
        Matrix::Dense(d) => {
            let w = Reference::from_dense(d);
            let abs = w.abs();
            (w, abs)
        }
        Matrix::DenseI8(d) => {
            let (rows, cols) = (d.rows(), d.cols());
            let data = (0..rows * cols).map(|i| d.absmax()[i / cols] as f64 * d.q()[i] as f64 / 127.0).collect();
            let w = Reference { rows, cols, data };
            let abs = w.abs();
            (w, abs)
        }
        Matrix::Kron(k) => {
            let (a, b) = (Reference::from_dense(k.a()), Reference::from_dense(k.b()));
            (ops::kron(&a, &b), ops::kron(&a.abs(), &b.abs()))
        }
        Matrix::LowRank(l) => {
            let (u, v) = (Reference::from_dense(l.u()), Reference::from_dense(l.v()));
            (ops::matmul(&u, &v), ops::matmul(&u.abs(), &v.abs()))
        }
        Matrix::Hmd(h) => {
            let d = Reference::from_dense(h.dense());
            let (u, v) = (Reference::from_dense(h.low_rank().u()), Reference::from_dense(h.low_rank().v()));
            (d.stack(&ops::matmul(&u, &v)), d.abs().stack(&ops::matmul(&u.abs(), &v.abs())))
        }
        Matrix::Sparse(s) => {
            let w = Reference::from_csr(s);
            let abs = w.abs();
            (w, abs)
        }
        Matrix::Doped(d) => {
            let (base, base_abs) = reference(d.base());
            let s = Reference::from_csr(d.s());
            (base.add(&s), base_abs.add(&s.abs()))
        }
    }
}

fn rank(m: &Matrix) -> usize {
    match m {
        Matrix::LowRank(l) => l.rank(),
        Matrix::Hmd(h) => h.rank(),
        Matrix::Doped(d) => rank(d.base()),
        _ => 0,
    }
}

/// Stored numbers and MACs computed from the parts, independently of the impls.
fn expected_cost(m: &Matrix) -> (Storage, usize) {
    match m {
        Matrix::Dense(d) => (Storage { values: d.rows() * d.cols(), indices: 0 }, d.rows() * d.cols()),
        Matrix::DenseI8(d) => (Storage { values: d.rows() * d.cols(), indices: 0 }, d.rows() * d.cols()),
        Matrix::Kron(k) => {
            let (m1, n1, m2, n2) = (k.a().rows(), k.a().cols(), k.b().rows(), k.b().cols());
            let macs = if k.a_first() { m1 * n2 * (n1 + m2) } else { n1 * m2 * (n2 + m1) };
            (Storage { values: m1 * n1 + m2 * n2, indices: 0 }, macs)
        }
        Matrix::LowRank(l) => {
            let n = l.rank() * (l.rows() + l.cols());
            (Storage { values: n, indices: 0 }, n)
        }
        Matrix::Hmd(h) => {
            let (d, r, rows, cols) = (h.dense_rows(), h.rank(), h.rows(), h.cols());
            let n = d * cols + r * (rows - d + cols);
            (Storage { values: n, indices: 0 }, n)
        }
        Matrix::Sparse(s) => (Storage { values: s.nnz(), indices: s.nnz() + s.rows() + 1 }, s.nnz()),
        Matrix::Doped(d) => {
            let (bs, bm) = expected_cost(d.base());
            let (ss, sm) = expected_cost(&Matrix::Sparse(d.s().clone()));
            (bs + ss, bm + sm)
        }
    }
}

/// Every check of one matrix: rows, matvec for every kernel set, storage, MACs.
fn check(m: &Matrix, rng: &mut Rng) {
    let (rows, cols) = (m.rows(), m.cols());
    let (w, abs) = reference(m);
    assert_eq!((w.rows, w.cols), (rows, cols), "{} shape", m.kind());
    let slack = (cols + rank(m) + 16) as f64 * f32::EPSILON as f64;

    let mut out = vec![f32::NAN; cols];
    for r in 0..rows {
        m.row(r, &mut out);
        for (c, (&got, &want)) in out.iter().zip(w.row(r)).enumerate() {
            let tol = slack * abs.row(r)[c];
            assert!((got as f64 - want).abs() <= tol, "{} {rows}x{cols} row {r} col {c}: {got} vs {want}", m.kind());
        }
    }

    let x: Vec<f32> = (0..cols).map(|_| rng.symmetric(1.0)).collect();
    let y0: Vec<f32> = (0..rows).map(|_| rng.symmetric(1.0)).collect();
    let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let wx = ops::matvec(&w, &x64);
    let bound = ops::matvec(&abs, &x64.iter().map(|v| v.abs()).collect::<Vec<_>>());
    let x_step = x64.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 32_767.0;
    let quantised =
        |r: usize| if matches!(m, Matrix::DenseI8(_)) { x_step * abs.row(r).iter().sum::<f64>() } else { 0.0 };
    for k in Kernels::available() {
        let mut y = y0.clone();
        // NaN scratch: matvec must write before it reads.
        let mut scratch = vec![f32::NAN; m.scratch_len()];
        m.matvec(&k, &x, &mut y, &mut scratch);
        for r in 0..rows {
            let want = y0[r] as f64 + wx[r];
            let tol = slack * (y0[r].abs() as f64 + bound[r]) + quantised(r);
            assert!(
                (y[r] as f64 - want).abs() <= tol,
                "{} {rows}x{cols} with {}: y[{r}] = {} vs {want} (tol {tol})",
                m.kind(),
                k.name,
                y[r]
            );
        }
    }

    // matmat gives each vector the bits matvec gives it alone (batched scoring relies on
    // it), for batches around the four that the sparse kernel takes at once.
    for k in Kernels::available() {
        for batch in [1, 3, 4, 5, 9] {
            let x: Vec<f32> = (0..batch * cols).map(|_| rng.symmetric(1.0)).collect();
            let y0: Vec<f32> = (0..batch * rows).map(|_| rng.symmetric(1.0)).collect();
            let mut scratch = vec![f32::NAN; m.scratch_len()];
            let mut want = y0.clone();
            if rows > 0 && cols > 0 {
                for (xt, yt) in x.chunks_exact(cols).zip(want.chunks_exact_mut(rows)) {
                    m.matvec(&k, xt, yt, &mut scratch);
                }
            }
            let mut got = y0.clone();
            scratch.fill(f32::NAN);
            m.matmat(&k, &x, &mut got, &mut scratch);
            let same = got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits());
            assert!(same, "{} {rows}x{cols} with {}: matmat of {batch} differs from matvec", m.kind(), k.name);
        }
    }

    let (storage, macs) = expected_cost(m);
    assert_eq!(m.storage(), storage, "{} storage", m.kind());
    assert_eq!(m.macs(), macs, "{} macs", m.kind());
    assert!(matches!(m, Matrix::Sparse(_) | Matrix::Doped(_)) || storage.indices == 0);
}

/// The parameters of one test matrix; shapes are products of factor sizes so that
/// every kind can take them, and include 1×n, n×1 and primes.
#[derive(Debug, Clone, Copy)]
struct Case {
    kind: WeightKind,
    m1: usize,
    n1: usize,
    m2: usize,
    n2: usize,
    rank: usize,
    density: f32,
    seed: u64,
}

const KINDS: [WeightKind; WeightKind::ALL.len()] = WeightKind::ALL;

fn dense(rng: &mut Rng, rows: usize, cols: usize) -> Dense {
    Dense::new(rows, cols, (0..rows * cols).map(|_| rng.symmetric(1.0)).collect()).expect("sized")
}

/// Each entry kept with probability `density`.
fn csr(rng: &mut Rng, rows: usize, cols: usize, density: f32) -> Csr {
    let full = dense(rng, rows, cols);
    Csr::from_dense_where(&full, |_, _, _| rng.uniform() < density)
}

fn build(c: Case) -> Matrix {
    let mut rng = Rng::new(c.seed);
    let (rows, cols) = (c.m1 * c.m2, c.n1 * c.n2);
    let kron = |rng: &mut Rng| Matrix::Kron(Kron::new(dense(rng, c.m1, c.n1), dense(rng, c.m2, c.n2)).expect("valid"));
    let low_rank = |rng: &mut Rng, rows: usize| LowRank::new(dense(rng, rows, c.rank), dense(rng, c.rank, cols));
    let low = |rng: &mut Rng| Matrix::LowRank(low_rank(rng, rows).expect("valid"));
    // Every split from all rows low rank to all rows dense, drawn from the seed.
    let dense_rows = c.seed as usize % (rows + 1);
    let hmd = |rng: &mut Rng| {
        let top = dense(rng, dense_rows, cols);
        Matrix::Hmd(Hmd::new(top, low_rank(rng, rows - dense_rows).expect("valid")).expect("valid"))
    };
    match c.kind {
        // An odd rank (which dense matrices do not use) holds the matrix in int8.
        WeightKind::Dense if c.rank % 2 == 1 => {
            Matrix::DenseI8(DenseI8::quantise(rows, cols, dense(&mut rng, rows, cols).data()))
        }
        WeightKind::Dense => Matrix::Dense(dense(&mut rng, rows, cols)),
        WeightKind::Kp => kron(&mut rng),
        WeightKind::Dkp => {
            let base = kron(&mut rng);
            Matrix::Doped(Doped::new(base, csr(&mut rng, rows, cols, c.density)).expect("same shape"))
        }
        WeightKind::LowRank => low(&mut rng),
        WeightKind::DLowRank => {
            let base = low(&mut rng);
            Matrix::Doped(Doped::new(base, csr(&mut rng, rows, cols, c.density)).expect("same shape"))
        }
        WeightKind::Sparse => Matrix::Sparse(csr(&mut rng, rows, cols, c.density)),
        WeightKind::Hmd => hmd(&mut rng),
        WeightKind::DHmd => {
            let base = hmd(&mut rng);
            Matrix::Doped(Doped::new(base, csr(&mut rng, rows, cols, c.density)).expect("same shape"))
        }
    }
}

fn run(c: Case) {
    let m = build(c);
    assert_eq!(m.kind(), c.kind);
    check(&m, &mut Rng::new(c.seed ^ 0x5eed));
}

/// Seeded cases, the same on every platform: the wasm runs' stand-in for proptest.
fn seeded_cases(n: u64) -> impl Iterator<Item = Case> {
    (0..n).map(|seed| {
        let mut rng = Rng::new(seed);
        let mut dim = |max: usize| 1 + rng.below(max);
        let (m1, n1, m2, n2, rank) = (dim(7), dim(7), dim(11), dim(11), dim(6) - 1);
        let density = [0.0, 1.0, rng.uniform()][rng.below(3)];
        Case { kind: KINDS[seed as usize % KINDS.len()], m1, n1, m2, n2, rank, density, seed }
    })
}

#[test]
fn seeded_matrices_of_every_kind_match_the_reference() {
    for c in seeded_cases(240) {
        run(c);
    }
}

#[test]
fn both_kronecker_bracketings_are_exercised() {
    // A·X first is cheaper when A is short and wide and B tall and narrow; the mirror
    // shapes force X·Bᵀ first. Both, doped and not, with primes and unit sides, and
    // with B narrow (multiplied by columns) and wide (by rows).
    for (a, b, a_first) in [
        ([2, 9], [9, 2], true),
        ([2, 3], [20, 9], true),
        ([9, 2], [2, 9], false),
        ([1, 7], [13, 1], true),
        ([7, 1], [1, 13], false),
        ([3, 11], [5, 2], true),
        ([11, 3], [2, 5], false),
    ] {
        let mut rng = Rng::new(a_first as u64);
        let k = Kron::new(dense(&mut rng, a[0], a[1]), dense(&mut rng, b[0], b[1])).expect("valid");
        assert_eq!(k.a_first(), a_first, "{a:?} ⊗ {b:?}");
        let (rows, cols) = (a[0] * b[0], a[1] * b[1]);
        let s = csr(&mut rng, rows, cols, 0.2);
        check(&Matrix::Kron(k.clone()), &mut rng);
        check(&Matrix::Doped(Doped::new(Matrix::Kron(k), s).expect("same shape")), &mut rng);
    }
}

#[test]
fn empty_and_degenerate_shapes() {
    let mut rng = Rng::new(9);
    for (rows, cols) in [(0, 0), (0, 3), (3, 0), (1, 1)] {
        check(&Matrix::Dense(dense(&mut rng, rows, cols)), &mut rng);
        check(&Matrix::Sparse(csr(&mut rng, rows, cols, 0.5)), &mut rng);
    }
    // Rank 0 and a Kronecker product with an empty factor.
    check(&Matrix::LowRank(LowRank::new(dense(&mut rng, 4, 0), dense(&mut rng, 0, 5)).expect("valid")), &mut rng);
    check(&Matrix::Kron(Kron::new(dense(&mut rng, 0, 2), dense(&mut rng, 3, 4)).expect("valid")), &mut rng);
    // HMD with every row dense, with none, and with rank 0 below one dense row.
    let low = |rng: &mut Rng, rows, rank| LowRank::new(dense(rng, rows, rank), dense(rng, rank, 3)).expect("valid");
    for (dense_rows, low_rows, rank) in [(4, 0, 2), (0, 4, 2), (1, 3, 0)] {
        let top = dense(&mut rng, dense_rows, 3);
        let h = Hmd::new(top, low(&mut rng, low_rows, rank)).expect("valid");
        check(&Matrix::Hmd(h), &mut rng);
    }
    let e = Hmd::new(dense(&mut rng, 2, 4), low(&mut rng, 2, 1)).unwrap_err();
    assert_eq!(e, "the dense block has 4 columns but the low-rank block 3");
}

#[test]
fn csr_rejects_broken_invariants() {
    let ok = |rp: &[u32], ci: &[u32], n: usize| Csr::new(2, 3, rp.to_vec(), ci.to_vec(), vec![1.0; n]);
    assert!(ok(&[0, 1, 2], &[2, 0], 2).is_ok());
    let cases: [(Result<Csr, String>, &str); 7] = [
        (ok(&[0, 1], &[0], 1), "row_ptr has 2 entries, expected 3"),
        (Csr::new(2, 3, vec![0, 1, 2], vec![0, 1], vec![1.0]), "2 column indices but 1 values"),
        (ok(&[1, 1, 2], &[0, 1], 2), "row_ptr[0] is 1"),
        (ok(&[0, 1, 3], &[0, 1], 2), "row_ptr[2] is 3 but there are 2 values"),
        (Csr::new(3, 3, vec![0, 2, 1, 2], vec![0, 1], vec![1.0; 2]), "not monotone at row 1"),
        (ok(&[0, 1, 2], &[0, 3], 2), "column index 3 at row 1 is out of range"),
        (ok(&[0, 2, 2], &[1, 0], 2), "column indices of row 0 are not strictly increasing"),
    ];
    for (result, expected) in cases {
        match result {
            Err(e) => assert!(e.contains(expected), "`{e}` should say `{expected}`"),
            Ok(m) => panic!("accepted {m:?}, expected an error saying `{expected}`"),
        }
    }
    // Duplicates are unsorted too.
    assert!(ok(&[0, 2, 2], &[1, 1], 2).unwrap_err().contains("row 0"));
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = Case> {
        // Sides 1..=7 and 1..=13 multiply into 1×n, n×1, primes and composite shapes.
        (0..KINDS.len(), 1..=7usize, 1..=7usize, 1..=13usize, 1..=13usize, 0..=6usize, 0.0f32..=1.0, any::<u64>())
            .prop_map(|(k, m1, n1, m2, n2, rank, density, seed)| Case {
                kind: KINDS[k],
                m1,
                n1,
                m2,
                n2,
                rank,
                density,
                seed,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn every_kind_matches_the_reference(c in case()) {
            run(c);
        }
    }
}

/// Kronecker sizes are checked in `usize`, which is 32 bits in WebAssembly: a product of
/// 2³² elements whose factors each fit must neither overflow nor be refused when the
/// cheaper bracketing needs little scratch, and 2³² rows are refused where they cannot
/// be addressed.
#[test]
fn kronecker_sizes_are_checked_in_usize() {
    let col = |n: usize| Dense::new(n, 1, vec![1.0; n]).expect("sized");
    let row = |n: usize| Dense::new(1, n, vec![1.0; n]).expect("sized");
    let k = Kron::new(col(1 << 16), row(1 << 16)).expect("65536x65536 is addressable");
    assert_eq!((k.rows(), k.cols(), k.scratch_len()), (1 << 16, 1 << 16, 2));
    let tall = Kron::new(col(1 << 16), col(1 << 16));
    assert_eq!(tall.is_err(), cfg!(target_pointer_width = "32"), "{tall:?}");
}
