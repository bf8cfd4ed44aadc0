//! The Hugging Face hub cache, in `huggingface_hub`'s layout, so that a model another tool downloaded is found
//! here and one downloaded here is found by transformers:
//!
//! ```text
//! $HF_HUB_CACHE/models--google--flan-t5-base/
//!   blobs/<etag>                      each file's bytes, named by its ETag (SHA-256 for LFS files)
//!   refs/main                         the commit a branch or tag pointed to when last resolved
//!   snapshots/<commit>/config.json -> ../../blobs/<etag>
//! ```
//!
//! The root is `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
//! `~/.cache/huggingface/hub`, as `huggingface_hub` finds it.

use std::path::{Path, PathBuf};

use crate::{HubError, RepoSpec};

#[derive(Debug, Clone)]
pub struct HubCache {
    root: PathBuf,
}

impl HubCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HubCache { root: root.into() }
    }

    /// The cache the environment names (see the module's documentation).
    pub fn from_env() -> Result<Self, HubError> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = var("HF_HUB_CACHE")
            .or_else(|| var("HF_HOME").map(|home| home.join("hub")))
            .or_else(|| var("XDG_CACHE_HOME").map(|cache| cache.join("huggingface").join("hub")))
            .or_else(|| var("HOME").map(|home| home.join(".cache").join("huggingface").join("hub")))
            .ok_or_else(|| {
                HubError::Invalid(
                    "no Hugging Face cache folder: set HF_HOME or HF_HUB_CACHE (HOME is unset)"
                        .into(),
                )
            })?;
        Ok(HubCache { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn repo(&self, spec: &RepoSpec) -> PathBuf {
        self.root.join(spec.cache_folder())
    }

    /// The commit `spec` names: itself when it is a commit hash, else what its ref last pointed to.
    pub fn commit(&self, spec: &RepoSpec) -> Option<String> {
        if spec.is_commit() {
            return Some(spec.revision.clone());
        }
        let text =
            std::fs::read_to_string(self.repo(spec).join("refs").join(&spec.revision)).ok()?;
        let commit = text.trim();
        (!commit.is_empty()).then(|| commit.to_string())
    }

    pub fn snapshot(&self, spec: &RepoSpec, commit: &str) -> PathBuf {
        self.repo(spec).join("snapshots").join(commit)
    }

    pub(crate) fn blob(&self, spec: &RepoSpec, etag: &str) -> PathBuf {
        self.repo(spec).join("blobs").join(etag)
    }

    /// Where a download in progress is kept, so that the next attempt resumes it.
    pub(crate) fn incomplete(&self, spec: &RepoSpec, etag: &str) -> PathBuf {
        self.repo(spec)
            .join("blobs")
            .join(format!("{etag}.incomplete"))
    }

    /// Records that `revision` resolved to `commit` (atomically: a reader never sees half a hash).
    pub(crate) fn write_ref(&self, spec: &RepoSpec, commit: &str) -> Result<(), HubError> {
        let path = self.repo(spec).join("refs").join(&spec.revision);
        write_new(&path, commit.as_bytes())
    }

    /// Links `snapshots/<commit>/<filename>` to its blob (relative, as `huggingface_hub` links it).
    pub(crate) fn link(
        &self,
        spec: &RepoSpec,
        commit: &str,
        filename: &str,
        etag: &str,
    ) -> Result<PathBuf, HubError> {
        let link = self.snapshot(spec, commit).join(filename);
        let depth = 2 + filename.matches('/').count();
        let target = PathBuf::from("../".repeat(depth)).join("blobs").join(etag);
        if std::fs::read_link(&link).is_ok_and(|existing| existing == target) {
            return Ok(link);
        }
        let parent = link.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
        let tmp = link.with_extension("link-tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp).map_err(|e| HubError::io(&tmp, e))?;
        std::fs::rename(&tmp, &link).map_err(|e| HubError::io(&link, e))?;
        Ok(link)
    }
}

/// Writes `bytes` to a temporary sibling and renames it over `path`.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| HubError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| HubError::io(path, e))
}
