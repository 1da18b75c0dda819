//! gpuprobe in its container roles, against the fake driver: `health` (exit
//! 0/1 only, one line, `--state`), `exec` (verify, then become the
//! workload), `watch` (JSON lines, state file, Prometheus, clean stop, flat
//! memory), and the requirements shared by all of them. The healthy, a
//! failing and the hanging scenario each go through health, exec and watch.
#![cfg(target_os = "linux")]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{command_with, gpuprobe_with, parse_report};
use gpuprobe::report::{CheckStatus, ClockSource, Figure, MissingInput, Report, Verdict};

fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().expect("exited by a signal"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn health(scenario: &str, args: &[&str]) -> (i32, String) {
    let (mut cmd, _dir) = command_with(scenario);
    cmd.arg("health").args(args);
    let (code, stdout, _) = run(cmd);
    (code, stdout)
}

// ---- health

#[test]
fn health_is_one_line_and_exit_0_when_healthy() {
    let (code, out) = health("healthy", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with("healthy: ") && out.len() < 4096, "{out}");
}

/// A cold start (persistence mode off: cuInit waits while the driver
/// starts the GPU) leaves a healthy GPU healthy, exit 0, and the one line
/// names persistence mode as what would spare every health check the wait.
#[test]
fn health_names_persistence_mode_for_a_cold_start_and_stays_healthy() {
    let (code, out) = health("persistence-off", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with("healthy: "), "{out}");
    assert!(
        out.contains("persistence mode is off")
            && out.contains("nvidia-persistenced")
            && out.contains("nvidia-smi -pm 1"),
        "{out}"
    );
    // A warm start gives no such advice.
    let (code, out) = health("healthy", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("persistence"), "{out}");
}

#[test]
fn health_fails_a_corrupt_gpu_with_exit_1() {
    let (code, out) = health("multi-gpu-one-corrupt", &[]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("unhealthy: ") && out.contains("GPU-3b3a8f1e"),
        "{out}"
    );
}

#[test]
fn health_hang_ends_at_its_deadline_with_exit_1() {
    let (mut cmd, _dir) = command_with("hang");
    cmd.args(["health", "--timeout", "1s"]);
    let started = Instant::now();
    let (code, out, _) = run(cmd);
    // The deadline plus one second at most.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code, 1);
    assert!(out.contains("matmul") && out.contains("timeout"), "{out}");
}

#[test]
fn health_never_exits_2_even_for_usage_errors() {
    for args in [
        &["health", "--bogus"][..],
        &["--size", "0", "health"],
        &["health", "--state", "x"],
    ] {
        let (mut cmd, _dir) = command_with("healthy");
        cmd.args(args);
        let (code, _, stderr) = run(cmd);
        assert_eq!(code, 1, "{args:?}: {stderr}");
    }
}

#[test]
fn health_without_a_driver_is_unhealthy() {
    let (mut cmd, _dir) = common::gpuprobe_without_driver();
    cmd.arg("health")
        .assert()
        .code(1)
        .stdout(predicates::str::starts_with("unhealthy: "));
}

#[test]
fn health_degraded_is_healthy_unless_strict() {
    let (code, out) = health("busy-gpu", &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("degraded") && out.contains("another process"),
        "{out}"
    );
    let (code, _) = health("busy-gpu", &["--strict"]);
    assert_eq!(code, 1);
}

#[test]
fn health_state_reads_the_watch_report_without_touching_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    for (scenario, expect) in [("healthy", 0), ("multi-gpu-one-corrupt", 1)] {
        let (mut cmd, _lib) = command_with(scenario);
        cmd.args([
            "watch",
            "--count",
            "1",
            "--unhealthy-after",
            "1",
            "--quiet",
            "--size",
            "16",
            "--iterations",
            "1",
            "--state",
        ])
        .arg(&state);
        assert_eq!(run(cmd).0, expect);
        // No driver at all: only the file is read.
        let (mut cmd, _empty) = common::gpuprobe_without_driver();
        let out = cmd
            .args(["health", "--max-age", "1m", "--state"])
            .arg(&state)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(expect),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    std::thread::sleep(Duration::from_millis(1100));
    let (mut cmd, _empty) = common::gpuprobe_without_driver();
    let out = cmd
        .args(["health", "--max-age", "1s", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("older than --max-age"));
    std::fs::write(&state, "{\"schema_version\": 1}").unwrap();
    let (mut cmd, _empty) = common::gpuprobe_without_driver();
    cmd.args(["health", "--max-age", "1m", "--state"])
        .arg(&state)
        .assert()
        .code(1);
}

/// `health --state` follows the watch's run of failed cycles, not one
/// cycle's verdict (what node-problem-detector and the Slurm health check
/// read): after the first of `flapping`'s cycles (failed) it is healthy;
/// after two failed cycles of a lasting fault with `--unhealthy-after 2`
/// (set through its variable) unhealthy; each JSON line keeps its cycle's
/// verdict and the count.
#[test]
fn health_state_tolerates_failed_cycles_until_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let watch = |scenario: &str, count: &str, env: &[(&str, &str)]| {
        let (mut cmd, _lib) = command_with(scenario);
        cmd.args(["watch", "--count", count, "--interval", "10ms"])
            .args(["--size", "16", "--iterations", "1", "--state"])
            .arg(&state)
            .envs(env.iter().copied());
        let out = cmd.output().unwrap();
        let lines: Vec<Report> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| common::parse_report(l.as_bytes()).1)
            .collect();
        let (mut cmd, _empty) = common::gpuprobe_without_driver();
        let health = cmd
            .args(["health", "--max-age", "1m", "--state"])
            .arg(&state)
            .output()
            .unwrap();
        (lines, health)
    };
    let (lines, health) = watch("flapping", "1", &[]);
    assert_eq!(lines[0].verdict, Verdict::Failed);
    let w = lines[0].watch.unwrap();
    assert_eq!(
        (
            w.cycle,
            w.consecutive_failures,
            w.unhealthy_after,
            w.unhealthy
        ),
        (1, 1, 3, false)
    );
    assert_eq!(health.status.code(), Some(0), "{health:?}");
    assert!(
        String::from_utf8_lossy(&health.stdout).starts_with("healthy: this probe failed, 1 of 3")
    );

    let (lines, health) = watch("flapping", "3", &[]);
    let streaks: Vec<u32> = lines
        .iter()
        .map(|r| r.watch.unwrap().consecutive_failures)
        .collect();
    assert_eq!(streaks, [1, 0, 0]);
    assert_eq!(health.status.code(), Some(0));

    let (lines, health) = watch(
        "multi-gpu-one-corrupt",
        "2",
        &[("GPUPROBE_UNHEALTHY_AFTER", "2")],
    );
    let streaks: Vec<(u32, bool)> = lines
        .iter()
        .map(|r| {
            (
                r.watch.unwrap().consecutive_failures,
                r.watch.unwrap().unhealthy,
            )
        })
        .collect();
    assert_eq!(streaks, [(1, false), (2, true)]);
    assert_eq!(health.status.code(), Some(1), "{health:?}");
    assert!(String::from_utf8_lossy(&health.stdout).starts_with("unhealthy: "));
}

// ---- exec

#[test]
fn exec_replaces_itself_with_the_workload_keeping_the_pid() {
    let (mut cmd, _dir) = command_with("healthy");
    cmd.args([
        "exec",
        "--size",
        "16",
        "--iterations",
        "1",
        "--",
        "/bin/sh",
        "-c",
        "echo pid=$$",
    ]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("pid={pid}")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("starting /bin/sh"));
}

/// `gpuprobe exec [flags] --size 16 --iterations 1 -- workload...` against a
/// scenario: (exit code, stdout, stderr).
fn exec(scenario: &str, flags: &[&str], workload: &[&str]) -> (i32, String, String) {
    let (mut cmd, _dir) = command_with(scenario);
    cmd.arg("exec")
        .args(flags)
        .args(["--size", "16", "--iterations", "1", "--"])
        .args(workload);
    run(cmd)
}

#[test]
fn exec_refuses_to_start_on_a_failing_gpu() {
    let (code, stdout, stderr) = exec("multi-gpu-one-corrupt", &[], &["/bin/echo", "workload ran"]);
    assert_eq!(code, 1);
    assert!(!stdout.contains("workload ran"));
    assert!(
        stderr.contains("verdict: FAILED") && stderr.contains("GPU-3b3a8f1e"),
        "{stderr}"
    );
    // A refusal says what was not done.
    assert!(
        stderr.contains("did not start /bin/echo workload ran"),
        "{stderr}"
    );
}

#[test]
fn exec_warn_only_starts_anyway() {
    let (code, stdout, stderr) = exec(
        "multi-gpu-one-corrupt",
        &["--warn-only"],
        &["/bin/echo", "workload ran"],
    );
    assert_eq!(code, 0);
    assert!(
        stdout.contains("workload ran") && stderr.contains("--warn-only"),
        "{stderr}"
    );
}

#[test]
fn exec_on_a_hung_gpu_exits_4_without_starting() {
    let (code, stdout, stderr) = exec("hang", &["--timeout", "1s"], &["/bin/echo", "workload ran"]);
    assert_eq!(code, 4);
    assert!(!stdout.contains("workload ran"));
    assert!(stderr.contains("TIMEOUT"), "{stderr}");
    assert!(stderr.contains("did not start /bin/echo"), "{stderr}");
}

#[test]
fn exec_of_a_missing_command_exits_127() {
    let (code, _, stderr) = exec("healthy", &[], &["/no/such/workload"]);
    assert_eq!(code, 127);
    assert!(stderr.contains("cannot run /no/such/workload"));
}

#[test]
fn exec_without_a_command_is_a_usage_error() {
    let (mut cmd, _dir) = command_with("healthy");
    cmd.arg("exec");
    assert_eq!(run(cmd).0, 2);
}

// ---- requirements

#[test]
fn each_unmet_requirement_fails_with_measured_and_required_values() {
    let cases: [(&[&str], &str, &str); 7] = [
        (
            &["--require-gpus", "2"],
            "require_gpus",
            "1 GPU(s) usable, required 2",
        ),
        (
            &["--require-memory", "100GiB"],
            "require_memory",
            // Free in gpuprobe's context: the scenario's 512 MiB context is taken.
            "78.6 GiB free, required 100.0 GiB",
        ),
        (
            &["--require-compute-capability", "10.0"],
            "require_compute_capability",
            "compute capability 9.0, required 10.0",
        ),
        (
            &["--require-driver", "12.8"],
            "require_driver",
            "driver supports CUDA 12.4, required 12.8",
        ),
        (
            // Past what cuDriverGetVersion's 1000*major encoding can hold.
            &["--require-driver", "5000000.0"],
            "require_driver",
            "driver supports CUDA 12.4, required 5000000.0",
        ),
        (
            &["--require-speedup", "1000000"],
            "require_speedup",
            "required 1000000x",
        ),
        (
            // The fake's kernels run on a CPU emulation: a tiny fraction.
            &["--require-efficiency", "50"],
            "require_efficiency",
            "% of the FP32 peak, required 50%",
        ),
    ];
    for (flag, check, detail) in cases {
        let mut args = vec!["--size", "16", "--iterations", "1"];
        args.extend_from_slice(flag);
        let run = gpuprobe_with("healthy", &args, &[]);
        assert_eq!(run.code(), 1, "{flag:?}");
        let all: Vec<_> = run
            .report
            .checks
            .iter()
            .chain(run.report.devices.iter().flat_map(|d| &d.checks))
            .collect();
        let c = all
            .iter()
            .find(|c| c.name == check)
            .unwrap_or_else(|| panic!("no {check}"));
        assert_eq!(c.status, CheckStatus::Fail);
        assert!(c.detail.contains(detail), "{}", c.detail);
    }
}

#[test]
fn met_requirements_pass() {
    let run = gpuprobe_with(
        "healthy",
        &[
            "--size",
            "16",
            "--iterations",
            "1",
            "--require-gpus",
            "1",
            "--require-memory",
            "16GiB",
            "--require-compute-capability",
            "8.0",
            "--require-driver",
            "12.0",
        ],
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.report.summary);
    assert_eq!(run.report.verdict, Verdict::Healthy);
}

#[test]
fn requirements_come_from_the_environment_too() {
    let probe = gpuprobe_with(
        "healthy",
        &["--size", "16", "--iterations", "1"],
        &[("GPUPROBE_REQUIRE_MEMORY", "100GiB")],
    );
    assert_eq!(probe.code(), 1);
    let (mut cmd, _dir) = command_with("healthy");
    cmd.env("GPUPROBE_REQUIRE_GPUS", "two");
    let (code, _, stderr) = run(cmd);
    assert_eq!(code, 2);
    assert!(stderr.contains("GPUPROBE_REQUIRE_GPUS"), "{stderr}");
}

#[test]
fn efficiency_is_judged_against_the_peak_and_skipped_by_health() {
    let small = ["--size", "16", "--iterations", "1"];
    // The fake's efficiency is about 1e-6 (a fraction): 1e-6 % is 1e-8.
    let met = gpuprobe_with(
        "healthy",
        &small,
        &[("GPUPROBE_REQUIRE_EFFICIENCY", "0.000001")],
    );
    assert_eq!(met.code(), 0, "{}", met.report.summary);
    let d = &met.report.devices[0];
    let check = d
        .checks
        .iter()
        .find(|c| c.name == "require_efficiency")
        .expect("require_efficiency");
    assert_eq!(check.status, CheckStatus::Pass, "{}", check.detail);
    let m = d.matmul.as_ref().unwrap();
    let (Some(Figure::Value(expected)), Some(Figure::Value(efficiency))) =
        (m.expected_gflops, m.efficiency)
    else {
        panic!("{m:?}");
    };
    // The scenario's H100 SXM: 132 SMs x 128 lanes x 2 x 1980 MHz.
    assert!((expected - 66_908.16).abs() < 1e-6, "{expected}");
    assert!((efficiency - m.gpu_gflops / expected).abs() < 1e-15);

    // Unmet, from the environment as well.
    let unmet = gpuprobe_with("healthy", &small, &[("GPUPROBE_REQUIRE_EFFICIENCY", "50")]);
    assert_eq!(unmet.code(), 1, "{}", unmet.report.summary);

    // health does not judge speed: skipped, and health stays healthy.
    let (code, out) = health("healthy", &["--require-efficiency", "50"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_peak_names_the_input_it_misses() {
    // No NVML: the driver's clock, no current clock, no memory bandwidth.
    let probe = gpuprobe_with("nvml-missing", &["--size", "16", "--iterations", "1"], &[]);
    let p = probe.report.devices[0].peak.as_ref().expect("peak");
    assert_eq!(p.fp32_clock_source, Some(ClockSource::Driver));
    assert!(
        matches!(p.fp32_gflops, Figure::Value(v) if v > 0.0),
        "{p:?}"
    );
    assert_eq!(
        p.fp32_gflops_at_current_clock,
        Figure::Missing(MissingInput::NoNvml)
    );
    assert_eq!(
        p.memory_bandwidth_gbps,
        Figure::Missing(MissingInput::NoNvml)
    );
    // With NVML: its maximum clock, and the bandwidth from its memory
    // clock and bus width (2 x 2619 MHz x 5120 bits / 8 = 3352.32 GB/s).
    let (mut cmd, _dir) = command_with("healthy");
    cmd.args(["list", "--json"]);
    let (_, stdout, _) = run(cmd);
    let (_, listed) = parse_report(stdout.as_bytes());
    let p = listed.devices[0].peak.as_ref().expect("peak in list");
    assert_eq!(p.fp32_clock_source, Some(ClockSource::NvmlMax));
    assert_eq!(p.memory_bandwidth_gbps, Figure::Value(3352.32));
}

// ---- watch

#[test]
fn watch_writes_json_lines_state_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (state, prom) = (
        dir.path().join("state.json"),
        dir.path().join("gpuprobe.prom"),
    );
    let (mut cmd, _lib) = command_with("multi-gpu-one-corrupt");
    cmd.args([
        "watch",
        "--interval",
        "10ms",
        "--count",
        "3",
        "--size",
        "16",
        "--iterations",
        "1",
        "--state",
    ])
    .arg(&state)
    .arg("--prometheus")
    .arg(&prom);
    let (code, stdout, _) = run(cmd);
    assert_eq!(code, 1, "a counted watch exits with the last probe's code");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for line in lines {
        let (_, report) = parse_report(line.as_bytes());
        assert_eq!(report.verdict, Verdict::Failed);
    }
    parse_report(&std::fs::read(&state).unwrap());
    let metrics = std::fs::read_to_string(&prom).unwrap();
    assert!(metrics.contains("gpuprobe_verdict{verdict=\"failed\"} 1"));
    assert!(metrics.contains(
        "gpuprobe_device_up{index=\"2\",uuid=\"GPU-3b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a53\""
    ));
    assert!(
        metrics.contains("gpuprobe_device_temperature_celsius{index=\"0\""),
        "NVML telemetry exported"
    );
}

#[test]
#[ignore = "needs promtool (apt-get install prometheus): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn watch_prometheus_file_passes_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("gpuprobe.prom");
    let (mut cmd, _lib) = command_with("multi-gpu-one-corrupt");
    cmd.args(["watch", "--count", "1", "--quiet", "--size", "16"])
        .args(["--iterations", "1", "--prometheus"])
        .arg(&prom);
    let (code, _, _) = run(cmd);
    assert_eq!(code, 1);
    promtool_accepts(&std::fs::read_to_string(&prom).unwrap());
}

fn promtool_accepts(metrics: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var("GPUPROBE_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "promtool not found and GPUPROBE_REQUIRE_TOOLS=1"
        );
        eprintln!("skipped: promtool not found (apt-get install prometheus)");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn watch_reports_a_hang_and_keeps_watching() {
    let (mut cmd, _lib) = command_with("hang");
    cmd.args([
        "watch",
        "--interval",
        "10ms",
        "--count",
        "2",
        "--timeout",
        "1s",
        "--size",
        "16",
        "--iterations",
        "1",
    ]);
    let started = Instant::now();
    let (code, stdout, _) = run(cmd);
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(code, 4);
    let verdicts: Vec<Verdict> = stdout
        .lines()
        .map(|l| parse_report(l.as_bytes()).1.verdict)
        .collect();
    assert_eq!(verdicts, [Verdict::Timeout, Verdict::Timeout]);
}

/// Threads of a running process.
fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// A GPU stuck in the driver is not probed again every cycle: the watch
/// reports the same wedge (stage and driver call) each cycle without new
/// threads or buffers, so its footprint stays flat over 100 cycles.
#[test]
fn watch_on_a_wedged_gpu_stays_flat_and_reports_the_wedge_every_cycle() {
    let (mut cmd, _lib) = command_with("hang");
    cmd.args([
        "watch",
        "--interval",
        "10ms",
        "--timeout",
        "1s",
        "--size",
        "64",
        "--iterations",
        "1",
    ])
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut early = None;
    for n in 1..=100 {
        let line = lines.next().expect("watch ended early").unwrap();
        let (_, report) = parse_report(line.as_bytes());
        assert_eq!(report.verdict, Verdict::Timeout, "cycle {n}");
        assert!(
            report.summary.contains("stuck in cuLaunchKernel"),
            "cycle {n}: {}",
            report.summary
        );
        if n > 1 {
            assert!(
                report
                    .summary
                    .contains("still stuck since an earlier probe"),
                "cycle {n}: {}",
                report.summary
            );
        }
        if n == 5 {
            early = Some((threads(pid), footprint(pid)));
        }
    }
    // Go on reading while the footprint is taken (half a second of
    // cycles): a full pipe would block the watch's write, and a process
    // blocked in write(2) cannot act on SIGTERM.
    let drain = std::thread::spawn(move || lines.count());
    let (threads0, (rss0, fds0)) = early.unwrap();
    let (threads1, (rss1, fds1)) = (threads(pid), footprint(pid));
    assert_eq!(threads1, threads0, "threads grew from cycle 5 to 100");
    assert_eq!(fds1, fds0, "file descriptors grew from cycle 5 to 100");
    assert!(
        rss1 < rss0 + 2048,
        "RSS grew from {rss0} KiB to {rss1} KiB between cycles 5 and 100"
    );
    // SAFETY: kill(2) on our own child's pid touches no memory of ours.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(0));
    drain.join().unwrap();
}

/// (VmRSS in KiB, open file descriptors) of a running process, each the
/// least of readings over half a second: the process is mid-cycle when
/// read, and a file open for a moment (the driver's lock file, held by a
/// call and by the NVML readings queued behind it; a state file being
/// replaced) is no leak, while a leaked one is there in every reading. Ten
/// readings over 50 ms were too few on a loaded machine: the lock file was
/// open in each of them once in a few runs.
fn footprint(pid: u32) -> (u64, usize) {
    (0..25)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            footprint_now(pid)
        })
        .fold((u64::MAX, usize::MAX), |(r, f), (r1, f1)| {
            (r.min(r1), f.min(f1))
        })
}

fn footprint_now(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

#[test]
fn watch_memory_and_descriptors_stay_flat_and_sigterm_stops_it_cleanly() {
    let (mut cmd, _lib) = command_with("healthy");
    cmd.args([
        "watch",
        "--interval",
        "1ms",
        "--size",
        "16",
        "--iterations",
        "1",
    ])
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut early = None;
    for n in 1..=150 {
        let line = lines.next().expect("watch ended early").unwrap();
        assert!(
            line.contains("\"verdict\":\"healthy\""),
            "cycle {n}: {line}"
        );
        if n == 30 {
            early = Some(footprint(pid));
        }
    }
    // Go on reading while the footprint is taken (see above).
    let drain = std::thread::spawn(move || lines.count());
    let (rss0, fds0) = early.unwrap();
    let (rss1, fds1) = footprint(pid);
    assert_eq!(fds1, fds0, "file descriptors grew from cycle 30 to 150");
    assert!(
        rss1 < rss0 + 2048,
        "RSS grew from {rss0} KiB to {rss1} KiB between cycles 30 and 150"
    );

    let stopped = Instant::now();
    // SAFETY: kill(2) on our own child's pid touches no memory of ours.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "took {:?} to stop",
        stopped.elapsed()
    );
    assert_eq!(status.code(), Some(0), "SIGTERM ends watch with exit 0");
    drain.join().unwrap();
}

#[test]
fn sigint_stops_a_sleeping_watch_cleanly() {
    let (mut cmd, _lib) = command_with("healthy");
    cmd.args([
        "watch",
        "--interval",
        "1h",
        "--size",
        "16",
        "--iterations",
        "1",
    ])
    .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines
        .next()
        .expect("a first report")
        .unwrap()
        .contains("\"verdict\""));
    let stopped = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "took {:?}",
        stopped.elapsed()
    );
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_closed_stderr_or_stdout_is_no_crash() {
    use std::os::unix::process::CommandExt;
    for fd in [1, 2] {
        let (mut cmd, _dir) = command_with("multi-gpu-one-corrupt");
        cmd.args([
            "exec",
            "--size",
            "16",
            "--iterations",
            "1",
            "--",
            "/bin/true",
        ]);
        // Quiet the other stream; the one under test is closed below.
        if fd == 1 {
            cmd.stderr(Stdio::null());
        } else {
            cmd.stdout(Stdio::null());
        }
        // SAFETY: close(2) is async-signal-safe; the child only execs after it.
        unsafe {
            cmd.pre_exec(move || {
                libc::close(fd);
                Ok(())
            });
        }
        let status = cmd.status().unwrap();
        assert_eq!(
            status.code(),
            Some(1),
            "fd {fd} closed: the probe's code, not a panic (101)"
        );
    }
}

#[test]
fn health_fails_a_gpu_with_memory_errors_even_when_its_launch_works() {
    let (code, out) = health("ecc-uncorrectable", &[]);
    assert_eq!(code, 1);
    assert!(out.starts_with("unhealthy: GP015"), "{out}");
}

#[test]
fn an_absurd_nvidia_require_cuda_is_a_finding_not_a_crash() {
    let run = gpuprobe_with(
        "healthy",
        &["--size", "16", "--iterations", "1"],
        &[("NVIDIA_REQUIRE_CUDA", "cuda>=9999999.0")],
    );
    assert_eq!(run.code(), 1);
    let gp012 = run.report.diagnoses.iter().find(|d| d.code == "GP012");
    assert!(
        gp012.is_some_and(|d| d.evidence[0].contains("cuda>=9999999.0")),
        "{:?}",
        run.report.diagnoses
    );
}

/// scripts/with-fakegpu, the way CONTRIBUTING.md and the README run gpuprobe
/// against a scenario: it adds a small --size only where the command takes
/// one, after the subcommand, so every command still parses.
#[test]
fn with_fakegpu_runs_every_documented_command() {
    let script = common::root().join("scripts/with-fakegpu");
    let scenario = common::scenario("healthy");
    let binary = assert_cmd::cargo::cargo_bin("gpuprobe");
    for args in [
        &[][..],
        &["health"],
        &["list", "--json"],
        &["exec", "--", "true"],
        &["watch", "--count", "1", "--quiet"],
    ] {
        let out = Command::new(&script)
            .arg(&scenario)
            .arg(&binary)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
