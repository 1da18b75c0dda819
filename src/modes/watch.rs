//! `gpuprobe watch`: the monitoring agent.
//!
//! Probes every `--interval` and publishes each report three ways: a JSON
//! line on stdout, the state file `health --state` reads, and a Prometheus
//! textfile for node_exporter's textfile collector; with `--listen`, also
//! over HTTP (src/serve.rs). Files are replaced
//! atomically, so a reader never sees half a report. SIGTERM and SIGINT end
//! it between or during probes, with exit code 0.
use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::cli::WatchArgs;
use crate::export::{Exporter, Json, Prometheus};
use crate::output::write_atomic;
use crate::probe;
use crate::signals;

/// How often a sleeping watch looks for a stop request.
const POLL: Duration = Duration::from_millis(50);

/// Runs until stopped; returns the exit code (see README, "watch").
#[must_use]
pub fn run(options: &probe::Options, args: &WatchArgs) -> i32 {
    signals::install();
    let listen = args.listen.map(|addr| {
        let fresh_for = crate::serve::fresh_for(args.interval, options.timeout);
        crate::serve::start_for_watch(addr, fresh_for)
    });
    let server = match listen.transpose() {
        Ok(server) => server,
        Err(code) => return code,
    };
    let mut cycles = 0u64;
    loop {
        let started = Instant::now();
        let Some(report) = probe::run_until(options, |_, _| {}, signals::stop_requested) else {
            break;
        };
        if !args.quiet {
            let line = serde_json::to_string(&report).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            // A reader that went away is no reason to stop monitoring.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        if let Some(path) = &args.state {
            if let Err(e) = write_atomic(path, Json.render(&report).as_bytes()) {
                crate::output::stderr_line!(
                    "gpuprobe: cannot write --state {}: {e}",
                    path.display()
                );
            }
        }
        if let Some(path) = &args.prometheus {
            if let Err(e) = write_atomic(path, Prometheus.render(&report).as_bytes()) {
                crate::output::stderr_line!(
                    "gpuprobe: cannot write --prometheus {}: {e}",
                    path.display()
                );
            }
        }
        if let Some(server) = &server {
            server.publish(&report);
        }
        cycles += 1;
        if args.count.is_some_and(|n| cycles >= n) {
            // A counted watch is a script's probe: its result is the last one's.
            return report.exit_code;
        }
        let next = started + args.interval;
        while Instant::now() < next {
            if signals::stop_requested() {
                return 0;
            }
            std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
        if signals::stop_requested() {
            break;
        }
    }
    0
}
