//! deploy/grafana/gpuprobe-dashboard.json: every panel query is PromQL that
//! promtool accepts, and every gpuprobe metric it names is one gpuprobe
//! exports.
use std::fmt::Write as _;

use serde_json::Value;

use crate::common::root;
use crate::support::{exported_names, run_ok, tool};

/// Every `expr` in the dashboard, wherever it sits.
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

fn dashboard_exprs() -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("deploy/grafana/gpuprobe-dashboard.json")).unwrap();
    let json: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    exprs(&json, &mut out);
    assert!(out.len() >= 10, "found only {} queries", out.len());
    out
}

/// Grafana's variables replaced by what they expand to at query time.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("$instance", ".*")
}

#[test]
fn dashboard_queries_use_exported_metrics() {
    let exported = exported_names();
    for expr in dashboard_exprs() {
        for name in expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("gpuprobe_"))
        {
            assert!(
                exported.contains(name),
                "{name} (in {expr}) is not a metric gpuprobe exports"
            );
        }
    }
}

#[test]
#[ignore = "needs promtool (apt-get install prometheus): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn dashboard_queries_pass_promtool() {
    let Some(promtool) = tool("promtool", "apt-get install prometheus") else {
        return;
    };
    // Each query as a recording rule: `promtool check rules` parses every
    // expression with Prometheus' own PromQL parser.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs().iter().enumerate() {
        let quoted = serde_json::to_string(&expand(expr)).unwrap();
        let _ = write!(
            rules,
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dashboard.rules.yml"), &rules).unwrap();
    let out = run_ok(
        &promtool,
        &["check", "rules", "dashboard.rules.yml"],
        dir.path(),
    );
    assert!(out.contains("SUCCESS"), "{out}");
}
