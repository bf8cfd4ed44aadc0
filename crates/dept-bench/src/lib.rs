//! Benchmarks that print ratios measured side by side in one run (`dept bench …`).
//!
//! - [`padding`]: a DePT training step padded to `s` (the official layout) against padding to the longest input.
//! - [`efficiency`]: the paper's efficiency study (§3.3, Figures 3–4, Tables 6–8): step time, peak memory and
//!   decoding throughput of the backbone alone, PT and DePT at equal parameter count, on random-weight shapes.
//! - [`reference`]: the training step against eager PyTorch (transformers' T5 with the official DePT module).
//! - [`features`]: CLIP feature extraction against transformers' image processor and vision tower.
//! - [`python_side`]: the PyTorch process the side-by-side benches drive; [`synthetic`]: random inputs and shapes.

pub mod efficiency;
pub mod error;
pub mod features;
pub mod padding;
pub mod python_side;
pub mod reference;
pub mod selftest;
pub mod synthetic;
pub use error::{BenchError, Result};
