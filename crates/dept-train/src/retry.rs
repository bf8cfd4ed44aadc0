//! Writes retried when the disk, not the data, fails: a full disk often frees up (a log rotated, another job's
//! scratch cleaned) and a network file system's EIO is often transient. After the last attempt the error becomes
//! [`TrainError::DiskFull`], which names the folder, the space free and the space needed, and ends the process
//! with [`crate::exit_status::WRITE_FAILED`].

use std::path::Path;
use std::time::Duration;

use crate::exit_status::is_out_of_space_or_io;
use crate::TrainError;

/// Attempts in all (the first and three retries) and the first pause, doubled before each further retry:
/// 0.25 s, 0.5 s, 1 s.
const ATTEMPTS: u32 = 4;
const FIRST_PAUSE: Duration = Duration::from_millis(250);

/// Runs `write` until it succeeds, fails for another reason than the disk, or has failed [`ATTEMPTS`] times.
/// `needed` is how much the write needs, for the message.
pub fn retrying<T>(
    path: &Path,
    needed: Option<u64>,
    mut write: impl FnMut() -> Result<T, TrainError>,
) -> Result<T, TrainError> {
    let mut pause = FIRST_PAUSE;
    for attempt in 1.. {
        let error = match write() {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(io) = disk_error(&error) else {
            return Err(error);
        };
        if attempt >= ATTEMPTS {
            return Err(disk_full(error, path, needed));
        }
        tracing::warn!(
            "cannot write {}: {io}; trying again in {:.2} s (attempt {attempt} of {ATTEMPTS})",
            path.display(),
            pause.as_secs_f64()
        );
        std::thread::sleep(pause);
        pause *= 2;
    }
    unreachable!("the loop returns")
}

/// The operating system's error inside a training error, when it is one of the disk's (ENOSPC, EIO, ...).
fn disk_error(error: &TrainError) -> Option<&std::io::Error> {
    let io = match error {
        TrainError::Write { error, .. } => error,
        TrainError::Core(dept_core::CoreError::Write { error, .. }) => error,
        _ => return None,
    };
    is_out_of_space_or_io(io).then_some(io)
}

/// The last attempt's error as [`TrainError::DiskFull`] (a disk error: see [`disk_error`]).
fn disk_full(error: TrainError, path: &Path, needed: Option<u64>) -> TrainError {
    let io = match error {
        TrainError::Write { error, .. } => error,
        TrainError::Core(dept_core::CoreError::Write { error, .. }) => error,
        other => return other,
    };
    TrainError::DiskFull {
        path: path.to_path_buf(),
        error: io,
        free: free_bytes(path),
        needed,
    }
}

/// Bytes free to an unprivileged writer on the file system holding `path` (or its nearest existing ancestor).
pub fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let c_path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills a struct we own from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// `12.3 MB`, for messages.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
