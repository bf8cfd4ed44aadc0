//! `device:` values: `cpu`, `cuda`, `cuda:N`, `auto` (CUDA when libtorch sees a GPU, else CPU).

use tch::Device;

/// A `device:` value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("device {0:?}: expected cpu, cuda, cuda:N or auto")]
    Unknown(String),
    #[error("device cuda:{index} requested but libtorch sees {count} CUDA device(s); `dept env` shows what it sees")]
    Unavailable { index: usize, count: i64 },
}

/// Checks the syntax of a device string without touching CUDA.
pub fn parse_device(text: &str) -> Result<Option<Device>, DeviceError> {
    match text {
        "auto" => Ok(None),
        "cpu" => Ok(Some(Device::Cpu)),
        "cuda" => Ok(Some(Device::Cuda(0))),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(Some(Device::Cuda(i))),
            _ => Err(DeviceError::Unknown(other.to_string())),
        },
    }
}

/// The device to run on; asking for a GPU that libtorch does not see is an error, not a silent CPU run.
pub fn resolve_device(text: &str) -> Result<Device, DeviceError> {
    match parse_device(text)? {
        None => Ok(Device::cuda_if_available()),
        Some(Device::Cuda(i)) => {
            let count = tch::Cuda::device_count();
            if (i as i64) < count {
                Ok(Device::Cuda(i))
            } else {
                Err(DeviceError::Unavailable { index: i, count })
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
            assert!(resolve_device("cuda:0")
                .unwrap_err()
                .to_string()
                .contains("sees 0"));
            assert_eq!(resolve_device("auto").unwrap(), Device::Cpu);
        }
    }
}
