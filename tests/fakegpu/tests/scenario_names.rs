//! Names in a scenario are checked against the fake's closed sets wherever
//! a scenario loads: `fakegpu check`, `fakegpu prepare`, and each fake
//! library's own load at run time. A misspelt driver call, NVML field,
//! exported symbol, kernel or device node is an error naming the file and
//! the key (with the nearest valid name), never a scenario that silently
//! tests the healthy path. Every scenario in tests/scenarios passes.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{json, Value};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// A folder of this test's own under the target's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("scenario-names-{}", std::process::id()))
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// tests/scenarios/healthy.json with `edit` applied, written as NAME.json.
fn edited(name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(scenarios().join("healthy.json")).unwrap();
    let mut scenario: Value = serde_json::from_str(&text).unwrap();
    edit(&mut scenario);
    let path = scratch(name).join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&scenario).unwrap()).unwrap();
    path
}

fn fakegpu(args: &[&str], scenario: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fakegpu"))
        .arg(args[0])
        .arg(scenario)
        .args(&args[1..])
        .output()
        .unwrap()
}

/// The fake libraries of the healthy scenario, prepared once: `prepare`
/// links them from the static library, which only `cargo build -p
/// fakegpu` makes (a test build makes the rlib).
fn healthy_libraries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let built = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "fakegpu"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(built.success(), "cargo build -p fakegpu");
        let dir = scratch("healthy-libraries");
        let out = fakegpu(
            &["prepare", dir.to_str().unwrap()],
            &scenarios().join("healthy.json"),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        dir
    })
}

/// What the fake libcuda and libnvidia-ml print when they load `scenario`
/// at run time (FAKEGPU_SCENARIO), and whether cuInit succeeded: the
/// libraries of a good scenario, pointed at `scenario`.
fn load_at_run_time(scenario: &Path) -> (String, i64) {
    let libs = healthy_libraries();
    let out = Command::new(env!("CARGO_BIN_EXE_driver-answers"))
        .arg(libs.join("libcuda.so.1"))
        .arg(libs.join("libnvidia-ml.so.1"))
        .env("FAKEGPU_SCENARIO", scenario)
        .env("FAKEGPU_RM", libs.join("rm"))
        .env("FAKEGPU_LOCK", libs.join("driver.lock"))
        .output()
        .unwrap();
    assert!(out.status.success(), "driver-answers: {}", stderr(&out));
    let answers: Value = serde_json::from_slice(&out.stdout).unwrap();
    let init = answers["cuda"]["cuInit"].as_i64().unwrap();
    (stderr(&out), init)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command failed, and said each of `needles`.
fn assert_rejected(what: &str, out: &Output, needles: &[&str]) {
    let said = stderr(out);
    assert!(!out.status.success(), "{what} accepted it:\n{said}");
    for needle in needles {
        assert!(
            said.contains(needle),
            "{what} did not say {needle:?}:\n{said}"
        );
    }
}

/// `check`, `prepare` and both libraries at run time reject the scenario,
/// each saying every one of `needles`.
fn rejected_everywhere(scenario: &Path, needles: &[&str]) {
    let path = scenario.to_str().unwrap();
    let mut needles = needles.to_vec();
    needles.push(path);
    assert_rejected("check", &fakegpu(&["check"], scenario), &needles);
    let stem = scenario.file_stem().unwrap().to_str().unwrap();
    let dir = scratch(&format!("{stem}-prepared"));
    assert_rejected(
        "prepare",
        &fakegpu(&["prepare", dir.to_str().unwrap()], scenario),
        &needles,
    );
    let (said, init) = load_at_run_time(scenario);
    // CUDA_ERROR_UNKNOWN: the fake cannot stand for any machine.
    assert_eq!(init, 999, "libcuda loaded it:\n{said}");
    for needle in &needles {
        let line = format!("fakegpu: {path}:");
        assert!(
            said.lines()
                .any(|l| l.starts_with(&line) && l.contains(needle)),
            "the libraries did not say {needle:?}:\n{}",
            said.lines().take(4).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn a_misspelt_fault_call_is_rejected_everywhere() {
    let scenario = edited("fault-call", |s| {
        s["faults"] = json!([{"call": "cuLaunchKernal", "result": 700}]);
    });
    rejected_everywhere(
        &scenario,
        &["faults[].call", "\"cuLaunchKernal\"", "\"cuLaunchKernel\""],
    );
}

#[test]
fn a_misspelt_not_supported_key_is_rejected_everywhere() {
    let scenario = edited("not-supported", |s| {
        s["devices"][0]["nvml"] = json!({"not_supported": ["temprature"]});
    });
    rejected_everywhere(
        &scenario,
        &[
            "devices[].nvml.not_supported",
            "\"temprature\"",
            "\"temperature_celsius\"",
        ],
    );
}

#[test]
fn a_misspelt_missing_symbol_is_rejected_everywhere() {
    let scenario = edited("missing-symbol", |s| {
        s["missing_symbols"] = json!(["cuDeviceGetUuid_V2"]);
    });
    rejected_everywhere(
        &scenario,
        &[
            "missing_symbols",
            "\"cuDeviceGetUuid_V2\"",
            "\"cuDeviceGetUuid_v2\"",
        ],
    );
}

#[test]
fn a_kernel_bug_in_no_kernel_is_rejected() {
    let scenario = edited("kernel-bug", |s| {
        s["kernel_bug"] = json!({"kernel": "gpuprobe_sgem_", "words": 1});
    });
    let path = scenario.to_str().unwrap();
    assert_rejected(
        "check",
        &fakegpu(&["check"], &scenario),
        &[path, "kernel_bug.kernel", "\"gpuprobe_sgem_\""],
    );
}

#[test]
fn a_memory_fault_that_names_no_cell_is_rejected() {
    for (name, fault, needle) in [
        (
            "fault-misaligned",
            json!({"offset": 6, "bit": 3, "kind": "stuck_at_1"}),
            "no bit of a 32-bit word",
        ),
        (
            "fault-bit-32",
            json!({"offset": 8, "bit": 32, "kind": "stuck_at_0"}),
            "no bit of a 32-bit word",
        ),
        (
            "fault-coupled-alone",
            json!({"offset": 8, "bit": 3, "kind": "coupled"}),
            "aggressor_offset and aggressor_bit",
        ),
        (
            "fault-coupled-to-itself",
            json!({"offset": 8, "bit": 3, "kind": "coupled", "aggressor_offset": 8, "aggressor_bit": 3}),
            "coupled to itself",
        ),
    ] {
        let scenario = edited(name, |s| {
            s["devices"][0]["memory_faults"] = json!([fault]);
        });
        assert_rejected(
            name,
            &fakegpu(&["check"], &scenario),
            &["devices[0].memory_faults[0]", needle],
        );
    }
}

#[test]
fn a_denied_node_that_is_not_laid_out_is_rejected() {
    let scenario = edited("dev-unopenable", |s| {
        s["host"] = json!({"dev_unopenable": ["nvidai0"]});
    });
    let path = scenario.to_str().unwrap();
    assert_rejected(
        "check",
        &fakegpu(&["check"], &scenario),
        &[path, "host.dev_unopenable", "\"nvidai0\"", "\"nvidia0\""],
    );
}

#[test]
fn every_scenario_passes_check() {
    let mut checked = 0;
    for entry in std::fs::read_dir(scenarios()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let out = fakegpu(&["check"], &path);
            assert!(out.status.success(), "{}", stderr(&out));
            checked += 1;
        }
    }
    assert!(checked > 50, "found only {checked} scenarios");
}
