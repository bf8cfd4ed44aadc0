//! The run folder: `config.yaml`, `metrics.jsonl`, `best/`, `last/`, `results.csv`, `curves.svg`.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use dept_core::atomic::{append_durably, write_atomically};
use serde_json::Value;

use crate::retry::{free_bytes, human_bytes, retrying};
use crate::TrainError;

/// A file in every folder this project creates for a run (or the quickstart), so that `--overwrite` and the
/// quickstart delete only folders they made: never a home folder or a data folder named by mistake.
pub const RUN_MARKER: &str = ".dept-run";

pub struct RunDir {
    pub root: PathBuf,
    /// `None` for a folder opened only to be read ([`RunDir::open_unlocked`]).
    _lock: Option<RunLock>,
}

impl RunDir {
    /// Creates (or reopens) a run folder and holds its lock while the run lasts. An existing folder must be empty
    /// or one of ours: a run never writes its files among someone else's, nor beside another run's.
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        create_marked(root)?;
        Ok(RunDir {
            root: root.to_path_buf(),
            _lock: Some(RunLock::acquire(root)?),
        })
    }

    /// The folder's paths, for reading it (`dept verify`) without taking its lock: a run may be writing there.
    pub fn open_unlocked(root: &Path) -> Self {
        RunDir {
            root: root.to_path_buf(),
            _lock: None,
        }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config.yaml")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    pub fn best(&self) -> PathBuf {
        self.root.join("best")
    }
    pub fn last(&self) -> PathBuf {
        self.root.join("last")
    }
    pub fn results(&self) -> PathBuf {
        self.root.join("results.csv")
    }
    pub fn plot(&self) -> PathBuf {
        self.root.join("curves.svg")
    }

    /// Writes a small text file atomically.
    pub fn write_text(&self, path: &Path, text: &str) -> Result<(), TrainError> {
        write_text(path, text)
    }
}

/// Checks, before training, that the run folder takes writes (a probe file is written and removed) and has room
/// for three checkpoints of `checkpoint_bytes`: `last`, `last.previous` and the new one being written beside
/// them (the floor is two). Less room is a warning, since checkpoints may still fit. Returns the warning,
/// if any, for the caller to show.
pub fn preflight(root: &Path, checkpoint_bytes: u64) -> Result<Option<String>, TrainError> {
    let probe = root.join(".dept-write-probe");
    write_text(&probe, "dept checks that this folder takes writes\n")?;
    std::fs::remove_file(&probe).map_err(|error| TrainError::Write {
        path: probe.clone(),
        error,
    })?;
    let needed = 3 * checkpoint_bytes;
    Ok(free_bytes(root).filter(|&free| free < needed).map(|free| {
        format!(
            "only {} free in {}; three checkpoints (the last two and the one being written) need about {}: the \
             run may stop for lack of space",
            human_bytes(free),
            root.display(),
            human_bytes(needed)
        )
    }))
}

/// An exclusive `flock` on a run folder's marker file, held by the `dept train` that writes there: a second run
/// of the same folder (a sweep started twice, a Slurm task resubmitted while the first still runs) is refused
/// instead of writing over the first. The kernel releases it when the process ends, however it ends.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// Takes the lock for a run. [`RunLock::is_held`] probes by taking it for an instant, so a lock found taken
    /// is tried again for up to half a second before the folder counts as in use: a sweep runner's probe must not
    /// make the trainer it is waiting for fail.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        for _ in 0..10 {
            match Self::try_acquire(dir) {
                Err(TrainError::Run(_)) => std::thread::sleep(std::time::Duration::from_millis(50)),
                taken => return taken,
            }
        }
        Self::try_acquire(dir)
    }

    /// One attempt at the lock.
    fn try_acquire(dir: &Path) -> Result<Self, TrainError> {
        let path = dir.join(RUN_MARKER);
        let file = File::open(&path).map_err(|error| TrainError::Write {
            path: path.clone(),
            error,
        })?;
        // SAFETY: flock on a descriptor this function owns; it only takes an advisory lock.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(TrainError::Run(format!(
                "{} is in use by another dept train right now (a sweep started twice, or a task still running); \
                 wait for it or stop it first",
                dir.display()
            )));
        }
        Ok(RunLock { _file: file })
    }

    /// Whether some process holds the lock of `dir` now (false for a folder without a marker).
    pub fn is_held(dir: &Path) -> bool {
        dir.join(RUN_MARKER).is_file() && matches!(Self::try_acquire(dir), Err(TrainError::Run(_)))
    }
}

/// Creates `dir` with the run marker, or checks that an existing `dir` is empty or already marked.
pub fn create_marked(dir: &Path) -> Result<(), TrainError> {
    if dir.exists() && !is_ours(dir)? {
        return Err(TrainError::Run(format!(
            "{} exists and is not a dept run folder (it has files and no {RUN_MARKER} marker); choose another \
             output folder, or empty that one yourself",
            dir.display()
        )));
    }
    retrying(dir, None, || {
        std::fs::create_dir_all(dir).map_err(|error| TrainError::Write {
            path: dir.to_path_buf(),
            error,
        })
    })?;
    let marker = dir.join(RUN_MARKER);
    if !marker.exists() {
        write_text(
            &marker,
            "This folder was created by dept; `dept train --overwrite` and `dept quickstart` may delete it.\n",
        )?;
    }
    Ok(())
}

/// Deletes a folder this project created (it carries the run marker), or an empty one; refuses anything else,
/// naming the folder, and never follows a symbolic link.
pub fn remove_marked(dir: &Path) -> Result<(), TrainError> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(TrainError::Write {
                path: dir.to_path_buf(),
                error,
            })
        }
    };
    if !meta.is_dir() || !is_ours(dir)? {
        return Err(TrainError::Run(format!(
            "refusing to delete {}: it is not a folder dept created (no {RUN_MARKER} marker){}; delete it yourself \
             if that is what you want, or choose another folder",
            dir.display(),
            if meta.file_type().is_symlink() { ", it is a symbolic link" } else { "" }
        )));
    }
    std::fs::remove_dir_all(dir).map_err(|error| TrainError::Write {
        path: dir.to_path_buf(),
        error,
    })
}

/// Carrying the marker, or holding nothing but what a kill between creating the folder and renaming the marker
/// into place leaves: nothing, or the marker's temporary file.
fn is_ours(dir: &Path) -> Result<bool, TrainError> {
    let io = |error| TrainError::Write {
        path: dir.to_path_buf(),
        error,
    };
    if dir.join(RUN_MARKER).is_file() {
        return Ok(true);
    }
    // `dept_core::atomic::temporary_sibling` names it `.<name>.tmp-<pid>`.
    let marker_tmp = format!(".{RUN_MARKER}.tmp-");
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        if !name.to_string_lossy().starts_with(&marker_tmp) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes a small file atomically, retrying when the disk fails (see [`crate::retry`]).
fn write_text(path: &Path, text: &str) -> Result<(), TrainError> {
    retrying(path, Some(text.len() as u64), || {
        write_atomically(path, |tmp| std::fs::write(tmp, text.as_bytes())).map_err(|error| {
            TrainError::Write {
                path: path.to_path_buf(),
                error,
            }
        })
    })
}

/// `metrics.jsonl`: one JSON object a line, appended and flushed as training goes.
pub struct MetricsLog {
    path: PathBuf,
    file: std::fs::File,
}

impl MetricsLog {
    /// Opens for appending after dropping every line a resumed run will write again: lines past `keep_until_step`,
    /// test-set lines, and a half-written last line from a kill.
    pub fn open(path: &Path, keep_until_step: u64) -> Result<Self, TrainError> {
        let kept: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|line| match serde_json::from_str::<Value>(line) {
                Ok(v) => {
                    v.get("split").and_then(Value::as_str) != Some("test")
                        && v.get("step").and_then(Value::as_u64).unwrap_or(0) <= keep_until_step
                }
                Err(_) => false,
            })
            .map(str::to_string)
            .collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        write_text(path, &text)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|error| TrainError::Write {
                path: path.to_path_buf(),
                error,
            })?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one line, synced; a failed write is cut back and retried (see [`crate::retry`]), so the log never
    /// holds a torn line in front of a whole one.
    pub fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        let line = format!("{record}\n");
        let (file, path) = (&mut self.file, &self.path);
        retrying(path, Some(line.len() as u64), || {
            append_durably(file, path, line.as_bytes()).map_err(|error| TrainError::Write {
                path: path.clone(),
                error,
            })
        })
    }

    /// Every record written so far (for the plot).
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// `results.csv`: a header and one row for this run, so sweeps can concatenate run folders.
pub fn results_csv(columns: &[(String, String)]) -> String {
    let escape = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let header: Vec<String> = columns.iter().map(|(k, _)| escape(k)).collect();
    let row: Vec<String> = columns.iter().map(|(_, v)| escape(v)).collect();
    format!("{}\n{}\n", header.join(","), row.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_is_locked_while_its_run_lasts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("run");
        let run = RunDir::create(&root).unwrap();
        assert!(RunLock::is_held(&root));
        let err = RunDir::create(&root).err().unwrap().to_string();
        assert!(err.contains("in use by another dept train"), "{err}");
        drop(run);
        assert!(!RunLock::is_held(&root));
        RunDir::create(&root).unwrap();
        assert!(!RunLock::is_held(&dir.path().join("never-made")));
    }

    #[test]
    fn reopening_drops_lines_a_resume_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(
            &path,
            "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"split\":\"test\",\"step\":3}\n{\"step\":4,\"lo",
        )
        .unwrap();
        let mut log = MetricsLog::open(&path, 2).unwrap();
        log.append(&serde_json::json!({"step": 3})).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n"
        );
    }

    #[test]
    fn only_marked_or_empty_folders_are_deleted_or_written_into() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("home");
        std::fs::create_dir_all(&theirs).unwrap();
        std::fs::write(theirs.join("thesis.tex"), "years of work").unwrap();
        let err = remove_marked(&theirs).unwrap_err().to_string();
        assert!(
            err.contains("refusing to delete") && err.contains("home"),
            "{err}"
        );
        assert!(theirs.join("thesis.tex").exists());
        let err = RunDir::create(&theirs).err().unwrap().to_string();
        assert!(err.contains("not a dept run folder"), "{err}");
        assert!(!theirs.join(RUN_MARKER).exists());

        // A symbolic link to one of our folders is refused too: only the folder itself may go.
        let ours = dir.path().join("run");
        RunDir::create(&ours).unwrap();
        std::fs::write(ours.join("metrics.jsonl"), "{}").unwrap();
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&ours, &link).unwrap();
            assert!(remove_marked(&link).is_err());
            assert!(ours.join("metrics.jsonl").exists());
        }
        // Ours (marked) and empty folders go; a missing one is nothing to do.
        remove_marked(&ours).unwrap();
        assert!(!ours.exists());
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        remove_marked(&empty).unwrap();
        remove_marked(&empty).unwrap();
        // A kill between creating a run folder and renaming its marker into place leaves only the marker's
        // temporary file: still ours, so the resumed run may go on there.
        let killed = dir.path().join("killed");
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::write(killed.join(format!(".{RUN_MARKER}.tmp-4242")), "").unwrap();
        RunDir::create(&killed).unwrap();
        assert!(killed.join(RUN_MARKER).is_file());
    }

    #[test]
    fn csv_cells_are_escaped() {
        let csv = results_csv(&[
            ("task".into(), "rte".into()),
            ("note".into(), "a,\"b\"".into()),
        ]);
        assert_eq!(csv, "task,note\nrte,\"a,\"\"b\"\"\"\n");
    }
}
