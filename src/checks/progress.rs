//! The report as it is being built, shared between the probe's threads and
//! the watchdog.
//!
//! Every stage runs through `Progress::stage`, which records that it started
//! and, when it ends, appends its check. The lock is never held while a stage
//! runs, so when a driver call never returns the watchdog can still take the
//! report as it stands and name each stage still in flight.
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::cuda::CudaError;
use crate::report::{Check, CheckStatus, NotRun, Report};
use crate::stage::Stage;

/// Where a stage belongs: the whole machine, or one entry of `devices`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Machine,
    Device(usize),
}

/// A stage that ended without failing.
pub struct Done<T> {
    pub value: T,
    pub detail: String,
    pub status: CheckStatus,
    /// The driver error behind a stage that did not fail for it (a busy
    /// GPU's context: skipped, not failed).
    pub error: Option<CudaError>,
    /// Why the stage did not run, when it did not (always on a skip).
    pub not_run: Option<NotRun>,
}

impl<T> Done<T> {
    pub fn pass(value: T, detail: impl Into<String>) -> Self {
        Done {
            value,
            detail: detail.into(),
            status: CheckStatus::Pass,
            error: None,
            not_run: None,
        }
    }

    pub fn warn(value: T, detail: impl Into<String>) -> Self {
        Done {
            value,
            detail: detail.into(),
            status: CheckStatus::Warn,
            error: None,
            not_run: None,
        }
    }

    /// Not run, for `why`, a reason that is no failure; `error` is what
    /// said so.
    pub fn skip(
        value: T,
        why: NotRun,
        detail: impl Into<String>,
        error: Option<CudaError>,
    ) -> Self {
        Done {
            value,
            detail: detail.into(),
            status: CheckStatus::Skip,
            error,
            not_run: Some(why),
        }
    }

    /// The same outcome, marked as a stage that did not run for `why`
    /// (a warning that it could not run).
    #[must_use]
    pub fn not_run(self, why: NotRun) -> Self {
        Done {
            not_run: Some(why),
            ..self
        }
    }
}

/// A stage that failed: what went wrong, and the driver error if one did.
pub struct Failed {
    pub detail: String,
    pub error: Option<CudaError>,
    /// Set when the failure is that the stage could not run at all (it
    /// did not fit the deadline).
    pub not_run: Option<NotRun>,
}

impl From<CudaError> for Failed {
    fn from(e: CudaError) -> Self {
        Failed {
            detail: e.to_string(),
            error: Some(e),
            not_run: None,
        }
    }
}

impl From<crate::cuda::CopyError> for Failed {
    fn from(e: crate::cuda::CopyError) -> Self {
        match e {
            crate::cuda::CopyError::Cuda(e) => e.into(),
            refused @ (crate::cuda::CopyError::TooLarge { .. }
            | crate::cuda::CopyError::Overflow { .. }
            | crate::cuda::CopyError::OtherContext { .. }) => Failed::new(refused.to_string()),
        }
    }
}

impl Failed {
    pub fn new(detail: impl Into<String>) -> Self {
        Failed {
            detail: detail.into(),
            error: None,
            not_run: None,
        }
    }

    /// A failure that is the stage not running at all, for `why`.
    #[must_use]
    pub fn not_run(self, why: NotRun) -> Self {
        Failed {
            not_run: Some(why),
            ..self
        }
    }
}

struct Running {
    scope: Scope,
    stage: Stage,
    started: Instant,
    /// The thread running the stage, to name the driver call it is in.
    thread: std::thread::ThreadId,
}

/// A stage that was still running at the deadline.
#[derive(Debug, Clone)]
pub struct Hung {
    pub scope: Scope,
    pub stage: Stage,
    /// The driver call it was inside, when it was inside one.
    pub call: Option<&'static str>,
    /// How long that call had been in flight.
    pub call_for: Option<Duration>,
    /// Whether it was stuck: inside one driver call long enough to call
    /// that call unanswered (`unanswered`), or outside the driver's calls
    /// that long (an NVML call, host work); rather than still making calls
    /// that return: a stage that needed more time than the deadline left.
    pub stuck: bool,
}

/// How long one driver call must have gone unanswered at the deadline
/// for the stage to count as stuck in it rather than still working: half
/// the deadline, at most 5 s. A loop of calls that each return (a bench
/// size with many products, a slow GPU) is caught inside some call at any
/// moment, but only briefly; a wedged call (a GPU fallen off the bus, a
/// driver holding its lock) has usually been waiting since long before.
/// One real call can take seconds (a synchronize after a second of
/// queued products, a JIT compile), so the bar is not lower.
fn unanswered(timeout: Duration) -> Duration {
    (timeout / 2).min(Duration::from_secs(5))
}

struct Partial {
    report: Report,
    running: Vec<Running>,
}

pub struct Progress {
    inner: Mutex<Partial>,
}

impl Progress {
    #[must_use]
    pub fn new(report: Report) -> Progress {
        Progress {
            inner: Mutex::new(Partial {
                report,
                running: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Partial> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Edits the report under the lock. `f` must not call the driver.
    pub fn update<R>(&self, f: impl FnOnce(&mut Report) -> R) -> R {
        f(&mut self.lock().report)
    }

    /// Runs one stage, timing it and recording its check. Returns the
    /// stage's value, or `None` when it failed.
    pub fn stage<T>(
        &self,
        scope: Scope,
        stage: Stage,
        body: impl FnOnce() -> Result<Done<T>, Failed>,
    ) -> Option<T> {
        let started = Instant::now();
        let thread = std::thread::current().id();
        self.lock().running.push(Running {
            scope,
            stage,
            started,
            thread,
        });
        let outcome = body();
        let duration_ms = started.elapsed().as_secs_f64() * 1e3;
        let (value, check) = match outcome {
            Ok(done) => (
                Some(done.value),
                Check {
                    name: stage.as_str().into(),
                    status: done.status,
                    duration_ms,
                    detail: done.detail,
                    error: done.error.map(|e| e.to_report()),
                    not_run: done.not_run,
                },
            ),
            Err(failed) => (
                None,
                Check {
                    name: stage.as_str().into(),
                    status: CheckStatus::Fail,
                    duration_ms,
                    detail: failed.detail,
                    error: failed.error.map(|e| e.to_report()),
                    not_run: failed.not_run,
                },
            ),
        };
        let mut partial = self.lock();
        partial
            .running
            .retain(|r| !(r.scope == scope && r.stage == stage));
        push_check(&mut partial.report, scope, check);
        value
    }

    /// Records a check for a stage that did not run, for `why`.
    pub fn skip(&self, scope: Scope, stage: Stage, why: NotRun, detail: impl Into<String>) {
        let check = Check {
            name: stage.as_str().into(),
            status: CheckStatus::Skip,
            duration_ms: 0.0,
            detail: detail.into(),
            error: None,
            not_run: Some(why),
        };
        push_check(&mut self.lock().report, scope, check);
    }

    /// The report as it stands, each stage still running recorded as timed
    /// out with the driver call it is stuck in: what the watchdog prints
    /// when the deadline passes.
    pub fn snapshot_timed_out(&self, timeout: Duration) -> (Report, Vec<Hung>) {
        let partial = self.lock();
        let mut report = partial.report.clone();
        let mut hung = Vec::new();
        for r in &partial.running {
            let waited = r.started.elapsed().as_secs_f64();
            let in_call = crate::cuda::call_in_flight(r.thread);
            let limit = unanswered(timeout);
            // Inside a driver call: stuck once it has gone unanswered for
            // the limit. Between calls: working only if its last driver
            // call returned within the limit (a loop of calls), else stuck
            // outside the calls tracked here (NVML, or host work).
            let stuck = match in_call {
                Some((_, since)) => since >= limit,
                None => crate::cuda::error::last_return(r.thread).is_none_or(|ago| ago >= limit),
            };
            let detail = match in_call {
                Some((call, since)) if stuck => {
                    format!("no answer from {call} after {:.1} s", since.as_secs_f64())
                }
                Some((call, since)) => format!(
                    "still working after {waited:.1} s: its driver calls were answering (in \
                     {call} for {:.0} ms at the deadline), so the stage needed more time than \
                     the deadline left",
                    since.as_secs_f64() * 1e3
                ),
                None if stuck => format!(
                    "no answer after {waited:.1} s (outside the CUDA driver's calls: NVML, or \
                     gpuprobe's own work)"
                ),
                None => format!(
                    "still working after {waited:.1} s, between driver calls at the deadline: \
                     the stage needed more time than the deadline left"
                ),
            };
            let check = Check {
                name: r.stage.as_str().into(),
                status: CheckStatus::Timeout,
                duration_ms: waited * 1e3,
                detail,
                error: None,
                not_run: None,
            };
            push_check(&mut report, r.scope, check);
            hung.push(Hung {
                scope: r.scope,
                stage: r.stage,
                call: in_call.map(|(call, _)| call),
                call_for: in_call.map(|(_, since)| since),
                stuck,
            });
        }
        (report, hung)
    }

    /// Stages running now, for the progress line on a terminal.
    pub fn running(&self) -> Vec<(Scope, Stage)> {
        self.lock()
            .running
            .iter()
            .map(|r| (r.scope, r.stage))
            .collect()
    }

    pub fn report(&self) -> Report {
        self.lock().report.clone()
    }
}

fn push_check(report: &mut Report, scope: Scope, check: Check) {
    match scope {
        Scope::Machine => report.checks.push(check),
        Scope::Device(i) => {
            if let Some(d) = report.devices.get_mut(i) {
                d.checks.push(check);
            }
        }
    }
}
