//! Finding a task's files under a data dir and turning them into split examples.
//!
//! Data-dir convention: `<data_dir>/<TASK>/<files>`, where `<TASK>` is one of the task's folder names
//! ([`crate::Task::dirs`], e.g. `RTE`, `SST-2`, `CB` or `SuperGLUE-CB`) and the files are either the original
//! release files (see each family's docs) or a Hugging Face parquet export of the hub dataset the official code loads
//! (`<split>-00000-of-00001.parquet`, `<split>/0000.parquet`, or either inside a config sub-folder). Original files
//! win when both are present.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::example::TextExample;
use crate::readers::parquet::read_parquet;
use crate::record::Record;
use crate::splits::subsampled_indices;
use crate::task::{SourceSplit, Split, Task};
use crate::tasks::{original_candidates, read_original};

/// Where a source split was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFiles {
    /// One original release file.
    Original(PathBuf),
    /// One or more parquet shards, in name order.
    Parquet(Vec<PathBuf>),
}

/// Locates the files of a source split.
pub fn find_source(task: &Task, data_dir: &Path, split: SourceSplit) -> Result<SourceFiles> {
    let mut tried = Vec::new();
    let dirs: Vec<PathBuf> = task
        .dirs
        .iter()
        .map(|d| data_dir.join(d))
        .filter(|p| p.is_dir())
        .collect();
    for dir in &dirs {
        for candidate in original_candidates(task, split) {
            let path = dir.join(&candidate);
            if path.is_file() {
                return Ok(SourceFiles::Original(path));
            }
            tried.push(path.display().to_string());
        }
    }
    for dir in &dirs {
        let shards = parquet_shards(dir, split.hub_name());
        if !shards.is_empty() {
            return Ok(SourceFiles::Parquet(shards));
        }
        tried.push(format!(
            "{}/**/{}-*.parquet",
            dir.display(),
            split.hub_name()
        ));
    }
    if dirs.is_empty() {
        tried = task
            .dirs
            .iter()
            .map(|d| data_dir.join(d).display().to_string() + "/")
            .collect();
    }
    Err(DataError::MissingData {
        task: task.name.to_string(),
        split: split.hub_name().to_string(),
        tried: tried.join(", "),
    })
}

/// Parquet shards for a hub split: `<split>-*.parquet`, `<split>.parquet`, or any `.parquet` in a folder named
/// `<split>`, searched up to three levels deep.
fn parquet_shards(dir: &Path, split: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    collect_parquet(dir, split, 0, false, &mut found);
    found.sort();
    found
}

fn collect_parquet(
    dir: &Path,
    split: &str,
    depth: usize,
    in_split_dir: bool,
    found: &mut Vec<PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if depth < 3 {
                collect_parquet(&path, split, depth + 1, name == split, found);
            }
        } else if name.ends_with(".parquet") {
            let stem = name.trim_end_matches(".parquet");
            let matches = in_split_dir
                || stem == split
                || stem.strip_prefix(split).is_some_and(|r| r.starts_with('-'));
            if matches {
                found.push(path);
            }
        }
    }
}

/// Reads a source split into hub-schema records, in the hub's row order.
pub fn read_source(task: &Task, data_dir: &Path, split: SourceSplit) -> Result<Vec<Record>> {
    match find_source(task, data_dir, split)? {
        SourceFiles::Original(path) => read_original(task, split, &path),
        SourceFiles::Parquet(shards) => {
            let mut records = Vec::new();
            for shard in shards {
                records.extend(read_parquet(&shard)?);
            }
            Ok(records)
        }
    }
}

/// Formats records in order (ReCoRD expands one record into one example per answer).
pub fn format_records(
    task: &Task,
    records: &[Record],
    indices: &[usize],
) -> Result<Vec<TextExample>> {
    let mut out = Vec::with_capacity(indices.len());
    for &i in indices {
        out.extend(task.format(&records[i], i)?);
    }
    Ok(out)
}

/// The examples of one split, exactly as the official code derives and formats them.
///
/// `seed` shuffles the re-split parts; pass [`crate::OFFICIAL_SPLIT_SEED`] (42) for the paper's rows.
pub fn load_split(
    task: &Task,
    data_dir: &Path,
    split: Split,
    seed: u64,
) -> Result<Vec<TextExample>> {
    load_split_subsampled(task, data_dir, split, seed, None)
}

/// [`load_split`] with the official `--max_*_samples` cap (`n_obs` source rows, chosen by
/// [`subsampled_indices`] before formatting).
pub fn load_split_subsampled(
    task: &Task,
    data_dir: &Path,
    split: Split,
    seed: u64,
    n_obs: Option<usize>,
) -> Result<Vec<TextExample>> {
    let records = read_source(task, data_dir, task.source_split(split))?;
    let indices = subsampled_indices(task, split, records.len(), seed, n_obs);
    format_records(task, &records, &indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::all_tasks;
    use crate::tasks::original_candidates;

    const SOURCE_SPLITS: [SourceSplit; 5] = [
        SourceSplit::Train,
        SourceSplit::Validation,
        SourceSplit::Test,
        SourceSplit::ValidationMatched,
        SourceSplit::ValidationMismatched,
    ];

    /// Every task's reader on empty, blank, short and wrongly-typed files: an error naming the file, or a split
    /// (possibly empty), never a panic.
    #[test]
    fn malformed_files_never_panic() {
        let contents: [&[u8]; 9] = [
            b"",
            b"\n\n",
            b"garbage",
            b"a\tb\n1\t2",
            b"{}\n",
            b"[1]\n",
            b"{\"label\": 7, \"idx\": -1, \"answers\": 3}\n",
            b"\"3\",\"text\"\n\"1\"\n",
            b"\x1f\x8b\x08",
        ];
        for task in all_tasks() {
            for content in contents {
                let dir = tempfile::tempdir().unwrap();
                let task_dir = dir.path().join(task.dirs[0]);
                for split in SOURCE_SPLITS {
                    for name in original_candidates(task, split) {
                        let path = task_dir.join(name);
                        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                        std::fs::write(&path, content).unwrap();
                    }
                }
                for split in Split::ALL {
                    if let Err(e) = load_split(task, dir.path(), split, 42) {
                        let message = e.to_string();
                        assert!(
                            message.contains(&*task_dir.to_string_lossy()),
                            "{} {split} on {content:?}: error does not name the file: {message}",
                            task.name
                        );
                    }
                }
            }
        }
    }
}
