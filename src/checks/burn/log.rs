//! The burn as it goes: every interval and error recorded, bounded (at
//! most `MAX_ERRORS_PER_KIND` errors listed a kind, `MAX_INTERVALS`
//! intervals kept), and summed up into the report's `Burn` at the end.
use std::time::Duration;

use crate::report::{Burn, BurnEnd, BurnError, BurnErrorCount, BurnErrorKind, BurnInterval};
use crate::telemetry::Sample;

use super::interval::Measured;

/// The most errors of one kind a burn lists (`Burn::errors_not_listed`
/// counts the rest), so that a GPU failing every comparison for hours does
/// not grow the report without bound, while the first error of every kind
/// is always there to judge by.
pub(super) const MAX_ERRORS_PER_KIND: usize = 25;

/// The most intervals a burn keeps: an hour at the default one a second.
/// Past that, neighbours are merged in pairs (their products and GPU time
/// summed, NVML's reading the later one's), so a day-long burn's report
/// stays small; the worst interval is kept as measured.
const MAX_INTERVALS: usize = 3600;

/// The burn as it goes.
#[derive(Clone)]
pub(super) struct Log {
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
    pub(super) products: u64,
    /// Intervals measured so far, merged or not: the number of the next.
    pub(super) measured: u64,
    gpu_ms: f64,
    pub(super) verifications: u64,
    pub(super) compared_on_gpu: bool,
    /// The previous NVML reading, for the ECC counters' growth.
    previous: Option<Sample>,
    first: Option<Sample>,
    temperature_max: Option<u32>,
    power_max: Option<f64>,
    clock_min: Option<u32>,
    clock_max: Option<u32>,
}

impl Log {
    pub(super) fn new(before: Option<Sample>) -> Log {
        Log {
            intervals: Vec::new(),
            worst: None,
            gflops: Vec::new(),
            errors: Vec::new(),
            errors_not_listed: 0,
            error_counts: Vec::new(),
            products: 0,
            measured: 0,
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

    /// Records an error seen at `at` in interval `interval` (`None`: after
    /// the last).
    pub(super) fn error(
        &mut self,
        at: Duration,
        interval: Option<u64>,
        kind: BurnErrorKind,
        detail: String,
    ) {
        match self.error_counts.iter_mut().find(|c| c.kind == kind) {
            Some(c) => c.count += 1,
            None => self.error_counts.push(BurnErrorCount { kind, count: 1 }),
        }
        if self.errors.iter().filter(|e| e.kind == kind).count() < MAX_ERRORS_PER_KIND {
            self.errors.push(BurnError {
                at_ms: ms(at),
                interval,
                kind,
                detail,
            });
        } else {
            self.errors_not_listed += 1;
        }
    }

    pub(super) fn interval(
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
        self.ecc_growth(at, Some(self.measured), &s);
        self.measured += 1;
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
    fn ecc_growth(&mut self, at: Duration, interval: Option<u64>, now: &Sample) {
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
                interval,
                BurnErrorKind::EccUncorrected,
                format!("{d} new uncorrectable ECC error(s) (NVML, volatile)"),
            );
        }
        if let Some(d) = grew(prev.ecc_corrected_volatile, now.ecc_corrected_volatile) {
            self.error(
                at,
                interval,
                BurnErrorKind::EccCorrected,
                format!("{d} new correctable ECC error(s) (NVML, volatile)"),
            );
        }
    }

    pub(super) fn finish(
        mut self,
        kernel: String,
        (m, n, k): (u32, u32, u32),
        took: Duration,
        ended: BurnEnd,
        after: Option<&Sample>,
    ) -> Burn {
        if let Some(a) = after {
            self.ecc_growth(took, None, a);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
