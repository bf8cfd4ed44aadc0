//! `dept verify RUN_DIR`: a run folder checked by hand, as a resume would check it: each checkpoint against its
//! manifest and the run's config, and the logs for torn or broken lines.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::checkpoint::manifest::{self, Problem};
use crate::config::ExperimentConfig;
use crate::run_dir::{RunDir, RUN_MARKER};
use crate::trainer::RESUMABLE_CHANGES;
use crate::TrainError;

/// The checkpoint folders of a run, in the order a resume (`last*`) or `dept eval` (`best*`) would look.
const CHECKPOINTS: [&str; 4] = ["last", "last.previous", "best", "best.previous"];

/// What `dept verify` found.
#[derive(Debug)]
pub struct RunReport {
    pub root: PathBuf,
    pub checkpoints: Vec<CheckpointReport>,
    pub logs: Vec<LogReport>,
}

#[derive(Debug)]
pub struct CheckpointReport {
    pub name: String,
    /// The step and file count of a valid checkpoint (`None` for one an older dept wrote without a manifest,
    /// which a resume accepts unverified), or what is wrong with it.
    pub result: Result<Option<(u64, usize)>, Vec<Problem>>,
}

#[derive(Debug)]
pub struct LogReport {
    pub name: String,
    pub lines: usize,
    /// A last line cut short (a kill or a full disk during its write): readers skip it, a resume drops it.
    pub torn_last_line: bool,
    /// Line numbers (from 1) of broken lines before the last: these are damage, not an interrupted write.
    pub broken: Vec<usize>,
}

impl RunReport {
    /// True when every checkpoint present is valid and no log has a broken line (a torn last line is fine).
    pub fn is_sound(&self) -> bool {
        self.checkpoints.iter().all(|c| c.result.is_ok())
            && self.logs.iter().all(|l| l.broken.is_empty())
    }

    /// The checkpoint a resume would start from: `last`, else `last.previous`, when valid.
    pub fn resumes_from(&self) -> Option<&CheckpointReport> {
        self.checkpoints
            .iter()
            .filter(|c| c.name.starts_with("last"))
            .find(|c| c.result.is_ok())
    }
}

/// Checks the run folder `root` (it must be one that `dept train` made).
pub fn verify_run(root: &Path) -> Result<RunReport, TrainError> {
    if !root.join(RUN_MARKER).is_file() {
        return Err(TrainError::Run(format!(
            "{} is not a dept run folder (no {RUN_MARKER} marker): give the folder `dept train` wrote, e.g. \
             runs/rte-…",
            root.display()
        )));
    }
    let run = RunDir::open_unlocked(root);
    let config = ExperimentConfig::load(&run.config(), &[])?;
    let fingerprint = config.fingerprint(RESUMABLE_CHANGES);
    let checkpoints = CHECKPOINTS
        .iter()
        .map(|name| (name, root.join(name)))
        .filter(|(_, dir)| dir.is_dir())
        .map(|(name, dir)| CheckpointReport {
            name: name.to_string(),
            result: match manifest::verify(&dir, Some(&fingerprint)) {
                Ok(m) => Ok(Some((m.step, m.files.len()))),
                // The same rule as a resume's: no manifest is fine only where none was ever written.
                Err(problems) => checkpoint::check(&dir, &fingerprint)
                    .map(|()| None)
                    .map_err(|_| problems),
            },
        })
        .collect();
    let logs = [run.metrics(), run.results()]
        .iter()
        .filter(|path| path.is_file())
        .map(|path| check_log(path))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RunReport {
        root: root.to_path_buf(),
        checkpoints,
        logs,
    })
}

/// `metrics.jsonl` (a JSON object a line) or `results.csv` (a header and rows of as many cells).
fn check_log(path: &Path) -> Result<LogReport, TrainError> {
    let text = std::fs::read_to_string(path).map_err(|e| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message: format!("cannot read: {e}"),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let csv_width = lines.first().map(|header| csv_cells(header));
    let good = |line: &str| {
        if name.ends_with(".csv") {
            Some(csv_cells(line)) == csv_width
        } else {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object())
        }
    };
    let broken: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| !good(line))
        .map(|(i, _)| i + 1)
        .collect();
    // A write cut short leaves a last line without its newline; a bad line anywhere else is damage.
    let torn_last_line = !text.is_empty() && !text.ends_with('\n');
    let broken = broken
        .into_iter()
        .filter(|&n| !(torn_last_line && n == lines.len()))
        .collect();
    Ok(LogReport {
        name,
        lines: lines.len(),
        torn_last_line,
        broken,
    })
}

/// Cells in a CSV line, quotes respected.
fn csv_cells(line: &str) -> usize {
    let mut quoted = false;
    1 + line
        .chars()
        .filter(|&c| {
            if c == '"' {
                quoted = !quoted;
            }
            c == ',' && !quoted
        })
        .count()
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.root.display())?;
        if self.checkpoints.is_empty() {
            writeln!(f, "  no checkpoint yet")?;
        }
        for c in &self.checkpoints {
            match &c.result {
                Ok(Some((step, files))) => writeln!(
                    f,
                    "  ok   {}/: step {step}, {files} files match the manifest",
                    c.name
                )?,
                Ok(None) => writeln!(
                    f,
                    "  ok   {}/: written by an older dept without a manifest, not verified",
                    c.name
                )?,
                Err(problems) => {
                    let listed: Vec<String> = problems.iter().map(Problem::to_string).collect();
                    writeln!(f, "  BAD  {}/: {}", c.name, listed.join("; "))?
                }
            }
        }
        for log in &self.logs {
            let state = if log.broken.is_empty() {
                "ok  "
            } else {
                "BAD "
            };
            write!(f, "  {state} {}: {} lines", log.name, log.lines)?;
            if log.torn_last_line {
                write!(f, ", the last one torn (an interrupted write; readers skip it, a resume drops it)")?;
            }
            if !log.broken.is_empty() {
                write!(f, ", broken line(s) {:?}", log.broken)?;
            }
            writeln!(f)?;
        }
        match self.resumes_from() {
            Some(c) => write!(f, "a resume would start from {}/", c.name),
            None if self.checkpoints.iter().any(|c| c.name.starts_with("last")) => {
                write!(
                    f,
                    "no valid last checkpoint: a resume would stop with an error"
                )
            }
            None => write!(f, "a resume would start from step 0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_last_lines_are_tolerated_and_broken_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":1}\n{\"step\":2}\n{\"step\":3,\"lo").unwrap();
        let report = check_log(&path).unwrap();
        assert!(
            report.torn_last_line && report.broken.is_empty(),
            "{report:?}"
        );
        std::fs::write(&path, "{\"step\":1}\nxx\n{\"step\":3}\n").unwrap();
        let report = check_log(&path).unwrap();
        assert!(!report.torn_last_line, "{report:?}");
        assert_eq!(report.broken, [2]);
        let path = dir.path().join("results.csv");
        std::fs::write(&path, "task,note\nrte,\"a,b\"\n").unwrap();
        let report = check_log(&path).unwrap();
        assert!(
            !report.torn_last_line && report.broken.is_empty(),
            "{report:?}"
        );
        std::fs::write(&path, "task,note,accuracy\nrte,\"a,b").unwrap();
        assert!(check_log(&path).unwrap().torn_last_line);
    }
}
