//! The command line without a GPU: the no-driver report, usage errors, the
//! schema command and --output. Runs on any machine.
mod common;

use common::{gpuprobe_without_driver, parse_report, root};
use gpuprobe::report::{CheckStatus, Verdict};
use predicates::prelude::*;

/// A machine with a real driver cannot show the no-driver report.
fn driver_installed() -> bool {
    let found = std::process::Command::new("ldconfig")
        .arg("-p")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libcuda.so.1"));
    if found {
        eprintln!("skipped: this machine has a libcuda.so.1 installed");
    }
    found
}

#[test]
fn no_driver_text_says_so_and_exits_3() {
    if driver_installed() {
        return;
    }
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
    if driver_installed() {
        return;
    }
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
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn schema_command_matches_the_published_schema() {
    let (mut cmd, _dir) = gpuprobe_without_driver();
    let out = cmd.arg("schema").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let published = std::fs::read_to_string(root().join("docs/report.schema.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        published,
        "docs/report.schema.json is stale: run `gpuprobe schema > docs/report.schema.json`"
    );
}

#[test]
fn output_file_holds_the_same_report() {
    if driver_installed() {
        return;
    }
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
    let (mut cmd, _lib) = gpuprobe_without_driver();
    cmd.args(["--output", "/nonexistent-dir/report.json"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot write --output"));
}

#[test]
fn the_bench_fixture_is_a_current_report() {
    // benches/report.rs renders this file; it must stay a valid report.
    let text = std::fs::read(root().join("benches/report-one-gpu.json")).unwrap();
    parse_report(&text);
}
