//! `burn`: a GPU's sustained run, the last stage of its pipeline.
//!
//! The probe has already made the product once and proved it right against
//! the CPU (`verify`). The burn then launches the same product back to back
//! for the duration, in intervals of about `--sample-every`: each interval
//! is timed with events (its GFLOP/s), and NVML is read while its launches
//! run, so that the clocks, temperature, power and throttle reasons are
//! those of a GPU at work. Every `--verify-every`, and at the end, the
//! product is copied back and compared bit for bit with the verified one:
//! the kernel sums in a fixed order, so a correct GPU gives the same bits
//! every time, and one flipped bit anywhere is a wrong result. This is the
//! node-acceptance job gpu-burn and DCGM's stress levels do, with an
//! absolute reference (the CPU's product) behind the comparison instead of
//! only the GPU's own earlier runs.
//!
//! The burn ends at the duration, at SIGINT/SIGTERM (`Plan::stop`), before
//! the run's deadline (keeping time for the last check and the report), or
//! at a driver error, and always with a report of what it saw.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::checks::progress::Failed;
use crate::cuda::{self, Context, Kernel};
use crate::report::{Burn, BurnEnd, BurnErrorKind, CheckStatus};
use crate::telemetry;

use super::gpu::Product;

mod check;
mod interval;
mod log;

pub use check::judge;
pub use interval::difference;

use interval::{compare, measure, Checker};
use log::Log;

/// How a burn runs (`gpuprobe burn`'s options).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub duration: Duration,
    /// One measured interval lasts about this long.
    pub sample: Duration,
    /// The product is compared with the verified one this often.
    pub verify: Duration,
    /// Whether to end early (SIGINT or SIGTERM arrived).
    pub stop: fn() -> bool,
}

/// Where the GPUs of one run wait for each other before their burns, so
/// that every GPU is under load at once, as a node's power supply and
/// cooling are in production, and the burns end together. Each GPU thread
/// either arrives (its burn is about to start) or leaves (a stage before the
/// burn failed, so it never will); the burns start when every GPU has done
/// one or the other, or when the longest wait has passed (a GPU stuck in a
/// driver call before its burn holds back no other).
pub struct StartLine {
    /// (arrived or left, expected).
    state: std::sync::Mutex<(usize, usize)>,
    ready: std::sync::Condvar,
}

/// The longest a GPU waits at the start line for the others.
const START_WAIT: Duration = Duration::from_secs(30);

impl StartLine {
    #[must_use]
    pub fn new(gpus: usize) -> StartLine {
        StartLine {
            state: std::sync::Mutex::new((0, gpus)),
            ready: std::sync::Condvar::new(),
        }
    }

    /// This GPU is ready to burn: waits for the others (at most
    /// `START_WAIT`, and never past `deadline`).
    pub fn arrive(&self, deadline: Option<Instant>) {
        let mut limit = Instant::now() + START_WAIT;
        if let Some(d) = deadline {
            limit = limit.min(d);
        }
        let mut state = self.count_in();
        while state.0 < state.1 {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            state = self
                .ready
                .wait_timeout(state, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// This GPU will not burn: the others need not wait for it.
    pub fn leave(&self) {
        drop(self.count_in());
    }

    /// Counts this GPU as arrived or left, tells the waiting ones, and
    /// returns the state, still locked.
    fn count_in(&self) -> std::sync::MutexGuard<'_, (usize, usize)> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0 += 1;
        self.ready.notify_all();
        state
    }
}

/// What the burn launches, all made by the stages before it.
pub(super) struct Workload<'w, 'a> {
    pub(super) ctx: &'w Context<'a>,
    pub(super) kernel: &'w Kernel<'a>,
    pub(super) product: &'w Product<'w, 'a>,
    /// Rows of C per launch (less than m under a kernel watchdog).
    pub(super) rows: u32,
    /// One product's time as the matmul measured it, ms.
    pub(super) product_ms: f64,
    /// The product the `verify` check proved right.
    pub(super) golden: &'w [f32],
    pub(super) nvml: Option<&'w nvml_wrapper::Device<'static>>,
    /// The name of the kernel, for the report.
    pub(super) kernel_name: String,
    /// The GPU's SMs, to size the comparison's grid.
    pub(super) sms: u32,
}

/// Runs the burn; returns what it saw and the check's status and detail.
/// After each interval it gives `publish` what it has measured so far
/// (`BurnEnd::Unfinished`), so that a burn whose next driver call hangs
/// still leaves its intervals in the report the watchdog's timeout ends.
/// `between` runs after each interval: the memory test's next pattern when
/// the plan interleaves it (`burn --memtest`), else nothing.
#[allow(
    clippy::too_many_lines,
    reason = "one loop of intervals, each launching, comparing, sampling and recording in order; split, its state (interval, counts, samples, the stop) would pass between functions by hand"
)]
pub(super) fn run(
    w: &Workload<'_, '_>,
    plan: &Plan,
    deadline: Option<Instant>,
    publish: &dyn Fn(Burn),
    between: &mut dyn FnMut(),
) -> (Burn, CheckStatus, String) {
    let (m, n, k) = w.product.shape;
    let flops = 2.0 * f64::from(m) * f64::from(n) * f64::from(k);
    // Every product compared on the GPU, when it can hold a second copy of
    // C; else only the copies back at --verify-every.
    let checker = Checker::new(w);
    let before = w.nvml.map(telemetry::sample);
    let started = Instant::now();
    let end = started + plan.duration;
    let mut log = Log::new(before.clone());
    log.compared_on_gpu = checker.is_ok();
    let mut per_product = w.product_ms;
    let mut last_verify = started;
    let mut ended = BurnEnd::Completed;
    let mut verified_last = false;
    loop {
        let now = Instant::now();
        if (plan.stop)() {
            ended = BurnEnd::Interrupted;
            break;
        }
        if now >= end {
            break;
        }
        // An interval of --sample-every, never past the end, and never
        // into the time kept before the deadline for the last check.
        let mut span = plan.sample.min(end - now);
        if log.products == 0 {
            // The first interval is sized from the probe's GPU time alone,
            // which leaves out the host's share of a product (its launches,
            // the comparison's): a quarter of the span, so a host slower
            // than the estimate cannot carry it far past the end. It is
            // left out of the best and the worst anyway (clocks ramp).
            span /= 4;
        }
        if let Some(d) = deadline {
            let left = d
                .saturating_duration_since(now)
                .saturating_sub(DEADLINE_RESERVE);
            if left < span.min(Duration::from_millis(1).max(ms_duration(per_product))) {
                ended = BurnEnd::Deadline;
                break;
            }
            span = span.min(left);
        }
        let count = products_for(span, per_product);
        let at = now - started;
        let index = Some(log.measured);
        let interval = match measure(w, checker.as_ref().ok(), count) {
            Ok(i) => i,
            Err(e) => {
                driver_error(&mut log, at, index, &e);
                ended = BurnEnd::Error;
                break;
            }
        };
        let after = Instant::now();
        // No time on the GPU's clock: the interval says nothing of its pace.
        let gflops = if interval.gpu_ms > 0.0 {
            f64::from(count) * flops / (interval.gpu_ms * 1e6)
        } else {
            0.0
        };
        // The pace of the next interval: what a product took on the GPU's
        // clock, or on the host's where that was longer (launch overhead
        // of small products, a GPU shared by time-slicing), so an interval
        // ends near its planned length on the wall clock, as the burn does.
        let wall_ms = (after - now).as_secs_f64() * 1e3;
        if interval.gpu_ms > 0.0 || wall_ms > 0.0 {
            per_product = interval.gpu_ms.max(wall_ms) / f64::from(count);
        }
        if interval.differed == Some(true) {
            log.error(
                at,
                index,
                BurnErrorKind::WrongResult,
                format!(
                    "at least one of the interval's {count} products differed from the verified \
                     product (compared on the GPU)"
                ),
            );
        }
        // Copied back and compared element by element when due, and at the
        // last interval before the end: the elements and bits that differ.
        let last = after + (after - now) >= end;
        let copied = if after - last_verify >= plan.verify || last {
            last_verify = after;
            let matched = copy_back(w, &mut log, at, index);
            if matched.is_none() {
                ended = BurnEnd::Error;
            }
            matched
        } else {
            None
        };
        verified_last = copied.is_some();
        let verified = match (interval.differed, copied) {
            (Some(gpu), Some(host)) => Some(!gpu && host),
            (Some(gpu), None) => Some(!gpu),
            (None, host) => host,
        };
        let compared = u64::from(if interval.differed.is_some() {
            count
        } else {
            0
        }) + u64::from(copied.is_some());
        log.interval(at, count, interval, gflops, verified, compared);
        if ended == BurnEnd::Error {
            break;
        }
        publish(log.clone().finish(
            w.kernel_name.clone(),
            w.product.shape,
            started.elapsed(),
            BurnEnd::Unfinished,
            None,
        ));
        between();
    }
    // Whatever ended the burn, the last products are copied back and
    // compared too (unless the GPU itself failed, or they just were).
    if ended != BurnEnd::Error && !verified_last && log.products > 0 {
        match copy_back(w, &mut log, started.elapsed(), None) {
            Some(_) => log.verifications += 1,
            None => ended = BurnEnd::Error,
        }
    }
    let after_run = w.nvml.map(telemetry::sample);
    let burn = log.finish(
        w.kernel_name.clone(),
        w.product.shape,
        started.elapsed(),
        ended,
        after_run.as_ref(),
    );
    let (status, mut detail) = judge(&burn, plan.duration);
    if let Err(why) = checker {
        let _ = write!(
            detail,
            "; products compared only when copied back (every --verify-every): {why}"
        );
    }
    (burn, status, detail)
}

/// Time kept before the deadline for the last comparison and the report.
const DEADLINE_RESERVE: Duration = Duration::from_secs(1);

fn ms_duration(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or(Duration::ZERO)
}

/// Copies the product back and compares it with the verified one, logging
/// what differs at `at` (in interval `interval`, `None` after the last):
/// whether it matched, `None` after a driver error (logged too).
fn copy_back(
    w: &Workload<'_, '_>,
    log: &mut Log,
    at: Duration,
    interval: Option<u64>,
) -> Option<bool> {
    match compare(w) {
        Ok(None) => Some(true),
        Ok(Some(wrong)) => {
            log.error(at, interval, BurnErrorKind::WrongResult, wrong);
            Some(false)
        }
        Err(e) => {
            driver_error(log, at, interval, &e);
            None
        }
    }
}

/// Logs the driver error that ends this GPU's burn. An uncorrectable ECC
/// error in the context's work (CUDA_ERROR_ECC_UNCORRECTABLE, 214) is a
/// kind of its own: sticky for this context, so the burn cannot go on
/// here, while with error containment the GPU serves other contexts (NVIDIA,
/// GPU Memory Error Management); the diagnoses judge it from what NVML
/// reads after it.
fn driver_error(log: &mut Log, at: Duration, interval: Option<u64>, e: &Failed) {
    let code = e.error.as_ref().map(|e| e.code);
    let (kind, detail) = if code == Some(cuda::error::CUDA_ERROR_ECC_UNCORRECTABLE) {
        (
            BurnErrorKind::EccUncorrectable,
            format!(
                "{}; sticky for this context: the burn on this GPU ends",
                e.detail
            ),
        )
    } else {
        (BurnErrorKind::Driver, e.detail.clone())
    };
    log.error(at, interval, kind, detail);
}

/// Products that fill `interval` at `per_product_ms` each: at least one.
fn products_for(interval: Duration, per_product_ms: f64) -> u32 {
    if per_product_ms <= 0.0 || !per_product_ms.is_finite() {
        return 1;
    }
    let n = (interval.as_secs_f64() * 1e3 / per_product_ms).floor();
    (n as u32).clamp(1, 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_line_waits_for_every_gpu_and_no_longer() {
        let line = std::sync::Arc::new(StartLine::new(3));
        let started = Instant::now();
        let waiter = {
            let line = std::sync::Arc::clone(&line);
            std::thread::spawn(move || {
                line.arrive(None);
                Instant::now()
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        line.leave();
        // Two of three: the first still waits.
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        line.arrive(None);
        let released = waiter.join().unwrap();
        assert!(released - started >= Duration::from_millis(100));
        // A GPU that never comes holds the others no longer than the
        // deadline.
        let alone = StartLine::new(2);
        let at = Instant::now();
        alone.arrive(Some(at + Duration::from_millis(30)));
        assert!(at.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn intervals_hold_at_least_one_product() {
        assert_eq!(products_for(Duration::from_secs(1), 10.0), 100);
        assert_eq!(products_for(Duration::from_millis(1), 10.0), 1);
        assert_eq!(products_for(Duration::from_secs(1), 0.0), 1);
        assert_eq!(products_for(Duration::from_secs(1), f64::NAN), 1);
    }
}
