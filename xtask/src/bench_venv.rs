//! The python that `dept bench reference` and `dept bench features` run PyTorch in: a venv beside the libtorch xtask
//! installed, seeing that install's torch (through a `.pth` file, so both sides run the very same libtorch 2.11)
//! plus a pinned transformers, Pillow and openai. Made once per user, atomically (a partial folder renamed when
//! complete); a venv made before Pillow or openai was needed gets it added.

use std::fs;
use std::path::{Path, PathBuf};

use crate::process::{run, Failure};

/// transformers' T5 is the reference implementation; pinned so that timings compare like with like.
pub const TRANSFORMERS: &str = "transformers==4.57.1";
/// `CLIPImageProcessor` decodes and resizes with Pillow (`dept bench features`); the version the CLIP parity goldens
/// were made with.
pub const PILLOW: &str = "pillow==13.0.0";
/// The official OpenAI client, a real client nobody here wrote, that the `dept serve` tests call the server with.
pub const OPENAI: &str = "openai==2.8.1";

/// Returns the venv's python, creating the venv first if needed.
pub fn ensure(torch_dir: &Path) -> Result<PathBuf, Failure> {
    // <install>/lib/python3.X/site-packages/torch
    let site_packages = torch_dir.parent().filter(|p| p.ends_with("site-packages"));
    let install = torch_dir.ancestors().nth(4);
    let (Some(site_packages), Some(install)) = (site_packages, install) else {
        return Err(no_venv(torch_dir));
    };
    let torch_python = install.join("bin").join("python3");
    if !torch_python.exists() {
        return Err(no_venv(torch_dir));
    }
    let home = install.parent().ok_or_else(|| no_venv(torch_dir))?;
    let venv = home.join("bench-venv");
    let python = venv.join("bin").join("python3");
    if python.exists() {
        for (module, package) in [("PIL", PILLOW), ("openai", OPENAI)] {
            if !has_module(&venv, module) {
                eprintln!("xtask: adding {package} to {}", venv.display());
                pip_install(home, &venv, &[package])?;
            }
        }
        return Ok(python);
    }
    let partial = home.join(format!("bench-venv.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&partial);
    eprintln!(
        "xtask: making {} (torch from {}, {TRANSFORMERS}); once per user",
        venv.display(),
        install.display()
    );
    run(
        home,
        &torch_python.to_string_lossy(),
        &["-m", "venv", &partial.to_string_lossy()],
    )?;
    let pth = fs::read_dir(partial.join("lib"))
        .ok()
        .and_then(|mut entries| entries.next())
        .and_then(|entry| entry.ok())
        .map(|entry| entry.path().join("site-packages").join("dept-torch.pth"))
        .ok_or_else(|| Failure::new(format!("{} has no lib/python3.X", partial.display())))?;
    fs::write(&pth, format!("{}\n", site_packages.display()))
        .map_err(|e| Failure::new(format!("{}: {e}", pth.display())))?;
    pip_install(home, &partial, &[TRANSFORMERS, PILLOW, OPENAI])?;
    fs::rename(&partial, &venv).map_err(|e| {
        Failure::new(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            venv.display()
        ))
    })?;
    Ok(python)
}

/// `python -m pip install`: the venv's `pip` script cannot be used after the rename, its `#!` line names the
/// partial folder's python.
fn pip_install(home: &Path, venv: &Path, packages: &[&str]) -> Result<(), Failure> {
    let mut args = vec![
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
    ];
    args.extend_from_slice(packages);
    run(
        home,
        &venv.join("bin").join("python3").to_string_lossy(),
        &args,
    )
}

/// True when the venv's own site-packages hold `module` (a package folder).
fn has_module(venv: &Path, module: &str) -> bool {
    fs::read_dir(venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().join("site-packages").join(module).is_dir())
}

fn no_venv(torch_dir: &Path) -> Failure {
    Failure::new(format!(
        "{} is not a libtorch that xtask installed (no venv around it): pass `--python` to `dept bench reference` \
         with a python that has torch 2.11 and {TRANSFORMERS}",
        torch_dir.display()
    ))
}
