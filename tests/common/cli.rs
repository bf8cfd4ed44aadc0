//! Running the `dept` binary from end-to-end tests, and reading what its runs leave behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `dept args…`, with the log level left to the binary's default.
pub fn dept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dept"))
        .args(args)
        .env_remove("DEPT_LOG")
        .output()
        .expect("run dept")
}

/// The stdout of a `dept` command that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = dept(args);
    assert!(
        out.status.success(),
        "dept {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The stdout of a command that must succeed; otherwise a panic showing its stdout and stderr.
pub fn succeeds(command: &mut Command) -> String {
    let output = command.output().expect("run the command");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A JSON-lines file a command wrote.
pub fn json_lines_file(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json_lines(&text)
}

/// The stderr of a `dept` command that must fail.
pub fn fails(args: &[&str]) -> String {
    let out = dept(args);
    assert!(!out.status.success(), "dept {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A run folder's metrics.jsonl.
pub fn records(run: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap())
}

/// metrics.jsonl without the fields that measure time and memory, which no two runs share.
pub fn deterministic_records(run: &Path) -> Vec<Value> {
    records(run)
        .into_iter()
        .map(|mut r| {
            if let Some(obj) = r.as_object_mut() {
                obj.remove("examples_per_s");
                obj.remove("inference_samples_per_s");
                obj.remove("peak_memory_mb");
            }
            r
        })
        .collect()
}

/// The training losses a run logged, step by step.
pub fn losses(run: &Path) -> Vec<f64> {
    records(run)
        .iter()
        .filter_map(|r| r.get("loss").and_then(Value::as_f64))
        .collect()
}

pub fn bytes(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Header → value of a run's one-row results.csv.
pub fn results_row(run: &Path) -> BTreeMap<String, String> {
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let row: Vec<&str> = lines.next().expect("a row").split(',').collect();
    assert_eq!(header.len(), row.len(), "{csv}");
    assert!(lines.next().is_none(), "one row: {csv}");
    header
        .into_iter()
        .zip(row)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Starts `dept train config` and SIGKILLs it (no destructor, no flush, possibly mid-checkpoint) once
/// metrics.jsonl shows `kill_after` steps; false if the run ended by itself first.
pub fn run_and_kill(config: &Path, run: &Path, kill_after: usize) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dept"))
        .args(["-q", "train", path(config)])
        .env_remove("DEPT_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let steps = std::fs::read_to_string(run.join("metrics.jsonl"))
            .map(|t| t.lines().filter(|l| l.contains("\"loss\"")).count())
            .unwrap_or(0);
        if steps >= kill_after || Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
