//! Conformance of every kernel set against the scalar specification.
