//! `dept verify`: check a run folder's checkpoints and logs as a resume would.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

#[derive(Args)]
pub struct VerifyArgs {
    /// The run folder `dept train` wrote (holding last/, best/, metrics.jsonl, ...).
    run_dir: PathBuf,
}

/// Prints what each checkpoint and log holds; fails (status 1) when any checkpoint or log is damaged.
pub fn run(args: &VerifyArgs) -> Result<()> {
    let report = dept_train::verify::verify_run(&args.run_dir)?;
    println!("{report}");
    if !report.is_sound() {
        bail!(
            "{} has damaged files (see above); a resume falls back to the newest valid checkpoint",
            args.run_dir.display()
        );
    }
    Ok(())
}
