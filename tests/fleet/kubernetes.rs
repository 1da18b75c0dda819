//! deploy/kubernetes: the manifests validate against named Kubernetes
//! versions' schemas (PyPI kubernetes-validate, strict: unknown fields
//! fail), and the node-problem-detector plugin config holds only fields NPD
//! reads and maps gpuprobe's exit codes onto NPD's states.
use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::common::{command_with, root};
use crate::support::{run_ok, tool};

/// The Kubernetes versions the manifests are checked against: the oldest
/// and a recent release kubernetes-validate 1.37 bundles schemas for.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.34.0"];

pub fn manifests() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join("deploy/kubernetes")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
#[ignore = "needs kubernetes-validate (pip install kubernetes-validate in a venv): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn manifests_validate_against_kubernetes_schemas() {
    let Some(validate) = tool(
        "kubernetes-validate",
        "python3 -m venv V && V/bin/pip install kubernetes-validate",
    ) else {
        return;
    };
    let files = manifests();
    assert!(files.len() >= 3, "{files:?}");
    for version in KUBERNETES_VERSIONS {
        let mut args = vec!["--strict", "-k", version];
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        args.extend(names.iter().map(String::as_str));
        let out = run_ok(&validate, &args, root());
        // Each file names its resources; every one must have passed.
        for kind in [
            "deployment/trainer",
            "daemonset/gpuprobe",
            "service/gpuprobe",
            "namespace/gpuprobe",
            "priorityclass/gpuprobe-node-check",
            "job/gpuprobe-node-check",
        ] {
            assert!(
                out.contains(&format!("passed for resource {kind}")),
                "{out}"
            );
        }
        assert!(!out.contains("ERROR") && !out.contains("WARN"), "{out}");
    }
}

/// Fields node-problem-detector reads from a custom plugin monitor config,
/// from its source (pkg/custompluginmonitor/types/config.go and types.go,
/// pkg/types/types.go; documented in docs/custom_plugin_monitor.md).
const NPD_TOP: [&str; 6] = [
    "plugin",
    "pluginConfig",
    "source",
    "conditions",
    "rules",
    "metricsReporting",
];
const NPD_PLUGIN_CONFIG: [&str; 6] = [
    "invoke_interval",
    "timeout",
    "max_output_length",
    "concurrency",
    "enable_message_change_based_condition_update",
    "skip_initial_status",
];
const NPD_CONDITION: [&str; 9] = [
    "type",
    "status",
    "transition",
    "reason",
    "message",
    "taintEnabled",
    "taintKey",
    "taintValue",
    "taintEffect",
];
const NPD_RULE: [&str; 7] = [
    "type",
    "condition",
    "reason",
    "path",
    "args",
    "timeout",
    "invoke_interval",
];

fn npd_config() -> Value {
    let text = std::fs::read_to_string(
        root().join("deploy/kubernetes/node-problem-detector/gpuprobe-monitor.json"),
    )
    .unwrap();
    serde_json::from_str(&text).expect("the NPD config is JSON")
}

fn only_fields(what: &str, value: &Value, allowed: &[&str]) {
    let allowed: BTreeSet<&str> = allowed.iter().copied().collect();
    for key in value.as_object().unwrap().keys() {
        assert!(
            allowed.contains(key.as_str()),
            "{what}.{key} is not a field node-problem-detector reads"
        );
    }
}

/// Go's time.ParseDuration for the plain forms the config uses ("30s", "2m").
fn go_seconds(text: &str) -> u64 {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("bad duration {text:?}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("unexpected duration unit in {text:?}"),
    }
}

#[test]
fn npd_config_uses_only_npd_fields_and_passes_its_checks() {
    let config = npd_config();
    only_fields("", &config, &NPD_TOP);
    only_fields("pluginConfig", &config["pluginConfig"], &NPD_PLUGIN_CONFIG);
    // NPD's Validate(): the plugin must be "custom".
    assert_eq!(config["plugin"], "custom");
    let global = go_seconds(config["pluginConfig"]["timeout"].as_str().unwrap());
    go_seconds(config["pluginConfig"]["invoke_interval"].as_str().unwrap());
    let conditions = config["conditions"].as_array().unwrap();
    for c in conditions {
        only_fields("conditions[]", c, &NPD_CONDITION);
    }
    let rules = config["rules"].as_array().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        only_fields("rules[]", rule, &NPD_RULE);
        let kind = rule["type"].as_str().unwrap();
        assert!(kind == "permanent" || kind == "temporary", "{kind}");
        // Validate(): a rule's timeout may not exceed the global one...
        assert!(go_seconds(rule["timeout"].as_str().unwrap()) <= global);
        // ...and a permanent rule's condition needs a default condition.
        if kind == "permanent" {
            assert!(conditions.iter().any(|c| c["type"] == rule["condition"]));
        }
        assert!(rule["path"].as_str().unwrap().ends_with("/gpuprobe"));
    }
}

/// NPD's reading of a plugin's exit status
/// (pkg/custompluginmonitor/plugin/plugin.go): 0 OK, 1 NonOK, else Unknown.
#[derive(Debug, PartialEq)]
enum NpdStatus {
    Ok,
    NonOk,
    Unknown,
}

fn npd_status(code: Option<i32>) -> NpdStatus {
    match code {
        Some(0) => NpdStatus::Ok,
        Some(1) => NpdStatus::NonOk,
        _ => NpdStatus::Unknown,
    }
}

#[test]
fn health_exit_codes_map_onto_npd_ok_and_nonok_never_unknown() {
    let config = npd_config();
    let rule = &config["rules"][0];
    let args: Vec<&str> = rule["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let max_output = config["pluginConfig"]["max_output_length"]
        .as_u64()
        .unwrap() as usize;
    for (scenario, extra, expected) in [
        ("healthy", &[][..], NpdStatus::Ok),
        ("multi-gpu-one-corrupt", &[][..], NpdStatus::NonOk),
        ("no-device", &[][..], NpdStatus::NonOk),
        ("ecc-uncorrectable", &[][..], NpdStatus::NonOk),
        // A hung driver call: health's deadline, shortened for the test.
        ("hang", &["--timeout", "1s"][..], NpdStatus::NonOk),
        // A usage error is still 0 or 1 for health (1 here).
        ("healthy", &["--no-such-flag"][..], NpdStatus::NonOk),
    ] {
        let (mut cmd, _lib) = command_with(scenario);
        let out = cmd.args(&args).args(extra).output().unwrap();
        let status = npd_status(out.status.code());
        assert_eq!(status, expected, "{scenario} {extra:?}: {out:?}");
        // NPD's condition message is the plugin's stdout; a usage error's
        // message goes to stderr (NPD logs it).
        let message = String::from_utf8_lossy(&out.stdout);
        let usage_error = extra.contains(&"--no-such-flag");
        assert!(
            usage_error || (!message.trim().is_empty() && message.trim().len() <= max_output),
            "{scenario}: NPD keeps {max_output} bytes of the message: {message:?}"
        );
    }
}
