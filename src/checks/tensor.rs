//! The tensor-core check: the mma.sync kernels of kernels/mma.cu (TF32 and
//! BF16 inputs, f32 accumulation) timed and checked bit for bit on inputs
//! that every precision represents exactly.
//!
//! It is its own stage (`tensor_cores`) after the FP32 matmul, so a GPU
//! whose tensor cores compute wrong is told apart from one whose FP32
//! units do. GPUs below compute capability 8.0 have no mma.sync for these
//! types (PTX ISA, "Warp-level matrix multiply-accumulate instructions"):
//! the stage skips them and says so.
use std::time::Duration;

use super::gpu::Job;
use super::progress::{Done, Failed};
use crate::cpu::{self, Repeat};
use crate::cuda::kernels::{self, Mma};
use crate::cuda::{self, Buffer, Context, Event, Module};
use crate::report::{TensorMatmul, TensorPrecision};
use crate::units;
use crate::verify::{self, Inputs, Reference};

/// Largest edge of the tensor-core product. Its CPU reference (2·m·n·k
/// flops, made once per run for every GPU: `prepare`) is 2 GFLOP at 1024,
/// tens of milliseconds on a few cores.
pub const MAX_EDGE: u32 = 1024;

/// The `tensor_cores` stage: skipped below compute capability 8.0; else
/// both precisions at the matmul's shape (capped), recorded in the device's
/// `tensor_cores`, failing when either product is wrong.
pub fn stage(
    job: &Job<'_>,
    tensor: &std::sync::OnceLock<Prepared>,
    ctx: &Context<'_>,
    repeat: Repeat,
    iterations_for: impl Fn(Duration, f64) -> u32,
) -> Result<Done<()>, Failed> {
    let major = job.driver.device_attribute(
        job.device,
        cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
    )?;
    if major < kernels::MMA_MIN_MAJOR {
        return Ok(Done::skip(
            (),
            crate::report::NotRun::Unsupported,
            format!(
                "not run: mma.sync with TF32/BF16 inputs needs compute capability {}.0 or newer, this GPU is {major}.x",
                kernels::MMA_MIN_MAJOR
            ),
            None,
        ));
    }
    let inputs = job.inputs;
    // The first GPU to get here makes them; the others wait for them.
    let prepared = tensor.get_or_init(|| prepare((inputs.m, inputs.n, inputs.k), inputs.seed));
    let results = run(ctx, prepared, repeat, iterations_for)?;
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.verification.passed)
        .map(|r| {
            format!(
                "{}: {}",
                r.precision,
                verify::failed_detail(&r.verification)
            )
        })
        .collect();
    let speeds: Vec<String> = results
        .iter()
        .map(|r| format!("{} {}", r.precision, units::flops(r.gpu_tflops * 1e3)))
        .collect();
    let shape = results
        .first()
        .map(|r| format!("{}x{}x{}", r.m, r.n, r.k))
        .unwrap_or_default();
    job.progress
        .update(|r| r.devices[job.slot].tensor_cores = results);
    if failed.is_empty() {
        Ok(Done::pass(
            (),
            format!(
                "{shape} on tensor cores, every element exact: {}",
                speeds.join(", ")
            ),
        ))
    } else {
        Err(Failed::new(format!(
            "tensor-core product wrong: {}",
            failed.join("; ")
        )))
    }
}

/// Runs both precisions on m x n x k (each capped at `MAX_EDGE`), with the
/// FP32 matmul's seed. Returns the results, failed or not.
/// The tensor-core check's inputs and their CPU product: the same for every
/// GPU of a run (they follow the matmul's shape and seed), so made once.
pub struct Prepared {
    inputs: Inputs,
    reference: Reference,
}

/// The inputs of the FP32 matmul's seed at its shape (capped at
/// `MAX_EDGE`), cut to what BF16 (and so TF32) holds exactly, and their
/// product on the CPU.
#[must_use]
pub fn prepare((m, n, k): (u32, u32, u32), seed: u64) -> Prepared {
    let (m, n, k) = (m.min(MAX_EDGE), n.min(MAX_EDGE), k.min(MAX_EDGE));
    let mut inputs = Inputs::generate(m, n, k, seed);
    for x in inputs.a.iter_mut().chain(inputs.b.iter_mut()) {
        *x = kernels::to_bf16_exact(*x);
    }
    let (mu, nu, ku) = (m as usize, n as usize, k as usize);
    let mut product = vec![0f32; mu * nu];
    cpu::sgemm(
        mu,
        nu,
        ku,
        &inputs.a,
        &inputs.b,
        &mut product,
        cpu::available_cpus(),
    );
    Prepared {
        inputs,
        reference: Reference::exact_only(product),
    }
}

/// Both precisions on `prepared`'s inputs. Returns the results, failed or
/// not.
pub fn run(
    ctx: &Context<'_>,
    prepared: &Prepared,
    repeat: Repeat,
    iterations_for: impl Fn(Duration, f64) -> u32,
) -> Result<Vec<TensorMatmul>, Failed> {
    let Prepared { inputs, reference } = prepared;
    let (m, n, k) = (inputs.m, inputs.n, inputs.k);
    let (mu, nu, ku) = (m as usize, n as usize, k as usize);
    let [a, b, c] = [mu * ku, ku * nu, mu * nu].map(|len| Buffer::alloc(ctx, len));
    let (a, b, c) = (a?, b?, c?);
    a.upload(&inputs.a)?;
    b.upload(&inputs.b)?;
    let mut results = Vec::new();
    // One module load (one JIT) for both kernels.
    let loaded = Module::load(ctx, kernels::MMA_PTX)?.kernels(Mma::ALL.map(Mma::entry))?;
    for (mma, kernel) in Mma::ALL.into_iter().zip(&loaded) {
        let (grid, block) = Mma::launch(m, n);
        let (start, stop) = (Event::new(ctx)?, Event::new(ctx)?);
        start.record()?;
        // SAFETY: `kernel` is `mma`'s entry point, a GEMM kernel loaded in
        // `ctx`; the buffers hold m*k, k*n and m*n floats.
        unsafe {
            cuda::launch_gemm(ctx, kernel, (grid, block), (m, n, k), [a.ptr, b.ptr, c.ptr])?;
        };
        stop.record()?;
        stop.synchronize()?;
        let warm_ms = start.elapsed_ms(&stop)?;
        let iterations = match repeat {
            Repeat::Times(t) => t.max(1),
            Repeat::AtLeast(d) => iterations_for(d, warm_ms),
        };
        start.record()?;
        for _ in 0..iterations {
            // SAFETY: as for the warm-up launch.
            unsafe {
                cuda::launch_gemm(ctx, kernel, (grid, block), (m, n, k), [a.ptr, b.ptr, c.ptr])?;
            };
        }
        stop.record()?;
        stop.synchronize()?;
        let time_ms = start.elapsed_ms(&stop)? / f64::from(iterations);
        let mut out = vec![0f32; mu * nu];
        c.download(&mut out)?;
        let verification = verify::check(inputs, reference, &out, &[]);
        let flops = 2.0 * f64::from(m) * f64::from(n) * f64::from(k);
        results.push(TensorMatmul {
            precision: match mma {
                Mma::Tf32 => TensorPrecision::Tf32,
                Mma::Bf16 => TensorPrecision::Bf16,
            },
            kernel: mma.entry().to_string_lossy().into_owned(),
            m,
            n,
            k,
            iterations,
            gpu_time_ms: time_ms,
            gpu_tflops: if time_ms > 0.0 {
                flops / (time_ms * 1e-3) / 1e12
            } else {
                0.0
            },
            verification,
        });
    }
    Ok(results)
}
