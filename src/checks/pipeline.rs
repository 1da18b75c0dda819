//! The stages run on one GPU, in its own thread: an ordered list of small
//! functions over the GPU's state (`Gpu`), each a check in the report.
//!
//! context -> memory -> module -> allocate -> upload -> matmul -> download ->
//! verify -> tensor_cores -> bandwidth. A failed stage fails this device
//! only; the stages after it are recorded as skipped (derived from the
//! list's order), and everything taken so far is released by the owners in
//! `cuda`. A new stage is one function and one entry in `PIPELINE`, plus
//! its report type (the larger ones in a module of their own: tensor.rs,
//! bandwidth.rs).
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::context::{bind_context, NoContext};
use super::gpu::{
    fit_to_deadline, iterations_for, missing, nvml_device, Job, Product, WATCHDOG_LAUNCH_MS,
};
use super::progress::{Done, Failed, Scope};
use crate::cpu::Repeat;
use crate::cuda::{kernels, Buffer, Context, Event, Kernel, Module};
use crate::report::{Matmul, NotRun, NotVerified, ReportCommand, Verification};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::bytes;
use crate::verify::{self, Inputs, Reference};

/// Below this fraction of free memory the GPU is reported busy (a warning).
const BUSY_FREE_FRACTION: f64 = 0.10;

/// A GPU's pipeline: the GPU's job (`gpu::Job`, what every check gets)
/// and which checks the plan runs on it, with what they share.
pub struct Pipeline<'a> {
    pub job: Job<'a>,
    /// The command whose plan this is: a check the plan leaves out says
    /// which command left it out.
    pub command: ReportCommand,
    /// Whether to run the tensor-core check (not in `health`).
    pub tensor_cores: bool,
    /// The tensor-core check's inputs and CPU product, shared by the GPUs.
    pub tensor: &'a std::sync::OnceLock<super::tensor::Prepared>,
    /// `burn`: the sustained run after the other stages.
    pub burn: Option<super::burn::Plan>,
    /// `burn`: where the GPUs wait for each other before their burns.
    pub start_line: Option<&'a super::burn::StartLine>,
    /// Whether this GPU has arrived at the start line.
    pub at_start_line: std::cell::Cell<bool>,
    /// The bandwidth check's buffer size in bytes (`--bandwidth-size`);
    /// `None` skips the check (`health`), and so does 0 (turned off).
    pub bandwidth: Option<u64>,
    /// The memory test after the other checks, before a burn.
    pub memtest: Option<super::memtest::Plan>,
    /// `GpuWork::counters_before`.
    pub counters_before: bool,
}

/// A pipeline's checks read their GPU's job through it.
impl<'a> std::ops::Deref for Pipeline<'a> {
    type Target = Job<'a>;

    fn deref(&self) -> &Job<'a> {
        &self.job
    }
}

/// What one GPU's stages have produced so far, in the context they share.
struct Gpu<'a> {
    job: &'a Pipeline<'a>,
    ctx: &'a Context<'a>,
    /// The GPU as NVML sees it, when NVML is loaded and lists it.
    nvml: Option<telemetry::NvmlDevice<'static>>,
    /// NVML's (free, used) bytes before the context existed.
    before_context: Option<(u64, u64)>,
    /// The compute processes NVML listed before the context existed: every
    /// one is another's.
    others_before_context: Option<u32>,
    /// The PCIe link read while the timed launches ran.
    link_under_load: Option<telemetry::Link>,
    /// NVML's SM clock and reasons while the matmul's timed products ran,
    /// when read before they ended (after the run a GPU clocks down and
    /// reports GpuIdle, which says nothing of the run).
    clocks_under_load: Option<telemetry::AtWork>,
    free: u64,
    /// The SGEMM kernel chosen for the shape, loaded by `module`.
    kernel: Option<(kernels::Sgemm, Kernel<'a>)>,
    /// A, B and C of the exact pass (timed), then of the rounding pass
    /// (src/verify/).
    buffers: Option<[Buffer<'a>; 6]>,
    /// What the timed launches measured.
    timing: Option<Timing>,
    result: Vec<f32>,
    rounding: Vec<f32>,
    verification: Option<Verification>,
}

/// The matmul's measurement.
#[derive(Clone, Copy)]
struct Timing {
    /// Timed products.
    iterations: u32,
    /// Products asked for (`--iterations`, or enough for `--min-time`).
    requested: u32,
    /// Mean time of one product, ms.
    time_ms: f64,
    /// The first launch, outside the timing, ms.
    first_launch_ms: f64,
    /// Launches per product (more than 1 under a kernel watchdog).
    launches_per_product: u32,
    /// Rows of C per launch.
    rows: u32,
    /// The kernel that ran.
    sgemm: kernels::Sgemm,
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
    (Stage::Bandwidth, bandwidth),
];

/// The memory test's stage, after `PIPELINE`.
const MEMTEST: (Stage, StageFn) = (Stage::Memtest, memtest);

/// `burn`'s stage, after `PIPELINE` (and the memory test).
const BURN: (Stage, StageFn) = (Stage::Burn, burn);

/// The stages this job runs after the context, in order.
fn stages(job: &Pipeline<'_>) -> Vec<(Stage, StageFn)> {
    PIPELINE
        .iter()
        .copied()
        // With a burn the memory test runs between its intervals.
        .chain((job.memtest.is_some() && job.burn.is_none()).then_some(MEMTEST))
        .chain(job.burn.is_some().then_some(BURN))
        .collect()
}

/// Runs every stage on one device and records the matmul result.
pub fn probe(job: &Pipeline<'_>) {
    // Where the plan asks (not `health`): the links' state and the
    // counters are read after in any case.
    let measured = job.counters_before;
    // The error counters before any work of this run on the GPU, so that
    // what the run adds to them shows (read again after, with the
    // telemetry).
    let counters = measured
        .then(|| super::gpu::counters_before(job.progress, job.slot, job.nvml))
        .flatten();
    // Before any work of gpuprobe's on the GPU, so that the counters read
    // after it say what the run saw.
    let nvlink = measured
        .then(|| super::gpu::nvlink_before(job.progress, job.slot, job.nvml))
        .flatten();
    let link = run_stages(job);
    // A GPU whose burn never started holds the others back no longer.
    if let (Some(line), false) = (job.start_line, job.at_start_line.get()) {
        line.leave();
    }
    // Also after a failure: NVML may say why (GPU lost, memory errors).
    super::gpu::read_telemetry(
        job.progress,
        job.nvml,
        job.slot,
        link,
        counters,
        nvlink.as_ref(),
    );
}

/// The stages from `at` in `PIPELINE` on, recorded as skipped for
/// `reason`; with a burn, its interleaved memory test too.
fn skip_after(job: &Pipeline<'_>, at: usize, reason: NotRun, why: &str) {
    let interleaved = (job.memtest.is_some() && job.burn.is_some()).then_some(Stage::Memtest);
    for stage in stages(job)[at..]
        .iter()
        .map(|(stage, _)| *stage)
        .chain(interleaved)
    {
        job.progress.skip(
            Scope::Device(job.slot),
            stage,
            reason,
            format!("not run: {why}"),
        );
    }
}

/// The primary context, or `None` with the context check recorded and the
/// stages after it skipped.
fn context<'d>(
    job: &Pipeline<'d>,
    nvml: Option<&telemetry::NvmlDevice<'_>>,
) -> Option<Context<'d>> {
    let (reason, why) = match bind_context(job.progress, job.slot, job.driver, job.device, nvml) {
        Ok(ctx) => return Some(ctx),
        Err(NoContext::Refused(why)) => (
            match why {
                NotVerified::BusyComputeMode | NotVerified::BusyMemory => NotRun::Busy,
                NotVerified::MemoryHeldWithoutProcess => NotRun::MemoryHeld,
            },
            "the GPU admits no context of this process (compute not verified)".to_string(),
        ),
        Err(NoContext::Failed) => (NotRun::EarlierFailure, format!("{} failed", Stage::Context)),
    };
    skip_after(job, 0, reason, &why);
    None
}

/// The stages; returns the PCIe link as read under load, if it was.
fn run_stages(job: &Pipeline<'_>) -> Option<telemetry::Link> {
    let scope = Scope::Device(job.slot);
    let nvml = nvml_device(job.progress, job.slot, job.nvml);
    // Before the context exists, so that its cost shows (`module`).
    // The device's own memory: a MIG device's, not its GPU's.
    let before_context = nvml
        .as_ref()
        .and_then(telemetry::NvmlDevice::own)
        .and_then(telemetry::memory);
    let others_before_context = nvml
        .as_ref()
        .and_then(telemetry::NvmlDevice::own)
        .and_then(|d| telemetry::compute_processes(d).ok())
        .map(|p| p.count);
    // The context owns everything the later stages make, so it is made
    // first, outside their state.
    let ctx = context(job, nvml.as_ref())?;
    let mut gpu = Gpu {
        job,
        ctx: &ctx,
        nvml,
        before_context,
        others_before_context,
        link_under_load: None,
        clocks_under_load: None,
        free: 0,
        kernel: None,
        buffers: None,
        timing: None,
        result: Vec::new(),
        rounding: Vec::new(),
        verification: None,
    };
    for (at, (stage, run)) in stages(job).iter().enumerate() {
        if job
            .progress
            .stage(scope, *stage, || run(&mut gpu))
            .is_none()
        {
            skip_after(
                job,
                at + 1,
                NotRun::EarlierFailure,
                &format!("{stage} failed"),
            );
            break;
        }
    }
    // A verification that failed still reports the measured speed and the
    // wrong elements.
    if let (Some(timing), Some(v)) = (gpu.timing, gpu.verification.take()) {
        let matmul = matmul_of(job, timing, v, gpu.clocks_under_load.take());
        job.progress
            .update(|r| r.devices[job.slot].matmul = Some(matmul));
    }
    gpu.link_under_load
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
    // The JIT's cost: a fresh container has an empty JIT cache, so every
    // start compiles the PTX here (docs/gpu-validation.md measures it).
    let started = Instant::now();
    gpu.kernel = Some((
        sgemm,
        Module::load(gpu.ctx, kernels::MATMUL_PTX)?.kernel(sgemm.entry())?,
    ));
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    gpu.job
        .progress
        .update(|r| r.devices[gpu.job.slot].module_load_ms = Some(load_ms));
    let found = format!(
        "embedded PTX JIT-compiled in {load_ms:.1} ms; {} found",
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

#[allow(
    clippy::too_many_lines,
    reason = "the measurement in the order it happens on the GPU: first launch, watchdog sizing, deadline fitting, timed launches with the reading under load; each step feeds the next"
)]
fn matmul(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let (ctx, job) = (gpu.ctx, gpu.job);
    let (sgemm, kernel) = gpu.kernel.as_ref().ok_or_else(|| missing("kernel"))?;
    let sgemm = *sgemm;
    let [a, b, c, ra, rb, rc] = gpu.buffers.as_ref().ok_or_else(|| missing("buffers"))?;
    let shape = (job.inputs.m, job.inputs.n, job.inputs.k);
    let exact = Product {
        a,
        b,
        c,
        shape,
        sgemm,
    };
    // A run-time limit on kernels (a display GPU under Windows WDDM, whose
    // OS resets a kernel running past ~2 s: TDR, CUDA_ERROR_LAUNCH_TIMEOUT
    // 702) is the documented CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT = 1
    // (CUDA driver API, CUdevice_attribute).
    let watchdog = job
        .driver
        .device_attribute(job.device, Attr::CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT)?
        == 1;
    let (start, stop) = (Event::new(ctx)?, Event::new(ctx)?);
    let timed = |rows: u32| -> Result<f64, Failed> {
        start.record()?;
        exact.launch(ctx, kernel, rows)?;
        stop.record()?;
        stop.synchronize()?;
        Ok(start.elapsed_ms(&stop)?)
    };
    // The first launch pays what is paid once: with lazy loading (the
    // default from CUDA 12.2, CUDA_MODULE_LOADING=LAZY) the module is
    // loaded into the GPU here, not in cuModuleLoadData. The second sizes
    // everything after it. Under a kernel watchdog both are one block of
    // `TILE_ROWS` rows, so that not even they risk the reset.
    let probe_rows = if watchdog {
        TILE_ROWS.min(shape.0)
    } else {
        shape.0
    };
    let first_ms = timed(probe_rows)?;
    let probe_ms = timed(probe_rows)?;
    let per_row_ms = probe_ms / f64::from(probe_rows.max(1));
    let rows = if watchdog {
        rows_per_launch(shape.0, per_row_ms)
    } else {
        shape.0
    };
    let product_ms = per_row_ms * f64::from(shape.0);
    let requested = match job.repeat {
        Repeat::Times(t) => t.max(1),
        Repeat::AtLeast(d) => iterations_for(d, product_ms),
    };
    let budget_ms = job
        .deadline
        .map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64() * 1e3 / 2.0);
    let iterations = fit_to_deadline(requested, product_ms, budget_ms).map_err(|budget| {
        Failed::new(format!(
            "not run: one {}x{}x{} product takes about {product_ms:.0} ms on this GPU (from its \
             first launches), and half of what is left before the deadline is {budget:.0} ms; \
             use a smaller --size or a longer --timeout",
            shape.0, shape.1, shape.2
        ))
        .not_run(NotRun::OutOfTime)
    })?;
    // The PCIe link, the SM clock and its reasons at work: read while the
    // products run, never after them, when a GPU clocks down, reports
    // GpuIdle and may train its link down (nvml.h; nvidia-smi(1)).
    let expected =
        Duration::try_from_secs_f64(product_ms * f64::from(iterations) / 1e3).unwrap_or_default();
    let read = gpu
        .nvml
        .as_ref()
        .map(|d| move || telemetry::at_work(d.gpu()));
    let polled = super::gpu::poll_batch(
        &stop,
        expected,
        read.as_ref()
            .map(|r| r as &(dyn Fn() -> telemetry::AtWork + Sync)),
        |begun| {
            start.record()?;
            for _ in 0..iterations {
                exact.launch(ctx, kernel, rows)?;
                begun();
            }
            Ok(stop.record()?)
        },
    )?;
    // The link judged only from readings taken once it could ramp up; a
    // batch too short for that leaves the idle reading (telemetry).
    gpu.link_under_load = telemetry::Link::at_work(polled.settled().map(|r| &r.link));
    let link_note = gpu
        .nvml
        .as_ref()
        .map(|_| link_note(gpu.link_under_load.as_ref(), polled.settled().len()));
    stop.synchronize()?;
    let time_ms = start.elapsed_ms(&stop)? / f64::from(iterations);
    // The rounding pass's product, once, untimed.
    Product {
        a: ra,
        b: rb,
        c: rc,
        shape,
        sgemm,
    }
    .launch(ctx, kernel, rows)?;
    ctx.synchronize()?;
    let launches = shape.0.div_ceil(rows.max(1));
    gpu.timing = Some(Timing {
        iterations,
        requested,
        time_ms,
        first_launch_ms: first_ms,
        launches_per_product: launches,
        rows,
        sgemm,
    });
    // The clocks from the last reading at work; from the first when the
    // batch was too short to settle (clocks drop only after the GPU idles,
    // and the warm-up launches ran just before).
    gpu.clocks_under_load = polled.settled().last().or(polled.first()).cloned();
    let mut detail = format!(
        "{iterations} products by {}, {time_ms:.3} ms each; first launch {first_ms:.3} ms, untimed",
        sgemm.entry().to_string_lossy()
    );
    if watchdog {
        let _ = write!(
            detail,
            "; this GPU has a kernel run-time limit, so each product is {launches} launch(es) of \
             at most {rows} rows"
        );
    }
    if iterations < requested {
        let _ = write!(
            detail,
            "; {requested} asked for, {iterations} fit in half of what was left before the deadline"
        );
    }
    if let Some(note) = link_note {
        let _ = write!(detail, "; {note}");
    }
    Ok(Done::pass((), detail))
}

/// What the matmul's readings of the PCIe link came to, for its detail.
fn link_note(link: Option<&telemetry::Link>, readings: usize) -> String {
    let ramp = super::gpu::LINK_RAMP.as_millis();
    match link {
        Some(l) => {
            let show = |r: &crate::report::Reading<u32>| {
                r.value()
                    .map_or_else(|| "?".to_string(), ToString::to_string)
            };
            format!(
                "PCIe gen {} x{} at work ({readings} reading(s) from {ramp} ms into the products)",
                show(&l.generation),
                show(&l.width)
            )
        }
        None => format!(
            "PCIe link not read at work: the timed products ended within the {ramp} ms a link \
             may take to train up"
        ),
    }
}

/// Rows of C in the watchdog's first launches: one tile of the kernel.
const TILE_ROWS: u32 = 16;

/// Rows of C per launch so that one takes about `WATCHDOG_LAUNCH_MS`:
/// whole tiles, at least one, at most `m`.
fn rows_per_launch(m: u32, per_row_ms: f64) -> u32 {
    if per_row_ms <= 0.0 {
        return m.max(1);
    }
    let rows = (WATCHDOG_LAUNCH_MS / per_row_ms).floor().min(f64::from(m)) as u32;
    (rows / TILE_ROWS * TILE_ROWS).max(TILE_ROWS).min(m.max(1))
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

/// A check the command's plan leaves out, skipped with the command named.
fn left_out(command: ReportCommand) -> Done<()> {
    Done::skip(
        (),
        NotRun::NotPlanned,
        format!("not run: {} checks the FP32 product only", command.as_str()),
        None,
    )
}

/// The tensor-core matmuls (src/checks/tensor.rs).
fn tensor_cores(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    if !gpu.job.tensor_cores {
        return Ok(left_out(gpu.job.command));
    }
    // As many timed products as the FP32 matmul made: it has already fitted
    // its count to --iterations or --min-time and to the deadline.
    let repeat = gpu
        .timing
        .map_or(gpu.job.repeat, |t| Repeat::Times(t.iterations));
    super::tensor::stage(gpu.job, gpu.job.tensor, gpu.ctx, repeat, iterations_for)
}

/// `burn`: the product back to back for the duration (src/checks/burn/).
fn burn(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let job = gpu.job;
    let plan = job.burn.ok_or_else(|| missing("burn plan"))?;
    let (sgemm, kernel) = gpu.kernel.as_ref().ok_or_else(|| missing("kernel"))?;
    let [a, b, c, ..] = gpu.buffers.as_ref().ok_or_else(|| missing("buffers"))?;
    let timing = gpu.timing.ok_or_else(|| missing("matmul timing"))?;
    let product = Product {
        a,
        b,
        c,
        shape: (job.inputs.m, job.inputs.n, job.inputs.k),
        sgemm: *sgemm,
    };
    let workload = super::burn::Workload {
        ctx: gpu.ctx,
        kernel,
        product: &product,
        rows: timing.rows,
        product_ms: timing.time_ms,
        golden: &gpu.result,
        nvml: gpu.nvml.as_ref().map(telemetry::NvmlDevice::gpu),
        kernel_name: sgemm.entry().to_string_lossy().into_owned(),
        sms: job
            .progress
            .update(|r| r.devices[job.slot].multiprocessors)
            .unwrap_or(1),
    };
    if let Some(line) = job.start_line {
        job.at_start_line.set(true);
        line.arrive(job.deadline);
    }
    let publish = |so_far| {
        job.progress
            .update(|r| r.devices[job.slot].burn = Some(so_far));
    };
    let mut memtest = super::memtest::Interleaved::new(job.memtest, gpu.others_before_context);
    let ctx = gpu.ctx;
    let (report, status, detail) =
        super::burn::run(&workload, &plan, job.deadline, &publish, &mut || {
            memtest.step(job, ctx);
        });
    memtest.finish(job, status == crate::report::CheckStatus::Fail);
    job.progress
        .update(|r| r.devices[job.slot].burn = Some(report));
    match status {
        crate::report::CheckStatus::Fail => Err(Failed::new(detail)),
        crate::report::CheckStatus::Warn => Ok(Done::warn((), detail)),
        _ => Ok(Done::pass((), detail)),
    }
}

/// The memory test (src/checks/memtest/), where the plan runs it.
fn memtest(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let plan = gpu.job.memtest.ok_or_else(|| missing("memtest plan"))?;
    super::memtest::stage(gpu.job, &plan, gpu.ctx, gpu.others_before_context)
}

/// Device memory and host-link bandwidth (src/checks/bandwidth.rs); a
/// reading of the PCIe link under load there stands in for the matmul's
/// when that had none.
fn bandwidth(gpu: &mut Gpu<'_>) -> Result<Done<()>, Failed> {
    let Some(requested) = gpu.job.bandwidth else {
        return Ok(left_out(gpu.job.command));
    };
    super::bandwidth::stage(
        gpu.job,
        requested,
        gpu.ctx,
        gpu.nvml.as_ref().map(telemetry::NvmlDevice::gpu),
        &mut gpu.link_under_load,
    )
}

fn matmul_of(
    job: &Pipeline<'_>,
    timing: Timing,
    verification: Verification,
    clocks: Option<telemetry::AtWork>,
) -> Matmul {
    let (m, n, k) = (job.inputs.m, job.inputs.n, job.inputs.k);
    let Timing {
        iterations,
        requested,
        time_ms,
        first_launch_ms,
        launches_per_product,
        sgemm,
        ..
    } = timing;
    let (grid, _) = sgemm.launch(m, n);
    let blocks = grid.iter().map(|g| u64::from(*g)).product();
    // A time that is no measurement (zero, or a driver's NaN) gives no
    // throughput rather than an infinite one or a panic.
    let gflops = Duration::try_from_secs_f64(time_ms / 1e3)
        .ok()
        .filter(|t| !t.is_zero())
        .map_or(0.0, |t| {
            crate::cpu::gflops(m as usize, n as usize, k as usize, t)
        });
    Matmul {
        kernel: sgemm.entry().to_string_lossy().into_owned(),
        m,
        n,
        k,
        iterations,
        iterations_requested: Some(requested),
        first_launch_ms: Some(first_launch_ms),
        launches_per_product: Some(launches_per_product),
        gpu_time_ms: time_ms,
        gpu_gflops: gflops,
        speedup_vs_cpu: None,
        expected_gflops: None,
        efficiency: None,
        verification,
        blocks: Some(blocks),
        sm_clock_mhz_under_load: clocks.as_ref().and_then(|c| c.sm_clock_mhz),
        power_draw_watts_under_load: clocks.as_ref().and_then(|c| c.power_draw_watts),
        throttle_reasons_under_load: clocks.and_then(|c| c.throttle_reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_launches_stay_near_a_tenth_of_tdr_in_whole_tiles() {
        // 1 ms a row: 200 rows fit, 192 in whole tiles of 16.
        assert_eq!(rows_per_launch(4096, 1.0), 192);
        // Fast: the whole product in one launch.
        assert_eq!(rows_per_launch(256, 0.001), 256);
        // Slow: one tile, never less.
        assert_eq!(rows_per_launch(4096, 500.0), TILE_ROWS);
        assert_eq!(rows_per_launch(8, 500.0), 8);
    }
}
