//! Sweeps of DePT experiments: a grid of `dept train` runs from one sweep file, on this machine's GPUs or CPU
//! slots or as one Slurm job array, resumable at any point, and one report over all of them (mean ± std over
//! seeds, the best configuration per task, the few-shot table).
//!
//! The main types and calls:
//! - [`spec::Sweep`]: a sweep file expanded into [`spec::Point`]s, each a full `dept train` config checked before
//!   anything runs, written into the sweep folder with its manifest (`sweep.json`).
//! - [`run()`] with [`RunOptions`] (the file, `--out`, `--set`, a [`Backend`]: local GPUs or CPU slots, or Slurm)
//!   returns a [`RunOutcome`] (done, interrupted, submitted; failed or unfinished points are errors); it prints
//!   the live table ([`state::LiveTable`]) meanwhile.
//! - A sweep file may list stages, run in order; [`stages::pick`] points the `init_adapter` links of a stage that
//!   starts from an earlier one at that stage's best points (the local runner calls it before the stage, each
//!   Slurm task of the stage before it trains, through `dept sweep pick`).
//! - [`status()`] gives every point's [`state::State`], read from the sweep folder (and `squeue`/`sacct` where the
//!   sweep went to Slurm).
//! - [`report::folder_of`] and [`report::run`] build the [`report::Report`] and write `report.csv`/`report.md`.
//! - [`SweepError`]: every failure, naming the file, point or option at fault.
//!
//! The state of a sweep lives in its folder alone (configs, run folders with their locks and checkpoints,
//! failure markers, Slurm submissions), so any backend and any later call sees the same thing; the `--set` of a
//! run is kept there too ([`overrides`]).
//!
//! Who calls it: `dept sweep run|status|report` (the binary's `src/commands/sweep.rs`) parses arguments, calls
//! these and words the outcome. `cargo xtask sweep` is the entry point the design names, but xtask links no
//! libtorch (this crate does, through `dept-train`'s config checks), so it builds a release `dept` and runs
//! `dept sweep …`; each point is in turn its own `dept train` process, started by [`local`] or by the Slurm
//! array script [`slurm`] writes.

pub mod claim;
pub mod error;
pub mod local;
pub mod overrides;
pub mod report;
mod run;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod state;
pub mod write;

pub use error::{Result, SweepError};
pub use run::{run, status, Accounting, Backend, RunOptions, RunOutcome, Status};
