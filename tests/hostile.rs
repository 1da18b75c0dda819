//! gpuprobe used as a hostile user (or a broken environment) would: state
//! files that are devices, FIFOs, huge or absurd; reports written to full
//! devices, device nodes and symlinks to stdout; files watch cannot write;
//! `--strict` against warning diagnoses. Each case ends in a clear message
//! and a documented exit code, never a panic, a hang or a lost report.
#![cfg(target_os = "linux")]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{command_with, gpuprobe_with, gpuprobe_without_driver, root};
use gpuprobe::report::Verdict;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `health --state FILE --max-age 1m`, with no driver anywhere.
fn health_state(state: &Path) -> Output {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.args(["health", "--max-age", "1m", "--state"])
        .arg(state)
        .output()
        .unwrap()
}

/// The bench fixture with some fields replaced, written to `dir`.
fn state_file(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let fixture = std::fs::read_to_string(root().join("benches/report-one-gpu.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&fixture).unwrap();
    json["started_at"] = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .into();
    edit(&mut json);
    let path = dir.join("state.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "mkfifo {}",
        path.display()
    );
}

// ---- health --state

#[test]
fn a_fresh_state_file_is_healthy() {
    // The baseline the hostile cases below differ from.
    let dir = tempfile::tempdir().unwrap();
    let out = health_state(&state_file(dir.path(), |_| {}));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_device_as_state_file_is_refused_not_read_forever() {
    let out = health_state(Path::new("/dev/urandom"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}

#[test]
fn a_fifo_without_a_writer_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("state.json");
    mkfifo(&fifo);
    let out = health_state(&fifo);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}

#[test]
fn a_huge_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: no disk is spent on it.
    file.set_len(gpuprobe::output::MAX_REPORT_BYTES + 1)
        .unwrap();
    let out = health_state(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("larger than"), "{}", text(&out));
}

#[test]
fn an_absurd_duration_is_unhealthy_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_file(dir.path(), |j| j["duration_ms"] = 1e300.into());
    let out = health_state(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("bad duration_ms"), "{}", text(&out));
}

#[test]
fn a_report_from_the_future_is_not_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = state_file(dir.path(), |j| {
        j["started_at"] = "2999-01-01T00:00:00Z".into();
    });
    let out = health_state(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("in the future"), "{}", text(&out));
}

// ---- writing the report

#[test]
fn stdout_on_a_full_device_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
        .env("LD_LIBRARY_PATH", empty.path())
        .env_remove("FAKEGPU_SCENARIO")
        .arg("--json")
        .stdout(Stdio::from(full))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("cannot write the report"),
        "{}",
        text(&out)
    );
}

#[test]
fn output_on_a_full_device_is_an_error() {
    for args in [
        &["--output", "/dev/full"][..],
        &["list", "--output", "/dev/full"],
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd.args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("cannot write --output /dev/full"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn exec_does_not_start_the_workload_when_the_report_is_lost() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    let out = cmd
        .args([
            "exec",
            "--warn-only",
            "--output",
            "/dev/full",
            "--",
            "/bin/echo",
            "workload ran",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!text(&out).contains("workload ran"), "{}", text(&out));
}

#[test]
fn output_through_a_symlink_to_stdout_keeps_the_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("out");
    std::os::unix::fs::symlink("/proc/self/fd/1", &link).unwrap();
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .arg("--json")
        .arg("--output")
        .arg(&link)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the symlink was replaced");
    // Once from --output (through the link), once as stdout.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("\"schema_version\"").count(), 2, "{stdout}");
}

#[test]
fn output_onto_a_fifo_without_a_reader_is_an_error_not_a_wait() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("report");
    mkfifo(&fifo);
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd.arg("--output").arg(&fifo).output().unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("nobody reads"), "{}", text(&out));
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(!meta.is_file(), "the FIFO was replaced by a file");
}

#[test]
fn output_onto_a_directory_is_refused() {
    // Before the probe runs: a usage error (tests/output_files.rs).
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd.arg("--output").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("directory"), "{}", text(&out));
}

// ---- watch

#[test]
fn watch_that_cannot_write_its_state_stops_with_exit_5() {
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .args([
            "watch",
            "--count",
            "3",
            "--interval",
            "1h",
            "--state",
            // Fails only when written (a missing folder is refused before
            // the first probe: tests/output_files.rs).
            "/dev/full",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("cannot write --state"),
        "{}",
        text(&out)
    );
    // It stopped after the first probe instead of waiting an hour.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[test]
fn watch_that_cannot_write_its_metrics_stops_with_exit_5() {
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .args([
            "watch",
            "--count",
            "1",
            "--quiet",
            "--prometheus",
            "/dev/full",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("cannot write --prometheus"),
        "{}",
        text(&out)
    );
}

// ---- --strict and warning diagnoses

/// Scenarios whose only fault is a warning diagnosis: degraded, exit 0, and
/// failed under --strict (the diagnoses come before --strict is applied).
const WARNING_SCENARIOS: [(&str, &str); 3] = [
    ("pcie-degraded", "GP016"),
    ("thermal-throttle", "GP017"),
    ("stubs-on-path", "GP022"),
];

#[test]
fn strict_fails_a_run_degraded_by_a_warning_diagnosis() {
    for (scenario, code) in WARNING_SCENARIOS {
        // GP016 judges the link only from readings taken once the timed
        // products had run 100 ms (checks::gpu::LINK_RAMP).
        let args = if code == "GP016" {
            ["--size", "16", "--min-time", "400ms"]
        } else {
            ["--size", "16", "--iterations", "1"]
        };
        let plain = gpuprobe_with(scenario, &args, &[]);
        assert_eq!(plain.report.verdict, Verdict::Degraded, "{scenario}");
        assert_eq!(plain.code(), 0, "{scenario}");
        assert!(plain.report.diagnoses.iter().any(|d| d.code == code));

        let strict = gpuprobe_with(scenario, &[&["--strict"], &args[..]].concat(), &[]);
        assert_eq!(strict.report.verdict, Verdict::Failed, "{scenario}");
        assert_eq!(strict.code(), 1, "{scenario}");
        assert!(
            strict.report.summary.contains("--strict"),
            "{}",
            strict.report.summary
        );
    }
}

#[test]
fn strict_from_the_environment_accepts_1_and_0() {
    let args = ["--size", "16", "--iterations", "1"];
    let on = gpuprobe_with("thermal-throttle", &args, &[("GPUPROBE_STRICT", "1")]);
    assert_eq!(on.code(), 1, "{}", on.report.summary);
    let off = gpuprobe_with("thermal-throttle", &args, &[("GPUPROBE_STRICT", "0")]);
    assert_eq!(off.code(), 0, "{}", off.report.summary);
}

#[test]
fn health_strict_fails_on_a_warning_diagnosis() {
    // A GPU throttled by heat: health's tiny launch reads its clocks at
    // work. (A narrow PCIe link is no case here: health's launch is far
    // too short to read the link at work, and an idle reading is never
    // judged.)
    let (mut cmd, _dir) = command_with("thermal-throttle");
    let out = cmd.args(["health", "--strict"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (mut cmd, _dir) = command_with("thermal-throttle");
    let out = cmd.arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The narrow link: not judged by health, so healthy even under --strict.
    let (mut cmd, _dir) = command_with("pcie-degraded");
    let out = cmd.args(["health", "--strict"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
