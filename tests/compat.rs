//! The wire contract's promise to readers (docs/report.md, "Compatibility
//! policy"): a report from a newer gpuprobe of the same `schema_version`,
//! with fields this release does not know at several levels, passes the
//! published schema, reads into the typed report and is judged by
//! `health --state` on its verdict, not refused (a throttle reason it does
//! not name kept as written); a report of another
//! `schema_version` is refused by name; and the test suite's own drift check
//! still notices fields the types do not know.
mod common;

use std::time::SystemTime;

use gpuprobe::report::{ReadError, Report, ThrottleReason, SCHEMA_VERSION};
use serde_json::{json, Value};

/// benches/report-one-gpu.json (a healthy one-GPU report) as a later
/// release of the same schema version might write it: new fields at the top,
/// in nested objects, in array elements and in a telemetry block, and a
/// fresh `started_at` so `--max-age` accepts it.
fn future_report(verdict: &str) -> Value {
    let text = std::fs::read(common::root().join("benches/report-one-gpu.json")).unwrap();
    let mut r: Value = serde_json::from_slice(&text).unwrap();
    r["gpuprobe_version"] = json!("0.9.0");
    r["started_at"] = json!(humantime::format_rfc3339_millis(SystemTime::now()).to_string());
    r["verdict"] = json!(verdict);
    r["exit_code"] = json!(i32::from(verdict == "failed"));
    r["host"] = json!({ "hostname": "node-7", "boot_id": "abc" });
    r["settings"]["precision"] = json!("tf32");
    r["checks"][0]["attempts"] = json!(2);
    r["driver"]["kernel_module_loaded"] = json!(true);
    let device = &mut r["devices"][0];
    device["serial"] = json!("1320123456789");
    device["matmul"]["verification"]["f64_sample"]["strategy"] = json!("stratified");
    device["telemetry"]["fan_speed_percent"] = json!(40);
    // A throttle reason this release does not name (throttle reasons are an
    // open-ended set), beside one it does and a bit it keeps unnamed.
    device["telemetry"]["throttle_reasons"] =
        json!(["sw_power_cap", "board_limit", "unknown_0x400"]);
    r["nvml"]["cuda_driver_version"] = json!(12040);
    r["environment"]["cgroup_version"] = json!(2);
    r
}

#[test]
fn a_future_report_of_this_schema_version_passes_the_schema() {
    let report = future_report("healthy");
    assert_eq!(report["schema_version"], json!(SCHEMA_VERSION));
    common::assert_valid(&report);
}

#[test]
fn a_future_report_reads_into_the_typed_report_ignoring_new_fields() {
    let json = future_report("healthy");
    let report = Report::from_json(json.to_string().as_bytes()).expect("a future report reads");
    assert_eq!(report.gpuprobe_version, "0.9.0");
    assert_eq!(report.devices.len(), 1);
    let reasons = report.devices[0]
        .telemetry
        .as_ref()
        .unwrap()
        .throttle_reasons
        .value();
    assert_eq!(
        reasons.map(Vec::as_slice),
        Some(
            &[
                ThrottleReason::SwPowerCap,
                ThrottleReason::Other("board_limit".into()),
                ThrottleReason::Unknown(0x400)
            ][..]
        )
    );
    // The drift check of the test suite must see what the types dropped.
    let drift = common::round_trip_drift(&json, &report).expect("dropped fields are noticed");
    assert!(drift.contains("/host"), "{drift}");
}

#[test]
fn health_state_judges_a_future_report_on_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    for (verdict, expect) in [("healthy", 0), ("failed", 1)] {
        std::fs::write(&state, future_report(verdict).to_string()).unwrap();
        let (mut cmd, _empty) = common::gpuprobe_without_driver();
        let out = cmd
            .args(["health", "--max-age", "1h", "--state"])
            .arg(&state)
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(expect), "{line}");
        assert!(
            line.starts_with(if expect == 0 {
                "healthy:"
            } else {
                "unhealthy:"
            }),
            "{line}"
        );
        assert!(!line.contains("not a gpuprobe report"), "{line}");
    }
}

#[test]
fn another_schema_version_is_refused_by_name() {
    let mut json = future_report("healthy");
    json["schema_version"] = json!(SCHEMA_VERSION + 1);
    let err = Report::from_json(json.to_string().as_bytes()).unwrap_err();
    assert!(
        matches!(err, ReadError::Version { found } if found == u64::from(SCHEMA_VERSION + 1)),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(&state, json.to_string()).unwrap();
    let (mut cmd, _empty) = common::gpuprobe_without_driver();
    let out = cmd
        .args(["health", "--max-age", "1h", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema_version 2"));
}
