//! A real Prometheus server (Debian's `prometheus` package) scrapes
//! `watch --listen` and its HTTP API returns gpuprobe's series with their
//! labels; promtool checks and unit-tests the alert rules and the example
//! configuration in deploy/prometheus.
use std::time::Duration;

use serde_json::Value;

use crate::common::root;
use crate::support::{encode, free_port, get, run_ok, tool, wait_for, Killed, Watch};

const INSTALL: &str = "apt-get install prometheus";

/// A Prometheus scraping one target every second, with gpuprobe's alert
/// rules loaded, on a free loopback port and a storage folder of its own.
struct Server {
    process: Killed,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(prometheus: &std::path::Path, target: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let rules = root().join("deploy/prometheus/gpuprobe-alerts.yml");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: gpuprobe\n    static_configs:\n      - targets: ['{target}']\n",
            rules.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let process = std::process::Command::new(prometheus)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting prometheus");
        let mut server = Server {
            process: Killed(process),
            addr,
            _dir: dir,
        };
        wait_for("Prometheus to be ready", Duration::from_secs(60), || {
            if let Ok(Some(status)) = server.process.0.try_wait() {
                panic!("prometheus exited early: {status}");
            }
            std::net::TcpStream::connect(&server.addr)
                .ok()
                .and_then(|_| (get(&server.addr, "/-/ready", None).status == 200).then_some(()))
        });
        server
    }

    /// The instant vector of `query`: each series' labels and value.
    fn query(&self, query: &str) -> Vec<(serde_json::Map<String, Value>, String)> {
        let r = get(
            &self.addr,
            &format!("/api/v1/query?query={}", encode(query)),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let json: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(json["status"], "success", "{json}");
        json["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["metric"].as_object().unwrap().clone(),
                    s["value"][1].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Waits until `query` returns at least `n` series, and returns them.
    fn wait_series(&self, query: &str, n: usize) -> Vec<(serde_json::Map<String, Value>, String)> {
        wait_for(
            &format!("{n} series of {query} in Prometheus"),
            Duration::from_secs(90),
            || {
                let found = self.query(query);
                (found.len() >= n).then_some(found)
            },
        )
    }
}

/// The labels of a series, without `__name__`, as "k=v" sorted.
fn labels(series: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = series
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    out.sort();
    out
}

fn device_labels(instance: &str, index: u32, uuid: &str) -> Vec<String> {
    let mut l = vec![
        format!("index={index}"),
        format!("instance={instance}"),
        "job=gpuprobe".to_string(),
        "name=NVIDIA H100 80GB HBM3".to_string(),
        format!("uuid={uuid}"),
    ];
    l.sort();
    l
}

#[test]
#[ignore = "needs prometheus (apt-get install prometheus): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn prometheus_scrapes_a_healthy_node() {
    let Some(prometheus) = tool("prometheus", INSTALL) else {
        return;
    };
    let watch = Watch::start("healthy", &["--interval", "1s"]);
    let server = Server::start(&prometheus, &watch.addr);
    let up = server.wait_series("gpuprobe_device_up", 1);
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(
        labels(&up[0].0),
        device_labels(&watch.addr, 0, "GPU-5b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a5b")
    );
    assert_eq!(up[0].1, "1");
    let verdict = server.query("gpuprobe_verdict == 1");
    assert_eq!(verdict.len(), 1, "{verdict:?}");
    assert_eq!(verdict[0].0["verdict"], "healthy");
    let scrape = server.query("up{job=\"gpuprobe\"}");
    assert_eq!(scrape.len(), 1);
    assert_eq!(scrape[0].1, "1", "the scrape succeeded");
    let info = server.query("gpuprobe_info");
    assert_eq!(info[0].0["cuda_driver_version"], "12.4", "{info:?}");
}

#[test]
#[ignore = "needs prometheus (apt-get install prometheus): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn prometheus_scrapes_one_corrupt_gpu_and_the_alert_goes_pending() {
    let Some(prometheus) = tool("prometheus", INSTALL) else {
        return;
    };
    let watch = Watch::start("multi-gpu-one-corrupt", &["--interval", "1s"]);
    let server = Server::start(&prometheus, &watch.addr);
    let mut up = server.wait_series("gpuprobe_device_up", 4);
    up.sort_by_key(|(m, _)| m["index"].as_str().unwrap().to_string());
    assert_eq!(up.len(), 4, "{up:?}");
    for (i, (series, value)) in up.iter().enumerate() {
        let uuid = format!("GPU-{}b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a5{}", i + 1, i + 1);
        assert_eq!(labels(series), device_labels(&watch.addr, i as u32, &uuid));
        assert_eq!(value, if i == 2 { "0" } else { "1" }, "GPU {i}");
    }
    let verdict = server.query("gpuprobe_verdict == 1");
    assert_eq!(verdict[0].0["verdict"], "failed", "{verdict:?}");
    // The rules Prometheus loaded see the failed GPU (pending: `for: 2m`).
    let alerts = server.wait_series("ALERTS{alertname=\"GpuprobeGPUFailed\"}", 1);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].0["index"], "2");
    assert_eq!(alerts[0].0["alertstate"], "pending");
}

#[test]
#[ignore = "needs promtool (apt-get install prometheus): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn alert_rules_pass_promtool_check_and_unit_tests() {
    let Some(promtool) = tool("promtool", INSTALL) else {
        return;
    };
    let dir = root().join("deploy/prometheus");
    let checked = run_ok(&promtool, &["check", "rules", "gpuprobe-alerts.yml"], &dir);
    assert!(checked.contains("SUCCESS: 19 rules found"), "{checked}");
    let tested = run_ok(
        &promtool,
        &["test", "rules", "gpuprobe-alerts.test.yml"],
        &dir,
    );
    assert!(tested.contains("SUCCESS"), "{tested}");
    run_ok(&promtool, &["check", "config", "prometheus.yml"], &dir);
}

#[test]
fn every_alert_has_a_unit_test_and_uses_exported_metrics() {
    let dir = root().join("deploy/prometheus");
    let rules = std::fs::read_to_string(dir.join("gpuprobe-alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("gpuprobe-alerts.test.yml")).unwrap();
    let exported = crate::support::exported_names();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 19);
    for alert in alerts {
        let fires = tests
            .split("alertname: ")
            .skip(1)
            .filter(|t| t.starts_with(&format!("{alert}\n")))
            .any(|t| t.contains("exp_labels"));
        assert!(fires, "no unit test expects {alert} to fire");
    }
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("gpuprobe_"))
    {
        assert!(
            exported.contains(name),
            "{name} is not a metric gpuprobe exports"
        );
    }
}
