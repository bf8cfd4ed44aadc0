//! A local runner's claim on a point: an exclusive `flock` on `status/<id>.claim`, taken before its trainer starts
//! and inherited by that trainer, so that it stays held while either lives. A runner killed with SIGKILL leaves its
//! trainers holding their claims while they save and exit (they get SIGTERM when it dies, see [`crate::local`]);
//! the next runner sees the claims held and waits instead of starting a second trainer beside them (which would
//! lose the race for the run folder's own lock and look like a failed point).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use crate::error::{Result, SweepError};

/// A held claim; released when dropped and every trainer that inherited it has ended.
pub struct Claim {
    file: File,
}

impl Claim {
    /// Takes the claim at `path` (creating the file), or `Ok(None)` when another process holds it.
    pub fn try_take(path: &Path) -> Result<Option<Claim>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| SweepError::io("opening", path, e))?;
        // SAFETY: flock on a descriptor this function owns; it only takes an advisory lock.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EWOULDBLOCK) => Ok(None),
                _ => Err(SweepError::io("locking", path, error)),
            };
        }
        Ok(Some(Claim { file }))
    }

    /// Whether some process holds the claim at `path` now (false where there is no such file).
    pub fn is_held(path: &Path) -> bool {
        path.is_file() && matches!(Claim::try_take(path), Ok(None))
    }

    /// The descriptor a trainer inherits to keep the claim held (see [`crate::local`]'s `pre_exec`).
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.claim");
        assert!(!Claim::is_held(&path), "no file, no claim");
        let claim = Claim::try_take(&path).unwrap().expect("free");
        assert!(Claim::is_held(&path));
        assert!(Claim::try_take(&path).unwrap().is_none());
        drop(claim);
        assert!(!Claim::is_held(&path));
        assert!(Claim::try_take(&path).unwrap().is_some());
    }
}
