//! `manifest.json`: what a checkpoint folder must hold, written last into it, so that a file truncated, changed
//! or lost after the checkpoint was written is found before a run resumes from it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::STATE_FILE;

pub const MANIFEST_FILE: &str = "manifest.json";
const FORMAT: u32 = 1;

/// Each file's size and SHA-256, the step the checkpoint was taken after, and the fingerprint of the experiment
/// config that trained it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub step: u64,
    pub config_sha256: String,
    pub files: BTreeMap<String, FileDigest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    pub bytes: u64,
    pub sha256: String,
}

/// Why a checkpoint folder cannot be trusted, one item per finding.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Written by a version of dept without manifests: it cannot be verified (it is still used).
    NoManifest,
    ManifestUnreadable(String),
    Missing(String),
    Truncated {
        file: String,
        bytes: u64,
        expected: u64,
    },
    /// Same size, other bytes: a flipped bit or an overwrite.
    Changed(String),
    ConfigChanged {
        saved: String,
        now: String,
    },
    /// The manifest's own fields disagree with the folder (its step with `trainer_state.json`'s, an unknown
    /// format): the manifest itself was damaged.
    Inconsistent(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NoManifest => write!(f, "no {MANIFEST_FILE}"),
            Problem::ManifestUnreadable(e) => write!(f, "{MANIFEST_FILE} is unreadable: {e}"),
            Problem::Missing(file) => write!(f, "{file} is missing"),
            Problem::Truncated {
                file,
                bytes,
                expected,
            } => write!(f, "{file} is truncated: {bytes} bytes, {expected} written"),
            Problem::Changed(file) => write!(
                f,
                "{file} changed after it was written (its SHA-256 differs from the manifest's)"
            ),
            Problem::Inconsistent(what) => write!(f, "{MANIFEST_FILE} is inconsistent: {what}"),
            Problem::ConfigChanged { saved, now } => write!(
                f,
                "it was trained under another config (fingerprint {} there, {} now)",
                short(saved),
                short(now)
            ),
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

impl Manifest {
    /// Digests every file now in `dir` (the manifest itself aside) and writes the manifest there.
    pub fn write(dir: &Path, step: u64, config_sha256: &str) -> std::io::Result<Manifest> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name == MANIFEST_FILE || name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            files.insert(name, digest(&entry.path())?);
        }
        let manifest = Manifest {
            format: FORMAT,
            step,
            config_sha256: config_sha256.to_string(),
            files,
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(std::io::Error::other)?;
        dept_core::atomic::write_atomically(&dir.join(MANIFEST_FILE), |tmp| {
            std::fs::write(tmp, text.as_bytes())
        })?;
        Ok(manifest)
    }

    pub fn read(dir: &Path) -> Result<Manifest, Problem> {
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Problem::NoManifest),
            Err(e) => return Err(Problem::ManifestUnreadable(e.to_string())),
        };
        serde_json::from_str(&text).map_err(|e| Problem::ManifestUnreadable(e.to_string()))
    }
}

/// Checks `dir` against its manifest (and, when given, the config fingerprint the run has now): the manifest,
/// or every problem found.
pub fn verify(dir: &Path, config_sha256: Option<&str>) -> Result<Manifest, Vec<Problem>> {
    let manifest = Manifest::read(dir).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    if manifest.format != FORMAT {
        problems.push(Problem::Inconsistent(format!(
            "format {}, expected {FORMAT}",
            manifest.format
        )));
    }
    for (name, expected) in &manifest.files {
        let path = dir.join(name);
        match std::fs::metadata(&path) {
            Err(_) => problems.push(Problem::Missing(name.clone())),
            Ok(meta) if meta.len() != expected.bytes => problems.push(Problem::Truncated {
                file: name.clone(),
                bytes: meta.len(),
                expected: expected.bytes,
            }),
            Ok(_) => match digest(&path) {
                Ok(found) if found.sha256 == expected.sha256 => {}
                Ok(_) => problems.push(Problem::Changed(name.clone())),
                Err(e) => problems.push(Problem::ManifestUnreadable(format!("{name}: {e}"))),
            },
        }
    }
    if problems.is_empty() {
        if let Some(step) = state_step(dir) {
            if step != manifest.step {
                problems.push(Problem::Inconsistent(format!(
                    "step {}, while {STATE_FILE} says {step}",
                    manifest.step
                )));
            }
        }
    }
    if let Some(now) = config_sha256 {
        if now != manifest.config_sha256 {
            problems.push(Problem::ConfigChanged {
                saved: manifest.config_sha256.clone(),
                now: now.to_string(),
            });
        }
    }
    if problems.is_empty() {
        Ok(manifest)
    } else {
        Err(problems)
    }
}

/// The step in the folder's trainer state (a checkpoint without one, such as a bare adapter, has none to check).
fn state_step(dir: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    let state: serde_json::Value = serde_json::from_str(&text).ok()?;
    state.get("step")?.as_u64()
}

fn digest(path: &Path) -> std::io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok(FileDigest {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

/// SHA-256 of some bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.safetensors"), b"0123456789").unwrap();
        std::fs::write(dir.path().join("trainer_state.json"), b"{}").unwrap();
        Manifest::write(dir.path(), 7, "abc").unwrap();
        dir
    }

    #[test]
    fn an_intact_folder_verifies_and_each_fault_is_named() {
        let dir = folder();
        let manifest = verify(dir.path(), Some("abc")).unwrap();
        assert_eq!((manifest.step, manifest.files.len()), (7, 2));
        // SHA-256 of "0123456789" (from Python's hashlib).
        assert_eq!(
            manifest.files["a.safetensors"].sha256,
            "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882"
        );

        std::fs::write(dir.path().join("a.safetensors"), b"0123456780").unwrap();
        assert_eq!(
            verify(dir.path(), Some("abc")).unwrap_err(),
            [Problem::Changed("a.safetensors".into())]
        );
        std::fs::write(dir.path().join("a.safetensors"), b"01234").unwrap();
        assert_eq!(
            verify(dir.path(), None).unwrap_err(),
            [Problem::Truncated {
                file: "a.safetensors".into(),
                bytes: 5,
                expected: 10
            }]
        );
        std::fs::remove_file(dir.path().join("a.safetensors")).unwrap();
        let problems = verify(dir.path(), Some("xyz")).unwrap_err();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].to_string(), "a.safetensors is missing");
        assert!(
            problems[1].to_string().contains("another config"),
            "{}",
            problems[1]
        );
    }

    #[test]
    fn a_manifest_that_disagrees_with_the_trainer_state_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(STATE_FILE), b"{\"step\": 7}").unwrap();
        Manifest::write(dir.path(), 7, "abc").unwrap();
        verify(dir.path(), None).unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"step\": 7", "\"step\": 8")).unwrap();
        let problems = verify(dir.path(), None).unwrap_err();
        assert_eq!(
            problems[0].to_string(),
            "manifest.json is inconsistent: step 8, while trainer_state.json says 7"
        );
    }

    #[test]
    fn a_missing_or_broken_manifest_is_a_problem_of_its_own() {
        let dir = folder();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{\"format\":1,").unwrap();
        let problems = verify(dir.path(), None).unwrap_err();
        assert!(
            matches!(problems[..], [Problem::ManifestUnreadable(_)]),
            "{problems:?}"
        );
        std::fs::remove_file(dir.path().join(MANIFEST_FILE)).unwrap();
        assert_eq!(verify(dir.path(), None).unwrap_err(), [Problem::NoManifest]);
    }
}
