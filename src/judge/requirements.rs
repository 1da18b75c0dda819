//! What a workload needs from its GPUs (`--require-*`, or GPUPROBE_REQUIRE_*
//! in the environment), checked against what the probe measured.
//!
//! Each requirement becomes a check of its own, failed when unmet, with the
//! measured value beside the required one, so a failed start says exactly
//! which promise the machine did not keep. Like the diagnoses, the
//! requirements judge a report; they know nothing of how it was probed.
use crate::cuda::CudaVersion;
use crate::report::{
    Check, CheckStatus, ComputeCapability, DeviceReport, DeviceStatus, Figure, MissingInput, Report,
};
use crate::stage::Stage;
use crate::units::{self, bytes};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Requirements {
    /// At least this many GPUs pass.
    pub gpus: Option<u32>,
    /// Free memory per GPU, bytes.
    pub memory: Option<u64>,
    /// Compute capability per GPU, at least.
    pub compute_capability: Option<ComputeCapability>,
    /// CUDA version the driver supports.
    pub driver: Option<CudaVersion>,
    /// GPU GFLOP/s over CPU GFLOP/s, per GPU.
    pub speedup: Option<f64>,
    /// The matmul's fraction of the GPU's FP32 peak, 0 to 1, per GPU.
    pub efficiency: Option<f64>,
}

/// The checks the requirements add to a report: machine-wide ones and, by
/// index into `devices`, each GPU's.
#[derive(Debug, Default)]
pub struct Judged {
    pub machine: Vec<Check>,
    pub devices: Vec<(usize, Check)>,
}

impl Judged {
    /// Adds the checks to the report they judged.
    pub fn apply(self, report: &mut Report) {
        for (slot, check) in self.devices {
            if let Some(d) = report.devices.get_mut(slot) {
                d.checks.push(check);
            }
        }
        report.checks.extend(self.machine);
    }
}

fn check(stage: Stage, met: bool, detail: String) -> Check {
    Check {
        name: stage.as_str().into(),
        status: if met {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        duration_ms: 0.0,
        detail,
        error: None,
    }
}

impl Requirements {
    /// A check per requirement, judged on the probe's report as it ends
    /// (before the verdict). `measured_speed` is false for `health` and
    /// `memtest`, which do not time the CPU: a speedup requirement is then
    /// recorded as skipped, not guessed.
    #[must_use]
    pub fn judge(&self, report: &Report, measured_speed: bool) -> Judged {
        let mut judged = Judged::default();
        if let Some(need) = self.driver {
            let have = report
                .driver
                .cuda_version_raw
                .and_then(CudaVersion::from_driver);
            let shown = have.map_or("unknown".to_string(), |v| v.to_string());
            judged.machine.push(check(
                Stage::RequireDriver,
                have.is_some_and(|v| v >= need),
                format!("driver supports CUDA {shown}, required {need}"),
            ));
        }
        for (slot, device) in report.devices.iter().enumerate() {
            if device.status != DeviceStatus::Skipped {
                for c in self.judge_device(device, measured_speed) {
                    judged.devices.push((slot, c));
                }
            }
        }
        if let Some(n) = self.gpus {
            // Usable: probed, and no check failed, the per-GPU requirements
            // just judged included.
            let passing = report
                .devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.status != DeviceStatus::Skipped)
                .filter(|(slot, d)| {
                    let judged_here = judged
                        .devices
                        .iter()
                        .filter(|(s, _)| s == slot)
                        .map(|(_, c)| c);
                    d.checks
                        .iter()
                        .chain(judged_here)
                        .all(|c| c.status != CheckStatus::Fail)
                })
                .count();
            judged.machine.push(check(
                Stage::RequireGpus,
                passing >= n as usize,
                format!("{passing} GPU(s) usable, required {n}"),
            ));
        }
        judged
    }

    fn judge_device(&self, device: &DeviceReport, measured_speed: bool) -> Vec<Check> {
        let mut checks = Vec::new();
        if let Some(need) = self.memory {
            let (met, have) = match device.memory_free_bytes {
                Some(free) => (free >= need, format!("{} free", bytes(free))),
                None => (false, "free memory unknown".to_string()),
            };
            checks.push(check(
                Stage::RequireMemory,
                met,
                format!("{have}, required {}", bytes(need)),
            ));
        }
        if let Some(need) = self.compute_capability {
            let have = device.compute_capability;
            checks.push(check(
                Stage::RequireComputeCapability,
                have.is_some_and(|h| h >= need),
                format!(
                    "compute capability {}, required {need}",
                    have.map_or("unknown".to_string(), |h| h.to_string())
                ),
            ));
        }
        if let Some(need) = self.speedup {
            if measured_speed {
                let have = device.matmul.as_ref().and_then(|m| m.speedup_vs_cpu);
                checks.push(check(
                    Stage::RequireSpeedup,
                    have.is_some_and(|s| s >= need),
                    match have {
                        Some(s) => format!("{s:.1}x the CPU, required {need}x"),
                        None => format!("speedup not measured, required {need}x"),
                    },
                ));
            } else {
                checks.push(Check {
                    status: CheckStatus::Skip,
                    detail: "this command (health, memtest) does not time the CPU; checked by \
                             the full probe"
                        .into(),
                    ..check(Stage::RequireSpeedup, true, String::new())
                });
            }
        }
        if let Some(need) = self.efficiency {
            checks.push(judge_efficiency(device, need, measured_speed));
        }
        checks
    }
}

/// --require-efficiency: the matmul's `efficiency` against `need` (0 to 1).
fn judge_efficiency(device: &DeviceReport, need: f64, measured_speed: bool) -> Check {
    let percent = need * 100.0;
    if !measured_speed {
        return Check {
            status: CheckStatus::Skip,
            detail: "this command (health, memtest) does not time the matmul against the GPU's \
                     peak; checked by the full probe"
                .into(),
            ..check(Stage::RequireEfficiency, true, String::new())
        };
    }
    let have = match device.matmul.as_ref() {
        None => Err(MissingInput::NoMatmul),
        Some(m) => match m.efficiency {
            Some(Figure::Value(e)) => Ok(e),
            Some(Figure::Missing(why)) => Err(why),
            None => Err(MissingInput::NoMatmul),
        },
    };
    check(
        Stage::RequireEfficiency,
        have.is_ok_and(|e| e >= need),
        match have {
            Ok(e) => format!(
                "{} of the FP32 peak, required {percent}%",
                units::percent(e)
            ),
            Err(why) => format!("efficiency unknown ({why}), required {percent}%"),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_size;

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

    /// `--require-compute-capability` compares the device's pair with the
    /// required one as numbers: 12.0 meets 9.0 (as text it sorts below), 8.6
    /// does not meet 8.9, and an unknown one meets nothing.
    #[test]
    fn compute_capability_is_judged_on_the_pairs() {
        let judge = |have: Option<ComputeCapability>, need: ComputeCapability| {
            let mut device = DeviceReport::new(0);
            device.compute_capability = have;
            let requirements = Requirements {
                compute_capability: Some(need),
                ..Requirements::default()
            };
            let checks = requirements.judge_device(&device, true);
            assert_eq!(checks.len(), 1);
            assert_eq!(checks[0].name, "require_compute_capability");
            (checks[0].status, checks[0].detail.clone())
        };
        let cc = ComputeCapability::new;
        assert_eq!(
            judge(Some(cc(12, 0)), cc(9, 0)),
            (
                CheckStatus::Pass,
                "compute capability 12.0, required 9.0".into()
            )
        );
        assert_eq!(
            judge(Some(cc(8, 6)), cc(8, 9)),
            (
                CheckStatus::Fail,
                "compute capability 8.6, required 8.9".into()
            )
        );
        assert_eq!(judge(Some(cc(8, 9)), cc(8, 9)).0, CheckStatus::Pass);
        assert_eq!(
            judge(None, cc(7, 0)),
            (
                CheckStatus::Fail,
                "compute capability unknown, required 7.0".into()
            )
        );
    }
}
