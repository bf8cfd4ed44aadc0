// Memory statistics of libtorch's caching allocator for the current accelerator (CUDA here), the numbers that
// torch.cuda.max_memory_allocated() and friends report. tch exposes none of them, so this small shim is compiled
// against the libtorch headers by build.rs. It uses the device-generic at::accelerator API (libtorch >= 2.9),
// which needs no CUDA headers. Every function catches libtorch's exceptions: C++ exceptions must not unwind into
// Rust.

#include <ATen/DeviceAccelerator.h>
#include <cstdint>

namespace {
constexpr size_t kAggregate = static_cast<size_t>(c10::CachingDeviceAllocator::StatType::AGGREGATE);

bool has_accelerator() {
  return at::accelerator::getAccelerator(false).has_value() &&
         at::accelerator::deviceCount() > 0;
}
}  // namespace

extern "C" {

// 0: stats written; 1: no accelerator in this process; 2: libtorch threw.
int dept_device_memory_stats(int device_index, int64_t* allocated_current, int64_t* allocated_peak,
                             int64_t* reserved_peak) {
  try {
    if (!has_accelerator()) return 1;
    const auto stats = at::accelerator::getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
    *allocated_current = stats.allocated_bytes[kAggregate].current;
    *allocated_peak = stats.allocated_bytes[kAggregate].peak;
    *reserved_peak = stats.reserved_bytes[kAggregate].peak;
    return 0;
  } catch (...) {
    return 2;
  }
}

int dept_device_memory_reset_peak(int device_index) {
  try {
    if (!has_accelerator()) return 1;
    at::accelerator::resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
    return 0;
  } catch (...) {
    return 2;
  }
}

// Free and total bytes of the device as the driver reports them.
int dept_device_memory_info(int device_index, int64_t* free_bytes, int64_t* total_bytes) {
  try {
    if (!has_accelerator()) return 1;
    const auto info = at::accelerator::getMemoryInfo(static_cast<c10::DeviceIndex>(device_index));
    *free_bytes = static_cast<int64_t>(info.first);
    *total_bytes = static_cast<int64_t>(info.second);
    return 0;
  } catch (...) {
    return 2;
  }
}

}  // extern "C"
