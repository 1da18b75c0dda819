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
        assert_eq!(d.code, "GP038", "{scenario}: {}", r.summary);
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
    assert!(text(&out).contains("GP038"), "{}", text(&out));
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
    let d = r.diagnoses.iter().find(|d| d.code == "GP039").unwrap();
    assert_eq!(d.devices, [0]);
    assert!(d.evidence[0].contains("gpu_reset"), "{:?}", d.evidence);
    assert!(d.evidence[0].contains("nvidia-smi -r"), "{:?}", d.evidence);
    let (mut cmd, _dir) = command_with("recovery-action-reset");
    let out = cmd.args(["health", "--no-context"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("GP039"), "{}", text(&out));
}

/// NVML's events, watched for the probe's life: a hardware Xid fails the
/// GPU with the catalog's action; another process's application Xid is
/// info only; one that repeats is a warning; one that meets gpuprobe's own
/// verified kernels is the GPU's; a refused registration is no fault.
#[test]
fn xid_events_are_judged_by_the_catalog_and_by_whose_work_met_them() {
    use gpuprobe::report::{EventKind, EventsStatus};
    for (scenario, code, verdict, exit, says) in [
        ("xid-48-during-probe", "GP040", Verdict::Failed, 1, "Xid 48"),
        (
            "xid-13-other-process",
            "GP042",
            Verdict::Healthy,
            0,
            "another process's",
        ),
        (
            "xid-31-repeats",
            "GP041",
            Verdict::Degraded,
            0,
            "seen 3 times",
        ),
        (
            "xid-31-own-kernel",
            "GP040",
            Verdict::Failed,
            1,
            "gpuprobe's own",
        ),
    ] {
        let run = gpuprobe_with(scenario, SMALL, &[]);
        let r = &run.report;
        assert_eq!(
            (r.verdict, run.code()),
            (verdict, exit),
            "{scenario}: {}",
            r.summary
        );
        let events = r.events.as_ref().expect("events watched by the probe");
        assert_eq!(events.status, EventsStatus::Watched, "{scenario}");
        assert!(events.gpus[0].registered.contains(&EventKind::CriticalXid));
        assert!(
            events
                .events
                .iter()
                .any(|e| e.kind == EventKind::CriticalXid
                    && e.nvml_index == Some(0)
                    && e.uuid == r.devices[0].uuid),
            "{scenario}: {:?}",
            events.events
        );
        let d = r
            .diagnoses
            .iter()
            .find(|d| d.code == code)
            .unwrap_or_else(|| panic!("{scenario}: no {code}: {:?}", r.diagnoses));
        assert_eq!(d.devices, [0], "{scenario}");
        assert_eq!(d.evidence.len(), 1, "{scenario}: {:?}", d.evidence);
        assert!(d.evidence[0].contains(says), "{scenario}: {:?}", d.evidence);
    }
    // Registration refused: not available, said so, healthy.
    let run = gpuprobe_with("events-not-supported", SMALL, &[]);
    let events = run.report.events.as_ref().unwrap();
    assert_eq!(events.status, EventsStatus::NotAvailable);
    assert!(events.reason.is_some() && events.gpus[0].error.is_some());
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    // `list` and `health` watch no events.
    let (mut cmd, _dir) = command_with("xid-48-during-probe");
    let out = cmd.args(["list", "--json"]).output().unwrap();
    let (_, list) = common::parse_report(&out.stdout);
    assert!(list.events.is_none());
}

/// A GPU that falls off the bus mid-run: the Xid 79 the driver logged is
/// named with its GPU even though the GPU answers nothing any more, and it
/// joins GP014's evidence (one cause, one diagnosis).
#[test]
fn a_gpu_lost_mid_run_is_one_diagnosis_with_its_xid() {
    let run = gpuprobe_with("gpu-lost-mid-run", SMALL, &[]);
    let r = &run.report;
    assert_eq!((r.verdict, run.code()), (Verdict::Failed, 1));
    let codes: Vec<&str> = r.diagnoses.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["GP014"], "{:?}", r.diagnoses);
    let evidence = r.diagnoses[0].evidence.join("\n");
    assert!(
        evidence.contains("also GP040") && evidence.contains("Xid 79"),
        "{evidence}"
    );
    assert!(
        evidence.contains(r.devices[0].uuid.as_deref().unwrap()),
        "{evidence}"
    );
}
