//! T5 (v1 and v1.1 / Flan layouts) as a DePT backbone.

mod config;
mod model;

pub use config::{FeedForward, T5Config};
pub use model::T5;
