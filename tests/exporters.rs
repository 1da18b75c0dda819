//! Snapshots of the human and Prometheus renderings of fixed reports
//! (tests/fixtures, benches/report-one-gpu.json), so any change to what a
//! person or a scraper sees is reviewed. `cargo insta review` updates them.
mod common;

use gpuprobe::export::{Exporter, Prometheus, Text};
use gpuprobe::report::Report;

fn fixture(path: &str) -> Report {
    let text = std::fs::read(common::root().join(path)).unwrap();
    common::parse_report(&text).1
}

#[test]
fn text_healthy_gpu() {
    insta::assert_snapshot!(Text { color: false }.render(&fixture("benches/report-one-gpu.json")));
}

#[test]
fn text_no_driver() {
    insta::assert_snapshot!(Text { color: false }.render(&fixture("tests/fixtures/no-driver.json")));
}

#[test]
fn text_gpu_with_memory_errors() {
    insta::assert_snapshot!(
        Text { color: false }.render(&fixture("tests/fixtures/ecc-uncorrectable.json"))
    );
}

#[test]
fn prometheus_healthy_gpu() {
    insta::assert_snapshot!(Prometheus.render(&fixture("benches/report-one-gpu.json")));
}

#[test]
fn prometheus_gpu_with_memory_errors() {
    insta::assert_snapshot!(Prometheus.render(&fixture("tests/fixtures/ecc-uncorrectable.json")));
}

#[test]
fn colour_only_when_asked() {
    let report = fixture("tests/fixtures/ecc-uncorrectable.json");
    assert!(Text { color: true }.render(&report).contains("\x1b[31m"));
    assert!(!Text { color: false }.render(&report).contains('\x1b'));
}

/// A GPU whose compute did not run (busy) is shown as not verified, never
/// PASS, and each check that did not run is listed with its reason, in
/// text and in Prometheus.
#[test]
fn a_busy_gpu_is_not_shown_as_passed() {
    use gpuprobe::report::{CheckStatus, NotRun, NotVerified};
    let mut report = fixture("benches/report-one-gpu.json");
    let d = &mut report.devices[0];
    d.compute_not_verified = Some(NotVerified::BusyComputeMode);
    d.matmul = None;
    for c in &mut d.checks {
        if c.name != "identify" && c.name != "telemetry" {
            c.status = CheckStatus::Skip;
            c.not_run = Some(NotRun::Busy);
        }
    }
    let text = Text { color: false }.render(&report);
    assert!(
        text.contains("[NOT VERIFIED]") && !text.contains("[PASS]"),
        "{text}"
    );
    assert!(
        text.contains("not run         busy: context, memory"),
        "{text}"
    );
    let metrics = Prometheus.render(&report);
    assert!(
        metrics.contains("check=\"matmul\",reason=\"busy\"} 1")
            && metrics.contains("gpuprobe_device_compute_verified{")
            && metrics.contains("gpuprobe_device_check_not_run{"),
        "{metrics}"
    );
}
