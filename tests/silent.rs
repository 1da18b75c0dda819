//! Faults a GPU or a node hides until they break a job, against the fake
//! driver: an NVSwitch node whose fabric manager has not registered the
//! GPUs (CUDA's 802, NVML's GPU fabric info) and a GPU whose driver asks
//! for a recovery action (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, R565 on).
#![cfg(target_os = "linux")]
mod common;

use std::time::{Duration, Instant};

use common::{command_with, gpuprobe_with};
use gpuprobe::report::{FabricState, Reading, RecoveryAction, Unavailable, Verdict};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// 802 with the fabric manager not running, registering, or failed: one
/// diagnosis naming the service, each GPU's fabric state as evidence, exit
/// 3 at once (cuInit is asked once, never retried in a loop).
#[test]
fn cuda_802_names_the_fabric_manager_with_each_gpus_state() {
    for (scenario, gpus, state, says) in [
        (
            "fabric-manager-not-running",
            8,
            FabricState::NotStarted,
            "not started",
        ),
        (
            "fabric-registration-in-progress",
            2,
            FabricState::InProgress,
            "in progress",
        ),
        (
            "fabric-registration-failed",
            2,
            FabricState::Completed,
            "completed with NVML error 999",
        ),
    ] {
        let started = Instant::now();
        let run = gpuprobe_with(scenario, SMALL, &[]);
        assert!(started.elapsed() < Duration::from_secs(20), "{scenario}");
        let r = &run.report;
        assert_eq!((r.verdict, run.code()), (Verdict::NoGpu, 3), "{scenario}");
        assert_eq!(r.nvml.fabric.len(), gpus, "{scenario}");
        assert_eq!(r.nvml.fabric[gpus - 1].state, state, "{scenario}");
        let d = &r.diagnoses[0];
        assert_eq!(d.code, "GP037", "{scenario}: {}", r.summary);
        assert!(
            d.evidence[0].contains("cuInit returned 802"),
            "{:?}",
            d.evidence
        );
        assert_eq!(d.evidence.len(), 1 + gpus, "{scenario}: {:?}", d.evidence);
        assert!(
            d.evidence.iter().any(|e| e.contains(says)),
            "{scenario}: {:?}",
            d.evidence
        );
        assert!(d.fix.contains("nvidia-fabricmanager"), "{}", d.fix);
    }
    // The failed registration's health mask: bandwidth degraded on GPU 1.
    let run = gpuprobe_with("fabric-registration-failed", SMALL, &[]);
    let f = &run.report.nvml.fabric;
    assert_eq!((f[0].status, f[1].status), (Some(0), Some(999)));
    assert_eq!(
        (f[0].bandwidth_degraded, f[1].bandwidth_degraded),
        (Some(false), Some(true))
    );
    // `health` says the same in its one line, exit 1.
    let (mut cmd, _dir) = command_with("fabric-manager-not-running");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("GP037"), "{}", text(&out));
}

/// A machine with no fabric (the healthy H100 of a PCIe server) lists none,
/// and its GPUs' recovery action, on a driver before R565, is not
/// supported: no diagnosis either way.
#[test]
fn no_fabric_and_an_older_driver_are_no_fault() {
    let run = gpuprobe_with("healthy", SMALL, &[]);
    let r = &run.report;
    assert!(r.nvml.fabric.is_empty());
    let t = r.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(
        t.recovery_action,
        Reading::Unavailable(Unavailable::NotSupported)
    );
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
}

/// A pending recovery action fails the GPU whatever its compute did, with
/// the action the driver asks for, in the probe and in `health
/// --no-context` (which makes no context and reads NVML only).
#[test]
fn a_pending_recovery_action_fails_the_gpu_with_that_action() {
    let run = gpuprobe_with("recovery-action-reset", SMALL, &[]);
    let r = &run.report;
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Failed, 1),
        "{}",
        r.summary
    );
    let t = r.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.recovery_action, Reading::Value(RecoveryAction::GpuReset));
    let d = r.diagnoses.iter().find(|d| d.code == "GP038").unwrap();
    assert_eq!(d.devices, [0]);
    assert!(d.evidence[0].contains("gpu_reset"), "{:?}", d.evidence);
    assert!(d.evidence[0].contains("nvidia-smi -r"), "{:?}", d.evidence);
    let (mut cmd, _dir) = command_with("recovery-action-reset");
    let out = cmd.args(["health", "--no-context"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("GP038"), "{}", text(&out));
}
