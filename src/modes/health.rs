//! `gpuprobe health`: Docker HEALTHCHECK and Kubernetes exec probes.
//!
//! Docker reads exit 0 as healthy, 1 as unhealthy and reserves 2, and keeps
//! only the first 4096 bytes of output (Docker HEALTHCHECK reference). So:
//! exit 0 or 1 only, even for a usage error, and one short line. The check
//! is light (a 16x16 launch and readback per GPU, verified, no CPU
//! benchmark, plus NVML's memory-error and GPU-lost signals and the
//! container diagnoses) but real: a wedged GPU fails it, which listing
//! devices would not catch.
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::report::{Action, Report, Verdict};

/// Exit codes of this mode.
pub const HEALTHY: i32 = 0;
pub const UNHEALTHY: i32 = 1;

/// Longest line printed; well inside Docker's 4096-byte log entry.
const MAX_LINE: usize = 1000;

/// How far in the future a state file's report may end and still count as
/// just written (see `judge_state`).
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Matrix size of the health launch: one 16x16 block.
pub const SIZE: u32 = 16;

/// Default deadline: a cold cuInit on a many-GPU machine takes seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[must_use]
pub fn is_ok(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Healthy | Verdict::Degraded)
}

/// The one line and exit code for a fresh report.
#[must_use]
pub fn judge(report: &Report) -> (String, i32) {
    let ok = is_ok(report.verdict);
    // A `watch` cycle that failed before `--unhealthy-after` failures in a
    // row: the node stays healthy, and the line says what failed.
    if let Some(w) = report.watch.filter(|w| !ok && !w.unhealthy) {
        let line = format!(
            "healthy: this probe failed, {} of {} consecutive failures before unhealthy: {} [{}, {:.0} ms]",
            w.consecutive_failures,
            w.unhealthy_after,
            report.summary,
            report.verdict.as_str(),
            report.duration_ms
        );
        return (shorten(line), HEALTHY);
    }
    // The most severe diagnosis's fix: what to do, in the one line Docker
    // keeps. A GPU that passes may still come with advice (a cold start
    // that persistence mode would spare every health check, GP037): it is
    // named as advice, the exit code unchanged.
    let fix = report.diagnoses.first().map_or(String::new(), |d| {
        if !ok && d.severity > crate::report::Severity::Info {
            format!(" Fix: {}", d.fix)
        } else if ok {
            format!(" Advice: {}. {}", d.summary, d.fix)
        } else {
            String::new()
        }
    });
    // What the warnings and errors ask of the node, for the Slurm drain
    // reason and the node-problem-detector condition that carry this line.
    let action = match Action::needed(&report.diagnoses) {
        Action::None => String::new(),
        needed => format!(", action {}", needed.as_str()),
    };
    let line = format!(
        "{}: {} [{}, {:.0} ms{action}]{fix}",
        if ok { "healthy" } else { "unhealthy" },
        report.summary,
        report.verdict.as_str(),
        report.duration_ms
    );
    (shorten(line), if ok { HEALTHY } else { UNHEALTHY })
}

/// Judges the report `watch --state` keeps, without touching the GPU.
#[must_use]
pub fn judge_state(path: &Path, max_age: Duration, now: SystemTime) -> (String, i32) {
    let unhealthy = |why: String| (shorten(format!("unhealthy: {why}")), UNHEALTHY);
    let bytes = match crate::output::read_regular_file(path, crate::output::MAX_REPORT_BYTES) {
        Ok(b) => b,
        Err(e) => {
            return unhealthy(format!(
                "cannot read state file {}: {e}; is `gpuprobe watch --state` running?",
                path.display()
            ))
        }
    };
    let report = match Report::from_json(&bytes) {
        Ok(r) => r,
        Err(e) => return unhealthy(format!("{} {e}", path.display())),
    };
    let Ok(started) = humantime::parse_rfc3339(&report.started_at) else {
        return unhealthy(format!(
            "{} has a bad started_at {:?}",
            path.display(),
            report.started_at
        ));
    };
    // A hostile or corrupt file may hold any number: one that is not a
    // duration, or one that overflows the clock, is not a report of a run.
    let finished = Duration::try_from_secs_f64(report.duration_ms / 1e3)
        .ok()
        .and_then(|d| started.checked_add(d));
    let Some(finished) = finished else {
        return unhealthy(format!(
            "{} has a bad duration_ms {}",
            path.display(),
            report.duration_ms
        ));
    };
    // A report that ends in the future cannot be vouched for: the clock
    // went back, or the file was not written by `watch`. Within CLOCK_SLACK
    // it is just now: started_at is wall time cut to milliseconds and the
    // duration is measured on the monotonic clock.
    let age = match now.duration_since(finished) {
        Ok(age) => Ok(age),
        Err(ahead) if ahead.duration() <= CLOCK_SLACK => Ok(Duration::ZERO),
        Err(ahead) => Err(ahead),
    };
    let age = match age {
        Ok(age) => age,
        Err(ahead) => {
            return unhealthy(format!(
                "the last report in {} ends {} in the future; the clock changed or the file was not written by `gpuprobe watch`",
                path.display(),
                // Not as a date: past year 9999 RFC 3339 cannot write one.
                humantime::format_duration(Duration::from_secs(ahead.duration().as_secs()))
            ));
        }
    };
    let age_text = humantime::format_duration(Duration::from_secs(age.as_secs()));
    if age > max_age {
        return unhealthy(format!(
            "the last report in {} is {age_text} old, older than --max-age {}; is `gpuprobe watch` still running?",
            path.display(),
            humantime::format_duration(max_age)
        ));
    }
    let (line, code) = judge(&report);
    (
        shorten(format!("{line} (from {}, {age_text} old)", path.display())),
        code,
    )
}

fn shorten(mut line: String) -> String {
    line = line.replace('\n', " ");
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE - 3;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let line = shorten("é".repeat(2000));
        assert!(line.len() <= MAX_LINE && line.ends_with("..."));
    }

    #[test]
    fn missing_and_garbage_state_files_are_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let missing = judge_state(
            &dir.path().join("none.json"),
            Duration::from_secs(60),
            SystemTime::now(),
        );
        assert_eq!(missing.1, UNHEALTHY);
        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, b"\x00\xffnot json").unwrap();
        let (line, code) = judge_state(&garbage, Duration::from_secs(60), SystemTime::now());
        assert_eq!(code, UNHEALTHY);
        assert!(line.contains("not a gpuprobe report"), "{line}");
    }

    fn state_file(dir: &Path, started_at: &str, duration_ms: &str) -> std::path::PathBuf {
        let fixture = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/report-one-gpu.json"),
        )
        .unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&fixture).unwrap();
        json["started_at"] = started_at.into();
        json["duration_ms"] = serde_json::from_str(duration_ms).unwrap();
        let path = dir.join("state.json");
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }

    /// A failed `watch` cycle short of `--unhealthy-after` failures in a
    /// row is healthy, and says so; at the threshold it is unhealthy; a
    /// report of any other command is judged by its verdict alone.
    #[test]
    fn a_watch_cycle_is_judged_by_its_run_of_failures() {
        let fixture = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/report-one-gpu.json"),
        )
        .unwrap();
        let mut report = Report::from_json(&fixture).unwrap();
        report.verdict = crate::report::Verdict::Failed;
        assert_eq!(judge(&report).1, UNHEALTHY);
        let streak = |failures: u32| crate::report::WatchStreak {
            cycle: 7,
            consecutive_failures: failures,
            unhealthy_after: 3,
            unhealthy: failures >= 3,
        };
        report.watch = Some(streak(2));
        let (line, code) = judge(&report);
        assert_eq!(code, HEALTHY, "{line}");
        assert!(
            line.starts_with(
                "healthy: this probe failed, 2 of 3 consecutive failures before unhealthy: "
            ),
            "{line}"
        );
        report.watch = Some(streak(3));
        assert_eq!(judge(&report).1, UNHEALTHY);
    }

    #[test]
    fn a_huge_duration_is_unhealthy_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for duration in ["1e300", "-5", "1.7976931348623157e308"] {
            let path = state_file(dir.path(), "2026-01-01T00:00:00Z", duration);
            let (line, code) = judge_state(&path, Duration::from_secs(60), SystemTime::now());
            assert_eq!(code, UNHEALTHY, "{duration}: {line}");
            assert!(line.contains("bad duration_ms"), "{line}");
        }
    }

    #[test]
    fn a_report_from_the_future_is_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let now = humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let path = state_file(dir.path(), "2026-01-01T01:00:00Z", "10");
        let (line, code) = judge_state(&path, Duration::from_secs(60), now);
        assert_eq!(code, UNHEALTHY, "{line}");
        assert!(line.contains("in the future"), "{line}");
        // The same report, judged a little after it finished, is fresh.
        let later = now + Duration::from_secs(3602);
        let (line, _) = judge_state(&path, Duration::from_secs(60), later);
        assert!(line.contains("1s old"), "{line}");
    }
}
