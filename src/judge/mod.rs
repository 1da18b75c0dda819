//! The judge: the one place a run is concluded. The probe gathers facts
//! into a `Report` and says how it ended (`probe::Ending`); `conclude`
//! turns facts, ending and policy (the requirements, `--strict`) into the
//! verdict, the diagnoses, the summary and the exit code, once, on every
//! path: a finished probe, no GPU, the watchdog's timeout, a signal's, an
//! internal error.
//!
//! requirements.rs judges what the workload asked for, diagnose/ holds the
//! rule table, verdict.rs each ending's verdict and summary body.
pub mod diagnose;
pub mod requirements;
mod verdict;

use std::time::Duration;

use crate::checks::progress::Progress;
use crate::probe::ending::Ending;
use crate::probe::{Options, Probed};
use crate::report::{Report, Severity, Verdict};
use requirements::Requirements;

/// What the run was asked to hold the GPUs to, beside the facts.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--require-*`: each becomes a check of its own.
    pub requirements: Requirements,
    /// Whether the requirements may judge speed: `health` measures none.
    pub measured_speed: bool,
    /// `--strict`: a degraded verdict counts as failed.
    pub strict: bool,
}

/// A command's whole plan: what to probe, and what to hold it to. Each
/// command builds one, once, from its own arguments (src/app.rs).
#[derive(Debug, Clone)]
pub struct Plan {
    pub probe: Options,
    pub policy: Policy,
}

impl Plan {
    /// The checks `--require-checks` names that this plan never runs (a
    /// usage error: `health` runs no bandwidth check, `watch` no memory
    /// test, the probe none without `--memtest`).
    #[must_use]
    pub fn never_runs(&self) -> Vec<crate::report::CheckName> {
        self.policy
            .requirements
            .checks
            .iter()
            .copied()
            .filter(|c| !self.probe.may_run(*c))
            .collect()
    }
}

/// The summary, from its typed parts: the body each ending gives, the
/// leading diagnosis before or after it, and the notes after both.
struct Summary {
    body: String,
    /// "GPnnn: cause", and whether it leads (it explains the verdict, or
    /// is what changed it) or follows.
    diagnosis: Option<(String, bool)>,
    /// A stop's grace ran out.
    stopped: bool,
    /// An earlier probe is still stuck.
    still_wedged: bool,
    /// `--strict` turned degraded into failed.
    strict: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.diagnosis {
            None => f.write_str(&self.body)?,
            Some((d, _)) if self.body.is_empty() => f.write_str(d)?,
            Some((d, true)) => write!(f, "{d}; {}", self.body)?,
            Some((d, false)) => write!(f, "{}; {d}", self.body)?,
        }
        if self.stopped {
            f.write_str(
                "; stopped by SIGINT or SIGTERM, and what was still running did not end in the \
                 time given",
            )?;
        }
        if self.still_wedged {
            f.write_str(
                "; still stuck since an earlier probe: no GPU is probed again until that call \
                 returns",
            )?;
        }
        if self.strict {
            f.write_str(" (degraded counts as failed: --strict)")?;
        }
        Ok(())
    }
}

/// Concludes a run: the verdict, the diagnoses, the summary and the exit
/// code of `report`, from how the probe ended and the policy.
#[must_use]
pub fn conclude(mut report: Report, ending: &Ending, policy: &Policy) -> Report {
    let (mut verdict, body) = match ending {
        Ending::Finished { measured } => {
            // The named checks are judged on every finished run; the
            // other requirements only where the run measured the matmul.
            let judged = if *measured {
                policy.requirements.judge(&report, policy.measured_speed)
            } else {
                policy.requirements.judge_checks(&report)
            };
            judged.apply(&mut report);
            verdict::finished(&mut report)
        }
        Ending::NoGpu(cause) => (Verdict::NoGpu, verdict::no_gpu(cause)),
        Ending::TimedOut(t) => (Verdict::Timeout, verdict::timed_out(&mut report, t)),
        Ending::Internal(e) => (Verdict::Failed, verdict::internal(e)),
    };
    report.diagnoses = diagnose::diagnose(&report);
    diagnose::mark_devices(&mut report);
    let before = verdict;
    let worst = report.diagnoses.first().map(|d| d.severity);
    match (worst, verdict) {
        (Some(Severity::Error), Verdict::Healthy | Verdict::Degraded) => {
            verdict = Verdict::Failed;
        }
        (Some(Severity::Warning), Verdict::Healthy) => verdict = Verdict::Degraded,
        _ => {}
    }
    let diagnosis = report
        .diagnoses
        .first()
        .filter(|d| d.severity > Severity::Info)
        .map(|d| {
            // The diagnosis leads when it explains the verdict (an error) or
            // is what changed it; what the probe found follows.
            let leads = d.severity == Severity::Error || verdict != before;
            (format!("{}: {}", d.code, d.summary), leads)
        });
    let strict = policy.strict && verdict == Verdict::Degraded;
    if strict {
        verdict = Verdict::Failed;
    }
    let (stopped, still_wedged) = match ending {
        Ending::TimedOut(t) => (t.stopped, t.still_wedged),
        _ => (false, false),
    };
    report.summary = Summary {
        body,
        diagnosis,
        stopped,
        still_wedged,
        strict,
    }
    .to_string();
    report.verdict = verdict;
    report.exit_code = verdict.exit_code();
    report
}

/// Runs probes with `options`, one at a time, each concluded by the judge;
/// a probe stuck in the driver is remembered (see `probe::Session`).
pub struct Session {
    probe: crate::probe::Session,
    policy: Policy,
}

impl Session {
    #[must_use]
    pub fn new(plan: Plan) -> Session {
        Session {
            policy: plan.policy,
            probe: crate::probe::Session::new(plan.probe),
        }
    }

    /// Probes once and concludes; `None` when `stop` abandoned the probe
    /// (see `probe::Session::run`).
    pub fn run(
        &mut self,
        on_tick: impl FnMut(&Progress, Duration),
        stop: impl Fn() -> bool,
    ) -> Option<Report> {
        let probed = self.probe.run(on_tick, stop)?;
        Some(self.conclude(probed))
    }

    /// Probes once, giving a stopped probe `grace` to end (see
    /// `probe::Session::run_with_grace`), and concludes.
    pub fn run_with_grace(
        &mut self,
        on_tick: impl FnMut(&Progress, Duration),
        stop: impl Fn() -> bool,
        grace: Duration,
    ) -> Report {
        let probed = self.probe.run_with_grace(on_tick, stop, grace);
        self.conclude(probed)
    }

    fn conclude(&self, probed: Probed) -> Report {
        conclude(probed.report, &probed.ending, &self.policy)
    }
}

/// Runs the probe once under the plan's timeout and concludes it.
/// `on_tick` is called from the waiting thread while the probe runs (the
/// terminal progress line).
pub fn run(plan: &Plan, on_tick: impl FnMut(&Progress, Duration)) -> Report {
    Session::new(plan.clone()).run_with_grace(on_tick, || false, Duration::ZERO)
}
