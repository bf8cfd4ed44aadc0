//! `dept bench reference`: the DePT training step in dept and in eager PyTorch (transformers' T5 and a DePT module
//! written after the official code, `bench_reference.py`), on the same random weights and the same batches,
//! interleaved step by step so that both see the same machine load. dept runs three ways: padded to s as the
//! official code (same tensors as PyTorch), padded to each batch's longest input, and with length-grouped batches.
//! A per-part breakdown of dept's padded step follows.

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
use tch::{Device, Tensor};

use crate::efficiency::Stats;
use crate::error::{bail, ensure, BenchError, Result};
use crate::python_side::{python, PythonSide};
use crate::scratch::Scratch;
use crate::synthetic::{random_examples, t5_shape};

const SCRIPT: &str = include_str!("bench_reference.py");
const LR_PROMPT: f64 = 0.3;
const LR_PAIR: f64 = 1e-4;

#[derive(Args)]
pub struct ReferenceArgs {
    /// Random-weight T5 v1 shapes to measure (repeat the flag): t5-small, t5-base, t5-large.
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
    /// Timed steps per implementation (after the warm-up steps).
    #[arg(long, default_value_t = 5)]
    steps: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
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
}

pub fn run(args: &ReferenceArgs) -> Result<()> {
    ensure!(
        args.batch_size > 0 && args.steps > 0 && args.max_len > 0,
        "--batch-size, --steps and --max-len must be positive"
    );
    ensure!(
        0 < args.min_input && args.min_input <= args.max_input && args.max_input <= args.max_len,
        "need 0 < --min-input ≤ --max-input ≤ --max-len"
    );
    let python = python(args.python.as_deref())?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let threads = tch::get_num_threads();
    let scratch = Scratch::create("bench-reference")?;
    let script = scratch.join("bench_reference.py");
    std::fs::write(&script, SCRIPT).map_err(|e| BenchError::io("writing", &script, e))?;
    let result = args
        .shapes
        .iter()
        .try_for_each(|shape| compare(args, shape, &python, &script, scratch.path(), threads));
    result
}

/// dept's three ways of running the step, in the order they run after each PyTorch step and are printed.
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
) -> Result<()> {
    let device = Device::Cpu;
    tch::manual_seed(0);
    let t5 = T5::new_random(&t5_shape(shape)?, device)?;
    let model_dir = scratch.join(shape);
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
    let inputs = scratch.join(format!("{shape}-inputs.safetensors"));
    write_inputs(&inputs, &start, &batches.padded)?;
    let mut pytorch = PyTorch::start(
        python,
        script,
        &model_dir,
        &inputs,
        config.scale(),
        args,
        threads,
    )?;
    let mut variants: Vec<Variant> = VARIANTS
        .into_iter()
        .map(|name| Variant::new(name, &start, &config, device))
        .collect::<Result<_>>()?;
    let measured = measure(args, &t5, &mut pytorch, &mut variants, &batches)?;
    pytorch.quit();

    print_report(args, shape, threads, &measured, &variants, &batches);
    if let Some(tolerance) = args.check_loss {
        measured.check_first_losses(tolerance)?;
    }
    breakdown(args, &t5, &start, &config, &batches.padded)?;
    Ok(())
}

/// The batches of every step (warm-up first), full ones only: the official random order padded to s (exactly
/// PyTorch's tensors) and padded to each batch's longest input, and the length-grouped order padded to the longest.
struct StepBatches {
    padded: Vec<Batch>,
    longest: Vec<Batch>,
    grouped: Vec<Batch>,
}

impl StepBatches {
    fn draw(args: &ReferenceArgs, examples: &[Encoded], device: Device) -> Self {
        // Batches of the official random order, and batches of the length-grouped order drawn at random from the
        // whole epoch (its first batches are its longest, which would not be representative).
        let count = args.warmup + args.steps;
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
        let full = |b: &&Vec<usize>| b.len() == args.batch_size;
        let random: Vec<&Vec<usize>> = random.iter().filter(full).cycle().take(count).collect();
        let grouped: Vec<&Vec<usize>> = torch_randperm(grouped_all.len(), 1)
            .into_iter()
            .map(|i| &grouped_all[i])
            .filter(full)
            .cycle()
            .take(count)
            .collect();

        let batch = |indices: &[usize], padding| {
            let items: Vec<&Encoded> = indices.iter().map(|&i| &examples[i]).collect();
            Batch::new(&items, padding, args.max_len, 0, device)
        };
        StepBatches {
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

/// What the steps gave besides the variants' own times.
struct Measured {
    /// PyTorch's timed steps, in milliseconds.
    torch_ms: Vec<f64>,
    /// The first step's loss: (PyTorch, dept padded to s), which see exactly the same tensors.
    first_losses: (f64, f64),
}

impl Measured {
    /// The --check-loss: with dropout off, both sides must compute the same first loss.
    fn check_first_losses(&self, tolerance: f64) -> Result<()> {
        let (torch, dept) = self.first_losses;
        let difference = (torch - dept).abs() / torch.abs();
        ensure!(
            difference <= tolerance,
            "first-step losses differ by {difference:.2e} relative (limit {tolerance:.0e}): PyTorch {torch}, dept \
             {dept}"
        );
        Ok(())
    }
}

/// Warm-up then timed steps, interleaved: each step k is PyTorch's, then each variant's on its batch k (the
/// dropout seed k for all three).
fn measure(
    args: &ReferenceArgs,
    t5: &T5,
    pytorch: &mut PyTorch,
    variants: &mut [Variant],
    batches: &StepBatches,
) -> Result<Measured> {
    let mut torch_ms = Vec::new();
    let mut first_losses = (f64::NAN, f64::NAN);
    for k in 0..args.warmup + args.steps {
        let (ms, loss) = pytorch.step(k)?;
        for (i, (variant, batches)) in variants.iter_mut().zip(batches.per_variant()).enumerate() {
            tch::manual_seed(k as i64);
            let (ms, loss) = variant.step(t5, &batches[k], !args.no_dropout)?;
            if k >= args.warmup {
                variant.ms.push(ms);
            }
            // The padded variant sees exactly PyTorch's tensors.
            if k == 0 && i == 0 {
                first_losses.1 = loss;
            }
        }
        if k >= args.warmup {
            torch_ms.push(ms);
        }
        if k == 0 {
            first_losses.0 = loss;
        }
    }
    Ok(Measured {
        torch_ms,
        first_losses,
    })
}

/// The shape's lines: the setting, PyTorch's and each variant's median step, and the first-step losses.
fn print_report(
    args: &ReferenceArgs,
    shape: &str,
    threads: i32,
    measured: &Measured,
    variants: &[Variant],
    batches: &StepBatches,
) {
    print_setting(args, shape, threads);
    let torch = median(&measured.torch_ms);
    println!(
        "  {:<32} {:>9.1} ms/step  (inputs {:.0} tokens wide)",
        if args.same_malloc {
            "PyTorch eager, padded to s (*)"
        } else {
            "PyTorch eager, padded to s"
        },
        torch,
        mean_width(args, &batches.padded)
    );
    for (variant, batches) in variants.iter().zip(batches.per_variant()) {
        let ms = median(&variant.ms);
        println!(
            "  {:<32} {:>9.1} ms/step  (inputs {:.0} tokens wide)  dept ÷ PyTorch {:.2}, speed-up {:.2}x",
            variant.name,
            ms,
            mean_width(args, batches),
            ms / torch,
            torch / ms
        );
    }
    println!(
        "  first-step loss: PyTorch {:.6}, dept {:.6}{}",
        measured.first_losses.0,
        measured.first_losses.1,
        if args.no_dropout {
            ""
        } else {
            " (dropout on: equal in distribution only)"
        }
    );
    if args.same_malloc {
        println!("  (*) with glibc's malloc tuned as dept tunes its own (--same-malloc)");
    }
}

/// The setting a shape's lines were measured in.
fn print_setting(args: &ReferenceArgs, shape: &str, threads: i32) {
    println!(
        "{shape}: batch {}, s = {}, DePT m = {} r = {}, dropout {}, {threads} threads, {}; median of {} steps after \
         {} warm-up, interleaved",
        args.batch_size,
        args.max_len,
        args.prompt_len,
        args.rank,
        if args.no_dropout { "off" } else { "on" },
        args.task
            .as_ref()
            .map_or_else(|| format!("random inputs of {}–{} tokens", args.min_input, args.max_input), |t| {
                format!("{t} training rows")
            }),
        args.steps,
        args.warmup
    );
}

/// The timed batches' mean width in tokens (what padding leaves to compute).
fn mean_width(args: &ReferenceArgs, batches: &[Batch]) -> f64 {
    batches[args.warmup..]
        .iter()
        .map(|b| b.input_ids.size()[1] as f64)
        .sum::<f64>()
        / args.steps as f64
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
    name: &'static str,
    adapter: DecomposedPrompt,
    optimizer: AdamW,
    params: Vec<Tensor>,
    ms: Vec<f64>,
}

impl Variant {
    fn new(
        name: &'static str,
        start: &DecomposedPrompt,
        config: &DeptConfig,
        device: Device,
    ) -> Result<Self> {
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
            name,
            adapter,
            optimizer,
            params,
            ms: Vec::new(),
        })
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
    args: &ReferenceArgs,
    t5: &T5,
    start: &DecomposedPrompt,
    config: &DeptConfig,
    batches: &[Batch],
) -> Result<()> {
    let mut variant = Variant::new("parts", start, config, Device::Cpu)?;
    let dropout = !args.no_dropout;
    let mut parts: Vec<Vec<f64>> = vec![Vec::new(); PARTS.len()];
    for (k, batch) in batches.iter().enumerate() {
        tch::manual_seed(k as i64);
        let times = variant.step_by_parts(t5, batch, dropout)?;
        if k >= args.warmup {
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

/// The PyTorch process, answering one step per request.
struct PyTorch {
    side: PythonSide,
}

impl PyTorch {
    fn start(
        python: &Path,
        script: &Path,
        model: &Path,
        inputs: &Path,
        scale: f64,
        args: &ReferenceArgs,
        threads: i32,
    ) -> Result<Self> {
        let mut command = Command::new(python);
        if args.same_malloc {
            command
                .env("MALLOC_MMAP_MAX_", "0")
                .env("MALLOC_TRIM_THRESHOLD_", i32::MAX.to_string());
        }
        command
            .arg(script)
            .arg("--model")
            .arg(model)
            .arg("--inputs")
            .arg(inputs)
            .args(["--scale", &scale.to_string()])
            .args(["--dropout", if args.no_dropout { "0" } else { "1" }])
            .args(["--threads", &threads.to_string()])
            .args([
                "--lr-prompt",
                &LR_PROMPT.to_string(),
                "--lr-pair",
                &LR_PAIR.to_string(),
            ]);
        let (side, line) = PythonSide::start(command, python)?;
        ensure!(
            line.trim() == "ready",
            "the PyTorch side did not start: {line}"
        );
        Ok(PyTorch { side })
    }

    fn step(&mut self, k: usize) -> Result<(f64, f64)> {
        let line = self.side.ask(&format!("step {k}"))?;
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ok", ms, loss] => match (ms.parse(), loss.parse()) {
                (Ok(ms), Ok(loss)) => Ok((ms, loss)),
                _ => bail!("unexpected answer from the PyTorch side: {line}"),
            },
            _ => bail!("unexpected answer from the PyTorch side: {line}"),
        }
    }

    fn quit(self) {
        self.side.quit("quit");
    }
}
