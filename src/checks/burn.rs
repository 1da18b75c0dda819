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

use crate::cuda::{self, kernels, Buffer, Context, Event, Kernel, Module};
use crate::report::{
    Burn, BurnEnd, BurnError, BurnErrorCount, BurnErrorKind, BurnInterval, CheckStatus,
};
use crate::telemetry::{self, Sample};

use super::gpu::Product;
use super::progress::Failed;

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

/// The worst interval below this fraction of the best is a slowdown worth a
/// warning. Both leave out the first interval, whose clocks may still be
/// ramping up. A GPU under steady load stays within a few percent of its
/// best (its clocks move in small steps); a thermal slowdown, a clock
/// pulled down mid-run, or a GPU that settles far below its early pace at
/// its power limit costs more, and GP032 then says which from NVML's
/// throttle reasons (power capping is how a GPU at its limit runs; thermal
/// slowdown is a cooling fault). Against the median instead, a GPU that
/// spends most of the burn throttled would look steady.
pub const SLOWDOWN: f64 = 0.85;

/// The most errors of one kind a burn lists (`Burn::errors_not_listed`
/// counts the rest), so that a GPU failing every comparison for hours does
/// not grow the report without bound, while the first error of every kind
/// is always there to judge by.
const MAX_ERRORS_PER_KIND: usize = 25;

/// The most intervals a burn keeps: an hour at the default one a second.
/// Past that, neighbours are merged in pairs (their products and GPU time
/// summed, NVML's reading the later one's), so a day-long burn's report
/// stays small; the worst interval is kept as measured.
const MAX_INTERVALS: usize = 3600;

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
#[allow(
    clippy::too_many_lines,
    reason = "one loop of intervals, each launching, comparing, sampling and recording in order; split, its state (interval, counts, samples, the stop) would pass between functions by hand"
)]
pub(super) fn run(
    w: &Workload<'_, '_>,
    plan: &Plan,
    deadline: Option<Instant>,
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
        let interval = match measure(w, checker.as_ref().ok(), count) {
            Ok(i) => i,
            Err(e) => {
                log.error(at, BurnErrorKind::Driver, e.detail);
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
            let matched = copy_back(w, &mut log, at);
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
    }
    // Whatever ended the burn, the last products are copied back and
    // compared too (unless the GPU itself failed, or they just were).
    if ended != BurnEnd::Error && !verified_last && log.products > 0 {
        match copy_back(w, &mut log, started.elapsed()) {
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

/// The on-GPU comparison: the verified product on the GPU, a flag word, and
/// `gpuprobe_compare` (kernels/compare.cu), launched after every product.
struct Checker<'w> {
    golden: Buffer<'w>,
    flag: Buffer<'w>,
    kernel: Kernel<'w>,
    launch: ([u32; 3], [u32; 3]),
}

impl<'w> Checker<'w> {
    /// Puts the verified product on the GPU, or says why it could not (no
    /// room for a second copy of C).
    fn new(w: &Workload<'w, '_>) -> Result<Checker<'w>, String> {
        let made = || -> Result<Checker<'w>, Failed> {
            let golden = Buffer::alloc(w.ctx, w.golden.len())?;
            golden.upload(w.golden)?;
            let flag = Buffer::alloc(w.ctx, 1)?;
            flag.upload(&[0.0])?;
            let kernel = Module::load(w.ctx, kernels::COMPARE_PTX)?.kernel(kernels::COMPARE)?;
            Ok(Checker {
                golden,
                flag,
                kernel,
                launch: kernels::compare_launch(w.golden.len() as u64, w.sms),
            })
        };
        made().map_err(|e| e.detail)
    }

    /// Compares C with the verified product; sets the flag if they differ.
    fn launch(&self, w: &Workload<'_, '_>) -> Result<(), Failed> {
        // SAFETY: the kernel is gpuprobe_compare, loaded in `w.ctx`; C and
        // `golden` hold `golden.len()` floats each (C is the product's m x n
        // result, `golden` its copy), `flag` one word.
        unsafe {
            cuda::launch_compare(
                w.ctx,
                &self.kernel,
                self.launch,
                w.golden.len() as u64,
                [w.product.c.ptr, self.golden.ptr, self.flag.ptr],
            )?;
        }
        Ok(())
    }

    /// Whether any comparison since the last call found a difference; clears
    /// the flag.
    fn take(&self) -> Result<bool, Failed> {
        let mut word = [0f32];
        self.flag.download(&mut word)?;
        let differed = word[0].to_bits() != 0;
        if differed {
            self.flag.upload(&[0.0])?;
        }
        Ok(differed)
    }
}

/// One interval's measurement.
struct Measured {
    gpu_ms: f64,
    sample: Option<Sample>,
    /// Whether a product differed from the verified one, when each was
    /// compared on the GPU.
    differed: Option<bool>,
}

/// Launches `count` products between two events, each followed by its
/// comparison on the GPU when there is a `checker`, and reads NVML while
/// they run. The interval's time includes the comparisons: each reads C
/// and its copy once, under 1% of a product's time from 1024 up on a GPU
/// whose memory bandwidth per FLOP is an H100's.
fn measure(
    w: &Workload<'_, '_>,
    checker: Option<&Checker<'_>>,
    count: u32,
) -> Result<Measured, Failed> {
    let (start, stop) = (Event::new(w.ctx)?, Event::new(w.ctx)?);
    start.record()?;
    for _ in 0..count {
        w.product.launch(w.ctx, w.kernel, w.rows)?;
        if let Some(c) = checker {
            c.launch(w)?;
        }
    }
    stop.record()?;
    // Launches return before their kernels finish: the GPU is at work now.
    let sample = w.nvml.map(telemetry::sample);
    stop.synchronize()?;
    Ok(Measured {
        gpu_ms: start.elapsed_ms(&stop)?,
        sample,
        differed: checker.map(Checker::take).transpose()?,
    })
}

/// Copies the product back and compares it with the verified one, logging
/// what differs at `at`: whether it matched, `None` after a driver error
/// (logged too).
fn copy_back(w: &Workload<'_, '_>, log: &mut Log, at: Duration) -> Option<bool> {
    match compare(w) {
        Ok(None) => Some(true),
        Ok(Some(wrong)) => {
            log.error(at, BurnErrorKind::WrongResult, wrong);
            Some(false)
        }
        Err(e) => {
            log.error(at, BurnErrorKind::Driver, e.detail);
            None
        }
    }
}

/// Copies the product back and compares it bit for bit with the verified
/// one: `Ok(None)` when they match, else what differs.
fn compare(w: &Workload<'_, '_>) -> Result<Option<String>, Failed> {
    let mut out = vec![0f32; w.golden.len()];
    w.product.c.download(&mut out)?;
    Ok(difference(w.golden, &out, w.product.shape.1))
}

/// Where `got` differs from `golden` (n columns), in words; `None` when
/// every element has the same bits (or both are zeros: +0 and −0 are the
/// same number).
#[must_use]
pub fn difference(golden: &[f32], got: &[f32], n: u32) -> Option<String> {
    let n = n.max(1) as usize;
    let mut wrong = golden
        .iter()
        .zip(got)
        .enumerate()
        .filter(|(_, (g, x))| g.to_bits() != x.to_bits() && !(**g == 0.0 && **x == 0.0));
    let (first, (g, x)) = wrong.next()?;
    let count = 1 + wrong.count();
    Some(format!(
        "{count} of {} elements differ from the verified product; the first at row {}, \
         column {}: {x} instead of {g} ({})",
        golden.len(),
        first / n,
        first % n,
        crate::verify::describe_bits(g.to_bits() ^ x.to_bits())
    ))
}

/// Products that fill `interval` at `per_product_ms` each: at least one.
fn products_for(interval: Duration, per_product_ms: f64) -> u32 {
    if per_product_ms <= 0.0 || !per_product_ms.is_finite() {
        return 1;
    }
    let n = (interval.as_secs_f64() * 1e3 / per_product_ms).floor();
    (n as u32).clamp(1, 1_000_000)
}

/// The burn as it goes.
struct Log {
    intervals: Vec<BurnInterval>,
    /// The slowest interval after the first (whose clocks may still be
    /// ramping up), as measured, before any merge.
    worst: Option<BurnInterval>,
    /// Every interval's GFLOP/s as measured, for the best and the median.
    gflops: Vec<f64>,
    errors: Vec<BurnError>,
    errors_not_listed: u64,
    /// Every error seen, by kind, listed or not.
    error_counts: Vec<BurnErrorCount>,
    products: u64,
    gpu_ms: f64,
    verifications: u64,
    compared_on_gpu: bool,
    /// The previous NVML reading, for the ECC counters' growth.
    previous: Option<Sample>,
    first: Option<Sample>,
    temperature_max: Option<u32>,
    power_max: Option<f64>,
    clock_min: Option<u32>,
    clock_max: Option<u32>,
}

impl Log {
    fn new(before: Option<Sample>) -> Log {
        Log {
            intervals: Vec::new(),
            worst: None,
            gflops: Vec::new(),
            errors: Vec::new(),
            errors_not_listed: 0,
            error_counts: Vec::new(),
            products: 0,
            gpu_ms: 0.0,
            verifications: 0,
            compared_on_gpu: false,
            previous: before.clone(),
            first: before,
            temperature_max: None,
            power_max: None,
            clock_min: None,
            clock_max: None,
        }
    }

    fn error(&mut self, at: Duration, kind: BurnErrorKind, detail: String) {
        match self.error_counts.iter_mut().find(|c| c.kind == kind) {
            Some(c) => c.count += 1,
            None => self.error_counts.push(BurnErrorCount { kind, count: 1 }),
        }
        if self.errors.iter().filter(|e| e.kind == kind).count() < MAX_ERRORS_PER_KIND {
            self.errors.push(BurnError {
                at_ms: ms(at),
                kind,
                detail,
            });
        } else {
            self.errors_not_listed += 1;
        }
    }

    fn interval(
        &mut self,
        at: Duration,
        products: u32,
        m: Measured,
        gflops: f64,
        verified: Option<bool>,
        compared: u64,
    ) {
        self.products += u64::from(products);
        self.gpu_ms += m.gpu_ms;
        self.verifications += compared;
        let s = m.sample.unwrap_or_default();
        self.ecc_growth(at, &s);
        self.temperature_max = self.temperature_max.max(s.temperature_celsius);
        self.power_max = match (self.power_max, s.power_draw_watts) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.clock_min = match (self.clock_min, s.sm_clock_mhz) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.clock_max = self.clock_max.or(s.sm_clock_max_mhz);
        let interval = BurnInterval {
            at_ms: ms(at),
            gpu_ms: m.gpu_ms,
            products,
            gflops,
            sm_clock_mhz: s.sm_clock_mhz,
            temperature_celsius: s.temperature_celsius,
            power_draw_watts: s.power_draw_watts,
            throttle_reasons: s.throttle_reasons.clone(),
            verified,
        };
        // The first interval stands only until a second one is measured.
        self.gflops.push(gflops);
        if self.gflops.len() <= 2 || self.worst.as_ref().is_none_or(|w| gflops < w.gflops) {
            self.worst = Some(interval.clone());
        }
        self.intervals.push(interval);
        if self.intervals.len() > MAX_INTERVALS {
            self.intervals = merge_pairs(&self.intervals);
        }
        self.previous = Some(s);
    }

    /// An ECC counter that grew since the previous reading is an error at
    /// this interval.
    fn ecc_growth(&mut self, at: Duration, now: &Sample) {
        let Some(prev) = self.previous.clone() else {
            return;
        };
        let grew = |before: Option<u64>, after: Option<u64>| match (before, after) {
            (Some(b), Some(a)) if a > b => Some(a - b),
            _ => None,
        };
        if let Some(d) = grew(prev.ecc_uncorrected_volatile, now.ecc_uncorrected_volatile) {
            self.error(
                at,
                BurnErrorKind::EccUncorrected,
                format!("{d} new uncorrectable ECC error(s) (NVML, volatile)"),
            );
        }
        if let Some(d) = grew(prev.ecc_corrected_volatile, now.ecc_corrected_volatile) {
            self.error(
                at,
                BurnErrorKind::EccCorrected,
                format!("{d} new correctable ECC error(s) (NVML, volatile)"),
            );
        }
    }

    fn finish(
        mut self,
        kernel: String,
        (m, n, k): (u32, u32, u32),
        took: Duration,
        ended: BurnEnd,
        after: Option<&Sample>,
    ) -> Burn {
        if let Some(a) = after {
            self.ecc_growth(took, a);
        }
        let flops = 2.0 * f64::from(m) * f64::from(n) * f64::from(k);
        // The best after the first interval (the first itself when it is
        // the only one), as the worst.
        let after_first = self.gflops.get(1..).filter(|rest| !rest.is_empty());
        let best = after_first
            .unwrap_or(&self.gflops)
            .iter()
            .copied()
            .fold(0.0, f64::max);
        let median = median(&self.gflops);
        let worst = self.worst.take();
        let delta = |pick: fn(&Sample) -> Option<u64>| {
            let (first, last) = (self.first.as_ref().and_then(pick), after.and_then(pick));
            Some(last?.saturating_sub(first?))
        };
        Burn {
            kernel,
            m,
            n,
            k,
            duration_ms: ms(took),
            ended,
            products: self.products,
            gflops_mean: if self.gpu_ms > 0.0 {
                self.products as f64 * flops / (self.gpu_ms * 1e6)
            } else {
                0.0
            },
            gflops_best: best,
            gflops_median: median,
            worst_over_best: worst
                .as_ref()
                .filter(|_| best > 0.0)
                .map(|w| w.gflops / best),
            worst_interval: worst,
            intervals: self.intervals,
            verifications: self.verifications,
            compared_on_gpu: self.compared_on_gpu,
            errors: self.errors,
            errors_not_listed: self.errors_not_listed,
            error_counts: self.error_counts,
            ecc_corrected_delta: delta(|s| s.ecc_corrected_volatile),
            ecc_uncorrected_delta: delta(|s| s.ecc_uncorrected_volatile),
            temperature_max_celsius: self.temperature_max,
            power_max_watts: self.power_max,
            sm_clock_min_mhz: self.clock_min,
            sm_clock_max_mhz: self.clock_max,
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count),
/// `None` for none.
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        len if len % 2 == 1 => Some(sorted[mid]),
        _ => Some(f64::midpoint(sorted[mid - 1], sorted[mid])),
    }
}

/// Neighbouring intervals merged in pairs: products and GPU time summed,
/// throughput recomputed, NVML's reading the later one's, `verified` false
/// if either comparison failed.
fn merge_pairs(intervals: &[BurnInterval]) -> Vec<BurnInterval> {
    intervals
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => {
                let gpu_ms = a.gpu_ms + b.gpu_ms;
                let gflops = if gpu_ms > 0.0 {
                    (a.gflops * a.gpu_ms + b.gflops * b.gpu_ms) / gpu_ms
                } else {
                    0.0
                };
                let verified = match (a.verified, b.verified) {
                    (Some(x), Some(y)) => Some(x && y),
                    (x, y) => x.or(y),
                };
                BurnInterval {
                    at_ms: a.at_ms,
                    gpu_ms,
                    products: a.products.saturating_add(b.products),
                    gflops,
                    verified,
                    ..b.clone()
                }
            }
            _ => pair[0].clone(),
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The burn check: failed by a wrong result, a driver error or a new
/// uncorrectable ECC error; a warning for a slowdown, correctable ECC
/// errors, or a burn cut short; passed otherwise.
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
    // Every error of the kind, not only the listed (at most 25 a kind).
    let count = |kind: BurnErrorKind| {
        b.error_counts
            .iter()
            .find(|c| c.kind == kind)
            .map_or(0, |c| c.count)
    };
    let failing = [
        (BurnErrorKind::WrongResult, "wrong result(s)"),
        (BurnErrorKind::Driver, "driver error(s)"),
        (
            BurnErrorKind::EccUncorrected,
            "uncorrectable ECC error report(s)",
        ),
    ];
    let failures: Vec<String> = failing
        .iter()
        .filter(|(kind, _)| count(*kind) > 0)
        .map(|(kind, what)| format!("{} {what}", count(*kind)))
        .collect();
    if let Some(first) = b
        .errors
        .iter()
        .find(|e| e.kind != BurnErrorKind::EccCorrected)
    {
        if !failures.is_empty() {
            return (
                CheckStatus::Fail,
                format!(
                    "{}; the first at {:.1} s: {} ({detail})",
                    failures.join(", "),
                    first.at_ms / 1e3,
                    first.detail
                ),
            );
        }
    }
    let mut warnings = Vec::new();
    if let Some(r) = b.worst_over_best.filter(|r| *r < SLOWDOWN) {
        warnings.push(format!(
            "throughput fell to {} of its best",
            crate::units::percent(r)
        ));
    }
    let corrected = count(BurnErrorKind::EccCorrected);
    if corrected > 0 {
        warnings.push(format!("{corrected} correctable ECC error report(s)"));
    }
    match b.ended {
        BurnEnd::Interrupted => warnings.push("interrupted (SIGINT/SIGTERM)".into()),
        BurnEnd::Deadline => warnings.push("cut short by the run's --timeout".into()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flipped_bit_is_a_difference() {
        let golden = [1.0f32, 2.0, 0.0, 4.0];
        assert_eq!(difference(&golden, &golden, 2), None);
        // −0 for +0 is the same number.
        assert_eq!(difference(&golden, &[1.0, 2.0, -0.0, 4.0], 2), None);
        let mut got = golden;
        got[3] = f32::from_bits(got[3].to_bits() ^ 1);
        let d = difference(&golden, &got, 2).expect("a difference");
        assert!(d.starts_with("1 of 4 elements"), "{d}");
        assert!(d.contains("row 1, column 1"), "{d}");
        assert!(d.contains("mantissa bit 0"), "{d}");
    }

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
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn merged_intervals_keep_products_time_and_failures() {
        let one = |at: f64, gflops: f64, verified: Option<bool>| BurnInterval {
            at_ms: at,
            gpu_ms: 100.0,
            products: 2,
            gflops,
            sm_clock_mhz: Some(at as u32),
            temperature_celsius: None,
            power_draw_watts: None,
            throttle_reasons: None,
            verified,
        };
        let merged = merge_pairs(&[
            one(0.0, 10.0, Some(true)),
            one(1.0, 20.0, Some(false)),
            one(2.0, 30.0, None),
        ]);
        assert_eq!(merged.len(), 2);
        let m = &merged[0];
        assert_eq!(
            (m.at_ms as u32, m.products, m.gpu_ms as u32, m.gflops as u32),
            (0, 4, 200, 15)
        );
        assert_eq!(merged[0].verified, Some(false));
        assert_eq!(merged[0].sm_clock_mhz, Some(1));
        assert_eq!(merged[1], one(2.0, 30.0, None));
    }

    #[test]
    fn intervals_hold_at_least_one_product() {
        assert_eq!(products_for(Duration::from_secs(1), 10.0), 100);
        assert_eq!(products_for(Duration::from_millis(1), 10.0), 1);
        assert_eq!(products_for(Duration::from_secs(1), 0.0), 1);
        assert_eq!(products_for(Duration::from_secs(1), f64::NAN), 1);
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
            log.error(Duration::from_millis(1500), *kind, "seen".into());
        }
        log.finish("k".into(), (1, 1, 1), Duration::from_secs(3), ended, None)
    }

    #[test]
    fn the_check_fails_on_errors_and_warns_on_slowdowns() {
        let secs = Duration::from_secs(3);
        let steady = burn(&[100.0, 99.0, 100.0], &[], BurnEnd::Completed);
        assert_eq!(judge(&steady, secs).0, CheckStatus::Pass);
        let slow = burn(&[100.0, 100.0, 50.0, 100.0], &[], BurnEnd::Completed);
        let (status, detail) = judge(&slow, secs);
        assert_eq!(status, CheckStatus::Warn);
        assert!(detail.contains("fell to 50% of its best"), "{detail}");
        assert_eq!(
            slow.worst_interval.as_ref().map(|w| w.at_ms as u32),
            Some(2000)
        );
        // A slow first interval is a GPU ramping its clocks, not slowing.
        let ramping = burn(&[50.0, 100.0, 100.0, 99.0], &[], BurnEnd::Completed);
        assert_eq!(judge(&ramping, secs).0, CheckStatus::Pass);
        // Boost steps of a few percent are steady.
        let steps = burn(&[100.0, 100.0, 96.0, 99.0, 95.0], &[], BurnEnd::Completed);
        assert_eq!(judge(&steps, secs).0, CheckStatus::Pass);
        // Throttled for most of the run is still a slowdown.
        let throttled = burn(&[100.0, 100.0, 60.0, 60.0, 60.0], &[], BurnEnd::Completed);
        assert_eq!(judge(&throttled, secs).0, CheckStatus::Warn);
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
