//! The stages run on one GPU, in its own thread.
//!
//! context -> memory -> module -> allocate -> upload -> matmul -> download ->
//! verify. A failed stage fails this device only; the stages after it are
//! recorded as skipped, and everything taken so far is released by the
//! owners in `cuda`.
use std::sync::Arc;
use std::time::Duration;

use super::progress::{Done, Failed, Progress, Scope};
use super::Shared;
use crate::cpu::Repeat;
use crate::cuda::{self, kernels, Buffer, Context, CuDevice, Driver, Event, Module};
use crate::report::Matmul;
use crate::units::bytes;
use crate::verify::{self, Inputs, Reference};

const STAGES: [&str; 8] = [
    "context", "memory", "module", "allocate", "upload", "matmul", "download", "verify",
];

/// Below this fraction of free memory the GPU is reported busy (a warning).
const BUSY_FREE_FRACTION: f64 = 0.10;

/// Most timed launches a `--min-time` measurement makes.
const MAX_ITERATIONS: u32 = 10_000;

pub struct Job<'a> {
    pub driver: &'a Driver,
    pub progress: &'a Progress,
    /// Index into `report.devices`.
    pub slot: usize,
    pub device: CuDevice,
    pub inputs: &'a Inputs,
    pub reference: &'a Shared<Reference>,
    pub repeat: Repeat,
    /// NVML, for the telemetry read right after the matmul.
    pub nvml: Option<&'static crate::telemetry::Loaded>,
}

/// Runs every stage on one device and records the matmul result.
pub fn probe(job: &Job<'_>) {
    if let Some(matmul) = run_stages(job) {
        job.progress
            .update(|r| r.devices[job.slot].matmul = Some(matmul));
    }
    // Also after a failure: NVML may say why (GPU lost, memory errors).
    if let Some(nvml) = job.nvml {
        super::machine::read_telemetry(job.progress, nvml, job.slot);
    }
}

fn skip_after(job: &Job<'_>, failed: &str) {
    let scope = Scope::Device(job.slot);
    let at = STAGES
        .iter()
        .position(|s| *s == failed)
        .map_or(STAGES.len(), |i| i + 1);
    for stage in &STAGES[at..] {
        job.progress
            .skip(scope, stage, format!("not run: {failed} failed"));
    }
}

macro_rules! stage_or_stop {
    ($job:expr, $name:literal, $body:expr) => {
        match $job.progress.stage(Scope::Device($job.slot), $name, $body) {
            Some(v) => v,
            None => {
                skip_after($job, $name);
                return None;
            }
        }
    };
}

fn run_stages(job: &Job<'_>) -> Option<Matmul> {
    let (m, n, k) = (job.inputs.m, job.inputs.n, job.inputs.k);

    let ctx = stage_or_stop!(job, "context", || {
        Ok(Done::pass(
            Context::bind(job.driver, job.device)?,
            "primary context created and current",
        ))
    });

    let free = stage_or_stop!(job, "memory", || {
        let (free, total) = ctx.memory_info()?;
        job.progress.update(|r| {
            let d = &mut r.devices[job.slot];
            d.memory_free_bytes = Some(free);
            d.memory_used_bytes = Some(total.saturating_sub(free));
        });
        let detail = format!("{} free of {}", bytes(free), bytes(total));
        // Another process holds nearly all of this GPU: the workload will
        // likely run out of memory even though the GPU itself is fine.
        if (free as f64) < BUSY_FREE_FRACTION * total as f64 {
            Ok(Done::warn(
                free,
                format!("{detail}: another process holds most of this GPU's memory"),
            ))
        } else {
            Ok(Done::pass(free, detail))
        }
    });

    let (module, function) = stage_or_stop!(job, "module", || {
        let module = Module::load(&ctx, kernels::MATMUL_PTX)?;
        let function = module.function(kernels::SGEMM_TILED)?;
        let detail = format!(
            "embedded PTX JIT-compiled; {} found",
            kernels::SGEMM_TILED.to_string_lossy()
        );
        Ok(Done::pass((module, function), detail))
    });

    let (len_a, len_b, len_c) = (
        m as usize * k as usize,
        k as usize * n as usize,
        m as usize * n as usize,
    );
    // Two products: the exact pass's (timed) and the rounding pass's
    // (src/verify.rs), each with its own A, B and C.
    let (a, b, c, ra, rb, rc) = stage_or_stop!(job, "allocate", || {
        let need = (2 * (len_a + len_b + len_c) * size_of::<f32>()) as u64;
        if need > free {
            return Err(Failed::new(format!(
                "the {m}x{n}x{k} matmul needs {} and only {} is free; try a smaller --size",
                bytes(need),
                bytes(free)
            )));
        }
        let buffers = (
            Buffer::alloc(&ctx, len_a)?,
            Buffer::alloc(&ctx, len_b)?,
            Buffer::alloc(&ctx, len_c)?,
            Buffer::alloc(&ctx, len_a)?,
            Buffer::alloc(&ctx, len_b)?,
            Buffer::alloc(&ctx, len_c)?,
        );
        Ok(Done::pass(
            buffers,
            format!("{} for A, B and C, twice", bytes(need)),
        ))
    });

    stage_or_stop!(job, "upload", || {
        a.upload(&job.inputs.a)?;
        b.upload(&job.inputs.b)?;
        ra.upload(&job.inputs.rounding_a)?;
        rb.upload(&job.inputs.rounding_b)?;
        Ok(Done::pass(
            (),
            format!("A and B copied to the GPU (seed {})", job.inputs.seed),
        ))
    });

    let (iterations, time_ms) = stage_or_stop!(job, "matmul", || {
        let (grid, block) = kernels::sgemm_tiled_launch(m, n);
        let (mut mm, mut nn, mut kk) = (m as i32, n as i32, k as i32);
        let (mut pa, mut pb, mut pc) = (a.ptr, b.ptr, c.ptr);
        let mut params: [*mut std::ffi::c_void; 6] = [
            (&raw mut mm).cast(),
            (&raw mut nn).cast(),
            (&raw mut kk).cast(),
            (&raw mut pa).cast(),
            (&raw mut pb).cast(),
            (&raw mut pc).cast(),
        ];
        let (start, stop) = (Event::new(&ctx)?, Event::new(&ctx)?);
        // Warm-up: the first launch pays one-off costs; it also sizes the
        // timed batch for --min-time.
        start.record()?;
        // SAFETY: `function` is gpuprobe_sgemm_tiled from `module`, whose
        // parameters are (int, int, int, float*, float*, float*): `params`.
        unsafe { cuda::launch(&ctx, function, grid, block, &mut params)? };
        stop.record()?;
        stop.synchronize()?;
        let warm_ms = start.elapsed_ms(&stop)?;
        let iterations = match job.repeat {
            Repeat::Times(t) => t.max(1),
            Repeat::AtLeast(d) => iterations_for(d, warm_ms),
        };
        start.record()?;
        for _ in 0..iterations {
            // SAFETY: as for the warm-up launch.
            unsafe { cuda::launch(&ctx, function, grid, block, &mut params)? };
        }
        stop.record()?;
        stop.synchronize()?;
        let time_ms = start.elapsed_ms(&stop)? / f64::from(iterations);
        // The rounding pass's product, once, untimed.
        let (mut pa, mut pb, mut pc) = (ra.ptr, rb.ptr, rc.ptr);
        let mut params: [*mut std::ffi::c_void; 6] = [
            (&raw mut mm).cast(),
            (&raw mut nn).cast(),
            (&raw mut kk).cast(),
            (&raw mut pa).cast(),
            (&raw mut pb).cast(),
            (&raw mut pc).cast(),
        ];
        // SAFETY: as for the warm-up launch, on the rounding pass's buffers.
        unsafe { cuda::launch(&ctx, function, grid, block, &mut params)? };
        ctx.synchronize()?;
        Ok(Done::pass(
            (iterations, time_ms),
            format!(
                "{iterations} launches of {}, {time_ms:.3} ms each",
                kernels::SGEMM_TILED.to_string_lossy()
            ),
        ))
    });

    let (result, rounding) = stage_or_stop!(job, "download", || {
        let mut out = vec![0f32; len_c];
        c.download(&mut out)?;
        let mut rounding = vec![0f32; len_c];
        rc.download(&mut rounding)?;
        Ok(Done::pass((out, rounding), "both products copied back"))
    });

    let verification = stage_or_stop!(job, "verify", || {
        let reference: Arc<Reference> = job.reference.wait();
        let v = verify::check(job.inputs, &reference, &result, &rounding);
        if v.passed {
            let detail = verify::passed_detail(&v);
            Ok(Done::pass(v, detail))
        } else {
            let detail = verify::failed_detail(&v);
            job.progress.update(|r| {
                r.devices[job.slot].matmul = Some(matmul_of(job, iterations, time_ms, v));
            });
            Err(Failed::new(detail))
        }
    });

    drop((a, b, c, ra, rb, rc, module));
    Some(matmul_of(job, iterations, time_ms, verification))
}

fn matmul_of(
    job: &Job<'_>,
    iterations: u32,
    time_ms: f64,
    verification: crate::report::Verification,
) -> Matmul {
    let (m, n, k) = (job.inputs.m, job.inputs.n, job.inputs.k);
    let gflops = crate::cpu::gflops(
        m as usize,
        n as usize,
        k as usize,
        Duration::from_secs_f64(time_ms / 1e3),
    );
    Matmul {
        kernel: kernels::SGEMM_TILED.to_string_lossy().into_owned(),
        m,
        n,
        k,
        iterations,
        gpu_time_ms: time_ms,
        gpu_gflops: gflops,
        speedup_vs_cpu: None,
        verification,
    }
}

/// Launches needed to fill `min_time` at the warm-up's pace.
fn iterations_for(min_time: Duration, warm_ms: f64) -> u32 {
    if warm_ms <= 0.0 {
        return MAX_ITERATIONS;
    }
    let n = (min_time.as_secs_f64() * 1e3 / warm_ms).ceil();
    (n as u32).clamp(1, MAX_ITERATIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterations_fill_min_time_within_bounds() {
        assert_eq!(iterations_for(Duration::from_millis(100), 10.0), 10);
        assert_eq!(iterations_for(Duration::from_millis(100), 1000.0), 1);
        assert_eq!(
            iterations_for(Duration::from_secs(100), 0.001),
            MAX_ITERATIONS
        );
        assert_eq!(
            iterations_for(Duration::from_millis(1), 0.0),
            MAX_ITERATIONS
        );
    }
}
