//! No silent skip: every check that did not run says why (`Check::not_run`,
//! a closed set), no check that did not run is a pass, and
//! `--require-checks` fails a run whose named checks did not run, with the
//! GPU and the reason in the report and the summary. A busy GPU's skipped
//! compute stays "not verified" (exit 0) unless a named check is its
//! compute. Against the fake driver, through the real binary.
#![cfg(target_os = "linux")]
mod common;

use common::{command_with, gpuprobe_args, gpuprobe_with};
use gpuprobe::report::{Check, CheckName, CheckStatus, DeviceStatus, NotRun, Report, Verdict};

const SMALL: &[&str] = &["--size", "16", "--iterations", "1"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    SMALL.iter().copied().chain(extra.iter().copied()).collect()
}

/// `health` with `args`: its exit code and its one line.
fn health(scenario: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (mut cmd, _dir) = command_with(scenario);
    cmd.arg("health").args(args).envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().expect("exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A command's exit code and stderr.
fn usage(scenario: &str, args: &[&str]) -> (i32, String, String) {
    let (mut cmd, _dir) = command_with(scenario);
    cmd.args(args);
    let out = cmd.output().unwrap();
    (
        out.status.code().expect("exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:#?}"))
}

/// Every check in the report that is a skip says why, and every check
/// that says it did not run is no pass.
fn assert_no_silent_skip(report: &Report) {
    let all = report
        .checks
        .iter()
        .chain(report.devices.iter().flat_map(|d| &d.checks));
    for c in all {
        if c.status == CheckStatus::Skip {
            assert!(c.not_run.is_some(), "a skip without a reason: {c:#?}");
        }
        if c.not_run.is_some() {
            assert_ne!(
                c.status,
                CheckStatus::Pass,
                "a pass that did not run: {c:#?}"
            );
        }
    }
}

// ---- the reasons in the report

#[test]
fn a_busy_gpu_says_busy_on_every_check_it_skipped() {
    let run = gpuprobe_with("busy-exclusive", SMALL, &[]);
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_no_silent_skip(&run.report);
    let d = &run.report.devices[0];
    for name in ["context", "matmul", "verify", "tensor_cores", "bandwidth"] {
        let c = check(&d.checks, name);
        assert_eq!(c.status, CheckStatus::Skip, "{name}");
        assert_eq!(c.not_run, Some(NotRun::Busy), "{name}");
    }
    // Asked for nothing: the report names nothing required.
    assert!(run.report.required_checks.is_empty());
}

#[test]
fn bandwidth_size_0_is_turned_off_not_passed() {
    let run = gpuprobe_with("healthy", &args(&["--bandwidth-size", "0"]), &[]);
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    let c = check(&run.report.devices[0].checks, "bandwidth");
    assert_eq!(
        (c.status, c.not_run),
        (CheckStatus::Skip, Some(NotRun::TurnedOff))
    );
    assert_no_silent_skip(&run.report);
}

/// Without NVML the telemetry check is recorded as not run; it had no
/// record at all before.
#[test]
fn no_nvml_records_telemetry_as_unavailable() {
    let run = gpuprobe_with("nvml-missing", SMALL, &[]);
    let nvml = check(&run.report.checks, "nvml");
    assert_eq!(nvml.not_run, Some(NotRun::Unavailable));
    let telemetry = check(&run.report.devices[0].checks, "telemetry");
    assert_eq!(
        (telemetry.status, telemetry.not_run),
        (CheckStatus::Skip, Some(NotRun::Unavailable))
    );
    assert_no_silent_skip(&run.report);
}

/// A GPU no stage ran on because the host's memory could not hold the
/// matmul says so; it had no record but `identify` before.
#[test]
fn a_gpu_left_untouched_by_a_machine_failure_says_why() {
    let run = gpuprobe_with(
        "host-memory-low",
        &["--size", "1024", "--iterations", "1"],
        &[],
    );
    assert_eq!(run.code(), 1);
    let d = &run.report.devices[0];
    assert_eq!(d.status, DeviceStatus::Skipped);
    let context = check(&d.checks, "context");
    assert_eq!(context.not_run, Some(NotRun::EarlierFailure));
    assert!(
        context.detail.contains("host_memory failed"),
        "{}",
        context.detail
    );
}

/// `bench` on a GPU that admits no context records each size as not run
/// for that reason; it recorded nothing per size before.
#[test]
fn bench_on_a_busy_gpu_records_each_size_as_busy() {
    let run = gpuprobe_args("busy-exclusive", &["bench", "--json", "--sizes", "16,32"]);
    let d = &run.report.devices[0];
    let sizes: Vec<&Check> = d.checks.iter().filter(|c| c.name == "bench").collect();
    assert_eq!(sizes.len(), 2, "{:#?}", d.checks);
    for c in sizes {
        assert_eq!(
            (c.status, c.not_run),
            (CheckStatus::Skip, Some(NotRun::Busy))
        );
    }
    assert_no_silent_skip(&run.report);
}

// ---- --require-checks

#[test]
fn a_healthy_run_meets_required_checks() {
    let run = gpuprobe_with(
        "healthy",
        &args(&["--require-checks", "matmul,verify,nvml,telemetry"]),
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_eq!(run.report.required_checks.len(), 4);
    assert!(run
        .report
        .required_checks
        .iter()
        .all(|r| r.ran && r.not_run.is_none()));
    let mine = check(&run.report.devices[0].checks, "require_checks");
    assert_eq!(mine.status, CheckStatus::Pass);
    let (code, out) = health("healthy", &["--require-checks", "matmul"], &[]);
    assert_eq!(code, 0, "{out}");
}

/// Beside a job (an EXCLUSIVE_PROCESS GPU another process holds) health
/// stays healthy; naming the compute check makes the same GPU fail, with
/// the GPU and "busy" in the line and in the report.
#[test]
fn a_busy_gpu_fails_only_when_its_compute_is_required() {
    let (code, out) = health("busy-exclusive", &[], &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = health("busy-exclusive", &["--require-checks", "matmul"], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("unhealthy: ")
            && out.contains("GPU-5b3a8f1e")
            && out.contains("matmul not run (busy)"),
        "{out}"
    );
    // The variable does what the flag does.
    let (code, out) = health(
        "busy-exclusive",
        &[],
        &[("GPUPROBE_REQUIRE_CHECKS", "matmul")],
    );
    assert_eq!(code, 1, "{out}");

    let run = gpuprobe_with(
        "busy-exclusive",
        &args(&["--require-checks", "matmul"]),
        &[],
    );
    assert_eq!(run.code(), 1);
    assert_eq!(run.report.verdict, Verdict::Failed);
    let [required] = run.report.required_checks.as_slice() else {
        panic!("{:#?}", run.report.required_checks)
    };
    assert_eq!(required.check, CheckName::Matmul);
    assert_eq!(required.index, Some(0));
    assert!(required
        .uuid
        .as_deref()
        .unwrap()
        .starts_with("GPU-5b3a8f1e"));
    assert!(!required.ran);
    assert_eq!(required.not_run, Some(NotRun::Busy));
    assert_eq!(required.status, Some(CheckStatus::Skip));
    assert!(
        run.report.summary.contains("GPU 0 (GPU-5b3a8f1e")
            && run.report.summary.contains("require_checks")
            && run.report.summary.contains("busy"),
        "{}",
        run.report.summary
    );
}

#[test]
fn a_turned_off_bandwidth_check_fails_when_required() {
    let run = gpuprobe_with(
        "healthy",
        &args(&["--bandwidth-size", "0", "--require-checks", "bandwidth"]),
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    let [required] = run.report.required_checks.as_slice() else {
        panic!("{:#?}", run.report.required_checks)
    };
    assert_eq!(
        (required.check, required.ran, required.not_run),
        (CheckName::Bandwidth, false, Some(NotRun::TurnedOff))
    );
    assert!(
        run.report
            .summary
            .contains("bandwidth not run (turned_off)"),
        "{}",
        run.report.summary
    );
}

/// A machine-wide check: NVML, not in this container.
#[test]
fn a_machine_wide_check_that_did_not_run_fails_for_the_machine() {
    let run = gpuprobe_with("nvml-missing", &args(&["--require-checks", "nvml"]), &[]);
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    let mine = check(&run.report.checks, "require_checks");
    assert_eq!(mine.status, CheckStatus::Fail);
    assert!(
        mine.detail.contains("nvml not run (unavailable)"),
        "{}",
        mine.detail
    );
    let [required] = run.report.required_checks.as_slice() else {
        panic!("{:#?}", run.report.required_checks)
    };
    assert_eq!((required.index, required.ran), (None, false));
}

/// NVML's event watch, which this driver refuses (NOT_SUPPORTED): not
/// available, never unhealthy, unless it is required.
#[test]
fn an_event_watch_nvml_refuses_fails_only_when_required() {
    let run = gpuprobe_with("events-not-supported", SMALL, &[]);
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    let run = gpuprobe_with(
        "events-not-supported",
        &args(&["--require-checks", "events"]),
        &[],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    assert_eq!(
        run.report.required_checks[0].not_run,
        Some(NotRun::Unavailable)
    );
}

/// `burn --memtest` on a GPU that fails before its burn records the
/// memory test it never began; it had no record before.
#[test]
fn a_burn_that_never_began_records_its_memory_test() {
    let run = gpuprobe_args(
        "multi-gpu-one-corrupt",
        &[
            "burn",
            "--json",
            "--size",
            "16",
            "--duration",
            "1s",
            "--memtest",
            "1MiB",
            "--bandwidth-size",
            "0",
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    let failed = run
        .report
        .devices
        .iter()
        .find(|d| d.status == DeviceStatus::Fail)
        .expect("a failed GPU");
    for name in ["burn", "memtest"] {
        let c = check(&failed.checks, name);
        assert_eq!(
            (c.status, c.not_run),
            (CheckStatus::Skip, Some(NotRun::EarlierFailure)),
            "{name}"
        );
    }
    assert_no_silent_skip(&run.report);
}

/// An unknown name, and a name the command never runs, are usage errors
/// (exit 2; `health`: one line and exit 1, Docker reserves 2), before
/// anything runs.
#[test]
fn unknown_and_never_run_names_are_usage_errors() {
    let (code, _, err) = usage("healthy", &["--require-checks", "matmull"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("matmull") && err.contains("tensor_cores"),
        "{err}"
    );
    let (code, _, err) = usage("healthy", &["--require-checks", "memtest"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("memtest") && err.contains("gpuprobe"), "{err}");
    let (code, _, err) = usage(
        "healthy",
        &["watch", "--count", "1", "--require-checks", "memtest"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`watch`"), "{err}");
    let (code, _, err) = usage("healthy", &["bench", "--require-checks", "matmul"]);
    assert_eq!(code, 2, "{err}");
    for args in [
        &["--require-checks", "bogus"][..],
        &["--require-checks", "bandwidth"],
        &["--no-context", "--require-checks", "matmul"],
    ] {
        let (code, out) = health("healthy", args, &[]);
        assert_eq!(code, 1, "{args:?}: {out}");
        assert!(out.starts_with("unhealthy: usage error"), "{out}");
    }
}

/// `bench` takes `--require-checks` too (its only requirement).
#[test]
fn bench_requires_its_own_checks() {
    let run = gpuprobe_args(
        "busy-exclusive",
        &[
            "bench",
            "--json",
            "--sizes",
            "16",
            "--require-checks",
            "bench",
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.report.summary);
    assert_eq!(run.report.required_checks[0].not_run, Some(NotRun::Busy));
    let run = gpuprobe_args(
        "healthy",
        &[
            "bench",
            "--json",
            "--sizes",
            "16",
            "--require-checks",
            "bench,bench_cpu",
        ],
    );
    assert_eq!(run.code(), 0, "{}", run.report.summary);
}
