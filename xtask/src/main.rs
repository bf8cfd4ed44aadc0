//! `cargo xtask <command>`: the project's own tasks.
//!
//! xtask links no libtorch and has no dependencies, so it builds on a machine where libtorch does not exist yet.
//! It installs libtorch (from the PyPI torch wheel matching tch 0.24) once per user, points the checkout's
//! `.libtorch` link at it (see `.cargo/config.toml`), and then runs cargo and the `dept` binary.

mod bench_venv;
mod elf;
mod fault_trials;
mod gpu_bundle;
mod kill_trials;
mod libtorch;
mod process;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use process::{cargo, Failure};

const USAGE: &str = "\
cargo xtask <command> [args]

Commands:
  setup        Install libtorch 2.11 (PyPI torch wheel, CPU+CUDA 13) once per user and link it to this checkout.
               Honours LIBTORCH if you set it yourself (a PyTorch 2.11 `torch` folder: nothing is installed);
               DEPT_HOME moves the per-user install folder.
  test [ARGS]  setup and the bench-venv, then `cargo fmt --check`, clippy with warnings denied, every workspace test
               (the serving test's `openai` client runs in the venv), 3 kill/resume trials, 1 fault trial of each
               kind, dept's training step against transformers', a check that `dept` links
               libtorch's CUDA libraries, and the GPU bundle built and its script tested (no GPU needed).
               ARGS go to `cargo test` (e.g. `cargo xtask test -- budget`).
  quickstart   setup, then `dept env`, a tiny offline DePT training demo (no downloads, no GPU needed), and a short
               `dept bench efficiency` (PT against DePT at the paper's setting on a t5-small shape).
  gpu-bundle [--shared DIR]
               Pack a stripped release `dept`, RTE rows, T5's tokenizer and run.sh (at most 60 MiB) into
               target/gpu-bundle/dept-gpu-check: copy it to a machine with an NVIDIA GPU and PyTorch 2.11 and run
               `bash run.sh` there. DIR (default ../shared, or DEPT_SHARED_DIR) holds data/ and tokenizers/.
  bench-venv   Make the python `dept bench reference` runs PyTorch in (beside the installed libtorch, seeing its
               torch, plus a pinned transformers), once per user.
  bench-reference [ARGS]
               bench-venv, a release build, then `dept bench reference ARGS`: the training step in dept against
               eager PyTorch (transformers' T5), interleaved (e.g. `-- --shape t5-base --task rte --data-dir D
               --tokenizer T`).
  kill-trials [N]
               SIGKILL a tiny training run at N (default 20) pseudo-random moments (a third of them waited into an
               evaluation, a third into a checkpoint write), resume each, and check that every run ends
               byte-identical to an uninterrupted one (`test` runs 3). Prints the counts.
  fault-trials [N]
               N (default 5) trials each of SIGTERM/SIGINT/SIGUSR1 at pseudo-random moments, a damaged last
               checkpoint, both checkpoints damaged, and a disk that fills up (DEPT_FAULT_WRITE); every resumed run
               must end byte-identical to an uninterrupted one (`test` runs 1 of each). Prints the counts.
  sweep SWEEP.yaml [ARGS]
               A release build, then `dept sweep run SWEEP.yaml ARGS`: every point of a grid as its own `dept train`
               run, on GPUs (--gpus 0,1), CPU slots (--slots N) or Slurm (--backend slurm [--wait]); resumable.
  sweep report|status SWEEP.yaml
               `dept sweep report` (mean ± std over seeds, best per task; CSV and Markdown) or `dept sweep status`.
  help         This text.

After `cargo xtask setup`, plain `cargo build`, `cargo test` and `cargo run -p dept` work with nothing exported.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => libtorch::ensure(&repo_root()).map(|_| ()),
        Some("test") => test(&args[1..]),
        Some("quickstart") => quickstart(),
        Some("bench-venv") => libtorch::ensure(&repo_root())
            .and_then(|torch| bench_venv::ensure(&torch))
            .map(|python| println!("{}", python.display())),
        Some("bench-reference") => bench_reference(&args[1..]),
        Some("kill-trials") => match args.get(1).map(|n| n.parse::<usize>()) {
            None => kill_trials::run(&repo_root(), 20),
            Some(Ok(n)) if n > 0 => kill_trials::run(&repo_root(), n),
            Some(_) => Err(Failure::new(format!(
                "kill-trials takes a positive number of trials, got {:?}",
                args[1]
            ))),
        },
        Some("fault-trials") => match args.get(1).map(|n| n.parse::<usize>()) {
            None => fault_trials::run(&repo_root(), 5),
            Some(Ok(n)) if n > 0 => fault_trials::run(&repo_root(), n),
            Some(_) => Err(Failure::new(format!(
                "fault-trials takes a positive number of trials, got {:?}",
                args[1]
            ))),
        },
        Some("gpu-bundle") => shared_dir(&args[1..])
            .and_then(|shared| gpu_bundle::build(&repo_root(), &shared))
            .map(|_| ()),
        Some("sweep") => sweep(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(Failure::new(format!(
            "unknown command `{other}`\n\n{USAGE}"
        ))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("xtask: error: {failure}");
            ExitCode::FAILURE
        }
    }
}

fn repo_root() -> PathBuf {
    // xtask/ sits directly under the workspace root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent folder")
        .to_path_buf()
}

/// `cargo xtask test`: every check CI runs, cheapest first, so that a formatting slip fails in seconds rather
/// than after the test suite.
fn test(extra: &[String]) -> Result<(), Failure> {
    let root = repo_root();
    let torch_dir = libtorch::ensure(&root)?;
    // The bench venv comes before the workspace tests: tests/serve_openai.rs drives the real `openai` client
    // with it (DEPT_REQUIRE_PYTHON makes that test fail rather than skip without it). It sits beside xtask's
    // libtorch install; a libtorch of the user's own has none.
    let python = match bench_venv::ensure(&torch_dir) {
        Ok(python) => {
            std::env::set_var("DEPT_BENCH_PYTHON", &python);
            std::env::set_var("DEPT_REQUIRE_PYTHON", "1");
            Some(python)
        }
        Err(why) if libtorch::users_own(&root) => {
            eprintln!("xtask: skipping the checks that need the bench venv: {why}");
            None
        }
        Err(why) => return Err(why),
    };
    lint_and_test_workspace(&root, extra)?;
    kill_trials::run(&root, 3)?;
    fault_trials::run(&root, 1)?;
    // dept's T5 + DePT step against transformers' on a small random model: the reference bench's own check.
    if let Some(python) = python {
        check_against_transformers(&root, &python.to_string_lossy())?;
    }
    finish_test(&root, &torch_dir)
}

/// `cargo fmt --check`, clippy with warnings denied and every workspace test (`extra` goes to `cargo test`). The
/// components are asked for first, so that a missing one says which rustup command installs it.
fn lint_and_test_workspace(root: &Path, extra: &[String]) -> Result<(), Failure> {
    process::require_cargo_component("fmt", "rustfmt")?;
    process::require_cargo_component("clippy", "clippy")?;
    cargo(root, &["fmt", "--all", "--", "--check"])?;
    cargo(
        root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut test_args = vec!["test", "--workspace"];
    test_args.extend(extra.iter().map(String::as_str));
    cargo(root, &test_args)
}

/// A debug `dept`, then the reference bench's and the features bench's own checks against transformers run by
/// `python` (the bench venv).
fn check_against_transformers(root: &Path, python: &str) -> Result<(), Failure> {
    cargo(root, &["build", "--package", "dept"])?;
    let dept = gpu_bundle::target_dir(root)
        .join("debug")
        .join("dept")
        .to_string_lossy()
        .to_string();
    check_training_step(root, &dept, python)?;
    check_clip_features(root, &dept, python)
}

/// One training step of dept's T5 + DePT against transformers' on a small random model, without dropout, so
/// the two losses must agree to 1e-5.
fn check_training_step(root: &Path, dept: &str, python: &str) -> Result<(), Failure> {
    let out = gpu_bundle::target_dir(root)
        .join("xtask-bench-reference")
        .to_string_lossy()
        .to_string();
    process::run(
        root,
        dept,
        &[
            "bench",
            "reference",
            "--python",
            python,
            "--steps",
            "1",
            "--warmup",
            "0",
            "--batch-size",
            "2",
            "--max-len",
            "48",
            "--min-input",
            "8",
            "--max-input",
            "40",
            "--rounds",
            "1",
            "--no-dropout",
            "--check-loss",
            "1e-5",
            "--out",
            &out,
        ],
    )
}

/// CLIP feature extraction against transformers (Pillow + CLIPImageProcessor + CLIPVisionModel) on a tiny tower:
/// the features bench's own check that both sides compute the same states.
fn check_clip_features(root: &Path, dept: &str, python: &str) -> Result<(), Failure> {
    let scratch = gpu_bundle::target_dir(root).join("xtask-bench-features");
    let _ = std::fs::remove_dir_all(&scratch);
    let clip = scratch.join("clip").to_string_lossy().to_string();
    process::run(
        root,
        dept,
        &[
            "tiny-model",
            "--arch",
            "clip",
            "--d-model",
            "16",
            "--out",
            &clip,
        ],
    )?;
    process::run(
        root,
        dept,
        &[
            "bench",
            "features",
            "--python",
            python,
            "--model",
            &clip,
            "--count",
            "4",
            "--batch-size",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--device",
            "cpu",
            "--check",
            "1e-5",
        ],
    )?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The checks after the tests: CUDA libraries linked, and the GPU bundle with its script.
fn finish_test(root: &Path, torch_dir: &Path) -> Result<(), Failure> {
    check_cuda_linked(
        &gpu_bundle::target_dir(root).join("debug").join("dept"),
        torch_dir,
    )?;
    let shared = shared_dir(&[])?;
    let require_shared = std::env::var_os("DEPT_REQUIRE_SHARED").is_some_and(|v| v == "1");
    if !shared.join("data").is_dir() && !require_shared {
        eprintln!(
            "xtask: skipping the GPU bundle check: {} is absent (it carries the RTE rows and T5 vocabulary the \
             bundle packs; CI has it and sets DEPT_REQUIRE_SHARED=1)",
            shared.display()
        );
        return Ok(());
    }
    let bundle = gpu_bundle::build(root, &shared)?;
    check_cuda_linked(&bundle.join("dept"), torch_dir)?;
    gpu_bundle::check_script_without_gpu(&bundle, torch_dir)
}

/// The linker drops libtorch_cuda / libc10_cuda unless forced (build_support/libtorch_rpath.rs); without them a
/// binary registers no CUDA backend and sees no GPU, so the built binary must ask for them.
fn check_cuda_linked(binary: &Path, torch_dir: &Path) -> Result<(), Failure> {
    let wanted: Vec<&str> = ["libtorch_cuda.so", "libc10_cuda.so"]
        .into_iter()
        .filter(|lib| torch_dir.join("lib").join(lib).exists())
        .collect();
    if wanted.is_empty() {
        eprintln!(
            "xtask: {} is a CPU-only libtorch: no CUDA libraries to check in {}",
            torch_dir.display(),
            binary.display()
        );
        return Ok(());
    }
    let needed = elf::needed_libraries(binary)?;
    let missing: Vec<&&str> = wanted
        .iter()
        .filter(|lib| !needed.iter().any(|n| n == *lib))
        .collect();
    if !missing.is_empty() {
        return Err(Failure::new(format!(
            "{} does not list {missing:?} as needed (it needs {needed:?}): it would see no GPU",
            binary.display()
        )));
    }
    eprintln!("xtask: {} needs {}", binary.display(), wanted.join(" and "));
    Ok(())
}

/// `--shared DIR`, else DEPT_SHARED_DIR, else the `shared` folder beside the checkout (as the tests look for it).
fn shared_dir(args: &[String]) -> Result<PathBuf, Failure> {
    match args {
        [] => Ok(std::env::var_os("DEPT_SHARED_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("..").join("shared"))),
        [flag, dir] if flag == "--shared" => Ok(PathBuf::from(dir)),
        other => Err(Failure::new(format!(
            "gpu-bundle takes only `--shared DIR`, got {other:?}"
        ))),
    }
}

fn bench_reference(extra: &[String]) -> Result<(), Failure> {
    let root = repo_root();
    let python = bench_venv::ensure(&libtorch::ensure(&root)?)?;
    cargo(&root, &["build", "--release", "--package", "dept"])?;
    let dept = gpu_bundle::target_dir(&root).join("release").join("dept");
    let python = python.to_string_lossy().to_string();
    let mut args = vec!["bench", "reference", "--python", &python];
    args.extend(extra.iter().map(String::as_str).filter(|a| *a != "--"));
    process::run(&root, &dept.to_string_lossy(), &args)
}

/// `cargo xtask sweep [run|report|status] ARGS`: a release `dept`, then `dept sweep …` (run when no verb is given).
fn sweep(args: &[String]) -> Result<(), Failure> {
    let root = repo_root();
    libtorch::ensure(&root)?;
    cargo(&root, &["build", "--release", "--package", "dept"])?;
    let dept = gpu_bundle::target_dir(&root).join("release").join("dept");
    let mut forwarded = vec!["sweep"];
    if !matches!(
        args.first().map(String::as_str),
        Some("run" | "report" | "status" | "help" | "-h" | "--help")
    ) {
        forwarded.push("run");
    }
    forwarded.extend(args.iter().map(String::as_str));
    // In the caller's folder (cargo keeps it), where the sweep file's relative paths point.
    let here = std::env::current_dir()
        .map_err(|e| Failure::new(format!("cannot read the current folder: {e}")))?;
    // xtask becomes `dept sweep` (same process): a signal or a SIGKILL sent to it reaches the sweep runner itself,
    // whose trainers stop with it, instead of leaving the runner going on as an orphan.
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new(&dept)
        .args(&forwarded)
        .current_dir(&here)
        .exec();
    Err(Failure::new(format!(
        "cannot run {}: {error}",
        dept.display()
    )))
}

fn quickstart() -> Result<(), Failure> {
    let root = repo_root();
    libtorch::ensure(&root)?;
    // Build with cargo's progress shown (the first build takes minutes), then `cargo run` rather than a path under
    // target/, so a CARGO_TARGET_DIR of the user's is honoured.
    cargo(&root, &["build", "--package", "dept"])?;
    cargo(&root, &["run", "--quiet", "--package", "dept", "--", "env"])?;
    cargo(
        &root,
        &["run", "--quiet", "--package", "dept", "--", "quickstart"],
    )?;
    // A short run of the efficiency study at the paper's setting (t5-small shape, batch 16, s = 256): real timings.
    eprintln!(
        "xtask: the efficiency study, short: backbone alone, PT (l = 100) and DePT (m = 20, 60 at the same parameter \
         count) on a random t5-small-shaped model, padded to s and to the longest input; a few minutes"
    );
    cargo(
        &root,
        &[
            "run",
            "--quiet",
            "--package",
            "dept",
            "--",
            "bench",
            "efficiency",
            "--shape",
            "t5-small",
            "--m",
            "20,60",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--inference-batches",
            "1",
            "--out",
            "runs/quickstart/efficiency",
        ],
    )?;
    println!(
        "\nquickstart summary:\n\
         - real: the training run, its checkpoints, evaluation and prediction above, and every timing and \
         memory figure (measured on this machine; 2 timed steps each, so expect noise: `dept bench efficiency \
         --help` for a full run); table in runs/quickstart/efficiency/efficiency.csv, figures in \
         runs/quickstart/efficiency/figure3.svg (cost against m) and figure4.svg (PT, DePT, backbone alone);\n\
         - not meaningful: the accuracies, because the tiny model and the t5-small-shaped one are random. For the \
         paper's numbers give a pretrained model folder (config.json, model.safetensors, tokenizer.json) and the \
         task files: `dept train configs/glue/rte.yaml --model <t5-base folder> --data-dir <data folder>`."
    );
    Ok(())
}
