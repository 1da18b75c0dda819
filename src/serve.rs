//! `watch --listen ADDR`: the HTTP endpoint Prometheus scrapes and a
//! Kubernetes httpGet probe can ask.
//!
//! Two paths: `/metrics` (the same metrics as `watch --prometheus FILE`) and
//! `/healthz` (200 while the latest report is fresh and its verdict healthy
//! or degraded, 503 otherwise). The server runs on threads of its own; the
//! probe loop only renders each report once and swaps an `Arc` under a lock
//! that no I/O ever holds, so no client, however slow, can stall a probe.
//!
//! What a client can cost is bounded ([`Limits`]): a few connections at a
//! time (more are answered 503 and closed), a request head of a few KiB, and
//! one deadline for reading the request and writing the answer. Every answer
//! closes its connection. Requests are parsed by `httparse`; the server
//! around it is small enough to read at once, which the `tiny_http` crate
//! was not: it spawns a thread per connection without a bound, reads header
//! lines without a length limit and sets no socket timeouts.
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::export::{Exporter, Prometheus};
use crate::modes::health;
use crate::report::Report;

/// Content-Type of the Prometheus text format 0.0.4 (Prometheus docs,
/// "Exposition formats").
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content-Type of OpenMetrics 1.0 (OpenMetrics specification, "Overall
/// structure"), served when the client's Accept header prefers it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What one client may cost the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; one more is answered 503 and closed.
    pub connections: usize,
    /// Longest request head (request line and headers) read, in bytes.
    pub request_bytes: usize,
    /// Time a connection may take, from accept to the last byte written.
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: 4,
            request_bytes: 8 * 1024,
            io_timeout: Duration::from_secs(5),
        }
    }
}

/// One report, rendered once for every client that asks until the next.
struct Snapshot {
    metrics: String,
    /// `health`'s one line and whether it calls the report healthy.
    health_line: String,
    healthy: bool,
    published: Instant,
}

/// The latest snapshot, shared by the probe loop and the connections.
type Latest = Arc<Mutex<Option<Arc<Snapshot>>>>;

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
            .spawn(move || accept_loop(&listener, &shared, limits, fresh_for))?;
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

/// Decrements the connection count when a connection ends, however it ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(listener: &TcpListener, latest: &Latest, limits: Limits, fresh_for: Duration) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else {
            // Out of file descriptors or a connection reset before accept:
            // wait a little and keep serving rather than spin or stop.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if active.fetch_add(1, Ordering::AcqRel) >= limits.connections {
            active.fetch_sub(1, Ordering::AcqRel);
            // A short answer fits the socket's send buffer; a non-blocking
            // write guarantees the accept loop never waits on this client.
            let _ = stream.set_nonblocking(true);
            let _ = stream.write_all(&response(503, "text/plain; charset=utf-8", b"busy\n"));
            continue;
        }
        let latest = Arc::clone(latest);
        let counter = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("gpuprobe-http".into())
            .spawn(move || {
                let _slot = Slot(&counter);
                serve(stream, &latest, limits, fresh_for);
            });
        if spawned.is_err() {
            // The closure (and its slot) was dropped with the error.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads one request and answers it; any I/O error just ends the connection.
fn serve(mut stream: TcpStream, latest: &Latest, limits: Limits, fresh_for: Duration) {
    let deadline = Instant::now() + limits.io_timeout;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let answer = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let room = (limits.request_bytes - head.len()).min(chunk.len());
        let n = match stream.read(&mut chunk[..room]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        head.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {
                let accept = request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("accept"))
                    .filter_map(|h| std::str::from_utf8(h.value).ok())
                    .collect::<Vec<_>>()
                    .join(",");
                let snapshot = latest
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                break route(
                    request.method.unwrap_or(""),
                    request.path.unwrap_or(""),
                    &accept,
                    snapshot.as_deref(),
                    fresh_for,
                );
            }
            Ok(httparse::Status::Partial) if head.len() < limits.request_bytes => {}
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                break response(431, "text/plain; charset=utf-8", b"request too large\n");
            }
            Err(_) => break response(400, "text/plain; charset=utf-8", b"bad request\n"),
        }
    };
    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
        return;
    };
    if !left.is_zero() && stream.set_write_timeout(Some(left)).is_ok() {
        let _ = stream.write_all(&answer).and_then(|()| stream.flush());
    }
}

/// The answer to one parsed request.
fn route(
    method: &str,
    path: &str,
    accept: &str,
    snapshot: Option<&Snapshot>,
    fresh_for: Duration,
) -> Vec<u8> {
    let plain = "text/plain; charset=utf-8";
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return response(405, plain, b"only GET and HEAD\n");
    }
    let path = path.split('?').next().unwrap_or("");
    let mut answer = match (path, snapshot) {
        ("/metrics" | "/healthz", None) => response(503, plain, b"no probe has finished yet\n"),
        ("/metrics", Some(s)) => {
            if prefers_openmetrics(accept) {
                let body = format!("{}# EOF\n", s.metrics);
                response(200, OPENMETRICS_CONTENT_TYPE, body.as_bytes())
            } else {
                response(200, TEXT_CONTENT_TYPE, s.metrics.as_bytes())
            }
        }
        ("/healthz", Some(s)) => {
            let age = s.published.elapsed();
            if age > fresh_for {
                let body = format!(
                    "unhealthy: the latest report is {}s old, more than {}s; is the probe loop stuck?\n",
                    age.as_secs(),
                    fresh_for.as_secs()
                );
                response(503, plain, body.as_bytes())
            } else {
                let body = format!("{}\n", s.health_line);
                response(if s.healthy { 200 } else { 503 }, plain, body.as_bytes())
            }
        }
        ("/", _) => response(200, plain, b"gpuprobe: /metrics /healthz\n"),
        _ => response(404, plain, b"not found: /metrics /healthz\n"),
    };
    if head_only {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            answer.truncate(end + 4);
        }
    }
    answer
}

fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Whether an Accept header asks for OpenMetrics 1.x at least as much as
/// for the text format (RFC 9110 12.5.1: media ranges with `q` weights; a
/// range without `q` weighs 1). Prometheus sends OpenMetrics first.
#[must_use]
pub fn prefers_openmetrics(accept: &str) -> bool {
    let mut openmetrics = 0.0f64;
    let mut text = 0.0f64;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f64;
        let mut version_ok = true;
        for param in parts {
            let Some((key, value)) = param.split_once('=') else {
                continue;
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "q" => q = value.trim().parse().unwrap_or(0.0),
                "version" => version_ok = value.trim().starts_with("1."),
                _ => {}
            }
        }
        match media.as_str() {
            "application/openmetrics-text" if version_ok => openmetrics = openmetrics.max(q),
            "text/plain" | "text/*" | "*/*" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics > 0.0 && openmetrics >= text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Shutdown;

    #[test]
    fn accept_headers() {
        // What Prometheus 2.42 sends (scrape/scrape.go, scrapeAcceptHeader).
        assert!(prefers_openmetrics(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!prefers_openmetrics(""));
        assert!(!prefers_openmetrics("*/*"));
        assert!(!prefers_openmetrics("text/plain"));
        assert!(!prefers_openmetrics(
            "application/openmetrics-text;version=0.0.1"
        ));
        assert!(!prefers_openmetrics(
            "text/plain;q=1,application/openmetrics-text;q=0.5"
        ));
        assert!(!prefers_openmetrics("application/openmetrics-text;q=0"));
    }

    fn report() -> Report {
        serde_json::from_str(include_str!("../tests/fixtures/ecc-uncorrectable.json")).unwrap()
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

    /// `get`, asked again while the server turns it away as busy: the slot
    /// of the previous connection is freed by the server's thread a moment
    /// after that client read its answer. Bounded: 2 s at most.
    fn get_served(addr: SocketAddr, path: &str) -> String {
        for _ in 0..400 {
            let answer = get(addr, path);
            if !answer.is_empty() && !answer.ends_with("\r\n\r\nbusy\n") {
                return answer;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        get(addr, path)
    }

    #[test]
    fn serves_what_was_published_and_bounds_clients() {
        let limits = Limits {
            connections: 1,
            request_bytes: 256,
            io_timeout: Duration::from_secs(30),
        };
        let server = Server::start("127.0.0.1:0".parse().unwrap(), limits, Duration::MAX).unwrap();
        let addr = server.local_addr();
        assert!(get_served(addr, "/metrics").starts_with("HTTP/1.1 503"));
        server.publish(&report());
        let metrics = get_served(addr, "/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("gpuprobe_verdict{verdict=\"failed\"} 1"));
        // The fixture's verdict is failed.
        assert!(get_served(addr, "/healthz").starts_with("HTTP/1.1 503"));
        assert!(get_served(addr, "/nope").starts_with("HTTP/1.1 404"));

        // One idle client holds the only slot: the next is turned away, and
        // a head as long as the limit is refused, not buffered. The idle
        // client may itself find the slot still held by the last request
        // (freed a moment after its answer was read): then it tries again.
        let mut tries = 0;
        loop {
            tries += 1;
            let mut idle = TcpStream::connect(addr).unwrap();
            let _ = idle.write_all(b"GET /metr");
            let busy = get(addr, "/metrics");
            let _ = idle.write_all(&[b'x'; 256 - 9]);
            let mut answer = String::new();
            let _ = idle.read_to_string(&mut answer);
            let _ = idle.shutdown(Shutdown::Both);
            if (answer.is_empty() || answer.ends_with("\r\n\r\nbusy\n")) && tries < 100 {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
            assert!(
                busy.is_empty() || busy.starts_with("HTTP/1.1 503"),
                "{busy}"
            );
            break;
        }
        // The slot is free again once that connection is over.
        let again = get_served(addr, "/metrics");
        assert!(again.starts_with("HTTP/1.1 200"), "{again}");
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
