//! Writes that a crash, a kill or a full disk can never leave half done under the real name, and the one place
//! where a write failure can be injected in tests ([`fault`]).
//!
//! Every file the project writes goes through [`write_atomically`] (whole files) or [`append_durably`] (the
//! `metrics.jsonl` log), so the injected failure reaches every writer.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tch::Tensor;

/// Calls `write` on a temporary sibling of `path`, syncs it, renames it over `path` (atomic on one file system),
/// then syncs the folder so that the rename itself survives a power cut. On error the temporary file is removed
/// and `path` is untouched.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temporary_sibling(path);
    let result = write(&tmp)
        .and_then(|()| fault::check_file(&tmp))
        .and_then(|()| File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| sync_parent(path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes named tensors as a safetensors file through [`write_atomically`], keeping the operating system's error
/// (ENOSPC, EIO, ...) as an `io::Error` so that callers can tell a full disk from bad data.
pub fn write_safetensors_atomically<S: AsRef<str>, T: AsRef<Tensor>>(
    path: &Path,
    named: &[(S, T)],
) -> io::Result<()> {
    write_atomically(path, |tmp| {
        Tensor::write_safetensors(named, tmp).map_err(|error| match error {
            tch::TchError::SafeTensorError {
                err: safetensors::SafeTensorError::IoError(io),
                ..
            } => io,
            other => io::Error::other(other),
        })
    })
}

/// Appends `bytes` to the open `file` (at `path`) and syncs it. If the write fails part way, the file is cut
/// back to its length before the call, so that a retry never leaves a torn line in front of a whole one.
pub fn append_durably(file: &mut File, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let injected = fault::injected(path)?;
    append_or_cut_back(file, bytes, injected)
}

/// [`append_durably`] with the injected failure (if any) given: half the bytes are written, then it fails.
fn append_or_cut_back(
    file: &mut File,
    bytes: &[u8],
    injected: Option<io::Error>,
) -> io::Result<()> {
    let before = file.metadata()?.len();
    let result = match injected {
        Some(error) => file.write_all(&bytes[..bytes.len() / 2]).and(Err(error)),
        None => file.write_all(bytes).and_then(|()| file.sync_data()),
    };
    if result.is_err() {
        let _ = file.set_len(before);
    }
    result
}

/// Syncs the folder holding `path`, which makes a rename or a new file in it durable (POSIX needs both the file
/// and its folder synced).
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// Syncs a folder's entries (not the files in it).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `dir/.name.tmp-<pid>`: hidden, and unique per process so concurrent writers do not collide.
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write failures injected on purpose, to test what a full disk or a failing device does to a run.
///
/// Off unless the environment variable `DEPT_FAULT_WRITE` is set, as `KIND[+SKIP][:COUNT][@PATTERN]`:
/// - `KIND`: `enospc` (no space left), `edquot` (quota), `eio` (I/O error) or `erofs` (read-only file system);
/// - `SKIP`: how many writes succeed before the first failure (default 0: the disk fills up after SKIP writes);
/// - `COUNT`: how many writes fail before writes succeed again (default: all of them);
/// - `PATTERN`: only writes to paths containing this text count and fail (default: every path).
///
/// A failing whole-file write leaves half of its bytes in the temporary file before the error (as a full disk
/// does), and a failing append half of its line, so the clean-up paths are what gets tested. `DEPT_FAULT_WRITE=
/// enospc:2@last.partial` makes the first two writes of a `last/` checkpoint fail, then lets the retry succeed;
/// `enospc+10@last.partial` lets two checkpoints (five files each) through, then fails every write of the third.
pub mod fault {
    use std::fs::File;
    use std::io;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    pub const VARIABLE: &str = "DEPT_FAULT_WRITE";

    /// A parsed `DEPT_FAULT_WRITE`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Plan {
        pub errno: i32,
        pub skip: u64,
        pub count: Option<u64>,
        pub pattern: Option<String>,
    }

    impl Plan {
        pub fn parse(spec: &str) -> Result<Plan, String> {
            let (head, pattern) = match spec.split_once('@') {
                Some((head, pattern)) => (head, Some(pattern.to_string())),
                None => (spec, None),
            };
            let number = |text: &str, what: &str| {
                text.parse::<u64>().map_err(|_| {
                    format!("{VARIABLE}={spec:?}: the {what} `{text}` is not a whole number")
                })
            };
            let (head, count) = match head.split_once(':') {
                Some((head, count)) => (head, Some(number(count, "count")?)),
                None => (head, None),
            };
            let (kind, skip) = match head.split_once('+') {
                Some((kind, skip)) => (kind, number(skip, "skip")?),
                None => (head, 0),
            };
            let errno = match kind.to_ascii_lowercase().as_str() {
                "enospc" => libc::ENOSPC,
                "edquot" => libc::EDQUOT,
                "eio" => libc::EIO,
                "erofs" => libc::EROFS,
                other => {
                    return Err(format!(
                        "{VARIABLE}={spec:?}: unknown kind `{other}`; expected enospc, edquot, eio or erofs, \
                         then optionally :COUNT and @PATTERN"
                    ))
                }
            };
            Ok(Plan {
                errno,
                skip,
                count,
                pattern,
            })
        }
    }

    fn plan() -> &'static Option<Result<Plan, String>> {
        static PLAN: OnceLock<Option<Result<Plan, String>>> = OnceLock::new();
        PLAN.get_or_init(|| std::env::var(VARIABLE).ok().map(|spec| Plan::parse(&spec)))
    }

    /// The error this write should fail with, if the plan says so (counting it).
    pub(super) fn injected(path: &Path) -> io::Result<Option<io::Error>> {
        // Matching writes so far, across threads.
        static SEEN: AtomicU64 = AtomicU64::new(0);
        let plan = match plan() {
            None => return Ok(None),
            Some(Err(message)) => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, message.clone()))
            }
            Some(Ok(plan)) => plan,
        };
        if plan
            .pattern
            .as_ref()
            .is_some_and(|p| !path.to_string_lossy().contains(p.as_str()))
        {
            return Ok(None);
        }
        let seen = SEEN.fetch_add(1, Ordering::SeqCst);
        let Some(failed) = seen.checked_sub(plan.skip) else {
            return Ok(None);
        };
        if plan.count.is_some_and(|count| failed >= count) {
            return Ok(None);
        }
        Ok(Some(io::Error::from_raw_os_error(plan.errno)))
    }

    /// For a whole file just written to `tmp`: cuts it to half and fails, when the plan says so.
    pub(super) fn check_file(tmp: &Path) -> io::Result<()> {
        match injected(tmp)? {
            None => Ok(()),
            Some(error) => {
                let len = std::fs::metadata(tmp)?.len();
                File::options().write(true).open(tmp)?.set_len(len / 2)?;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fault::Plan;
    use super::*;

    #[test]
    fn failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.json");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomically(&path, |tmp| {
            std::fs::write(tmp, "half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomically(&path, |tmp| std::fs::write(tmp, "new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn a_failed_append_is_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "{\"step\":1}\n").unwrap();
        let mut file = File::options().append(true).open(&path).unwrap();
        append_durably(&mut file, &path, b"{\"step\":2}\n").unwrap();
        // Half the line reaches the file, then the disk is full: the file is cut back to its two whole lines.
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        let err = append_or_cut_back(&mut file, b"{\"step\":3}\n", Some(full)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n"
        );
        append_durably(&mut file, &path, b"{\"step\":3}\n").unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("2}\n{\"step\":3}\n"));
    }

    #[test]
    fn the_fault_plan_parses_and_names_what_is_wrong() {
        assert_eq!(
            Plan::parse("enospc:2@last").unwrap(),
            Plan {
                errno: libc::ENOSPC,
                skip: 0,
                count: Some(2),
                pattern: Some("last".into())
            }
        );
        assert_eq!(Plan::parse("EIO").unwrap().errno, libc::EIO);
        assert_eq!(Plan::parse("edquot+10@x").unwrap().skip, 10);
        assert_eq!(Plan::parse("eio+3:1").unwrap().count, Some(1));
        assert_eq!(Plan::parse("erofs@x").unwrap().count, None);
        let err = Plan::parse("full").unwrap_err();
        assert!(err.contains("unknown kind `full`"), "{err}");
        let err = Plan::parse("eio:two").unwrap_err();
        assert!(err.contains("`two` is not a whole number"), "{err}");
    }
}
