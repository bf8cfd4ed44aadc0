//! `dept`: train, evaluate and serve Decomposed Prompt Tuning adapters.

mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dept",
    version,
    about = "Decomposed Prompt Tuning (DePT) on T5, GPT-2, Llama and CLIP-T5 backbones",
    long_about = "Decomposed Prompt Tuning (Shi & Lipani, ICLR 2024): a short soft prompt plus a low-rank update of \
                  the frozen input embeddings, trained with two learning rates.\n\n\
                  Models are Hugging Face folders (config.json, model.safetensors, tokenizer.json); adapters are \
                  PEFT-style folders (adapter_config.json, adapter_model.safetensors)."
)]
struct Cli {
    /// Only print warnings and errors.
    #[arg(short, long, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a DePT or PT adapter from a YAML experiment config (resumes an interrupted run).
    Train(commands::train::TrainArgs),
    /// Check a run folder: each checkpoint against its manifest (SHA-256 of every file, config fingerprint),
    /// and the logs for torn or broken lines; says which checkpoint a resume would use.
    Verify(commands::verify::VerifyArgs),
    /// Score a saved adapter on a split of its task.
    Eval(commands::eval::EvalArgs),
    /// Predictions of a saved adapter for new inputs, as JSON lines.
    Predict(commands::predict::PredictArgs),
    /// Read adapters saved by other code: `official` (the official DePT code's adapter_model.bin, never unpickled).
    Import {
        #[command(subcommand)]
        command: commands::official::ImportCommand,
    },
    /// Write adapters for other code: `official` (adapter_model.bin as torch.save writes it).
    Export {
        #[command(subcommand)]
        command: commands::official::ExportCommand,
    },
    /// Serve many adapters on one backbone over HTTP: mixed, continuous batching, OpenAI routes, metrics.
    Serve(commands::serve::ServeArgs),
    /// Show the libtorch in use, CUDA devices (name, memory) and CPU threads.
    Env,
    /// Check a device against the CPU on a tiny random T5: loss, adapter gradients, greedy decodes.
    Selftest(commands::selftest::SelftestArgs),
    /// Benchmarks that print ratios measured side by side in one run.
    Bench {
        #[command(subcommand)]
        command: commands::bench::BenchCommand,
    },
    /// Write a tiny random T5, GPT-2, Llama or CLIP vision folder (--arch), to exercise the pipeline on real data without
    /// pretrained weights.
    #[command(visible_alias = "tiny-t5")]
    TinyModel(commands::tiny::TinyArgs),
    /// List the DePT shapes (m, r) that match a PT budget l·d = m·d + (s+d)·r, or solve for one of them.
    Budget(commands::budget::BudgetArgs),
    /// Offline end-to-end demo: train, evaluate and use a DePT adapter on a tiny T5 and a synthetic task.
    Quickstart(commands::quickstart::QuickstartArgs),
    /// Inspect and export task data: split sizes, label balance, input lengths, formatted examples.
    Data {
        #[command(subcommand)]
        command: commands::data::DataCommand,
    },
    /// CLIP image features for vision-language tasks (VQA, COCO captions), extracted once.
    Features {
        #[command(subcommand)]
        command: commands::features::FeaturesCommand,
    },
    /// Grid sweeps of `dept train` runs: local GPUs or CPU slots, or a Slurm job array; resumable; one report.
    Sweep {
        #[command(subcommand)]
        command: commands::sweep::SweepCommand,
    },
}

fn main() -> ExitCode {
    restore_default_sigpipe();
    keep_freed_memory_for_reuse();
    let cli = Cli::parse();
    init_logging(cli.quiet);
    let result = match cli.command {
        Command::Train(args) => commands::train::run(&args, cli.quiet),
        Command::Verify(args) => commands::verify::run(&args),
        Command::Eval(args) => commands::eval::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Import { command } => commands::official::import(&command),
        Command::Export { command } => commands::official::export(&command),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Env => commands::env::run(),
        Command::Selftest(args) => commands::selftest::run(&args),
        Command::Bench { command } => commands::bench::run(&command),
        Command::TinyModel(args) => commands::tiny::run(&args),
        Command::Budget(args) => commands::budget::run(&args),
        Command::Quickstart(args) => commands::quickstart::run(&args, cli.quiet),
        Command::Data { command } => commands::data::run(command),
        Command::Sweep { command } => commands::sweep::run(&command),
        Command::Features { command } => commands::features::run(&command, cli.quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Library errors print each cause once (none quotes a cause it also exposes as a source), so the
            // chain is printed as it is: the message, then each cause after `: `.
            eprintln!("error: {err:#}");
            ExitCode::from(exit_status(&err))
        }
    }
}

/// The status of a failed command: a training error's own ([`dept_train::exit_status`]: disk full, preempted, ...)
/// wherever it sits in the chain of causes, else 1.
fn exit_status(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<dept_train::TrainError>())
        .map_or(dept_train::exit_status::FAILED, |e| e.exit_status())
}

fn init_logging(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEPT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// libtorch allocates CPU tensors with glibc's malloc, which serves every block over 32 MiB (attention scores of
/// a training batch are larger) with a fresh `mmap` and returns it on free: each step then faults its memory in
/// again, which cost a T5-small step at batch 16 about a third of its time (measured with `dept bench reference`).
/// Serving them from the heap and keeping freed memory makes glibc behave like a caching allocator: the process
/// keeps its peak memory, as PyTorch's CUDA allocator does. `DEPT_MALLOC=system` keeps glibc's defaults.
fn keep_freed_memory_for_reuse() {
    if std::env::var_os("DEPT_MALLOC").is_some_and(|v| v == "system") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; it is called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Let `dept … | head` end quietly, as Unix tools do, instead of panicking on a closed pipe.
fn restore_default_sigpipe() {
    // SAFETY: resetting a signal disposition to its default at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
