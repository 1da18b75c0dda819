//! The loop that serves every connection from one thread: accepting,
//! reading each request head without blocking and within its limits,
//! parsing it (`httparse`), and writing the answer.
use std::collections::VecDeque;
use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::answer::{plain_answer, route, Answer};
use super::{Latest, Limits};

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
pub(super) fn serve_loop(
    listener: &TcpListener,
    latest: &Latest,
    limits: Limits,
    fresh_for: Duration,
) {
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
