//! `dept bench efficiency`: the paper's efficiency study (§3.3, Figures 3–4, Tables 6–8) on this machine. For each
//! random-weight model shape (T5, GPT-2, LLaMA-2) (timings do not depend on the weights) and each padding, it measures the frozen backbone
//! alone (the floor), PT with `l` soft tokens and DePT at the same parameter count for each `m` (r solved from
//! `l·d = m·d + (s+d)·r`): the training step as `dept train` runs it (dropout on, backward, clipping, AdamW), its
//! peak memory, and greedy-decoding throughput, all on the same batches. Output: a table per shape and padding, a
//! CSV and two SVG figures.

mod lengths;
mod plot;
mod row;
mod shapes;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use dept_core::budget::{Budget, Rounding};
use dept_core::{DecomposedPrompt, DeptConfig, PromptInit};
use dept_models::{Backbone, PromptedModel};
use dept_train::batch::{Batch, Encoded};
use dept_train::config;
use dept_train::guard::guarded;
use dept_train::memory::{peak_memory, reset_peak};
use dept_train::optim::{AdamW, AdamWConfig};
use dept_train::step;
use tch::{Device, Kind, Tensor};

pub use lengths::{profile, LengthProfile, ProfileArgs};
pub use row::{PaddingMode, Row, Stats, Variant};

use crate::error::{ensure, Context, Result};
use crate::synthetic::examples_with_lengths;
use shapes::Shape;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PaddingArg {
    /// Every input padded to s, as the official code does.
    MaxLength,
    /// Each batch padded to its longest input.
    Longest,
    /// Both, side by side.
    Both,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Precision {
    Fp32,
    /// Frozen backbone in bf16; adapter and optimiser state in fp32.
    Bf16,
}

#[derive(Args)]
pub struct EfficiencyArgs {
    /// Random-weight model shapes to measure (repeat the flag): t5-small, t5-base, t5-large, gpt2, gpt2-medium,
    /// gpt2-large, llama-2-7b, llama-2-13b. For GPT-2 and Llama, source and target share the s tokens.
    #[arg(long = "shape", default_value = "t5-small")]
    shapes: Vec<String>,
    #[arg(long, default_value_t = 16)]
    batch_size: i64,
    /// s: inputs are cut (and, with max-length padding, padded) to this many tokens; A has s rows.
    #[arg(long, default_value_t = 256)]
    max_len: i64,
    /// l: PT's prompt length, and the parameter budget every DePT variant matches.
    #[arg(long, default_value_t = 100)]
    pt_len: i64,
    /// DePT prompt lengths m (comma-separated); each r is solved from l·d = m·d + (s+d)·r, rounded to the nearest
    /// integer where no integer solves it exactly (the params column shows the resulting count).
    #[arg(long = "m", value_delimiter = ',', default_value = "0,20,40,60,80")]
    prompt_lens: Vec<i64>,
    /// Leave out the backbone-alone floor.
    #[arg(long)]
    no_floor: bool,
    #[arg(long, value_enum, default_value = "both")]
    padding: PaddingArg,
    /// Input and target lengths follow this task's profile (built in for GLUE and SuperGLUE; see `dept bench
    /// profile`).
    #[arg(long, default_value = "rte")]
    task: String,
    /// Measure the task's profile from this data folder instead of using the built-in one.
    #[arg(long, requires = "tokenizer")]
    data_dir: Option<PathBuf>,
    /// tokenizer.json used with --data-dir.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Uniform input lengths MIN:MAX (tokens) instead of a task profile; targets get --target-len tokens.
    #[arg(long, value_parser = lengths::parse_span, conflicts_with = "data_dir")]
    uniform: Option<(usize, usize)>,
    #[arg(long, default_value_t = 3)]
    target_len: usize,
    /// Timed training steps per variant (after the warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed steps first (kernel selection, allocator growth).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed greedy-decoding batches per variant, after one untimed (0: skip inference).
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
    /// The DePT m that figure 4 sets against PT (the paper's m = 60).
    #[arg(long, default_value_t = 60)]
    headline_m: i64,
    /// Folder for efficiency.csv, figure3.svg (cost against m) and figure4.svg (cost against model size).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// One shape with its batches, shared by every variant measured on it.
struct Bench<'a> {
    args: &'a EfficiencyArgs,
    shape: &'a str,
    backbone: &'a dyn Backbone,
    device: Device,
}

/// A shape with every variant solved on its width d: PT, DePT for each m, and the floor unless left out.
type SolvedShape = (Shape, Vec<(Variant, Option<DeptConfig>)>);

/// Solves every shape's variants, draws the inputs all shapes share, then measures shape by shape: a table per
/// shape and padding as it completes, the outputs at the end.
pub fn run(args: &EfficiencyArgs) -> Result<()> {
    ensure!(args.steps > 0, "--steps must be at least 1");
    ensure!(
        args.batch_size > 0 && args.max_len > 0 && args.pt_len > 0,
        "--batch-size, --max-len and --pt-len must be positive"
    );
    let device = dept_train::device::resolve_device(&args.device)?;
    let shapes = solve_shapes(args)?;
    let paddings = paddings(args.padding);

    tch::manual_seed(0);
    let (lengths, described) = draw_lengths(args)?;
    print_setting(args, device, &described);
    // The same token ids for every shape (below the smallest vocabulary), padding and variant.
    let vocab = shapes
        .iter()
        .map(|(shape, _)| shape.vocab_size())
        .min()
        .unwrap_or(32000);
    let examples = lengths
        .chunks(args.batch_size as usize)
        .map(|chunk| examples_with_lengths(chunk, vocab))
        .collect::<Result<Vec<_>>>()?;

    let mut rows = Vec::new();
    for shape in &shapes {
        measure_shape(args, shape, paddings, &examples, device, &mut rows)?;
    }
    if device == Device::Cpu {
        println!(
            "memory on CPU: the process's peak resident set while the variant ran (peak reset, freed heap returned \
             first; the backbone's weights included); on CUDA: the caching allocator's peak of allocated bytes"
        );
    }
    if let Some(out) = &args.out {
        write_outputs(out, &rows, args.headline_m, device)?;
    }
    Ok(())
}

/// Each --shape once, in the order given, with its variants. Every variant is solved before any model is built,
/// so that a bad --m costs nothing.
fn solve_shapes(args: &EfficiencyArgs) -> Result<Vec<SolvedShape>> {
    let mut names: Vec<&String> = Vec::new();
    for name in &args.shapes {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let shape = Shape::named(name)?;
            let variants = variants(args, shape.hidden_size())?;
            Ok((shape, variants))
        })
        .collect()
}

fn paddings(padding: PaddingArg) -> &'static [PaddingMode] {
    match padding {
        PaddingArg::MaxLength => &[PaddingMode::MaxLength],
        PaddingArg::Longest => &[PaddingMode::Longest],
        PaddingArg::Both => &[PaddingMode::MaxLength, PaddingMode::Longest],
    }
}

/// The line every table is read under: device, precision, batch, s, l, the inputs and the step counts.
fn print_setting(args: &EfficiencyArgs, device: Device, described: &str) {
    println!(
        "device {device:?}, {}, batch {}, s = {}, l = {}, {described}; {} warm-up + {} timed steps, 1 + {} decode \
         batches × {} tokens",
        match args.precision {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16 backbone",
        },
        args.batch_size,
        args.max_len,
        args.pt_len,
        args.warmup,
        args.steps,
        args.inference_batches,
        args.decode_tokens
    );
}

/// One shape: its random backbone built once (seeded alike for every shape), then every variant on each padding's
/// batches, a row each (progress on stderr), and the table of all rows so far for that padding.
fn measure_shape(
    args: &EfficiencyArgs,
    (shape, variants): &SolvedShape,
    paddings: &[PaddingMode],
    examples: &[Vec<Encoded>],
    device: Device,
    rows: &mut Vec<Row>,
) -> Result<()> {
    let name = &shape.name;
    tch::manual_seed(0);
    let mut backbone = guarded(|| {
        shape
            .build(device)
            .map_err(|e| dept_train::TrainError::Run(format!("{e:#}")))
    })
    .with_context(|| format!("building a random {name} on {device:?}"))?;
    if args.precision == Precision::Bf16 {
        backbone.set_float_kind(Kind::BFloat16)?;
    }
    let bench = Bench {
        args,
        shape: name,
        backbone: backbone.as_ref(),
        device,
    };
    for &padding in paddings {
        let batches = to_batches(examples, backbone.as_ref(), padding, args.max_len);
        for (variant, config) in variants {
            let row = bench.measure(*variant, config.clone(), padding, &batches)?;
            eprintln!(
                "measured {name} {} {}: step {:.1} ms",
                padding.as_str(),
                variant.label(),
                row.step_ms.median
            );
            rows.push(row);
        }
        print_table(rows, name, padding, device);
    }
    Ok(())
}

/// (input, target) lengths for every batch, drawn once: warm-up, timed steps and decode batches.
fn draw_lengths(args: &EfficiencyArgs) -> Result<(Vec<(usize, usize)>, String)> {
    let batches = args.warmup + args.steps.max(args.inference_batches + 1);
    let n = batches * args.batch_size as usize;
    let s = args.max_len as usize;
    if let Some(span) = args.uniform {
        ensure!(
            span.1 <= s,
            "--uniform {}:{} reaches past --max-len {s}",
            span.0,
            span.1
        );
        let drawn = crate::synthetic::draw_uniform(n, span, args.target_len)?;
        return Ok((
            drawn,
            format!("inputs uniform in {}–{} tokens", span.0, span.1),
        ));
    }
    let profile = match (&args.data_dir, &args.tokenizer) {
        (Some(dir), Some(tokenizer)) => {
            let tokenizer = dept_models::TextTokenizer::from_file(tokenizer)?;
            LengthProfile::measure(&args.task, dir, &tokenizer, 5000)?
        }
        _ => LengthProfile::builtin(&args.task)?,
    };
    let q = &profile.input;
    let described = format!(
        "inputs follow {}'s profile ({} rows: median {:.0}, 95th percentile {:.0}, max {:.0} tokens; {:.1}% cut to s)",
        args.task,
        profile.rows,
        q[10],
        q[19],
        q[20],
        100.0 * profile.share_over(s)
    );
    Ok((profile.draw(n, s)?, described))
}

/// The floor, PT, then DePT for each m (ascending; m = l would be PT again and is skipped).
fn variants(args: &EfficiencyArgs, d: i64) -> Result<Vec<(Variant, Option<DeptConfig>)>> {
    let mut out = Vec::new();
    if !args.no_floor {
        out.push((Variant::Floor, None));
    }
    let pt = DeptConfig::new(args.pt_len, 0, args.max_len, d)?.with_init(&PromptInit::Random);
    out.push((Variant::Pt { l: args.pt_len }, Some(pt)));
    let budget = Budget::new(args.pt_len, d, args.max_len)?;
    let mut ms = args.prompt_lens.clone();
    ms.sort_unstable();
    ms.dedup();
    for m in ms.into_iter().filter(|&m| m != args.pt_len) {
        let split = budget
            .rank_for(m, Rounding::Nearest)
            .with_context(|| format!("--m {m}"))?;
        let config = DeptConfig::new(m, split.r, args.max_len, d)?.with_init(&PromptInit::Random);
        out.push((Variant::Dept { m, r: split.r }, Some(config)));
    }
    Ok(out)
}

/// Training batches and decoding batches of the same examples, laid out for the backbone: for a decoder-only
/// model source and target share the s tokens (the source is cut to leave room for the target), training rows
/// join them and decoding rows are left-padded sources.
struct Batches {
    train: Vec<Batch>,
    decode: Vec<Batch>,
}

fn to_batches(
    examples: &[Vec<Encoded>],
    backbone: &dyn Backbone,
    padding: PaddingMode,
    max_len: i64,
) -> Batches {
    let padding = match padding {
        PaddingMode::MaxLength => config::Padding::MaxLength,
        PaddingMode::Longest => config::Padding::Longest,
    };
    let architecture = backbone.architecture();
    let (pad, device, s) = (backbone.pad_token_id(), backbone.device(), max_len as usize);
    let fitted: Vec<Vec<Encoded>> = examples
        .iter()
        .map(|batch| {
            batch
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    // The source keeps what the backbone's layout leaves it (a decoder-only model's
                    // sequence holds the target too).
                    let budget = architecture.source_budget(s, e.target_ids.len());
                    e.input_ids.truncate(budget);
                    e
                })
                .collect()
        })
        .collect();
    let build = |generation: bool| {
        fitted
            .iter()
            .map(|examples| {
                let items: Vec<&Encoded> = examples.iter().collect();
                if generation {
                    Batch::for_generation(&items, architecture, padding, s, pad, device)
                } else {
                    Batch::for_training(&items, architecture, padding, s, pad, device)
                }
            })
            .collect()
    };
    Batches {
        train: build(false),
        decode: build(true),
    }
}

impl Bench<'_> {
    fn measure(
        &self,
        variant: Variant,
        config: Option<DeptConfig>,
        padding: PaddingMode,
        batches: &Batches,
    ) -> Result<Row> {
        let args = self.args;
        let params = config.as_ref().map_or(0, DeptConfig::num_params);
        let adapter = config
            .map(|c| DecomposedPrompt::new(c, None, self.device))
            .transpose()?;
        let model = adapter
            .as_ref()
            .map(|adapter| PromptedModel::new(self.backbone, adapter));
        release_freed_memory();
        reset_peak(self.device);
        // Made after the peak was reset, so that the peak counts the optimiser's state; kept to the variant's end.
        let mut optimizer = model.map(|m| {
            (
                m.adapter.parameters(),
                AdamW::new(m.adapter.param_groups(), AdamWConfig::default()),
            )
        });
        let step_ms = self.time_training(model, optimizer.as_mut(), &batches.train)?;
        let peak = peak_memory(self.device);
        let inference_ms = (args.inference_batches > 0)
            .then(|| self.time_decoding(model, &batches.decode))
            .transpose()?;
        Ok(Row {
            shape: self.shape.to_string(),
            padding,
            variant,
            params,
            examples_per_s: args.batch_size as f64 / (step_ms.median / 1e3),
            step_ms,
            peak,
            inference_samples_per_s: inference_ms
                .map(|t| args.batch_size as f64 / (t.median / 1e3)),
            inference_ms,
        })
    }

    /// The step `dept train` takes (dropout on, its default rates), or without an adapter the floor's forward and
    /// backward.
    fn time_training(
        &self,
        model: Option<PromptedModel>,
        mut optimizer: Option<&mut (Vec<Tensor>, AdamW)>,
        batches: &[Batch],
    ) -> Result<Stats> {
        let args = self.args;
        self.timed(batches, args.warmup, args.steps, |batch| {
            match (&model, &mut optimizer) {
                (Some(model), Some((params, optimizer))) => {
                    optimizer.zero_grad();
                    step::forward_backward(*model, std::slice::from_ref(batch), true)?;
                    step::update(optimizer, params, 1.0, 0.3, 1e-4);
                    Ok(())
                }
                _ => self.floor_step(batch),
            }
        })
    }

    /// Greedy decoding of --decode-tokens: one untimed batch first, then the timed ones, on the sources the
    /// training steps also saw; without an adapter, the backbone alone.
    fn time_decoding(&self, model: Option<PromptedModel>, batches: &[Batch]) -> Result<Stats> {
        let args = self.args;
        self.timed(batches, 1, args.inference_batches, |batch| {
            let generated = match &model {
                Some(model) => {
                    model.generate(&batch.input_ids, &batch.attention_mask, args.decode_tokens)?
                }
                None => tch::no_grad(|| {
                    self.backbone.generate_greedy(
                        &self.backbone.embed(&batch.input_ids),
                        &batch.attention_mask,
                        args.decode_tokens,
                    )
                })?,
            };
            drop(generated);
            Ok(())
        })
    }

    /// The floor's step: the backbone on the bare input embeddings with dropout on, and the backward pass down to
    /// those embeddings, which every input-side method (PT, DePT) has to pay for; nothing to update.
    fn floor_step(&self, batch: &Batch) -> Result<(), dept_train::TrainError> {
        let embeds = self
            .backbone
            .embed(&batch.input_ids)
            .detach()
            .set_requires_grad(true);
        let output = self
            .backbone
            .forward(&embeds, &batch.attention_mask, &batch.labels, true)?;
        output.loss.backward();
        Ok(())
    }

    /// Runs `work` on `warmup` batches untimed, then on `timed` more, each ended by a device synchronisation:
    /// median and range in milliseconds.
    fn timed(
        &self,
        batches: &[Batch],
        warmup: usize,
        timed: usize,
        mut work: impl FnMut(&Batch) -> Result<(), dept_train::TrainError>,
    ) -> Result<Stats> {
        let mut timings = Vec::with_capacity(timed);
        for (i, batch) in batches.iter().take(warmup + timed).enumerate() {
            let start = Instant::now();
            guarded(|| {
                work(batch)?;
                self.synchronize();
                Ok(())
            })?;
            if i >= warmup {
                timings.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        Ok(Stats::of(timings))
    }

    fn synchronize(&self) {
        if let Device::Cuda(i) = self.device {
            tch::Cuda::synchronize(i as i64);
        }
    }
}

/// Gives freed heap back to the system, so that the next variant's peak resident set starts from what is live.
fn release_freed_memory() {
    // SAFETY: malloc_trim only returns unused heap pages; it is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A row with its group's baselines: PT and the floor of the same shape and padding.
struct Compared<'a> {
    row: &'a Row,
    pt: Option<&'a Row>,
    floor: Option<&'a Row>,
}

impl<'a> Compared<'a> {
    fn new(row: &'a Row, rows: &'a [Row]) -> Self {
        let same = |pick: fn(&Variant) -> bool| {
            rows.iter()
                .find(|o| o.shape == row.shape && o.padding == row.padding && pick(&o.variant))
        };
        Compared {
            row,
            pt: same(|v| matches!(v, Variant::Pt { .. })),
            floor: same(|v| matches!(v, Variant::Floor)),
        }
    }

    /// `measure(row) ÷ measure(baseline)`, where both exist.
    fn ratio(&self, baseline: Option<&Row>, measure: fn(&Row) -> Option<f64>) -> Option<f64> {
        match (measure(self.row), baseline.and_then(measure)) {
            (Some(v), Some(b)) if b > 0.0 => Some(v / b),
            _ => None,
        }
    }
}

fn step_ms(row: &Row) -> Option<f64> {
    Some(row.step_ms.median)
}

fn peak_mib(row: &Row) -> Option<f64> {
    row.peak.map(|p| p.mib())
}

fn inference(row: &Row) -> Option<f64> {
    row.inference_samples_per_s
}

/// The rows of one shape and padding, with ratios to PT and to the floor.
fn print_table(rows: &[Row], shape: &str, padding: PaddingMode, device: Device) {
    println!(
        "\n{shape}, {} on {device:?}",
        match padding {
            PaddingMode::MaxLength => "inputs padded to s (official)",
            PaddingMode::Longest => "each batch padded to its longest input",
        }
    );
    println!(
        "{:<18} {:>8} {:>24} {:>9} {:>9} {:>9} {:>9} {:>6} {:>7} {:>10} {:>6} {:>7}",
        "variant",
        "params",
        "step ms median [range]",
        "train ex/s",
        "step ÷ PT",
        "÷ floor",
        "peak MiB",
        "÷ PT",
        "÷ floor",
        "infer ex/s",
        "÷ PT",
        "÷ floor"
    );
    let shown =
        |v: Option<f64>, digits: usize| v.map_or("–".to_string(), |v| format!("{v:.digits$}"));
    for row in rows
        .iter()
        .filter(|r| r.shape == shape && r.padding == padding)
    {
        let c = Compared::new(row, rows);
        println!(
            "{:<18} {:>8} {:>24} {:>9.1} {:>9} {:>9} {:>9} {:>6} {:>7} {:>10} {:>6} {:>7}",
            row.variant.label(),
            row.params,
            format!(
                "{:.1} [{:.1}–{:.1}]",
                row.step_ms.median, row.step_ms.min, row.step_ms.max
            ),
            row.examples_per_s,
            shown(c.ratio(c.pt, step_ms), 2),
            shown(c.ratio(c.floor, step_ms), 2),
            shown(peak_mib(row), 0),
            shown(c.ratio(c.pt, peak_mib), 2),
            shown(c.ratio(c.floor, peak_mib), 2),
            shown(inference(row), 1),
            shown(c.ratio(c.pt, inference), 2),
            shown(c.ratio(c.floor, inference), 2),
        );
    }
}

fn write_outputs(out: &Path, rows: &[Row], headline_m: i64, device: Device) -> Result<()> {
    crate::output::write_files(
        out,
        &[
            ("efficiency.csv", csv(rows, device)),
            ("figure3.svg", plot::figure3_svg(rows)),
            ("figure4.svg", plot::figure4_svg(rows, headline_m)),
        ],
    )?;
    println!(
        "wrote {}/efficiency.csv, figure3.svg and figure4.svg",
        out.display()
    );
    Ok(())
}

/// Every row with its ratios to PT and the floor of its shape and padding.
fn csv(rows: &[Row], device: Device) -> String {
    let mut text = String::from(
        "shape,padding,variant,m,r,params,device,step_ms_median,step_ms_min,step_ms_max,examples_per_s,\
         peak_memory_mib,peak_memory_kind,inference_ms_median,inference_ms_min,inference_ms_max,\
         inference_samples_per_s,step_vs_pt,step_vs_floor,memory_vs_pt,memory_vs_floor,inference_vs_pt,\
         inference_vs_floor\n",
    );
    let cell =
        |v: Option<f64>, digits: usize| v.map(|v| format!("{v:.digits$}")).unwrap_or_default();
    for row in rows {
        let c = Compared::new(row, rows);
        let (m, r) = match row.variant {
            Variant::Floor => (0, 0),
            Variant::Pt { l } => (l, 0),
            Variant::Dept { m, r } => (m, r),
        };
        let cells = [
            row.shape.clone(),
            row.padding.as_str().to_string(),
            row.variant.label(),
            m.to_string(),
            r.to_string(),
            row.params.to_string(),
            format!("{device:?}"),
            format!("{:.3}", row.step_ms.median),
            format!("{:.3}", row.step_ms.min),
            format!("{:.3}", row.step_ms.max),
            format!("{:.3}", row.examples_per_s),
            cell(peak_mib(row), 1),
            row.peak
                .map(|p| p.kind.as_str().to_string())
                .unwrap_or_default(),
            cell(row.inference_ms.map(|t| t.median), 3),
            cell(row.inference_ms.map(|t| t.min), 3),
            cell(row.inference_ms.map(|t| t.max), 3),
            cell(inference(row), 3),
            cell(c.ratio(c.pt, step_ms), 4),
            cell(c.ratio(c.floor, step_ms), 4),
            cell(c.ratio(c.pt, peak_mib), 4),
            cell(c.ratio(c.floor, peak_mib), 4),
            cell(c.ratio(c.pt, inference), 4),
            cell(c.ratio(c.floor, inference), 4),
        ];
        text += &(cells.join(",") + "\n");
    }
    text
}
