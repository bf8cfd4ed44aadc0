//! `dept data`: check task data before spending GPU hours (`stats`, `show`) and export the exact formatted splits
//! (`export`) so they can be diffed against another implementation.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use dept_data::stats::{split_stats, Lengths, PERCENTILES};
use dept_data::{
    find_source, load_split, task, SourceFiles, Split, SplitPolicy, Task, TextExample,
    OFFICIAL_SPLIT_SEED,
};

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
        DataCommand::Tasks => tasks(),
        DataCommand::Stats(args) => stats(&args),
        DataCommand::Show(args) => show(&args),
        DataCommand::Export(args) => export(&args),
    }
}

fn tasks() -> Result<()> {
    let rows = |tasks: &[&Task]| -> Vec<[String; 5]> {
        tasks
            .iter()
            .map(|t| {
                let mut metrics: Vec<&str> = vec![t.best_metric.name()];
                metrics.extend(
                    t.metrics
                        .iter()
                        .map(|m| m.name())
                        .filter(|m| *m != t.best_metric.name()),
                );
                [
                    t.name.to_string(),
                    t.official_name.to_string(),
                    metrics.join(", "),
                    t.hub_dataset.to_string(),
                    t.dirs.join(" | "),
                ]
            })
            .collect()
    };
    let paper: Vec<&Task> = dept_data::paper_tasks().collect();
    let sources: Vec<&Task> = dept_data::transfer_source_tasks().collect();
    let (paper, sources) = (rows(&paper), rows(&sources));
    let header = [
        "task",
        "official",
        "metrics (best first)",
        "hub dataset / files",
        "folders",
    ]
    .map(String::from);
    let mut widths = [0usize; 4];
    for row in std::iter::once(&header).chain(&paper).chain(&sources) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |row: &[String; 5]| {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )
    };
    println!(
        "The paper's {} tasks (21 NLP tasks, VQA and MSCOCO captions):",
        paper.len()
    );
    print(&header);
    paper.iter().for_each(print);
    println!();
    println!("Transfer source tasks (the paper uses them only as source tasks for transfer):");
    sources.iter().for_each(print);
    Ok(())
}

fn load(task: &'static Task, common: &Common, split: Split) -> Result<Vec<TextExample>> {
    load_split(task, &common.data_dir, split, common.seed).with_context(|| {
        format!(
            "loading {} {split} from {}",
            task.name,
            common.data_dir.display()
        )
    })
}

fn stats(args: &StatsArgs) -> Result<()> {
    let c = &args.common;
    let t = task(&c.task)?;
    let lengths = match &args.tokenizer {
        Some(path) => Lengths::tokenizer(path)?,
        None => Lengths::Words,
    };
    println!(
        "task      {} (official `{}`, hub `{}`)",
        t.name, t.official_name, t.hub_dataset
    );
    let names: Vec<&str> = t.metrics.iter().map(|m| m.name()).collect();
    println!(
        "metrics   {} (best checkpoint by {})",
        names.join(", "),
        t.best_metric.name()
    );
    println!(
        "splits    {}; shuffle seed {}",
        describe_policy(t.split_policy),
        c.seed
    );
    for split in Split::ALL {
        let source = t.source_split(split);
        let place = match find_source(t, &c.data_dir, source) {
            Ok(SourceFiles::Original(p)) => p.display().to_string(),
            Ok(SourceFiles::Parquet(ps)) => match ps.first() {
                Some(first) => format!("{} parquet shard(s) from {}", ps.len(), first.display()),
                None => "no parquet shards".to_string(),
            },
            Err(e) => format!("MISSING: {e}"),
        };
        println!("  {split:<10} <- {:<22} {place}", source.hub_name());
    }
    println!();
    let percentiles: Vec<String> = PERCENTILES.iter().map(|p| format!("p{p}")).collect();
    println!(
        "{:<11} {:>8}  {:<40} input {} ({}) ; longer than {}",
        "split",
        "examples",
        "targets",
        lengths.unit(),
        percentiles.join("/"),
        args.max_len
    );
    let mut failures = 0;
    for split in Split::ALL {
        let examples = match load(t, c, split) {
            Ok(examples) => examples,
            Err(e) => {
                failures += 1;
                println!("{split:<11} unavailable: {e:#}");
                continue;
            }
        };
        let s = split_stats(&examples, t.labels.is_some(), &lengths, args.max_len)?;
        let labels = if s.examples == 0 {
            "-".to_string()
        } else if s.labels.is_empty() {
            "free text".to_string()
        } else if s.labels.len() > 6 {
            format!("{} distinct", s.labels.len())
        } else {
            s.labels
                .iter()
                .map(|(l, n)| format!("{l}: {n} ({:.1}%)", 100.0 * *n as f64 / s.examples as f64))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let lens: Vec<String> = s
            .input_percentiles
            .iter()
            .map(|(_, v)| v.to_string())
            .collect();
        println!(
            "{:<11} {:>8}  {:<40} {} ; {}",
            split.name(),
            s.examples,
            labels,
            lens.join(" / "),
            s.over_max_len
        );
    }
    if failures == Split::ALL.len() {
        anyhow::bail!(
            "no split of {} could be loaded from {}",
            t.name,
            c.data_dir.display()
        );
    }
    Ok(())
}

/// The official re-splitting of a task, in words.
fn describe_policy(policy: SplitPolicy) -> String {
    match policy {
        SplitPolicy::HalveValidation => {
            "train = source train; validation/test = halves of the shuffled source validation"
                .to_string()
        }
        SplitPolicy::HoldoutTrain { test, max_train } => {
            let cap = max_train.map_or(String::new(), |m| format!(" (first {m})"));
            format!(
                "validation = 1000 shuffled source-train rows, train = the rest{cap}; test = source {}",
                test.hub_name()
            )
        }
        SplitPolicy::Direct { validation, test } => format!(
            "as shipped: validation = source {}, test = source {}",
            validation.hub_name(),
            test.hub_name()
        ),
    }
}

fn show(args: &ShowArgs) -> Result<()> {
    let t = task(&args.common.task)?;
    let examples = load(t, &args.common, args.split)?;
    println!(
        "{} {}: {} examples, showing {}",
        t.name,
        args.split,
        examples.len(),
        args.n.min(examples.len())
    );
    for e in examples.iter().take(args.n) {
        println!();
        println!("id      {}", e.id);
        println!("input   {}", e.input);
        println!("target  {}", e.target);
        if let Some(group) = &e.extra.group {
            println!("group   {group}");
        }
        if let Some(image) = &e.extra.image {
            println!("image   {image}");
        }
        if !e.extra.answers.is_empty() {
            println!("answers {:?}", e.extra.answers);
        }
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
            eprintln!(
                "warning: --k-shot {k}: only {} examples could be drawn (too few training examples of some class)",
                examples.len()
            );
        }
    }
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::new(out);
    match write_rows(&mut out, &examples) {
        // `dept data export ... | head` closes the pipe early; that is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other?,
    }
    if let Some(path) = &args.output {
        eprintln!("wrote {} examples to {}", examples.len(), path.display());
    }
    Ok(())
}

fn write_rows(out: &mut impl Write, examples: &[TextExample]) -> std::io::Result<()> {
    for e in examples {
        let mut row = serde_json::json!({"id": e.id, "input": e.input, "target": e.target});
        if let Some(image) = &e.extra.image {
            row["image"] = serde_json::Value::from(image.as_str());
        }
        serde_json::to_writer(&mut *out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
