//! `dept bench`: measurements printed side by side from one run.
//!
//! - `padding`: a DePT training step with the official padding to `s` against padding to the longest input.
//! - `efficiency`: the paper's efficiency study: training-step time, peak memory and inference samples/s of the
//!   backbone alone, PT and DePT at equal parameter count for several m, on random-weight T5 shapes.
//! - `profile`: the input-length profiles of tasks that `efficiency` draws batches from.
//! - `reference`: the training step against eager PyTorch.
//! - `features`: CLIP feature extraction against transformers' image processor and vision tower.
//! - `serve`: many adapters on one backbone, dept's batching policies against transformers' `generate`.
//! - `decode`: greedy and beam decoding against transformers' `generate`.

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training-step time, padding to s (official) vs padding to the longest input (ours).
    Padding(dept_bench::padding::PaddingArgs),
    /// The efficiency study: step time, peak memory and inference samples/s of the backbone alone, PT (l) and DePT
    /// (m, r solved at equal parameters) on T5 shapes; table, CSV and figures.
    Efficiency(dept_bench::efficiency::EfficiencyArgs),
    /// Input and target length profiles of tasks (quantiles of token counts), as the efficiency study uses them.
    Profile(dept_bench::efficiency::ProfileArgs),
    /// The training step in dept against eager PyTorch (transformers' T5), same weights and batches, interleaved.
    Reference(dept_bench::reference::ReferenceArgs),
    /// CLIP feature extraction in dept against transformers (CLIPImageProcessor + CLIPVisionModel), same images and
    /// weights, interleaved: preprocessing, forward and the whole extraction, with a check that the features agree.
    Features(dept_bench::features::FeaturesBenchArgs),
    /// Serving many adapters on one backbone: dept's continuous mixed batches, per-adapter batches and one request
    /// at a time against transformers' generate serving one adapter per batch; throughput and latency.
    Serve(dept_bench::serving::ServeBenchArgs),
    /// Decoding speed: greedy and beam search with the KV cache against transformers' generate on the same T5,
    /// adapter and batches, the two sides in alternating blocks (never at once); samples/s and their ratio.
    Decode(dept_bench::decode::DecodeBenchArgs),
}

pub fn run(command: &BenchCommand) -> Result<()> {
    Ok(match command {
        BenchCommand::Padding(args) => dept_bench::padding::run(args),
        BenchCommand::Efficiency(args) => dept_bench::efficiency::run(args),
        BenchCommand::Profile(args) => dept_bench::efficiency::profile(args),
        BenchCommand::Reference(args) => dept_bench::reference::run(args),
        BenchCommand::Features(args) => dept_bench::features::run(args),
        BenchCommand::Serve(args) => dept_bench::serving::run(args),
        BenchCommand::Decode(args) => dept_bench::decode::run(args),
    }?)
}
