//! `dept data`: check task data before spending GPU hours (`stats`, `show`) and export the exact formatted splits
//! (`export`) so they can be diffed against another implementation.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use dept_data::export::write_jsonl;
use dept_data::report::{ShownExample, SplitTable, TaskOverview, TaskTable};
use dept_data::stats::Lengths;
use dept_data::{load_split, task, Split, Task, TextExample, OFFICIAL_SPLIT_SEED};

#[derive(Subcommand)]
pub enum DataCommand {
    /// List the paper's 23 tasks and the transfer source tasks: metrics and where their files are looked for.
    Tasks,
    /// Split sizes, label balance and input lengths of a task.
    Stats(StatsArgs),
    /// Print a few formatted examples of a split.
    Show(ShowArgs),
    /// Write a split's formatted examples as JSON lines: {"id", "input", "target"} (and "image" for VQA and COCO
    /// captions: the image id the features are keyed by).
    Export(ExportArgs),
    /// Download tasks' data from the Hugging Face hub (the parquet export of the dataset the official code loads),
    /// through the HF cache (HF_HOME, HF_HUB_OFFLINE, HF_ENDPOINT), into the data dir where the loaders read it.
    Fetch(super::data_fetch::FetchArgs),
}

#[derive(Args)]
pub struct Common {
    /// Task name (`rte`, `boolq`, ... or the official `superglue-boolq`); see `dept data tasks`.
    pub task: String,
    /// Folder holding one sub-folder per task (`<data-dir>/RTE/train.tsv`, `<data-dir>/CB/val.jsonl`, ...);
    /// `dept data tasks` lists the folder names each task is looked for under.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Seed of the `torch.randperm` shuffle that re-splits validation/test; 42 gives the paper's rows.
    #[arg(long, default_value_t = OFFICIAL_SPLIT_SEED)]
    pub seed: u64,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub common: Common,
    /// A Hugging Face tokenizer.json to count input tokens with, special tokens included (default: count
    /// whitespace-separated words).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Report how many inputs are longer than this (the paper truncates inputs to 256 tokens).
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub common: Common,
    /// Which split: train, validation (or val, dev) or test, after the official re-splitting.
    #[arg(long, default_value = "validation")]
    pub split: Split,
    /// How many examples to print, from the start of the split (in split order).
    #[arg(short, default_value_t = 3)]
    pub n: usize,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: Common,
    /// Which split: train, validation (or val, dev) or test, after the official re-splitting.
    #[arg(long)]
    pub split: Split,
    /// Export only the class-balanced k-shot subset of K training examples (needs `--split train`), drawn as the
    /// official `train.py` does with the training seed `--kshot-seed`.
    #[arg(long, value_name = "K")]
    pub k_shot: Option<usize>,
    /// Training seed for `--k-shot` (the official `--seed`); ignored without `--k-shot`.
    #[arg(long, default_value_t = 42)]
    pub kshot_seed: u64,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

pub fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Tasks => {
            print!("{}", TaskTable::of_registry());
            Ok(())
        }
        DataCommand::Stats(args) => stats(&args),
        DataCommand::Show(args) => show(&args),
        DataCommand::Export(args) => export(&args),
        DataCommand::Fetch(args) => super::data_fetch::fetch(&args),
    }
}

fn load(task: &'static Task, common: &Common, split: Split) -> Result<Vec<TextExample>> {
    let (name, from) = (task.name, common.data_dir.display());
    load_split(task, &common.data_dir, split, common.seed)
        .with_context(|| format!("loading {name} {split} from {from}"))
}

fn stats(args: &StatsArgs) -> Result<()> {
    let c = &args.common;
    let t = task(&c.task)?;
    let lengths = Lengths::new(args.tokenizer.as_deref())?;
    println!("{}", TaskOverview::new(t, &c.data_dir, c.seed));
    let mut table = SplitTable::new(t, &lengths, args.max_len);
    println!("{}", table.header());
    for split in Split::ALL {
        let examples = load(t, c, split).map_err(|e| format!("{e:#}"));
        println!("{}", table.row(split, examples.as_deref())?);
    }
    let (name, dir) = (t.name, c.data_dir.display());
    anyhow::ensure!(
        !table.nothing_loaded(),
        "no split of {name} could be loaded from {dir}"
    );
    Ok(())
}

fn show(args: &ShowArgs) -> Result<()> {
    let t = task(&args.common.task)?;
    let examples = load(t, &args.common, args.split)?;
    let (name, total) = (t.name, examples.len());
    println!(
        "{name} {}: {total} examples, showing {}",
        args.split,
        args.n.min(total)
    );
    for e in examples.iter().take(args.n) {
        print!("\n{}", ShownExample(e));
    }
    Ok(())
}

fn export(args: &ExportArgs) -> Result<()> {
    let t = task(&args.common.task)?;
    anyhow::ensure!(
        args.k_shot.is_none() || args.split == Split::Train,
        "--k-shot draws from the training split; use it with --split train (got --split {})",
        args.split
    );
    let mut examples = load(t, &args.common, args.split)?;
    if let Some(k) = args.k_shot {
        examples = dept_data::k_shot(t, &examples, k, args.kshot_seed)?;
        if examples.len() < k {
            let n = examples.len();
            let why = "too few training examples of some class";
            eprintln!("warning: --k-shot {k}: only {n} examples could be drawn ({why})");
        }
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    match write_jsonl(&mut BufWriter::new(out), &examples) {
        // `dept data export ... | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    }
    if let Some(path) = &args.output {
        eprintln!("wrote {} examples to {}", examples.len(), path.display());
    }
    Ok(())
}
