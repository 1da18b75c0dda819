//! NVML's error counters over a run, against the fake driver: the PCIe
//! replay counter and the ECC counts (device memory and SRAM) read before
//! and after gpuprobe's work, what the run added, and how the diagnoses
//! judge it (GP050 replays past DCGM's limits, GP051 correctable errors
//! faster than Azure's counts allow, GP052 any uncorrectable SRAM error);
//! a few replays and corrected errors say nothing; an older driver without
//! the SRAM call reports it not supported.
#![cfg(target_os = "linux")]
mod common;

use common::{command_with_file, gpuprobe_with, parse_report};
use gpuprobe::report::{Reading, Report, RunCounters, Unavailable, Verdict};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

fn counters(r: &Report) -> &RunCounters {
    r.devices[0].counters.as_ref().expect("counters read")
}

fn codes(r: &Report) -> Vec<&str> {
    r.diagnoses.iter().map(|d| d.code.as_str()).collect()
}

/// A few replays and corrected errors while the GPU worked: counted, and
/// nothing said.
#[test]
fn a_few_replays_and_corrected_errors_are_reported_and_not_judged() {
    let run = gpuprobe_with("counters-few-errors", SMALL, &[]);
    let r = &run.report;
    let c = counters(r);
    assert!(c.seconds > 0.0);
    assert_eq!(c.pcie_replays.before, Reading::Value(40));
    assert_eq!(c.pcie_replays.delta, Some(6), "{c:?}");
    assert_eq!(c.ecc_corrected.delta, Some(3), "{c:?}");
    assert_eq!(c.sram_uncorrected.delta, Some(0));
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Healthy, 0),
        "{}",
        r.summary
    );
    assert!(codes(r).is_empty(), "{:?}", codes(r));
}

/// A healthy GPU's counters do not move: every delta 0.
#[test]
fn an_idle_link_and_clean_memory_add_nothing() {
    let run = gpuprobe_with("healthy", SMALL, &[]);
    for (name, change) in counters(&run.report).named() {
        assert_eq!(change.delta, Some(0), "{name}");
    }
}

/// Replays past DCGM's 80 a run: GP050, a warning with the numbers.
#[test]
fn replays_past_dcgms_limit_degrade_the_gpu() {
    let run = gpuprobe_with("counters-replays-fast", SMALL, &[]);
    let r = &run.report;
    assert!(counters(r).pcie_replays.delta.unwrap() > 80);
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Degraded, 0),
        "{}",
        r.summary
    );
    let d = r.diagnoses.iter().find(|d| d.code == "GP050").unwrap();
    assert_eq!(d.devices, [0]);
    assert!(d.evidence[0].contains("limit 80"), "{:?}", d.evidence);
    assert!(d.evidence[0].contains("per minute"), "{:?}", d.evidence);
}

/// Corrected errors in device memory faster than Azure's count a day: GP051.
#[test]
fn corrected_errors_in_a_stream_degrade_the_gpu() {
    let run = gpuprobe_with("counters-ecc-corrected-fast", SMALL, &[]);
    let r = &run.report;
    assert!(counters(r).ecc_corrected.delta.unwrap() > 13_889);
    assert_eq!(codes(r), ["GP051"], "{}", r.summary);
    assert_eq!(r.verdict, Verdict::Degraded);
    assert!(
        r.diagnoses[0].evidence[0].contains("device memory"),
        "{:?}",
        r.diagnoses[0].evidence
    );
}

/// Any uncorrectable SRAM error: GP052 fails the GPU.
#[test]
fn an_uncorrectable_sram_error_fails_the_gpu() {
    let run = gpuprobe_with("counters-sram-uncorrectable", SMALL, &[]);
    let r = &run.report;
    assert!(counters(r).sram_uncorrected.delta.unwrap() > 0);
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Failed, 1),
        "{}",
        r.summary
    );
    assert_eq!(codes(r), ["GP052"]);
}

/// Driver 470's NVML has no nvmlDeviceGetSramEccErrorStatus: the SRAM
/// counts are `not_supported` and judge nothing; the others are read.
#[test]
fn a_driver_without_the_sram_call_reports_it_not_supported() {
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::scenario("counters-sram-uncorrectable")).unwrap(),
    )
    .unwrap();
    scenario["nvml"] = serde_json::json!({ "driver_version": "470.256.02" });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-driver.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let (mut cmd, _fake) = command_with_file(&path);
    let out = cmd.arg("--json").args(SMALL).output().unwrap();
    let (_, r) = parse_report(&out.stdout);
    let c = counters(&r);
    let not_supported = Reading::Unavailable(Unavailable::NotSupported);
    assert_eq!(c.sram_uncorrected.after, not_supported);
    assert_eq!(c.sram_uncorrected.delta, None);
    assert_eq!(c.pcie_replays.delta, Some(0));
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
}

/// The driver's flag for memory it cannot repair (R590 on) fails the GPU
/// as GP015; before R590 it is `not_supported`, no fault.
#[test]
fn memory_the_driver_cannot_repair_fails_the_gpu() {
    let run = gpuprobe_with("ecc-unrepairable-memory", SMALL, &[]);
    let r = &run.report;
    let t = r.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(t.unrepairable_memory, Reading::Value(true));
    assert_eq!(
        (r.verdict, run.code()),
        (Verdict::Failed, 1),
        "{}",
        r.summary
    );
    let d = r.diagnoses.iter().find(|d| d.code == "GP015").unwrap();
    assert!(d.evidence[0].contains("cannot repair"), "{:?}", d.evidence);

    let run = gpuprobe_with("healthy", SMALL, &[]);
    let t = run.report.devices[0].telemetry.as_ref().unwrap();
    assert_eq!(
        t.unrepairable_memory,
        Reading::Unavailable(Unavailable::NotSupported)
    );
}
