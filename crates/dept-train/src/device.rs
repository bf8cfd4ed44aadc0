//! `device:` values: `cpu`, `cuda`, `cuda:N`, `auto` (CUDA when libtorch sees a GPU, else CPU).

use tch::Device;

/// Checks the syntax of a device string without touching CUDA.
pub fn parse_device(text: &str) -> Result<Option<Device>, String> {
    match text {
        "auto" => Ok(None),
        "cpu" => Ok(Some(Device::Cpu)),
        "cuda" => Ok(Some(Device::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(Some(Device::Cuda(i))),
            _ => Err(format!(
                "device {other:?}: expected cpu, cuda, cuda:N or auto"
            )),
        },
    }
}

/// The device to run on; asking for a GPU that libtorch does not see is an error, not a silent CPU run.
pub fn resolve_device(text: &str) -> Result<Device, String> {
    match parse_device(text)? {
        None => Ok(Device::cuda_if_available()),
        Some(Device::Cuda(i)) => {
            let count = tch::Cuda::device_count();
            if (i as i64) < count {
                Ok(Device::Cuda(i))
            } else {
                Err(format!(
                    "device cuda:{i} requested but libtorch sees {count} CUDA device(s); `dept env` shows what \
                     it sees"
                ))
            }
        }
        Some(device) => Ok(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse_device("cpu").unwrap(), Some(Device::Cpu));
        assert_eq!(parse_device("cuda").unwrap(), Some(Device::Cuda(0)));
        assert_eq!(parse_device("cuda:3").unwrap(), Some(Device::Cuda(3)));
        assert_eq!(parse_device("auto").unwrap(), None);
        assert!(parse_device("cuda:x").is_err());
        assert!(parse_device("gpu").is_err());
    }

    #[test]
    fn a_missing_gpu_is_an_error() {
        if tch::Cuda::device_count() == 0 {
            assert!(resolve_device("cuda:0").unwrap_err().contains("sees 0"));
            assert_eq!(resolve_device("auto").unwrap(), Device::Cpu);
        }
    }
}
