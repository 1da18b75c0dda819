//! From facts to a verdict: each device's status, the verdict and the
//! summary's body for each way a probe ends. `super::conclude` adds the
//! diagnoses and the policy.
use crate::checks::progress::{Hung, Scope};
use crate::probe::ending::{Internal, NoGpu, TimedOut};
use crate::report::{CheckStatus, DeviceReport, DeviceStatus, NotVerified, Report, Verdict};
use crate::stage::Stage;
use crate::units::flops;

/// A probe that timed out: each hung GPU marked `timeout`, and where it
/// hung, and whether what hung is a GPU or the driver.
pub(super) fn timed_out(report: &mut Report, t: &TimedOut) -> String {
    let (stuck, working): (Vec<&Hung>, Vec<&Hung>) = t.hung.iter().partition(|h| h.stuck);
    let stuck: Vec<String> = stuck.into_iter().map(|h| place(report, h)).collect();
    let working: Vec<String> = working.into_iter().map(|h| place(report, h)).collect();
    let limit = humantime::format_duration(t.limit);
    if stuck.is_empty() && !working.is_empty() {
        // Every stage was still making driver calls that returned: slow
        // work, not a wedge (a hang would leave one call unanswered).
        return format!(
            "no result within {limit}: {} still working, its driver calls answering; the work \
             needs more time than the deadline gives (raise --timeout, or ask for less work)",
            working.join(", ")
        );
    }
    let mut places = if stuck.is_empty() {
        "between stages".to_string()
    } else {
        stuck.join(", ")
    };
    if !working.is_empty() {
        places = format!("{places} (still working: {})", working.join(", "));
    }
    let cause = hang_cause(report, t, !stuck.is_empty());
    format!("no answer within {limit}: {places}; the driver call there never returned ({cause})")
}

/// Where a stage hung ("GPU 1 (GPU-…) in stage matmul, stuck in
/// cuStreamSynchronize"), its GPU marked `timeout`.
fn place(report: &mut Report, h: &Hung) -> String {
    let call = match (h.stuck, h.call) {
        (true, Some(c)) => format!(", stuck in {c}"),
        _ => String::new(),
    };
    match h.scope {
        Scope::Machine => format!("stage {}{call}", h.stage),
        Scope::Device(i) => {
            let d = &mut report.devices[i];
            d.status = DeviceStatus::Timeout;
            format!(
                "GPU {} ({}) in stage {}{call}",
                d.index,
                d.uuid.as_deref().unwrap_or("uuid unknown"),
                h.stage
            )
        }
    }
}

/// What hung: a GPU, when other GPUs ran every stage meanwhile (so the
/// driver itself still answered) and a driver call returned after the
/// stuck one began (a GPU that finished before the driver wedged proves
/// nothing); else the GPU or the driver, which cannot be told apart.
fn hang_cause(report: &Report, t: &TimedOut, any_stuck: bool) -> String {
    let hung_slots: Vec<usize> = t
        .hung
        .iter()
        .filter_map(|h| match h.scope {
            Scope::Device(i) => Some(i),
            Scope::Machine => None,
        })
        .collect();
    let finished: Vec<String> = report
        .devices
        .iter()
        .enumerate()
        .filter(|(i, d)| {
            !hung_slots.contains(i)
                && d.status != DeviceStatus::Skipped
                && d.checks.iter().any(|c| Stage::Telemetry.is(&c.name))
        })
        .map(|(_, d)| format!("GPU {}", d.index))
        .collect();
    if finished.is_empty() || !any_stuck || !t.answered_since {
        "a wedged GPU or driver".to_string()
    } else {
        format!(
            "a hung GPU: {} finished meanwhile, so the driver answered",
            finished.join(", ")
        )
    }
}

/// Why no GPU could be used, in one line. What was found, not why: the
/// diagnoses tell a container started without GPU access (GP001) from one
/// given NVML but not CUDA (GP002), and the summary leads with them.
pub(super) fn no_gpu(cause: &NoGpu) -> String {
    match cause {
        NoGpu::DriverNotFound => "no CUDA driver library (libcuda) in this container".into(),
        NoGpu::DriverBroken(e) => format!("the CUDA driver library is present but broken: {e}"),
        NoGpu::DriverTooOld { path, missing } => format!(
            "the CUDA driver at {path} is too old for gpuprobe: it lacks {}",
            missing.join(", ")
        ),
        NoGpu::InitRefused(error) => format!("the CUDA driver refused to initialise: {error}"),
        NoGpu::CountFailed => "the driver could not count its devices".into(),
        NoGpu::NoDevice => "the driver sees no GPU in this container".into(),
    }
}

/// What failed inside gpuprobe.
pub(super) fn internal(error: &Internal) -> String {
    match error {
        Internal::ThreadStart(e) => format!("could not start the probe thread: {e}"),
        Internal::Panic => {
            "gpuprobe hit an internal error (a bug: please report it with this output)".into()
        }
        Internal::Abandoned => String::new(),
    }
}

/// A device's status from its own checks: any failure fails it, any
/// warning warns; a device that was not probed stays skipped.
fn device_status(d: &DeviceReport) -> DeviceStatus {
    let any = |status| d.checks.iter().any(|c| c.status == status);
    if d.status == DeviceStatus::Skipped {
        DeviceStatus::Skipped
    } else if any(CheckStatus::Fail) {
        DeviceStatus::Fail
    } else if any(CheckStatus::Warn) {
        DeviceStatus::Warn
    } else {
        DeviceStatus::Pass
    }
}

fn gpu_name(d: &DeviceReport) -> String {
    format!(
        "GPU {} ({})",
        d.index,
        d.uuid.as_deref().unwrap_or("uuid unknown")
    )
}

/// "GPU 1 (GPU-…) failed verify; 3 of 4 GPU(s) passed"; a failed
/// `--require-checks` names what did not run and why: "GPU 0 (GPU-…)
/// failed require_checks (matmul not run (busy))".
fn failed_summary(failed: &[&DeviceReport], probed: usize) -> String {
    let names: Vec<String> = failed
        .iter()
        .map(|d| {
            let check = d.checks.iter().find(|c| c.status == CheckStatus::Fail);
            match check {
                Some(c) if Stage::RequireChecks.is(&c.name) => {
                    format!("{} failed {} ({})", gpu_name(d), c.name, c.detail)
                }
                Some(c) => format!("{} failed {}", gpu_name(d), c.name),
                None => format!("{} failed ?", gpu_name(d)),
            }
        })
        .collect();
    format!(
        "{}; {} of {probed} GPU(s) passed",
        names.join("; "),
        probed - failed.len()
    )
}

/// `health --no-context`: what judged the GPUs, since nothing computed.
fn no_context_summary(r: &Report, gpus: usize) -> String {
    let judged = if r.nvml.status == crate::report::NvmlStatus::Loaded {
        "NVML's health signals and the diagnoses judged them"
    } else {
        "without NVML only enumeration and the diagnoses judged them"
    };
    format!("{gpus} GPU(s) visible; no CUDA context was made (--no-context), {judged}")
}

/// "GPU 0 (GPU-…), GPU 2 (GPU-…) admit no context of this process …":
/// the GPUs whose compute was not verified, with why.
fn busy_summary(busy: &[&DeviceReport]) -> String {
    let names: Vec<String> = busy
        .iter()
        .map(|d| {
            let why = match d.compute_not_verified {
                Some(NotVerified::BusyMemory) => "busy: its memory is held by other processes",
                Some(NotVerified::MemoryHeldWithoutProcess) => {
                    "its memory is full, held by no process NVML lists"
                }
                Some(NotVerified::BusyComputeMode) | None => "busy: compute mode",
            };
            format!("{} ({why})", gpu_name(d))
        })
        .collect();
    format!(
        "{} admit(s) no context of this process, so compute was not verified; NVML's health signals judged them",
        names.join(", ")
    )
}

/// Every probed GPU computed correctly: healthy, or degraded when a check
/// warned, with the best speed against the CPU and the warnings. GPUs that
/// admitted no context (busy) are named; NVML and the diagnoses judge them.
/// ", up to 12.3 TFLOP/s (45.6x the CPU)": the matmul's best speed, or
/// the best verified one of `bench`'s rows.
fn best_speed(r: &Report, probed: &[&DeviceReport]) -> String {
    let best = probed
        .iter()
        .filter_map(|d| d.matmul.as_ref())
        .map(|m| m.gpu_gflops)
        .chain(probed.iter().flat_map(|d| &d.bench).filter_map(|row| {
            (row.status == crate::report::BenchStatus::Pass)
                .then_some(row.gpu_gflops)
                .flatten()
        }))
        .fold(0.0, f64::max);
    match &r.cpu {
        Some(c) => format!(
            ", up to {} ({:.1}x the CPU)",
            flops(best),
            best / c.gflops.max(f64::MIN_POSITIVE)
        ),
        // `bench` compares with the CPU size by size, in its rows.
        None if r.bench.is_some() && best > 0.0 => format!(", up to {}", flops(best)),
        None => String::new(),
    }
}

fn passed_outcome(r: &Report, probed: &[&DeviceReport]) -> (Verdict, String) {
    let (busy, probed): (Vec<&DeviceReport>, Vec<&DeviceReport>) =
        probed.iter().partition(|d| d.admits_no_context());
    if probed.is_empty() {
        return (Verdict::Healthy, busy_summary(&busy));
    }
    let busy_count = busy.len();
    let busy = if busy.is_empty() {
        String::new()
    } else {
        format!("; {}", busy_summary(&busy))
    };
    let speed = best_speed(r, &probed);
    let warnings: Vec<String> = probed
        .iter()
        .flat_map(|d| {
            d.checks
                .iter()
                .filter(|c| c.status == CheckStatus::Warn)
                .map(move |c| format!("GPU {} {}: {}", d.index, c.name, c.detail))
        })
        .collect();
    let (verdict, warnings) = if warnings.is_empty() {
        (Verdict::Healthy, String::new())
    } else {
        (
            Verdict::Degraded,
            format!("; warnings: {}", warnings.join("; ")),
        )
    };
    // Out of every GPU probed, the busy ones included: a two-GPU node with
    // one busy GPU computed on one of two, not "1 of 1".
    (
        verdict,
        format!(
            "{} of {} GPU(s) computed correct results{speed}{busy}{warnings}",
            probed.len(),
            probed.len() + busy_count
        ),
    )
}

/// The verdict and summary of a finished probe, from its checks.
fn outcome(r: &Report) -> (Verdict, String) {
    let probed: Vec<&DeviceReport> = r
        .devices
        .iter()
        .filter(|d| d.status != DeviceStatus::Skipped)
        .collect();
    let failed: Vec<&DeviceReport> = probed
        .iter()
        .copied()
        .filter(|d| d.status == DeviceStatus::Fail)
        .collect();
    let machine_failure = r.checks.iter().find(|c| c.status == CheckStatus::Fail);
    if !failed.is_empty() {
        (Verdict::Failed, failed_summary(&failed, probed.len()))
    } else if let Some(check) = machine_failure {
        (Verdict::Failed, check.detail.clone())
    } else if r.command == crate::report::ReportCommand::List {
        (
            Verdict::Healthy,
            format!(
                "{} GPU(s) visible; `gpuprobe` without `list` checks that they compute",
                r.devices.len()
            ),
        )
    } else if r.settings.no_context {
        (Verdict::Healthy, no_context_summary(r, probed.len()))
    } else if probed.is_empty() {
        (Verdict::NoGpu, "no GPU was probed".into())
    } else {
        passed_outcome(r, &probed)
    }
}

/// A probe that ran to its end: each device's status from its checks,
/// and the verdict and summary body from those.
pub(super) fn finished(r: &mut Report) -> (Verdict, String) {
    for d in &mut r.devices {
        d.status = device_status(d);
    }
    outcome(r)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::checks::progress::{Done, Progress};
    use crate::cuda::error::InFlight;
    use crate::judge::{conclude, Policy};
    use crate::probe::ending::Ending;
    use crate::probe::{empty_report, Options, Selection, Work};
    use crate::report::ReportCommand;

    fn options() -> Options {
        Options {
            command: ReportCommand::Probe,
            work: Work::List,
            size: 16,
            repeat: crate::cpu::Repeat::Times(1),
            devices: Selection::All,
            seed: 1,
            timeout: Duration::from_millis(300),
            events: false,
        }
    }

    /// Runs `stage` on a thread of its own: one driver call held until
    /// `release` (a wedge), or short calls one after another (slow work).
    fn run_stage(
        progress: &Arc<Progress>,
        stage: Stage,
        wedged: bool,
        release: &Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let (progress, release) = (Arc::clone(progress), Arc::clone(release));
        std::thread::spawn(move || {
            progress.stage(Scope::Machine, stage, || {
                if wedged {
                    let _call = InFlight::enter("cuInit");
                    while !release.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                } else {
                    while !release.load(Ordering::Relaxed) {
                        let _call = InFlight::enter("cuLaunchKernel");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                Ok(Done::pass((), String::new()))
            });
        })
    }

    fn timed_out_with(stages: &[(Stage, bool)]) -> Report {
        let progress = Arc::new(Progress::new(empty_report(&options())));
        let release = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = stages
            .iter()
            .map(|(stage, wedged)| run_stage(&progress, *stage, *wedged, &release))
            .collect();
        std::thread::sleep(Duration::from_millis(400));
        let (report, ending) =
            crate::probe::session::timed_out(&progress, Duration::from_millis(300));
        let report = conclude(report, &Ending::TimedOut(ending), &Policy::default());
        release.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        report
    }

    #[test]
    fn slow_work_is_not_called_a_wedge() {
        let report = timed_out_with(&[(Stage::Enumerate, false)]);
        assert_eq!(report.verdict, Verdict::Timeout);
        assert!(
            report.summary.contains("stage enumerate still working")
                && !report.summary.contains("wedged")
                && !report.summary.contains("stuck"),
            "{}",
            report.summary
        );
        let check = report
            .checks
            .iter()
            .find(|c| c.name == "enumerate")
            .unwrap();
        assert_eq!(check.status, CheckStatus::Timeout);
        assert!(check.detail.contains("still working"), "{}", check.detail);
    }

    #[test]
    fn a_call_that_never_returns_is_a_wedge_beside_slow_work() {
        let report = timed_out_with(&[(Stage::CuInit, true), (Stage::Enumerate, false)]);
        assert!(
            report.summary.contains("stage cu_init, stuck in cuInit")
                && report.summary.contains("(still working: stage enumerate)")
                && report.summary.contains("wedged"),
            "{}",
            report.summary
        );
        let check = report.checks.iter().find(|c| c.name == "cu_init").unwrap();
        assert!(
            check.detail.contains("no answer from cuInit"),
            "{}",
            check.detail
        );
    }
}
