//! Talking to the hub (or any server with its routes, `HF_ENDPOINT`): a file's metadata from a `HEAD` of
//! `/<repo>/resolve/<revision>/<file>` (commit, ETag, size), and its bytes by `GET`, resumed with a `Range` request
//! after a cut connection and checked against the ETag before they enter the cache.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use sha1::Digest as _;

use crate::{HubError, RepoSpec};

/// What the hub says of one file at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The commit the revision resolved to.
    pub commit: String,
    /// The file's ETag: the SHA-256 of its bytes for LFS files, git's blob SHA-1 for the others.
    pub etag: String,
    pub size: Option<u64>,
}

/// A client of the hub's file routes.
pub struct Hub {
    endpoint: String,
    token: Option<String>,
    /// Reads metadata: redirects are not followed (an LFS file's headers are on the hub's redirect).
    head: ureq::Agent,
    /// Fetches bytes, following redirects to the storage the hub points to.
    get: ureq::Agent,
    attempts: u32,
}

impl Hub {
    /// `HF_ENDPOINT` (default `https://huggingface.co`) and `HF_TOKEN` (or `HUGGING_FACE_HUB_TOKEN`) for gated
    /// and private models.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Hub::new(
            &var("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".into()),
            var("HF_TOKEN").or_else(|| var("HUGGING_FACE_HUB_TOKEN")),
        )
    }

    pub fn new(endpoint: &str, token: Option<String>) -> Self {
        let agent = |redirects: u32| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(redirects)
                .timeout_connect(Some(Duration::from_secs(20)))
                // A stalled transfer fails (and is resumed) rather than hanging.
                .timeout_recv_body(Some(Duration::from_secs(60)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                .user_agent(concat!("dept/", env!("CARGO_PKG_VERSION")))
                .build()
                .into()
        };
        Hub {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            head: agent(0),
            get: agent(5),
            attempts: 5,
        }
    }

    pub fn url(&self, spec: &RepoSpec, filename: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{filename}",
            self.endpoint,
            spec.route(),
            // A revision such as refs/convert/parquet is one path segment.
            spec.revision.replace('/', "%2F")
        )
    }

    /// The file's metadata, `None` when the repository has no such file at that revision.
    pub fn metadata(&self, spec: &RepoSpec, filename: &str) -> Result<Option<FileMeta>, HubError> {
        let url = self.url(spec, filename);
        let mut request = self.head.head(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let response = request.call().map_err(|e| HubError::Network {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let remote = |message: String| HubError::Remote {
            url: url.clone(),
            message,
        };
        match status {
            200..=399 => {}
            404 if header("x-error-code").as_deref() == Some("EntryNotFound") => return Ok(None),
            404 => {
                return Err(remote(format!(
                    "not found ({}): check the repository id and revision",
                    header("x-error-code").unwrap_or_else(|| "404".into())
                )))
            }
            401 | 403 => {
                return Err(remote(format!(
                    "{status}: the repository is private or gated, or the token is refused; accept its licence on \
                     the hub and set HF_TOKEN"
                )))
            }
            _ => return Err(remote(format!("the hub answered {status}"))),
        }
        let commit = header("x-repo-commit").ok_or_else(|| {
            remote("no X-Repo-Commit header: is HF_ENDPOINT a Hugging Face hub?".into())
        })?;
        let etag = header("x-linked-etag")
            .or_else(|| header("etag"))
            .map(|tag| tag.trim_start_matches("W/").trim_matches('"').to_string())
            .filter(|tag| {
                !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
            .ok_or_else(|| remote("no usable ETag header".into()))?;
        let size = header("x-linked-size")
            .or_else(|| header("content-length"))
            .and_then(|v| v.parse().ok());
        Ok(Some(FileMeta { commit, etag, size }))
    }

    /// Downloads the file into `partial` (resuming what is already there), checks it against `meta`, and returns
    /// when `partial` holds exactly the file. On a checksum mismatch `partial` is deleted.
    pub fn download(
        &self,
        spec: &RepoSpec,
        filename: &str,
        meta: &FileMeta,
        partial: &Path,
    ) -> Result<(), HubError> {
        let url = self.url(spec, filename);
        if let Some(parent) = partial.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
        }
        let progress = indicatif::ProgressBar::new(meta.size.unwrap_or(0));
        progress.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        progress.set_message(format!("{} {filename}", spec.id));
        let mut last_error = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 * (1 << attempt.min(4))));
            }
            match self.fetch_once(&url, partial, meta, &progress) {
                Ok(()) => {
                    progress.finish_and_clear();
                    return verify(&url, partial, meta);
                }
                Err(Fetch::Fatal(error)) => {
                    progress.abandon();
                    return Err(error);
                }
                Err(Fetch::Retry(message)) => {
                    tracing::warn!(
                        "{url}: {message}; resuming (attempt {} of {})",
                        attempt + 2,
                        self.attempts
                    );
                    last_error = message;
                }
            }
        }
        progress.abandon();
        Err(HubError::Network {
            url,
            message: format!(
                "{last_error}; gave up after {} attempts (the part downloaded is kept in {}; run again to resume)",
                self.attempts,
                partial.display()
            ),
        })
    }

    fn fetch_once(
        &self,
        url: &str,
        partial: &Path,
        meta: &FileMeta,
        progress: &indicatif::ProgressBar,
    ) -> Result<(), Fetch> {
        let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if meta.size.is_some_and(|size| have == size) {
            return Ok(());
        }
        let mut request = self.get.get(url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        if have > 0 {
            request = request.header("Range", &format!("bytes={have}-"));
        }
        let response = request.call().map_err(|e| Fetch::Retry(e.to_string()))?;
        let status = response.status().as_u16();
        let append = match status {
            206 => true,
            // The server ignored the range: start again.
            200 => false,
            // More than the file holds: what is there is stale.
            416 => {
                let _ = std::fs::remove_file(partial);
                return Err(Fetch::Retry(
                    "the partial download is longer than the file".into(),
                ));
            }
            500..=599 | 429 => return Err(Fetch::Retry(format!("the server answered {status}"))),
            _ => {
                return Err(Fetch::Fatal(HubError::Remote {
                    url: url.to_string(),
                    message: format!("the download answered {status}"),
                }))
            }
        };
        let io = |e: std::io::Error| Fetch::Fatal(HubError::io(partial, e));
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(partial)
            .map_err(io)?;
        progress.set_position(if append { have } else { 0 });
        let mut body = response.into_body().into_reader();
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    file.sync_all().map_err(io)?;
                    return Err(Fetch::Retry(format!("the connection broke: {e}")));
                }
            };
            file.write_all(&buffer[..n]).map_err(io)?;
            progress.inc(n as u64);
        }
        file.sync_all().map_err(io)?;
        let got = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        match meta.size {
            Some(size) if got < size => Err(Fetch::Retry(format!(
                "the body ended at {got} of {size} bytes"
            ))),
            _ => Ok(()),
        }
    }
}

enum Fetch {
    Retry(String),
    Fatal(HubError),
}

/// Checks the downloaded bytes against the size and the ETag: SHA-256 (LFS files) or git's blob SHA-1 (the hub's
/// ETag of a regular file); an ETag of another form cannot be checked and is only logged.
fn verify(url: &str, partial: &Path, meta: &FileMeta) -> Result<(), HubError> {
    let bytes = std::fs::read(partial).map_err(|e| HubError::io(partial, e))?;
    let mismatch = |message: String| {
        let _ = std::fs::remove_file(partial);
        Err(HubError::Checksum {
            url: url.to_string(),
            message,
        })
    };
    if let Some(size) = meta.size.filter(|&size| size != bytes.len() as u64) {
        return mismatch(format!("{} bytes, expected {size}", bytes.len()));
    }
    let hex = |digest: &[u8]| {
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let tag = meta.etag.to_ascii_lowercase();
    let actual = match tag.len() {
        64 => hex(&sha2::Sha256::digest(&bytes)),
        40 => {
            let mut hasher = sha1::Sha1::new();
            hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
            hasher.update(&bytes);
            hex(&hasher.finalize())
        }
        _ => {
            tracing::warn!(
                "{url}: ETag {} is not a checksum; the download is not verified",
                meta.etag
            );
            return Ok(());
        }
    };
    if actual != tag {
        return mismatch(format!("hash {actual}, the hub's ETag {}", meta.etag));
    }
    Ok(())
}
