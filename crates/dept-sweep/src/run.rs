//! The three things `dept sweep` does, as calls: [`run`] a sweep (or resume it), its [`status`], and (in
//! [`crate::report`]) its report. They print progress while they work (the live table, what is submitted); what a
//! call ended with comes back as a value for the caller to word.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Result, SweepError};
use crate::local::{self, LocalEnd, Slots};
use crate::spec::Sweep;
use crate::state::{self, Failure, LiveTable};
use crate::{overrides, slurm};

/// What `dept sweep run` was asked.
#[derive(Debug)]
pub struct RunOptions {
    /// The sweep file (YAML: name, base, set, grid, slurm).
    pub sweep_file: PathBuf,
    /// The sweep folder, instead of the file's `out:` (default `runs/sweeps/<name>`).
    pub out: Option<PathBuf>,
    /// `key=value` items set on every point (kept in the sweep folder for later calls).
    pub set: Vec<String>,
    pub backend: Backend,
    /// Check every point and list them, writing and running nothing.
    pub dry_run: bool,
    /// Run (or submit) the failed points again; a plain run leaves them failed.
    pub retry_failed: bool,
}

/// Where the points run.
#[derive(Debug)]
pub enum Backend {
    /// Child processes on this machine: one per GPU of `gpus` (`--gpus 0,1`, checked when the sweep starts), else
    /// `cpu_slots` at once on the CPU.
    Local {
        gpus: Option<String>,
        cpu_slots: usize,
    },
    /// One Slurm job array; `wait` until no task is queued or running. `signal_seconds`: the warning before a
    /// task's time limit, over the sweep file's `slurm.signal_seconds`.
    Slurm {
        wait: bool,
        signal_seconds: Option<u32>,
    },
}

/// How a [`run`] ended. Points that failed (local) or did not finish (Slurm, waited for) are errors instead:
/// [`SweepError::PointsFailed`], [`SweepError::PointsUnfinished`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// A dry run: the table of every point; nothing was written or started.
    DryRun { table: String },
    /// Every point has finished; `out` is the sweep folder.
    Done { out: PathBuf },
    /// Local: SIGINT/SIGTERM stopped the sweep with this many points unfinished (the next run resumes them).
    Interrupted { unfinished: usize },
    /// Local: every other point is done, and this many were preempted (their trainers saved on a signal and
    /// exited with status 75): the next run resumes them.
    Preempted { preempted: usize },
    /// Slurm: the unfinished points are submitted (or were all queued already); not waited for.
    Submitted,
}

/// Runs (or resumes) every point of a sweep file; `dept` is the executable each point's `dept train` runs with.
pub fn run(options: &RunOptions, dept: &Path) -> Result<RunOutcome> {
    let sweep = overrides::load(&options.sweep_file, options.out.as_deref(), &options.set)?;
    if options.dry_run {
        let table = LiveTable::render(&sweep, &state::all_on_disk(&sweep), true);
        return Ok(RunOutcome::DryRun { table });
    }
    sweep.write()?;
    overrides::save(&sweep, &options.set)?;
    println!(
        "sweep {}: {} points over {} in {}",
        sweep.name,
        sweep.points.len(),
        sweep.grid_keys.join(" × "),
        sweep.out.display()
    );
    let done = RunOutcome::Done {
        out: sweep.out.clone(),
    };
    match &options.backend {
        Backend::Local { gpus, cpu_slots } => {
            let slots = Slots::from_flags(gpus.as_deref(), *cpu_slots)?;
            run_local(&sweep, dept, &slots, options.retry_failed, done)
        }
        Backend::Slurm {
            wait,
            signal_seconds,
        } => {
            let how = slurm::Submission {
                retry_failed: options.retry_failed,
                signal_seconds: *signal_seconds,
            };
            slurm::submit(&sweep, dept, how)?;
            if !wait {
                return Ok(RunOutcome::Submitted);
            }
            let states = slurm::wait(&sweep, || slurm::submit(&sweep, dept, how).map(|_| ()))?;
            let failed = state::failures(&sweep, &states);
            let left = states.iter().filter(|s| !s.is_done()).count();
            if !failed.is_empty() {
                Err(points_failed(&sweep, failed))
            } else if left > 0 {
                Err(SweepError::PointsUnfinished { left })
            } else {
                Ok(done)
            }
        }
    }
}

/// The local backend's run, and how it ended.
fn run_local(
    sweep: &Sweep,
    dept: &Path,
    slots: &Slots,
    retry_failed: bool,
    done: RunOutcome,
) -> Result<RunOutcome> {
    let end = local::run(sweep, dept, slots, retry_failed)?;
    if let LocalEnd::Finished { not_started, .. } = &end {
        for (stage, points) in not_started {
            println!(
                "stage {stage} ({points} points) has not started: a stage before it has points that did not finish"
            );
        }
    }
    match end {
        LocalEnd::Finished { failed, .. } if !failed.is_empty() => {
            Err(points_failed(sweep, failed))
        }
        LocalEnd::Finished {
            preempted: 0,
            not_started,
            ..
        } if !not_started.is_empty() => Err(SweepError::PointsUnfinished {
            left: not_started.iter().map(|(_, points)| points).sum(),
        }),
        LocalEnd::Finished { preempted: 0, .. } => Ok(done),
        LocalEnd::Finished { preempted, .. } => Ok(RunOutcome::Preempted { preempted }),
        LocalEnd::Interrupted { unfinished } => Ok(RunOutcome::Interrupted { unfinished }),
    }
}

fn points_failed(sweep: &Sweep, points: Vec<(String, Failure)>) -> SweepError {
    SweepError::PointsFailed {
        points,
        logs: sweep.out.join("logs"),
    }
}

/// Where every point of a sweep stands; its `Display` is what `dept sweep status` prints.
#[derive(Debug)]
pub struct Status {
    /// Every point, as [`LiveTable::render`] draws it.
    pub table: String,
    pub accounting: Accounting,
}

/// `sacct`'s record of a sweep's Slurm tasks.
#[derive(Debug, PartialEq, Eq)]
pub enum Accounting {
    /// The sweep never went to Slurm.
    NotSubmitted,
    /// `JobID|State|ExitCode|Elapsed` lines.
    Sacct(Vec<String>),
    /// This cluster keeps no accounting.
    Unavailable,
}

/// The state of every point of a sweep file (with the `--set` an earlier run saved): from `squeue` and the run
/// folders where it went to Slurm, from the run folders alone otherwise.
pub fn status(sweep_file: &Path, out: Option<&Path>) -> Result<Status> {
    let sweep = overrides::load(sweep_file, out, &[])?;
    if !slurm::was_used(&sweep) {
        let table = LiveTable::render(&sweep, &state::all_on_disk(&sweep), true);
        return Ok(Status {
            table,
            accounting: Accounting::NotSubmitted,
        });
    }
    let table = LiveTable::render(&sweep, &slurm::states(&sweep)?, true);
    let accounting = match slurm::accounting(&sweep) {
        Some(lines) => Accounting::Sacct(lines),
        None => Accounting::Unavailable,
    };
    Ok(Status { table, accounting })
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.table)?;
        match &self.accounting {
            Accounting::NotSubmitted => Ok(()),
            Accounting::Sacct(lines) => {
                writeln!(f, "sacct (JobID|State|ExitCode|Elapsed):")?;
                lines.iter().try_for_each(|line| writeln!(f, "  {line}"))
            }
            Accounting::Unavailable => writeln!(
                f,
                "sacct: no accounting on this cluster; states above come from squeue and the run folders"
            ),
        }
    }
}
