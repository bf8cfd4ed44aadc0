//! Training DePT adapters: experiment configs, the two-rate optimiser, the schedule, the trainer and run folders.
//!
//! - [`config`]: the YAML experiment config (defaults from the paper and the official code).
//! - [`optim`]: AdamW over parameter groups with the official code's update rule, gradient-norm clipping.
//! - [`schedule`]: linear warm-up then linear decay.
//! - [`device`]: `cpu | cuda[:N] | auto`; [`memory`]: peak memory (CUDA allocator or process);
//!   [`guard`]: libtorch failures (out of memory above all) as errors with advice.
//! - [`train`]: a whole run; [`evaluate`] decodes and scores; [`checkpoint`] and [`run_dir`] are its files.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod demo;
pub mod device;
pub mod environment;
mod error;
pub mod evaluate;
pub mod guard;
pub mod inference;
pub mod memory;
pub mod optim;
pub mod order;
mod plot;
pub mod run_dir;
pub mod schedule;
pub mod step;
mod trainer;
pub mod vision;

pub use config::ExperimentConfig;
pub use error::TrainError;
pub use inference::{Evaluation, Inference, InferenceOverrides};
pub use trainer::{decoder, train, TrainOptions, TrainOutcome};
