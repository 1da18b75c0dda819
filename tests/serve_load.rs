//! `watch --listen` under load, in process against `gpuprobe::serve`: 200
//! slow clients (each sends half a request head and stops) do not take
//! `/healthz` from a Kubernetes probe, a burst of 50 parallel scrapers of
//! `/metrics` is answered in full, and the server's threads and memory stay
//! bounded while it happens. Loopback only; every socket has a deadline.
//!
//! One test in this binary on purpose: it counts the threads of its own
//! process (/proc/self/task), which another test running beside it in the
//! same process would disturb.
#![cfg(target_os = "linux")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gpuprobe::report::{Report, Verdict};
use gpuprobe::serve::{Limits, Server};

const SLOW_CLIENTS: usize = 200;
const SCRAPERS: usize = 50;
const SCRAPES_EACH: usize = 40;

/// The status code and the whole answer of one request, or an error when
/// the server closed or reset the connection without answering.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let code = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {raw:?}"))?;
    Ok((code, raw))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Threads of this process whose name starts with `prefix` (the server
/// names its own `gpuprobe-*`).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// CPU time the server's thread has used, in clock ticks (utime + stime,
/// fields 14 and 15 of /proc/self/task/TID/stat; proc(5)).
fn server_cpu_ticks() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| {
            let dir = t.ok()?.path();
            let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
            if comm.trim() != "gpuprobe-listen" {
                return None;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the parenthesised name, which may hold spaces.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
        })
        .sum()
}

/// Resident memory of this process, in KiB (/proc/self/status, VmRSS).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn healthy_report() -> Report {
    let mut report: Report =
        serde_json::from_str(include_str!("fixtures/ecc-uncorrectable.json")).unwrap();
    report.verdict = Verdict::Healthy;
    report
}

#[test]
fn slow_clients_and_scraper_bursts_do_not_refuse_healthz_or_metrics() {
    let before_threads = threads();
    let limits = Limits::default();
    let server = Server::start("127.0.0.1:0".parse().unwrap(), limits, Duration::MAX).unwrap();
    let addr = server.local_addr();
    server.publish(&healthy_report());
    let (code, _) = get(addr, "/healthz").unwrap();
    assert_eq!(code, 200);
    let serving_threads = threads();
    let serving_rss = rss_kib();

    // 200 slowloris clients: half a request head each, then silence.
    let slow: Vec<TcpStream> = (0..SLOW_CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .unwrap();
            s
        })
        .collect();
    let mut probes = Vec::new();
    let (cpu_from, wall_from) = (server_cpu_ticks(), Instant::now());
    for _ in 0..10 {
        let start = Instant::now();
        let answer = get(addr, "/healthz");
        probes.push((answer.map(|(code, _)| code), start.elapsed()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (cpu, wall) = (server_cpu_ticks() - cpu_from, wall_from.elapsed());
    let held_threads = threads();
    let held_server_threads = threads_named("gpuprobe");
    let held_rss = rss_kib();
    let worst = probes.iter().map(|(_, t)| *t).max().unwrap();
    eprintln!(
        "under {SLOW_CLIENTS} slow clients: /healthz {:?}, slowest {worst:?}; threads {before_threads} before the server, {serving_threads} serving, {held_threads} under load ({held_server_threads} named gpuprobe-*); RSS {serving_rss} KiB serving, {held_rss} KiB under load; server thread CPU {cpu} ticks in {wall:?}",
        probes.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>()
    );

    // What a slow client gets: 408 once its head deadline passes, then the
    // connection closes (bounded by the read timeout if it never does).
    let mut first = slow.into_iter().next().unwrap();
    first
        .set_read_timeout(Some(limits.head_timeout + Duration::from_secs(5)))
        .unwrap();
    let mut late = String::new();
    let closed = first.read_to_string(&mut late);

    // 50 scrapers at once, 40 scrapes each (the rest of the slow clients
    // still connected until their deadline).
    let burst_from = Instant::now();
    let burst = std::thread::scope(|scope| {
        let scrapers: Vec<_> = (0..SCRAPERS)
            .map(|_| {
                scope.spawn(move || {
                    (0..SCRAPES_EACH)
                        .map(|_| get(addr, "/metrics").map(|(code, _)| code))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let server_threads = threads_named("gpuprobe");
        let answers: Vec<_> = scrapers
            .into_iter()
            .flat_map(|s| s.join().unwrap())
            .collect();
        (answers, server_threads)
    });
    let (answers, burst_server_threads) = burst;
    let ok = answers.iter().filter(|a| matches!(a, Ok(200))).count();
    let refused = answers.iter().filter(|a| matches!(a, Ok(503))).count();
    eprintln!(
        "burst of {SCRAPERS}x{SCRAPES_EACH} /metrics: {ok} answered 200, {refused} 503, {} other; {burst_server_threads} server threads during it, {:?}; RSS {} KiB after",
        answers.len() - ok - refused,
        burst_from.elapsed(),
        rss_kib()
    );

    for (answer, took) in &probes {
        assert_eq!(answer, &Ok(200), "/healthz under slow clients");
        assert!(*took < Duration::from_secs(1), "/healthz took {took:?}");
    }
    // The server is one thread however many clients it holds.
    assert_eq!(serving_threads, before_threads + 1);
    assert_eq!(held_threads, serving_threads);
    assert_eq!(held_server_threads, 1);
    assert_eq!(burst_server_threads, 1);
    // 200 half-read heads cost little memory (generous bound: 8 MiB).
    assert!(
        held_rss < serving_rss + 8 * 1024,
        "RSS {serving_rss} -> {held_rss} KiB"
    );
    assert!(closed.is_ok(), "the slow client was not closed: {closed:?}");
    assert!(late.starts_with("HTTP/1.1 408"), "{late:?}");
    assert_eq!(ok, SCRAPERS * SCRAPES_EACH, "{answers:?}");
}
