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
use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
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

/// How long the loop naps when a pass moved nothing, doubling from the
/// first to the last while nothing moves: a new request waits at most the
/// longest nap before it is read.
const NAP_FIRST: Duration = Duration::from_millis(1);
const NAP_LONGEST: Duration = Duration::from_millis(10);
/// A connection that has sent nothing for `QUIET` is read once a `SWEEP`
/// rather than on every pass: a slowloris of hundreds then costs a few
/// thousand reads a second instead of tens of thousands, and a client that
/// sends its request as it connects, as probes and scrapers do, is still
/// read on every pass.
const QUIET: Duration = Duration::from_millis(100);
const SWEEP: Duration = Duration::from_millis(50);
/// The pause after `accept` failed for want of resources with no
/// connection to close (descriptors held by the rest of the process).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves every connection from one thread: accepts what waits, moves each
/// open connection as far as it goes without blocking, closes those done or
/// out of time, and naps when nothing moved. With no connection open it
/// blocks in `accept` instead, so an unasked endpoint costs no wakeups.
fn serve_loop(listener: &TcpListener, latest: &Latest, limits: Limits, fresh_for: Duration) {
    let server = Serving {
        latest,
        limits,
        fresh_for,
    };
    // Oldest first: connections are pushed at the back as accepted.
    let mut open: VecDeque<Connection> = VecDeque::new();
    let mut scratch = vec![0u8; limits.request_bytes];
    let mut listener_blocks = true;
    let mut nap = NAP_FIRST;
    let mut swept = Instant::now();
    loop {
        let block = open.is_empty();
        if block != listener_blocks {
            if listener.set_nonblocking(!block).is_err() {
                std::thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
            listener_blocks = block;
        }
        let mut moved = server.accept(listener, listener_blocks, &mut open, &mut scratch);
        let now = Instant::now();
        let sweep = now.saturating_duration_since(swept) >= SWEEP;
        if sweep {
            swept = now;
        }
        open.retain_mut(|c| match c.advance(now, sweep, &mut scratch, &server) {
            Step::Waiting => true,
            Step::Moved => {
                moved = true;
                true
            }
            Step::Closed => {
                moved = true;
                false
            }
        });
        if moved {
            nap = NAP_FIRST;
        } else {
            std::thread::sleep(nap);
            nap = nap.saturating_mul(2).min(NAP_LONGEST);
        }
    }
}

/// What every connection is served from.
struct Serving<'a> {
    latest: &'a Latest,
    limits: Limits,
    fresh_for: Duration,
}

impl Serving<'_> {
    /// Accepts the connections waiting (one when the listener blocks),
    /// each read at once so that a client that sent its request with the
    /// connection is answered before later arrivals could displace it.
    /// Whether anything was accepted or closed.
    fn accept(
        &self,
        listener: &TcpListener,
        blocks: bool,
        open: &mut VecDeque<Connection>,
        scratch: &mut [u8],
    ) -> bool {
        let mut moved = false;
        for _ in 0..self.limits.connections.max(1) {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A client gone before it was accepted: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue;
                }
                // Out of descriptors or memory: the oldest connection gives
                // its descriptor back, or, with none, the loop waits a
                // little rather than spin.
                Err(_) => {
                    if open.pop_front().is_some() {
                        moved = true;
                    } else {
                        std::thread::sleep(ACCEPT_BACKOFF);
                    }
                    break;
                }
            };
            moved = true;
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if open.len() >= self.limits.connections {
                open.pop_front();
            }
            let now = Instant::now();
            let mut connection = Connection {
                stream,
                accepted: now,
                heard: now,
                state: State::Head(Vec::new()),
            };
            if connection.advance(now, true, scratch, self) != Step::Closed {
                open.push_back(connection);
            }
            if blocks {
                break;
            }
        }
        moved
    }
}

/// One client's connection.
struct Connection {
    stream: TcpStream,
    accepted: Instant,
    /// When the client last sent something (or connected).
    heard: Instant,
    state: State,
}

enum State {
    /// Reading the request head; what came so far.
    Head(Vec<u8>),
    /// Writing the answer; how many of its bytes went out.
    Answer(Answer, usize),
}

/// What one turn of a connection did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing to do until the client reads or writes.
    Waiting,
    /// Bytes went in or out.
    Moved,
    /// Done, failed or out of time: the connection is to be dropped.
    Closed,
}

impl Connection {
    /// Reads and writes what can be without blocking (a quiet client's
    /// head only on a `sweep`). Any I/O error ends the connection; nothing
    /// here can fail the loop.
    fn advance(
        &mut self,
        now: Instant,
        sweep: bool,
        scratch: &mut [u8],
        server: &Serving<'_>,
    ) -> Step {
        let age = now.saturating_duration_since(self.accepted);
        let mut moved = false;
        if let State::Head(head) = &mut self.state {
            if age >= server.limits.head_timeout {
                // Best effort and never blocking: a short answer fits the
                // socket's send buffer.
                let late = plain_answer(408, b"the request head did not arrive in time\n");
                let _ = self.stream.write(&late.head);
                let _ = self.stream.shutdown(Shutdown::Write);
                return Step::Closed;
            }
            if !sweep && now.saturating_duration_since(self.heard) >= QUIET {
                return Step::Waiting;
            }
            let room = server
                .limits
                .request_bytes
                .saturating_sub(head.len())
                .min(scratch.len());
            let n = match self.stream.read(&mut scratch[..room]) {
                Ok(0) => return Step::Closed,
                Ok(n) => n,
                Err(e) if is_transient(&e) => return Step::Waiting,
                Err(_) => return Step::Closed,
            };
            self.heard = now;
            let chunk = &scratch[..n];
            head.extend_from_slice(chunk);
            // A head can only end with a line: parsing on every byte of a
            // trickled request would let a slow client spend the loop.
            let answer = if chunk.contains(&b'\n') || head.len() >= server.limits.request_bytes {
                answer_to(head, server)
            } else {
                None
            };
            match answer {
                Some(answer) => self.state = State::Answer(answer, 0),
                None => return Step::Moved,
            }
            moved = true;
        }
        let State::Answer(answer, sent) = &mut self.state else {
            return Step::Closed;
        };
        if age >= server.limits.io_timeout {
            return Step::Closed;
        }
        loop {
            let unsent = answer.unsent(*sent);
            if unsent.is_empty() {
                let _ = self.stream.flush();
                let _ = self.stream.shutdown(Shutdown::Write);
                return Step::Closed;
            }
            match self.stream.write(unsent) {
                Ok(0) => return Step::Closed,
                Ok(n) => {
                    *sent += n;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_transient(&e) => {
                    return if moved { Step::Moved } else { Step::Waiting };
                }
                Err(_) => return Step::Closed,
            }
        }
    }
}

/// An error that only means "not now" on a non-blocking socket.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The answer once `head` holds a whole request head, or one that is bad or
/// too long; None while more may come.
fn answer_to(head: &[u8], server: &Serving<'_>) -> Option<Answer> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {
            let accept = request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("accept"))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
                .collect::<Vec<_>>()
                .join(",");
            let snapshot = server
                .latest
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            Some(route(
                request.method.unwrap_or(""),
                request.path.unwrap_or(""),
                &accept,
                snapshot,
                server.fresh_for,
            ))
        }
        Ok(httparse::Status::Partial) if head.len() < server.limits.request_bytes => None,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            Some(plain_answer(431, b"request too large\n"))
        }
        Err(_) => Some(plain_answer(400, b"bad request\n")),
    }
}

/// An answer to write: its status line and headers (with the whole body
/// when it is small), then the snapshot's metrics and a tail, which every
/// client of one report shares instead of copying.
struct Answer {
    head: Vec<u8>,
    metrics: Option<Arc<Snapshot>>,
    tail: &'static [u8],
}

impl Answer {
    /// What is left to write after the first `sent` bytes.
    fn unsent(&self, mut sent: usize) -> &[u8] {
        let metrics = self.metrics.as_deref().map_or("", |s| &s.metrics);
        for part in [&self.head[..], metrics.as_bytes(), self.tail] {
            if let Some(rest) = part.get(sent..).filter(|r| !r.is_empty()) {
                return rest;
            }
            sent = sent.saturating_sub(part.len());
        }
        &[]
    }

    /// The same status and headers without the body, for HEAD.
    fn without_body(mut self) -> Answer {
        if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
            self.head.truncate(end + 4);
        }
        self.metrics = None;
        self.tail = b"";
        self
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// A plain-text answer.
fn plain_answer(status: u16, body: &[u8]) -> Answer {
    let mut head = headers(status, PLAIN, body.len());
    head.extend_from_slice(body);
    Answer {
        head,
        metrics: None,
        tail: b"",
    }
}

/// The answer to one parsed request.
fn route(
    method: &str,
    path: &str,
    accept: &str,
    snapshot: Option<Arc<Snapshot>>,
    fresh_for: Duration,
) -> Answer {
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return plain_answer(405, b"only GET and HEAD\n");
    }
    let path = path.split('?').next().unwrap_or("");
    let answer = match (path, snapshot) {
        ("/metrics" | "/healthz", None) => plain_answer(503, b"no probe has finished yet\n"),
        ("/metrics", Some(s)) => {
            let (content_type, tail): (_, &'static [u8]) = if prefers_openmetrics(accept) {
                (OPENMETRICS_CONTENT_TYPE, b"# EOF\n")
            } else {
                (TEXT_CONTENT_TYPE, b"")
            };
            Answer {
                head: headers(200, content_type, s.metrics.len() + tail.len()),
                metrics: Some(s),
                tail,
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
                plain_answer(503, body.as_bytes())
            } else {
                let body = format!("{}\n", s.health_line);
                plain_answer(if s.healthy { 200 } else { 503 }, body.as_bytes())
            }
        }
        ("/", _) => plain_answer(200, b"gpuprobe: /metrics /healthz\n"),
        _ => plain_answer(404, b"not found: /metrics /healthz\n"),
    };
    if head_only {
        answer.without_body()
    } else {
        answer
    }
}

/// The status line and headers of an answer whose body is `body_len` bytes.
fn headers(status: u16, content_type: &str, body_len: usize) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {body_len}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"
    )
    .into_bytes()
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
    fn answers_are_written_in_parts() {
        let answer = Answer {
            head: b"ab".to_vec(),
            metrics: None,
            tail: b"cd",
        };
        assert_eq!(answer.unsent(0), b"ab");
        assert_eq!(answer.unsent(1), b"b");
        assert_eq!(answer.unsent(2), b"cd");
        assert_eq!(answer.unsent(3), b"d");
        assert_eq!(answer.unsent(4), b"");
        assert_eq!(answer.unsent(99), b"");
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
