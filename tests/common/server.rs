//! `dept serve` for the tests: the process (started on a free loopback port, its address read from the line it
//! prints when ready, stderr kept in a file, killed when dropped) and a minimal HTTP/1.1 client over `TcpStream`,
//! so that nothing between a test and the wire fixes a bad answer up. Every read is bounded by a timeout, so a test
//! cannot hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The token servers started for the admin routes get (`--admin-token`).
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// No answer may take longer than this (a hang fails the test instead of stalling it).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// One answer: status, headers (names lower-cased) and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "a {} answer whose body is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

pub fn connect(address: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    Ok(stream)
}

/// The bytes of one request (one per connection: `Connection: close`).
pub fn request_bytes(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub fn exchange(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Reply> {
    let mut stream = connect(address)?;
    // A server may answer (413) and close before it has read the whole body: then the answer is what counts, not
    // the failed write.
    let written = stream.write_all(&request_bytes(method, target, headers, body));
    match read_reply(&mut stream) {
        Ok(reply) => Ok(reply),
        Err(error) => {
            written?;
            Err(error)
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn broken(message: String) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, message)
}

/// Status line, headers, then a body of `Content-Length` bytes (or to the end of the connection without one).
pub fn read_reply(stream: &mut TcpStream) -> std::io::Result<Reply> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(at) = find(&buffer, b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!(
                    "the connection closed after {} bytes, before the end of an answer's head",
                    buffer.len()
                ),
            ));
        }
        buffer.extend_from_slice(&chunk[..n]);
        if buffer.len() > 1 << 20 {
            return Err(broken("an answer head over 1 MiB".into()));
        }
    };
    let head = std::str::from_utf8(&buffer[..head_end])
        .map_err(|e| broken(format!("an answer head that is not UTF-8: {e}")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| broken(format!("not an HTTP/1.1 status line: {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let value = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    if value("transfer-encoding").is_some() {
        return Err(broken(format!(
            "a chunked answer (this client reads Content-Length bodies): {head}"
        )));
    }
    let mut body = buffer[head_end + 4..].to_vec();
    match value("content-length") {
        Some(length) => {
            let length: usize = length
                .parse()
                .map_err(|_| broken(format!("Content-Length {length:?}")))?;
            while body.len() < length {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("the body ended at {} of {length} bytes", body.len()),
                    ));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(length);
        }
        None => {
            stream.read_to_end(&mut body)?;
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
    stdout: Arc<Mutex<String>>,
    stderr_log: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Server {
    /// `dept serve --model MODEL --port 0 --threads 1 args…`, once it prints that it listens (at most 60 s).
    pub fn start(model: &Path, args: &[&str]) -> Server {
        let scratch = tempfile::tempdir().unwrap();
        // stderr goes to a file: a pipe nobody reads would block a server that logs a lot.
        let stderr_log = scratch.path().join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dept"))
            // One libtorch thread: on a busy 2-core machine a second one waits for a core at every operation, and a
            // tiny request then takes 10 to 20 times as long.
            .args([
                "serve",
                "--model",
                super::cli::path(model),
                "--port",
                "0",
                "--threads",
                "1",
            ])
            .args(args)
            .env_remove("DEPT_LOG")
            .env_remove("DEPT_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .expect("start dept serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let (found, listening) = mpsc::channel();
        {
            let mut pipe = child.stdout.take().expect("piped stdout");
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                let mut bytes = [0u8; 4096];
                let mut line = String::new();
                while let Ok(n) = pipe.read(&mut bytes) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&bytes[..n]).to_string();
                    stdout.lock().unwrap().push_str(&text);
                    line.push_str(&text);
                    while let Some(end) = line.find('\n') {
                        let done: String = line.drain(..=end).collect();
                        if let Some(rest) = done.strip_prefix("dept serve: listening on http://") {
                            let _ = found
                                .send(rest.split_whitespace().next().unwrap_or("").to_string());
                        }
                    }
                }
            });
        }
        let mut server = Server {
            child,
            address: "127.0.0.1:1".parse().unwrap(),
            stdout,
            stderr_log,
            _scratch: scratch,
        };
        match listening.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => {
                server.address = address
                    .parse()
                    .unwrap_or_else(|_| panic!("not an address: {address:?}"));
                server
            }
            Err(_) => panic!(
                "dept serve {args:?} did not say it listens within 60 s:\n{}",
                server.stderr()
            ),
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        exchange(self.address, method, target, headers, body).unwrap_or_else(|e| {
            panic!(
                "{method} {target}: no answer ({e}); the server's stderr:\n{}",
                self.stderr()
            )
        })
    }

    pub fn get(&self, target: &str) -> Reply {
        self.send("GET", target, &[], b"")
    }

    pub fn post(&self, target: &str, body: &Value) -> Reply {
        self.send("POST", target, &[], body.to_string().as_bytes())
    }

    pub fn admin(&self, method: &str, target: &str, body: &Value) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.send(method, target, &[("Authorization", &auth)], &bytes)
    }

    /// A sample's value in `/metrics` (the whole line's name and labels, as `name{label="v"}`).
    pub fn metric(&self, sample: &str) -> Option<f64> {
        let reply = self.get("/metrics");
        assert_eq!(reply.status, 200);
        reply.text().lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == sample).then(|| value.parse().ok()).flatten()
        })
    }

    /// The process's resident memory in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
        let sent = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.pid());
    }

    /// The exit status, once the process has exited (at most `within`).
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// `http://ADDRESS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}
