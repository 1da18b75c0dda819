//! `watch --listen ADDR`: the HTTP endpoint Prometheus scrapes and a
//! Kubernetes httpGet probe can ask.
//!
//! Two paths: `/metrics` (the same metrics as `watch --prometheus FILE`) and
//! `/healthz` (200 while the latest report is fresh and its verdict healthy
//! or degraded, 503 otherwise). The server runs on a thread of its own; the
//! probe loop only renders each report once and swaps an `Arc` under a lock
//! that no I/O ever holds, so no client, however slow, can stall a probe.
//!
//! What a client can cost is bounded ([`Limits`]), and no number of slow
//! clients can keep a Kubernetes probe from its answer: one thread serves
//! every connection from a non-blocking loop (no thread or stack per
//! client), up to 256 at once; when one more arrives, the oldest is closed
//! to make room, so a flood of idle connections ages out instead of
//! shutting the door. A client has 2 s to send its request head (408, then
//! closed), 8 KiB for it (431 beyond), and 5 s from accept to the last byte
//! of the answer. Every answer closes its connection.
//!
//! Requests are parsed by `httparse`; the loop around it is std only, so it
//! costs the binary nothing and runs wherever std does, Windows included.
//! It waits by short naps while clients are connected (none while nobody
//! is) rather than on readiness (`poll`, `mio`): a few thousand
//! non-blocking reads a second under a slowloris of 200, for no
//! dependency, no `unsafe` and one code path. `tiny_http` was not an
//! option: it spawns a thread per connection without a bound, reads header
//! lines without a length limit and sets no socket timeouts.
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::export::{Exporter, Prometheus};
use crate::modes::health;
use crate::report::Report;

mod answer;
mod connections;

pub use answer::{prefers_openmetrics, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

use connections::serve_loop;

/// What one client may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; one more closes the oldest, unanswered.
    pub connections: usize,
    /// Longest request head (request line and headers) read, in bytes.
    pub request_bytes: usize,
    /// Time a client has, from accept, to send its whole request head; a
    /// client still sending gets 408 and is closed.
    pub head_timeout: Duration,
    /// Time a connection may take, from accept to the last byte written.
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // Each costs a descriptor and at most `request_bytes` of head:
            // 256 stay far below the usual 1024-descriptor soft limit.
            connections: 256,
            request_bytes: 8 * 1024,
            // Prometheus and the kubelet send their request at once after
            // connecting; 2 s is patient with a slow network and short
            // against Kubernetes' 1 s default probe timeout times the
            // connections a client would need to hold every slot.
            head_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// One report, rendered once for every client that asks until the next.
pub(super) struct Snapshot {
    pub(super) metrics: String,
    /// `health`'s one line and whether it calls the report healthy.
    pub(super) health_line: String,
    pub(super) healthy: bool,
    pub(super) published: Instant,
}

/// The latest snapshot, shared by the probe loop and the connections.
pub(super) type Latest = Arc<Mutex<Option<Arc<Snapshot>>>>;

/// A running endpoint; it serves until the process ends.
pub struct Server {
    latest: Latest,
    addr: SocketAddr,
}

impl Server {
    /// Binds `addr` and starts serving. `fresh_for` is how old the latest
    /// report may be before `/healthz` calls it stale.
    pub fn start(addr: SocketAddr, limits: Limits, fresh_for: Duration) -> io::Result<Server> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let latest: Latest = Arc::default();
        let shared = Arc::clone(&latest);
        std::thread::Builder::new()
            .name("gpuprobe-listen".into())
            .spawn(move || serve_loop(&listener, &shared, limits, fresh_for))?;
        Ok(Server { latest, addr })
    }

    /// The address bound (the port the system chose for port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Makes `report` what the endpoint serves from now on.
    pub fn publish(&self, report: &Report) {
        let (health_line, code) = health::judge(report);
        let snapshot = Arc::new(Snapshot {
            metrics: Prometheus.render(report),
            health_line,
            healthy: code == health::HEALTHY,
            published: Instant::now(),
        });
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
    }
}

/// How old the latest report may be before `/healthz` calls it stale: a
/// live `watch` publishes at most `interval` + `timeout` after the previous
/// report (the next probe starts within one interval and ends by its
/// deadline); one more interval of slack absorbs a busy machine.
#[must_use]
pub fn fresh_for(interval: Duration, timeout: Duration) -> Duration {
    interval.saturating_mul(2).saturating_add(timeout)
}

/// Starts the endpoint of `watch --listen` and says on stderr where it
/// listens (port 0 leaves the port to the system); a bind that fails is a
/// usage error: its message and exit code 2.
pub fn start_for_watch(addr: SocketAddr, fresh_for: Duration) -> Result<Server, i32> {
    match Server::start(addr, Limits::default(), fresh_for) {
        Ok(server) => {
            crate::output::stderr_line!(
                "gpuprobe: serving /metrics and /healthz on http://{}",
                server.local_addr()
            );
            Ok(server)
        }
        Err(e) => {
            crate::output::stderr_line!("gpuprobe: cannot listen on {addr}: {e}");
            Err(crate::exit_code::USAGE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    fn report() -> Report {
        serde_json::from_str(include_str!("../../tests/fixtures/ecc-uncorrectable.json")).unwrap()
    }

    /// The answer, or "" when the server closed the connection first (a
    /// client turned away may see a reset instead of the 503).
    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut out = String::new();
        let _ = write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
            .and_then(|()| s.read_to_string(&mut out).map(drop));
        out
    }

    fn limits(connections: usize, head_timeout: Duration) -> Limits {
        Limits {
            connections,
            request_bytes: 256,
            head_timeout,
            io_timeout: Duration::from_secs(30),
        }
    }

    /// Whether the server closed `client` (EOF or reset) within 5 s.
    fn closed(client: &mut TcpStream) -> bool {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        match client.read_to_end(&mut rest) {
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
        }
    }

    #[test]
    fn serves_what_was_published_and_bounds_clients() {
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            limits(4, Duration::from_secs(30)),
            Duration::MAX,
        )
        .unwrap();
        let addr = server.local_addr();
        assert!(get(addr, "/metrics").starts_with("HTTP/1.1 503"));
        server.publish(&report());
        let metrics = get(addr, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("gpuprobe_verdict{verdict=\"failed\"} 1"));
        // The fixture's verdict is failed.
        assert!(get(addr, "/healthz").starts_with("HTTP/1.1 503"));
        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));

        // A head as long as the limit is refused, not buffered, even when
        // it comes a few bytes at a time and without a line end.
        let mut long = TcpStream::connect(addr).unwrap();
        long.write_all(b"GET /metr").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        long.write_all(&[b'x'; 256 - 9]).unwrap();
        let mut answer = String::new();
        let _ = long.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

        // The body and its length agree, for both formats and for HEAD.
        let (head, body) = metrics.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "HEAD /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
        )
        .unwrap();
        let mut only_head = String::new();
        s.read_to_string(&mut only_head).unwrap();
        assert!(only_head.ends_with("\r\n\r\n"), "{only_head}");
        let eof = body.len() + "# EOF\n".len();
        assert!(
            only_head.contains(&format!("Content-Length: {eof}\r\n")),
            "{only_head}"
        );
    }

    #[test]
    fn slow_clients_beyond_the_limit_displace_the_oldest() {
        let mut healthy = report();
        healthy.verdict = crate::report::Verdict::Healthy;
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            limits(8, Duration::from_secs(30)),
            Duration::MAX,
        )
        .unwrap();
        server.publish(&healthy);
        let addr = server.local_addr();
        // Six times as many half-sent requests as the server holds.
        let mut slow: Vec<TcpStream> = (0..48)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        for _ in 0..5 {
            let start = Instant::now();
            let answer = get(addr, "/healthz");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
            assert!(start.elapsed() < Duration::from_secs(1));
        }
        // The first ones were closed to make room, without an answer; the
        // last is still held.
        assert!(closed(&mut slow[0]));
        let last = slow.last_mut().unwrap();
        last.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let still_open = last.read(&mut byte);
        assert!(
            matches!(&still_open, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "{still_open:?}"
        );
    }

    #[test]
    fn a_head_not_sent_in_time_gets_408() {
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            limits(8, Duration::from_millis(100)),
            Duration::MAX,
        )
        .unwrap();
        let mut slow = TcpStream::connect(server.local_addr()).unwrap();
        slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
        slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        slow.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[test]
    fn healthz_follows_the_verdict_and_goes_stale() {
        let mut healthy = report();
        healthy.verdict = crate::report::Verdict::Healthy;
        let fresh = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Limits::default(),
            Duration::MAX,
        )
        .unwrap();
        fresh.publish(&healthy);
        let answer = get(fresh.local_addr(), "/healthz");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("\r\n\r\nhealthy: "), "{answer}");
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Limits::default(),
            Duration::ZERO,
        )
        .unwrap();
        server.publish(&healthy);
        let answer = get(server.local_addr(), "/healthz");
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("old"), "{answer}");
    }
}
