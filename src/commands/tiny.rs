//! `dept tiny-model` (alias `tiny-t5`): write a tiny random T5, GPT-2, Llama or CLIP vision folder, to try the whole pipeline
//! on real data without pretrained weights.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use dept_models::registry::TinyModel;
use dept_models::BackboneKind;

/// `--arch` values: every backbone kind of the registry, then the CLIP vision tower (a feature extractor, no
/// backbone).
fn arch_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = dept_models::BACKBONES.iter().map(|k| k.name).collect();
    names.push(CLIP);
    names
}

const CLIP: &str = "clip";

#[derive(Args)]
pub struct TinyArgs {
    /// Folder to write (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    out: PathBuf,
    /// Model architecture: a backbone kind (t5: encoder-decoder, 4 heads, 2 layers per stack; gpt2:
    /// `GPT2LMHeadModel`, 2 layers, 2 heads, tied output layer, 1 024 positions; llama: `LlamaForCausalLM`, 2
    /// layers, 4 query heads over 2 key/value heads, untied output layer) or clip (a CLIP vision tower:
    /// 32-pixel images, 8-pixel patches, 2 layers, 4 heads, with its preprocessor_config.json, for `dept features
    /// extract`).
    #[arg(long, default_value = "t5", value_parser = clap::builder::PossibleValuesParser::new(arch_names()))]
    arch: String,
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
    let name = if args.arch == CLIP {
        write_clip(args)?
    } else {
        write_backbone(args, dept_models::registry::by_name(&args.arch)?)?
    };
    println!(
        "wrote a tiny random {name} (d_model {}) to {}",
        args.d_model,
        args.out.display()
    );
    Ok(())
}

fn write_clip(args: &TinyArgs) -> Result<&'static str> {
    if args.tokenizer.is_some() || args.feed_forward_proj.is_some() {
        bail!("--arch clip is a vision tower: it takes no --tokenizer or --feed-forward-proj");
    }
    if args.d_model % 4 != 0 || args.d_model <= 0 {
        bail!(
            "--arch clip needs --d-model a positive multiple of 4 (4 heads), got {}",
            args.d_model
        );
    }
    dept_models::tiny::write_tiny_clip(&args.out, args.d_model, args.seed)?;
    Ok("CLIP vision tower")
}

/// The kind's tiny model, after checking the flags against what its recipe takes.
fn write_backbone(args: &TinyArgs, kind: &BackboneKind) -> Result<&'static str> {
    let (arch, recipe) = (kind.name, &kind.tiny);
    if args.feed_forward_proj.is_some() && recipe.variants.is_empty() {
        bail!("--feed-forward-proj is a T5 setting; it does not apply to --arch {arch}");
    }
    if recipe.needs_tokenizer && args.tokenizer.is_none() {
        bail!(
            "--arch {arch} needs --tokenizer <tokenizer.json> (e.g. GPT-2's, ../shared/tokenizers/gpt2/\
             tokenizer.json): the vocabulary size and end-of-sequence id come from it"
        );
    }
    let words = dept_data::synthetic::vocabulary();
    (recipe.write)(&TinyModel {
        dir: &args.out,
        tokenizer: args.tokenizer.as_deref(),
        words: &words,
        d_model: args.d_model,
        variant: args.feed_forward_proj.as_deref(),
        seed: args.seed,
    })?;
    Ok(kind.label)
}
