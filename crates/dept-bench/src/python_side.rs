//! The PyTorch side of a side-by-side benchmark: a python process driven one line at a time over its stdin and
//! stdout (its stderr goes to ours, so its errors show), shared by `dept bench reference` and `dept bench features`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::error::{bail, BenchError, Context, Result};

pub struct PythonSide {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PythonSide {
    /// Starts `command` (a python with its script and arguments) with piped stdin and stdout; returns it and the
    /// first line it prints (its `ready` line).
    pub fn start(mut command: Command, python: &Path) -> Result<(Self, String)> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| BenchError::io("starting", python, e))?;
        let stdin = child.stdin.take().context("python's stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("python's stdout")?);
        let mut side = PythonSide {
            child,
            stdin,
            stdout,
        };
        let first = side.read_line()?;
        Ok((side, first))
    }

    /// The next line; the process's end, or an `error …` line, is an error.
    pub fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line).map_err(pipe)? == 0 {
            let status = self.child.wait().map_err(pipe)?;
            bail!("the PyTorch side ended ({status}); its error is above");
        }
        if let Some(message) = line.trim().strip_prefix("error ") {
            let _ = self.child.wait();
            bail!("the PyTorch side failed: {message}");
        }
        Ok(line)
    }

    /// Sends one line and returns the answer line.
    pub fn ask(&mut self, request: &str) -> Result<String> {
        writeln!(self.stdin, "{request}").map_err(pipe)?;
        self.stdin.flush().map_err(pipe)?;
        self.read_line()
    }

    /// Sends `request` (the script's way of saying quit) and waits for the process to end.
    pub fn quit(mut self, request: &str) {
        let _ = writeln!(self.stdin, "{request}");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// The python for the PyTorch side: `explicit` (a `--python`), else `DEPT_BENCH_PYTHON`, else the bench venv.
pub fn python(explicit: Option<&Path>) -> Result<PathBuf> {
    let python = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DEPT_BENCH_PYTHON").map(PathBuf::from))
        .or_else(default_bench_python);
    match python {
        Some(p) if p.exists() => Ok(p),
        Some(p) => bail!(
            "{} does not exist; `cargo xtask bench-venv` makes the benchmark's python (torch 2.11 and a pinned \
             transformers), or pass --python",
            p.display()
        ),
        None => bail!("no python for the PyTorch side: run `cargo xtask bench-venv`, or pass --python"),
    }
}

/// A broken pipe to or from the python process (it usually died: its own error is above, on stderr).
fn pipe(error: std::io::Error) -> BenchError {
    BenchError::Python(format!("lost the PyTorch side: {error}"))
}

/// `$DEPT_HOME/bench-venv`, else `~/.cache/dept/bench-venv` (where `cargo xtask bench-venv` puts it).
fn default_bench_python() -> Option<PathBuf> {
    let home = std::env::var_os("DEPT_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("dept")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("dept"))
        })?;
    Some(home.join("bench-venv").join("bin").join("python3"))
}
