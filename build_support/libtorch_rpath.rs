//! Shared by the build scripts of every crate whose binaries or tests link libtorch.
//!
//! torch-sys reports the libtorch lib folder it linked against (`DEP_TCH_LIBTORCH_LIB`, visible to crates that
//! depend on torch-sys directly). Two things are added to the link of this crate's binaries and tests (doctests
//! too: cargo hands a build script's link arguments to rustdoc, so doctests find libtorch without `LD_LIBRARY_PATH`):
//!
//! - an rpath to that folder's canonical path, so that `dept`, the tests and the examples run with an empty
//!   environment (no `LD_LIBRARY_PATH`). The path is canonicalised because `LIBTORCH` usually points at the
//!   checkout's `.libtorch` link, which `cargo xtask setup` may re-point later.
//! - `libtorch_cuda` and `libc10_cuda`, forced in with `--no-as-needed` when the libtorch has them. No Rust code
//!   calls into them directly, so the linker's default `--as-needed` drops them, and libtorch then registers no
//!   CUDA backend at run time: the binary would see no GPU. `cargo xtask test` checks that they stay needed.

use std::path::Path;

pub fn emit() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not report its libtorch folder; binaries will need LD_LIBRARY_PATH"
        );
        return;
    };
    let lib_dir = Path::new(&lib_dir);
    let probe = lib_dir.join(if cfg!(target_os = "macos") {
        "libtorch_cpu.dylib"
    } else {
        "libtorch_cpu.so"
    });
    let real_dir = probe
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| lib_dir.to_path_buf());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", real_dir.display());

    if cfg!(target_os = "linux") {
        let cuda_libs: Vec<&str> = ["torch_cuda", "c10_cuda"]
            .into_iter()
            .filter(|name| real_dir.join(format!("lib{name}.so")).exists())
            .collect();
        if !cuda_libs.is_empty() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            for name in cuda_libs {
                println!("cargo:rustc-link-arg=-l{name}");
            }
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
}
