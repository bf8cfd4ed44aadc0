//! Stopping a training run on request: SIGTERM, SIGINT and SIGUSR1 (what Slurm, Kubernetes and a terminal send
//! before they kill) set one process-wide flag; the run looks at it at every micro-step and between evaluation
//! batches and decoded tokens, saves a consistent checkpoint and ends with [`crate::exit_status::PREEMPTED`].
//!
//! The handler does nothing but an atomic compare-and-swap (async-signal-safe), and `_exit` for a second SIGINT:
//! someone pressing Ctrl-C twice wants out now, and the last checkpoint written with renames stays usable.
//! [`install`] is for a process that is a training run (`dept train`); a library user calling
//! [`crate::train`] keeps its own signal handling, and the flag then never rises.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::exit_status::ABORTED;
use crate::TrainError;

/// The signal that asked the run to stop (its number), 0 while none has.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// The signals that ask a run to stop.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];

/// Routes [`SIGNALS`] to the stop flag, and lets every decode in `dept-models` stop between two tokens once it
/// is up. Call it once, early, in a process that trains.
pub fn install() -> std::io::Result<()> {
    dept_models::cancel::set_check(|| requested().is_some());
    for signal in SIGNALS {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler only touches an atomic
        // and calls `_exit`, both async-signal-safe. SA_RESTART keeps interrupted reads and writes going.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

extern "C" fn on_signal(signal: libc::c_int) {
    let first = REQUESTED
        .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    if !first && signal == libc::SIGINT {
        // SAFETY: `_exit` is async-signal-safe; it skips destructors and buffers on purpose (no half-written
        // checkpoint is ever read: each is swapped in with renames).
        unsafe { libc::_exit(i32::from(ABORTED)) };
    }
}

/// The signal that asked the run to stop ("SIGTERM", ...), once one has.
pub fn requested() -> Option<&'static str> {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(name(signal)),
    }
}

/// A check point: `Err(StopRequested)` once a stop signal has come. The trainer turns it into a saved checkpoint.
pub(crate) fn check() -> Result<(), TrainError> {
    match requested() {
        Some(signal) => Err(TrainError::StopRequested { signal }),
        None => Ok(()),
    }
}

/// A decode that the check registered by [`install`] cancelled between tokens, as the stop request it is; any
/// other error unchanged.
pub(crate) fn cancelled_by_signal(error: TrainError) -> TrainError {
    match (&error, requested()) {
        (TrainError::Model(dept_models::ModelError::Cancelled), Some(signal)) => {
            TrainError::StopRequested { signal }
        }
        _ => error,
    }
}

fn name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stop_signals_are_named_in_messages() {
        assert_eq!(SIGNALS.map(name), ["SIGTERM", "SIGINT", "SIGUSR1"]);
    }

    /// The flag is process-wide, so this test does not raise it (other tests of this binary train); it checks that
    /// a cancelled decode only becomes a stop request when a stop was asked for.
    #[test]
    fn a_cancelled_decode_without_a_request_stays_an_error() {
        let error = cancelled_by_signal(TrainError::Model(dept_models::ModelError::Cancelled));
        assert!(matches!(
            error,
            TrainError::Model(dept_models::ModelError::Cancelled)
        ));
    }
}
