//! Shared test harness: the real gpuprobe binary, run against the fake
//! driver, with every JSON report checked against the published schema and
//! read back into the typed report. The report types accept unknown fields
//! (docs/report.md, "Compatibility policy"), so drift is caught by writing
//! the typed report out again and comparing it with what gpuprobe printed: a
//! field the types do not know, or read differently, fails there.
#![allow(dead_code)]

pub mod docker;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use gpuprobe::report::Report;
use serde_json::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn scenario(name: &str) -> PathBuf {
    root().join("tests/scenarios").join(format!("{name}.json"))
}

/// The `fakegpu` helper binary, built once per test process.
fn fakegpu_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "fakegpu", "--message-format=json"])
            .current_dir(root())
            .output()
            .expect("running cargo to build the fake driver");
        assert!(
            out.status.success(),
            "building fakegpu failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|m| m["target"]["name"] == "fakegpu")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no fakegpu executable")
    })
}

/// Another binary of the fakegpu package (e.g. `driver-answers`).
pub fn fakegpu_tool(name: &str) -> PathBuf {
    fakegpu_bin().with_file_name(name)
}

/// A folder holding libcuda.so.1 for `scenario`.
pub fn fake_driver(scenario_path: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(fakegpu_bin())
        .arg("prepare")
        .arg(scenario_path)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fakegpu prepare failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// gpuprobe with no driver anywhere on its library path, and an empty root
/// (no /dev/nvidia*, no /proc/driver/nvidia) in place of this machine's.
///
/// The dynamic loader still finds a driver installed on this machine (its
/// cache and system folders cannot be turned off for one process), so on
/// such a machine the no-driver path cannot be tested: that fails loudly
/// here instead of passing without testing anything.
pub fn gpuprobe_without_driver() -> (assert_cmd::Command, tempfile::TempDir) {
    if let Some(found) = host_driver() {
        panic!(
            "this machine has a CUDA driver ({found}), which gpuprobe would load: \
             the no-driver tests need a machine without one (run the suite in \
             a container without GPU access)"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("gpuprobe").unwrap();
    cmd.env("LD_LIBRARY_PATH", empty.path())
        .env("GPUPROBE_TEST_ROOT", empty.path())
        .env_remove("FAKEGPU_SCENARIO");
    (cmd, empty)
}

/// Where this machine's dynamic loader would find libcuda.so.1 without any
/// LD_LIBRARY_PATH: its cache (`ldconfig -p`) or a system folder.
fn host_driver() -> Option<String> {
    static FOUND: OnceLock<Option<String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let cache = std::process::Command::new("ldconfig")
                .arg("-p")
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .find(|l| l.trim_start().starts_with("libcuda.so.1 "))
                        .map(|l| format!("ld.so.cache: {}", l.trim()))
                });
            cache.or_else(|| {
                [
                    "/lib/x86_64-linux-gnu",
                    "/usr/lib/x86_64-linux-gnu",
                    "/lib/aarch64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/lib64",
                    "/usr/lib64",
                    "/lib",
                    "/usr/lib",
                ]
                .iter()
                .map(|dir| Path::new(dir).join("libcuda.so.1"))
                .find(|p| p.exists())
                .map(|p| p.display().to_string())
            })
        })
        .clone()
}

/// gpuprobe running against a scenario's fake driver.
pub struct Run {
    pub output: Output,
    pub json: Value,
    pub report: Report,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.output.status.code().expect("exited by a signal")
    }
}

/// A gpuprobe command wired to a scenario's fake driver; keep the folder
/// alive while the command runs.
pub fn command_with(scenario_name: &str) -> (std::process::Command, tempfile::TempDir) {
    command_with_file(&scenario(scenario_name))
}

/// `command_with` for a scenario file of the test's own (a shipped
/// scenario changed in one field).
pub fn command_with_file(path: &Path) -> (std::process::Command, tempfile::TempDir) {
    let dir = fake_driver(path);
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"));
    for var in [
        "CUDA_VISIBLE_DEVICES",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "NVIDIA_REQUIRE_CUDA",
        "GPUPROBE_REQUIRE_GPUS",
        "GPUPROBE_REQUIRE_MEMORY",
        "GPUPROBE_REQUIRE_COMPUTE_CAPABILITY",
        "GPUPROBE_REQUIRE_DRIVER",
        "GPUPROBE_REQUIRE_SPEEDUP",
        "GPUPROBE_STRICT",
        "GPUPROBE_BANDWIDTH_SIZE",
    ]
    .into_iter()
    .chain(gpuprobe::report::TrapVariable::ALL.map(gpuprobe::report::TrapVariable::as_str))
    {
        cmd.env_remove(var);
    }
    for (k, v) in scenario_env(dir.path()) {
        cmd.env(k, v);
    }
    (cmd, dir)
}

/// `--bandwidth-size` in tests, through its variable: the fake copies
/// every byte on the CPU and runs the streaming kernel's threads one by
/// one, so tests keep the bandwidth check's buffers small, as they keep
/// `--size` small. A test of the default or of larger copies sets its own.
pub const BANDWIDTH_SIZE: (&str, &str) = ("GPUPROBE_BANDWIDTH_SIZE", "64KiB");

/// The variables `fakegpu prepare` wrote for the scenario, and the tests'
/// `BANDWIDTH_SIZE`.
pub fn scenario_env(dir: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(dir.join("env"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([(BANDWIDTH_SIZE.0.to_string(), BANDWIDTH_SIZE.1.to_string())])
        .collect()
}

/// Runs the ignored test `inner` of this test binary in a process of its
/// own with `scenario_name`'s fake driver on its library path (a process
/// finds libcuda.so.1 through LD_LIBRARY_PATH as it starts, so the test
/// that calls gpuprobe's library against the fake cannot run in this one),
/// and asserts it passed.
pub fn run_inner(scenario_name: &str, inner: &str) {
    let (_cmd, dir) = command_with(scenario_name);
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", inner, "--ignored", "--nocapture"])
        .envs(scenario_env(dir.path()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// gpuprobe with exactly `args` (a subcommand and its `--json` included)
/// against a scenario; its stdout must be a JSON report.
pub fn gpuprobe_args(scenario_name: &str, args: &[&str]) -> Run {
    let (mut cmd, _dir) = command_with(scenario_name);
    let output = cmd.args(args).output().unwrap();
    let (json, report) = parse_report(&output.stdout);
    Run {
        output,
        json,
        report,
    }
}

pub fn gpuprobe_with(scenario_name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let (std_cmd, _dir) = command_with(scenario_name);
    let mut cmd = assert_cmd::Command::from_std(std_cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("--json").args(args);
    let output = cmd.output().unwrap();
    let (json, report) = parse_report(&output.stdout);
    Run {
        output,
        json,
        report,
    }
}

/// Validates against docs/report.schema.json and reads back strictly: the
/// typed report, written out again, must be the JSON it was read from.
pub fn parse_report(stdout: &[u8]) -> (Value, Report) {
    let json: Value = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(stdout)
        )
    });
    assert_valid(&json);
    let report: Report =
        serde_json::from_value(json.clone()).expect("report reads back into the typed tree");
    assert_eq!(
        report.exit_code,
        report.verdict.exit_code(),
        "exit_code matches the verdict"
    );
    if let Some(drift) = round_trip_drift(&json, &report) {
        panic!("the typed report does not read back what gpuprobe wrote: {drift}");
    }
    (json, report)
}

/// Where `report`, serialised again, differs from `json` (a field the types
/// dropped or read differently), or `None` when it is the same document.
pub fn round_trip_drift(json: &Value, report: &Report) -> Option<String> {
    let again = serde_json::to_value(report).expect("a report serialises");
    first_difference("", json, &again)
}

fn first_difference(path: &str, written: &Value, read: &Value) -> Option<String> {
    match (written, read) {
        (Value::Object(a), Value::Object(b)) => {
            if let Some(k) = a.keys().find(|k| !b.contains_key(*k)) {
                return Some(format!("{path}/{k} is not in the typed report"));
            }
            if let Some(k) = b.keys().find(|k| !a.contains_key(*k)) {
                return Some(format!("{path}/{k} was not written but reads back"));
            }
            a.iter()
                .find_map(|(k, v)| first_difference(&format!("{path}/{k}"), v, &b[k]))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(&format!("{path}/{i}"), x, y)),
        _ if written == read => None,
        _ => Some(format!("{path}: written {written}, reads back as {read}")),
    }
}

pub fn assert_valid(json: &Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(root().join("docs/report.schema.json")).unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    });
    let errors: Vec<String> = validator
        .iter_errors(json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report violates docs/report.schema.json:\n{}",
        errors.join("\n")
    );
}
