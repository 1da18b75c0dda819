//! The CPU reference GEMM: the product the GPU's result is checked against,
//! and the baseline its speed is compared with.
//!
//! A GPU-vs-naive-loop speedup means nothing (it flatters the GPU by two orders of magnitude: docs/benchmarks.md), so this is
//! a tuned kernel (matrixmultiply's packed, vectorised sgemm) on every CPU the
//! process may use. matrixmultiply's own threading stops at 4 threads, so the
//! rows of C are split across `threads` scoped threads here instead, each
//! running the single-threaded kernel on its block (B is shared read-only).
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

/// Name and version of the GEMM, for reports.
pub const LIBRARY: &str = "matrixmultiply 0.3 sgemm, rows split across threads";

/// CPUs this process may run on: affinity mask and cgroup quota applied.
#[must_use]
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// C (m x n) = A (m x k) · B (k x n), row-major, on `threads` threads.
pub fn sgemm(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32], threads: usize) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matrix shorter than its shape"
    );
    if m == 0 || n == 0 {
        return;
    }
    let rows_per = m.div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        for (block, c_block) in c[..m * n].chunks_mut(rows_per * n).enumerate() {
            let rows = c_block.len() / n;
            let a_block = &a[block * rows_per * k..(block * rows_per + rows) * k];
            scope.spawn(move || {
                // SAFETY: the slices cover rows x k, k x n and rows x n
                // elements with the strides given; C's blocks are disjoint.
                unsafe {
                    matrixmultiply::sgemm(
                        rows,
                        k,
                        n,
                        1.0,
                        a_block.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c_block.as_mut_ptr(),
                        n as isize,
                        1,
                    );
                }
            });
        }
    });
}

/// The textbook triple loop, for the benchmark that shows the tuned GEMM is
/// a fair baseline. Not used by the probe.
pub fn naive_sgemm(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                acc += a[i * k + p] * b[p * n + j];
            }
            c[i * n + j] = acc;
        }
    }
}

/// The CPU product and how fast it was made.
pub struct Measured {
    pub product: Vec<f32>,
    pub threads: usize,
    pub iterations: u32,
    pub mean: Duration,
}

/// How many timed repetitions a measurement makes.
#[derive(Debug, Clone, Copy)]
pub enum Repeat {
    /// Exactly this many.
    Times(u32),
    /// Until at least this much time has been measured (at least once).
    AtLeast(Duration),
}

/// The least time the CPU baseline is measured for: the default
/// `--min-time` (cli::DEFAULT_MIN_TIME), whatever the GPU's measurement was
/// told. A few short repetitions (`--iterations 3`) time the CPU before its
/// threads, caches and clocks are up to speed (11 GFLOP/s where the default
/// measured 58 on the same machine), which would inflate `speedup_vs_cpu`.
pub const MIN_TIME: Duration = crate::cli::DEFAULT_MIN_TIME;

/// How the CPU baseline is repeated when the GPU is measured with `gpu`:
/// at least `MIN_TIME`, and at least as long or as often as the GPU.
#[must_use]
pub fn baseline_repeat(gpu: Repeat) -> Repeat {
    match gpu {
        Repeat::Times(_) => Repeat::AtLeast(MIN_TIME),
        Repeat::AtLeast(d) => Repeat::AtLeast(d.max(MIN_TIME)),
    }
}

/// Computes the product once (also the warm-up), then times repetitions
/// as `baseline_repeat(repeat)` says.
#[must_use]
pub fn measure(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    threads: usize,
    repeat: Repeat,
) -> Measured {
    let repeat = baseline_repeat(repeat);
    let mut product = vec![0f32; m * n];
    sgemm(m, n, k, a, b, &mut product, threads);
    let mut scratch = vec![0f32; m * n];
    let start = Instant::now();
    let mut iterations = 0u32;
    loop {
        sgemm(m, n, k, a, b, &mut scratch, threads);
        iterations += 1;
        let done = match repeat {
            Repeat::Times(t) => iterations >= t.max(1),
            Repeat::AtLeast(d) => start.elapsed() >= d,
        };
        if done {
            break;
        }
    }
    Measured {
        product,
        threads,
        iterations,
        mean: start.elapsed() / iterations,
    }
}

/// GFLOP/s of an m x n x k GEMM that took `time`.
#[must_use]
pub fn gflops(m: usize, n: usize, k: usize, time: Duration) -> f64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        2.0 * m as f64 * n as f64 * k as f64 / secs / 1e9
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_is_measured_as_long_as_the_default_at_least() {
        for gpu in [
            Repeat::Times(1),
            Repeat::Times(3),
            Repeat::AtLeast(Duration::from_millis(1)),
        ] {
            assert!(
                matches!(baseline_repeat(gpu), Repeat::AtLeast(d) if d == MIN_TIME),
                "{gpu:?}"
            );
        }
        let long = Duration::from_secs(2);
        assert!(matches!(baseline_repeat(Repeat::AtLeast(long)), Repeat::AtLeast(d) if d == long));
    }

    #[test]
    fn threaded_matches_naive_at_odd_shapes() {
        for (m, n, k, threads) in [(1, 1, 1, 4), (7, 5, 3, 2), (33, 17, 65, 3), (64, 64, 64, 5)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32) - 5.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 3 % 13) as f32) - 6.0).collect();
            let mut want = vec![0.0; m * n];
            let mut got = vec![1.0; m * n];
            naive_sgemm(m, n, k, &a, &b, &mut want);
            sgemm(m, n, k, &a, &b, &mut got, threads);
            // Small integers: every order of summation is exact.
            assert_eq!(want, got, "{m}x{n}x{k} on {threads} threads");
        }
    }
}
