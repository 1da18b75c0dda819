//! What a workload needs from its GPUs (`--require-*`, or GPUPROBE_REQUIRE_*
//! in the environment), checked against what the probe measured.
//!
//! Each requirement becomes a check of its own, failed when unmet, with the
//! measured value beside the required one, so a failed start says exactly
//! which promise the machine did not keep. Like the diagnoses, the
//! requirements judge a report; they know nothing of how it was probed.
use crate::cuda::CudaVersion;
use crate::report::{
    Check, CheckName, CheckStatus, ComputeCapability, DeviceReport, DeviceStatus, EventsStatus,
    Figure, MissingInput, NotRun, Report, RequiredCheck,
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
    /// Checks that must have run (`--require-checks`): on every GPU
    /// probed, or for the machine.
    pub checks: Vec<CheckName>,
}

/// The checks the requirements add to a report: machine-wide ones and, by
/// index into `devices`, each GPU's.
#[derive(Debug, Default)]
pub struct Judged {
    pub machine: Vec<Check>,
    pub devices: Vec<(usize, Check)>,
    /// `--require-checks`: each named check, where it ran or why not.
    pub required: Vec<RequiredCheck>,
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
        report.required_checks = self.required;
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
        not_run: None,
    }
}

/// A requirement this command cannot judge, recorded as not run.
fn not_judged(stage: Stage, detail: &str) -> Check {
    Check {
        status: CheckStatus::Skip,
        not_run: Some(NotRun::NotPlanned),
        detail: detail.into(),
        ..check(stage, true, String::new())
    }
}

impl Requirements {
    /// A check per requirement, judged on the probe's report as it ends
    /// (before the verdict). `measured_speed` is false for `health` and
    /// `memtest`, which do not time the CPU: a speedup requirement is then
    /// recorded as skipped, not guessed.
    #[must_use]
    pub fn judge(&self, report: &Report, measured_speed: bool) -> Judged {
        let mut judged = self.judge_checks(report);
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

    /// `--require-checks` alone: for a run that measured nothing the other
    /// requirements could judge (`bench`, `health --no-context`), and the
    /// first part of `judge`. A named check that did not run fails: a
    /// per-GPU one on that GPU (so a busy GPU, whose compute is otherwise
    /// only "not verified", fails), a machine-wide one for the machine.
    #[must_use]
    pub fn judge_checks(&self, report: &Report) -> Judged {
        let mut judged = Judged::default();
        if self.checks.is_empty() {
            return judged;
        }
        let probed: Vec<(usize, &DeviceReport)> = report
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.status != DeviceStatus::Skipped)
            .collect();
        for &name in &self.checks {
            if !name.per_gpu() {
                judged.required.push(machine_check(report, name));
            } else if probed.is_empty() {
                // No GPU was probed (a machine-wide stage failed first).
                judged.required.push(RequiredCheck {
                    check: name,
                    index: None,
                    uuid: None,
                    ran: false,
                    status: None,
                    not_run: Some(NotRun::EarlierFailure),
                });
            } else {
                for (_, d) in &probed {
                    judged.required.push(device_check(d, name));
                }
            }
        }
        for (slot, d) in &probed {
            let on_this = |r: &&RequiredCheck| r.index == Some(d.index);
            if let Some(c) = required_check(judged.required.iter().filter(on_this)) {
                judged.devices.push((*slot, c));
            }
        }
        let for_machine = |r: &&RequiredCheck| r.index.is_none();
        if let Some(c) = required_check(judged.required.iter().filter(for_machine)) {
            judged.machine.push(c);
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
                checks.push(not_judged(
                    Stage::RequireSpeedup,
                    "this command (health, memtest) does not time the CPU; checked by the full \
                     probe",
                ));
            }
        }
        if let Some(need) = self.efficiency {
            checks.push(judge_efficiency(device, need, measured_speed));
        }
        checks
    }
}

/// The `require_checks` check over `named` (one GPU's, or the machine's):
/// passed when each ran, else failed naming each that did not and why;
/// `None` when nothing is named there.
fn required_check<'a>(named: impl Iterator<Item = &'a RequiredCheck>) -> Option<Check> {
    let named: Vec<&RequiredCheck> = named.collect();
    if named.is_empty() {
        return None;
    }
    let missing: Vec<String> = named
        .iter()
        .filter(|r| !r.ran)
        .map(|r| missing_words(r))
        .collect();
    let detail = if missing.is_empty() {
        let ran: Vec<&str> = named.iter().map(|r| r.check.as_str()).collect();
        format!("ran: {}", ran.join(", "))
    } else {
        missing.join("; ")
    };
    Some(check(Stage::RequireChecks, missing.is_empty(), detail))
}

/// "matmul not run (busy)", "events not run (unavailable)".
fn missing_words(r: &RequiredCheck) -> String {
    match r.not_run {
        Some(why) => format!("{} not run ({why})", r.check),
        None => format!("{} did not finish", r.check),
    }
}

/// Whether the records of `stage` in `checks` say it ran: there is one,
/// and each ran (`bench` and `bench_cpu` have one a size). The first that
/// did not run gives the status and the reason.
fn ran_in(checks: &[Check], stage: Stage) -> (bool, Option<CheckStatus>, Option<NotRun>) {
    let mut records = checks.iter().filter(|c| stage.is(&c.name)).peekable();
    let Some(first) = records.peek().copied() else {
        return (false, None, Some(NotRun::NotReached));
    };
    match records.find(|c| !c.ran()) {
        None => (true, Some(first.status), None),
        // A check cut off by the deadline has no reason of its own.
        Some(c) => (false, Some(c.status), c.not_run),
    }
}

/// A machine-wide named check.
fn machine_check(report: &Report, name: CheckName) -> RequiredCheck {
    let (ran, status, not_run) = match name.stage() {
        Some(stage) => ran_in(&report.checks, stage),
        // NVML's event watch: watched, or NVML offers none here.
        None => match &report.events {
            Some(e) if e.status == EventsStatus::Watched => (true, None, None),
            Some(_) => (false, None, Some(NotRun::Unavailable)),
            None => (false, None, Some(NotRun::NotPlanned)),
        },
    };
    RequiredCheck {
        check: name,
        index: None,
        uuid: None,
        ran,
        status,
        not_run,
    }
}

/// A per-GPU named check on one probed GPU.
fn device_check(d: &DeviceReport, name: CheckName) -> RequiredCheck {
    let (ran, status, not_run) = match name.stage() {
        Some(stage) => ran_in(&d.checks, stage),
        None => (false, None, Some(NotRun::NotPlanned)),
    };
    RequiredCheck {
        check: name,
        index: Some(d.index),
        uuid: d.uuid.clone(),
        ran,
        status,
        not_run,
    }
}

/// --require-efficiency: the matmul's `efficiency` against `need` (0 to 1).
fn judge_efficiency(device: &DeviceReport, need: f64, measured_speed: bool) -> Check {
    let percent = need * 100.0;
    if !measured_speed {
        return not_judged(
            Stage::RequireEfficiency,
            "this command (health, memtest) does not time the matmul against the GPU's peak; \
             checked by the full probe",
        );
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

    /// A named check ran only when it has a record and every record of it
    /// ran (`bench` has one a size); the first that did not gives why.
    #[test]
    fn a_named_check_runs_only_when_every_record_of_it_ran() {
        let record = |status, not_run| Check {
            name: "bench".into(),
            status,
            duration_ms: 0.0,
            detail: String::new(),
            error: None,
            not_run,
        };
        assert_eq!(
            ran_in(&[], Stage::Bench),
            (false, None, Some(NotRun::NotReached))
        );
        let sizes = [
            record(CheckStatus::Pass, None),
            record(CheckStatus::Skip, Some(NotRun::NoMemory)),
        ];
        assert_eq!(
            ran_in(&sizes, Stage::Bench),
            (false, Some(CheckStatus::Skip), Some(NotRun::NoMemory))
        );
        // A failure ran (and fails the run by itself); a warning that it
        // could not run did not.
        assert!(ran_in(&[record(CheckStatus::Fail, None)], Stage::Bench).0);
        assert!(
            !ran_in(
                &[record(CheckStatus::Warn, Some(NotRun::NoMemory))],
                Stage::Bench
            )
            .0
        );
        // A check cut off by the deadline did not run to its end.
        assert!(!ran_in(&[record(CheckStatus::Timeout, None)], Stage::Bench).0);
    }

    /// A busy GPU fails `--require-checks matmul` on that GPU, naming why;
    /// nothing named, nothing judged.
    #[test]
    fn a_busy_gpu_fails_a_required_matmul_on_that_gpu() {
        let mut report = crate::probe::empty_report(&crate::probe::Options {
            command: crate::report::ReportCommand::Health,
            work: crate::probe::Work::List,
            size: 16,
            repeat: crate::cpu::Repeat::Times(1),
            devices: crate::probe::Selection::All,
            seed: 1,
            timeout: std::time::Duration::from_secs(1),
            events: false,
        });
        let mut d = DeviceReport::new(0);
        d.checks.push(Check {
            name: "matmul".into(),
            status: CheckStatus::Skip,
            duration_ms: 0.0,
            detail: "not run".into(),
            error: None,
            not_run: Some(NotRun::Busy),
        });
        report.devices.push(d);
        assert!(Requirements::default()
            .judge_checks(&report)
            .required
            .is_empty());
        let judged = Requirements {
            checks: vec![CheckName::Matmul],
            ..Requirements::default()
        }
        .judge_checks(&report);
        assert!(judged.machine.is_empty());
        let [(0, mine)] = judged.devices.as_slice() else {
            panic!("{:?}", judged.devices)
        };
        assert_eq!(mine.status, CheckStatus::Fail);
        assert_eq!(mine.detail, "matmul not run (busy)");
        assert_eq!(judged.required[0].not_run, Some(NotRun::Busy));
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
