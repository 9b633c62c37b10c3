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
    let divisors = |n: usize| (1..=n).filter(move |d| n % d == 0);
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
        return Err(Error::InvalidArgument { name: "cf", reason: format!("{cf} is not a number ≥ 1") });
    }
    Ok(rows as f64 * cols as f64 / cf)
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
pub fn plan(kind: WeightKind, rows: usize, cols: usize, cf: f64, acc: Accounting) -> Result<Plan> {
    let what = || format!("a {kind} {rows}x{cols} matrix at {cf}x compression");
    let unreachable = |reason: String| Error::Unreachable { what: what(), reason };
    if rows == 0 || cols == 0 {
        return Err(unreachable("the matrix is empty".into()));
    }
    let budget = budget(rows, cols, cf)?;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn impossible_targets_are_errors() {
        assert!(matches!(
            plan(WeightKind::LowRank, 10, 10, 1000.0, Accounting::Values),
            Err(Error::Unreachable { .. })
        ));
        assert!(matches!(plan(WeightKind::Kp, 7, 7, 1000.0, Accounting::Values), Err(Error::Unreachable { .. })));
        assert!(plan(WeightKind::Dense, 7, 7, 0.5, Accounting::Values).is_err());
        for kind in WeightKind::ALL {
            for (rows, cols) in [(0, 0), (0, 5), (5, 0)] {
                let e = plan(kind, rows, cols, 2.0, Accounting::Values).unwrap_err();
                assert!(e.to_string().contains("the matrix is empty"), "{e}");
            }
        }
    }
}
