//! libtorch failures as errors a user can act on.
//!
//! rust-bert and tch's infallible calls panic on a libtorch error (a CUDA out-of-memory among them). Work that
//! runs libtorch goes through [`guarded`], which turns such a panic into a [`TrainError`] and, for running out of
//! memory, says what to change. While a guarded call runs, the panic is not also printed by the default hook.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::TrainError;

thread_local! {
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
}

static QUIET_HOOK: Once = Once::new();

/// Runs `f`, turning a libtorch panic or error into an error; out-of-memory failures carry advice.
pub fn guarded<T>(f: impl FnOnce() -> Result<T, TrainError>) -> Result<T, TrainError> {
    install_quiet_hook();
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get() - 1));
    match result {
        Ok(Err(TrainError::Torch(e))) => Err(libtorch_failure(&e.to_string())),
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown libtorch failure".into());
            Err(libtorch_failure(&message))
        }
    }
}

/// The error for a libtorch failure message (as a panic or a `TchError` carries it).
pub fn libtorch_failure(message: &str) -> TrainError {
    let said = libtorch_said(message);
    match out_of_memory(message) {
        Some(Oom::Cuda) => TrainError::OutOfMemory(format!(
            "CUDA ran out of memory. Lower batch_size and raise grad_accum to keep the effective batch \
             (batch_size × grad_accum), use precision: bf16 (halves the backbone's memory), keep padding: longest, \
             or lower max_len / eval_batch_size. libtorch said: {said}"
        )),
        Some(Oom::Cpu) => TrainError::OutOfMemory(format!(
            "the process ran out of memory. Lower batch_size and raise grad_accum to keep the effective batch \
             (batch_size × grad_accum), keep padding: longest, or lower max_len / eval_batch_size. libtorch said: \
             {said}"
        )),
        None => TrainError::Run(format!("libtorch failed: {said}")),
    }
}

enum Oom {
    Cuda,
    Cpu,
}

fn out_of_memory(message: &str) -> Option<Oom> {
    let lower = message.to_ascii_lowercase();
    if lower.contains("cuda out of memory")
        || lower.contains("cuda error: out of memory")
        || lower.contains("cublas_status_alloc_failed")
    {
        Some(Oom::Cuda)
    } else if lower.contains("defaultcpuallocator")
        && (lower.contains("not enough memory") || lower.contains("can't allocate memory"))
    {
        Some(Oom::Cpu)
    } else {
        None
    }
}

/// libtorch's own first line, without the `unwrap` wrapping that a panic adds.
fn libtorch_said(message: &str) -> &str {
    let message = message
        .split_once("on an `Err` value: ")
        .map_or(message, |(_, rest)| rest);
    let message = message.strip_prefix("Torch(\"").unwrap_or(message);
    let line = message.lines().next().unwrap_or(message);
    // A panic's Debug form escapes newlines: cut at the first one.
    line.split("\\n").next().unwrap_or(line).trim()
}

fn install_quiet_hook() {
    QUIET_HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if GUARD_DEPTH.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn a_real_cpu_allocation_failure_becomes_advice() {
        // 2^60 bytes: libtorch's CPU allocator refuses it at once, without touching memory.
        let err = guarded(|| {
            let t = Tensor::zeros([1i64 << 58], (Kind::Float, Device::Cpu));
            Ok(t.size()[0])
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TrainError::OutOfMemory(_)), "{text}");
        assert!(
            text.contains("Lower batch_size") && text.contains("grad_accum"),
            "{text}"
        );
        assert!(text.contains("DefaultCPUAllocator"), "{text}");
        assert!(!text.contains("unwrap"), "{text}");
    }

    #[test]
    fn the_cuda_out_of_memory_message_becomes_advice() {
        // The text libtorch 2.11's CUDA caching allocator throws (c10/cuda/CUDACachingAllocator.cpp), as tch's
        // unwrap wraps it in a panic.
        let panic_text = "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to \
            allocate 20.00 GiB. GPU 0 has a total capacity of 139.80 GiB of which 3.12 GiB is free. Of the \
            allocated memory 130.2 GiB is allocated by PyTorch\\nException raised from malloc at \
            /pytorch/c10/cuda/CUDACachingAllocator.cpp:1487\")";
        let err = guarded::<()>(|| panic!("{panic_text}")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TrainError::OutOfMemory(_)), "{text}");
        assert!(text.starts_with("CUDA ran out of memory"), "{text}");
        for advice in ["batch_size", "grad_accum", "precision: bf16"] {
            assert!(text.contains(advice), "{advice} missing: {text}");
        }
        assert!(text.ends_with("is allocated by PyTorch"), "{text}");
    }

    #[test]
    fn other_failures_are_reported_plainly() {
        let err = guarded(|| {
            let a = Tensor::ones([2, 3], (Kind::Float, Device::Cpu));
            let b = Tensor::ones([4, 5], (Kind::Float, Device::Cpu));
            Ok(a.matmul(&b))
        })
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("libtorch failed: "), "{text}");
        assert!(!text.contains("out of memory"), "{text}");
        // Outside a guarded call, panics still reach the default hook (the guard leaves no state behind).
        assert_eq!(GUARD_DEPTH.with(Cell::get), 0);
    }
}
