//! `dept features extract`: run a frozen CLIP vision tower once over a folder of images and write their features,
//! keyed by image id, for CLIP-T5 runs to read (the `features` key of an experiment config).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use dept_models::features::{list_images, Extractor, FeatureDtype, FeatureOptions};

#[derive(Subcommand)]
pub enum FeaturesCommand {
    /// Encode every PNG/JPEG under --images (recursively) with a CLIP vision tower into one safetensors file; an
    /// interrupted extraction resumes where it stopped.
    Extract(ExtractArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Dtype {
    F32,
    /// Half the disk space; read back as fp32.
    F16,
}

#[derive(Args)]
pub struct ExtractArgs {
    /// Hugging Face CLIP folder (`CLIPModel` or `CLIPVisionModel`: config.json, model.safetensors,
    /// preprocessor_config.json).
    #[arg(long)]
    model: PathBuf,
    /// Folder of images; each image's id is its file name without extension (COCO_val2014_000000391895), the key
    /// VL-T5's VQA and caption files use.
    #[arg(long)]
    images: PathBuf,
    /// The feature file to write (safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Which layer's states (transformers' hidden_states index: 0 the embeddings, -1 the last layer's output, as
    /// VL-Adapter).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    layer: i64,
    /// Keep the class token in front of the patch tokens (VL-Adapter keeps patch tokens only).
    #[arg(long)]
    class_token: bool,
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    dtype: Dtype,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// cpu | cuda | cuda:N | auto
    #[arg(long, default_value = "auto")]
    device: String,
}

pub fn run(command: &FeaturesCommand, quiet: bool) -> Result<()> {
    match command {
        FeaturesCommand::Extract(args) => extract(args, quiet),
    }
}

fn extract(args: &ExtractArgs, quiet: bool) -> Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be positive");
    let device = dept_train::device::resolve_device(&args.device)?;
    let images = list_images(&args.images)?;
    anyhow::ensure!(
        !images.is_empty(),
        "{}: no .jpg, .jpeg or .png files",
        args.images.display()
    );
    let options = FeatureOptions {
        layer: args.layer,
        class_token: args.class_token,
        dtype: match args.dtype {
            Dtype::F32 => FeatureDtype::F32,
            Dtype::F16 => FeatureDtype::F16,
        },
    };
    let extractor = Extractor::load(&args.model, device, options, args.batch_size)
        .with_context(|| format!("loading the CLIP vision tower of {}", args.model.display()))?;
    tracing::info!(
        "{} images under {}; CLIP {} ({} layers, width {}) on {device:?}",
        images.len(),
        args.images.display(),
        args.model.display(),
        extractor.clip().config().num_hidden_layers,
        extractor.clip().config().hidden_size
    );
    let report = dept_train::vision::extract_with_progress(&extractor, &images, &args.out, quiet)?;
    if !quiet {
        println!(
            "{}: {} images ({} extracted now, {} already there), {} tokens × {} each",
            args.out.display(),
            images.len(),
            report.extracted,
            report.reused,
            report.shape[0],
            report.shape[1]
        );
    }
    Ok(())
}
