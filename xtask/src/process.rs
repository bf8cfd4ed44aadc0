//! Running child processes with errors that say what to do.

use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

/// A failed step, already worded for the user.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `program args…` in `dir` with inherited stdio; a non-zero exit is a failure naming the command.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> Result<(), Failure> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| Failure::new(format!("could not start `{program}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!(
            "`{program} {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Runs cargo (the one that runs us, so toolchain overrides are honoured).
pub fn cargo(dir: &Path, args: &[&str]) -> Result<(), Failure> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    run(dir, &cargo, args)
}

/// Runs a command quietly and returns its trimmed stdout, or `None` when it cannot start or fails.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Fails with the rustup command to run when `cargo <subcommand>` is not installed.
pub fn require_cargo_component(subcommand: &str, component: &str) -> Result<(), Failure> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    match output(&cargo, &[subcommand, "--version"]) {
        Some(_) => Ok(()),
        None => Err(Failure::new(format!(
            "`cargo {subcommand}` is not installed; run `rustup component add {component}`"
        ))),
    }
}
