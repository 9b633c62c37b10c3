//! x86-64 AVX2 + FMA kernels, selected at run time.

use super::Kernels;

/// The AVX2 kernel table if this CPU supports AVX2 and FMA.
pub fn detect() -> Option<Kernels> {
    None
}
