//! `cargo xtask <command>`: the project's own tasks.
//!
//! xtask links no libtorch and has no dependencies, so it builds on a machine where libtorch does not exist yet.
//! It installs libtorch (from the PyPI torch wheel matching tch 0.17) once per user, points the checkout's
//! `.libtorch` link at it (see `.cargo/config.toml`), and then runs cargo and the `dept` binary.

mod libtorch;
mod process;

use std::path::PathBuf;
use std::process::ExitCode;

use process::{cargo, Failure};

const USAGE: &str = "\
cargo xtask <command> [args]

Commands:
  setup        Install libtorch 2.4 (PyPI torch wheel, CPU+CUDA) once per user and link it to this checkout.
               Honours LIBTORCH if you set it yourself; DEPT_HOME moves the per-user install folder.
  test [ARGS]  setup, then `cargo fmt --check`, clippy with warnings denied, and every workspace test.
               ARGS go to `cargo test` (e.g. `cargo xtask test -- budget`).
  quickstart   setup, then `dept env` and a tiny offline DePT training demo (no downloads, no GPU needed).
  help         This text.

After `cargo xtask setup`, plain `cargo build`, `cargo test` and `cargo run -p dept` work with nothing exported.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => libtorch::ensure(&repo_root()).map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("quickstart") => quickstart(),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(Failure::new(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent folder")
        .to_path_buf()
}

fn test(extra: &[String]) -> Result<(), Failure> {
    let root = repo_root();
    libtorch::ensure(&root)?;
    process::require_cargo_component("fmt", "rustfmt")?;
    process::require_cargo_component("clippy", "clippy")?;
    cargo(&root, &["fmt", "--all", "--", "--check"])?;
    cargo(
        &root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut test_args = vec!["test", "--workspace"];
    test_args.extend(extra.iter().map(String::as_str));
    cargo(&root, &test_args)
}

fn quickstart() -> Result<(), Failure> {
    let root = repo_root();
    libtorch::ensure(&root)?;
    // Build with cargo's progress shown (the first build takes minutes), then `cargo run` rather than a path under
    // target/, so a CARGO_TARGET_DIR of the user's is honoured.
    cargo(&root, &["build", "--package", "dept"])?;
    cargo(&root, &["run", "--quiet", "--package", "dept", "--", "env"])?;
    cargo(
        &root,
        &["run", "--quiet", "--package", "dept", "--", "quickstart"],
    )
}
