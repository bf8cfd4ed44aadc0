//! `dept bench padding`: a DePT training step with the official padding to `s` against padding to the longest
//! input, on the same batches.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_models::{load_backbone, Backbone, PromptedModel};
use dept_train::batch::{Batch, Encoded};
use dept_train::config::Padding;

use crate::error::{ensure, Result};
use crate::synthetic::random_examples;

#[derive(Args)]
pub struct PaddingArgs {
    /// A Hugging Face T5 folder; without it, a random T5 of t5-small's shape (d 512, 6 layers, 8 heads).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// s: the official code pads every input to this length.
    #[arg(long, default_value_t = 256)]
    pub max_len: i64,
    #[arg(long, default_value_t = 60)]
    pub prompt_len: i64,
    #[arg(long, default_value_t = 30)]
    pub rank: i64,
    #[arg(long, default_value_t = 8)]
    pub batch_size: i64,
    /// Input lengths are drawn uniformly from [min_input, max_input] tokens (RTE inputs are mostly 40–120).
    #[arg(long, default_value_t = 32)]
    pub min_input: i64,
    #[arg(long, default_value_t = 128)]
    pub max_input: i64,
    /// Timed steps per padding (after one untimed warm-up step each).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn run(args: &PaddingArgs) -> Result<()> {
    ensure!(
        0 < args.min_input && args.min_input <= args.max_input && args.max_input <= args.max_len,
        "need 0 < min_input ≤ max_input ≤ max_len"
    );
    let device = dept_train::device::resolve_device(&args.device)?;
    tch::manual_seed(0);
    let backbone: Box<dyn Backbone> = match &args.model {
        Some(dir) => load_backbone(dir, device)?,
        None => dept_models::registry::shape("t5-small")?.build_random(device)?,
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
