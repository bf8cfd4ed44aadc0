//! The end-to-end runs' fixture: a temporary folder with a tiny random T5 (`model/`) and synthetic RTE-format data
//! (`data/`), and the configs of runs on them.

use std::path::{Path, PathBuf};

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    /// A tiny T5 and `n_train` / `n_dev` synthetic RTE rows (the dev rows are halved into validation and test).
    pub fn new(n_train: usize, n_dev: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        dept_models::tiny::write_tiny_t5(
            &root.join("model"),
            &dept_data::synthetic::vocabulary(),
            32,
            "gated-gelu",
            1,
        )
        .unwrap();
        dept_data::synthetic::write_rte_like(&root.join("data"), n_train, n_dev, 7).unwrap();
        Fixture { _dir: dir, root }
    }

    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.root.join(run)
    }

    /// `<root>/<name>.yaml`: an RTE run of the tiny model on the synthetic data into `output_dir`, with the
    /// `key: value` lines of `lines` (a later line replaces an earlier one of the same key, in its place).
    pub fn write_config(&self, name: &str, output_dir: &Path, lines: &str) -> PathBuf {
        let quoted = |p: &Path| format!("{:?}", p.display().to_string());
        let base = format!(
            "task: rte\nmodel: {}\ndata_dir: {}\noutput_dir: {}\n",
            quoted(&self.root.join("model")),
            quoted(&self.root.join("data")),
            quoted(output_dir),
        );
        let mut merged: Vec<(String, String)> = Vec::new();
        for line in base
            .lines()
            .chain(lines.lines())
            .filter(|l| !l.trim().is_empty())
        {
            let (key, value) = line.split_once(':').unwrap();
            let (key, value) = (key.trim().to_string(), value.trim().to_string());
            match merged.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => merged.push((key, value)),
            }
        }
        let yaml: String = merged.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let path = self.root.join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        path
    }
}
