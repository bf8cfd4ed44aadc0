//! The run folder: `config.yaml`, `metrics.jsonl`, `best/`, `last/`, `results.csv`, `curves.svg`.

use std::io::Write;
use std::path::{Path, PathBuf};

use dept_core::atomic::write_atomically;
use serde_json::Value;

use crate::TrainError;

pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn create(root: &Path) -> Result<Self, TrainError> {
        std::fs::create_dir_all(root).map_err(|source| TrainError::Write {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(RunDir {
            root: root.to_path_buf(),
        })
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

fn write_text(path: &Path, text: &str) -> Result<(), TrainError> {
    write_atomically(path, |tmp| std::fs::write(tmp, text.as_bytes())).map_err(|source| {
        TrainError::Write {
            path: path.to_path_buf(),
            source,
        }
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
            .map_err(|source| TrainError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn append(&mut self, record: &Value) -> Result<(), TrainError> {
        let line = format!("{record}\n");
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .map_err(|source| TrainError::Write {
                path: self.path.clone(),
                source,
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
    fn csv_cells_are_escaped() {
        let csv = results_csv(&[
            ("task".into(), "rte".into()),
            ("note".into(), "a,\"b\"".into()),
        ]);
        assert_eq!(csv, "task,note\nrte,\"a,\"\"b\"\"\"\n");
    }
}
