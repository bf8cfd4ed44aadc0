//! `dept import official` and `dept export official`: adapters in the official DePT code's files
//! (`adapter_model.bin`, a `torch.save` archive read without unpickling it) to and from dept's safetensors folders.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use dept_core::{official, DecomposedPrompt, ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE};

#[derive(Subcommand)]
pub enum ImportCommand {
    /// An adapter folder the official DePT code saved (adapter_config.json, adapter_model.bin): its tensors are
    /// read by a restricted reader that accepts only a plain tensor state dict (no code in the file can run), and
    /// written as a dept adapter folder (adapter_config.json, adapter_model.safetensors).
    Official(ImportOfficialArgs),
}

#[derive(Subcommand)]
pub enum ExportCommand {
    /// A dept adapter folder in the official DePT code's files: adapter_model.bin as torch.save writes it (read by
    /// torch.load, weights_only=True included) and its adapter_config.json.
    Official(ExportOfficialArgs),
}

#[derive(Args)]
pub struct ImportOfficialArgs {
    /// The official adapter folder (adapter_config.json, adapter_model.bin).
    dir: PathBuf,
    /// The dept adapter folder to write.
    #[arg(long)]
    out: PathBuf,
    /// Replace an adapter already in --out.
    #[arg(long)]
    force: bool,
    /// A DePT adapter whose file holds its prompt but not A and B (saved by the official code before its
    /// save_lora_embeddings option, as three of the five released adapters are): `refuse`, or `init` to import it
    /// with A initialised as the official code does and B = 0 (A·B = 0: the prompt alone).
    #[arg(long, value_enum, default_value = "refuse")]
    missing_pair: MissingPairArg,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum MissingPairArg {
    Refuse,
    Init,
}

#[derive(Args)]
pub struct ExportOfficialArgs {
    /// The dept adapter folder (adapter_config.json, adapter_model.safetensors).
    adapter: PathBuf,
    /// The folder to write adapter_config.json and adapter_model.bin into.
    #[arg(long)]
    out: PathBuf,
    /// Replace files already in --out.
    #[arg(long)]
    force: bool,
}

pub fn import(command: &ImportCommand) -> Result<()> {
    let ImportCommand::Official(args) = command;
    refuse_to_overwrite(
        &args.out,
        &[ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE],
        args.force,
    )?;
    let missing = match args.missing_pair {
        MissingPairArg::Refuse => official::MissingPair::Refuse,
        MissingPairArg::Init => official::MissingPair::Initialise,
    };
    let adapter = official::import(&args.dir, &args.out, missing)
        .with_context(|| format!("importing the official adapter {}", args.dir.display()))?;
    println!(
        "imported {} → {} ({})",
        args.dir.display(),
        args.out.display(),
        describe(&adapter)
    );
    Ok(())
}

pub fn export(command: &ExportCommand) -> Result<()> {
    let ExportCommand::Official(args) = command;
    refuse_to_overwrite(
        &args.out,
        &[ADAPTER_CONFIG_FILE, official::OFFICIAL_WEIGHTS_FILE],
        args.force,
    )?;
    let adapter = DecomposedPrompt::load(&args.adapter, tch::Device::Cpu)
        .with_context(|| format!("reading the adapter {}", args.adapter.display()))?;
    official::export(&adapter, &args.out)
        .with_context(|| format!("exporting to {}", args.out.display()))?;
    println!(
        "exported {} → {} ({})",
        args.adapter.display(),
        args.out.display(),
        describe(&adapter)
    );
    Ok(())
}

fn describe(adapter: &DecomposedPrompt) -> String {
    let config = adapter.config();
    let s = config.s.map_or("-".to_string(), |s| s.to_string());
    format!(
        "{}: m = {}, r = {}, s = {s}, d = {}, {} parameters",
        config.peft_type(),
        config.m,
        config.r,
        config.d,
        config.num_params()
    )
}

fn refuse_to_overwrite(out: &Path, files: &[&str], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some(existing) = files.iter().map(|f| out.join(f)).find(|p| p.exists()) {
        bail!(
            "{} already exists; pass --force to replace it",
            existing.display()
        );
    }
    Ok(())
}
