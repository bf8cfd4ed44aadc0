//! Sweeps: a grid of `dept train` runs from one sweep file, on this machine's GPUs or CPU slots or as a Slurm job
//! array, resumable, and one report over all of them. `dept sweep` is its front; `cargo xtask sweep` builds `dept`
//! and forwards to it.

pub mod local;
pub mod report;
pub mod slurm;
pub mod spec;
pub mod state;
