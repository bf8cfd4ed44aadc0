//! `dept bench reference`: the DePT training step in dept and in eager PyTorch (transformers' T5 and a DePT module
//! written after the official code, `bench_reference.py`), on the same random weights and the same batches. dept
//! runs three ways: padded to s as the official code (same tensors as PyTorch), padded to each batch's longest
//! input, and with length-grouped batches. A per-part breakdown of dept's padded step follows.
//!
//! Fairness: the sides never compute at once. Each round runs dept's block (each way's warm-up steps, then its
//! timed ones), then starts the Python process, which loads the model (not timed), runs the same steps on the same
//! batches and exits; `--rounds` rounds alternate, so that a drift of the machine reaches both. Threads are the
//! same on both sides. Figures are medians over every timed step of every round, with their range and each round's
//! median. `--epoch` times a whole epoch of the task's rows instead of a few steps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Args;
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_data::randperm::torch_randperm;
use dept_data::{load_split, Split, OFFICIAL_SPLIT_SEED};
use dept_models::t5::T5;
use dept_models::{Backbone, PromptedModel, TextTokenizer};
use dept_train::batch::{encode_examples, Batch, Encoded};
use dept_train::config::Padding;
use dept_train::optim::{AdamW, AdamWConfig};
use dept_train::order::length_grouped;
use dept_train::step;
use serde::Serialize;
use tch::{Device, Tensor};

use crate::efficiency::Stats;
use crate::error::{ensure, BenchError, Result};
use crate::python_side::python;
use crate::rounds::Timings;
use crate::scratch::Scratch;
use crate::synthetic::{random_examples, t5_shape};

const SCRIPT: &str = include_str!("bench_reference.py");
const LR_PROMPT: f64 = 0.3;
const LR_PAIR: f64 = 1e-4;

#[derive(Args)]
pub struct ReferenceArgs {
    /// Random-weight T5 v1 shapes to measure (repeat the flag): t5-small, t5-base, t5-large; `tiny` checks the
    /// bench itself.
    #[arg(long = "shape", default_value = "t5-small")]
    shapes: Vec<String>,
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// s: inputs are cut to this many tokens; PyTorch pads every input to it, as the official code.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    #[arg(long, default_value_t = 60)]
    prompt_len: i64,
    #[arg(long, default_value_t = 30)]
    rank: i64,
    /// Real inputs: this task's training rows (e.g. rte, sst2) from --data-dir, tokenised with --tokenizer.
    /// Without it, random inputs of lengths drawn from [--min-input, --max-input].
    #[arg(long, requires_all = ["data_dir", "tokenizer"])]
    task: Option<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A tokenizer.json (T5's) for --task.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 32)]
    min_input: usize,
    #[arg(long, default_value_t = 128)]
    max_input: usize,
    /// Timed steps per implementation and round (after the warm-up steps). Ignored with --epoch.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Untimed steps per implementation and round, before the timed ones.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Rounds: blocks of each side, alternating (dept's three ways, then PyTorch, then dept again, …).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Time one whole epoch of --task's training rows per implementation and round (every batch, the last
    /// partial one too), in the official random order and in the length-grouped order, instead of --steps steps.
    #[arg(long, requires = "task")]
    epoch: bool,
    /// Backbone dropout off (training keeps it on, as the official code; off, the first losses must agree).
    #[arg(long)]
    no_dropout: bool,
    /// The python with torch 2.11 and transformers (default: DEPT_BENCH_PYTHON, else the venv that
    /// `cargo xtask bench-venv` makes).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Intra-op threads for both sides (default: libtorch's choice, the same on both sides).
    #[arg(long)]
    threads: Option<i32>,
    /// Run PyTorch with glibc's malloc tuned as dept tunes its own (no `mmap` for large blocks, freed memory
    /// kept): the same allocator policy on both sides, which isolates the difference in the computation itself.
    /// Without it PyTorch runs as users run it.
    #[arg(long)]
    same_malloc: bool,
    /// Fail unless the first step's losses agree within this relative difference (needs --no-dropout): a check
    /// that both sides compute the same thing.
    #[arg(long, requires = "no_dropout")]
    check_loss: Option<f64>,
    /// Keep the random model (Hugging Face layout) and the PyTorch side's inputs (the adapter's start and every
    /// padded batch) in this folder, one subfolder per shape, instead of a scratch folder: what
    /// `tests/reference/official_step.py` reads to time the official code's own step on the same work.
    #[arg(long)]
    keep_inputs: Option<PathBuf>,
    /// Folder for reference.csv and reference.jsonl.
    #[arg(long, default_value = "bench-reference")]
    out: PathBuf,
}

pub fn run(args: &ReferenceArgs) -> Result<()> {
    ensure!(
        args.batch_size > 0 && args.steps > 0 && args.max_len > 0 && args.rounds > 0,
        "--batch-size, --steps, --rounds and --max-len must be positive"
    );
    ensure!(
        args.task.is_some()
            || (0 < args.min_input && args.min_input <= args.max_input && args.max_input <= args.max_len),
        "need 0 < --min-input ≤ --max-input ≤ --max-len (the random inputs' lengths, without --task)"
    );
    let python = python(args.python.as_deref())?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let threads = tch::get_num_threads();
    let scratch = Scratch::create("bench-reference")?;
    let script = scratch.join("bench_reference.py");
    std::fs::write(&script, SCRIPT).map_err(|e| BenchError::io("writing", &script, e))?;
    let mut lines = Vec::new();
    for shape in &args.shapes {
        lines.extend(compare(
            args,
            shape,
            &python,
            &script,
            scratch.path(),
            threads,
        )?);
    }
    write(&args.out, &lines)
}

/// The implementations, in the order they are printed: PyTorch, then dept's three ways of running the step (in
/// the order they run in dept's block).
const PYTORCH: &str = "PyTorch eager, padded to s";
const VARIANTS: [&str; 3] = [
    "dept, padded to s",
    "dept, padded to longest",
    "dept, length-grouped",
];

/// One shape: both sides on the same random T5, the same initial adapter and the same batches.
fn compare(
    args: &ReferenceArgs,
    shape: &str,
    python: &Path,
    script: &Path,
    scratch: &Path,
    threads: i32,
) -> Result<Vec<Line>> {
    let device = Device::Cpu;
    tch::manual_seed(0);
    let t5 = T5::new_random(&t5_shape(shape)?, device)?;
    let folder = match &args.keep_inputs {
        Some(dir) => dir.join(shape),
        None => scratch.join(shape),
    };
    let model_dir = folder.join("model");
    t5.save(&model_dir)?;
    let examples = examples(args, t5.vocab_size())?;
    ensure!(
        examples.len() >= args.batch_size,
        "only {} examples for batches of {}",
        examples.len(),
        args.batch_size
    );
    let batches = StepBatches::draw(args, &examples, device);

    let d = t5.hidden_size();
    let config = DeptConfig::new(args.prompt_len, args.rank, args.max_len as i64, d)?
        .with_init(&PromptInit::Random);
    let start = DecomposedPrompt::new(config.clone(), None, device)?;
    let inputs = folder.join("inputs.safetensors");
    write_inputs(&inputs, &start, &batches.padded)?;
    let pytorch = PyTorch {
        python,
        script,
        model: &model_dir,
        inputs: &inputs,
        scale: config.scale(),
        args,
        threads,
    };
    print_setting(args, shape, threads, &batches);

    let mut torch = Timings::default();
    let mut dept = vec![Timings::default(); VARIANTS.len()];
    let mut first_losses = (f64::NAN, f64::NAN);
    for round in 0..args.rounds {
        for (i, (timings, list)) in dept.iter_mut().zip(batches.per_variant()).enumerate() {
            let mut variant = Variant::new(&start, &config, device)?;
            let (ms, first) = variant.block(&t5, list, batches.warmup, !args.no_dropout)?;
            timings.rounds.push(ms);
            // The padded way sees exactly PyTorch's tensors.
            if round == 0 && i == 0 {
                first_losses.1 = first;
            }
        }
        let out = scratch.join(format!("{shape}-pytorch-{round}.jsonl"));
        let (ms, first) = pytorch.block(batches.padded.len(), &out)?;
        torch.rounds.push(ms[batches.warmup..].to_vec());
        if round == 0 {
            first_losses.0 = first;
        }
    }

    let mut lines = vec![Line::new(
        args,
        shape,
        PYTORCH,
        &batches.padded,
        batches.warmup,
        &torch,
        None,
    )];
    for ((name, timings), variant_batches) in VARIANTS.iter().zip(&dept).zip(batches.per_variant())
    {
        lines.push(Line::new(
            args,
            shape,
            name,
            variant_batches,
            batches.warmup,
            timings,
            Some(&lines[0]),
        ));
    }
    print_lines(&lines, args);
    print_losses(args, first_losses);
    if let Some(tolerance) = args.check_loss {
        check_first_losses(first_losses, tolerance)?;
    }
    // The per-part breakdown takes a few steps, even with --epoch.
    let parts = batches.warmup + if args.epoch { 5 } else { args.steps };
    let parts = &batches.padded[..parts.min(batches.padded.len())];
    breakdown(args.warmup, !args.no_dropout, &t5, &start, &config, parts)?;
    Ok(lines)
}

/// The batches every implementation runs, warm-up ones first: the official random order padded to s (exactly
/// PyTorch's tensors) and padded to each batch's longest input, and the length-grouped order padded to the longest.
struct StepBatches {
    /// How many of each list's first batches are warm-up.
    warmup: usize,
    padded: Vec<Batch>,
    longest: Vec<Batch>,
    grouped: Vec<Batch>,
}

impl StepBatches {
    fn draw(args: &ReferenceArgs, examples: &[Encoded], device: Device) -> Self {
        let order = torch_randperm(examples.len(), 0);
        let random: Vec<Vec<usize>> = order
            .chunks(args.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let lengths: Vec<usize> = examples.iter().map(|e| e.input_ids.len()).collect();
        let grouped_all: Vec<Vec<usize>> = length_grouped(&order, &lengths, args.batch_size)
            .chunks(args.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        let (random, grouped): (Vec<&Vec<usize>>, Vec<&Vec<usize>>) = if args.epoch {
            // The whole epoch, after its first batches again as the warm-up.
            (
                with_warmup(&random, args.warmup),
                with_warmup(&grouped_all, args.warmup),
            )
        } else {
            // Full batches of the official random order, and of the length-grouped order drawn at random from
            // the whole epoch (its first batches are its longest, which would not be representative).
            let count = args.warmup + args.steps;
            let full = |b: &&Vec<usize>| b.len() == args.batch_size;
            let random = random.iter().filter(full).cycle().take(count).collect();
            let grouped = torch_randperm(grouped_all.len(), 1)
                .into_iter()
                .map(|i| &grouped_all[i])
                .filter(full)
                .cycle()
                .take(count)
                .collect();
            (random, grouped)
        };

        let batch = |indices: &[usize], padding| {
            let items: Vec<&Encoded> = indices.iter().map(|&i| &examples[i]).collect();
            Batch::new(&items, padding, args.max_len, 0, device)
        };
        StepBatches {
            warmup: args.warmup.min(random.len()),
            padded: random
                .iter()
                .map(|b| batch(b, Padding::MaxLength))
                .collect(),
            longest: random.iter().map(|b| batch(b, Padding::Longest)).collect(),
            grouped: grouped.iter().map(|b| batch(b, Padding::Longest)).collect(),
        }
    }

    /// Each of [`VARIANTS`]' batches, in its order.
    fn per_variant(&self) -> [&[Batch]; 3] {
        [&self.padded, &self.longest, &self.grouped]
    }
}

/// The whole epoch's batches, after its first `warmup` ones again as the warm-up.
fn with_warmup(epoch: &[Vec<usize>], warmup: usize) -> Vec<&Vec<usize>> {
    epoch.iter().take(warmup).chain(epoch).collect()
}

/// The PyTorch side's file: the initial adapter (P, and A and B where m < l) and every padded batch's tensors.
fn write_inputs(path: &Path, start: &DecomposedPrompt, padded: &[Batch]) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vec![("P".into(), start.prompt().copy())];
    if let Some((a, b)) = start.pair() {
        named.push(("A".into(), a.copy()));
        named.push(("B".into(), b.copy()));
    }
    for (k, b) in padded.iter().enumerate() {
        named.push((format!("ids_{k}"), b.input_ids.copy()));
        named.push((format!("mask_{k}"), b.attention_mask.copy()));
        named.push((format!("labels_{k}"), b.labels.copy()));
    }
    Tensor::write_safetensors(&named, path)?;
    Ok(())
}

/// The PyTorch side: one process per block, started once dept's block has finished.
struct PyTorch<'a> {
    python: &'a Path,
    script: &'a Path,
    model: &'a Path,
    inputs: &'a Path,
    scale: f64,
    args: &'a ReferenceArgs,
    threads: i32,
}

impl PyTorch<'_> {
    /// Runs batches `0..count` in a fresh process; returns every step's milliseconds and the first step's loss.
    fn block(&self, count: usize, out: &Path) -> Result<(Vec<f64>, f64)> {
        let mut command = Command::new(self.python);
        if self.args.same_malloc {
            command
                .env("MALLOC_MMAP_MAX_", "0")
                .env("MALLOC_TRIM_THRESHOLD_", i32::MAX.to_string());
        }
        command
            .arg(self.script)
            .arg("--model")
            .arg(self.model)
            .arg("--inputs")
            .arg(self.inputs)
            .arg("--out")
            .arg(out)
            .args(["--count", &count.to_string()])
            .args(["--scale", &self.scale.to_string()])
            .args(["--dropout", if self.args.no_dropout { "0" } else { "1" }])
            .args(["--threads", &self.threads.to_string()])
            .args([
                "--lr-prompt",
                &LR_PROMPT.to_string(),
                "--lr-pair",
                &LR_PAIR.to_string(),
            ]);
        let output = command
            .output()
            .map_err(|e| BenchError::io("running", self.python, e))?;
        if !output.status.success() {
            return Err(BenchError::Python(format!(
                "{} failed ({}): {}",
                self.script.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let text = std::fs::read_to_string(out).map_err(|e| BenchError::io("reading", out, e))?;
        let steps: Vec<PythonStep> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| BenchError::Invalid(format!("{}: {e}: {l}", out.display())))
            })
            .collect::<Result<_>>()?;
        ensure!(
            steps.len() == count,
            "{}: {} steps, expected {count}",
            out.display(),
            steps.len()
        );
        let first = steps[0].loss;
        Ok((steps.into_iter().map(|s| s.ms).collect(), first))
    }
}

/// One line of `bench_reference.py`'s output.
#[derive(serde::Deserialize)]
struct PythonStep {
    ms: f64,
    loss: f64,
}

/// One implementation's figures on one shape, as printed and written.
#[derive(Serialize)]
struct Line {
    shape: String,
    implementation: String,
    batch: usize,
    max_len: usize,
    /// The timed batches' mean width in tokens (what padding leaves to compute).
    tokens_wide: f64,
    timed_steps: usize,
    rounds: usize,
    ms: f64,
    ms_min: f64,
    ms_max: f64,
    round_ms: Vec<f64>,
    /// Per round, this implementation's median step over PyTorch's in the same round (below 1: faster): a drift
    /// of the machine between rounds cancels out of each.
    round_ratios: Vec<f64>,
    /// The median of `round_ratios`.
    ratio_to_pytorch: f64,
    /// With --epoch: each round's epoch time, in seconds.
    epoch_s: Option<Vec<f64>>,
}

impl Line {
    fn new(
        args: &ReferenceArgs,
        shape: &str,
        implementation: &str,
        batches: &[Batch],
        warmup: usize,
        timings: &Timings,
        pytorch: Option<&Line>,
    ) -> Self {
        let all = timings.all();
        let timed = &batches[warmup..];
        let round_ms = timings.round_medians();
        let round_ratios: Vec<f64> = match pytorch {
            Some(p) => round_ms
                .iter()
                .zip(&p.round_ms)
                .map(|(ms, torch)| ms / torch)
                .collect(),
            None => vec![1.0; round_ms.len()],
        };
        Line {
            shape: shape.to_string(),
            implementation: implementation.to_string(),
            batch: args.batch_size,
            max_len: args.max_len,
            tokens_wide: timed
                .iter()
                .map(|b| b.input_ids.size()[1] as f64)
                .sum::<f64>()
                / timed.len() as f64,
            timed_steps: timed.len(),
            rounds: timings.rounds.len(),
            ms: all.median,
            ms_min: all.min,
            ms_max: all.max,
            ratio_to_pytorch: median(&round_ratios),
            round_ms,
            round_ratios,
            epoch_s: args
                .epoch
                .then(|| timings.round_sums().iter().map(|ms| ms / 1e3).collect()),
        }
    }
}

/// The setting a shape's lines are measured in.
fn print_setting(args: &ReferenceArgs, shape: &str, threads: i32, batches: &StepBatches) {
    let timed = batches.padded.len() - batches.warmup;
    println!(
        "{shape}: batch {}, s = {}, DePT m = {} r = {}, dropout {}, {threads} threads, {}; {} rounds of {} timed \
         steps after {} warm-up, each side alone in its block",
        args.batch_size,
        args.max_len,
        args.prompt_len,
        args.rank,
        if args.no_dropout { "off" } else { "on" },
        match &args.task {
            Some(t) if args.epoch => format!("one epoch of {t}'s training rows"),
            Some(t) => format!("{t} training rows"),
            None => format!("random inputs of {}–{} tokens", args.min_input, args.max_input),
        },
        args.rounds,
        timed,
        batches.warmup
    );
}

fn print_lines(lines: &[Line], args: &ReferenceArgs) {
    let epoch = args.epoch;
    println!(
        "  {:<28} {:>26} {:>18} {:>8} {:>20}{}",
        "implementation",
        "ms/step median [range]",
        "rounds' medians",
        "tokens",
        "÷ PyTorch [rounds]",
        if epoch {
            "   epoch s per round (speed-up)"
        } else {
            ""
        }
    );
    let torch_epoch = lines[0].epoch_s.as_ref().map(|e| mean(e));
    for line in lines {
        let rounds: Vec<String> = line.round_ms.iter().map(|ms| format!("{ms:.0}")).collect();
        let epoch = match (&line.epoch_s, torch_epoch) {
            (Some(seconds), Some(torch)) => {
                let each: Vec<String> = seconds.iter().map(|s| format!("{s:.1}")).collect();
                format!("   {} ({:.2}x)", each.join(", "), torch / mean(seconds))
            }
            _ => String::new(),
        };
        println!(
            "  {:<28} {:>26} {:>18} {:>8.0} {:>20}{epoch}",
            if line.implementation == PYTORCH && args.same_malloc {
                format!("{PYTORCH} (*)")
            } else {
                line.implementation.clone()
            },
            format!("{:.0} [{:.0}–{:.0}]", line.ms, line.ms_min, line.ms_max),
            rounds.join(", "),
            line.tokens_wide,
            format!(
                "{:.2} [{:.2}–{:.2}]",
                line.ratio_to_pytorch,
                line.round_ratios
                    .iter()
                    .copied()
                    .fold(f64::INFINITY, f64::min),
                line.round_ratios
                    .iter()
                    .copied()
                    .fold(f64::NEG_INFINITY, f64::max)
            )
        );
    }
    if args.same_malloc {
        println!("  (*) with glibc's malloc tuned as dept tunes its own (--same-malloc)");
    }
}

fn print_losses(args: &ReferenceArgs, (torch, dept): (f64, f64)) {
    println!(
        "  first-step loss: PyTorch {torch:.6}, dept {dept:.6}{}",
        if args.no_dropout {
            ""
        } else {
            " (dropout on: equal in distribution only)"
        }
    );
}

/// The --check-loss: with dropout off, both sides must compute the same first loss.
fn check_first_losses((torch, dept): (f64, f64), tolerance: f64) -> Result<()> {
    let difference = (torch - dept).abs() / torch.abs();
    ensure!(
        difference <= tolerance,
        "first-step losses differ by {difference:.2e} relative (limit {tolerance:.0e}): PyTorch {torch}, dept {dept}"
    );
    Ok(())
}

/// reference.csv and reference.jsonl in `dir`.
fn write(dir: &Path, lines: &[Line]) -> Result<()> {
    let mut csv = String::from(
        "shape,implementation,batch,max_len,tokens_wide,timed_steps,rounds,ms,ms_min,ms_max,ratio_to_pytorch,\
         epoch_s\n",
    );
    for l in lines {
        csv.push_str(&format!(
            "{},\"{}\",{},{},{:.1},{},{},{:.3},{:.3},{:.3},{:.4},{}\n",
            l.shape,
            l.implementation,
            l.batch,
            l.max_len,
            l.tokens_wide,
            l.timed_steps,
            l.rounds,
            l.ms,
            l.ms_min,
            l.ms_max,
            l.ratio_to_pytorch,
            l.epoch_s
                .as_ref()
                .map_or(String::new(), |e| format!("{:.3}", mean(e)))
        ));
    }
    crate::output::write_files(
        dir,
        &[
            ("reference.csv", csv),
            ("reference.jsonl", crate::output::json_lines(lines)?),
        ],
    )?;
    println!("wrote {}/reference.csv and reference.jsonl", dir.display());
    Ok(())
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Token ids of a task's training rows, or random ones.
fn examples(args: &ReferenceArgs, vocab: i64) -> Result<Vec<Encoded>> {
    match (&args.task, &args.data_dir, &args.tokenizer) {
        (Some(name), Some(dir), Some(tokenizer)) => {
            let task = dept_data::task(name)?;
            let tokenizer = TextTokenizer::from_file(tokenizer)?;
            let rows = load_split(task, dir, Split::Train, OFFICIAL_SPLIT_SEED)?;
            Ok(encode_examples(&tokenizer, &rows, args.max_len, 20)?)
        }
        _ => random_examples(
            args.batch_size * (args.warmup + args.steps) * 4,
            (args.min_input, args.max_input),
            2,
            vocab,
        ),
    }
}

/// One dept configuration: its own adapter and optimiser, started from the shared initial values.
struct Variant {
    adapter: DecomposedPrompt,
    optimizer: AdamW,
    params: Vec<Tensor>,
}

impl Variant {
    fn new(start: &DecomposedPrompt, config: &DeptConfig, device: Device) -> Result<Self> {
        let pair = start.pair().map(|(a, b)| (a.copy(), b.copy()));
        let adapter = DecomposedPrompt::from_tensors(
            config.clone(),
            &start.prompt().copy(),
            pair.as_ref(),
            device,
        )?;
        let optimizer = AdamW::new(adapter.param_groups(), AdamWConfig::default());
        let params = adapter.parameters();
        Ok(Variant {
            adapter,
            optimizer,
            params,
        })
    }

    /// dept's block for one way of running the step: every batch in order (the dropout seed k for batch k, the
    /// same in every way); returns the timed steps' milliseconds and the first step's loss.
    fn block(
        &mut self,
        t5: &T5,
        batches: &[Batch],
        warmup: usize,
        dropout: bool,
    ) -> Result<(Vec<f64>, f64)> {
        let mut times = Vec::with_capacity(batches.len());
        let mut first = f64::NAN;
        for (k, batch) in batches.iter().enumerate() {
            tch::manual_seed(k as i64);
            let (ms, loss) = self.step(t5, batch, dropout)?;
            if k == 0 {
                first = loss;
            }
            if k >= warmup {
                times.push(ms);
            }
        }
        Ok((times, first))
    }

    /// The step `dept train` takes; returns (milliseconds, loss).
    fn step(&mut self, t5: &T5, batch: &Batch, dropout: bool) -> Result<(f64, f64)> {
        let start = Instant::now();
        self.optimizer.zero_grad();
        let model = PromptedModel::new(t5, &self.adapter);
        let loss = step::forward_backward(model, std::slice::from_ref(batch), dropout)?;
        step::update(&mut self.optimizer, &self.params, 1.0, LR_PROMPT, LR_PAIR);
        Ok((start.elapsed().as_secs_f64() * 1e3, loss))
    }

    /// [`Variant::step`] with a lap after each of [`PARTS`] (milliseconds, in its order).
    fn step_by_parts(&mut self, t5: &T5, batch: &Batch, dropout: bool) -> Result<Vec<f64>> {
        self.optimizer.zero_grad();
        let model = PromptedModel::new(t5, &self.adapter);
        let mut times = Vec::with_capacity(PARTS.len());
        let mut clock = Instant::now();
        let mut lap = |times: &mut Vec<f64>| {
            times.push(clock.elapsed().as_secs_f64() * 1e3);
            clock = Instant::now();
        };
        let (embeds, mask) = model.embed(&batch.input_ids, &batch.attention_mask)?;
        lap(&mut times);
        let (encoded, encoder_mask) = t5.encode(&embeds, &mask, dropout);
        lap(&mut times);
        let logits = t5.decode(&batch.labels, &encoded, &encoder_mask, dropout);
        lap(&mut times);
        let loss = t5.loss(&logits, &batch.labels);
        lap(&mut times);
        loss.backward();
        lap(&mut times);
        step::update(&mut self.optimizer, &self.params, 1.0, LR_PROMPT, LR_PAIR);
        lap(&mut times);
        Ok(times)
    }
}

/// The parts of dept's step that `breakdown` times, in the order they run.
const PARTS: [&str; 6] = [
    "embedding + adapter",
    "encoder",
    "decoder",
    "loss",
    "backward",
    "optimiser",
];

/// Where dept's padded step spends its time, part by part (medians over the timed steps).
fn breakdown(
    warmup: usize,
    dropout: bool,
    t5: &T5,
    start: &DecomposedPrompt,
    config: &DeptConfig,
    batches: &[Batch],
) -> Result<()> {
    let mut variant = Variant::new(start, config, Device::Cpu)?;
    let mut parts: Vec<Vec<f64>> = vec![Vec::new(); PARTS.len()];
    for (k, batch) in batches.iter().enumerate() {
        tch::manual_seed(k as i64);
        let times = variant.step_by_parts(t5, batch, dropout)?;
        if k >= warmup {
            for (part, t) in parts.iter_mut().zip(times) {
                part.push(t);
            }
        }
    }
    let line: Vec<String> = PARTS
        .iter()
        .zip(&parts)
        .map(|(name, times)| format!("{name} {:.1}", median(times)))
        .collect();
    println!("  dept, padded to s, per part (ms): {}", line.join(", "));
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        f64::NAN
    } else {
        Stats::of(values.to_vec()).median
    }
}
