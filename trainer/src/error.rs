//! The trainer's error type: what went wrong and with which file, field or tensor.

use std::fmt;
use std::path::PathBuf;

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can stop training, compression or export.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read (or appended to).
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be written; being written atomically, it is as it was.
    Write {
        /// The file that was to be written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A data file is unusable (empty, too short, or inconsistent with the others).
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is invalid.
    Config {
        /// The field, e.g. `lstm.kind`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint is corrupt or belongs to another run configuration.
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A model file cannot be compressed or fine-tuned.
    Model {
        /// The model file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A trained weight could not be turned into a runtime matrix.
    Export {
        /// The weight, e.g. `layers.0.w`.
        name: String,
        /// Why.
        reason: String,
    },
    /// The runtime rejected something (plans, models, tokenizers).
    Runtime(dkp_lstm::Error),
    /// A tensor operation failed.
    Tensor(candle_core::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The cause is the `source()`, which error reporters print after this.
            Error::Io { path, .. } => write!(f, "cannot access {}", path.display()),
            Error::Write { path, .. } => write!(f, "cannot write {}", path.display()),
            Error::Data { path, reason } => write!(f, "data file {}: {reason}", path.display()),
            Error::Config { field, reason } => write!(f, "invalid setting `{field}`: {reason}"),
            Error::Checkpoint { path, reason } => {
                write!(f, "checkpoint {}: {reason}", path.display())
            }
            Error::Model { path, reason } => write!(f, "model {}: {reason}", path.display()),
            Error::Export { name, reason } => write!(f, "cannot export weight `{name}`: {reason}"),
            Error::Runtime(e) => write!(f, "{e}"),
            Error::Tensor(e) => write!(f, "tensor operation failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } | Error::Write { source, .. } => Some(source),
            // Runtime and tensor errors are shown in full by `Display` (they are wrapped, not caused).
            _ => None,
        }
    }
}

impl From<dkp_lstm::Error> for Error {
    fn from(e: dkp_lstm::Error) -> Error {
        Error::Runtime(e)
    }
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Error {
        Error::Tensor(e)
    }
}

/// Attaches a path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}

/// A config error.
pub(crate) fn config_err(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Config { field: field.into(), reason: reason.into() }
}
