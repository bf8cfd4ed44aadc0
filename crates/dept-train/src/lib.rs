//! Training DePT adapters: the two-rate optimiser, the schedule, and (to come) the experiment runner.
//!
//! - [`optim`]: AdamW over parameter groups with the official code's update rule, gradient-norm clipping.
//! - [`schedule`]: linear warm-up then linear decay.

pub mod optim;
pub mod schedule;
