//! The command line without a GPU: the no-driver report, usage errors (each
//! subcommand takes only its own options), every documented invocation, the
//! schema command, --output and --version. Runs on any machine without a
//! CUDA driver (see `common::gpuprobe_without_driver`).
mod common;

use common::{gpuprobe_without_driver, parse_report, root};
use gpuprobe::report::{CheckStatus, Verdict};
use predicates::prelude::*;

#[test]
fn no_driver_text_says_so_and_exits_3() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.env("NO_COLOR", "1")
        .assert()
        .code(3)
        .stdout(predicate::str::contains("GPU available:   no"))
        .stdout(predicate::str::contains("libcuda.so.1"))
        .stdout(predicate::str::contains("verdict: NO GPU (exit 3)"))
        .stdout(predicate::str::contains("\x1b[").not());
}

#[test]
fn no_driver_json_is_valid_and_names_where_it_looked() {
    let (mut cmd, dir) = gpuprobe_without_driver();
    let out = cmd.arg("--json").output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let (_, report) = parse_report(&out.stdout);
    assert_eq!(report.verdict, Verdict::NoGpu);
    let load = report
        .checks
        .iter()
        .find(|c| c.name == "load_driver")
        .expect("load_driver check");
    assert_eq!(load.status, CheckStatus::Fail);
    assert_eq!(report.nvml.status, gpuprobe::report::NvmlStatus::NotFound);
    assert_eq!(
        report.diagnoses[0].code, "GP001",
        "no GPU runtime is diagnosed"
    );
    assert_eq!(report.driver.library_candidates[0], "libcuda.so.1");
    let searched = report.driver.search_path.join("\n");
    assert!(
        searched.contains(&dir.path().display().to_string()),
        "{searched}"
    );
    assert!(report.devices.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--bogus"][..],
        &["--size", "0"],
        &["--size", "abc"],
        &["--devices", "0,,1"],
        &["--devices", "first"],
        &["--min-time", "soon"],
        &["--timeout", "0s"],
        &["--iterations", "3", "--min-time", "1s"],
        &["--format", "xml"],
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        cmd.args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::is_empty().not());
    }
}

/// Options a subcommand does not use, negative numbers, overflowing
/// durations: each is a usage error whose message names the flag.
#[test]
fn misuse_is_a_usage_error_naming_the_flag() {
    for (args, flag) in [
        (&["schema", "--require-gpus", "8"][..], "--require-gpus"),
        (&["schema", "--json"], "--json"),
        (&["diagnoses", "--size", "64"], "--size"),
        (&["list", "--size", "4096"], "--size"),
        (&["list", "--strict"], "--strict"),
        (&["watch", "--output", "f"], "--output"),
        (&["watch", "--json"], "--json"),
        (&["exec", "--format", "json", "--", "true"], "--format"),
        (&["--json", "list"], "--json"),
        (&["--size", "64", "watch"], "--size"),
        (&["--size", "-1"], "--size"),
        (&["--iterations", "-3"], "--iterations"),
        (&["--seed", "-1"], "--seed"),
        (&["--require-gpus", "-1"], "--require-gpus"),
        (&["--require-memory", "-1GiB"], "--require-memory"),
        (&["--require-speedup", "-2"], "--require-speedup"),
        (&["--require-efficiency", "0"], "--require-efficiency"),
        (&["--require-efficiency", "150%"], "--require-efficiency"),
        (&["--timeout", "-5s"], "--timeout"),
        (&["watch", "--count", "-1"], "--count"),
        (&["watch", "--interval", "-1s"], "--interval"),
        (&["--timeout", "18446744073709551615s"], "--timeout"),
        (&["--min-time", "18446744073709551615s"], "--min-time"),
        (
            &["watch", "--interval", "18446744073709551615s"],
            "--interval",
        ),
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd.args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} must name {flag}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `health` misuse: exit 1 (Docker reserves 2) and one line naming the flag.
#[test]
fn health_misuse_is_one_line_and_exit_1() {
    for (args, flag) in [
        (&["health", "--output", "f"][..], "--output"),
        (&["health", "--size", "4096"], "--size"),
        (&["health", "--json"], "--json"),
        (&["health", "--seed", "1"], "--seed"),
        (&["health", "--bogus"], "--bogus"),
        (
            &["health", "--timeout", "18446744073709551615s"],
            "--timeout",
        ),
        (&["health", "--max-age", "-1s", "--state", "x"], "--max-age"),
        (&["health", "--state", "x"], "--max-age"),
        (&["--size", "0", "health"], "--size"),
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd.args(args).output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        assert_eq!(all.lines().count(), 1, "{args:?}: one line: {all}");
        assert!(
            all.starts_with("unhealthy: usage error") && all.contains(flag),
            "{args:?}: {all}"
        );
    }
}

/// Boolean variables take the usual spellings, as `--strict` would.
#[test]
fn boolean_environment_values_all_work() {
    for value in ["1", "0", "true", "false", "yes", "no", "on", "off"] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd
            .env("GPUPROBE_STRICT", value)
            .arg("--json")
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(2),
            "GPUPROBE_STRICT={value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.env("GPUPROBE_STRICT", "maybe")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("GPUPROBE_STRICT=maybe"));
}

/// Every invocation README.md, the Dockerfiles and the scripts show parses:
/// without a driver each runs to its no-GPU answer, never a usage error.
#[test]
#[allow(
    clippy::too_many_lines,
    reason = "a table of every documented invocation, one line each, and one loop over it"
)]
fn documented_invocations_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let prom = dir.path().join("gpu.prom");
    let prom = prom.to_str().unwrap();
    let report = dir.path().join("report.json");
    let report = report.to_str().unwrap();
    for args in [
        &[][..],
        &["--json"],
        &["--size", "1024"],
        &["--format", "json"],
        &["--format", "prometheus"],
        &[
            "--devices",
            "0,2",
            "--iterations",
            "3",
            "--seed",
            "7",
            "--timeout",
            "60s",
        ],
        &["--min-time", "200ms", "--output", report],
        &[
            "--require-gpus",
            "1",
            "--require-memory",
            "16GiB",
            "--strict",
        ],
        &[
            "--require-compute-capability",
            "8.0",
            "--require-driver",
            "12.2",
            "--require-speedup",
            "10",
        ],
        &["list"],
        &[
            "list",
            "--json",
            "--devices",
            "all",
            "--timeout",
            "10s",
            "--output",
            report,
        ],
        &["schema"],
        &["diagnoses"],
        &[
            "exec",
            "--size",
            "16",
            "--iterations",
            "1",
            "--timeout",
            "3s",
            "--",
            "/bin/true",
        ],
        &[
            "exec",
            "--warn-only",
            "--output",
            report,
            "--strict",
            "--",
            "/bin/true",
        ],
        &[
            "watch",
            "--count",
            "1",
            "--interval",
            "1h",
            "--quiet",
            "--size",
            "16",
            "--iterations",
            "1",
            "--timeout",
            "3s",
        ],
        &[
            "watch",
            "--count",
            "1",
            "--interval",
            "5m",
            "--size",
            "1024",
            "--state",
            state,
            "--prometheus",
            prom,
        ],
        &[
            "watch",
            "--count",
            "1",
            "--interval",
            "1m",
            "--size",
            "512",
            "--bandwidth-size",
            "0",
            "--quiet",
            "--state",
            state,
        ],
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd.args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            !stderr.lines().any(|l| l.starts_with("error:")),
            "{args:?}: {stderr}"
        );
    }
    for args in [
        &["health"][..],
        &["health", "--timeout", "3s"],
        &[
            "health",
            "--devices",
            "0",
            "--require-gpus",
            "1",
            "--strict",
        ],
        &["health", "--state", state, "--max-age", "2m"],
    ] {
        let (mut cmd, _dir) = gpuprobe_without_driver();
        let out = cmd.args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("usage error"), "{args:?}: {stdout}");
    }
}

#[test]
fn prometheus_format_prints_metrics() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.args(["--format", "prometheus"])
        .assert()
        .stdout(predicate::str::contains("# TYPE gpuprobe_"));
}

#[test]
fn help_and_version_exit_0() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.arg("--help")
        .assert()
        .code(0)
        .stdout(predicate::str::contains("Exit codes"));
    let (mut cmd, _dir) = gpuprobe_without_driver();
    cmd.arg("--version")
        .assert()
        .code(0)
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")))
        // The commit (or "unknown") and the target triple.
        .stdout(
            predicate::str::is_match(
                r"\(commit ([0-9a-f]{7,}(-dirty)?|unknown), [a-z0-9_]+-[a-z0-9_-]+\)",
            )
            .unwrap(),
        );
}

#[test]
fn schema_command_matches_the_published_schema() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    let out = cmd.arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let published = std::fs::read_to_string(root().join("docs/report.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), published);
    // The file is what the report types generate.
    assert_eq!(
        gpuprobe::export::schema(),
        published,
        "docs/report.schema.json is stale: run \
         `cargo run -q -p gpuprobe-docs -- schema > docs/report.schema.json`"
    );
}

#[test]
fn output_file_holds_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    let (mut cmd, _lib) = gpuprobe_without_driver();
    let out = cmd
        .args(["--json", "--seed", "7", "--output"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let written = std::fs::read(&file).unwrap();
    assert_eq!(written, out.stdout);
    parse_report(&written);
}

#[test]
fn unwritable_output_is_reported_not_a_crash() {
    // Refused before the probe runs (tests/output_files.rs has every case).
    let (mut cmd, _lib) = gpuprobe_without_driver();
    cmd.args(["--output", "/nonexistent-dir/report.json"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("cannot write --output"));
}

#[test]
fn the_bench_fixture_is_a_current_report() {
    // benches/report.rs renders this file; it must stay a valid report.
    let text = std::fs::read(root().join("benches/report-one-gpu.json")).unwrap();
    parse_report(&text);
}

/// `gpuprobe completions SHELL` prints a completion script naming every
/// subcommand; an unknown shell is a usage error.
#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = assert_cmd::Command::cargo_bin("gpuprobe")
            .unwrap()
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in ["list", "health", "exec", "watch", "schema", "diagnoses"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let bad = assert_cmd::Command::cargo_bin("gpuprobe")
        .unwrap()
        .args(["completions", "nosh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
