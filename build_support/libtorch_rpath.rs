//! Shared by the build scripts of every crate whose binaries or tests link libtorch.
//!
//! torch-sys reports the libtorch lib folder it linked against (`DEP_TCH_LIBTORCH_LIB`, visible to crates that
//! depend on torch-sys directly). We bake its canonical path into the binaries as an rpath so that `dept`, the
//! tests and the examples run with an empty environment: no `LD_LIBRARY_PATH`. The path is canonicalised because
//! `LIBTORCH` usually points at the checkout's `.libtorch` link, which `cargo xtask setup` may re-point later.

use std::path::Path;

pub fn emit() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!(
            "cargo:warning=torch-sys did not report its libtorch folder; binaries will need LD_LIBRARY_PATH"
        );
        return;
    };
    let probe = Path::new(&lib_dir).join(if cfg!(target_os = "macos") {
        "libtorch_cpu.dylib"
    } else {
        "libtorch_cpu.so"
    });
    let real_dir = probe
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(&lib_dir).to_path_buf());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", real_dir.display());
}
