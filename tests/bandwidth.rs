//! The bandwidth check (src/checks/bandwidth.rs) through the real binary and
//! the fake driver: what it measures and judges on a healthy GPU; `health`
//! skips it; a PCIe link trained down under load is diagnosed (GP031) only
//! with copies long enough to judge; refused pinned memory skips the host
//! copies without failing; `--bandwidth-size 0` turns the check off; data
//! that comes back changed fails the check; a copy that never returns ends
//! at the deadline.
#![cfg(target_os = "linux")]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{gpuprobe_with, parse_report, Run};
use gpuprobe::report::{
    Bandwidth, Check, CheckStatus, Figure, LinkReading, MissingInput, Report, Transfer, Verdict,
};
use serde_json::{json, Value};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];
/// Timed products long enough for the matmul to read the PCIe link at work
/// (checks::gpu::LINK_RAMP, 100 ms); 16³ products emulate in a few ms.
const AT_WORK: &[&str] = &["--size", "16", "--min-time", "400ms"];

fn check<'a>(report: &'a Report, name: &str) -> &'a Check {
    report.devices[0]
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check: {:?}", report.devices[0].checks))
}

fn bandwidth(report: &Report) -> &Bandwidth {
    report.devices[0]
        .bandwidth
        .as_ref()
        .unwrap_or_else(|| panic!("no bandwidth: {:?}", check(report, "bandwidth")))
}

fn efficiency(t: &Transfer) -> f64 {
    t.efficiency
        .and_then(Figure::value)
        .unwrap_or_else(|| panic!("no efficiency: {t:?}"))
}

/// The healthy scenario changed by `edit`, and its fake driver; the fake
/// reads the scenario file at run time, so both folders must outlive the
/// run.
struct Edited {
    _scenario: tempfile::TempDir,
    driver: tempfile::TempDir,
}

impl Edited {
    fn path(&self) -> &Path {
        self.driver.path()
    }
}

fn edited(edit: impl FnOnce(&mut Value)) -> Edited {
    let mut scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(common::scenario("healthy")).unwrap())
            .unwrap();
    edit(&mut scenario);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("edited.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    Edited {
        driver: common::fake_driver(&path),
        _scenario: tmp,
    }
}

/// gpuprobe against a prepared fake driver.
fn run_in(driver: &Path, args: &[&str]) -> Run {
    let output = Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .envs(common::scenario_env(driver))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let (json, report) = parse_report(&output.stdout);
    Run {
        output,
        json,
        report,
    }
}

#[test]
fn a_healthy_gpu_measures_every_path_near_what_it_should() {
    // 4 MiB: host copies long enough for GP031 to judge them.
    let run = gpuprobe_with("healthy", AT_WORK, &[("GPUPROBE_BANDWIDTH_SIZE", "4MiB")]);
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
    assert!(r.diagnoses.is_empty(), "{:?}", r.diagnoses);
    let c = check(r, "bandwidth");
    assert_eq!(c.status, CheckStatus::Pass, "{}", c.detail);
    assert!(c.detail.contains("came back intact"), "{}", c.detail);
    let b = bandwidth(r);
    let memory = r.devices[0].peak.as_ref().unwrap().memory_bandwidth_gbps;
    // The fake's model: 90% of the memory bandwidth, 85% of the link.
    for t in [&b.device_copy, &b.stream_kernel] {
        let t = t.as_ref().expect("device measurement");
        assert_eq!(t.expected_gbps, Some(memory));
        assert!((0.85..0.95).contains(&efficiency(t)), "{t:?}");
        assert_eq!(t.bytes, 4 << 20);
        assert!(t.iterations >= 1);
    }
    for t in [&b.host_to_device, &b.device_to_host] {
        let t = t.as_ref().expect("host copy");
        assert!((0.80..0.90).contains(&efficiency(t)), "{t:?}");
    }
    let link = b.pcie_link.as_ref().expect("a link reading");
    assert_eq!(
        (link.generation, link.width, link.reading),
        (5, 16, LinkReading::UnderLoad)
    );
    assert_eq!(b.memory_clock_mhz_under_load, Some(2619));
    assert!(!b.pinned_memory_refused);
}

/// `health` prints one line, so its report is read in-process
/// (`inner_health`), with the fake driver on that process's library path.
#[test]
fn health_skips_the_bandwidth_check_and_the_probe_runs_it() {
    common::run_inner("healthy", "inner_health");
}

#[test]
#[ignore = "needs the fake driver on its library path; run by health_skips_the_bandwidth_check_and_the_probe_runs_it"]
fn inner_health() {
    use gpuprobe::judge::{Plan, Policy};
    use gpuprobe::probe::{CpuWork, GpuWork, Options, Selection, Work};
    use gpuprobe::report::ReportCommand;
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside health_skips_the_bandwidth_check_and_the_probe_runs_it");
        return;
    }
    // The plans `health` and the probe build (src/app.rs), at test sizes.
    let plan = |command, tensor_cores, bandwidth, cpu| Plan {
        probe: Options {
            command,
            work: Work::Gpus(GpuWork {
                tensor_cores,
                bandwidth,
                burn: None,
                memtest: None,
                peers: None,
                counters_before: command != ReportCommand::Health,
                cpu,
            }),
            size: 16,
            repeat: gpuprobe::cpu::Repeat::Times(1),
            devices: Selection::All,
            seed: 1,
            timeout: Duration::from_secs(30),
            events: false,
        },
        policy: Policy::default(),
    };
    let health = plan(ReportCommand::Health, false, None, CpuWork::ReferenceOnly);
    let health = gpuprobe::judge::run(&health, |_, _| {});
    assert_eq!(health.verdict, Verdict::Healthy, "{}", health.summary);
    let c = check(&health, "bandwidth");
    assert_eq!(c.status, CheckStatus::Skip);
    assert!(c.detail.contains("health"), "{}", c.detail);
    // A check the plan leaves out says which command left it out.
    let t = check(&health, "tensor_cores");
    assert_eq!(t.status, CheckStatus::Skip);
    assert_eq!(t.detail, "not run: health checks the FP32 product only");
    assert!(health.devices[0].bandwidth.is_none());
    assert_eq!(health.settings.bandwidth_bytes, None);
    // The same run as the full probe measures.
    let probe = plan(
        ReportCommand::Probe,
        true,
        Some(64 << 10),
        CpuWork::Timed { baseline: true },
    );
    let probe = gpuprobe::judge::run(&probe, |_, _| {});
    assert_eq!(check(&probe, "bandwidth").status, CheckStatus::Pass);
    assert!(probe.devices[0].bandwidth.is_some());
    assert_eq!(probe.settings.bandwidth_bytes, Some(64 << 10));
}

#[test]
fn bandwidth_size_0_turns_the_check_off() {
    let by_flag = gpuprobe_with(
        "healthy",
        &[SMALL, &["--bandwidth-size", "0"]].concat(),
        &[],
    );
    let by_variable = gpuprobe_with("healthy", SMALL, &[("GPUPROBE_BANDWIDTH_SIZE", "0")]);
    for run in [by_flag, by_variable] {
        let r = &run.report;
        assert_eq!(r.verdict, Verdict::Healthy, "{}", r.summary);
        let c = check(r, "bandwidth");
        assert_eq!(c.status, CheckStatus::Skip, "{}", c.detail);
        assert!(c.detail.contains("--bandwidth-size 0"), "{}", c.detail);
        assert!(r.devices[0].bandwidth.is_none());
        assert_eq!(r.settings.bandwidth_bytes, Some(0));
    }
}

#[test]
fn a_link_trained_down_under_load_is_diagnosed_from_long_enough_copies() {
    // The matmul's products run long enough to read the link at work
    // (100 ms); the host copies' batches, a share of a 300 ms box, do not.
    let run = gpuprobe_with(
        "link-degraded-under-load",
        AT_WORK,
        &[("GPUPROBE_BANDWIDTH_SIZE", "4MiB")],
    );
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Degraded);
    let b = bandwidth(r);
    let link = b.pcie_link.as_ref().unwrap();
    assert_eq!(
        (link.generation, link.width, link.reading),
        (5, 4, LinkReading::UnderLoad)
    );
    // Against the x4 link it had, the copies are as good as a healthy
    // link's; against the x16 it should have, a fifth.
    let up = b.host_to_device.as_ref().unwrap();
    assert!((0.80..0.90).contains(&efficiency(up)), "{up:?}");
    let d = r
        .diagnoses
        .iter()
        .find(|d| d.code == "GP031")
        .unwrap_or_else(|| panic!("no GP031: {:?}", r.diagnoses));
    assert_eq!(d.devices, [0]);
    let evidence = d.evidence.join("\n");
    assert!(
        evidence.contains("x4 of x16") && evidence.contains("host to device"),
        "{evidence}"
    );
    assert!(r.diagnoses.iter().any(|d| d.code == "GP016"));

    // Copies of 64 KiB are mostly their fixed cost on a real GPU: reported,
    // not judged.
    let short = gpuprobe_with("link-degraded-under-load", AT_WORK, &[]);
    assert!(bandwidth(&short.report).host_to_device.is_some());
    let codes: Vec<&str> = short
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP016"]);
}

#[test]
fn refused_pinned_memory_skips_only_the_host_copies() {
    // Out of memory (2), and a refusal of another kind (801,
    // CUDA_ERROR_NOT_SUPPORTED, cuda.h): either way the optional host
    // copies are skipped with the driver's error kept, never failed.
    for code in [2, 801] {
        let driver = edited(|s| {
            s["faults"] = json!([{"call": "cuMemAllocHost_v2", "result": code}]);
        });
        let run = run_in(driver.path(), SMALL);
        let r = &run.report;
        assert_eq!(r.verdict, Verdict::Healthy, "{code}: {}", r.summary);
        let c = check(r, "bandwidth");
        assert_eq!(c.status, CheckStatus::Pass, "{code}: {}", c.detail);
        assert!(
            c.detail.contains("refused") && c.detail.contains("came back intact"),
            "{}",
            c.detail
        );
        let error = c.error.as_ref().expect("the refusal is kept");
        assert_eq!(
            (error.call.as_str(), error.code),
            ("cuMemAllocHost_v2", code)
        );
        let b = bandwidth(r);
        assert!(b.pinned_memory_refused);
        assert!(b.host_to_device.is_none() && b.device_to_host.is_none());
        assert!(b.pcie_link.is_none());
        assert!(b.device_copy.is_some() && b.stream_kernel.is_some());
    }
}

#[test]
fn data_that_comes_back_changed_fails_the_check() {
    // Pinned memory refused, so the check's way back is cuMemcpyDtoH_v2;
    // the matmul (two products) and the tensor cores (two precisions) make
    // the four before it.
    let driver = edited(|s| {
        s["faults"] = json!([
            {"call": "cuMemAllocHost_v2", "result": 2},
            {"call": "cuMemcpyDtoH_v2", "corrupt": "exponent_bit", "after": 4}
        ]);
    });
    let run = run_in(driver.path(), SMALL);
    let r = &run.report;
    assert_eq!(check(r, "verify").status, CheckStatus::Pass);
    let c = check(r, "bandwidth");
    assert_eq!(c.status, CheckStatus::Fail, "{}", c.detail);
    assert!(c.detail.contains("came back changed"), "{}", c.detail);
    assert_eq!(r.verdict, Verdict::Failed);
    // What was measured is still reported.
    assert!(bandwidth(r).device_copy.is_some());
}

#[test]
fn a_copy_that_never_returns_ends_at_the_deadline() {
    let driver = edited(|s| s["faults"] = json!([{"call": "cuMemcpyDtoD_v2", "hang": true}]));
    let started = Instant::now();
    let run = run_in(
        driver.path(),
        &["--size", "16", "--iterations", "1", "--timeout", "3s"],
    );
    // The deadline plus one second at most.
    assert!(started.elapsed() < Duration::from_secs(4));
    let r = &run.report;
    assert_eq!(r.verdict, Verdict::Timeout);
    let c = check(r, "bandwidth");
    assert_eq!(c.status, CheckStatus::Timeout);
    assert!(c.detail.contains("cuMemcpyDtoD_v2"), "{}", c.detail);
}

#[test]
fn every_gpu_of_several_gets_its_turn_at_the_host_link() {
    let run = gpuprobe_with("multi-gpu-one-corrupt", SMALL, &[]);
    for d in &run.report.devices {
        if d.index == 2 {
            // Its product is wrong: the checks after `verify` did not run.
            assert!(d.bandwidth.is_none());
            continue;
        }
        let b = d.bandwidth.as_ref().unwrap();
        // The GPUs share one uplink (the scenario's `shared_host_link`):
        // only copies that took turns each reach the link's full share
        // (the scenario's 85%); copies overlapping another GPU's get half.
        for x in [&b.host_to_device, &b.device_to_host] {
            let e = x
                .as_ref()
                .and_then(|x| x.efficiency)
                .and_then(Figure::value)
                .unwrap_or_else(|| panic!("GPU {}: {b:?}", d.index));
            assert!(
                e > 0.8,
                "GPU {}: efficiency {e}: copies overlapped",
                d.index
            );
        }
    }
}

#[test]
fn a_mig_instance_is_measured_but_not_judged() {
    let run = gpuprobe_with("mig", SMALL, &[]);
    let b = bandwidth(&run.report);
    for t in [&b.device_copy, &b.host_to_device] {
        let t = t.as_ref().unwrap();
        assert!(t.gbps > 0.0);
        assert_eq!(
            t.efficiency,
            Some(Figure::Missing(MissingInput::MigInstance))
        );
    }
}
