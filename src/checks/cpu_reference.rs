//! The CPU's side of the matmul: whether the reference product fits the
//! deadline, the timed reference the GPUs are checked against, and the
//! CPU baseline timed on its own after them.
use std::time::{Duration, Instant};

use super::progress::{Done, Failed, Progress, Scope};
use super::SAMPLE_SALT;
use crate::cpu::{self, Repeat};
use crate::report::{CpuLimit, CpuReport, NotRun};
use crate::stage::Stage;
use crate::units::flops;
use crate::verify::{Inputs, Reference};

/// Edge of the GEMM timed to project the CPU reference's time.
const CALIBRATION: u32 = 256;

/// Whether the CPU reference product of an n x n x n GEMM can be made in
/// three quarters of what is left before `deadline`, projected from a
/// 256³ product on the same threads (larger products run at least as fast
/// per flop, so the projection errs long). When it cannot, the
/// `cpu_reference` check fails saying so, before any input is made or any
/// GPU is touched.
pub fn cpu_reference_fits(
    progress: &Progress,
    n: u32,
    threads: usize,
    deadline: Option<Instant>,
) -> bool {
    let Some(deadline) = deadline else {
        return true;
    };
    if n <= CALIBRATION {
        return true;
    }
    let edge = CALIBRATION as usize;
    let ones = vec![1f32; edge * edge];
    let started = Instant::now();
    let _ = cpu::product(edge, edge, edge, &ones, &ones, threads);
    let projected = started
        .elapsed()
        .mul_f64((f64::from(n) / f64::from(CALIBRATION)).powi(3));
    let left = deadline
        .saturating_duration_since(Instant::now())
        .mul_f64(0.75);
    if projected <= left {
        return true;
    }
    progress.stage(
        Scope::Machine,
        Stage::CpuReference,
        || -> Result<Done<()>, Failed> {
            Err(Failed::new(format!(
                "not run: the CPU reference of the {n}x{n}x{n} matmul would take about {:.1} s on \
             {threads} thread(s), and three quarters of what is left before the deadline is \
             {:.1} s; use a smaller --size or a longer --timeout",
                projected.as_secs_f64(),
                left.as_secs_f64()
            ))
            .not_run(NotRun::OutOfTime))
        },
    );
    false
}

/// The CPU product the GPUs' results are checked against, published in
/// `reference`; computed beside the GPUs' stages and not timed.
pub fn cpu_reference(
    progress: &Progress,
    inputs: &Inputs,
    threads: usize,
    reference: &std::sync::OnceLock<Reference>,
) -> Option<Duration> {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let (product, took) = progress.stage(Scope::Machine, Stage::CpuReference, || {
        let started = Instant::now();
        let product = cpu::product(m, n, k, &inputs.a, &inputs.b, threads);
        let took = started.elapsed();
        let detail = format!(
            "the product on {threads} thread(s) in {:.3} ms",
            took.as_secs_f64() * 1e3
        );
        Ok(Done::pass((product, took), detail))
    })?;
    // The sample changes every run: it is drawn from the run's seed, itself
    // fresh unless --seed fixed it.
    let sample_seed = inputs.seed ^ SAMPLE_SALT;
    // The only publication in this run, so `set` cannot find it taken.
    let _ = reference.set(Reference::new(inputs, product, sample_seed));
    Some(took)
}

/// The CPU baseline, timed while no GPU stage runs: a warm-up run and at
/// least one timed run, if both fit in half of what is left before
/// `deadline` (`estimate` is one run's time, from the product).
pub fn cpu_baseline(
    progress: &Progress,
    inputs: &Inputs,
    repeat: Repeat,
    cpus: cpu::Cpus,
    estimate: Duration,
    deadline: Option<Instant>,
) {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let budget = deadline.map(|d| d.saturating_duration_since(Instant::now()) / 2);
    if let Some(budget) = budget.filter(|b| *b < 2 * estimate) {
        progress.skip(
            Scope::Machine,
            Stage::CpuBaseline,
            NotRun::OutOfTime,
            format!(
                "not timed: a warm-up and one run take about {:.0} ms, and half of what is left \
                 before the deadline is {:.0} ms; no speedup_vs_cpu",
                2.0 * estimate.as_secs_f64() * 1e3,
                budget.as_secs_f64() * 1e3
            ),
        );
        return;
    }
    let until = budget.map(|b| (Instant::now() + b, estimate));
    let measured = progress.stage(Scope::Machine, Stage::CpuBaseline, || {
        let measured = cpu::measure(m, n, k, &inputs.a, &inputs.b, cpus.count, repeat, until);
        let gflops = cpu::gflops(m, n, k, measured.mean);
        let detail = format!(
            "{} on {} thread(s) ({} CPU(s) granted, set by {}), {:.3} ms per run, timed with no GPU stage running",
            flops(gflops),
            measured.threads,
            cpus.count,
            limit_name(cpus.limited_by),
            measured.mean.as_secs_f64() * 1e3
        );
        Ok(Done::pass(measured, detail))
    });
    let Some(measured) = measured else { return };
    progress.update(|r| {
        r.cpu = Some(CpuReport {
            library: cpu::LIBRARY.into(),
            threads: measured.threads as u32,
            available_cpus: cpus.count as u32,
            threads_limited_by: Some(cpus.limited_by),
            iterations: measured.iterations,
            time_ms: measured.mean.as_secs_f64() * 1e3,
            gflops: cpu::gflops(m, n, k, measured.mean),
        });
    });
}

fn limit_name(limit: CpuLimit) -> &'static str {
    match limit {
        CpuLimit::Affinity => "the affinity mask",
        CpuLimit::CgroupCpuMax => "the cgroup's cpu.max",
        CpuLimit::CgroupCfsQuota => "the cgroup's cpu.cfs_quota_us",
        CpuLimit::Platform => "the platform",
    }
}
