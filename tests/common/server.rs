//! A `dept serve` process for the tests: started on a free loopback port, its address read from the line it
//! prints when ready, stopped (SIGTERM, then kill) when dropped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Server {
    pub child: Child,
    pub address: SocketAddr,
}

impl Server {
    /// `dept serve --port 0 args…`; panics with the server's stderr when it does not become ready in 60 s.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dept"))
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .env_remove("DEPT_LOG")
            .env_remove("DEPT_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dept serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, address) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("dept serve: listening on http://") {
                    let address = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = found.send(address);
                }
            }
        });
        match address.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => Server {
                child,
                address: address.parse().expect("a socket address"),
            },
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("dept serve output");
                panic!(
                    "dept serve {args:?} did not become ready:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Sends SIGTERM and waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate(Duration::from_secs(5));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
