#[path = "../../build_support/libtorch_rpath.rs"]
mod libtorch_rpath;

use std::path::Path;

fn main() {
    libtorch_rpath::emit();
    compile_device_memory_shim();
}

/// `csrc/device_memory.cpp`: the caching allocator's statistics, compiled against the headers of the libtorch
/// that torch-sys links (its `include/` sits beside the `lib/` it reports).
fn compile_device_memory_shim() {
    println!("cargo:rerun-if-changed=csrc/device_memory.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys reports its libtorch folder (DEP_TCH_LIBTORCH_LIB)");
    let include = Path::new(&lib_dir)
        .parent()
        .map(|root| root.join("include"))
        .filter(|dir| dir.join("ATen").join("DeviceAccelerator.h").exists())
        .unwrap_or_else(|| {
            panic!(
                "no include/ATen/DeviceAccelerator.h beside {lib_dir}: this crate needs the headers of libtorch \
                 2.11 (`cargo xtask setup` installs it)"
            )
        });
    let cxx11_abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    cc::Build::new()
        .cpp(true)
        .file("csrc/device_memory.cpp")
        .include(&include)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={cxx11_abi}"))
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("dept_device_memory");
}
