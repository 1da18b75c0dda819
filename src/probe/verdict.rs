//! From checks to a verdict: each device's status, the overall verdict and
//! the one-sentence summary, and the partial report the watchdog returns
//! when the deadline passes.
use std::time::{Duration, Instant};

use super::finish;
use super::progress::{Progress, Scope};
use crate::report::{CheckStatus, DeviceReport, DeviceStatus, Report, Verdict};
use crate::units::flops;

pub(super) fn timed_out(progress: &Progress, started: Instant, timeout: Duration) -> Report {
    let (mut report, hung) = progress.snapshot_timed_out();
    let places: Vec<String> = hung
        .iter()
        .map(|h| {
            let call = h.call.map_or(String::new(), |c| format!(", stuck in {c}"));
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
        })
        .collect();
    report.verdict = Verdict::Timeout;
    report.summary =
        format!(
        "no answer within {}: {}; the driver call there never returned (a wedged GPU or driver)",
        humantime::format_duration(timeout),
        if places.is_empty() { "between stages".to_string() } else { places.join(", ") }
    );
    finish(report, started)
}

pub(super) fn set_outcome(progress: &Progress, verdict: Verdict, summary: String) {
    progress.update(|r| {
        r.verdict = verdict;
        r.summary = summary;
    });
}

/// Sets each device's status and the verdict from the checks.
pub(super) fn decide(progress: &Progress) {
    progress.update(|r| {
        let machine_failed = r.checks.iter().any(|c| c.status == CheckStatus::Fail);
        for d in &mut r.devices {
            if d.status == DeviceStatus::Skipped {
                continue;
            }
            d.status = if d.checks.iter().any(|c| c.status == CheckStatus::Fail) {
                DeviceStatus::Fail
            } else if d.checks.iter().any(|c| c.status == CheckStatus::Warn) {
                DeviceStatus::Warn
            } else {
                DeviceStatus::Pass
            };
        }
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
        let passed = probed.len() - failed.len();
        let list_only = r.command == crate::report::ReportCommand::List;
        let (verdict, summary) = if !failed.is_empty() {
            let names: Vec<String> = failed
                .iter()
                .map(|d| {
                    let stage = d
                        .checks
                        .iter()
                        .find(|c| c.status == CheckStatus::Fail)
                        .map_or("?", |c| c.name.as_str());
                    format!(
                        "GPU {} ({}) failed {stage}",
                        d.index,
                        d.uuid.as_deref().unwrap_or("uuid unknown")
                    )
                })
                .collect();
            (
                Verdict::Failed,
                format!(
                    "{}; {passed} of {} GPU(s) passed",
                    names.join("; "),
                    probed.len()
                ),
            )
        } else if machine_failed {
            let c = r
                .checks
                .iter()
                .find(|c| c.status == CheckStatus::Fail)
                .map_or(String::new(), |c| c.detail.clone());
            (Verdict::Failed, c)
        } else if list_only {
            (
                Verdict::Healthy,
                format!(
                    "{} GPU(s) visible; `gpuprobe` without `list` checks that they compute",
                    r.devices.len()
                ),
            )
        } else if probed.is_empty() {
            (Verdict::NoGpu, "no GPU was probed".into())
        } else {
            let best = probed
                .iter()
                .filter_map(|d| d.matmul.as_ref())
                .map(|m| m.gpu_gflops)
                .fold(0.0, f64::max);
            let warned = probed.iter().any(|d| d.status == DeviceStatus::Warn);
            let verdict = if warned {
                Verdict::Degraded
            } else {
                Verdict::Healthy
            };
            let speed = r.cpu.as_ref().map_or(String::new(), |c| {
                format!(
                    ", up to {} ({:.1}x the CPU)",
                    flops(best),
                    best / c.gflops.max(f64::MIN_POSITIVE)
                )
            });
            let warnings: Vec<String> = probed
                .iter()
                .flat_map(|d| {
                    d.checks
                        .iter()
                        .filter(|c| c.status == CheckStatus::Warn)
                        .map(move |c| format!("GPU {} {}: {}", d.index, c.name, c.detail))
                })
                .collect();
            let warnings = if warnings.is_empty() {
                String::new()
            } else {
                format!("; warnings: {}", warnings.join("; "))
            };
            (
                verdict,
                format!(
                    "{passed} of {} GPU(s) computed correct results{speed}{warnings}",
                    probed.len()
                ),
            )
        };
        r.verdict = verdict;
        r.summary = summary;
    });
}
