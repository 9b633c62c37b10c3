//! Choosing factor shapes, ranks and non-zero counts for a target compression factor.
//!
//! One source of truth for the trainer, `dkp random` and the reports: every method
//! is sized against the same budget, `rows·cols / cf` stored numbers, counted either
//! as values only or as values plus indices (each CSR index costing one value).

use crate::error::{Error, Result};
use crate::matrix::WeightKind;

/// How stored numbers are counted against a compression budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accounting {
    /// Weight values only (the paper's convention).
    #[default]
    Values,
    /// Values plus CSR column indices and row pointers.
    ValuesAndIndices,
}

/// The shape of a compressed matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Plan {
    /// Uncompressed.
    Dense,
    /// A (m1×n1) ⊗ B (m2×n2).
    Kp {
        /// Shape of A.
        a: [usize; 2],
        /// Shape of B.
        b: [usize; 2],
    },
    /// A ⊗ B + S with `nnz` non-zeros.
    Dkp {
        /// Shape of A.
        a: [usize; 2],
        /// Shape of B.
        b: [usize; 2],
        /// Non-zeros of S.
        nnz: usize,
    },
    /// U (rows×rank) · V (rank×cols).
    LowRank {
        /// The rank.
        rank: usize,
    },
    /// U·V + S.
    DLowRank {
        /// The rank.
        rank: usize,
        /// Non-zeros of S.
        nnz: usize,
    },
    /// CSR with `nnz` non-zeros.
    Sparse {
        /// Non-zeros.
        nnz: usize,
    },
    /// `[D; U·V]`: the first `dense_rows` rows dense, the rest U·V of rank `rank`.
    Hmd {
        /// Rows of the dense block.
        dense_rows: usize,
        /// Rank of the low-rank block.
        rank: usize,
    },
    /// `[D; U·V] + S`.
    DHmd {
        /// Rows of the dense block.
        dense_rows: usize,
        /// Rank of the low-rank block.
        rank: usize,
        /// Non-zeros of S.
        nnz: usize,
    },
}

/// Values an HMD stores: `dense_rows` full rows and a rank-`rank` block of the rest
/// (in f64, like the budget, so that no shape overflows a 32-bit `usize`).
fn hmd_values(rows: usize, cols: usize, dense_rows: usize, rank: usize) -> f64 {
    dense_rows as f64 * cols as f64 + rank as f64 * ((rows - dense_rows) as f64 + cols as f64)
}

/// The HMD split of a `rows × cols` matrix (`rows ≥ 2`) within `budget` values, which
/// must hold at least one dense row and a rank-1 block: the dense rows take half the
/// budget and the low-rank block the rest. Where half the budget in dense rows would
/// leave the lower block less than rank 1, fewer rows are dense, but always at least
/// one, so that an HMD is never plain low rank, and at most `rows − 1`.
fn hmd_split(rows: usize, cols: usize, budget: f64) -> (usize, usize) {
    // In whole values (u64: every budget is at most rows·cols ≤ 2⁴⁴), so that rounding
    // cannot leave the chosen split a fraction short of rank 1.
    let (m, n, b) = (rows as u64, cols as u64, budget.floor() as u64);
    let half = b / 2 / n;
    // Rank 1 needs `b − d·n ≥ rows − d + cols`, i.e. `d·(cols − 1) ≤ b − rows − cols`.
    let fits = if n == 1 { m } else { (b - m - n) / (n - 1) };
    let d = half.min(fits).clamp(1, m - 1);
    let rank = (b - d * n) / (m - d + n);
    (d as usize, rank.min((m - d).min(n)) as usize)
}

/// Multiply-adds of `(A ⊗ B)·x` with the cheaper bracketing of `A·X·Bᵀ`.
pub fn kron_macs(m1: usize, n1: usize, m2: usize, n2: usize) -> usize {
    (m1 * n2 * (n1 + m2)).min(n1 * m2 * (n2 + m1))
}

/// The Kronecker splits `(a, b)` of a `rows × cols` matrix that can express a matrix
/// of full rank (`rank(A⊗B) = rank(A)·rank(B)`, so `min(m1,n1)·min(m2,n2)` must reach
/// `min(rows, cols)`) with neither factor 1×1; all splits if none can (e.g. prime
/// sizes). Degenerate splits such as a row vector ⊗ a column vector are cheap but
/// only rank one.
pub fn kron_splits(rows: usize, cols: usize) -> Vec<([usize; 2], [usize; 2])> {
    let divisors = |n: usize| (1..=n).filter(move |d| n.is_multiple_of(*d));
    let mut all = vec![];
    for m1 in divisors(rows) {
        for n1 in divisors(cols) {
            all.push(([m1, n1], [rows / m1, cols / n1]));
        }
    }
    let full_rank = |(a, b): &([usize; 2], [usize; 2])| {
        a != &[1, 1] && b != &[1, 1] && a[0].min(a[1]) * b[0].min(b[1]) == rows.min(cols)
    };
    if all.iter().any(full_rank) {
        all.retain(full_rank);
    }
    all
}

/// The Kronecker split with the fewest parameters, ties broken by fewest MACs; `None`
/// only for an empty matrix, which has no split.
pub fn kron_min_params(rows: usize, cols: usize) -> Option<([usize; 2], [usize; 2])> {
    kron_splits(rows, cols)
        .into_iter()
        .min_by_key(|(a, b)| (a[0] * a[1] + b[0] * b[1], kron_macs(a[0], a[1], b[0], b[1])))
}

/// The stored-number budget for compressing `rows × cols` by `cf`.
pub fn budget(rows: usize, cols: usize, cf: f64) -> Result<f64> {
    if !(cf.is_finite() && cf >= 1.0) {
        return Err(Error::InvalidArgument { name: "cf", reason: "must be a finite number ≥ 1".into() });
    }
    Ok(rows as f64 * cols as f64 / cf)
}

/// A compression factor (finite, ≥ 1) for messages, rounded to two decimals without float
/// formatting, whose code would cost the WebAssembly module 20 KB (docs/benchmarks.md):
/// `25`, `12.5`, `3.33`.
fn cf_text(cf: f64) -> String {
    let h = (cf * 100.0).round() as u64;
    let (whole, frac) = (h / 100, h % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

/// Non-zeros that fit in `budget` stored numbers, under `acc`.
fn nnz_within(budget: f64, rows: usize, acc: Accounting) -> f64 {
    match acc {
        Accounting::Values => budget.floor(),
        Accounting::ValuesAndIndices => ((budget - (rows + 1) as f64) / 2.0).floor(),
    }
}

/// Shapes for `kind` compressing a `rows × cols` matrix by `cf`. `kp` takes the split whose size is closest to the
/// budget from below (its CF cannot be set freely); `dkp` the smallest split, leaving
/// the rest of the budget to S; `dlowrank` gives half its budget to the low-rank part.
/// `hmd` gives half its budget to dense rows and the rest to the rank of the other rows
/// (see [`hmd_split`]); `dhmd` plans its HMD part on half the budget (at least on the
/// smallest HMD, one dense row and rank 1) and gives the rest to S.
pub fn plan(kind: WeightKind, rows: usize, cols: usize, cf: f64, acc: Accounting) -> Result<Plan> {
    let budget = budget(rows, cols, cf)?;
    let what = || format!("a {kind} {rows}x{cols} matrix at {}x compression", cf_text(cf));
    let unreachable = |reason: String| Error::Unreachable { what: what(), reason };
    if rows == 0 || cols == 0 {
        return Err(unreachable("the matrix is empty".into()));
    }
    let min_split = || kron_min_params(rows, cols).expect("a non-empty matrix has a split");
    match kind {
        WeightKind::Dense => Ok(Plan::Dense),
        WeightKind::Kp => kron_splits(rows, cols)
            .into_iter()
            .filter(|(a, b)| ((a[0] * a[1] + b[0] * b[1]) as f64) <= budget)
            .max_by_key(|(a, b)| (a[0] * a[1] + b[0] * b[1], std::cmp::Reverse(kron_macs(a[0], a[1], b[0], b[1]))))
            .map(|(a, b)| Plan::Kp { a, b })
            .ok_or_else(|| {
                let (a, b) = min_split();
                unreachable(format!("the smallest Kronecker split holds {} values", a[0] * a[1] + b[0] * b[1]))
            }),
        WeightKind::Dkp => {
            // The factors are tiny next to S, which gets the rest of the budget.
            let (a, b) = min_split();
            let nnz = nnz_within(budget - (a[0] * a[1] + b[0] * b[1]) as f64, rows, acc);
            if nnz < 0.0 {
                return Err(unreachable("the Kronecker factors alone exceed the budget".into()));
            }
            Ok(Plan::Dkp { a, b, nnz: nnz as usize })
        }
        WeightKind::LowRank => {
            let rank = (budget / (rows + cols) as f64).floor() as usize;
            if rank == 0 {
                return Err(unreachable(format!("rank 1 already holds {} values", rows + cols)));
            }
            Ok(Plan::LowRank { rank: rank.min(rows.min(cols)) })
        }
        WeightKind::DLowRank => {
            let rank = (budget / 2.0 / (rows + cols) as f64).floor() as usize;
            if rank == 0 {
                return Err(unreachable(format!("rank 1 already holds {} values", rows + cols)));
            }
            let nnz = nnz_within(budget - rank as f64 * (rows + cols) as f64, rows, acc);
            Ok(Plan::DLowRank { rank, nnz: nnz.max(0.0) as usize })
        }
        WeightKind::Sparse => {
            let nnz = nnz_within(budget, rows, acc);
            if nnz < 1.0 {
                return Err(unreachable("not even one non-zero fits".into()));
            }
            Ok(Plan::Sparse { nnz: (nnz as u64).min(rows as u64 * cols as u64) as usize })
        }
        WeightKind::Hmd | WeightKind::DHmd => {
            if rows < 2 {
                return Err(unreachable("a single row leaves no room for a dense and a low-rank block".into()));
            }
            let smallest = hmd_values(rows, cols, 1, 1);
            if smallest > budget {
                return Err(unreachable(format!(
                    "one dense row and a rank-1 block already hold {} values",
                    smallest as u64
                )));
            }
            if kind == WeightKind::Hmd {
                let (dense_rows, rank) = hmd_split(rows, cols, budget);
                return Ok(Plan::Hmd { dense_rows, rank });
            }
            let (dense_rows, rank) = hmd_split(rows, cols, (budget / 2.0).max(smallest));
            let nnz = nnz_within(budget - hmd_values(rows, cols, dense_rows, rank), rows, acc);
            Ok(Plan::DHmd { dense_rows, rank, nnz: nnz.max(0.0) as usize })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf_text_rounds_to_two_decimals() {
        let texts: Vec<String> = [1.0, 25.0, 12.5, 3.25, 3.333, 4.999, 1e6].into_iter().map(cf_text).collect();
        assert_eq!(texts, ["1", "25", "12.5", "3.25", "3.33", "5", "1000000"]);
        let e = plan(WeightKind::Kp, 4, 4, 16.0, Accounting::Values).unwrap_err().to_string();
        assert_eq!(e, "cannot build a kp 4x4 matrix at 16x compression: the smallest Kronecker split holds 8 values");
        let e = plan(WeightKind::Kp, 4, 4, 0.5, Accounting::Values).unwrap_err().to_string();
        assert_eq!(e, "invalid `cf`: must be a finite number ≥ 1");
    }

    #[test]
    fn min_params_split_of_a_medium_lstm() {
        let (a, b) = kron_min_params(2600, 1300).unwrap();
        assert_eq!(a[0] * b[0], 2600);
        assert_eq!(a[1] * b[1], 1300);
        assert!(a[0] * a[1] + b[0] * b[1] < 4000, "{a:?} {b:?}");
    }

    #[test]
    fn splits_can_reach_full_rank() {
        let (a, b) = kron_min_params(800, 400).unwrap();
        assert_eq!(a[0].min(a[1]) * b[0].min(b[1]), 400, "{a:?} {b:?}");
        assert_eq!(a[0] * a[1] + b[0] * b[1], 1137);
        // Prime sizes have no full-rank split; every split is then allowed.
        assert_eq!(kron_splits(7, 5).len(), 4);
    }

    #[test]
    fn dkp_fills_the_budget() {
        let Plan::Dkp { a, b, nnz } = plan(WeightKind::Dkp, 800, 400, 25.0, Accounting::Values).unwrap() else {
            panic!()
        };
        let total = a[0] * a[1] + b[0] * b[1] + nnz;
        assert!((total as f64 - 800.0 * 400.0 / 25.0).abs() < 1.0, "{total}");
        let Plan::Dkp { nnz: nnz_i, .. } = plan(WeightKind::Dkp, 800, 400, 25.0, Accounting::ValuesAndIndices).unwrap()
        else {
            panic!()
        };
        assert!(nnz_i < nnz / 2 + 1);
    }

    #[test]
    fn hmd_gives_half_the_budget_to_dense_rows() {
        // 800x400 at 25x: B = 12 800; 16 dense rows hold half, rank ⌊6400 / (784 + 400)⌋ = 5.
        assert_eq!(
            plan(WeightKind::Hmd, 800, 400, 25.0, Accounting::Values).unwrap(),
            Plan::Hmd { dense_rows: 16, rank: 5 }
        );
        // dhmd: that split of half the budget (8 dense rows, rank ⌊3200 / 1192⌋ = 2), S the rest.
        let p = plan(WeightKind::DHmd, 800, 400, 25.0, Accounting::Values).unwrap();
        assert_eq!(p, Plan::DHmd { dense_rows: 8, rank: 2, nnz: 12_800 - 8 * 400 - 2 * (792 + 400) });
        // Tall: half of B = 160 would be 20 rows of 4, leaving 80 values, less than rank 1 of
        // the other 80 rows needs (84); 18 dense rows leave 88 for rank 1.
        assert_eq!(
            plan(WeightKind::Hmd, 100, 4, 2.5, Accounting::Values).unwrap(),
            Plan::Hmd { dense_rows: 18, rank: 1 }
        );
        // dhmd whose half budget (30) is below the smallest HMD (6 + 19 + 6 = 31): the HMD
        // part takes 31 and S the other 29.
        assert_eq!(
            plan(WeightKind::DHmd, 20, 6, 2.0, Accounting::Values).unwrap(),
            Plan::DHmd { dense_rows: 1, rank: 1, nnz: 29 }
        );
    }

    #[test]
    fn hmd_plans_stay_within_the_budget() {
        for rows in [2, 3, 7, 40, 128, 800, 10_000] {
            for cols in [1, 2, 5, 16, 400] {
                for cf in [1.0, 1.5, 2.0, 3.3, 4.0, 25.0, 100.0] {
                    for acc in [Accounting::Values, Accounting::ValuesAndIndices] {
                        let b = budget(rows, cols, cf).unwrap();
                        let smallest = (2 * cols + rows - 1) as f64;
                        let at = format!("{rows}x{cols} at {cf}x");
                        for kind in [WeightKind::Hmd, WeightKind::DHmd] {
                            let (d, r, nnz) = match plan(kind, rows, cols, cf, acc) {
                                Ok(Plan::Hmd { dense_rows, rank }) => (dense_rows, rank, 0),
                                Ok(Plan::DHmd { dense_rows, rank, nnz }) => (dense_rows, rank, nnz),
                                Ok(p) => panic!("{at}: {p:?}"),
                                Err(e) => {
                                    assert!(smallest > b, "{kind} {at}: {e}");
                                    assert!(matches!(e, Error::Unreachable { .. }), "{e}");
                                    continue;
                                }
                            };
                            assert!((1..rows).contains(&d) && (1..=(rows - d).min(cols)).contains(&r), "{at}");
                            let sparse = match (nnz, acc) {
                                (0, _) => 0,
                                (n, Accounting::Values) => n,
                                (n, Accounting::ValuesAndIndices) => 2 * n + rows + 1,
                            };
                            assert!(hmd_values(rows, cols, d, r) + sparse as f64 <= b, "{kind} {at}: {d} {r} {nnz}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn impossible_targets_are_errors() {
        assert!(matches!(
            plan(WeightKind::LowRank, 10, 10, 1000.0, Accounting::Values),
            Err(Error::Unreachable { .. })
        ));
        assert!(matches!(plan(WeightKind::Kp, 7, 7, 1000.0, Accounting::Values), Err(Error::Unreachable { .. })));
        assert!(plan(WeightKind::Dense, 7, 7, 0.5, Accounting::Values).is_err());
        for kind in [WeightKind::Hmd, WeightKind::DHmd] {
            let e = plan(kind, 10, 10, 10.0, Accounting::Values).unwrap_err();
            assert!(e.to_string().contains("one dense row and a rank-1 block already hold 29 values"), "{e}");
            let e = plan(kind, 1, 10, 1.0, Accounting::Values).unwrap_err();
            assert!(e.to_string().contains("a single row"), "{e}");
        }
        for kind in WeightKind::ALL {
            for (rows, cols) in [(0, 0), (0, 5), (5, 0)] {
                let e = plan(kind, rows, cols, 2.0, Accounting::Values).unwrap_err();
                assert!(e.to_string().contains("the matrix is empty"), "{e}");
            }
        }
    }
}
