//! `dept bench decode`: decoding speed, greedy and beam search with the key/value cache, against transformers'
//! `generate` on the same model, adapter and inputs.
//!
//! A random-weight T5 shape (t5-small by default) with one DePT adapter (m = 60, r = 30, s = 256) decodes fixed
//! batches of random inputs (24–128 tokens) for each batch size × beam count: dept's `PromptedModel::generate_with`
//! and `bench_decode.py` (transformers 4.57.1 `generate(inputs_embeds=…, num_beams=k)`, the adapter applied as the
//! official code does). Both must give the same tokens, batch by batch, or the bench stops: it compares the same work.
//!
//! Fairness: the sides never run at once. Each round runs dept's block (every configuration: its warm-up batches,
//! then the timed ones), then starts the Python process, which runs the same block and exits (its start and model
//! load are not timed); `--rounds` blocks of each alternate, so that a drift of the machine reaches both. Threads are
//! the same on both sides. The figures are medians over every timed batch of every round, with their range and
//! each round's median (two rounds that disagree by more than a few percent mean a noisy machine).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Args;
use dept_core::DecomposedPrompt;
use dept_models::beam::GenerationConfig;
use dept_models::{Backbone, PromptedModel};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::error::{BenchError, Result};
use crate::rounds::Timings;
use crate::scratch::Scratch;
use crate::serving::workload::{self, Setup};

const SCRIPT: &str = include_str!("bench_decode.py");
/// `bench_decode.py` imports the adapter embedding and `generate` call of the serving bench's Python side.
const SERVE_SCRIPT: &str = include_str!("bench_serve.py");

#[derive(Args, Debug, Clone)]
pub struct DecodeBenchArgs {
    /// Model: a random-weight T5 shape (t5-small, t5-base) or `tiny` (a quick check of the bench itself).
    #[arg(long, default_value = "t5-small")]
    shape: String,
    /// Rows per batch.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    batch_sizes: Vec<usize>,
    /// Beam counts (1: greedy).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    beams: Vec<i64>,
    /// New tokens at most (19: the official generation_max_length 20 counts T5's decoder start token).
    #[arg(long, default_value_t = 19)]
    max_new_tokens: i64,
    /// Timed batches per configuration and round.
    #[arg(long, default_value_t = 3)]
    batches: usize,
    /// Untimed batches before them, per configuration and round.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Blocks of each side, alternating (dept, transformers, dept, …).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// CPU threads for both sides (default: libtorch's choice, passed to PyTorch too).
    #[arg(long)]
    threads: Option<i32>,
    /// The python running transformers (default: DEPT_BENCH_PYTHON, else the bench venv).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Folder for decode.csv and decode.jsonl.
    #[arg(long, default_value = "bench-decode")]
    out: PathBuf,
}

/// A batch's rows: token ids (inputs), or the tokens decoded for them.
type Rows = Vec<Vec<i64>>;

/// One configuration's batches: the same on both sides.
#[derive(Serialize)]
struct Config {
    batch: usize,
    beams: i64,
    /// Warm-up batches first, then the timed ones.
    batches: Vec<Rows>,
}

#[derive(Serialize)]
struct Workload {
    max_new_tokens: i64,
    configs: Vec<Config>,
}

/// One configuration's result, as printed and written.
#[derive(Serialize)]
pub struct Row {
    pub shape: String,
    pub batch: usize,
    pub beams: i64,
    pub max_new_tokens: i64,
    pub dept_ms: f64,
    pub dept_ms_min: f64,
    pub dept_ms_max: f64,
    pub dept_round_ms: Vec<f64>,
    pub transformers_ms: f64,
    pub transformers_ms_min: f64,
    pub transformers_ms_max: f64,
    pub transformers_round_ms: Vec<f64>,
    pub dept_samples_per_s: f64,
    pub transformers_samples_per_s: f64,
    /// dept's samples/s over transformers'.
    pub speedup: f64,
}

pub fn run(args: &DecodeBenchArgs) -> Result<()> {
    if args.batch_sizes.contains(&0)
        || args.beams.iter().any(|&k| k < 1)
        || args.batches == 0
        || args.rounds == 0
        || args.max_new_tokens < 1
    {
        return Err(BenchError::Invalid(
            "--batch-sizes, --beams, --batches, --rounds and --max-new-tokens must be at least 1"
                .into(),
        ));
    }
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let python = crate::python_side::python(args.python.as_deref())?;
    let scratch = Scratch::create("bench-decode")?;
    for (name, text) in [
        ("bench_decode.py", SCRIPT),
        ("bench_serve.py", SERVE_SCRIPT),
    ] {
        let path = scratch.join(name);
        std::fs::write(&path, text).map_err(|e| BenchError::io("writing", &path, e))?;
    }
    let setup = Setup::write(scratch.path(), &args.shape, 1)?;
    let adapter_dir = setup
        .adapter_folder(scratch.path(), 1)?
        .join(workload::adapter_name(0));
    let workload = Workload {
        max_new_tokens: args.max_new_tokens,
        configs: configs(&setup, args),
    };
    let workload_path = scratch.join("workload.json");
    let text = serde_json::to_string(&workload).map_err(|e| BenchError::Invalid(e.to_string()))?;
    std::fs::write(&workload_path, text)
        .map_err(|e| BenchError::io("writing", &workload_path, e))?;

    let backbone = dept_models::load_backbone(&setup.model, Device::Cpu)?;
    let adapter = DecomposedPrompt::load(&adapter_dir, Device::Cpu)?;
    let model = PromptedModel::new(backbone.as_ref(), &adapter);
    eprintln!(
        "bench decode: {} (d = {}), batches {:?} × beams {:?}, {} new tokens at most, {} timed batches × {} rounds, \
         {} threads",
        args.shape,
        setup.d,
        args.batch_sizes,
        args.beams,
        args.max_new_tokens,
        args.batches,
        args.rounds,
        tch::get_num_threads()
    );
    let n = workload.configs.len();
    let (mut dept, mut python_side) = (vec![Timings::default(); n], vec![Timings::default(); n]);
    for round in 0..args.rounds {
        let mut dept_tokens = Vec::with_capacity(n);
        for (i, config) in workload.configs.iter().enumerate() {
            let (ms, tokens) = dept_block(&model, backbone.as_ref(), config, args)?;
            dept[i].rounds.push(ms);
            dept_tokens.push(tokens);
        }
        let out = scratch.join(&format!("transformers-{round}.jsonl"));
        let script = scratch.join("bench_decode.py");
        let lines = python_block(&python, &script, &setup, &adapter_dir, &workload_path, &out)?;
        for (i, config) in workload.configs.iter().enumerate() {
            let mine: Vec<&serde_json::Value> = lines
                .iter()
                .filter(|l| l["batch"] == config.batch && l["beams"] == config.beams)
                .collect();
            let timed: Vec<&&serde_json::Value> = mine.iter().skip(args.warmup).collect();
            python_side[i]
                .rounds
                .push(timed.iter().filter_map(|l| l["ms"].as_f64()).collect());
            for (index, (line, ours)) in timed.iter().zip(&dept_tokens[i]).enumerate() {
                let theirs: Rows = serde_json::from_value(line["tokens"].clone())
                    .map_err(|e| BenchError::Invalid(format!("{}: {e}", out.display())))?;
                if &theirs != ours {
                    return Err(BenchError::Invalid(format!(
                        "batch {index} of batch size {} with {} beams: transformers decodes {theirs:?}, dept \
                         {ours:?}; the bench compares the same work only",
                        config.batch, config.beams
                    )));
                }
            }
        }
    }
    let rows: Vec<Row> = workload
        .configs
        .iter()
        .zip(dept.iter().zip(&python_side))
        .map(|(config, (ours, theirs))| row(&args.shape, config, args.max_new_tokens, ours, theirs))
        .collect();
    print(&rows);
    write(&args.out, &rows)
}

/// Each batch size's inputs (drawn once, as many as its warm-up and timed batches need), for every beam count.
fn configs(setup: &Setup, args: &DecodeBenchArgs) -> Vec<Config> {
    let mut configs = Vec::new();
    for &batch in &args.batch_sizes {
        let count = batch * (args.warmup + args.batches);
        let inputs: Vec<Vec<i64>> =
            workload::requests(setup, 1, count, args.max_new_tokens as usize)
                .into_iter()
                .map(|r| r.input_ids)
                .collect();
        let batches: Vec<Rows> = inputs.chunks(batch).map(<[_]>::to_vec).collect();
        for &beams in &args.beams {
            configs.push(Config {
                batch,
                beams,
                batches: batches.clone(),
            });
        }
    }
    configs
}

/// dept's block for one configuration: the timed batches' milliseconds and every timed batch's tokens.
fn dept_block(
    model: &PromptedModel,
    backbone: &dyn Backbone,
    config: &Config,
    args: &DecodeBenchArgs,
) -> Result<(Vec<f64>, Vec<Rows>)> {
    let generation = GenerationConfig::beams(args.max_new_tokens, config.beams);
    let (pad, eos) = (backbone.pad_token_id(), backbone.eos_token_id());
    let mut times = Vec::new();
    let mut tokens = Vec::new();
    for (index, rows) in config.batches.iter().enumerate() {
        let (ids, mask) = right_padded(rows, pad);
        let started = Instant::now();
        let out = model.generate_with(&ids, &mask, &generation)?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if index >= args.warmup {
            times.push(ms);
            tokens.push(cut_rows(&out, eos)?);
        }
    }
    Ok((times, tokens))
}

/// `[rows, longest]` ids padded at the back with `pad`, and their mask.
fn right_padded(rows: &[Vec<i64>], pad: i64) -> (Tensor, Tensor) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(1);
    let mut ids = Vec::with_capacity(rows.len() * width);
    let mut mask = Vec::with_capacity(rows.len() * width);
    for row in rows {
        ids.extend(
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(pad, width - row.len())),
        );
        mask.extend((0..width).map(|j| i64::from(j < row.len())));
    }
    let shape = [rows.len() as i64, width as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&mask).view(shape),
    )
}

/// Each row's tokens up to and with its first end of sequence (dept pads after it; transformers too).
fn cut_rows(out: &Tensor, eos: i64) -> Result<Vec<Vec<i64>>> {
    let rows: Vec<Vec<i64>> = Vec::<Vec<i64>>::try_from(out.to_kind(Kind::Int64))
        .map_err(|e| BenchError::Invalid(format!("decoded ids: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|row| match row.iter().position(|&t| t == eos) {
            Some(at) => row[..=at].to_vec(),
            None => row,
        })
        .collect())
}

/// transformers' block: one process that loads the model, runs every configuration's batches once and exits.
fn python_block(
    python: &Path,
    script: &Path,
    setup: &Setup,
    adapter: &Path,
    workload: &Path,
    out: &Path,
) -> Result<Vec<serde_json::Value>> {
    let mut command = Command::new(python);
    command
        .arg(script)
        .arg("--model")
        .arg(&setup.model)
        .arg("--adapter")
        .arg(adapter)
        .arg("--workload")
        .arg(workload)
        .arg("--out")
        .arg(out)
        .arg("--threads")
        .arg(tch::get_num_threads().to_string());
    let output = command
        .output()
        .map_err(|e| BenchError::io("running", python, e))?;
    if !output.status.success() {
        return Err(BenchError::Invalid(format!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = std::fs::read_to_string(out).map_err(|e| BenchError::io("reading", out, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .map_err(|e| BenchError::Invalid(format!("{}: {e}", out.display())))
        })
        .collect()
}

fn row(shape: &str, config: &Config, max_new_tokens: i64, ours: &Timings, theirs: &Timings) -> Row {
    let (dept, python) = (ours.all(), theirs.all());
    let per_s = |ms: f64| config.batch as f64 / (ms / 1e3);
    Row {
        shape: shape.to_string(),
        batch: config.batch,
        beams: config.beams,
        max_new_tokens,
        dept_ms: dept.median,
        dept_ms_min: dept.min,
        dept_ms_max: dept.max,
        dept_round_ms: ours.round_medians(),
        transformers_ms: python.median,
        transformers_ms_min: python.min,
        transformers_ms_max: python.max,
        transformers_round_ms: theirs.round_medians(),
        dept_samples_per_s: per_s(dept.median),
        transformers_samples_per_s: per_s(python.median),
        speedup: python.median / dept.median,
    }
}

fn print(rows: &[Row]) {
    println!(
        "{:<9} {:>5} {:>5} {:>24} {:>24} {:>10} {:>10} {:>8}",
        "shape",
        "batch",
        "beams",
        "dept ms (range)",
        "transformers ms (range)",
        "dept /s",
        "trf /s",
        "speedup"
    );
    for r in rows {
        println!(
            "{:<9} {:>5} {:>5} {:>24} {:>24} {:>10.2} {:>10.2} {:>7.2}x",
            r.shape,
            r.batch,
            r.beams,
            format!(
                "{:.0} ({:.0}–{:.0})",
                r.dept_ms, r.dept_ms_min, r.dept_ms_max
            ),
            format!(
                "{:.0} ({:.0}–{:.0})",
                r.transformers_ms, r.transformers_ms_min, r.transformers_ms_max
            ),
            r.dept_samples_per_s,
            r.transformers_samples_per_s,
            r.speedup
        );
    }
    for r in rows {
        let rounds = |ms: &[f64]| {
            ms.iter()
                .map(|m| format!("{m:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "batch {}, {} beams: per-round medians dept [{}] ms, transformers [{}] ms",
            r.batch,
            r.beams,
            rounds(&r.dept_round_ms),
            rounds(&r.transformers_round_ms)
        );
    }
}

fn write(dir: &Path, rows: &[Row]) -> Result<()> {
    let mut csv = String::from(
        "shape,batch,beams,max_new_tokens,dept_ms,dept_ms_min,dept_ms_max,transformers_ms,transformers_ms_min,\
         transformers_ms_max,dept_samples_per_s,transformers_samples_per_s,speedup\n",
    );
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.4},{:.4},{:.4}\n",
            r.shape,
            r.batch,
            r.beams,
            r.max_new_tokens,
            r.dept_ms,
            r.dept_ms_min,
            r.dept_ms_max,
            r.transformers_ms,
            r.transformers_ms_min,
            r.transformers_ms_max,
            r.dept_samples_per_s,
            r.transformers_samples_per_s,
            r.speedup
        ));
    }
    crate::output::write_files(
        dir,
        &[
            ("decode.csv", csv),
            ("decode.jsonl", crate::output::json_lines(rows)?),
        ],
    )?;
    println!("wrote {}/decode.csv and decode.jsonl", dir.display());
    Ok(())
}
