//! `dept tiny-model` (alias `tiny-t5`): write a tiny random T5, GPT-2, Llama or CLIP vision folder, to try the whole pipeline
//! on real data without pretrained weights.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};

/// The architecture of the tiny model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TinyArch {
    /// Encoder-decoder T5 (4 heads, 2 layers per stack).
    T5,
    /// GPT-2 (`GPT2LMHeadModel`: 2 layers, 2 heads, tied output layer, 1 024 positions).
    Gpt2,
    /// Llama (`LlamaForCausalLM`: 2 layers, 4 query heads over 2 key/value heads, untied output layer).
    Llama,
    /// A CLIP vision tower (`CLIPVisionModel`: 32-pixel images, 8-pixel patches, 2 layers, 4 heads) with its
    /// preprocessor_config.json, for `dept features extract`.
    Clip,
}

#[derive(Args)]
pub struct TinyArgs {
    /// Folder to write (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// Model architecture.
    #[arg(long, value_enum, default_value_t = TinyArch::T5)]
    arch: TinyArch,
    /// A real tokenizer.json to copy into the folder (T5's for t5; GPT-2's for gpt2 and llama); the vocabulary
    /// size and (gpt2, llama) the end-of-sequence id (`<|endoftext|>`, else `</s>`) come from it. Required for
    /// gpt2 and llama; without it, t5 gets a word-level tokenizer for the synthetic task.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Hidden width (t5: any; gpt2: even; llama: a multiple of 8).
    #[arg(long, default_value_t = 32)]
    d_model: i64,
    /// t5 only: relu (T5 v1 layout) or gated-gelu (v1.1 / Flan layout) [default: gated-gelu].
    #[arg(long)]
    feed_forward_proj: Option<String>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: i64,
}

pub fn run(args: &TinyArgs) -> Result<()> {
    let name = match args.arch {
        TinyArch::T5 => write_t5(args)?,
        TinyArch::Clip => {
            if args.tokenizer.is_some() || args.feed_forward_proj.is_some() {
                bail!(
                    "--arch clip is a vision tower: it takes no --tokenizer or --feed-forward-proj"
                );
            }
            if args.d_model % 4 != 0 || args.d_model <= 0 {
                bail!(
                    "--arch clip needs --d-model a positive multiple of 4 (4 heads), got {}",
                    args.d_model
                );
            }
            dept_models::tiny::write_tiny_clip(&args.out, args.d_model, args.seed)?;
            "CLIP vision tower"
        }
        arch @ (TinyArch::Gpt2 | TinyArch::Llama) => {
            let flag = if arch == TinyArch::Gpt2 {
                "gpt2"
            } else {
                "llama"
            };
            if args.feed_forward_proj.is_some() {
                bail!("--feed-forward-proj is a T5 setting; it does not apply to --arch {flag}");
            }
            let Some(tokenizer) = &args.tokenizer else {
                bail!(
                    "--arch {flag} needs --tokenizer <tokenizer.json> (e.g. GPT-2's, ../shared/tokenizers/gpt2/\
                     tokenizer.json): the vocabulary size and end-of-sequence id come from it"
                );
            };
            if arch == TinyArch::Gpt2 {
                dept_models::tiny::write_tiny_gpt2(&args.out, tokenizer, args.d_model, args.seed)?;
                "GPT-2"
            } else {
                dept_models::tiny::write_tiny_llama(&args.out, tokenizer, args.d_model, args.seed)?;
                "Llama"
            }
        }
    };
    println!(
        "wrote a tiny random {name} (d_model {}) to {}",
        args.d_model,
        args.out.display()
    );
    Ok(())
}

fn write_t5(args: &TinyArgs) -> Result<&'static str> {
    let feed_forward_proj = args.feed_forward_proj.as_deref().unwrap_or("gated-gelu");
    match &args.tokenizer {
        Some(tokenizer) => dept_models::tiny::write_tiny_t5_with_tokenizer(
            &args.out,
            tokenizer,
            args.d_model,
            feed_forward_proj,
            args.seed,
        )?,
        None => dept_models::tiny::write_tiny_t5(
            &args.out,
            &dept_data::synthetic::vocabulary(),
            args.d_model,
            feed_forward_proj,
            args.seed,
        )?,
    }
    Ok("T5")
}
