//! `gpuprobe burn` against the fake driver: a steady GPU passes, a GPU
//! whose clock falls mid-burn (the scenario's `under_load` phases) is caught
//! and explained, one that turns wrong when hot fails with the time of each
//! error, an uncorrectable ECC error ends that GPU's burn and is judged by
//! what NVML says of it (contained: reset when convenient; remap failed:
//! out of service), and SIGINT and the deadline end the burn with a report.
#![cfg(target_os = "linux")]
mod common;

use std::time::{Duration, Instant};

use common::{command_with, gpuprobe_args, parse_report, Run};
use gpuprobe::report::{BurnEnd, BurnErrorKind, CheckStatus, DeviceStatus, Report, Verdict};

/// A short burn of a small product: the emulator is slow.
const SHORT: &[&str] = &[
    "--size",
    "32",
    "--iterations",
    "1",
    "--sample-every",
    "200ms",
];

fn burn(scenario: &str, args: &[&str]) -> Run {
    let mut all = vec!["burn", "--json"];
    all.extend(SHORT);
    all.extend(args);
    if !args.contains(&"--verify-every") {
        all.extend(["--verify-every", "500ms"]);
    }
    gpuprobe_args(scenario, &all)
}

fn burn_check(report: &Report) -> (CheckStatus, String) {
    let c = report.devices[0]
        .checks
        .iter()
        .find(|c| c.name == "burn")
        .expect("a burn check");
    (c.status, c.detail.clone())
}

#[test]
fn a_steady_gpu_passes_with_every_comparison_matching() {
    // Modelled launch times: the emulator's own pace on a busy test
    // machine is no steady GPU.
    let run = burn("burn-steady", &["--duration", "1500ms"]);
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_eq!(
        run.report.verdict,
        Verdict::Healthy,
        "{}",
        run.report.summary
    );
    assert_eq!(burn_check(&run.report).0, CheckStatus::Pass);
    let b = run.report.devices[0].burn.as_ref().expect("burn report");
    assert_eq!(b.ended, BurnEnd::Completed);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert!(b.verifications >= 2, "every 500ms and at the end: {b:?}");
    assert!(b.intervals.len() >= 2);
    assert_eq!(
        b.products,
        b.intervals
            .iter()
            .map(|i| u64::from(i.products))
            .sum::<u64>()
    );
    assert!(b.intervals.iter().all(|i| i.sm_clock_mhz == Some(1980)));
    assert!(b.duration_ms >= 1500.0);
    let settings = run.report.settings.burn.expect("burn settings");
    assert_eq!(
        (settings.duration_ms as u64, settings.verify_ms as u64),
        (1500, 500)
    );
    assert!(
        run.report.diagnoses.is_empty(),
        "{:?}",
        run.report.diagnoses
    );
}

#[test]
fn a_clock_that_drops_mid_burn_is_caught_and_explained() {
    let run = burn("burn-throttles", &["--duration", "2s"]);
    assert_eq!(run.code(), 0, "a slowdown is a warning");
    assert_eq!(run.report.verdict, Verdict::Degraded);
    // The slowdown is recorded by the check and judged once, by GP032,
    // whose line leads a one-sentence summary.
    let (status, detail) = burn_check(&run.report);
    assert_eq!(status, CheckStatus::Pass);
    assert!(detail.contains("(50% of the best)"), "{detail}");
    let summary = &run.report.summary;
    assert!(
        summary.starts_with("GP032: A GPU slowed down under sustained load; ")
            && summary.len() < 160
            && !summary.contains("compared bit for bit"),
        "{summary}"
    );
    let b = run.report.devices[0].burn.as_ref().unwrap();
    // Cool and fast first, then held at half the clock, half the pace.
    let first = &b.intervals[0];
    assert_eq!(first.sm_clock_mhz, Some(1980));
    assert_eq!(first.throttle_reasons, Some(Vec::new()));
    let worst = b.worst_interval.as_ref().unwrap();
    assert_eq!(worst.sm_clock_mhz, Some(990));
    assert!(worst.at_ms > first.at_ms);
    let ratio = b.worst_over_best.unwrap();
    assert!((ratio - 0.5).abs() < 0.02, "{ratio}");
    assert_eq!(b.sm_clock_min_mhz, Some(990));
    assert_eq!(b.temperature_max_celsius, Some(92));
    let gp032 = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP032")
        .expect("GP032");
    let evidence = gp032.evidence.join("\n");
    assert!(
        evidence.contains("SM clock 990 MHz of its maximum 1980 MHz")
            && evidence.contains("hw_thermal_slowdown")
            && evidence.contains("92 °C"),
        "{evidence}"
    );
    assert_eq!(gp032.devices, [0]);
}

#[test]
fn wrong_results_under_load_fail_with_their_times() {
    // Compared often, so that some comparisons come before the GPU has
    // worked the scenario's 2.5 s (modelled) and turned wrong.
    let run = burn(
        "burn-corrupts-when-hot",
        &["--duration", "3s", "--verify-every", "100ms"],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    assert_eq!(run.report.verdict, Verdict::Failed);
    let d = &run.report.devices[0];
    // The probe's own check ran cool, and passed.
    let verify = d.checks.iter().find(|c| c.name == "verify").unwrap();
    assert_eq!(verify.status, CheckStatus::Pass);
    assert_eq!(burn_check(&run.report).0, CheckStatus::Fail);
    let b = d.burn.as_ref().unwrap();
    let wrong: Vec<_> = b
        .errors
        .iter()
        .filter(|e| e.kind == BurnErrorKind::WrongResult)
        .collect();
    assert!(!wrong.is_empty(), "{:?}", b.errors);
    assert!(wrong.iter().all(|e| e.at_ms > 0.0));
    // Every product was compared on the GPU, and those copied back show
    // which element differs.
    assert!(b.compared_on_gpu);
    assert!(wrong
        .iter()
        .any(|e| e.detail.contains("compared on the GPU")));
    assert!(wrong
        .iter()
        .any(|e| e.detail.contains("1 of 1024 elements")));
    assert!(b
        .errors
        .iter()
        .any(|e| e.kind == BurnErrorKind::EccUncorrected));
    assert_eq!(b.ecc_uncorrected_delta, Some(2));
    // Some comparisons matched before the GPU turned wrong.
    assert!(b.intervals.iter().any(|i| i.verified == Some(true)));
    assert!(b.intervals.iter().any(|i| i.verified == Some(false)));
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    // NVML then shows uncorrectable errors with no row remap pending to
    // contain them: GP015 (out of service) leads, and what the burn met is
    // its evidence (one cause, one diagnosis).
    assert!(!codes.contains(&"GP033"), "{codes:?}");
    let gp015 = run
        .report
        .diagnoses
        .iter()
        .find(|d| d.code == "GP015")
        .expect("GP015");
    assert!(
        gp015.evidence.iter().any(|e| e.starts_with("also GP033: ")),
        "{:?}",
        gp015.evidence
    );
}

#[test]
fn a_contained_ecc_error_ends_one_gpus_burn_and_asks_for_a_reset_not_a_drain() {
    // GPU 0 meets an uncorrectable ECC error after 2.5 s of (modelled)
    // work, contained: its context gets CUDA_ERROR_ECC_UNCORRECTABLE (214),
    // sticky, and NVML then shows one row remap pending, none failed.
    let run = burn("burn-ecc-contained", &["--duration", "3s"]);
    // NVIDIA's GPU Memory Error Management: a contained error needs a reset
    // when convenient, not the node out of service.
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_eq!(
        run.report.verdict,
        Verdict::Degraded,
        "{}",
        run.report.summary
    );
    let codes: Vec<&str> = run
        .report
        .diagnoses
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    assert_eq!(codes, ["GP036"], "{:?}", run.report.diagnoses);
    let gp036 = &run.report.diagnoses[0];
    assert_eq!(gp036.devices, [0]);
    let (hit, other) = (&run.report.devices[0], &run.report.devices[1]);
    // GPU 0's burn ended at the error, with the interval and the error.
    let b = hit.burn.as_ref().unwrap();
    assert_eq!(b.ended, BurnEnd::Error);
    let error = b
        .errors
        .iter()
        .find(|e| e.kind == BurnErrorKind::EccUncorrectable)
        .expect("the 214 recorded");
    assert!(error.detail.contains("214"), "{}", error.detail);
    // The interval it ended is the one after the last measured.
    assert_eq!(error.interval, Some(b.intervals.len() as u64));
    assert!(b.products > 0);
    assert!(gp036
        .evidence
        .iter()
        .any(|e| e.contains("under sustained load") && e.contains("214")));
    let c = hit.checks.iter().find(|c| c.name == "burn").unwrap();
    assert_eq!(c.status, CheckStatus::Warn, "{}", c.detail);
    // GPU 1 burned on to the end, and passed.
    let b1 = other.burn.as_ref().unwrap();
    assert_eq!(b1.ended, BurnEnd::Completed);
    assert!(b1.errors.is_empty(), "{:?}", b1.errors);
    assert!(other
        .checks
        .iter()
        .all(|c| matches!(c.status, CheckStatus::Pass | CheckStatus::Skip)));
    assert_eq!(other.status, DeviceStatus::Pass);
}

#[test]
fn an_ecc_error_whose_row_remap_failed_takes_the_gpu_out_of_service() {
    // burn-ecc-contained with the remap failed: the GPU has no spare row
    // left (NVIDIA, GPU Memory Error Management: replace it). GP015 leads,
    // and what the burn met joins it (one cause, one diagnosis).
    let mut scenario: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::scenario("burn-ecc-contained")).unwrap(),
    )
    .unwrap();
    scenario["devices"][0]["under_load"][0]["remapped_rows_failure"] = true.into();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("burn-ecc-remap-failed.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let (mut cmd, _dir) = common::command_with_file(&path);
    let out = cmd
        .args([
            "burn",
            "--json",
            "--duration",
            "3s",
            "--verify-every",
            "500ms",
        ])
        .args(SHORT)
        .output()
        .unwrap();
    let report = parse_report(&out.stdout).1;
    assert_eq!(out.status.code(), Some(1), "{}", report.summary);
    assert_eq!(report.verdict, Verdict::Failed);
    let codes: Vec<&str> = report.diagnoses.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["GP015"], "{:?}", report.diagnoses);
    let gp015 = &report.diagnoses[0];
    assert_eq!(gp015.devices, [0]);
    assert!(
        gp015
            .evidence
            .iter()
            .any(|e| e.starts_with("also GP033: ") && e.contains("214")),
        "{:?}",
        gp015.evidence
    );
    assert!(report.summary.starts_with("GP015: "), "{}", report.summary);
    // GPU 1 burned on and passed.
    assert_eq!(report.devices[1].status, DeviceStatus::Pass);
}

/// How long the fake GPU of a prepared scenario folder has worked, ms (what
/// its libcuda publishes for NVML: `worked_ms` in the FAKEGPU_RM file).
fn worked_ms(dir: &std::path::Path) -> f64 {
    let rm = common::scenario_env(dir)
        .into_iter()
        .find(|(k, _)| k == "FAKEGPU_RM")
        .map(|(_, v)| std::path::PathBuf::from(v).join("gpu0"))
        .expect("FAKEGPU_RM");
    std::fs::read_to_string(rm)
        .ok()
        .and_then(|t| t.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0.0)
}

/// A 10-minute burn of `scenario`, sent SIGINT once `ready` says so about
/// its prepared folder; must end within `within` of the signal. Its exit
/// code and report.
fn interrupted_burn(
    scenario: &str,
    ready: impl Fn(&std::path::Path) -> bool,
    within: Duration,
) -> (Option<i32>, Report) {
    let (mut cmd, dir) = command_with(scenario);
    let child = cmd
        .args(["burn", "--json", "--duration", "10m"])
        .args(SHORT)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = Instant::now();
    while !ready(dir.path()) {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "never ready for the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = Instant::now();
    // SAFETY: kill(2) with a child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < within,
        "ended {:?} after SIGINT",
        sent.elapsed()
    );
    (output.status.code(), parse_report(&output.stdout).1)
}

#[test]
fn sigint_ends_the_burn_with_a_report() {
    // Into the burn: the probe's own products take a few tens of ms of the
    // GPU's (modelled) time, the burn a second of it in its first interval.
    let (code, report) = interrupted_burn(
        "burn-steady",
        |dir| worked_ms(dir) >= 1000.0,
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0));
    let b = report.devices[0].burn.as_ref().expect("burn report");
    assert_eq!(b.ended, BurnEnd::Interrupted);
    assert!(b.products > 0);
    let (status, detail) = burn_check(&report);
    assert_eq!(status, CheckStatus::Warn);
    assert!(detail.contains("interrupted"), "{detail}");
}

#[test]
fn the_deadline_cuts_the_burn_short_without_a_timeout() {
    let run = burn("burn-steady", &["--duration", "10m", "--timeout", "4s"]);
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_eq!(run.report.verdict, Verdict::Degraded);
    let b = run.report.devices[0].burn.as_ref().unwrap();
    assert_eq!(b.ended, BurnEnd::Deadline);
    assert!(b.duration_ms < 4000.0);
    assert!(burn_check(&run.report).1.contains("--timeout"));
}

/// A wait on the GPU that never returns mid-burn: the watchdog ends the
/// run (exit 4), and the intervals measured before the hang stay in the
/// report, marked unfinished, instead of a burn that never was.
#[test]
fn a_burn_that_hangs_keeps_the_intervals_measured_before() {
    let run = burn(
        "burn-hangs-mid-run",
        &["--duration", "10m", "--timeout", "6s"],
    );
    assert_eq!(run.code(), 4, "{}", run.report.summary);
    assert_eq!(run.report.verdict, Verdict::Timeout);
    assert!(
        run.report.summary.contains("in stage burn"),
        "{}",
        run.report.summary
    );
    let b = run.report.devices[0]
        .burn
        .as_ref()
        .expect("the burn's intervals before the hang");
    assert_eq!(b.ended, BurnEnd::Unfinished);
    assert!(b.intervals.len() >= 2, "{b:?}");
    assert!(b.products >= b.intervals.len() as u64);
    assert!(b.gflops_median.is_some_and(|g| g > 0.0), "{b:?}");
    // Every comparison made before the hang matched.
    assert!(b.errors.is_empty(), "{:?}", b.errors);
}

#[test]
fn no_gpu_is_exit_3_and_bad_flags_are_usage_errors() {
    let run = burn("no-runtime", &["--duration", "1s"]);
    assert_eq!(run.code(), 3);
    assert_eq!(run.report.verdict, Verdict::NoGpu);
    for bad in [
        &["--duration", "0s"][..],
        &["--duration", "soon"],
        &["--sample-every", "-1s"],
        &["--verify-every", "0ms"],
    ] {
        let (mut cmd, _dir) = command_with("burn-steady");
        let out = cmd.arg("burn").args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}

#[test]
fn the_text_report_has_a_burn_line() {
    let (mut cmd, _dir) = command_with("burn-steady");
    let out = cmd
        .args(["burn", "--duration", "500ms"])
        .args(SHORT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("burn"))
        .unwrap_or_else(|| panic!("no burn line in:\n{text}"));
    assert!(
        line.contains("products") && line.contains("no error"),
        "{line}"
    );
}

#[test]
fn the_plot_draws_throughput_clock_and_temperature_over_time() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("burn.svg");
    let run = burn(
        "burn-throttles",
        &["--duration", "1s", "--plot", svg_path.to_str().unwrap()],
    );
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    let svg = std::fs::read_to_string(&svg_path).expect("the plot was written");
    let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let text: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for label in [
        "GFLOP/s",
        "SM clock (MHz)",
        "temperature (°C)",
        "GPU 0",
        "GPU 0 max",
    ] {
        assert!(text.contains(&label), "{label:?} not in {text:?}");
    }
    // A plot that fails when written (a FIFO nobody reads; a missing folder
    // is refused before the run) is exit 5, with the report still on stdout.
    let fifo_dir = tempfile::tempdir().unwrap();
    let fifo = fifo_dir.path().join("burn.svg");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let run = burn(
        "burn-steady",
        &["--duration", "200ms", "--plot", fifo.to_str().unwrap()],
    );
    assert_eq!(run.code(), 5);
    assert!(run.report.devices[0].burn.is_some());
}

#[test]
fn a_transient_wrong_product_between_copies_back_is_caught_on_the_gpu() {
    // About ten wrong products, none of them the one copied back at the
    // end (--verify-every is longer than the burn): only the comparison of
    // every product on the GPU sees them.
    let run = burn(
        "burn-transient-fault",
        &["--duration", "3s", "--verify-every", "1h"],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    let b = run.report.devices[0].burn.as_ref().unwrap();
    let wrong: Vec<_> = b
        .errors
        .iter()
        .filter(|e| e.kind == BurnErrorKind::WrongResult)
        .collect();
    assert!(!wrong.is_empty(), "{:?}", b.errors);
    assert!(wrong
        .iter()
        .all(|e| e.detail.contains("compared on the GPU")));
    // The last product, copied back, was right again.
    assert_eq!(b.intervals.last().and_then(|i| i.verified), Some(true));
    assert!(b.verifications > b.intervals.len() as u64);
}

#[test]
fn sigint_during_a_hung_stage_reports_the_wedge_within_the_grace() {
    // The context never comes: Ctrl-C must still end the run with a report
    // naming the stuck call, without waiting for the 10-minute deadline.
    let started = Instant::now();
    let (code, report) = interrupted_burn(
        "context-hangs",
        |_| started.elapsed() >= Duration::from_secs(1),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(4));
    assert_eq!(report.verdict, Verdict::Timeout);
    assert!(
        report.summary.contains("cuDevicePrimaryCtxRetain") && report.summary.contains("SIGINT"),
        "{}",
        report.summary
    );
}

#[test]
fn requirements_judge_a_burn_too() {
    let run = burn(
        "burn-steady",
        &["--duration", "200ms", "--require-gpus", "2"],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    assert!(run.report.checks.iter().any(|c| c.name == "require_gpus"));
    // An interrupted or shortened burn is degraded, which --strict fails.
    let run = burn(
        "burn-steady",
        &["--duration", "10m", "--timeout", "3s", "--strict"],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
}

#[test]
fn every_gpu_burns_and_one_that_failed_before_holds_none_back() {
    // GPU 2's product is wrong, so its burn never starts: the others wait
    // at the start line for every GPU, and must not wait for that one.
    let started = Instant::now();
    let run = burn("multi-gpu-one-corrupt", &["--duration", "1s"]);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the GPUs waited at the start line for one that never came"
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    for d in &run.report.devices {
        assert_eq!(d.burn.is_some(), d.index != 2, "GPU {}", d.index);
    }
}

#[test]
fn prometheus_carries_the_burn_as_the_json_does() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("burn.json");
    let (mut cmd, _lib) = command_with("burn-throttles");
    let out = cmd
        .args(["burn", "--format", "prometheus", "--duration", "1s"])
        .args(SHORT)
        .arg("--output")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, report) = parse_report(&std::fs::read(&json).unwrap());
    let b = report.devices[0].burn.as_ref().unwrap();
    let value = |metric: &str, label: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(metric) && l.contains(label))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {metric} {label} in:\n{text}"))
    };
    let worst = value("gpuprobe_device_burn_flop_per_second{", "stat=\"worst\"");
    let best = value("gpuprobe_device_burn_flop_per_second{", "stat=\"best\"");
    let w = b.worst_interval.as_ref().unwrap().gflops * 1e9;
    assert!((worst - w).abs() <= 1e-6 * w, "{worst} vs {w}");
    assert!((best - b.gflops_best * 1e9).abs() <= 1e-6 * best);
    let compared = value("gpuprobe_device_burn_products_compared{", "uuid=");
    assert_eq!(compared as u64, b.verifications);
}
