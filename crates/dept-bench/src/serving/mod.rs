//! `dept bench serve`: serving throughput and latency of many adapters on one backbone, side by side in one run.
//!
//! On a random-weight T5 shape (t5-small by default) with N DePT adapters (m = 60, r = 30, s = 256, random
//! values), a fixed workload of requests spread uniformly over the adapters (inputs of 24–128 tokens; answers of
//! label length, 2 tokens, or MRQA length, 16) runs through
//!
//! - (a) dept's engine with continuous batching over every adapter,
//! - (b) the same engine with per-adapter batches (what HF PEFT allows: one adapter per batch, run to its end),
//! - (c) the same engine one request at a time,
//! - (d) transformers' `generate` serving one adapter per batch (`bench_serve.py`, the same model files and
//!   adapters, the same threads), run after dept's phases, never beside them.
//!
//! Every phase is a closed loop of C clients (each sends its next request when the previous is answered). (d)
//! answers the same tokens as (a), request by request, or the bench stops: the comparison is of the same work.
//! For (a) with label answers the bench also measures latency under an open-loop load at half of (a)'s closed-loop
//! throughput (Poisson arrivals), where p99 should stay under twice p50.
//!
//! Output: a table, `serve.csv` and `serve.jsonl` (one row per phase), `serve.svg` (throughput and p99 latency
//! against the number of adapters, one line per policy). `--memory N` also loads N small adapters into an engine
//! and reports the resident memory they take beyond their tensors, measured in a fresh process of its own: memory
//! the phases freed would otherwise be reused by the loads and hide their cost.

mod report;
pub(crate) mod workload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use dept_serve::engine::{self, EngineHandle, Generated, Generation};
use dept_serve::metrics::Metrics;
use dept_serve::{EngineOptions, Policy, ServeError};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::error::{BenchError, Result};
use crate::scratch::Scratch;
pub use report::Phase;
use workload::{Request, Setup};

const SCRIPT: &str = include_str!("../bench_serve.py");

#[derive(Args, Debug, Clone)]
pub struct ServeBenchArgs {
    /// Model: a random-weight T5 shape (t5-small, t5-base) or `tiny` (a quick check of the bench itself).
    #[arg(long, default_value = "t5-small")]
    shape: String,
    /// Numbers of distinct adapters the requests are spread over.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    adapters: Vec<usize>,
    /// Concurrent clients (closed loop).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Requests per phase.
    #[arg(long, default_value_t = 96)]
    requests: usize,
    /// Answer lengths: label (2 new tokens), mrqa (16).
    #[arg(long, value_delimiter = ',', default_value = "label,mrqa")]
    outputs: Vec<String>,
    /// Rows decoded together at most (all policies and the Python side).
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    /// CPU threads for both sides (default: libtorch's choice, passed to PyTorch too).
    #[arg(long)]
    threads: Option<i32>,
    /// The python running transformers (default: DEPT_BENCH_PYTHON, else the bench venv).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Skip (d), the Python side.
    #[arg(long)]
    no_python: bool,
    /// Skip the open-loop latency measurement.
    #[arg(long)]
    no_open_loop: bool,
    /// Also load this many small adapters (m = 8, r = 4, s = 64) and report their memory beyond their tensors.
    #[arg(long, default_value_t = 0)]
    memory: usize,
    /// Only the `--memory` figure, no phases (what `--memory` runs in a fresh process of its own).
    #[arg(long, requires = "memory")]
    memory_only: bool,
    /// Measure nothing: print the table and ratios of this earlier run's serve.jsonl and redraw its files in --out.
    #[arg(long, value_name = "SERVE_JSONL")]
    replot: Option<PathBuf>,
    /// Folder for serve.csv, serve.jsonl and serve.svg.
    #[arg(long, default_value = "bench-serve")]
    out: PathBuf,
}

pub fn run(args: &ServeBenchArgs) -> Result<()> {
    if let Some(earlier) = &args.replot {
        let phases = report::read(earlier)?;
        report::print(&phases);
        return report::write(&args.out, &phases);
    }
    if args.concurrency == 0
        || args.requests == 0
        || args.max_batch == 0
        || args.adapters.contains(&0)
    {
        return Err(BenchError::Invalid(
            "--concurrency, --requests, --max-batch and every --adapters count must be at least 1"
                .into(),
        ));
    }
    let outputs = args
        .outputs
        .iter()
        .map(|o| workload::answer_tokens(o))
        .collect::<Result<Vec<_>>>()?;
    if let Some(threads) = args.threads {
        tch::set_num_threads(threads);
    }
    let python = if args.no_python {
        None
    } else {
        Some(crate::python_side::python(args.python.as_deref())?)
    };
    if args.memory_only {
        let scratch = Scratch::create("bench-serve-memory")?;
        let setup = Setup::write(scratch.path(), &args.shape, 0)?;
        println!(
            "{}",
            workload::memory_of_adapters(&setup, scratch.path(), args.memory)?
        );
        return Ok(());
    }
    let scratch = Scratch::create("bench-serve")?;
    let most = args.adapters.iter().copied().max().unwrap_or(1);
    let setup = Setup::write(scratch.path(), &args.shape, most)?;
    let script = scratch.join("bench_serve.py");
    std::fs::write(&script, SCRIPT).map_err(|e| BenchError::io("writing", &script, e))?;
    eprintln!(
        "bench serve: {} (d = {}), {} requests per phase, {} clients, batches of at most {}, {} threads",
        args.shape,
        setup.d,
        args.requests,
        args.concurrency,
        args.max_batch,
        tch::get_num_threads()
    );
    let mut phases = Vec::new();
    for &(output, new_tokens) in &outputs {
        for &n in &args.adapters {
            let requests = workload::requests(&setup, n, args.requests, new_tokens);
            let folder = setup.adapter_folder(scratch.path(), n)?;
            let mut continuous = None;
            for (policy, label) in [
                (Policy::Continuous, "a: continuous, mixed"),
                (Policy::PerAdapter, "b: per-adapter batches"),
                (Policy::OneAtATime, "c: one at a time"),
            ] {
                let measured = closed_loop(&setup, &folder, &requests, policy, args)?;
                let phase = Phase::new(label, &args.shape, output, n, args.concurrency, &measured);
                eprintln!("{}", phase.line());
                phases.push(phase);
                if policy == Policy::Continuous {
                    continuous = Some(measured);
                }
            }
            let Some(continuous) = continuous else {
                continue;
            };
            if let Some(python) = &python {
                let measured = python_side(
                    python,
                    &script,
                    &setup,
                    &folder,
                    &requests,
                    args,
                    scratch.path(),
                )?;
                check_same_tokens(&continuous, &measured, n, output)?;
                let phase = Phase::new(
                    "d: transformers generate",
                    &args.shape,
                    output,
                    n,
                    args.concurrency,
                    &measured,
                );
                eprintln!("{}", phase.line());
                phases.push(phase);
            }
            if output == "label" && n == 100.min(most) && !args.no_open_loop {
                let rate = 0.5 * continuous.requests_per_s();
                let measured = open_loop(&setup, &folder, &requests, rate, args)?;
                let label = format!("a: open loop at {rate:.1} req/s (half of closed-loop)");
                let phase = Phase::new(&label, &args.shape, output, n, 0, &measured);
                eprintln!("{}", phase.line());
                phases.push(phase);
            }
        }
    }
    report::print(&phases);
    report::write(&args.out, &phases)?;
    if args.memory > 0 {
        println!("{}", memory_in_fresh_process()?);
    }
    Ok(())
}

/// Runs this same command again with `--memory-only` and returns the figure it prints: a fresh process has no
/// freed memory of earlier phases for the loads to reuse.
fn memory_in_fresh_process() -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| BenchError::Invalid(format!("finding this program: {e}")))?;
    let output = Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .arg("--memory-only")
        .output()
        .map_err(|e| BenchError::io("running", &exe, e))?;
    if !output.status.success() {
        return Err(BenchError::Invalid(format!(
            "the memory measurement ({} ... --memory-only) failed ({}): {}",
            exe.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|l| l.starts_with("memory: "))
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Invalid("the memory measurement printed no figure".into()))
}

/// What one phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub seconds: f64,
    /// Per request, in workload order: its latency (ms) and its tokens.
    pub latencies_ms: Vec<f64>,
    pub tokens: Vec<Vec<i64>>,
}

impl Measured {
    pub fn requests_per_s(&self) -> f64 {
        self.tokens.len() as f64 / self.seconds
    }

    pub fn tokens_per_s(&self) -> f64 {
        self.tokens.iter().map(Vec::len).sum::<usize>() as f64 / self.seconds
    }
}

fn start_engine(
    setup: &Setup,
    folder: &Path,
    policy: Policy,
    args: &ServeBenchArgs,
) -> Result<EngineHandle> {
    let model = setup.model.clone();
    let initial = dept_serve::adapters::discover(folder).map_err(serve_error)?;
    let options = EngineOptions {
        policy,
        max_batch_rows: args.max_batch,
        queue_capacity: args.requests + args.concurrency + 16,
        default_max_input: 512,
    };
    let (engine, _thread) = engine::start(
        move || {
            dept_models::load_backbone(&model, tch::Device::Cpu)
                .map_err(|e| ServeError::Startup(e.to_string()))
        },
        setup.model.display().to_string(),
        initial,
        options,
        Arc::new(Metrics::new()),
    )
    .map_err(serve_error)?;
    Ok(engine)
}

fn serve_error(error: ServeError) -> BenchError {
    BenchError::Invalid(format!("the serving engine: {error}"))
}

fn ask(engine: &EngineHandle, request: &Request) -> Result<Generated> {
    let (reply, answer) = oneshot::channel();
    engine
        .submit(Generation {
            adapter: request.adapter.clone(),
            input_ids: request.input_ids.clone(),
            max_tokens: request.max_tokens,
            reply,
        })
        .map_err(serve_error)?;
    answer
        .blocking_recv()
        .map_err(|_| BenchError::Invalid("the serving engine dropped a request".into()))?
        .map_err(serve_error)
}

/// C client threads, each sending the next unsent request when its previous one is answered.
fn closed_loop(
    setup: &Setup,
    folder: &Path,
    requests: &[Request],
    policy: Policy,
    args: &ServeBenchArgs,
) -> Result<Measured> {
    let engine = start_engine(setup, folder, policy, args)?;
    // Warm-up, not timed: one request per client slot, so that libtorch's first-call costs are paid.
    for request in requests
        .iter()
        .take(args.max_batch.min(requests.len()).min(4))
    {
        ask(&engine, request)?;
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Answer>> = Mutex::new(vec![None; requests.len()]);
    let failure: Mutex<Option<BenchError>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.concurrency.min(requests.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= requests.len() {
                    return;
                }
                let sent = Instant::now();
                match ask(&engine, &requests[i]) {
                    Ok(answer) => {
                        let ms = sent.elapsed().as_secs_f64() * 1e3;
                        lock(&results)[i] = Some((ms, answer.tokens));
                    }
                    Err(error) => {
                        *lock(&failure) = Some(error);
                        return;
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = lock(&failure).take() {
        return Err(error);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    collect(seconds, results)
}

/// Requests arriving at `rate` per second (exponential gaps from a fixed seed), each answered on its own.
fn open_loop(
    setup: &Setup,
    folder: &Path,
    requests: &[Request],
    rate: f64,
    args: &ServeBenchArgs,
) -> Result<Measured> {
    let engine = start_engine(setup, folder, Policy::Continuous, args)?;
    ask(&engine, &requests[0])?;
    let arrivals = workload::poisson_arrivals(requests.len(), rate);
    let results: Mutex<Vec<Answer>> = Mutex::new(vec![None; requests.len()]);
    let failure: Mutex<Option<BenchError>> = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (i, at) in arrivals.iter().enumerate() {
            let (engine, results, failure) = (&engine, &results, &failure);
            scope.spawn(move || {
                let due = started + Duration::from_secs_f64(*at);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let sent = Instant::now();
                match ask(engine, &requests[i]) {
                    Ok(answer) => {
                        lock(results)[i] = Some((sent.elapsed().as_secs_f64() * 1e3, answer.tokens))
                    }
                    Err(error) => *lock(failure) = Some(error),
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = lock(&failure).take() {
        return Err(error);
    }
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    collect(seconds, results)
}

/// A request's latency (ms) and tokens, once answered.
type Answer = Option<(f64, Vec<i64>)>;

fn collect(seconds: f64, results: Vec<Answer>) -> Result<Measured> {
    let mut measured = Measured {
        seconds,
        latencies_ms: Vec::with_capacity(results.len()),
        tokens: Vec::with_capacity(results.len()),
    };
    for (i, result) in results.into_iter().enumerate() {
        let (ms, tokens) =
            result.ok_or_else(|| BenchError::Invalid(format!("request {i} was never answered")))?;
        measured.latencies_ms.push(ms);
        measured.tokens.push(tokens);
    }
    Ok(measured)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// (d): `bench_serve.py` on the same model, adapters and workload, alone on the machine.
fn python_side(
    python: &Path,
    script: &Path,
    setup: &Setup,
    folder: &Path,
    requests: &[Request],
    args: &ServeBenchArgs,
    scratch: &Path,
) -> Result<Measured> {
    let workload = scratch.join("workload.jsonl");
    let lines: String = requests
        .iter()
        .map(|r| {
            serde_json::json!({"adapter": r.adapter, "input_ids": r.input_ids, "max_new_tokens": r.max_tokens})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&workload, lines).map_err(|e| BenchError::io("writing", &workload, e))?;
    let out = scratch.join("python.jsonl");
    let threads = args
        .threads
        .unwrap_or_else(tch::get_num_threads)
        .to_string();
    let status = Command::new(python)
        .arg(script)
        .args(["--model", &setup.model.to_string_lossy()])
        .args(["--adapters", &folder.to_string_lossy()])
        .args(["--workload", &workload.to_string_lossy()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--max-batch", &args.max_batch.to_string()])
        .args(["--threads", &threads])
        .args(["--out", &out.to_string_lossy()])
        .status()
        .map_err(|e| BenchError::Python(format!("cannot start {}: {e}", python.display())))?;
    if !status.success() {
        return Err(BenchError::Python(format!(
            "bench_serve.py failed ({status}); its error is above"
        )));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| BenchError::io("reading", &out, e))?;
    let mut results = vec![None; requests.len()];
    let mut seconds = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            BenchError::Python(format!("{}: not JSON ({e}): {line}", out.display()))
        })?;
        if let Some(summary) = value.get("summary") {
            seconds = summary["seconds"].as_f64();
            continue;
        }
        let index = value["index"].as_u64().map(|i| i as usize);
        let tokens: Option<Vec<i64>> = serde_json::from_value(value["tokens"].clone()).ok();
        match (index, tokens, value["latency_ms"].as_f64()) {
            (Some(i), Some(tokens), Some(ms)) if i < results.len() => {
                results[i] = Some((ms, tokens))
            }
            _ => {
                return Err(BenchError::Python(format!(
                    "{}: unexpected line {line}",
                    out.display()
                )))
            }
        }
    }
    let seconds =
        seconds.ok_or_else(|| BenchError::Python(format!("{}: no summary line", out.display())))?;
    collect(seconds, results)
}

/// (d) must answer what (a) answered, request by request.
fn check_same_tokens(ours: &Measured, theirs: &Measured, n: usize, output: &str) -> Result<()> {
    let differing: Vec<usize> = (0..ours.tokens.len())
        .filter(|&i| ours.tokens[i] != theirs.tokens[i])
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    let i = differing[0];
    Err(BenchError::Python(format!(
        "{n} adapters, {output} answers: transformers and dept decode {} of {} requests differently (request {i}: \
         {:?} against {:?}); the comparison would not be of the same work",
        differing.len(),
        ours.tokens.len(),
        theirs.tokens[i],
        ours.tokens[i]
    )))
}
