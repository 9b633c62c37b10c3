//! The one vocabulary of weight kinds, shared by the file format, the planner, random models, the CLI and the trainer.

use std::fmt;
use std::str::FromStr;

/// How a weight matrix is parameterised. Every place that handles kinds matches on
/// this enum, so a new kind is a compile error wherever it still needs handling.
/// Its names (serde, clap, [`WeightKind::name`]) are the ones model files use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum WeightKind {
    /// Plain row-major dense W.
    #[default]
    Dense,
    /// Kronecker product A⊗B.
    Kp,
    /// Doped Kronecker product A⊗B + S, S sparse.
    Dkp,
    /// Low-rank U·V.
    #[cfg_attr(feature = "clap", value(name = "lowrank"))]
    LowRank,
    /// Doped low-rank U·V + S.
    #[cfg_attr(feature = "clap", value(name = "dlowrank"))]
    DLowRank,
    /// Sparse CSR only (what magnitude pruning leaves). Configs may call it `pruned`.
    #[serde(alias = "pruned")]
    #[cfg_attr(feature = "clap", value(alias = "pruned"))]
    Sparse,
    /// Hybrid matrix decomposition: the first rows dense, the rest low rank, `[D; U·V]`.
    Hmd,
    /// Doped HMD `[D; U·V] + S`.
    #[cfg_attr(feature = "clap", value(name = "dhmd"))]
    DHmd,
}

impl WeightKind {
    /// Every kind, in the order documentation lists them.
    pub const ALL: [WeightKind; 8] = [
        WeightKind::Dense,
        WeightKind::Kp,
        WeightKind::Dkp,
        WeightKind::LowRank,
        WeightKind::DLowRank,
        WeightKind::Sparse,
        WeightKind::Hmd,
        WeightKind::DHmd,
    ];

    /// The kind's name in model files, configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            WeightKind::Dense => "dense",
            WeightKind::Kp => "kp",
            WeightKind::Dkp => "dkp",
            WeightKind::LowRank => "lowrank",
            WeightKind::DLowRank => "dlowrank",
            WeightKind::Sparse => "sparse",
            WeightKind::Hmd => "hmd",
            WeightKind::DHmd => "dhmd",
        }
    }

    /// Whether the kind stores a sparse CSR part (the part that sparsity annealing masks).
    pub fn has_sparse_part(self) -> bool {
        matches!(self, WeightKind::Dkp | WeightKind::DLowRank | WeightKind::DHmd | WeightKind::Sparse)
    }

    /// The structured part of a doped kind (`dkp` → `kp`, `dlowrank` → `lowrank`,
    /// `dhmd` → `hmd`); itself otherwise.
    pub fn base(self) -> WeightKind {
        match self {
            WeightKind::Dkp => WeightKind::Kp,
            WeightKind::DLowRank => WeightKind::LowRank,
            WeightKind::DHmd => WeightKind::Hmd,
            k => k,
        }
    }
}

impl fmt::Display for WeightKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of parsing an unknown kind name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown kind `{}` (expected dense, kp, dkp, lowrank, dlowrank, sparse, hmd or dhmd)", self.0)
    }
}

impl std::error::Error for UnknownKind {}

impl FromStr for WeightKind {
    type Err = UnknownKind;
    /// Parses a kind name; `pruned` is accepted for `sparse`, as in configs.
    fn from_str(s: &str) -> Result<WeightKind, UnknownKind> {
        match s {
            "pruned" => Ok(WeightKind::Sparse),
            _ => WeightKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownKind(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_every_spelling() {
        for k in WeightKind::ALL {
            assert_eq!(k.name().parse::<WeightKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<WeightKind>(&format!("\"{k}\"")).unwrap(), k);
        }
        assert_eq!("pruned".parse::<WeightKind>(), Ok(WeightKind::Sparse));
        assert_eq!(serde_json::from_str::<WeightKind>("\"pruned\"").unwrap(), WeightKind::Sparse);
        assert_eq!(
            "tied".parse::<WeightKind>().unwrap_err().to_string(),
            "unknown kind `tied` (expected dense, kp, dkp, lowrank, dlowrank, sparse, hmd or dhmd)"
        );
    }
}
