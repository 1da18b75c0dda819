//! The burn check: the status and the detail of a finished burn, from what
//! its log recorded (wrong results, driver and ECC errors, how it ended).
//! A slowdown is recorded (`worst_over_best`) and judged once, by GP032.
use std::fmt::Write as _;
use std::time::Duration;

use crate::report::{Burn, BurnEnd, BurnErrorKind, CheckStatus};

/// The burn check: failed by a wrong result or a driver error; a warning
/// for uncorrectable ECC errors (judged by the diagnoses, from NVML's
/// memory-error signals), correctable ones, or a burn cut short; passed
/// otherwise.
#[must_use]
pub fn judge(b: &Burn, asked: Duration) -> (CheckStatus, String) {
    let mut detail = format!(
        "{:.1} s of {}: {} products, mean {}",
        b.duration_ms / 1e3,
        humantime::format_duration(asked),
        b.products,
        crate::units::flops(b.gflops_mean)
    );
    if let Some(w) = &b.worst_interval {
        let _ = write!(
            detail,
            ", worst interval {} at {:.1} s ({} of the best)",
            crate::units::flops(w.gflops),
            w.at_ms / 1e3,
            b.worst_over_best.map_or("?".into(), crate::units::percent)
        );
    }
    let _ = write!(
        detail,
        "; {} product(s) compared bit for bit with the verified one{}",
        b.verifications,
        if b.compared_on_gpu {
            ", each on the GPU"
        } else {
            ""
        }
    );
    if let Some(t) = b.temperature_max_celsius {
        let _ = write!(detail, "; up to {t} °C");
    }
    if let (Some(lo), Some(hi)) = (b.sm_clock_min_mhz, b.sm_clock_max_mhz) {
        let _ = write!(detail, ", SM clock down to {lo} of {hi} MHz");
    }
    if let Some(judged) = judge_errors(b, &detail) {
        return judged;
    }
    let corrected = count(b, BurnErrorKind::EccCorrected);
    let mut warnings = Vec::new();
    if corrected > 0 {
        warnings.push(format!("{corrected} correctable ECC error report(s)"));
    }
    match b.ended {
        BurnEnd::Interrupted => warnings.push("interrupted (SIGINT/SIGTERM)".into()),
        BurnEnd::Deadline => warnings.push("cut short by the run's --timeout".into()),
        BurnEnd::Unfinished => {
            warnings.push("unfinished: the run ended while the burn was still at work".into());
        }
        BurnEnd::Completed | BurnEnd::Error => {}
    }
    if b.products == 0 {
        warnings.push("no product completed".into());
    }
    if warnings.is_empty() {
        (CheckStatus::Pass, detail)
    } else {
        (
            CheckStatus::Warn,
            format!("{}: {detail}", warnings.join("; ")),
        )
    }
}

/// Every error of `kind` the burn saw, not only the listed (at most 25 a
/// kind).
fn count(b: &Burn, kind: BurnErrorKind) -> u64 {
    b.error_counts
        .iter()
        .find(|c| c.kind == kind)
        .map_or(0, |c| c.count)
}

/// The check's status and text from the errors that fail or warn it:
/// `None` when there are none (correctable ECC errors aside).
fn judge_errors(b: &Burn, detail: &str) -> Option<(CheckStatus, String)> {
    let listed = |kinds: &[(BurnErrorKind, &str)]| -> Vec<String> {
        kinds
            .iter()
            .filter(|(kind, _)| count(b, *kind) > 0)
            .map(|(kind, what)| format!("{} {what}", count(b, *kind)))
            .collect()
    };
    let failures = listed(&[
        (BurnErrorKind::WrongResult, "wrong result(s)"),
        (BurnErrorKind::Driver, "driver error(s)"),
    ]);
    // Uncorrectable memory errors are judged once, by the diagnoses, from
    // what NVML reads after them: contained with a row remap pending on a
    // GPU that remaps rows is "reset when convenient" (GP036), anything
    // else takes the GPU out of service (GP015, GP033). The check records
    // them and warns.
    let memory = listed(&[
        (
            BurnErrorKind::EccUncorrectable,
            "uncorrectable ECC error(s) in the burn's own work",
        ),
        (
            BurnErrorKind::EccUncorrected,
            "uncorrectable ECC error report(s) (NVML)",
        ),
    ]);
    let first = b
        .errors
        .iter()
        .find(|e| e.kind != BurnErrorKind::EccCorrected)?;
    let when = format!(
        "the first at {:.1} s{}: {}",
        first.at_ms / 1e3,
        first
            .interval
            .map_or(String::new(), |i| format!(" (interval {i})")),
        first.detail
    );
    if !failures.is_empty() {
        let all: Vec<String> = failures.into_iter().chain(memory).collect();
        return Some((
            CheckStatus::Fail,
            format!("{}; {when} ({detail})", all.join(", ")),
        ));
    }
    (!memory.is_empty()).then(|| {
        (
            CheckStatus::Warn,
            format!(
                "{}, {when}; the memory-error diagnoses judge it from NVML ({detail})",
                memory.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::burn::interval::Measured;
    use crate::checks::burn::log::{Log, MAX_ERRORS_PER_KIND};
    use crate::report::BurnErrorCount;

    #[test]
    fn the_check_counts_every_error_not_the_listed() {
        let b = burn(
            &[100.0, 100.0],
            &[BurnErrorKind::WrongResult; 30],
            BurnEnd::Completed,
        );
        assert_eq!(b.errors.len(), MAX_ERRORS_PER_KIND);
        let (status, detail) = judge(&b, Duration::from_secs(2));
        assert_eq!(status, CheckStatus::Fail);
        assert!(detail.starts_with("30 wrong result(s)"), "{detail}");
        assert_eq!(
            b.error_counts,
            [BurnErrorCount {
                kind: BurnErrorKind::WrongResult,
                count: 30
            }]
        );
    }

    #[test]
    fn a_wrong_result_after_many_listed_errors_still_fails() {
        // Correctable ECC errors past the list's limit for their kind do
        // not push a later wrong result off the list.
        let mut errors = vec![BurnErrorKind::EccCorrected; 40];
        errors.push(BurnErrorKind::WrongResult);
        let b = burn(&[100.0, 100.0], &errors, BurnEnd::Completed);
        assert_eq!(b.errors_not_listed, 15);
        assert!(b
            .errors
            .iter()
            .any(|e| e.kind == BurnErrorKind::WrongResult));
        assert_eq!(judge(&b, Duration::from_secs(2)).0, CheckStatus::Fail);
    }

    #[test]
    fn uncorrectable_memory_errors_warn_for_the_diagnoses_to_judge() {
        // Alone, an uncorrectable ECC error is judged by the memory-error
        // diagnoses from NVML (GP036 contained, GP015 or GP033 otherwise).
        for kind in [
            BurnErrorKind::EccUncorrectable,
            BurnErrorKind::EccUncorrected,
        ] {
            let b = burn(&[100.0, 100.0], &[kind], BurnEnd::Error);
            let (status, detail) = judge(&b, Duration::from_secs(3));
            assert_eq!(status, CheckStatus::Warn, "{kind:?}");
            assert!(detail.contains("at 1.5 s (interval 1)"), "{detail}");
        }
        // Beside a wrong result, the check fails and lists both.
        let b = burn(
            &[100.0],
            &[BurnErrorKind::EccUncorrectable, BurnErrorKind::WrongResult],
            BurnEnd::Error,
        );
        let (status, detail) = judge(&b, Duration::from_secs(3));
        assert_eq!(status, CheckStatus::Fail);
        assert!(
            detail.starts_with("1 wrong result(s), 1 uncorrectable ECC error(s)"),
            "{detail}"
        );
    }

    /// A burn of one product per interval at these GFLOP/s, with these
    /// errors, through the same `Log` a real burn keeps.
    fn burn(intervals: &[f64], errors: &[BurnErrorKind], ended: BurnEnd) -> Burn {
        let mut log = Log::new(None);
        for (i, g) in intervals.iter().enumerate() {
            let measured = Measured {
                gpu_ms: 1000.0 / g,
                sample: None,
                differed: Some(false),
            };
            let at = Duration::from_secs(i as u64);
            log.interval(at, 1, measured, *g, Some(true), 1);
        }
        for kind in errors {
            log.error(Duration::from_millis(1500), Some(1), *kind, "seen".into());
        }
        log.finish("k".into(), (1, 1, 1), Duration::from_secs(3), ended, None)
    }

    #[test]
    fn the_check_fails_on_errors_and_records_slowdowns_for_gp032() {
        let secs = Duration::from_secs(3);
        let ratio = |b: &Burn| b.worst_over_best.unwrap();
        let steady = burn(&[100.0, 99.0, 100.0], &[], BurnEnd::Completed);
        assert_eq!(judge(&steady, secs).0, CheckStatus::Pass);
        // A slowdown is recorded, and judged once, by GP032.
        let slow = burn(&[100.0, 100.0, 50.0, 100.0], &[], BurnEnd::Completed);
        let (status, detail) = judge(&slow, secs);
        assert_eq!(status, CheckStatus::Pass);
        assert!(detail.contains("(50% of the best)"), "{detail}");
        assert!((ratio(&slow) - 0.5).abs() < 1e-9);
        assert_eq!(
            slow.worst_interval.as_ref().map(|w| w.at_ms as u32),
            Some(2000)
        );
        // A slow first interval is a GPU ramping its clocks, not slowing.
        let ramping = burn(&[50.0, 100.0, 100.0, 99.0], &[], BurnEnd::Completed);
        assert!((ratio(&ramping) - 0.99).abs() < 1e-9);
        // Boost steps of a few percent, and throttled for most of the run.
        let steps = burn(&[100.0, 100.0, 96.0, 99.0, 95.0], &[], BurnEnd::Completed);
        assert!((ratio(&steps) - 0.95).abs() < 1e-9);
        let throttled = burn(&[100.0, 100.0, 60.0, 60.0, 60.0], &[], BurnEnd::Completed);
        assert!((ratio(&throttled) - 0.6).abs() < 1e-9);
        let wrong = burn(&[100.0], &[BurnErrorKind::WrongResult], BurnEnd::Completed);
        let (status, detail) = judge(&wrong, secs);
        assert_eq!(status, CheckStatus::Fail);
        assert!(detail.contains("at 1.5 s"), "{detail}");
        let corrected = burn(&[100.0], &[BurnErrorKind::EccCorrected], BurnEnd::Completed);
        assert_eq!(judge(&corrected, secs).0, CheckStatus::Warn);
        let stopped = burn(&[100.0], &[], BurnEnd::Interrupted);
        assert_eq!(judge(&stopped, secs).0, CheckStatus::Warn);
    }
}
