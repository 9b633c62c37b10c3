//! The crate's one error type: every way a model file, a text or a call can be wrong.

use std::fmt;

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, and where. Each variant names the tensor, field or value at fault.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the safetensors header or data says it should.
    Truncated {
        /// Bytes the file claims to need.
        needed: u64,
        /// Bytes actually present.
        found: u64,
    },
    /// The header length prefix exceeds the limit this runtime accepts.
    HeaderTooLarge {
        /// Header length claimed by the file.
        len: u64,
        /// The largest header accepted.
        max: u64,
    },
    /// The bytes are not a valid safetensors container.
    NotSafetensors {
        /// Why the container was rejected.
        reason: String,
    },
    /// The safetensors metadata lacks the dkp-lstm config or it is malformed.
    BadMetadata {
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a format version this runtime does not read.
    UnsupportedVersion {
        /// The version in the file.
        found: String,
        /// The version this runtime reads.
        supported: u32,
    },
    /// The config is self-inconsistent or asks for something unsupported.
    InvalidConfig {
        /// The config field at fault, e.g. `layers[1].hidden`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A size is beyond what this runtime will allocate.
    TooLarge {
        /// What was too large.
        what: String,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A tensor the config requires is not in the file.
    MissingTensor {
        /// The tensor's name.
        name: String,
    },
    /// The file holds a tensor the config does not account for.
    UnexpectedTensor {
        /// The tensor's name.
        name: String,
    },
    /// A tensor has a dtype this runtime does not accept for its role.
    WrongDtype {
        /// The tensor's name.
        name: String,
        /// Dtype found in the file.
        found: String,
        /// Dtypes accepted.
        expected: &'static str,
    },
    /// A tensor's shape disagrees with the config.
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A CSR matrix breaks one of its invariants.
    InvalidSparse {
        /// The matrix's tensor prefix.
        name: String,
        /// Which invariant is broken, and where.
        reason: String,
    },
    /// An int8 tensor holds −128, an int4 tensor −8 or a non-zero unused nibble, or a
    /// row's scale (absmax) is negative.
    InvalidQuantised {
        /// The tensor's name.
        name: String,
        /// Flat index of the first bad element.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A weight is NaN or infinite.
    NonFinite {
        /// The tensor's name.
        name: String,
        /// Flat index of the first bad element.
        index: usize,
    },
    /// The vocabulary disagrees with the embedding or output sizes.
    VocabMismatch {
        /// Entries in the stored vocabulary.
        vocab: usize,
        /// Rows of the matrix at fault.
        rows: usize,
        /// Which matrix.
        matrix: &'static str,
    },
    /// Scoring a text overflowed: finite weights so large (e.g. ±3.4e38) that a logit,
    /// a log-probability or the perplexity itself is not a finite number.
    NonFiniteOutput {
        /// Position in the text's tokens of the token at fault: the first whose logits
        /// or log-probability are not finite, else the least likely one.
        position: usize,
    },
    /// A text holds no tokens at all.
    EmptyText,
    /// Every word of a text is outside the vocabulary.
    AllUnknown {
        /// Number of words in the text.
        words: usize,
    },
    /// A token id is not in the vocabulary.
    TokenOutOfRange {
        /// The id given.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// A call argument is outside its domain.
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A requested compression cannot be reached with the given shapes.
    Unreachable {
        /// What was asked for.
        what: String,
        /// Why it cannot be done.
        reason: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { needed, found } => {
                write!(f, "file is truncated: needs {needed} bytes, has {found}")
            }
            Error::HeaderTooLarge { len, max } => {
                write!(f, "safetensors header of {len} bytes exceeds the limit of {max} bytes")
            }
            Error::NotSafetensors { reason } => write!(f, "not a safetensors file: {reason}"),
            Error::BadMetadata { reason } => write!(f, "bad dkp-lstm metadata: {reason}"),
            Error::UnsupportedVersion { found, supported } => {
                write!(f, "unsupported format version `{found}` (this runtime reads version {supported})")
            }
            Error::InvalidConfig { field, reason } => {
                write!(f, "invalid config `{field}`: {reason}")
            }
            Error::TooLarge { what, value, max } => {
                write!(f, "{what} of {value} exceeds the limit of {max}")
            }
            Error::MissingTensor { name } => write!(f, "tensor `{name}` is missing"),
            Error::UnexpectedTensor { name } => {
                write!(f, "tensor `{name}` is not described by the config")
            }
            Error::WrongDtype { name, found, expected } => {
                write!(f, "tensor `{name}` has dtype {found}, expected {expected}")
            }
            Error::ShapeMismatch { name, expected, found } => {
                write!(f, "tensor `{name}` has shape {}, expected {}", Dims(found), Dims(expected))
            }
            Error::InvalidSparse { name, reason } => write!(f, "sparse matrix `{name}`: {reason}"),
            Error::InvalidQuantised { name, index, reason } => {
                write!(f, "tensor `{name}` at index {index}: {reason}")
            }
            Error::NonFinite { name, index } => {
                write!(f, "tensor `{name}` holds a NaN or infinite value at index {index}")
            }
            Error::VocabMismatch { vocab, rows, matrix } => {
                write!(f, "vocabulary has {vocab} entries but the {matrix} matrix has {rows} rows")
            }
            Error::NonFiniteOutput { position } => write!(
                f,
                "scoring overflows at token {position}: the model's weights or activations are too large for f32"
            ),
            Error::EmptyText => write!(f, "the text holds no tokens"),
            Error::AllUnknown { words } => {
                write!(f, "all {words} words of the text are outside the vocabulary")
            }
            Error::TokenOutOfRange { id, vocab } => {
                write!(f, "token id {id} is outside the vocabulary of {vocab} tokens")
            }
            Error::InvalidArgument { name, reason } => write!(f, "invalid `{name}`: {reason}"),
            Error::Unreachable { what, reason } => write!(f, "cannot build {what}: {reason}"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn config_err(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::InvalidConfig { field: field.into(), reason: reason.into() }
}

/// A shape as `{:?}` prints it (`[650, 2600]`), written out so that messages about shapes
/// keep `Debug`'s list formatting out of the WebAssembly module.
pub(crate) struct Dims<'a>(pub &'a [usize]);

impl fmt::Display for Dims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_print_as_debug_does() {
        for d in [&[][..], &[7], &[650, 2600], &[1, 0, usize::MAX]] {
            assert_eq!(Dims(d).to_string(), format!("{d:?}"));
        }
    }
}
