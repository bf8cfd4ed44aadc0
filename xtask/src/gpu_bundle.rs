//! `cargo xtask gpu-bundle`: everything a GPU machine with PyTorch 2.11 needs to check this project's CUDA paths,
//! in one folder of at most 60 MiB (GPU machines we borrow take at most 64 MiB of files per run).
//!
//! The folder holds a stripped release `dept` (dynamically linked: the machine's own PyTorch supplies libtorch and
//! CUDA), `run.sh` (xtask/gpu-check.sh), RTE's GLUE files, T5's tokenizer.json and the RTE config. `run.sh` finds
//! libtorch through `python3 -c 'import torch'` and prints one report.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::libtorch::TORCH_VERSION;
use crate::process::{cargo, run, Failure};

/// The most the bundle may weigh: the transfer limit is 64 MiB, and a run's own files travel beside it.
pub const MAX_BUNDLE_BYTES: u64 = 60 * 1024 * 1024;
const SCRIPT: &str = include_str!("../gpu-check.sh");

/// Builds the bundle under `<target>/gpu-bundle/dept-gpu-check`; returns its folder.
pub fn build(root: &Path, shared: &Path) -> Result<PathBuf, Failure> {
    let rte = shared.join("data").join("RTE");
    let tokenizer = shared.join("tokenizers").join("t5").join("tokenizer.json");
    for needed in [&rte.join("train.tsv"), &rte.join("dev.tsv"), &tokenizer] {
        if !needed.is_file() {
            return Err(Failure::new(format!(
                "{} is missing: the GPU check trains on real RTE rows with T5's tokenizer; pass --shared DIR \
                 (a folder with data/RTE/{{train,dev}}.tsv and tokenizers/t5/tokenizer.json)",
                needed.display()
            )));
        }
    }

    cargo(root, &["build", "--release", "--package", "dept"])?;
    let target = target_dir(root);
    let binary = target.join("release").join("dept");
    let bundle = target.join("gpu-bundle").join("dept-gpu-check");
    if bundle.exists() {
        fs::remove_dir_all(&bundle).map_err(|e| io_failure(&bundle, e))?;
    }
    for dir in ["data/RTE", "tokenizer", "configs"] {
        fs::create_dir_all(bundle.join(dir)).map_err(|e| io_failure(&bundle.join(dir), e))?;
    }

    let dept = bundle.join("dept");
    // `strip` comes with binutils, which the C++ compiler that builds torch-sys needs anyway.
    run(
        root,
        "strip",
        &[
            "--strip-all",
            "-o",
            &dept.to_string_lossy(),
            &binary.to_string_lossy(),
        ],
    )
    .map_err(|e| {
        Failure::new(format!(
            "{e}\nstripping needs binutils (`apt-get install binutils`)"
        ))
    })?;
    for file in ["train.tsv", "dev.tsv", "test.tsv"] {
        let from = rte.join(file);
        if from.is_file() {
            copy(&from, &bundle.join("data/RTE").join(file))?;
        }
    }
    copy(&tokenizer, &bundle.join("tokenizer/tokenizer.json"))?;
    copy(
        &root.join("configs/glue/rte.yaml"),
        &bundle.join("configs/rte.yaml"),
    )?;
    let script = bundle.join("run.sh");
    fs::write(&script, SCRIPT.replace("@TORCH_VERSION@", TORCH_VERSION))
        .map_err(|e| io_failure(&script, e))?;
    make_executable(&script)?;

    let size = folder_size(&bundle)?;
    eprintln!(
        "xtask: GPU bundle {} is {:.1} MiB (limit {:.0} MiB); run it there with `bash run.sh`",
        bundle.display(),
        size as f64 / 1048576.0,
        MAX_BUNDLE_BYTES as f64 / 1048576.0
    );
    if size > MAX_BUNDLE_BYTES {
        return Err(Failure::new(format!(
            "the GPU bundle is {size} bytes, over the {MAX_BUNDLE_BYTES}-byte limit"
        )));
    }
    Ok(bundle)
}

/// Tests what a machine without a GPU can: the script's own errors and its libtorch lookup through a python that
/// has torch 2.11 (the venv xtask installed, when there is one).
pub fn check_script_without_gpu(bundle: &Path, torch_dir: &Path) -> Result<(), Failure> {
    let script = bundle.join("run.sh");
    let scratch = bundle.with_file_name("script-check");
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).map_err(|e| io_failure(&scratch, e))?;

    // A python without torch.
    let no_torch = scratch.join("python-without-torch");
    fs::write(
        &no_torch,
        "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n",
    )
    .map_err(|e| io_failure(&no_torch, e))?;
    make_executable(&no_torch)?;
    expect_script(&script, &no_torch, &scratch, 2, "cannot import torch")?;

    // A python whose torch is another release.
    let fake = scratch.join("old-torch");
    fs::create_dir_all(fake.join("torch")).map_err(|e| io_failure(&fake, e))?;
    fs::write(fake.join("torch/__init__.py"), "__version__ = '2.4.1'\n")
        .map_err(|e| io_failure(&fake, e))?;
    let old_python = scratch.join("python-with-torch-2.4.1");
    fs::write(
        &old_python,
        format!(
            "#!/bin/sh\nPYTHONPATH={} exec python3 \"$@\"\n",
            fake.display()
        ),
    )
    .map_err(|e| io_failure(&old_python, e))?;
    make_executable(&old_python)?;
    expect_script(
        &script,
        &old_python,
        &scratch,
        2,
        &format!("has PyTorch 2.4.1 ({}/torch)", fake.display()),
    )?;

    // The real torch 2.11 of xtask's venv: libtorch is found and loads; with no GPU the script says so.
    let venv_python = venv_python_of(torch_dir);
    match venv_python {
        Some(python) if crate::process::output("nvidia-smi", &["-L"]).is_none() => {
            expect_script(&script, &python, &scratch, 3, "sees no CUDA device")?;
            let report = fs::read_to_string(scratch.join("out/report.md")).unwrap_or_default();
            if !report.contains(&format!("libtorch        {TORCH_VERSION}")) {
                return Err(Failure::new(format!(
                    "the script's report does not show `dept env` with libtorch {TORCH_VERSION}:\n{report}"
                )));
            }
        }
        Some(_) => eprintln!("xtask: an NVIDIA GPU is present: run the bundle's run.sh for the real check"),
        None => eprintln!(
            "xtask: LIBTORCH is your own ({}), with no python beside it: the script's libtorch lookup is not \
             exercised here",
            torch_dir.display()
        ),
    }
    eprintln!("xtask: GPU check script: errors and libtorch lookup behave");
    Ok(())
}

fn expect_script(
    script: &Path,
    python: &Path,
    scratch: &Path,
    code: i32,
    message: &str,
) -> Result<(), Failure> {
    let out = Command::new("bash")
        .arg(script)
        .env("PYTHON", python)
        .env("DEPT_CHECK_OUT", scratch.join("out"))
        .output()
        .map_err(|e| Failure::new(format!("cannot run bash {}: {e}", script.display())))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() != Some(code) || !text.contains(message) {
        return Err(Failure::new(format!(
            "GPU check script with PYTHON={}: expected exit {code} and \"{message}\", got {}:\n{text}",
            python.display(),
            out.status
        )));
    }
    Ok(())
}

/// `<venv>/lib/python3.X/site-packages/torch` -> `<venv>/bin/python3`.
fn venv_python_of(torch_dir: &Path) -> Option<PathBuf> {
    let venv = torch_dir.ancestors().nth(4)?;
    let python = venv.join("bin").join("python3");
    python.exists().then_some(python)
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"))
}

fn folder_size(dir: &Path) -> Result<u64, Failure> {
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(|e| io_failure(dir, e))? {
        let entry = entry.map_err(|e| io_failure(dir, e))?;
        let meta = entry.metadata().map_err(|e| io_failure(&entry.path(), e))?;
        total += if meta.is_dir() {
            folder_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

fn copy(from: &Path, to: &Path) -> Result<(), Failure> {
    fs::copy(from, to).map(|_| ()).map_err(|e| {
        Failure::new(format!(
            "cannot copy {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

fn make_executable(path: &Path) -> Result<(), Failure> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(|e| io_failure(path, e))?;
    }
    Ok(())
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::new(format!("{}: {e}", path.display()))
}
