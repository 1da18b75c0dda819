//! A probe session: the one owner of the deadline and of the probe still in
//! flight, for a single run or for every cycle of `watch`.
//!
//! A probe runs on a worker thread; the caller's thread is the watchdog.
//! When the deadline passes, the worker is stuck in a driver call that may
//! never return, and it cannot be cancelled: a thread blocked inside libcuda
//! cannot be stopped from outside. Such a call often holds the driver's own
//! lock, so every later driver call, on any GPU, waits behind it. A session
//! therefore keeps the stuck worker, and while it has not returned, a new
//! cycle does not call the driver at all: it reports the same wedge again
//! (the stage and the driver call, and for how long now), with no new
//! thread, no new buffers, nothing that could block. When the stuck call
//! does return, the next cycle probes as usual. Without this, `watch` on a
//! wedged GPU started a whole new probe every cycle, each of which stuck in
//! its turn: threads and memory grew without bound in exactly the failure
//! the agent exists to report.
//!
//! The driver and NVML themselves are loaded once per process (see
//! `machine::cached_driver` and `telemetry::load`): a CUDA driver is not
//! meant to be unloaded and loaded again.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use super::ending::{Ending, Internal, TimedOut};
use super::{empty_report, finish, probe, Options, Probed};
use crate::checks::progress::{Hung, Progress};
use crate::report::Report;

/// How often the watchdog wakes to check the deadline and report progress.
const TICK: Duration = Duration::from_millis(100);

/// A probe that outlived its deadline and has not returned since.
struct Stuck {
    progress: Arc<Progress>,
    /// Sends once when the worker returns.
    done: mpsc::Receiver<Ending>,
    /// When the stuck probe started.
    started: Instant,
}

impl Stuck {
    fn returned(&self) -> bool {
        !matches!(self.done.try_recv(), Err(mpsc::TryRecvError::Empty))
    }
}

/// Runs probes with `options`, one at a time, and remembers a stuck one.
pub struct Session {
    options: Options,
    stuck: Option<Stuck>,
    /// NVML's event stream, watched from the session's first probe on
    /// (where `options.events` asks), for as long as the session lives.
    events: Option<crate::events::Watcher>,
}

impl Session {
    #[must_use]
    pub fn new(options: Options) -> Session {
        Session {
            options,
            stuck: None,
            events: None,
        }
    }

    /// Starts the event watch before the first probe, so that what the
    /// probe's work causes is seen (NVML loses events from before).
    fn watch_events(&mut self) {
        if self.options.events && self.events.is_none() {
            // Loading NVML may make /dev/nvidiactl (as root, the library
            // does): the device nodes the container was given are noted
            // first, as the probe itself does before any driver call.
            crate::environment::note_nodes_before_driver(&crate::environment::root());
            let nvml = crate::telemetry::load().ok();
            self.events = Some(crate::events::Watcher::start(nvml));
        }
    }

    /// The report with the events delivered since the last one.
    fn with_events(&self, mut probed: Probed) -> Probed {
        if let Some(w) = &self.events {
            probed.report.events = Some(w.take());
        }
        probed
    }

    /// Whether a probe of this session is still stuck in the driver.
    #[must_use]
    pub fn is_wedged(&mut self) -> bool {
        if self.stuck.as_ref().is_some_and(Stuck::returned) {
            self.stuck = None;
        }
        self.stuck.is_some()
    }

    /// Probes once under the session's deadline. `on_tick` is called from
    /// this thread while the probe runs (the terminal progress line). Gives
    /// up waiting and returns `None` as soon as `stop` returns true (a
    /// signal in watch mode). While an earlier probe is still stuck, returns
    /// at once the report of that wedge instead of probing again.
    pub fn run(
        &mut self,
        on_tick: impl FnMut(&Progress, Duration),
        stop: impl Fn() -> bool,
    ) -> Option<Probed> {
        self.watch_events();
        let probed = self.run_until(on_tick, stop, None)?;
        Some(self.with_events(probed))
    }

    /// As `run`, except that a stop request does not abandon the probe: the
    /// probe is given `grace` to end by itself (a `burn` ends its intervals
    /// at the same request), and whatever is still running then is reported
    /// as at the deadline, the stage and the driver call it is stuck in
    /// named. So Ctrl-C always ends with a report, even when a driver call
    /// never returns.
    pub fn run_with_grace(
        &mut self,
        on_tick: impl FnMut(&Progress, Duration),
        stop: impl Fn() -> bool,
        grace: Duration,
    ) -> Probed {
        self.watch_events();
        // With a grace a stop never abandons the probe, so there is always
        // a report; `Abandoned` only keeps this total.
        let probed = self
            .run_until(on_tick, stop, Some(grace))
            .unwrap_or_else(|| Probed {
                report: empty_report(&self.options),
                ending: Ending::Internal(Internal::Abandoned),
            });
        self.with_events(probed)
    }

    fn run_until(
        &mut self,
        mut on_tick: impl FnMut(&Progress, Duration),
        stop: impl Fn() -> bool,
        grace: Option<Duration>,
    ) -> Option<Probed> {
        let started = Instant::now();
        if self.is_wedged() {
            return self.stuck.as_ref().map(|s| self.still_wedged(s, started));
        }
        let progress = Arc::new(Progress::new(empty_report(&self.options)));
        // No deadline when it lies past what Instant can hold (the command
        // line refuses such timeouts; a library caller may not). The probe
        // gets it too, to size its work to what is left of it.
        let mut deadline = started.checked_add(self.options.timeout);
        let mut stopping = false;
        let done = match self.start(&progress, deadline) {
            Ok(done) => done,
            Err(e) => {
                let ending = Ending::Internal(Internal::ThreadStart(e.to_string()));
                return Some(finish(progress.report(), started, ending));
            }
        };

        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                let limit = if stopping {
                    now - started
                } else {
                    self.options.timeout
                };
                let (report, mut ending) = timed_out(&progress, limit);
                ending.stopped = stopping;
                let probed = finish(report, started, Ending::TimedOut(ending));
                self.stuck = Some(Stuck {
                    progress,
                    done,
                    started,
                });
                return Some(probed);
            }
            if !stopping && stop() {
                // Without a grace, a stop abandons the probe (watch).
                let grace = grace?;
                stopping = true;
                let by = now + grace;
                deadline = Some(deadline.map_or(by, |d| d.min(by)));
            }
            match done.recv_timeout(deadline.map_or(TICK, |d| TICK.min(d - now))) {
                Ok(ending) => return Some(finish(progress.report(), started, ending)),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let ending = Ending::Internal(Internal::Panic);
                    return Some(finish(progress.report(), started, ending));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => on_tick(&progress, started.elapsed()),
            }
        }
    }

    /// Starts the probe on its worker thread; the receiver gets how it
    /// ended (a panic is an internal error).
    fn start(
        &self,
        progress: &Arc<Progress>,
        deadline: Option<Instant>,
    ) -> std::io::Result<mpsc::Receiver<Ending>> {
        let (done_tx, done) = mpsc::channel();
        let progress = Arc::clone(progress);
        let options = self.options.clone();
        std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || {
                let ending =
                    catch_unwind(AssertUnwindSafe(|| probe(&progress, &options, deadline)))
                        .unwrap_or(Ending::Internal(Internal::Panic));
                let _ = done_tx.send(ending);
            })?;
        Ok(done)
    }

    /// The report of a cycle that found an earlier probe still stuck: that
    /// probe's report as it stands, its stuck stages timed out as of now,
    /// dated now.
    fn still_wedged(&self, stuck: &Stuck, now: Instant) -> Probed {
        let fresh = empty_report(&self.options);
        let (mut report, mut ending) = timed_out(&stuck.progress, stuck.started.elapsed());
        report.started_at = fresh.started_at;
        report.settings = fresh.settings;
        ending.still_wedged = true;
        finish(report, now, Ending::TimedOut(ending))
    }
}

/// The report as it stands at a deadline `limit` after the start, each
/// stage still running marked timed out, and what hung.
pub(crate) fn timed_out(progress: &Progress, limit: Duration) -> (Report, TimedOut) {
    let (report, hung) = progress.snapshot_timed_out(limit);
    // Whether a driver call returned after the oldest stuck one began.
    let stuck_since = hung
        .iter()
        .filter(|h| h.stuck)
        .filter_map(|h: &Hung| h.call_for)
        .min();
    let answered_since = matches!(
        (crate::cuda::error::any_return(), stuck_since),
        (Some(ago), Some(since)) if ago < since
    );
    let ending = TimedOut {
        limit,
        hung,
        answered_since,
        stopped: false,
        still_wedged: false,
    };
    (report, ending)
}
