//! One GPU's part of the sweep, on a thread of its own: its context and
//! kernels, made once, then each round's kernels timed and verified, one
//! `bench` check per size and one report row per kernel and size.
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::{Prepared, Round};
use crate::checks::context;
use crate::checks::gpu::{self, fit_to_deadline, iterations_for, WATCHDOG_LAUNCH_MS};
use crate::checks::progress::{Done, Failed, Progress, Scope};
use crate::cpu::{self, Repeat};
use crate::cuda::kernels::{self, Mma, Sgemm};
use crate::cuda::{self, cublas, Buffer, Context, CuDevice, Driver, Event, Kernel, Module};
use crate::report::{BenchKernel, BenchRow, BenchStatus, NotRun};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::{bytes, flops};
use crate::verify;

pub(super) struct Job<'a> {
    pub driver: &'a Driver,
    pub progress: &'a Progress,
    /// Index into `report.devices`.
    pub slot: usize,
    pub device: CuDevice,
    /// cuBLAS, when the process found it.
    pub cublas: Option<&'static cublas::Cublas>,
    pub repeat: Repeat,
    pub deadline: Option<Instant>,
    /// NVML, for the telemetry read after the sweep.
    pub nvml: Option<&'static telemetry::Loaded>,
}

/// The GPU's sweep: every round it is sent, answered on `done` once run,
/// until the sender is dropped; then NVML's readings.
pub(super) fn sweep(job: &Job<'_>, rounds: &mpsc::Receiver<Arc<Round>>, done: &mpsc::Sender<()>) {
    // Before the context exists, so that what others use leaves out
    // gpuprobe's own context, as in the probe's `memory` check.
    let nvml = gpu::nvml_device(job.progress, job.slot, job.nvml);
    let counters = gpu::counters_before(job.progress, job.slot, job.nvml);
    let nvlink = gpu::nvlink_before(job.progress, job.slot, job.nvml);
    let used_before_context = nvml
        .as_ref()
        .and_then(telemetry::NvmlDevice::own)
        .and_then(telemetry::memory)
        .map(|(_, used)| used);
    let ctx = context::bind_context(
        job.progress,
        job.slot,
        job.driver,
        job.device,
        nvml.as_ref(),
    );
    // Why this GPU runs no size, when it runs none.
    let mut none = (NotRun::EarlierFailure, "no context".to_string());
    if let Err(context::NoContext::Refused(why)) = &ctx {
        none = match why {
            crate::report::NotVerified::MemoryHeldWithoutProcess => (
                NotRun::MemoryHeld,
                "the GPU admits no context of this process (compute not verified)".into(),
            ),
            _ => (
                NotRun::Busy,
                "the GPU admits no context of this process (compute not verified)".into(),
            ),
        };
    }
    if let Ok(ctx) = ctx {
        none = (NotRun::EarlierFailure, "memory or module failed".into());
        if let Some(loaded) = load(job, &ctx, used_before_context) {
            let mut gpu = Gpu {
                job,
                ctx: &ctx,
                loaded,
                last: HashMap::new(),
                stopped: None,
            };
            for round in rounds {
                gpu.round(&round);
                if done.send(()).is_err() {
                    break;
                }
            }
        }
    }
    // Without a context or kernels this GPU runs nothing; the rounds still
    // coming are answered so the sweep goes on for the others.
    for round in rounds {
        let (why, reason) = &none;
        job.progress.skip(
            Scope::Device(job.slot),
            Stage::Bench,
            *why,
            format!("N={} not run: {reason}", round.size()),
        );
        if done.send(()).is_err() {
            break;
        }
    }
    gpu::read_telemetry(
        job.progress,
        job.nvml,
        job.slot,
        None,
        counters,
        nvlink.as_ref(),
    );
}

/// What a GPU runs the sweep with, made once.
struct Loaded<'c> {
    fast: Kernel<'c>,
    tiled: Kernel<'c>,
    /// The TF32 and BF16 tensor-core kernels, or why this GPU has none.
    mma: Result<[Kernel<'c>; 2], String>,
    /// A cuBLAS handle (or why none could be made); `None` without cuBLAS.
    cublas: Option<Result<cublas::Handle<'c>, String>>,
    /// A kernel run-time limit (CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT:
    /// a display GPU under Windows, reset past ~2 s by TDR).
    watchdog: bool,
}

/// The `memory` and `module` checks: free memory (and what others used:
/// NVML's reading from before the context, else total less free, as in the
/// probe's `memory` check), the kernels JIT-compiled once, the kernel
/// watchdog and a cuBLAS handle.
fn load<'c>(
    job: &Job<'_>,
    ctx: &'c Context<'c>,
    used_before_context: Option<u64>,
) -> Option<Loaded<'c>> {
    let scope = Scope::Device(job.slot);
    job.progress.stage(scope, Stage::Memory, || {
        let (free, total) = ctx.memory_info()?;
        job.progress.update(|r| {
            let d = &mut r.devices[job.slot];
            d.memory_free_bytes = Some(free);
            d.memory_used_bytes = Some(used_before_context.unwrap_or(total.saturating_sub(free)));
        });
        Ok(Done::pass(
            (),
            format!("{} free of {}", bytes(free), bytes(total)),
        ))
    })?;
    job.progress.stage(scope, Stage::Module, || {
        let started = Instant::now();
        let [fast, tiled] = Module::load(ctx, kernels::MATMUL_PTX)?
            .kernels([Sgemm::Fast.entry(), Sgemm::Tiled.entry()])?;
        let major = job.driver.device_attribute(
            job.device,
            Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
        )?;
        // PTX ISA, "Warp-level matrix multiply-accumulate instructions":
        // mma.sync with .tf32/.bf16 inputs needs sm_80.
        let mma = if major < kernels::MMA_MIN_MAJOR {
            Err(format!(
                "mma.sync with TF32/BF16 inputs needs compute capability {}.0 or newer, this \
                 GPU is {major}.x",
                kernels::MMA_MIN_MAJOR
            ))
        } else {
            Ok(Module::load(ctx, kernels::MMA_PTX)?.kernels(Mma::ALL.map(Mma::entry))?)
        };
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        job.progress
            .update(|r| r.devices[job.slot].module_load_ms = Some(load_ms));
        let watchdog = job
            .driver
            .device_attribute(job.device, Attr::CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT)?
            == 1;
        let cublas = job
            .cublas
            .map(|c| cublas::Handle::create(c, ctx).map_err(|e| e.to_string()));
        let mut detail = format!(
            "{} JIT-compiled in {load_ms:.1} ms",
            if mma.is_ok() {
                "matmul.ptx and mma.ptx"
            } else {
                "matmul.ptx"
            }
        );
        match &cublas {
            Some(Ok(_)) => detail.push_str("; cuBLAS handle made (CUBLAS_DEFAULT_MATH: FP32)"),
            Some(Err(e)) => {
                let _ = write!(detail, "; no cuBLAS on this GPU: {e}");
            }
            None => {}
        }
        Ok(Done::pass(
            Loaded {
                fast,
                tiled,
                mma,
                cublas,
                watchdog,
            },
            detail,
        ))
    })
}

/// A GPU's state across the rounds.
struct Gpu<'a, 'c> {
    job: &'a Job<'a>,
    ctx: &'c Context<'c>,
    loaded: Loaded<'c>,
    /// Each kernel's last measurement: (size, ms per product), to project
    /// the next size's.
    last: HashMap<BenchKernel, (u32, f64)>,
    /// Why no more sizes run here, after a failure.
    stopped: Option<String>,
}

/// A, B and C of the exact pass, then of the rounding pass (src/verify/).
struct Buffers<'c> {
    exact: [Buffer<'c>; 3],
    rounding: [Buffer<'c>; 3],
}

/// How a kernel is started on three buffers (A, B, C).
enum Launcher<'a, 'c> {
    /// One of gpuprobe's kernels, with its grid and block.
    Ours(&'a Kernel<'c>, ([u32; 3], [u32; 3])),
    Cublas(&'a cublas::Handle<'c>),
}

impl Launcher<'_, '_> {
    fn launch(&self, ctx: &Context<'_>, n: u32, buffers: &[Buffer<'_>; 3]) -> Result<(), Failed> {
        let pointers = buffers.each_ref().map(|b| b.ptr);
        match self {
            // SAFETY: the kernel is one of kernels/'s GEMM kernels, loaded
            // in `ctx` (`load`); each buffer holds n*n floats (`Buffers`).
            Launcher::Ours(kernel, geometry) => {
                unsafe { cuda::launch_gemm(ctx, kernel, *geometry, (n, n, n), pointers) }
                    .map_err(Failed::from)
            }
            // SAFETY: as above; the handle was made on `ctx`.
            Launcher::Cublas(handle) => unsafe { handle.sgemm_row_major((n, n, n), pointers) }
                .map_err(|e| Failed::new(e.to_string())),
        }
    }
}

impl<'c> Gpu<'_, 'c> {
    /// The kernels this GPU runs at every size, in order: cuBLAS only when
    /// the process has it; the tensor-core kernels always, as rows that say
    /// why when the GPU has no tensor cores.
    fn kernels(&self) -> Vec<BenchKernel> {
        BenchKernel::ALL
            .into_iter()
            .filter(|k| *k != BenchKernel::Cublas || self.loaded.cublas.is_some())
            .collect()
    }

    /// The `bench` check of one round.
    fn round(&mut self, round: &Round) {
        let size = round.size();
        let failed = self
            .job
            .progress
            .stage(Scope::Device(self.job.slot), Stage::Bench, || {
                self.size(round)
            })
            .is_none();
        if failed && self.stopped.is_none() {
            self.stopped = Some(format!("N={size} failed on this GPU"));
        }
    }

    fn size(&mut self, round: &Round) -> Result<Done<()>, Failed> {
        let kernels = self.kernels();
        let p = match (round, &self.stopped) {
            (Round::Skip { size, why, reason }, _) => {
                return Ok(self.skip_all(*size, &kernels, *why, reason))
            }
            (Round::Run(p), Some(stopped)) => {
                let reason = format!("not run: {stopped}");
                return Ok(self.skip_all(p.size, &kernels, NotRun::EarlierFailure, &reason));
            }
            (Round::Run(p), None) => p,
        };
        let n = p.size;
        let len = n as usize * n as usize;
        let need = (6 * len * size_of::<f32>()) as u64;
        let (free, _) = self.ctx.memory_info()?;
        if need > free {
            let reason = format!(
                "N={n} needs {} of GPU memory (A, B and C of both passes), {} is free",
                bytes(need),
                bytes(free)
            );
            return Ok(self.skip_all(n, &kernels, NotRun::NoMemory, &reason));
        }
        // Enough was free, so a failed allocation is the GPU's failure, as
        // in the probe's `allocate` stage.
        let buffers = self.alloc(len)?;
        let [a, b, _] = &buffers.exact;
        let [ra, rb, _] = &buffers.rounding;
        a.upload(&p.inputs.a)?;
        b.upload(&p.inputs.b)?;
        ra.upload(&p.inputs.rounding_a)?;
        rb.upload(&p.inputs.rounding_b)?;
        // What C holds before each kernel: NaN, so that a kernel that
        // leaves any element unwritten is caught, not credited with the
        // kernel before it.
        let poison = vec![f32::NAN; len];
        let (mut measured, mut wrong) = (Vec::new(), Vec::new());
        for (at, kernel) in kernels.iter().enumerate() {
            let row = match self.measure(*kernel, p, &buffers, &poison) {
                Ok(row) => row,
                Err(failed) => {
                    self.push(BenchRow {
                        status: BenchStatus::Fail,
                        reason: Some(failed.detail.clone()),
                        ..row(*kernel, p)
                    });
                    let reason = format!("not run: {kernel} failed at N={n}");
                    for later in &kernels[at + 1..] {
                        self.push(skipped(*later, n, &reason));
                    }
                    return Err(Failed {
                        detail: format!("N={n}: {kernel}: {}", failed.detail),
                        error: failed.error,
                        not_run: None,
                    });
                }
            };
            match (row.status, row.gpu_gflops) {
                (BenchStatus::Fail, _) => wrong.push(format!(
                    "{kernel}: {}",
                    row.reason.as_deref().unwrap_or("wrong")
                )),
                (BenchStatus::Pass, Some(g)) => measured.push(format!("{kernel} {}", flops(g))),
                _ => {}
            }
            self.push(row);
        }
        if !wrong.is_empty() {
            return Err(Failed::new(format!(
                "N={n}: wrong result: {}",
                wrong.join("; ")
            )));
        }
        Ok(Done::pass(
            (),
            if measured.is_empty() {
                format!("N={n}: no kernel ran (each row says why)")
            } else {
                format!("N={n}: {}; every result right", measured.join(", "))
            },
        ))
    }

    fn alloc(&self, len: usize) -> Result<Buffers<'c>, cuda::CopyError> {
        let three = || -> Result<[Buffer<'c>; 3], cuda::CopyError> {
            Ok([
                Buffer::alloc(self.ctx, len)?,
                Buffer::alloc(self.ctx, len)?,
                Buffer::alloc(self.ctx, len)?,
            ])
        };
        Ok(Buffers {
            exact: three()?,
            rounding: three()?,
        })
    }

    /// One kernel at one size: timed, then verified. `Err` is a driver or
    /// cuBLAS error (the GPU fails); a wrong result is a row that failed.
    fn measure(
        &mut self,
        kernel: BenchKernel,
        p: &Prepared,
        buffers: &Buffers<'_>,
        poison: &[f32],
    ) -> Result<BenchRow, Failed> {
        let n = p.size;
        let launcher = match self.launcher(kernel, n) {
            Ok(l) => l,
            Err(reason) => return Ok(skipped(kernel, n, &reason)),
        };
        if let Some(reason) = self.too_long(kernel, n) {
            return Ok(skipped(kernel, n, &reason));
        }
        let tensor = matches!(kernel, BenchKernel::Tf32 | BenchKernel::Bf16);
        let [a, b, c] = &buffers.exact;
        if let (true, Some(inputs)) = (tensor, &p.tensor_inputs) {
            a.upload(&inputs.a)?;
            b.upload(&inputs.b)?;
        }
        c.upload(poison)?;
        let ctx = self.ctx;
        let (start, stop) = (Event::new(ctx)?, Event::new(ctx)?);
        let timed = |count: u32| -> Result<f64, Failed> {
            start.record()?;
            for _ in 0..count {
                launcher.launch(ctx, n, &buffers.exact)?;
            }
            stop.record()?;
            stop.synchronize()?;
            Ok(start.elapsed_ms(&stop)?)
        };
        // The first launch pays what is paid once (lazy module loading,
        // cuBLAS's own set-up); the second, warm, sizes the timed ones, as
        // in the probe's matmul.
        timed(1)?;
        let warm_ms = timed(1)?;
        let requested = match self.job.repeat {
            Repeat::Times(t) => t.max(1),
            Repeat::AtLeast(d) => iterations_for(d, warm_ms),
        };
        let Ok(iterations) = fit_to_deadline(requested, warm_ms, self.budget_ms()) else {
            let reason = format!(
                "one N={n} product took {warm_ms:.0} ms, more than a quarter of what was left \
                 before the deadline (--timeout)"
            );
            return Ok(skipped(kernel, n, &reason));
        };
        let time_ms = timed(iterations)? / f64::from(iterations);
        let gflops = gflops(n, iterations, time_ms)?;
        let mut out = vec![0f32; poison.len()];
        c.download(&mut out)?;
        let verification = if tensor {
            verify::check(p.tensor_inputs(), p.tensor_reference(), &out, &[])
        } else {
            let [_, _, rc] = &buffers.rounding;
            rc.upload(poison)?;
            launcher.launch(ctx, n, &buffers.rounding)?;
            ctx.synchronize()?;
            let mut rounding = vec![0f32; poison.len()];
            rc.download(&mut rounding)?;
            verify::check(&p.inputs, &p.reference, &out, &rounding)
        };
        let passed = verification.passed;
        self.last.insert(kernel, (n, time_ms));
        Ok(BenchRow {
            status: if passed {
                BenchStatus::Pass
            } else {
                BenchStatus::Fail
            },
            reason: (!passed).then(|| verify::failed_detail(&verification)),
            iterations: Some(iterations),
            gpu_time_ms: Some(time_ms),
            gpu_gflops: Some(gflops),
            speedup_vs_cpu: p.cpu_gflops.filter(|c| *c > 0.0).map(|c| gflops / c),
            verification: Some(verification),
            ..row(kernel, p)
        })
    }

    /// How `kernel` runs on this GPU at size `n`, or why it does not.
    fn launcher(&self, kernel: BenchKernel, n: u32) -> Result<Launcher<'_, 'c>, String> {
        let mma = |i: usize| match &self.loaded.mma {
            Ok(kernels) => Ok(Launcher::Ours(&kernels[i], Mma::launch(n, n))),
            Err(why) => Err(why.clone()),
        };
        match kernel {
            BenchKernel::Fast => Ok(Launcher::Ours(&self.loaded.fast, Sgemm::Fast.launch(n, n))),
            BenchKernel::Tiled => Ok(Launcher::Ours(
                &self.loaded.tiled,
                Sgemm::Tiled.launch(n, n),
            )),
            BenchKernel::Tf32 => mma(0),
            BenchKernel::Bf16 => mma(1),
            BenchKernel::Cublas => match &self.loaded.cublas {
                Some(Ok(handle)) => Ok(Launcher::Cublas(handle)),
                Some(Err(why)) => Err(format!("no cuBLAS handle on this GPU: {why}")),
                None => Err("no cuBLAS in this process".into()),
            },
        }
    }

    /// A quarter of what is left before the deadline, in ms: what one
    /// kernel's timed products may take.
    fn budget_ms(&self) -> Option<f64> {
        self.job
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64() * 1e3 / 4.0)
    }

    /// Why one product of `kernel` at `n` must not be launched, projected
    /// from its last size (n³ flops): past a quarter of what is left before
    /// the deadline, or past what one launch may take under a kernel
    /// watchdog. A launch cannot be called back once made.
    fn too_long(&self, kernel: BenchKernel, n: u32) -> Option<String> {
        let &(from, ms) = self.last.get(&kernel)?;
        let projected = ms * (f64::from(n) / f64::from(from)).powi(3);
        if self.loaded.watchdog && projected > WATCHDOG_LAUNCH_MS {
            return Some(format!(
                "this GPU has a kernel run-time limit (a display GPU: Windows resets a kernel \
                 running past ~2 s), and one N={n} launch is projected at {projected:.0} ms from \
                 N={from}, above the {WATCHDOG_LAUNCH_MS:.0} ms gpuprobe allows one"
            ));
        }
        let budget = self.budget_ms()?;
        (projected > budget).then(|| {
            format!(
                "one N={n} product is projected at {projected:.0} ms from N={from}, more than a \
                 quarter of what is left before the deadline ({budget:.0} ms; --timeout)"
            )
        })
    }

    /// Every kernel at `size` skipped for `reason`: the size's check.
    fn skip_all(&self, size: u32, kernels: &[BenchKernel], why: NotRun, reason: &str) -> Done<()> {
        for kernel in kernels {
            self.push(skipped(*kernel, size, reason));
        }
        Done::skip((), why, format!("N={size} not run: {reason}"), None)
    }

    fn push(&self, row: BenchRow) {
        self.job
            .progress
            .update(|r| r.devices[self.job.slot].bench.push(row));
    }
}

/// GFLOP/s of one N=`n` product that took `time_ms` on average over
/// `iterations`; a time that is not a positive number (a driver whose
/// events misread) is an error, never a panic or an infinite figure.
fn gflops(n: u32, iterations: u32, time_ms: f64) -> Result<f64, Failed> {
    // try_from_secs_f64 refuses a NaN, negative or infinite time.
    let time = Duration::try_from_secs_f64(time_ms / 1e3)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Failed::new(format!(
                "the CUDA events timed {iterations} N={n} products at {time_ms} ms each"
            ))
        })?;
    let n = n as usize;
    Ok(cpu::gflops(n, n, n, time))
}

/// A row with what every row of `kernel` at `p`'s size shares.
fn row(kernel: BenchKernel, p: &Prepared) -> BenchRow {
    BenchRow {
        cpu_gflops: p.cpu_gflops,
        ..skipped(kernel, p.size, "")
    }
}

fn skipped(kernel: BenchKernel, size: u32, reason: &str) -> BenchRow {
    BenchRow {
        size,
        kernel,
        status: BenchStatus::Skip,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
        entry: entry(kernel).into(),
        iterations: None,
        gpu_time_ms: None,
        gpu_gflops: None,
        cpu_gflops: None,
        speedup_vs_cpu: None,
        efficiency: None,
        verification: None,
    }
}

/// The entry point a row names.
fn entry(kernel: BenchKernel) -> &'static str {
    let name = match kernel {
        BenchKernel::Fast => Sgemm::Fast.entry(),
        BenchKernel::Tiled => Sgemm::Tiled.entry(),
        BenchKernel::Tf32 => Mma::Tf32.entry(),
        BenchKernel::Bf16 => Mma::Bf16.entry(),
        BenchKernel::Cublas => return "cublasSgemm_v2",
    };
    name.to_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_that_is_no_measurement_is_an_error_not_a_panic() {
        for bad in [f64::NAN, -1.0, 0.0, f64::INFINITY, 1e-300] {
            let failed = gflops(16, 3, bad).expect_err("no measurement");
            assert!(failed.detail.contains("CUDA events"), "{}", failed.detail);
        }
        // 2 × 1024³ flops in 1 ms.
        let g = gflops(1024, 1, 1.0).map_err(|f| f.detail).unwrap();
        assert!((g - 2_147.483_648).abs() < 1e-6, "{g}");
    }
}
