//! The stages run on one GPU, in its own thread: an ordered list of small
//! functions over the GPU's state (`Gpu`), each a check in the report.
//!
//! context -> memory -> module -> allocate -> upload -> matmul -> download ->
//! verify. A failed stage fails this device only; the stages after it are
//! recorded as skipped (derived from the list's order), and everything taken
//! so far is released by the owners in `cuda`. A new stage (a bandwidth
//! test) is one function and one entry in `PIPELINE`, plus its report type.
use std::time::Duration;

use super::progress::{Done, Failed, Progress, Scope};
use crate::cpu::Repeat;
use crate::cuda::error::CUDA_ERROR_DEVICE_UNAVAILABLE;
use crate::cuda::{self, kernels, Buffer, Context, CuDevice, Driver, Event, Kernel, Module};
use crate::report::{Matmul, Verification};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::bytes;
use crate::verify::{self, Inputs, Reference};

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
    pub reference: &'a std::sync::OnceLock<Reference>,
    pub repeat: Repeat,
    /// NVML, for the telemetry read right after the matmul.
    pub nvml: Option<&'static crate::telemetry::Loaded>,
}

/// What one GPU's stages have produced so far, in the context they share.
struct Gpu<'a> {
    job: &'a Job<'a>,
    ctx: &'a Context<'a>,
    /// The GPU as NVML sees it, when NVML is loaded and lists it.
    nvml: Option<nvml_wrapper::Device<'static>>,
    /// NVML's (free, used) bytes before the context existed.
    before_context: Option<(u64, u64)>,
    /// The PCIe link read while the timed launches ran.
    link_under_load: Option<telemetry::Link>,
    free: u64,
    kernel: Option<Kernel<'a>>,
    /// A, B and C of the exact pass (timed), then of the rounding pass
    /// (src/verify.rs).
    buffers: Option<[Buffer<'a>; 6]>,
    /// Timed launches and the mean time of one, ms.
    timing: Option<(u32, f64)>,
    result: Vec<f32>,
    rounding: Vec<f32>,
    verification: Option<Verification>,
}

/// A stage after the context: it reads and fills the GPU's state.
type StageFn = for<'a> fn(&mut Gpu<'a>) -> Result<Done<()>, Failed>;

/// The stages after `Stage::Context`, in the order they run.
const PIPELINE: &[(Stage, StageFn)] = &[
    (Stage::Memory, memory),
    (Stage::Module, module),
    (Stage::Allocate, allocate),
    (Stage::Upload, upload),
    (Stage::Matmul, matmul),
    (Stage::Download, download),
    (Stage::Verify, verify),
    (Stage::TensorCores, tensor_cores),
];

/// Runs every stage on one device and records the matmul result.
pub fn probe(job: &Job<'_>) {
    let link = run_stages(job);
    // Also after a failure: NVML may say why (GPU lost, memory errors).
    if let Some(nvml) = job.nvml {
        super::machine::read_telemetry(job.progress, nvml, job.slot, link);
    }
}

/// The stages from `at` in `PIPELINE` on, recorded as skipped.
fn skip_after(job: &Job<'_>, at: usize, why: &str) {
    for (stage, _) in &PIPELINE[at..] {
        job.progress
            .skip(Scope::Device(job.slot), *stage, format!("not run: {why}"));
    }
}

/// This GPU as NVML sees it, matched by UUID, then PCI bus id.
fn nvml_device(job: &Job<'_>) -> Option<nvml_wrapper::Device<'static>> {
    let nvml = job.nvml?;
    let (uuid, pci) = job.progress.update(|r| {
        let d = &r.devices[job.slot];
        (d.uuid.clone(), d.pci_bus_id.clone())
    });
    telemetry::find(&nvml.nvml, uuid.as_deref(), pci.as_deref())
}

/// The primary context, or `None` with the context check recorded: failed,
/// or skipped when the GPU admits no context of this process (compute mode
/// EXCLUSIVE_PROCESS held by another process, or PROHIBITED: cuda.h,
/// CUDA_ERROR_DEVICE_UNAVAILABLE). A busy GPU is not a broken one: its
/// health is then NVML's to tell (GP029).
fn context<'d>(job: &Job<'d>) -> Option<Context<'d>> {
    let scope = Scope::Device(job.slot);
    let made = job.progress.stage(scope, Stage::Context, || {
        match Context::bind(job.driver, job.device) {
            Ok(ctx) => Ok(Done::pass(Some(ctx), "primary context created and current")),
            Err(e) if e.code == CUDA_ERROR_DEVICE_UNAVAILABLE => Ok(Done::skip(
                None,
                format!(
                    "compute not checked: the GPU admits no context of this process \
                     (exclusive-process compute mode held by another process, or \
                     prohibited): {e}"
                ),
                Some(e),
            )),
            Err(e) => Err(e.into()),
        }
    });
    match made {
        Some(Some(ctx)) => Some(ctx),
        Some(None) => {
            skip_after(job, 0, "the GPU admits no context of this process");
            None
        }
        None => {
            skip_after(job, 0, &format!("{} failed", Stage::Context));
            None
        }
    }
}

/// The stages; returns the PCIe link as read under load, if it was.
fn run_stages(job: &Job<'_>) -> Option<telemetry::Link> {
    let scope = Scope::Device(job.slot);
    let nvml = nvml_device(job);
    // Before the context exists, so that its cost shows (`module`).
    let before_context = nvml.as_ref().and_then(telemetry::memory);
    // The context owns everything the later stages make, so it is made
    // first, outside their state.
    let ctx = context(job)?;
    let mut gpu = Gpu {
        job,
        ctx: &ctx,
        nvml,
        before_context,
        link_under_load: None,
        free: 0,
        kernel: None,
        buffers: None,
        timing: None,
        result: Vec::new(),
        rounding: Vec::new(),
        verification: None,
    };
    for (at, (stage, run)) in PIPELINE.iter().enumerate() {
        if job
            .progress
            .stage(scope, *stage, || run(&mut gpu))
            .is_none()
        {
            skip_after(job, at + 1, &format!("{stage} failed"));
            break;
        }
    }
    // A verification that failed still reports the measured speed and the
    // wrong elements.
    if let (Some((iterations, time_ms)), Some(v)) = (gpu.timing, gpu.verification.take()) {
        let matmul = matmul_of(job, iterations, time_ms, v);
        job.progress
            .update(|r| r.devices[job.slot].matmul = Some(matmul));
    }
    gpu.link_under_load
}

/// A stage that ran before this one did not leave what it should have.
fn missing(what: &str) -> Failed {
    Failed::new(format!("internal: no {what} from an earlier stage"))
}

fn memory(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let (free, total) = gpu.ctx.memory_info()?;
    gpu.free = free;
    // In use by anyone but this process: NVML's reading from before the
    // context, which this process's context would otherwise count.
    let used = gpu
        .before_context
        .map_or(total.saturating_sub(free), |(_, used)| used);
    gpu.job.progress.update(|r| {
        let d = &mut r.devices[gpu.job.slot];
        d.memory_free_bytes = Some(free);
        d.memory_used_bytes = Some(used);
    });
    let detail = format!("{} free of {}", bytes(free), bytes(total));
    // Another process holds nearly all of this GPU: the workload will
    // likely run out of memory even though the GPU itself is fine.
    if (free as f64) < BUSY_FREE_FRACTION * total as f64 {
        Ok(Done::warn(
            (),
            format!("{detail}: another process holds most of this GPU's memory"),
        ))
    } else {
        Ok(Done::pass((), detail))
    }
}

fn module(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let inputs = gpu.job.inputs;
    let sgemm = kernels::Sgemm::for_shape(inputs.m, inputs.n, inputs.k);
    gpu.kernel = Some(Module::load(gpu.ctx, kernels::MATMUL_PTX)?.kernel(sgemm.entry())?);
    let found = format!(
        "embedded PTX JIT-compiled; {} found",
        sgemm.entry().to_string_lossy()
    );
    // What the context and the module cost: free memory before them (NVML,
    // no context needed) less free memory now. With lazy loading (CUDA
    // 12.2+ default) the kernel is loaded by cuModuleGetFunction, above.
    if let Some((free_before, _)) = gpu.before_context {
        let (free_now, _) = gpu.ctx.memory_info()?;
        let cost = free_before.saturating_sub(free_now);
        gpu.job
            .progress
            .update(|r| r.devices[gpu.job.slot].context_memory_bytes = Some(cost));
        return Ok(Done::pass(
            (),
            format!("{found}; the context and module take {}", bytes(cost)),
        ));
    }
    Ok(Done::pass((), found))
}

/// Elements of A, B and C.
fn lengths(inputs: &Inputs) -> [usize; 3] {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    [m * k, k * n, m * n]
}

fn allocate(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let inputs = gpu.job.inputs;
    let lens = lengths(inputs);
    // Two products: the exact pass's and the rounding pass's.
    let need = (2 * lens.iter().sum::<usize>() * size_of::<f32>()) as u64;
    if need > gpu.free {
        return Err(Failed::new(format!(
            "the {}x{}x{} matmul needs {} and only {} is free; try a smaller --size",
            inputs.m,
            inputs.n,
            inputs.k,
            bytes(need),
            bytes(gpu.free)
        )));
    }
    gpu.buffers = Some([
        Buffer::alloc(gpu.ctx, lens[0])?,
        Buffer::alloc(gpu.ctx, lens[1])?,
        Buffer::alloc(gpu.ctx, lens[2])?,
        Buffer::alloc(gpu.ctx, lens[0])?,
        Buffer::alloc(gpu.ctx, lens[1])?,
        Buffer::alloc(gpu.ctx, lens[2])?,
    ]);
    Ok(Done::pass(
        (),
        format!("{} for A, B and C, twice", bytes(need)),
    ))
}

fn upload(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let [a, b, _, ra, rb, _] = gpu.buffers.as_ref().ok_or_else(|| missing("buffers"))?;
    a.upload(&gpu.job.inputs.a)?;
    b.upload(&gpu.job.inputs.b)?;
    ra.upload(&gpu.job.inputs.rounding_a)?;
    rb.upload(&gpu.job.inputs.rounding_b)?;
    Ok(Done::pass(
        (),
        format!("A and B copied to the GPU (seed {})", gpu.job.inputs.seed),
    ))
}

fn matmul(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let (ctx, job) = (gpu.ctx, gpu.job);
    let kernel = gpu.kernel.as_ref().ok_or_else(|| missing("kernel"))?;
    let [a, b, c, ra, rb, rc] = gpu.buffers.as_ref().ok_or_else(|| missing("buffers"))?;
    let (m, n, k) = (job.inputs.m, job.inputs.n, job.inputs.k);
    let sgemm = kernels::Sgemm::for_shape(m, n, k);
    let (grid, block) = sgemm.launch(m, n);
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
    let (start, stop) = (Event::new(ctx)?, Event::new(ctx)?);
    // Warm-up: the first launch pays one-off costs; it also sizes the timed
    // batch for --min-time.
    start.record()?;
    // SAFETY: `kernel` is `sgemm`'s entry point, loaded in `ctx`, whose
    // parameters are (int, int, int, float*, float*, float*): `params`.
    unsafe { cuda::launch(ctx, kernel, grid, block, &mut params)? };
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
        unsafe { cuda::launch(ctx, kernel, grid, block, &mut params)? };
    }
    stop.record()?;
    // The PCIe link at work: launches return before their kernels finish,
    // so the GPU is still running them now. The reading counts as under
    // load only if they were still running after it (`stop` not reached);
    // a batch that ended first leaves the idle reading (telemetry).
    let link = gpu.nvml.as_ref().map(telemetry::pcie_link);
    if !stop.query()? {
        gpu.link_under_load = link;
    }
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
    unsafe { cuda::launch(ctx, kernel, grid, block, &mut params)? };
    ctx.synchronize()?;
    gpu.timing = Some((iterations, time_ms));
    Ok(Done::pass(
        (),
        format!(
            "{iterations} launches of {}, {time_ms:.3} ms each",
            sgemm.entry().to_string_lossy()
        ),
    ))
}

fn download(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let [_, _, c, _, _, rc] = gpu.buffers.as_ref().ok_or_else(|| missing("buffers"))?;
    let len = lengths(gpu.job.inputs)[2];
    let (mut out, mut rounding) = (vec![0f32; len], vec![0f32; len]);
    c.download(&mut out)?;
    rc.download(&mut rounding)?;
    (gpu.result, gpu.rounding) = (out, rounding);
    Ok(Done::pass((), "both products copied back"))
}

fn verify(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let reference: &Reference = gpu.job.reference.wait();
    let v = verify::check(gpu.job.inputs, reference, &gpu.result, &gpu.rounding);
    let outcome = if v.passed {
        Ok(Done::pass((), verify::passed_detail(&v)))
    } else {
        Err(Failed::new(verify::failed_detail(&v)))
    };
    gpu.verification = Some(v);
    outcome
}

/// The tensor-core matmuls (src/probe/tensor.rs).
fn tensor_cores(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    super::tensor::stage(gpu.job, gpu.ctx, iterations_for)
}

fn matmul_of(job: &Job<'_>, iterations: u32, time_ms: f64, verification: Verification) -> Matmul {
    let (m, n, k) = (job.inputs.m, job.inputs.n, job.inputs.k);
    let gflops = crate::cpu::gflops(
        m as usize,
        n as usize,
        k as usize,
        Duration::from_secs_f64(time_ms / 1e3),
    );
    Matmul {
        kernel: kernels::Sgemm::for_shape(m, n, k)
            .entry()
            .to_string_lossy()
            .into_owned(),
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
