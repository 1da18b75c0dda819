//! The CPU reference GEMM: the product the GPU's result is checked against,
//! and the baseline its speed is compared with.
//!
//! The baseline is timed on its own, after every GPU's stages have
//! returned (src/probe/mod.rs): timed beside them, it lost a core to each
//! GPU thread waiting on its events. It runs on as many threads as the
//! process is granted CPUs: the affinity mask (sched_getaffinity) and the
//! cgroup's CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` over
//! `cpu.cfs_period_us`), whichever is lower; the report says which.
//!
//! A GPU-vs-naive-loop speedup means nothing (it flatters the GPU by two orders of magnitude: docs/benchmarks.md), so this is
//! a tuned kernel (matrixmultiply's packed, vectorised sgemm) on every CPU the
//! process may use. matrixmultiply's own threading stops at 4 threads, so the
//! rows of C are split across `threads` scoped threads here instead, each
//! running the single-threaded kernel on its block (B is shared read-only).
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::report::CpuLimit;

/// Name and version of the GEMM, for reports.
pub const LIBRARY: &str = "matrixmultiply 0.3 sgemm, rows split across threads";

/// CPUs this process may run on: affinity mask and cgroup quota applied.
#[must_use]
pub fn available_cpus() -> usize {
    available(&crate::environment::root()).count
}

/// The CPUs this process is granted, and what sets that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cpus {
    pub count: usize,
    pub limited_by: CpuLimit,
}

/// The CPUs granted under `root`: the affinity mask and the cgroup quota
/// read there (`root` is / outside tests), the lower of the two; what the
/// standard library says where neither can be read.
#[must_use]
pub fn available(root: &Path) -> Cpus {
    let quota = cgroup_quota(root);
    match (affinity(), quota) {
        (Some(a), Some((q, source))) if q < a => Cpus {
            count: q,
            limited_by: source,
        },
        (Some(a), _) => Cpus {
            count: a,
            limited_by: CpuLimit::Affinity,
        },
        (None, Some((q, source))) => Cpus {
            count: q,
            limited_by: source,
        },
        (None, None) => Cpus {
            count: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            limited_by: CpuLimit::Platform,
        },
    }
}

/// CPUs in this thread's affinity mask (sched_getaffinity(2)); `None` off
/// Linux or past the 1024 CPUs a `cpu_set_t` holds.
#[cfg(target_os = "linux")]
fn affinity() -> Option<usize> {
    // SAFETY: cpu_set_t is plain bits, valid all-zero; sched_getaffinity
    // writes at most `size_of::<cpu_set_t>()` bytes into `set`, which lives
    // across the call, and pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) != 0 {
            return None;
        }
        usize::try_from(libc::CPU_COUNT(&set))
            .ok()
            .filter(|n| *n > 0)
    }
}

#[cfg(not(target_os = "linux"))]
fn affinity() -> Option<usize> {
    None
}

/// Whole CPUs of the cgroup's quota: v2 `cpu.max` ("QUOTA PERIOD" or "max
/// PERIOD"), else v1 `cpu.cfs_quota_us` (-1: none) over
/// `cpu.cfs_period_us` (Linux, Documentation/admin-guide/cgroup-v2.rst
/// "cpu.max" and scheduler/sched-bwc.rst). Rounded down, at least 1: a
/// thread more than the quota is throttled within each period, which
/// would be timed too.
fn cgroup_quota(root: &Path) -> Option<(usize, CpuLimit)> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let cpus = |quota: u64, period: u64| {
        (period > 0).then(|| usize::try_from(quota / period).unwrap_or(usize::MAX).max(1))
    };
    if let Some(text) = read("sys/fs/cgroup/cpu.max") {
        let mut parts = text.split_whitespace();
        let (quota, period) = (parts.next()?, parts.next()?);
        if quota == "max" {
            return None;
        }
        return cpus(quota.parse().ok()?, period.parse().ok()?)
            .map(|n| (n, CpuLimit::CgroupCpuMax));
    }
    for dir in ["sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct"] {
        let Some(quota) = read(&format!("{dir}/cpu.cfs_quota_us")) else {
            continue;
        };
        let quota: i64 = quota.trim().parse().ok()?;
        let period: u64 = read(&format!("{dir}/cpu.cfs_period_us"))?
            .trim()
            .parse()
            .ok()?;
        return u64::try_from(quota)
            .ok()
            .and_then(|q| cpus(q, period))
            .map(|n| (n, CpuLimit::CgroupCfsQuota));
    }
    None
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

/// How fast the CPU made the product.
pub struct Measured {
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

/// The least time the CPU baseline is measured for, and the default
/// `--min-time` (cli::DEFAULT_MIN_TIME), whatever the GPU's measurement was
/// told. A few short repetitions (`--iterations 3`) time the CPU before its
/// threads, caches and clocks are up to speed (11 GFLOP/s where the default
/// measured 58 on the same machine), which would inflate `speedup_vs_cpu`.
pub const MIN_TIME: Duration = Duration::from_millis(200);

/// How the CPU baseline is repeated when the GPU is measured with `gpu`:
/// at least `MIN_TIME`, and at least as long or as often as the GPU.
#[must_use]
pub fn baseline_repeat(gpu: Repeat) -> Repeat {
    match gpu {
        Repeat::Times(_) => Repeat::AtLeast(MIN_TIME),
        Repeat::AtLeast(d) => Repeat::AtLeast(d.max(MIN_TIME)),
    }
}

/// The product, once, on `threads` threads: the reference the GPUs are
/// checked against, computed beside them and not timed.
#[must_use]
pub fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], threads: usize) -> Vec<f32> {
    let mut product = vec![0f32; m * n];
    sgemm(m, n, k, a, b, &mut product, threads);
    product
}

/// Times repetitions as `baseline_repeat(repeat)` says, after one untimed
/// warm-up run, and never starting a run that would end after `until`
/// (a run being about `estimate` long) once one has been timed.
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn measure(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    threads: usize,
    repeat: Repeat,
    until: Option<(Instant, Duration)>,
) -> Measured {
    let repeat = baseline_repeat(repeat);
    let mut scratch = vec![0f32; m * n];
    sgemm(m, n, k, a, b, &mut scratch, threads);
    let start = Instant::now();
    let mut iterations = 0u32;
    loop {
        sgemm(m, n, k, a, b, &mut scratch, threads);
        iterations += 1;
        let done = match repeat {
            Repeat::Times(t) => iterations >= t.max(1),
            Repeat::AtLeast(d) => start.elapsed() >= d,
        };
        let out_of_time = until.is_some_and(|(end, estimate)| Instant::now() + estimate > end);
        if done || out_of_time {
            break;
        }
    }
    Measured {
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

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn cgroup_quotas_in_whole_cpus() {
        for (files, want) in [
            (
                &[("sys/fs/cgroup/cpu.max", "200000 100000\n")][..],
                Some((2, CpuLimit::CgroupCpuMax)),
            ),
            (
                &[("sys/fs/cgroup/cpu.max", "50000 100000\n")],
                Some((1, CpuLimit::CgroupCpuMax)),
            ),
            (
                &[("sys/fs/cgroup/cpu.max", "150000 100000\n")],
                Some((1, CpuLimit::CgroupCpuMax)),
            ),
            (&[("sys/fs/cgroup/cpu.max", "max 100000\n")], None),
            (
                &[
                    ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "300000\n"),
                    ("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
                ],
                Some((3, CpuLimit::CgroupCfsQuota)),
            ),
            (
                &[
                    ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
                    ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
                ],
                None,
            ),
            (&[("sys/fs/cgroup/cpu.max", "garbage")], None),
            (&[], None),
        ] {
            let root = root_with(files);
            assert_eq!(cgroup_quota(root.path()), want, "{files:?}");
        }
    }

    #[test]
    fn the_lower_of_affinity_and_quota_wins_and_is_named() {
        let root = root_with(&[("sys/fs/cgroup/cpu.max", "100000 100000\n")]);
        assert_eq!(
            available(root.path()),
            Cpus {
                count: 1,
                limited_by: CpuLimit::CgroupCpuMax
            }
        );
        let unlimited = root_with(&[]);
        let cpus = available(unlimited.path());
        assert!(cpus.count >= 1);
        if cfg!(target_os = "linux") {
            assert_eq!(cpus.limited_by, CpuLimit::Affinity);
        }
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
