//! # dept-bench: DePT's benchmarks, measured side by side in one run
//!
//! The measurements behind `dept bench …` and `dept selftest`. Every benchmark runs what it compares in the same
//! process and on the same batches, interleaved, so that both sides see the same machine load, and reports
//! ratios (DePT against PT, against the frozen backbone, dept against PyTorch) rather than lone timings. Models
//! have random weights in the real shapes (timings do not depend on the weights), so nothing needs downloading;
//! the side-by-side benches against PyTorch also need a Python with torch and transformers.
//!
//! ## Main types
//!
//! Each benchmark is a module with a `clap` argument struct, which the binary embeds as its subcommand, and a
//! `run(&args)` that prints its tables and writes its files:
//!
//! - [`efficiency`] ([`efficiency::EfficiencyArgs`]): the paper's efficiency study (§3.3, Figures 3–4, Tables
//!   6–8): step time, peak memory and decoding throughput of the backbone alone, PT and DePT at equal parameter
//!   count, for T5, GPT-2 and LLaMA-2 shapes. One measurement is an [`efficiency::Row`] (a [`efficiency::Variant`]
//!   on one shape with one [`efficiency::PaddingMode`], timings as [`efficiency::Stats`]); input lengths follow a
//!   task's measured [`efficiency::LengthProfile`].
//! - [`padding`] ([`padding::PaddingArgs`]): a DePT training step padded to `s` (the official layout) against
//!   padding to the longest input.
//! - [`reference`](mod@reference) ([`reference::ReferenceArgs`]): the training step against eager PyTorch (transformers' T5 with
//!   the official DePT module).
//! - [`decode`] ([`decode::DecodeBenchArgs`]): greedy and beam decoding against transformers' `generate`.
//! - [`features`] ([`features::FeaturesBenchArgs`]): CLIP feature extraction against transformers' image
//!   processor and vision tower.
//! - [`selftest`] ([`selftest::SelftestArgs`]): does this machine's device compute what the CPU computes? Its
//!   `run` returns a [`selftest::SelftestReport`] for the caller to print and turn into an exit code.
//! - [`python_side`]: the PyTorch process the side-by-side benches drive; [`synthetic`]: random inputs and shapes.
//! - [`BenchError`]: the crate's one error type (each message names the argument, file or process at fault).

pub mod decode;
pub mod efficiency;
pub mod error;
pub mod features;
mod output;
pub mod padding;
pub mod python_side;
pub mod reference;
mod rounds;
pub mod scratch;
pub mod selftest;
pub mod serving;
pub mod synthetic;
pub use error::{BenchError, Result};
