//! What a user checks first when a run is slow or does not see the GPU: the libtorch this process loaded (not the
//! one it was built against), the CUDA devices it sees with their memory, and the CPU threads it uses.

use std::path::{Path, PathBuf};

use tch::Cuda;

/// One CUDA device as the driver names it, with its memory in bytes when libtorch can tell.
pub struct CudaDevice {
    pub index: usize,
    pub name: String,
    /// (free, total) bytes.
    pub memory: Option<(u64, u64)>,
}

/// The environment `dept env` prints.
pub struct Environment {
    /// The folder holding the loaded `libtorch_cpu.so`.
    pub libtorch_dir: Option<PathBuf>,
    /// From the libtorch folder's `build-version` or `version.py`.
    pub libtorch_version: Option<String>,
    pub cuda_available: bool,
    pub cuda_devices: Vec<CudaDevice>,
    pub cudnn_available: bool,
    pub cpu_threads: i32,
}

impl Environment {
    /// Looks at this process (libtorch is loaded by the call if it was not yet).
    pub fn probe() -> Self {
        let libtorch_dir = loaded_libtorch_dir();
        let libtorch_version = libtorch_dir.as_deref().and_then(libtorch_version);
        let count = Cuda::device_count();
        let names = if count > 0 {
            cuda_driver::device_names()
        } else {
            Vec::new()
        };
        let cuda_devices = (0..count.max(0) as usize)
            .map(|index| CudaDevice {
                index,
                name: names
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| "(name unavailable)".to_string()),
                memory: crate::memory::cuda_memory_info(tch::Device::Cuda(index)),
            })
            .collect();
        let cuda_available = Cuda::is_available();
        Environment {
            libtorch_dir,
            libtorch_version,
            cuda_available,
            cuda_devices,
            cudnn_available: cuda_available && Cuda::cudnn_is_available(),
            cpu_threads: tch::get_num_threads(),
        }
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0 * 1024.0);
        let version = self.libtorch_version.as_deref().unwrap_or("unknown");
        let dir = (self.libtorch_dir.as_deref())
            .map_or_else(|| "not found".to_string(), |d| d.display().to_string());
        writeln!(f, "libtorch        {version}")?;
        writeln!(f, "libtorch path   {dir}")?;
        writeln!(f, "cuda available  {}", self.cuda_available)?;
        writeln!(f, "cuda devices    {}", self.cuda_devices.len())?;
        for device in &self.cuda_devices {
            let memory = device.memory.map_or_else(
                || "memory unknown".to_string(),
                |(free, total)| format!("{:.1} GiB, {:.1} GiB free", gib(total), gib(free)),
            );
            writeln!(
                f,
                "  cuda:{}        {}  ({memory})",
                device.index, device.name
            )?;
        }
        if self.cuda_available {
            writeln!(f, "cudnn           {}", self.cudnn_available)?;
        }
        writeln!(f, "cpu threads     {}", self.cpu_threads)
    }
}

/// The folder of the libtorch_cpu library this process actually loaded (not the one it was built against).
fn loaded_libtorch_dir() -> Option<PathBuf> {
    // Touch libtorch so that it is certainly mapped before we look.
    let _ = tch::get_num_threads();
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libtorch_cpu.so"))
        .and_then(|path| Path::new(path).parent().map(Path::to_path_buf))
}

/// The version of a libtorch folder: `build-version` in libtorch archives, `version.py` in PyPI wheels.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(v) = std::fs::read_to_string(root.join("build-version")) {
        return Some(v.trim().to_string());
    }
    let py = std::fs::read_to_string(root.join("version.py")).ok()?;
    py.lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .map(|rest| {
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches('\'')
                .trim_matches('"')
                .to_string()
        })
}

/// Device names from the CUDA driver API; tch has no call for them. Empty when no driver is present.
mod cuda_driver {
    use std::ffi::{c_char, c_int, c_void, CStr};

    type CuInit = unsafe extern "C" fn(flags: u32) -> c_int;
    type CuDeviceGetCount = unsafe extern "C" fn(count: *mut c_int) -> c_int;
    type CuDeviceGet = unsafe extern "C" fn(device: *mut c_int, ordinal: c_int) -> c_int;
    type CuDeviceGetName =
        unsafe extern "C" fn(name: *mut c_char, len: c_int, device: c_int) -> c_int;

    pub fn device_names() -> Vec<String> {
        // SAFETY: dlopen/dlsym on the driver library with the documented C signatures of the CUDA driver API;
        // the name buffer is larger than the length we pass, and the library handle is never closed.
        unsafe {
            let handle = libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if handle.is_null() {
                return Vec::new();
            }
            let sym = |name: &CStr| -> *mut c_void { libc::dlsym(handle, name.as_ptr()) };
            let (init, count, get, get_name) = (
                sym(c"cuInit"),
                sym(c"cuDeviceGetCount"),
                sym(c"cuDeviceGet"),
                sym(c"cuDeviceGetName"),
            );
            if init.is_null() || count.is_null() || get.is_null() || get_name.is_null() {
                return Vec::new();
            }
            let init: CuInit = std::mem::transmute(init);
            let count: CuDeviceGetCount = std::mem::transmute(count);
            let get: CuDeviceGet = std::mem::transmute(get);
            let get_name: CuDeviceGetName = std::mem::transmute(get_name);
            let mut n: c_int = 0;
            if init(0) != 0 || count(&mut n) != 0 {
                return Vec::new();
            }
            (0..n)
                .map(|ordinal| {
                    let mut device: c_int = 0;
                    let mut buf = [0 as c_char; 256];
                    if get(&mut device, ordinal) != 0
                        || get_name(buf.as_mut_ptr(), 255, device) != 0
                    {
                        return "(name unavailable)".to_string();
                    }
                    CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
                })
                .collect()
        }
    }
}
