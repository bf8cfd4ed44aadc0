//! Training DePT adapters: experiment configs, the two-rate optimiser, the schedule, the trainer and run folders.
//!
//! - [`config`]: the YAML experiment config (defaults from the paper and the official code).
//! - [`optim`]: AdamW over parameter groups with the official code's update rule, gradient-norm clipping.
//! - [`schedule`]: linear warm-up then linear decay.
//! - [`device`]: `cpu | cuda[:N] | auto`.

pub mod config;
pub mod device;
mod error;
pub mod optim;
pub mod schedule;

pub use config::ExperimentConfig;
pub use error::TrainError;
