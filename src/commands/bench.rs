//! `dept bench`: measurements printed side by side from one run.
//!
//! - `padding`: a DePT training step with the official padding to `s` against padding to the longest input.
//! - `efficiency`: the paper's efficiency study: training-step time, peak memory and inference samples/s of the
//!   backbone alone, PT and DePT at equal parameter count for several m, on random-weight T5 shapes.
//! - `profile`: the input-length profiles of tasks that `efficiency` draws batches from.
//! - `reference`: the training step against eager PyTorch.
//! - `features`: CLIP feature extraction against transformers' image processor and vision tower.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Result};
use clap::{Args, Subcommand};
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_models::t5::{T5Config, T5};
use dept_models::{load_backbone, Backbone, PromptedModel};
use dept_train::batch::{Batch, Encoded};
use dept_train::config::Padding;
use tch::{Device, Kind, Tensor};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Training-step time, padding to s (official) vs padding to the longest input (ours).
    Padding(PaddingArgs),
    /// The efficiency study: step time, peak memory and inference samples/s of the backbone alone, PT (l) and DePT
    /// (m, r solved at equal parameters) on T5 shapes; table, CSV and figures.
    Efficiency(super::efficiency::EfficiencyArgs),
    /// Input and target length profiles of tasks (quantiles of token counts), as the efficiency study uses them.
    Profile(super::efficiency::ProfileArgs),
    /// The training step in dept against eager PyTorch (transformers' T5), same weights and batches, interleaved.
    Reference(super::reference::ReferenceArgs),
    /// CLIP feature extraction in dept against transformers (CLIPImageProcessor + CLIPVisionModel), same images and
    /// weights, interleaved: preprocessing, forward and the whole extraction, with a check that the features agree.
    Features(super::bench_features::FeaturesBenchArgs),
}

#[derive(Args)]
pub struct PaddingArgs {
    /// A Hugging Face T5 folder; without it, a random T5 of t5-small's shape (d 512, 6 layers, 8 heads).
    #[arg(long)]
    model: Option<PathBuf>,
    /// s: the official code pads every input to this length.
    #[arg(long, default_value_t = 256)]
    max_len: i64,
    #[arg(long, default_value_t = 60)]
    prompt_len: i64,
    #[arg(long, default_value_t = 30)]
    rank: i64,
    #[arg(long, default_value_t = 8)]
    batch_size: i64,
    /// Input lengths are drawn uniformly from [min_input, max_input] tokens (RTE inputs are mostly 40–120).
    #[arg(long, default_value_t = 32)]
    min_input: i64,
    #[arg(long, default_value_t = 128)]
    max_input: i64,
    /// Timed steps per padding (after one untimed warm-up step each).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(command: &BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Padding(args) => padding(args),
        BenchCommand::Efficiency(args) => super::efficiency::run(args),
        BenchCommand::Profile(args) => super::efficiency::profile(args),
        BenchCommand::Reference(args) => super::reference::run(args),
        BenchCommand::Features(args) => super::bench_features::run(args),
    }
}

fn padding(args: &PaddingArgs) -> Result<()> {
    ensure!(
        0 < args.min_input && args.min_input <= args.max_input && args.max_input <= args.max_len,
        "need 0 < min_input ≤ max_input ≤ max_len"
    );
    let device = dept_train::device::resolve_device(&args.device).map_err(anyhow::Error::msg)?;
    tch::manual_seed(0);
    let backbone: Box<dyn Backbone> = match &args.model {
        Some(dir) => load_backbone(dir, device)?,
        None => Box::new(T5::new_random(&t5_shape("t5-small")?, device)?),
    };
    let config = DeptConfig::new(
        args.prompt_len,
        args.rank,
        args.max_len,
        backbone.hidden_size(),
    )?
    .with_init(&PromptInit::Random);
    let adapter = DecomposedPrompt::new(config, None, device)?;

    // The same examples for both paddings.
    let span = (args.min_input as usize, args.max_input as usize);
    let batches: Vec<Vec<Encoded>> = (0..=args.steps)
        .map(|_| random_examples(args.batch_size as usize, span, 3, backbone.vocab_size()))
        .collect::<Result<_>>()?;

    let mut results = Vec::new();
    for (name, padding) in [
        ("official: pad to s", Padding::MaxLength),
        ("dept-rs: pad to longest", Padding::Longest),
    ] {
        let mut seconds = 0.0;
        let mut loss_sum = 0.0;
        for (i, examples) in batches.iter().enumerate() {
            let items: Vec<&Encoded> = examples.iter().collect();
            let batch = Batch::new(&items, padding, args.max_len as usize, 0, device);
            let start = Instant::now();
            let loss = PromptedModel::new(backbone.as_ref(), &adapter)
                .forward_t(
                    &batch.input_ids,
                    &batch.attention_mask,
                    &batch.labels,
                    false,
                )?
                .loss;
            loss.backward();
            let value = loss.double_value(&[]); // waits for the device
            if i > 0 {
                seconds += start.elapsed().as_secs_f64();
                loss_sum += value;
            }
        }
        let per_step = seconds / args.steps as f64;
        println!(
            "{name:<26} {:>9.1} ms/step   mean loss {:.6}",
            per_step * 1e3,
            loss_sum / args.steps as f64
        );
        results.push((per_step, loss_sum));
    }
    let (official, ours) = (results[0].0, results[1].0);
    println!(
        "speed-up {:.2}x (same batches, {} per step, inputs {}–{} tokens, s = {}, device {device:?})",
        official / ours,
        args.batch_size,
        args.min_input,
        args.max_input,
        args.max_len
    );
    let relative = (results[0].1 - results[1].1).abs() / results[0].1.abs().max(1e-12);
    println!("loss difference between the paddings: {relative:.2e} relative (float rounding only)");
    Ok(())
}

/// Random examples for random-weight benchmarks: `n` inputs whose lengths are drawn uniformly from `span` (in
/// tokens, `</s>` last) and targets of `target_len` tokens (`</s>` last).
pub fn random_examples(
    n: usize,
    span: (usize, usize),
    target_len: usize,
    vocab: i64,
) -> Result<Vec<Encoded>> {
    ensure!(target_len > 0, "need a target of at least one token");
    let lengths = super::efficiency::draw_uniform(n, span, target_len)?;
    examples_with_lengths(&lengths, vocab)
}

/// Random token ids for examples of the given (input, target) lengths, `</s>` last in each; ids avoid the special
/// tokens 0–2.
pub fn examples_with_lengths(lengths: &[(usize, usize)], vocab: i64) -> Result<Vec<Encoded>> {
    let ids = |len: usize| -> Result<Vec<i64>> {
        ensure!(len > 0, "an example needs at least one token");
        let body = Tensor::randint_low(3, vocab, [len as i64 - 1], (Kind::Int64, Device::Cpu));
        let mut ids = Vec::<i64>::try_from(&body)?;
        ids.push(1);
        Ok(ids)
    };
    lengths
        .iter()
        .map(|&(input, target)| {
            Ok(Encoded {
                input_ids: ids(input)?,
                target_ids: ids(target)?,
                image: None,
                weight: None,
            })
        })
        .collect()
}

/// The architecture of a released T5 v1 checkpoint (relu, tied embeddings), for random-weight benchmarks.
pub fn t5_shape(name: &str) -> Result<T5Config> {
    let (d_model, d_ff, num_layers, num_heads) = match name {
        "t5-small" => (512, 2048, 6, 8),
        "t5-base" => (768, 3072, 12, 12),
        "t5-large" => (1024, 4096, 24, 16),
        other => anyhow::bail!("unknown shape {other:?}: expected t5-small, t5-base or t5-large"),
    };
    let json = serde_json::json!({
        "vocab_size": 32128, "d_model": d_model, "d_kv": 64, "d_ff": d_ff, "num_layers": num_layers,
        "num_heads": num_heads, "feed_forward_proj": "relu", "tie_word_embeddings": true
    });
    Ok(T5Config::from_json(
        std::path::Path::new(&format!("<{name} shape>")),
        json,
    )?)
}
