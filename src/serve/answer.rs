//! The answers: a parsed request routed to `/metrics` or `/healthz`, the
//! status line and headers, the metrics format the client's Accept header
//! prefers, and an answer written out in parts without copying the
//! snapshot's metrics.
use std::sync::Arc;
use std::time::Duration;

use super::Snapshot;

/// Content-Type of the Prometheus text format 0.0.4 (Prometheus docs,
/// "Exposition formats").
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content-Type of OpenMetrics 1.0 (OpenMetrics specification, "Overall
/// structure"), served when the client's Accept header prefers it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// An answer to write: its status line and headers (with the whole body
/// when it is small), then the snapshot's metrics and a tail, which every
/// client of one report shares instead of copying.
pub(super) struct Answer {
    pub(super) head: Vec<u8>,
    metrics: Option<Arc<Snapshot>>,
    tail: &'static [u8],
}

impl Answer {
    /// What is left to write after the first `sent` bytes.
    pub(super) fn unsent(&self, mut sent: usize) -> &[u8] {
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
pub(super) fn plain_answer(status: u16, body: &[u8]) -> Answer {
    let mut head = headers(status, PLAIN, body.len());
    head.extend_from_slice(body);
    Answer {
        head,
        metrics: None,
        tail: b"",
    }
}

/// The answer to one parsed request.
pub(super) fn route(
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
}
