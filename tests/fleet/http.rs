//! `watch --listen` through the real binary: what /metrics and /healthz
//! serve, content negotiation, bad addresses, and clients that cannot stall
//! the probe loop.
use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use crate::common::command_with;
use crate::support::{get, request, wait_for, Watch};

/// What Prometheus 2.42 sends when it scrapes (scrape/scrape.go).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[test]
fn metrics_and_healthz_serve_the_latest_report() {
    let dir = tempfile::tempdir().unwrap();
    let textfile = dir.path().join("gpuprobe.prom");
    // One probe an hour: the textfile and the endpoint hold the same report.
    let watch = Watch::start(
        "healthy",
        &[
            "--interval",
            "1h",
            "--prometheus",
            textfile.to_str().unwrap(),
        ],
    );
    watch.wait_first_report();
    let expected = std::fs::read_to_string(&textfile).unwrap();

    let text = get(&watch.addr, "/metrics", None);
    assert_eq!(text.status, 200);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        text.body, expected,
        "the endpoint serves the textfile's metrics"
    );
    assert!(text
        .body
        .contains("gpuprobe_verdict{verdict=\"healthy\"} 1"));
    assert!(text.body.contains(
        "gpuprobe_device_up{index=\"0\",uuid=\"GPU-5b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a5b\",name=\"NVIDIA H100 80GB HBM3\"} 1"
    ));

    let open = get(&watch.addr, "/metrics", Some(PROMETHEUS_ACCEPT));
    assert_eq!(open.status, 200);
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(open.body, format!("{expected}# EOF\n"));

    let head = request(&watch.addr, "HEAD", "/metrics", None);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(expected.len().to_string().as_str())
    );

    let health = get(&watch.addr, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(health.body.starts_with("healthy: "), "{}", health.body);
    assert_eq!(get(&watch.addr, "/other", None).status, 404);
    assert_eq!(request(&watch.addr, "POST", "/metrics", None).status, 405);
}

#[test]
fn healthz_is_503_when_a_gpu_fails() {
    let watch = Watch::start(
        "multi-gpu-one-corrupt",
        &["--interval", "1h", "--unhealthy-after", "1"],
    );
    watch.wait_first_report();
    let health = get(&watch.addr, "/healthz", None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.body.starts_with("unhealthy: GPU 2 (GPU-3b3a8f1e"),
        "{}",
        health.body
    );
    let metrics = get(&watch.addr, "/metrics", None);
    assert_eq!(
        metrics.status, 200,
        "metrics are served whatever the verdict"
    );
    assert!(metrics
        .body
        .contains("gpuprobe_verdict{verdict=\"failed\"} 1"));
}

/// One failed cycle does not turn /healthz unhealthy: the first probe of
/// `flapping` fails (its one corrupt copy), /healthz stays 200 and says so,
/// while the metrics keep the cycle's own verdict; the cycles after it
/// pass, and /healthz never answers 503.
#[test]
fn one_failed_cycle_keeps_healthz_200() {
    let watch = Watch::start("flapping", &["--interval", "1h"]);
    watch.wait_first_report();
    let health = get(&watch.addr, "/healthz", None);
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        health.body.starts_with(
            "healthy: this probe failed, 1 of 3 consecutive failures before unhealthy: GPU 0"
        ),
        "{}",
        health.body
    );
    let metrics = get(&watch.addr, "/metrics", None);
    assert!(metrics
        .body
        .contains("gpuprobe_verdict{verdict=\"failed\"} 1"));
    assert!(metrics
        .body
        .contains("\ngpuprobe_watch_consecutive_failures 1\n"));
    assert!(metrics.body.contains("\ngpuprobe_watch_unhealthy 0\n"));
    drop(watch);

    let watch = Watch::start("flapping", &["--interval", "50ms"]);
    watch.wait_first_report();
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < end {
        let health = get(&watch.addr, "/healthz", None);
        assert_eq!(health.status, 200, "{}", health.body);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fault that stays turns /healthz 503 at the N-th failed cycle in a
/// row (`--unhealthy-after 2`), and not before.
#[test]
fn consecutive_failed_cycles_turn_healthz_503() {
    let watch = Watch::start(
        "multi-gpu-one-corrupt",
        &["--interval", "1h", "--unhealthy-after", "2"],
    );
    watch.wait_first_report();
    let health = get(&watch.addr, "/healthz", None);
    assert_eq!(
        health.status, 200,
        "after one failed cycle: {}",
        health.body
    );
    assert!(
        health.body.contains("1 of 2 consecutive failures"),
        "{}",
        health.body
    );
    drop(watch);

    let watch = Watch::start(
        "multi-gpu-one-corrupt",
        &["--interval", "50ms", "--unhealthy-after", "2"],
    );
    let health = wait_for("/healthz 503", Duration::from_secs(120), || {
        let r = get(&watch.addr, "/healthz", None);
        (r.status == 503 && !r.body.contains("no probe has finished yet")).then_some(r)
    });
    assert!(
        health.body.starts_with("unhealthy: GPU 2 (GPU-3b3a8f1e"),
        "{}",
        health.body
    );
}

#[test]
fn a_bad_or_taken_address_is_a_usage_error() {
    let (mut cmd, _lib) = command_with("healthy");
    let out = cmd
        .args(["watch", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (mut cmd, _lib) = command_with("healthy");
    let out = cmd
        .args(["watch", "--count", "1", "--listen", &addr])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "no probe ran");
}

#[test]
fn idle_clients_do_not_stall_the_probe_loop() {
    let mut watch = Watch::start(
        "multi-gpu-one-corrupt",
        &["--interval", "10ms", "--count", "20"],
    );
    // Idle connections, some with half a request, held open while watch
    // keeps probing: the server serves them beside its probe loop (and
    // closes each at its request-head deadline), never in its way.
    let idle: Vec<TcpStream> = (0..8)
        .filter_map(|i| {
            let mut s = TcpStream::connect(&watch.addr).ok()?;
            if i % 2 == 0 {
                let _ = s.write_all(b"GET /metr");
            }
            Some(s)
        })
        .collect();
    let status = wait_for("the counted watch to end", Duration::from_secs(120), || {
        watch.child.0.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(1), "20 probes ran, the last one failed");
    drop(idle);
}
