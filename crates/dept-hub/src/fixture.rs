//! A hub-shaped HTTP server on loopback for tests (here and in the workspace's end-to-end tests): the hub's
//! `/<repo>/resolve/<revision>/<file>` routes with its headers (`X-Repo-Commit`, an ETag that is git's blob SHA-1
//! for regular files; LFS files redirected to storage with `X-Linked-Etag` = SHA-256 and `X-Linked-Size`), `404`s
//! with the hub's `X-Error-Code`, `Range` requests, and two faults to inject: a connection cut mid-file and
//! corrupted bytes. Every request is logged. It serves one commit, [`COMMIT`], as `main`, as the parquet branch
//! `refs/convert/parquet` and by its hash; datasets under `/datasets/<id>/…`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use sha1::Digest as _;

/// The one commit every fixture repository is at.
pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// A running fixture hub; it serves until the process ends.
#[derive(Clone)]
pub struct FixtureHub {
    state: Arc<Mutex<State>>,
    endpoint: String,
}

impl FixtureHub {
    pub fn start() -> std::io::Result<FixtureHub> {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let served = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = served.clone();
                std::thread::spawn(move || handle(stream, &state));
            }
        });
        Ok(FixtureHub { state, endpoint })
    }

    /// The value for `HF_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds (or replaces) a repository: `(file name, bytes, stored with LFS)`.
    pub fn add_repo(&self, id: &str, files: Vec<(String, Vec<u8>, bool)>) {
        let files = files
            .into_iter()
            .map(|(name, bytes, lfs)| (name, (bytes, lfs)))
            .collect();
        self.state().repos.insert(id.to_string(), Repo { files });
    }

    /// Adds (or replaces) a dataset repository (served under `/datasets/<id>/…`).
    pub fn add_dataset(&self, id: &str, files: Vec<(String, Vec<u8>, bool)>) {
        self.add_repo(&format!("datasets/{id}"), files);
    }

    /// Adds a repository holding every file of a model folder, `*.safetensors` with LFS as on the hub.
    pub fn add_folder(&self, id: &str, dir: &Path) -> std::io::Result<()> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let lfs = name.ends_with(".safetensors");
                files.push((name, std::fs::read(entry.path())?, lfs));
            }
        }
        self.add_repo(id, files);
        Ok(())
    }

    /// Removes one file from a repository.
    pub fn remove_file(&self, id: &str, name: &str) {
        if let Some(repo) = self.state().repos.get_mut(id) {
            repo.files.remove(name);
        }
    }

    /// The next LFS download sends this many bytes of its body, then hangs up.
    pub fn cut_next_download_after(&self, bytes: usize) {
        self.state().faults.cut_after = Some(bytes);
    }

    /// Every LFS download has its first byte flipped while set.
    pub fn set_corrupt(&self, corrupt: bool) {
        self.state().faults.corrupt = corrupt;
    }

    /// `"<METHOD> <path> <Some(range start) | None>"` per request, in order.
    pub fn log(&self) -> Vec<String> {
        self.state().log.clone()
    }
}

#[derive(Default)]
struct Faults {
    /// Cut the connection after this many body bytes of the next LFS download.
    cut_after: Option<usize>,
    /// Flip a byte of every LFS download.
    corrupt: bool,
}

struct Repo {
    /// name → (bytes, stored with LFS)
    files: HashMap<String, (Vec<u8>, bool)>,
}

#[derive(Default)]
struct State {
    repos: HashMap<String, Repo>,
    faults: Faults,
    /// Every request line with its Range header, in order.
    log: Vec<String>,
}

fn sha256(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn git_blob_sha1(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex(&hasher.finalize())
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn handle(mut stream: TcpStream, state: &Mutex<State>) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut range_from = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("range: bytes=") {
                range_from = value.trim_end_matches('-').parse::<usize>().ok();
            }
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_string(),
        );
        let mut state = state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        state.log.push(format!("{method} {path} {range_from:?}"));
        let respond = |stream: &mut TcpStream,
                       status: &str,
                       headers: &[(String, String)],
                       body: &[u8],
                       head: bool| {
            let mut text = format!("HTTP/1.1 {status}\r\n");
            for (k, v) in headers {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let _ = stream.write_all(text.as_bytes());
            if !head {
                let _ = stream.write_all(body);
            }
        };
        let not_found = |code: &str| vec![("X-Error-Code".to_string(), code.to_string())];
        if let Some(sha) = path.strip_prefix("/cdn/") {
            // LFS storage: whole file or a range, possibly cut or corrupted.
            let found = state
                .repos
                .values()
                .flat_map(|r| r.files.values())
                .find(|(bytes, _)| sha256(bytes) == sha)
                .map(|(bytes, _)| bytes.clone());
            let Some(mut bytes) = found else {
                respond(&mut stream, "404 Not Found", &[], b"", false);
                continue;
            };
            if state.faults.corrupt {
                bytes[0] ^= 0xff;
            }
            let from = range_from.unwrap_or(0).min(bytes.len());
            let body = &bytes[from..];
            let status = if range_from.is_some() {
                "206 Partial Content"
            } else {
                "200 OK"
            };
            if let Some(cut) = state.faults.cut_after.take() {
                let text = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(text.as_bytes());
                let _ = stream.write_all(&body[..cut.min(body.len())]);
                return; // hang up mid-body
            }
            respond(&mut stream, status, &[], body, false);
            continue;
        }
        // /<org>/<name>/resolve/<revision>/<file>
        let Some((repo_id, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
            respond(&mut stream, "404 Not Found", &[], b"", false);
            continue;
        };
        let Some((revision, file)) = rest.split_once('/') else {
            respond(&mut stream, "404 Not Found", &[], b"", false);
            continue;
        };
        let head = method == "HEAD";
        let Some(repo) = state.repos.get(repo_id) else {
            respond(
                &mut stream,
                "404 Not Found",
                &not_found("RepoNotFound"),
                b"",
                head,
            );
            continue;
        };
        if !["main", COMMIT, "refs%2Fconvert%2Fparquet"].contains(&revision) {
            respond(
                &mut stream,
                "404 Not Found",
                &not_found("RevisionNotFound"),
                b"",
                head,
            );
            continue;
        }
        let Some((bytes, lfs)) = repo.files.get(file) else {
            respond(
                &mut stream,
                "404 Not Found",
                &not_found("EntryNotFound"),
                b"",
                head,
            );
            continue;
        };
        let commit = ("X-Repo-Commit".to_string(), COMMIT.to_string());
        if *lfs {
            let headers = vec![
                commit,
                ("X-Linked-Etag".into(), format!("\"{}\"", sha256(bytes))),
                ("X-Linked-Size".into(), bytes.len().to_string()),
                ("Location".into(), format!("/cdn/{}", sha256(bytes))),
            ];
            respond(&mut stream, "302 Found", &headers, b"", head);
        } else {
            let headers = vec![
                commit,
                ("ETag".into(), format!("\"{}\"", git_blob_sha1(bytes))),
            ];
            respond(&mut stream, "200 OK", &headers, bytes, head);
        }
    }
}
