//! The exit statuses `dept train` (and anything that runs it: sweeps, Slurm job scripts) tells apart, beside 0 and
//! clap's 2. Each says what a caller should do next; `docs/failures.md` lists them for users.

use crate::TrainError;

/// Any other error: bad input, a loss that is not finite, out of memory, ... The message says what to change.
pub const FAILED: u8 = 1;
/// A write failed for lack of space or an I/O error (ENOSPC, EDQUOT, EIO, EROFS) after the retries; the previous
/// checkpoint is intact. Free space (the message names the folder and how much), then run the same command.
/// 74 is `EX_IOERR` of BSD's `sysexits.h`.
pub const WRITE_FAILED: u8 = 74;
/// Stopped by SIGTERM, SIGINT or SIGUSR1 with a complete checkpoint saved: "resume me". Running the same command
/// resumes and ends bit for bit where an uninterrupted run ends. 75 is `EX_TEMPFAIL` of `sysexits.h`, the status
/// schedulers and mail systems read as "try again later".
pub const PREEMPTED: u8 = 75;
/// A second SIGINT while the first one's checkpoint was being written: stopped at once, without saving; the last
/// durable checkpoint stays. 130 is the shell's 128 + SIGINT.
pub const ABORTED: u8 = 130;

impl TrainError {
    /// The exit status this error should end the process with.
    pub fn exit_status(&self) -> u8 {
        match self {
            TrainError::DiskFull { .. } => WRITE_FAILED,
            TrainError::Write { error, .. } if is_out_of_space_or_io(error) => WRITE_FAILED,
            TrainError::Preempted { .. } => PREEMPTED,
            _ => FAILED,
        }
    }
}

/// ENOSPC, EDQUOT, EIO and EROFS: the disk, not the data, is the problem.
pub fn is_out_of_space_or_io(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS)
    )
}
