//! `dept bench efficiency`: what the paper's efficiency study measures (§3.3, Figures 3–4), on this machine: for
//! each T5 shape, PT (l soft tokens) against DePT (m soft tokens + rank-r pair) at the same batches, the training
//! step (dropout on, backward, clipping and the AdamW step, as `dept train` runs it), its peak memory, and greedy
//! decoding throughput.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::{Args, ValueEnum};
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_models::t5::T5;
use dept_models::{Backbone, PromptedModel};
use dept_train::batch::{Batch, Encoded};
use dept_train::config;
use dept_train::guard::guarded;
use dept_train::memory::{peak_memory, reset_peak, PeakMemory};
use dept_train::optim::{AdamW, AdamWConfig};
use dept_train::step;
use tch::{Device, Kind, Tensor};

use super::bench::{random_examples, t5_shape};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Padding {
    /// Every input padded to s, as the official code does.
    MaxLength,
    /// Each batch padded to its longest input.
    Longest,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Precision {
    Fp32,
    /// Frozen backbone in bf16; adapter and optimiser state in fp32.
    Bf16,
}

#[derive(Args)]
pub struct EfficiencyArgs {
    /// Random-weight T5 v1 shapes to measure (repeat the flag): t5-small, t5-base, t5-large.
    #[arg(long = "shape", default_value = "t5-small")]
    shapes: Vec<String>,
    #[arg(long, default_value_t = 16)]
    batch_size: i64,
    /// s: inputs are cut (and, with --padding max-length, padded) to this many tokens.
    #[arg(long, default_value_t = 256)]
    max_len: i64,
    /// l: PT's prompt length.
    #[arg(long, default_value_t = 100)]
    pt_len: i64,
    /// m: DePT's prompt length.
    #[arg(long, default_value_t = 60)]
    prompt_len: i64,
    /// r: DePT's rank.
    #[arg(long, default_value_t = 30)]
    rank: i64,
    #[arg(long, value_enum, default_value = "max-length")]
    padding: Padding,
    /// Input lengths are drawn uniformly from [min_input, max_input] tokens.
    #[arg(long, default_value_t = 32)]
    min_input: i64,
    #[arg(long, default_value_t = 128)]
    max_input: i64,
    /// Target tokens per example (labels) in training.
    #[arg(long, default_value_t = 3)]
    target_len: i64,
    /// Timed training steps per variant (after the warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first (kernel selection, allocator growth).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed greedy-decoding batches per variant (0: skip inference).
    #[arg(long, default_value_t = 3)]
    inference_batches: usize,
    /// New tokens per greedy decode (the official generation_max_length 20 minus the start token).
    #[arg(long, default_value_t = 19)]
    decode_tokens: i64,
    #[arg(long, value_enum, default_value = "fp32")]
    precision: Precision,
    /// cpu | cuda | cuda:N | auto
    #[arg(long, default_value = "auto")]
    device: String,
    /// Also write the rows here (CSV).
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// One measured variant.
struct Row {
    shape: String,
    variant: String,
    params: i64,
    step_ms: Stats,
    examples_per_s: f64,
    peak: Option<PeakMemory>,
    inference_samples_per_s: Option<f64>,
}

/// Median and spread of repeated timings.
#[derive(Clone, Copy)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// Of at least one value.
    pub fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Stats {
            median,
            min: values[0],
            max: values[n - 1],
        }
    }
}

pub fn run(args: &EfficiencyArgs) -> Result<()> {
    ensure!(
        0 < args.min_input && args.min_input <= args.max_input && args.max_input <= args.max_len,
        "need 0 < --min-input ≤ --max-input ≤ --max-len, got {} ≤ {} ≤ {}",
        args.min_input,
        args.max_input,
        args.max_len
    );
    ensure!(args.steps > 0, "--steps must be at least 1");
    ensure!(
        args.batch_size > 0 && args.target_len > 0,
        "--batch-size and --target-len must be positive"
    );
    let device = dept_train::device::resolve_device(&args.device).map_err(anyhow::Error::msg)?;
    let configs = args
        .shapes
        .iter()
        .map(|name| t5_shape(name).map(|c| (name.clone(), c)))
        .collect::<Result<Vec<_>>>()?;

    println!(
        "device {device:?}, {} precision, batch {}, s = {}, inputs {}–{} tokens padded to {}, {} warm-up + {} timed \
         steps, {} decode batches × {} tokens",
        match args.precision {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16 backbone",
        },
        args.batch_size,
        args.max_len,
        args.min_input,
        args.max_input,
        match args.padding {
            Padding::MaxLength => "s",
            Padding::Longest => "the longest of each batch",
        },
        args.warmup,
        args.steps,
        args.inference_batches,
        args.decode_tokens
    );
    let mut rows = Vec::new();
    for (name, config) in &configs {
        tch::manual_seed(0);
        let mut backbone = guarded(|| Ok(T5::new_random(config, device)?))
            .with_context(|| format!("building a random {name} on {device:?}"))?;
        if args.precision == Precision::Bf16 {
            backbone.set_float_kind(Kind::BFloat16)?;
        }
        let d = backbone.hidden_size();
        let batches = draw_batches(args, backbone.vocab_size())?;
        let variants = [
            (format!("PT l={}", args.pt_len), args.pt_len, 0),
            (
                format!("DePT m={} r={}", args.prompt_len, args.rank),
                args.prompt_len,
                args.rank,
            ),
        ];
        for (variant, m, r) in variants {
            let config = DeptConfig::new(m, r, args.max_len, d)?.with_init(&PromptInit::Random);
            let row = measure(args, (name, variant), &backbone, config, &batches, device)?;
            print_row(&row);
            rows.push(row);
        }
        let (pt, dept) = (&rows[rows.len() - 2], &rows[rows.len() - 1]);
        print_ratio(name, pt, dept);
    }
    if device == Device::Cpu {
        println!(
            "memory on CPU is the process's peak resident set since it started (it cannot be reset between \
             variants); on CUDA it is the caching allocator's peak of allocated bytes per variant"
        );
    }
    if let Some(path) = &args.csv {
        write_csv(path, &rows, device)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Examples drawn once per batch, so that every variant sees the same batches.
fn draw_batches(args: &EfficiencyArgs, vocab: i64) -> Result<Vec<Vec<Encoded>>> {
    let count = args.warmup + args.steps.max(args.inference_batches);
    let span = (args.min_input as usize, args.max_input as usize);
    (0..count)
        .map(|_| {
            random_examples(
                args.batch_size as usize,
                span,
                args.target_len as usize,
                vocab,
            )
        })
        .collect()
}

/// One variant on one shape; `shape` and `variant` name the row.
fn measure(
    args: &EfficiencyArgs,
    (shape, variant): (&str, String),
    backbone: &T5,
    config: DeptConfig,
    batches: &[Vec<Encoded>],
    device: Device,
) -> Result<Row> {
    let trainable = config.num_params();
    let adapter = DecomposedPrompt::new(config, None, device)?;
    let params: Vec<Tensor> = adapter.parameters();
    let mut optimizer = AdamW::new(adapter.param_groups(), AdamWConfig::default());
    let model = PromptedModel::new(backbone, &adapter);
    let padding = match args.padding {
        Padding::MaxLength => config::Padding::MaxLength,
        Padding::Longest => config::Padding::Longest,
    };
    let on_device: Vec<Batch> = batches
        .iter()
        .map(|examples| {
            let items: Vec<&Encoded> = examples.iter().collect();
            Batch::new(&items, padding, args.max_len as usize, 0, device)
        })
        .collect();

    reset_peak(device);
    let mut step_seconds = Vec::with_capacity(args.steps);
    for (i, batch) in on_device
        .chunks(1)
        .take(args.warmup + args.steps)
        .enumerate()
    {
        let start = Instant::now();
        // The step `dept train` takes (dropout on), with its default rates.
        optimizer.zero_grad();
        step::forward_backward(model, batch, true)?;
        step::update(&mut optimizer, &params, 1.0, 0.3, 1e-4);
        synchronize(device);
        if i >= args.warmup {
            step_seconds.push(start.elapsed().as_secs_f64());
        }
    }
    let peak = peak_memory(device);

    let inference_samples_per_s = if args.inference_batches == 0 {
        None
    } else {
        let mut seconds = 0.0;
        for batch in on_device
            .iter()
            .skip(args.warmup)
            .take(args.inference_batches)
        {
            let start = Instant::now();
            guarded(|| {
                let generated =
                    model.generate(&batch.input_ids, &batch.attention_mask, args.decode_tokens)?;
                synchronize(device);
                drop(generated);
                Ok(())
            })?;
            seconds += start.elapsed().as_secs_f64();
        }
        Some((args.inference_batches as i64 * args.batch_size) as f64 / seconds)
    };
    let step_ms = Stats::of(step_seconds.iter().map(|s| s * 1e3).collect());
    Ok(Row {
        shape: shape.to_string(),
        variant,
        params: trainable,
        examples_per_s: args.batch_size as f64 / (step_ms.median / 1e3),
        step_ms,
        peak,
        inference_samples_per_s,
    })
}

fn synchronize(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn print_row(row: &Row) {
    println!(
        "{:<9} {:<16} {:>7} params  step {:>8.1} ms [{:.1}–{:.1}]  {:>7.1} examples/s  peak {}  inference {}",
        row.shape,
        row.variant,
        row.params,
        row.step_ms.median,
        row.step_ms.min,
        row.step_ms.max,
        row.examples_per_s,
        row.peak
            .map_or_else(|| "n/a".to_string(), |p| p.to_string()),
        row.inference_samples_per_s
            .map_or_else(|| "skipped".to_string(), |v| format!("{v:.1} samples/s")),
    );
}

fn print_ratio(shape: &str, pt: &Row, dept: &Row) {
    let memory = match (pt.peak, dept.peak) {
        (Some(a), Some(b)) if a.bytes > 0 => format!("{:.2}x", b.bytes as f64 / a.bytes as f64),
        _ => "n/a".into(),
    };
    let inference = match (pt.inference_samples_per_s, dept.inference_samples_per_s) {
        (Some(a), Some(b)) => format!("{:.2}x", b / a),
        _ => "n/a".into(),
    };
    println!(
        "{shape:<9} DePT ÷ PT: step time {:.2}x, peak memory {memory}, inference samples/s {inference}",
        dept.step_ms.median / pt.step_ms.median
    );
}

fn write_csv(path: &std::path::Path, rows: &[Row], device: Device) -> Result<()> {
    let mut text = String::from(
        "shape,variant,params,device,step_ms_median,step_ms_min,step_ms_max,examples_per_s,peak_memory_mib,\
         peak_memory_kind,inference_samples_per_s\n",
    );
    for row in rows {
        text.push_str(&format!(
            "{},{},{},{device:?},{:.3},{:.3},{:.3},{:.3},{},{},{}\n",
            row.shape,
            row.variant,
            row.params,
            row.step_ms.median,
            row.step_ms.min,
            row.step_ms.max,
            row.examples_per_s,
            row.peak
                .map(|p| format!("{:.1}", p.mib()))
                .unwrap_or_default(),
            row.peak.map(|p| p.kind.as_str()).unwrap_or_default(),
            row.inference_samples_per_s
                .map(|v| format!("{v:.3}"))
                .unwrap_or_default(),
        ));
    }
    dept_core::atomic::write_atomically(path, |tmp| std::fs::write(tmp, &text))
        .with_context(|| format!("writing {}", path.display()))
}
