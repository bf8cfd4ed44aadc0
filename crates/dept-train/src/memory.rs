//! Peak memory as a user compares it with PyTorch: on CUDA the caching allocator's peak of allocated bytes (what
//! `torch.cuda.max_memory_allocated()` reports), on CPU the process's peak resident set (`VmHWM`).

use std::fmt;

use tch::Device;

/// Which peak a number is: they are not comparable with each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    /// Bytes held in tensors by libtorch's CUDA caching allocator (not counting its cache or the CUDA context).
    CudaAllocated,
    /// The whole process's peak resident memory (weights, activations, libtorch and everything else).
    ProcessRss,
}

impl MemoryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryKind::CudaAllocated => "cuda_allocated",
            MemoryKind::ProcessRss => "process_rss",
        }
    }
}

/// A peak in bytes and what it measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeakMemory {
    pub bytes: u64,
    pub kind: MemoryKind,
}

impl PeakMemory {
    pub fn mib(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0)
    }
}

impl fmt::Display for PeakMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0} MiB ({})", self.mib(), self.kind.as_str())
    }
}

/// The allocator's statistics for one CUDA device; `None` when the process has no CUDA device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaAllocatorStats {
    pub allocated_current: u64,
    pub allocated_peak: u64,
    pub reserved_peak: u64,
}

mod ffi {
    extern "C" {
        pub fn dept_device_memory_stats(
            device_index: i32,
            allocated_current: *mut i64,
            allocated_peak: *mut i64,
            reserved_peak: *mut i64,
        ) -> i32;
        pub fn dept_device_memory_reset_peak(device_index: i32) -> i32;
        pub fn dept_device_memory_info(
            device_index: i32,
            free_bytes: *mut i64,
            total_bytes: *mut i64,
        ) -> i32;
    }
}

fn cuda_index(device: Device) -> Option<i32> {
    match device {
        Device::Cuda(i) => i32::try_from(i).ok(),
        _ => None,
    }
}

pub fn cuda_allocator_stats(device: Device) -> Option<CudaAllocatorStats> {
    let index = cuda_index(device)?;
    let (mut current, mut peak, mut reserved) = (0i64, 0i64, 0i64);
    // SAFETY: the shim writes three i64 through valid pointers and catches every C++ exception.
    let status =
        unsafe { ffi::dept_device_memory_stats(index, &mut current, &mut peak, &mut reserved) };
    (status == 0).then(|| CudaAllocatorStats {
        allocated_current: current.max(0) as u64,
        allocated_peak: peak.max(0) as u64,
        reserved_peak: reserved.max(0) as u64,
    })
}

/// Free and total bytes of a CUDA device (`torch.cuda.mem_get_info`).
pub fn cuda_memory_info(device: Device) -> Option<(u64, u64)> {
    let index = cuda_index(device)?;
    let (mut free, mut total) = (0i64, 0i64);
    // SAFETY: as above.
    let status = unsafe { ffi::dept_device_memory_info(index, &mut free, &mut total) };
    (status == 0).then(|| (free.max(0) as u64, total.max(0) as u64))
}

/// Starts a new peak: on a CUDA device `torch.cuda.reset_peak_memory_stats`; on CPU the process's peak resident
/// set is set back to the current one (Linux's `/proc/self/clear_refs` with `5`; where that cannot be written the
/// CPU peak stays a peak since the process started).
pub fn reset_peak(device: Device) {
    if cuda_index(device).is_none() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
    if let Some(index) = cuda_index(device) {
        // SAFETY: the shim catches every C++ exception; a failure leaves the old peak, which the caller sees.
        unsafe {
            ffi::dept_device_memory_reset_peak(index);
        }
    }
}

/// The peak that matters for a run on `device`.
pub fn peak_memory(device: Device) -> Option<PeakMemory> {
    match device {
        Device::Cuda(_) => cuda_allocator_stats(device).map(|s| PeakMemory {
            bytes: s.allocated_peak,
            kind: MemoryKind::CudaAllocated,
        }),
        _ => process_peak_rss().map(|bytes| PeakMemory {
            bytes,
            kind: MemoryKind::ProcessRss,
        }),
    }
}

fn process_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_reports_the_process_peak() {
        let before = peak_memory(Device::Cpu).expect("VmHWM is readable on Linux");
        assert_eq!(before.kind, MemoryKind::ProcessRss);
        // Touch 64 MiB so that the peak must be at least that far above zero.
        let t = tch::Tensor::ones([16 * 1024 * 1024], (tch::Kind::Float, Device::Cpu));
        assert_eq!(
            t.sum(tch::Kind::Double).double_value(&[]),
            16.0 * 1024.0 * 1024.0
        );
        let after = peak_memory(Device::Cpu).unwrap();
        assert!(after.bytes >= before.bytes && after.bytes >= 64 * 1024 * 1024);
    }

    #[test]
    fn the_allocator_shim_answers_without_a_gpu() {
        // Linked and callable: without a CUDA device it says so instead of crashing or throwing into Rust.
        if tch::Cuda::device_count() == 0 {
            assert_eq!(cuda_allocator_stats(Device::Cuda(0)), None);
            assert_eq!(cuda_memory_info(Device::Cuda(0)), None);
            assert_eq!(peak_memory(Device::Cuda(0)), None);
            reset_peak(Device::Cuda(0));
        } else {
            let t = tch::Tensor::ones([1 << 20], (tch::Kind::Float, Device::Cuda(0)));
            let stats = cuda_allocator_stats(Device::Cuda(0)).expect("stats on a CUDA device");
            assert!(stats.allocated_peak >= 4 << 20 && stats.allocated_current >= 4 << 20);
            drop(t);
        }
    }
}
