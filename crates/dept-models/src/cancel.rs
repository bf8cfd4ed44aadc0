//! Stopping a greedy decode between two tokens.
//!
//! A long generation (a large evaluation batch, many new tokens, a big backbone) can take seconds; a training run
//! told to stop (`dept-train`'s signal handling) must not wait for it to end. The caller that owns the stop
//! decision registers one check here, and every decoding loop asks it before each new token, failing with
//! [`ModelError::Cancelled`]. This crate knows nothing of signals or runs: it only asks the check it was given,
//! so the dependency stays one-way.

use std::sync::OnceLock;

use crate::ModelError;

static CHECK: OnceLock<fn() -> bool> = OnceLock::new();

/// Registers the process's cancellation check: `check()` returning true cancels every decode at its next token.
/// The first registration wins (there is one stop decision per process); false if one was already registered.
pub fn set_check(check: fn() -> bool) -> bool {
    CHECK.set(check).is_ok()
}

/// `Err(Cancelled)` once the registered check says so; always `Ok` without one.
pub(crate) fn poll() -> Result<(), ModelError> {
    match CHECK.get() {
        Some(check) if check() => Err(ModelError::Cancelled),
        _ => Ok(()),
    }
}
