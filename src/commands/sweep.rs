//! `dept sweep`: a grid of `dept train` runs from one sweep file, on this machine's GPUs or CPU slots or as a Slurm
//! job array, resumable, and one report over all of them. `cargo xtask sweep` builds `dept` and forwards here.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};

use dept_sweep::spec::Sweep;
use dept_sweep::state::{self, LiveTable};
use dept_sweep::{local, report, slurm};

#[derive(Subcommand)]
pub enum SweepCommand {
    /// Runs (or resumes) every point of a sweep file.
    Run(RunArgs),
    /// Where every point stands (done, running, queued in Slurm, interrupted, failed, pending), and sacct's record.
    Status(StatusArgs),
    /// One table over every finished point: mean ± std over seeds, the best configuration per task (CSV, Markdown).
    Report(ReportArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// Child processes on this machine, one per GPU (--gpus) or CPU slot (--slots).
    Local,
    /// One Slurm job array (sbatch); resources from the sweep file's `slurm:` section.
    Slurm,
}

#[derive(Args)]
pub struct RunArgs {
    /// The sweep file (YAML: name, base, set, grid, slurm; see configs/sweeps/README.md).
    sweep: PathBuf,
    /// Sweep folder (overrides the file's `out:`; default runs/sweeps/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "local")]
    backend: Backend,
    /// Local: one point per GPU, e.g. `--gpus 0,1,2,3` (each run sees only its GPU).
    #[arg(long, conflicts_with = "slots")]
    gpus: Option<String>,
    /// Local: this many points at once on the CPU, sharing its cores.
    #[arg(long, default_value_t = 1)]
    slots: usize,
    /// Set a key on every point, e.g. `--set model=/models/t5-base` (as `dept train --set`); written into the
    /// point configs, so later calls (status, report, a resumed run) should pass the same.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Slurm: after submitting, wait until no task is queued or running, showing the table.
    #[arg(long)]
    wait: bool,
    /// Check every point and list them, without writing or running anything.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    sweep: PathBuf,
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The sweep file, or its sweep folder (the one holding sweep.json).
    sweep: PathBuf,
    /// Sweep folder, when a sweep file is given and its `out:` is not where it ran.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(command: &SweepCommand) -> Result<()> {
    match command {
        SweepCommand::Run(args) => run_sweep(args),
        SweepCommand::Status(args) => status(args),
        SweepCommand::Report(args) => {
            let out = if args.sweep.join("sweep.json").is_file() {
                args.sweep.clone()
            } else if args.sweep.is_dir() {
                bail!(
                    "{} has no sweep.json: give a sweep file, or the folder a sweep ran in",
                    args.sweep.display()
                );
            } else {
                Sweep::load(&args.sweep, args.out.as_deref(), &[])?.out
            };
            let report = report::run(&out)?;
            println!("{}", report.markdown());
            println!(
                "wrote {} and {}",
                out.join("report.csv").display(),
                out.join("report.md").display()
            );
            Ok(())
        }
    }
}

fn run_sweep(args: &RunArgs) -> Result<()> {
    let sweep = load(&args.sweep, args.out.as_deref(), &args.set)?;
    if args.dry_run {
        print!(
            "{}",
            LiveTable::render(&sweep, &state::all_on_disk(&sweep), true)
        );
        println!("(dry run: nothing written or started)");
        return Ok(());
    }
    sweep.write()?;
    if !args.set.is_empty() {
        state::write_file(
            &sweep.out.join(OVERRIDES_FILE),
            &(serde_json::to_string_pretty(&args.set)? + "\n"),
        )?;
    }
    println!(
        "sweep {}: {} points over {} in {}",
        sweep.name,
        sweep.points.len(),
        sweep.grid_keys.join(" × "),
        sweep.out.display()
    );
    let dept = std::env::current_exe()?;
    match args.backend {
        Backend::Local => {
            if args.slots == 0 {
                bail!("--slots must be at least 1");
            }
            let slots = match &args.gpus {
                Some(gpus) => local::Slots::Gpus(local::parse_gpus(gpus)?),
                None => local::Slots::Cpu(args.slots),
            };
            let failed = local::run(&sweep, &dept, &slots)?;
            if failed > 0 {
                bail!(
                    "{failed} point(s) failed (their logs are in {}); run the same command again to retry them",
                    sweep.out.join("logs").display()
                );
            }
            println!(
                "every point is done: dept sweep report {}",
                sweep.out.display()
            );
        }
        Backend::Slurm => {
            slurm::submit(&sweep, &dept)?;
            if args.wait {
                let left = slurm::wait(&sweep)?;
                if left > 0 {
                    bail!(
                        "{left} point(s) did not finish (cancelled, failed or timed out; see dept sweep status); run \
                         the same command again to submit them, they resume from their last checkpoint"
                    );
                }
                println!(
                    "every point is done: dept sweep report {}",
                    sweep.out.display()
                );
            }
        }
    }
    Ok(())
}

fn status(args: &StatusArgs) -> Result<()> {
    let sweep = load(&args.sweep, args.out.as_deref(), &[])?;
    let slurm_used = sweep.out.join("slurm").join("submissions.txt").is_file();
    let states = if slurm_used {
        slurm::states(&sweep)?
    } else {
        state::all_on_disk(&sweep)
    };
    print!("{}", LiveTable::render(&sweep, &states, true));
    if slurm_used {
        match slurm::accounting(&sweep) {
            Some(lines) => {
                println!("sacct (JobID|State|ExitCode|Elapsed):");
                for line in lines {
                    println!("  {line}");
                }
            }
            None => println!("sacct: no accounting on this cluster; states above come from squeue and the run folders"),
        }
    }
    Ok(())
}

/// Where the `--set` of a run is kept, so that later calls (a resumed run, status) see the same point configs.
const OVERRIDES_FILE: &str = "overrides.json";

/// The sweep with `set` applied, or, when `set` is empty, with the `--set` an earlier run saved in its folder.
fn load(file: &std::path::Path, out: Option<&std::path::Path>, set: &[String]) -> Result<Sweep> {
    let sweep = Sweep::load(file, out, set)?;
    if !set.is_empty() {
        return Ok(sweep);
    }
    let saved = sweep.out.join(OVERRIDES_FILE);
    let Ok(text) = std::fs::read_to_string(&saved) else {
        return Ok(sweep);
    };
    let saved_set: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}: not a list of key=value strings: {e}", saved.display())
    })?;
    if saved_set.is_empty() {
        return Ok(sweep);
    }
    println!(
        "using the --set of an earlier run ({}): {}",
        saved.display(),
        saved_set.join(" ")
    );
    Sweep::load(file, out, &saved_set)
}
