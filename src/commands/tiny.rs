//! `dept tiny-t5`: write a tiny random T5 folder, to try the whole pipeline on real data without weights.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct TinyArgs {
    /// Folder to write (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// A real tokenizer.json to use (e.g. T5's); without it, a word-level tokenizer for the synthetic task.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    d_model: i64,
    /// relu (T5 v1 layout) or gated-gelu (v1.1 / Flan layout).
    #[arg(long, default_value = "gated-gelu")]
    feed_forward_proj: String,
    #[arg(long, default_value_t = 1)]
    seed: i64,
}

pub fn run(args: &TinyArgs) -> Result<()> {
    match &args.tokenizer {
        Some(tokenizer) => dept_models::tiny::write_tiny_t5_with_tokenizer(
            &args.out,
            tokenizer,
            args.d_model,
            &args.feed_forward_proj,
            args.seed,
        )?,
        None => dept_models::tiny::write_tiny_t5(
            &args.out,
            &dept_data::synthetic::vocabulary(),
            args.d_model,
            &args.feed_forward_proj,
            args.seed,
        )?,
    }
    println!(
        "wrote a tiny random T5 (d_model {}) to {}",
        args.d_model,
        args.out.display()
    );
    Ok(())
}
