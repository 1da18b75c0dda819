//! What the fleet tests share: finding tools, a `watch --listen` child, a
//! minimal HTTP client and bounded waiting.
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// Whether a missing tool fails the test (.ci/run sets this).
pub fn required() -> bool {
    std::env::var("GPUPROBE_REQUIRE_TOOLS").as_deref() == Ok("1")
}

/// The tool's path on PATH, or None after saying visibly that the test is
/// skipped (a failure under GPUPROBE_REQUIRE_TOOLS=1).
pub fn tool(name: &str, install: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(),
            "{name} not found and GPUPROBE_REQUIRE_TOOLS=1 ({install})"
        );
        eprintln!("skipped: {name} not found ({install})");
    }
    found
}

/// Runs `tool args...` and fails the test with its output unless it succeeds.
pub fn run_ok(tool: &Path, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{text}",
        tool.display()
    );
    text
}

/// Polls `probe` until it returns Some, at most `bound` (a safety net
/// against a hang, not a timing assertion).
pub fn wait_for<T>(what: &str, bound: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + bound;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < end, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process killed when the test ends, however it ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `gpuprobe watch --listen 127.0.0.1:0` against a fake scenario.
pub struct Watch {
    pub child: Killed,
    /// host:port the endpoint listens on.
    pub addr: String,
    _driver: tempfile::TempDir,
}

impl Watch {
    pub fn start(scenario: &str, args: &[&str]) -> Watch {
        let (mut cmd, driver) = common::command_with(scenario);
        cmd.args(["watch", "--listen", "127.0.0.1:0", "--size", "16"])
            .args(["--iterations", "1", "--quiet"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = Killed(cmd.spawn().expect("starting gpuprobe watch"));
        let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .unwrap_or_else(|| panic!("watch --listen did not say where it listens: {line:?}"))
            .trim()
            .to_string();
        // Keep reading stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Watch {
            child,
            addr,
            _driver: driver,
        }
    }

    /// Waits until the first probe's report is served.
    pub fn wait_first_report(&self) {
        wait_for(
            "the first report on /healthz",
            Duration::from_secs(120),
            || {
                let r = get(&self.addr, "/healthz", None);
                (!r.body.contains("no probe has finished yet")).then_some(())
            },
        );
    }
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    /// The header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// GET (or another method) over HTTP/1.0, so the server closes after one
/// answer and never chunks it.
pub fn request(addr: &str, method: &str, path: &str, accept: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

pub fn get(addr: &str, path: &str, accept: Option<&str>) -> Response {
    request(addr, "GET", path, accept)
}

/// Percent-encodes a query-string value (RFC 3986 unreserved kept).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A free loopback port (the system's choice; a tiny window remains in
/// which another process could take it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The metric family names gpuprobe's Prometheus exporter can write: every
/// `gpuprobe_*` name in src/export/prometheus.rs.
pub fn exported_names() -> std::collections::BTreeSet<String> {
    let source = std::fs::read_to_string(common::root().join("src/export/prometheus.rs")).unwrap();
    source
        .split('"')
        .filter(|s| {
            s.starts_with("gpuprobe_")
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(String::from)
        .collect()
}
