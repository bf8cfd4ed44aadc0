//! `dept sweep`: a grid of `dept train` runs from one sweep file, on this machine's GPUs or CPU slots or as a Slurm
//! job array, resumable, and one report over all of them. `cargo xtask sweep` builds `dept` and forwards here.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use dept_sweep::{report, Backend, RunOptions, RunOutcome};

#[derive(Subcommand)]
pub enum SweepCommand {
    /// Runs (or resumes) every point of a sweep file.
    Run(RunArgs),
    /// Where every point stands (done, running, queued in Slurm, interrupted, preempted, failed with its error,
    /// pending), and sacct's record.
    Status(StatusArgs),
    /// One table over every finished point: mean ± std over seeds, the best configuration per task (CSV, Markdown);
    /// per stage for a staged sweep.
    Report(ReportArgs),
    /// Points the links a stage's points start from (`init_adapter: {from_stage: …}`) at the best point of the
    /// source stage; refused while a source point has not finished. `run` does it before the stage starts, and
    /// each Slurm task of the stage before it trains.
    Pick(PickArgs),
}

#[derive(Args)]
pub struct PickArgs {
    /// The sweep folder (the one holding sweep.json).
    out: PathBuf,
    /// The stage whose source to pick.
    #[arg(long)]
    stage: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
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
    backend: BackendArg,
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
    /// Run (local) or submit (Slurm) the failed points again; a plain run leaves them failed.
    #[arg(long)]
    retry_failed: bool,
    /// Slurm: seconds before a task's time limit at which it is sent SIGUSR1 to save and requeue itself
    /// (overrides the sweep file's slurm.signal_seconds; default 120; 0: no warning).
    #[arg(long, value_name = "SECONDS")]
    signal_seconds: Option<u32>,
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
        SweepCommand::Status(args) => {
            print!("{}", dept_sweep::status(&args.sweep, args.out.as_deref())?);
            Ok(())
        }
        SweepCommand::Pick(args) => {
            for chosen in dept_sweep::stages::pick(&args.out, &args.stage)? {
                println!(
                    "{} -> {} ({} {})",
                    chosen.link.display(),
                    chosen.point,
                    chosen.metric,
                    chosen.value
                );
            }
            Ok(())
        }
        SweepCommand::Report(args) => {
            let out = report::folder_of(&args.sweep, args.out.as_deref())?;
            println!("{}", report::run(&out)?.markdown());
            let (csv, md) = (out.join(report::CSV_FILE), out.join(report::MARKDOWN_FILE));
            println!("wrote {} and {}", csv.display(), md.display());
            Ok(())
        }
    }
}

fn run_sweep(args: &RunArgs) -> Result<()> {
    let backend = match args.backend {
        BackendArg::Local => Backend::Local {
            gpus: args.gpus.clone(),
            cpu_slots: args.slots,
        },
        BackendArg::Slurm => Backend::Slurm {
            wait: args.wait,
            signal_seconds: args.signal_seconds,
        },
    };
    let options = RunOptions {
        sweep_file: args.sweep.clone(),
        out: args.out.clone(),
        set: args.set.clone(),
        backend,
        dry_run: args.dry_run,
        retry_failed: args.retry_failed,
    };
    match dept_sweep::run(&options, &std::env::current_exe()?)? {
        RunOutcome::DryRun { table } => println!("{table}(dry run: nothing written or started)"),
        RunOutcome::Done { out } => {
            println!("every point is done: dept sweep report {}", out.display())
        }
        RunOutcome::Submitted => {}
        RunOutcome::Interrupted { unfinished } => {
            println!(
                "interrupted: {unfinished} point(s) not finished; run the same command again to resume them (from \
                 their last checkpoint where they have one)"
            );
            std::process::exit(130);
        }
        RunOutcome::Preempted { preempted } => {
            println!(
                "{preempted} point(s) were preempted (their trainers saved a checkpoint on a signal); run the same \
                 command again to resume them"
            );
            std::process::exit(i32::from(dept_train::exit_status::PREEMPTED));
        }
    }
    Ok(())
}
