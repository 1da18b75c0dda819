//! What a workload needs from its GPUs (`--require-*`, or GPUPROBE_REQUIRE_*
//! in the environment), checked against what the probe measured.
//!
//! Each requirement becomes a check of its own, failed when unmet, with the
//! measured value beside the required one, so a failed start says exactly
//! which promise the machine did not keep.
use crate::cuda::CudaVersion;
use crate::probe::progress::{Done, Failed, Progress, Scope};
use crate::report::DeviceStatus;
use crate::units::bytes;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirements {
    /// At least this many GPUs pass.
    pub gpus: Option<u32>,
    /// Free memory per GPU, bytes.
    pub memory: Option<u64>,
    /// Compute capability (major, minor) per GPU.
    pub compute_capability: Option<(u32, u32)>,
    /// CUDA version the driver supports.
    pub driver: Option<CudaVersion>,
    /// GPU GFLOP/s over CPU GFLOP/s, per GPU.
    pub speedup: Option<f64>,
}

impl Requirements {
    /// Adds a check per requirement. `measured_speed` is false in health
    /// mode, which does not time the CPU: a speedup requirement is then
    /// recorded as skipped, not guessed.
    pub fn check(&self, progress: &Progress, measured_speed: bool) {
        if let Some(need) = self.driver {
            progress.stage(Scope::Machine, "require_driver", || {
                let have = progress
                    .update(|r| r.driver.cuda_version_raw)
                    .and_then(CudaVersion::from_driver);
                let shown = have.map_or("unknown".to_string(), |v| v.to_string());
                let detail = format!("driver supports CUDA {shown}, required {need}");
                if have.is_some_and(|v| v >= need) {
                    Ok(Done::pass((), detail))
                } else {
                    Err(Failed::new(detail))
                }
            });
        }
        let slots = progress.update(|r| {
            r.devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.status != DeviceStatus::Skipped)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        });
        for slot in slots {
            self.check_device(progress, slot, measured_speed);
        }
        if let Some(n) = self.gpus {
            progress.stage(Scope::Machine, "require_gpus", || {
                let passing = progress.update(|r| {
                    r.devices
                        .iter()
                        .filter(|d| d.status != DeviceStatus::Skipped)
                        .filter(|d| {
                            d.checks
                                .iter()
                                .all(|c| c.status != crate::report::CheckStatus::Fail)
                        })
                        .count()
                });
                let detail = format!("{passing} GPU(s) usable, required {n}");
                if passing >= n as usize {
                    Ok(Done::pass((), detail))
                } else {
                    Err(Failed::new(detail))
                }
            });
        }
    }

    fn check_device(&self, progress: &Progress, slot: usize, measured_speed: bool) {
        let scope = Scope::Device(slot);
        let device = progress.update(|r| r.devices[slot].clone());
        if let Some(need) = self.memory {
            progress.stage(scope, "require_memory", || match device.memory_free_bytes {
                Some(free) if free >= need => Ok(Done::pass(
                    (),
                    format!("{} free, required {}", bytes(free), bytes(need)),
                )),
                Some(free) => Err(Failed::new(format!(
                    "{} free, required {}",
                    bytes(free),
                    bytes(need)
                ))),
                None => Err(Failed::new(format!(
                    "free memory unknown, required {}",
                    bytes(need)
                ))),
            });
        }
        if let Some((major, minor)) = self.compute_capability {
            progress.stage(scope, "require_compute_capability", || {
                let have = device.compute_capability.as_deref().and_then(parse_version);
                let detail = format!(
                    "compute capability {}, required {major}.{minor}",
                    device.compute_capability.as_deref().unwrap_or("unknown")
                );
                if have.is_some_and(|h| h >= (major, minor)) {
                    Ok(Done::pass((), detail))
                } else {
                    Err(Failed::new(detail))
                }
            });
        }
        if let Some(need) = self.speedup {
            if !measured_speed {
                progress.skip(
                    scope,
                    "require_speedup",
                    "health does not time the CPU; checked by the full probe",
                );
                return;
            }
            progress.stage(scope, "require_speedup", || {
                match device.matmul.as_ref().and_then(|m| m.speedup_vs_cpu) {
                    Some(s) if s >= need => {
                        Ok(Done::pass((), format!("{s:.1}x the CPU, required {need}x")))
                    }
                    Some(s) => Err(Failed::new(format!("{s:.1}x the CPU, required {need}x"))),
                    None => Err(Failed::new(format!(
                        "speedup not measured, required {need}x"
                    ))),
                }
            });
        }
    }
}

/// "8.0" or "12" to (major, minor), for compute capabilities and CUDA
/// versions alike; the grammar is `CudaVersion`'s.
#[must_use]
pub fn parse_version(text: &str) -> Option<(u32, u32)> {
    let v: CudaVersion = text.parse().ok()?;
    Some((v.major, v.minor))
}

/// "16GiB", "500MB", "1.5 GiB", "2G" (binary, as Docker reads it), "1024".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 16GiB, 500MB)"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
            ))
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16GiB"), Ok(16 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("8.0"), Some((8, 0)));
        assert_eq!(parse_version("12"), Some((12, 0)));
        assert_eq!(parse_version("9.x"), None);
        assert!((8, 6) >= (8, 0) && (9, 0) > (8, 9));
    }
}
