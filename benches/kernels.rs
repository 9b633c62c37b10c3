//! Native criterion benchmarks: kernel sets, every weight kind at the size of a
//! medium PTB LSTM layer (2600×1300), and whole `Session` steps. See
//! `docs/benchmarks.md` for the commands and the numbers.

// Criterion is a native-only dev-dependency; the wasm build of this target (made by
// `cargo clippy --all-targets --target wasm32-unknown-unknown`) is an empty program.
#[cfg(not(target_arch = "wasm32"))]
criterion::criterion_main!(native::benches);
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{black_box, criterion_group, BenchmarkId, Criterion};
    use dkp_lstm::matrix::DenseI8;
    use dkp_lstm::plan::{self, Accounting, Plan};
    use dkp_lstm::random::{random_matrix, random_model, RandomSpec};
    use dkp_lstm::sample::Rng;
    use dkp_lstm::{Kernels, MatVec, Matrix, Session, WeightKind};
    use std::time::Duration;

    /// The fused gate matrix of a 650-hidden LSTM layer: 4H × (I + H).
    const ROWS: usize = 2600;
    const COLS: usize = 1300;

    fn random_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.symmetric(1.0)).collect()
    }

    /// `y = W·x` with a reused scratch buffer, as a session does it.
    fn bench_matvec(c: &mut Criterion, group: &str, m: &Matrix, sets: &[Kernels]) {
        let mut rng = Rng::new(7);
        let x = random_vec(&mut rng, m.cols());
        let mut y = vec![0.0; m.rows()];
        let mut scratch = vec![0.0; m.scratch_len()];
        let mut g = c.benchmark_group(group);
        for k in sets {
            g.bench_function(BenchmarkId::from_parameter(k.name), |b| {
                b.iter(|| {
                    y.fill(0.0);
                    m.matvec(k, black_box(&x), &mut y, &mut scratch);
                    black_box(&y);
                })
            });
        }
        g.finish();
    }

    fn kinds(c: &mut Criterion) {
        let sets = Kernels::available();
        let mut rng = Rng::new(1);
        let dense = random_matrix(Plan::Dense, ROWS, COLS, &mut rng);
        bench_matvec(c, "dense_2600x1300", &dense, &sets);
        // The same matrix held in int8 (`gemm_q8`), and the output layer's shape in both.
        let int8 = |m: &Matrix| Matrix::DenseI8(DenseI8::quantise(m.rows(), m.cols(), m.to_dense().data()));
        bench_matvec(c, "dense_i8_2600x1300", &int8(&dense), &sets);
        let output = random_matrix(Plan::Dense, 10_000, 200, &mut rng);
        bench_matvec(c, "dense_10000x200", &output, &sets);
        bench_matvec(c, "dense_i8_10000x200", &int8(&output), &sets);

        // The Kronecker split with the fewest parameters (ties broken by fewest MACs).
        let (a, b) = plan::kron_min_params(ROWS, COLS).expect("a non-empty matrix");
        let kp = random_matrix(Plan::Kp { a, b }, ROWS, COLS, &mut rng);
        bench_matvec(c, &format!("kp_2600x1300_{}x{}_{}x{}", a[0], a[1], b[0], b[1]), &kp, &sets);

        for kind in [WeightKind::Dkp, WeightKind::LowRank, WeightKind::Sparse] {
            let p = plan::plan(kind, ROWS, COLS, 25.0, Accounting::Values).expect("25x is reachable");
            let m = random_matrix(p, ROWS, COLS, &mut rng);
            bench_matvec(c, &format!("{kind}25x_2600x1300"), &m, &sets);
            // Where a doped product's time goes: the structured part and the co-matrix S.
            if let Matrix::Doped(d) = &m {
                bench_matvec(c, &format!("{kind}25x_2600x1300_base"), d.base(), &sets);
                bench_matvec(c, &format!("{kind}25x_2600x1300_s"), &Matrix::Sparse(d.s().clone()), &sets);
            }
        }
    }

    fn kernel_sets(c: &mut Criterion) {
        let mut rng = Rng::new(2);
        let mut g = c.benchmark_group("activations_2600");
        let input = random_vec(&mut rng, ROWS);
        let mut v = input.clone();
        for k in Kernels::available() {
            g.bench_function(BenchmarkId::new("sigmoid", k.name), |b| {
                b.iter(|| {
                    v.copy_from_slice(&input);
                    (k.sigmoid)(black_box(&mut v));
                })
            });
            g.bench_function(BenchmarkId::new("tanh", k.name), |b| {
                b.iter(|| {
                    v.copy_from_slice(&input);
                    (k.tanh)(black_box(&mut v));
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group("log_softmax_10000");
        let input = random_vec(&mut rng, 10_000);
        let mut v = input.clone();
        for k in Kernels::available() {
            g.bench_function(BenchmarkId::from_parameter(k.name), |b| {
                b.iter(|| {
                    v.copy_from_slice(&input);
                    (k.log_softmax)(black_box(&mut v));
                })
            });
        }
        g.finish();
    }

    /// One token through a 2-layer H=650, V=10k model: the LSTM layers (`feed`) and the
    /// output layer (projection + log-softmax) timed separately.
    fn sessions(c: &mut Criterion) {
        let medium = RandomSpec { layers: 2, hidden: 650, vocab: 10_000, ..RandomSpec::default() };
        let twins = [
            ("dense", medium.clone()),
            (
                "dkp25x",
                RandomSpec { kind: WeightKind::Dkp, cf: 25.0, output_kind: WeightKind::Dkp, output_cf: 25.0, ..medium },
            ),
        ];
        let mut g = c.benchmark_group("session_h650_v10k");
        for (name, spec) in twins {
            let model = random_model(&spec).expect("valid spec");
            let k = model.kernels();
            let mut session = Session::new(model.clone());
            let mut id = 0u32;
            g.bench_function(BenchmarkId::new("lstm", name), |b| {
                b.iter(|| {
                    id = (id + 17) % 10_000;
                    session.feed(id).expect("in vocabulary");
                })
            });
            let out = &model.output().matrix;
            let mut rng = Rng::new(3);
            let h = random_vec(&mut rng, out.cols());
            let mut logits = vec![0.0; out.rows()];
            let mut scratch = vec![0.0; out.scratch_len()];
            g.bench_function(BenchmarkId::new("output", name), |b| {
                b.iter(|| {
                    logits.copy_from_slice(model.output_bias());
                    out.matvec(&k, black_box(&h), &mut logits, &mut scratch);
                    (k.log_softmax)(&mut logits);
                    black_box(&logits);
                })
            });
        }
        g.finish();
    }

    fn config() -> Criterion {
        // Two cores shared with other builds: short, repeatable runs.
        Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
    }

    criterion_group! { name = benches; config = config(); targets = kinds, kernel_sets, sessions }
}
