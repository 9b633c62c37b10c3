//! One input through `Model::from_bytes` under `catch_unwind` and the counting
//! allocator, and what came of it: an error (by variant), a model (which must then
//! write back and run), a panic, or more memory than the bound.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use dkp_lstm::{Error, Model, Session};

use crate::alloc::{measure, Usage};

/// The allocation bound's factor: bytes of peak live heap per input byte.
pub const BOUND_PER_BYTE: usize = 64;
/// The allocation bound's constant part.
pub const BOUND_BASE: usize = 1 << 20;

/// The most heap `from_bytes` may hold at once for an input of `len` bytes:
/// [`BOUND_PER_BYTE`]` · len + `[`BOUND_BASE`] (docs/fuzzing.md says why).
pub fn bound(len: usize) -> usize {
    BOUND_PER_BYTE.saturating_mul(len).saturating_add(BOUND_BASE)
}

/// A caught panic.
#[derive(Debug, Clone, PartialEq)]
pub struct Panic {
    /// `file:line:col`.
    pub location: String,
    /// The panic message.
    pub message: String,
    /// The backtrace at the panic.
    pub backtrace: String,
}

/// What reading one input did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Input length.
    pub len: usize,
    /// `Ok(None)`: a model; `Ok(Some(variant))`: rejected with that [`Error`] variant.
    pub result: Result<Option<&'static str>, Panic>,
    /// The reader's allocations.
    pub usage: Usage,
    /// What went wrong with an accepted model afterwards (rewriting or running it), if anything.
    pub after: Option<String>,
}

impl Report {
    /// Whether the peak allocation stayed within [`bound`].
    pub fn within_bound(&self) -> bool {
        self.usage.peak <= bound(self.len)
    }

    /// A short key naming the defect, the same for inputs that hit the same defect; `None` when there is none.
    pub fn finding(&self) -> Option<String> {
        if let Err(p) = &self.result {
            return Some(format!("panic at {}", p.location));
        }
        if !self.within_bound() {
            return Some(format!("over-bound allocation ({})", self.result.clone().ok().flatten().unwrap_or("Ok")));
        }
        self.after.clone()
    }
}

thread_local! {
    static LAST_PANIC: RefCell<Option<Panic>> = const { RefCell::new(None) };
    static CAPTURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Replaces the panic hook with one that, inside [`run`], records the panic instead of
/// printing it (a panic is reported as a finding, with its backtrace); elsewhere the
/// previous hook runs.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !CAPTURING.get() {
            return previous(info);
        }
        let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(s), _) => s.to_string(),
            (_, Some(s)) => s.clone(),
            _ => "(no message)".into(),
        };
        let location = info.location().map_or("?".into(), |l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        let backtrace = std::backtrace::Backtrace::force_capture().to_string();
        LAST_PANIC.with(|p| *p.borrow_mut() = Some(Panic { location, message, backtrace }));
    }));
}

/// Runs `f`, catching a panic as a [`Panic`].
fn capture<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    CAPTURING.set(true);
    let r = catch_unwind(AssertUnwindSafe(f));
    CAPTURING.set(false);
    r.map_err(|_| take_panic())
}

fn take_panic() -> Panic {
    LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or(Panic {
        location: "?".into(),
        message: "(panic hook not installed)".into(),
        backtrace: String::new(),
    })
}

/// The name of an error's variant.
pub fn variant(e: &Error) -> &'static str {
    match e {
        Error::Truncated { .. } => "Truncated",
        Error::HeaderTooLarge { .. } => "HeaderTooLarge",
        Error::NotSafetensors { .. } => "NotSafetensors",
        Error::BadMetadata { .. } => "BadMetadata",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::InvalidConfig { .. } => "InvalidConfig",
        Error::TooLarge { .. } => "TooLarge",
        Error::MissingTensor { .. } => "MissingTensor",
        Error::UnexpectedTensor { .. } => "UnexpectedTensor",
        Error::WrongDtype { .. } => "WrongDtype",
        Error::ShapeMismatch { .. } => "ShapeMismatch",
        Error::InvalidSparse { .. } => "InvalidSparse",
        Error::NonFinite { .. } => "NonFinite",
        Error::InvalidQuantised { .. } => "InvalidQuantised",
        Error::VocabMismatch { .. } => "VocabMismatch",
        Error::NonFiniteOutput { .. } => "NonFiniteOutput",
        Error::EmptyText => "EmptyText",
        Error::AllUnknown { .. } => "AllUnknown",
        Error::TokenOutOfRange { .. } => "TokenOutOfRange",
        Error::InvalidArgument { .. } => "InvalidArgument",
        Error::Unreachable { .. } => "Unreachable",
        _ => "Other",
    }
}

/// Reads `bytes`. With `check_accepted`, a model that loads must also write a file
/// that reads back to the same bytes, and score a text (see `check`).
pub fn run(bytes: &[u8], check_accepted: bool) -> Report {
    let (caught, usage) = measure(|| capture(|| Model::from_bytes(bytes)));
    let (result, model) = match caught {
        Err(p) => (Err(p), None),
        Ok(Err(e)) => (Ok(Some(variant(&e))), None),
        Ok(Ok(m)) => (Ok(None), Some(m)),
    };
    let after = match model {
        Some(m) if check_accepted => match capture(|| check(m)) {
            Ok(problem) => problem,
            Err(p) => Some(format!("panic after loading at {}: {}", p.location, p.message)),
        },
        _ => None,
    };
    Report { len: bytes.len(), result, usage, after }
}

/// What is wrong with an accepted model: its file must read back and be a fixed point
/// of write∘read, the bytes `info()` counts must be the bytes written, and scoring a
/// text must give a finite perplexity or one of the errors scoring documents — [`Error::NonFiniteOutput`] for finite weights too large
/// for f32 (which `log_probs` shows as NaN or ±∞), or a text the vocabulary cannot encode.
fn check(model: Model) -> Option<String> {
    let bytes = match model.to_bytes() {
        Ok(b) => b,
        Err(e) => return Some(format!("accepted model not written: {}", variant(&e))),
    };
    match Model::from_bytes(&bytes) {
        Err(e) => return Some(format!("rewritten file rejected: {}", variant(&e))),
        Ok(again) if again.to_bytes().ok().as_ref() != Some(&bytes) => {
            return Some("rewritten file reads back differently".into())
        }
        Ok(_) => {}
    }
    // The count runs apart from the writer (the writer is not in the browser's module).
    let header = bytes.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes) as usize;
    let data = bytes.len().saturating_sub(8 + header);
    if model.tensor_bytes() != data || model.info().bytes != data {
        return Some(format!("info counts {} tensor bytes, the file holds {data}", model.tensor_bytes()));
    }
    let mut s = Session::new(model);
    match s.perplexity("the cat sat on the mat\n") {
        Ok(p) if p.perplexity.is_finite() && p.nll.is_finite() => {}
        Ok(p) => return Some(format!("accepted model scores a non-finite perplexity {}", p.perplexity)),
        Err(Error::NonFiniteOutput { .. } | Error::AllUnknown { .. } | Error::EmptyText) => {}
        Err(e) => return Some(format!("accepted model fails to score: {}", variant(&e))),
    }
    // Token by token too (the page's path): must not panic; NaN here is what
    // `NonFiniteOutput` reports when scoring.
    s.reset();
    for id in 0..s.model().vocab_size().min(3) as u32 {
        let _ = s.feed(id);
        std::hint::black_box(s.log_probs());
    }
    None
}
