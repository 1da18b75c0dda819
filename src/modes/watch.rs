//! `gpuprobe watch`: the monitoring agent.
//!
//! Probes every `--interval` and publishes each report three ways: a JSON
//! line on stdout, the state file `health --state` reads, and a Prometheus
//! textfile for node_exporter's textfile collector; with `--listen`, also
//! over HTTP (src/serve/). Files are replaced
//! atomically, so a reader never sees half a report. SIGTERM and SIGINT end
//! it between or during probes, with exit code 0.
//!
//! One failed probe does not make the node unhealthy: each report carries
//! its place in the run of failed probes (`Report::watch`), and `/healthz`
//! and `health --state` call the node unhealthy only after
//! `--unhealthy-after` consecutive failures (src/modes/health.rs, `judge`),
//! while the JSON line, the state file and the metrics keep each probe's
//! own verdict.
//!
//! A file that cannot be written is not a log line to scroll past: a path
//! that cannot be written at all (a missing directory, a read-only mount)
//! is refused before the first probe with exit code 2 (src/app.rs, naming
//! the flag); when the first probe's files still fail to be written (a full
//! disk) watch stops at once with exit code 5 (`exit_code::OUTPUT`); a
//! later failure is reported on stderr, monitoring goes on in case it
//! recovers, and the exit code at the end is 5.
use std::io::Write as _;
use std::time::{Duration, Instant};

use crate::cli::WatchArgs;
use crate::exit_code;
use crate::export::{Exporter, Json, Prometheus};
use crate::output::write_report;
use crate::report::WatchStreak;
use crate::signals;

/// How often a sleeping watch looks for a stop request.
const POLL: Duration = Duration::from_millis(50);

/// Runs until stopped; returns the exit code (see README, "Monitoring agent: `gpuprobe watch`").
#[must_use]
pub fn run(plan: &crate::judge::Plan, args: &WatchArgs) -> i32 {
    signals::install();
    // One session for every cycle: a probe stuck in the driver is not
    // started again while it hangs (see probe::session).
    let mut session = crate::judge::Session::new(plan.clone());
    let listen = args.listen.map(|addr| {
        let fresh_for = crate::serve::fresh_for(args.interval, plan.probe.timeout);
        crate::serve::start_for_watch(addr, fresh_for)
    });
    let server = match listen.transpose() {
        Ok(server) => server,
        Err(code) => return code,
    };
    let mut cycles = 0u64;
    let mut failures = 0u32;
    let mut lost = false;
    loop {
        let started = Instant::now();
        let Some(mut report) = session.run(|_, _| {}, signals::stop_requested) else {
            break;
        };
        failures = if crate::modes::health::is_ok(report.verdict) {
            0
        } else {
            failures.saturating_add(1)
        };
        report.watch = Some(WatchStreak {
            cycle: cycles + 1,
            consecutive_failures: failures,
            unhealthy_after: args.unhealthy_after,
            unhealthy: failures >= args.unhealthy_after,
        });
        if !args.quiet {
            let line = serde_json::to_string(&report).unwrap_or_default();
            let mut out = std::io::stdout().lock();
            // A reader that went away is no reason to stop monitoring.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        let files = [
            ("--state", &args.state, Json.render(&report)),
            ("--prometheus", &args.prometheus, Prometheus.render(&report)),
        ];
        for (flag, path, text) in files {
            let Some(path) = path else { continue };
            if let Err(e) = write_report(path, text.as_bytes()) {
                crate::output::stderr_line!(
                    "gpuprobe: cannot write {flag} {}: {e}",
                    path.display()
                );
                lost = true;
            }
        }
        if let Some(server) = &server {
            server.publish(&report);
        }
        cycles += 1;
        if lost && cycles == 1 {
            crate::output::stderr_line!("gpuprobe: watch stops: its files cannot be written");
            return exit_code::OUTPUT;
        }
        let ended = if lost {
            exit_code::OUTPUT
        } else {
            exit_code::HEALTHY
        };
        if args.count.is_some_and(|n| cycles >= n) {
            // A counted watch is a script's probe: its result is the last one's.
            return if lost {
                ended
            } else {
                report.verdict.exit_code()
            };
        }
        let Some(next) = started.checked_add(args.interval) else {
            return ended;
        };
        while Instant::now() < next {
            if signals::stop_requested() {
                return ended;
            }
            std::thread::sleep(POLL.min(next.saturating_duration_since(Instant::now())));
        }
        if signals::stop_requested() {
            return ended;
        }
    }
    if lost {
        exit_code::OUTPUT
    } else {
        exit_code::HEALTHY
    }
}
