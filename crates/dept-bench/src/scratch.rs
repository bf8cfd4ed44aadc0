//! The benches' scratch folders: one per bench and process, removed when dropped, on an error too.

use std::path::{Path, PathBuf};

use crate::error::{BenchError, Result};

/// `<temp>/dept-<name>-<pid>` (the pid keeps concurrent runs apart), removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates the folder.
    pub fn create(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("dept-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::io("creating", &dir, e))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_folder_is_gone_once_dropped() {
        let scratch = Scratch::create("scratch-test").unwrap();
        let path = scratch.path().to_path_buf();
        std::fs::write(scratch.join("file"), "x").unwrap();
        assert!(path.is_dir());
        drop(scratch);
        assert!(!path.exists());
    }
}
