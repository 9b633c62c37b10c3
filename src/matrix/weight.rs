//! A weight as a model holds it: a matrix of any kind and the precision its values are stored in.

use super::Matrix;

/// How weight values are stored in a model file (computation is always f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ValueType {
    /// IEEE single precision.
    #[default]
    F32,
    /// IEEE half precision, widened to f32 when loaded.
    F16,
    /// Symmetric int8 with one absmax per row (`crate::matrix::quantise`): dense weights
    /// stay int8 in memory and compute on integers, the factors of the other kinds are
    /// widened to f32 when loaded.
    I8,
    /// Symmetric int4 with one scale per row, two values a byte
    /// (`crate::matrix::quantise4`): every kind's values are widened to f32 when loaded,
    /// a dense matrix's too, so it suits the compressed kinds (use `I8` for dense).
    I4,
}

impl ValueType {
    /// Its name in model files and `dkp info --json` (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            ValueType::F32 => "F32",
            ValueType::F16 => "F16",
            ValueType::I8 => "I8",
            ValueType::I4 => "I4",
        }
    }

    /// Bits per stored value (the row scales of `I8` and `I4` tensors come on top).
    pub fn bits(self) -> usize {
        match self {
            ValueType::F32 => 32,
            ValueType::F16 => 16,
            ValueType::I8 => 8,
            ValueType::I4 => 4,
        }
    }
}

/// A weight matrix and the precision it is stored in.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// The matrix.
    pub matrix: Matrix,
    /// Storage precision of its values in the file.
    pub dtype: ValueType,
}

impl Weight {
    /// An f32-stored weight.
    pub fn f32(matrix: Matrix) -> Weight {
        Weight { matrix, dtype: ValueType::F32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serde_names() {
        for v in [ValueType::F32, ValueType::F16, ValueType::I8, ValueType::I4] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.name());
        }
    }
}
