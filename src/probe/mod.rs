//! The probe: NVML -> driver -> cuInit -> devices -> per-device stages in
//! parallel with the CPU reference -> environment, all under a deadline.
//! machine.rs holds the machine-wide stages, device.rs a GPU's. The probe
//! gathers facts and says how it ended (`Ending`); `crate::judge` concludes.
//!
//! The probe runs on a worker thread and writes into a shared `Progress`;
//! the calling thread is the watchdog. A driver call that never returns
//! cannot hang gpuprobe: at the deadline the report as it stands is returned
//! with the stuck stage of each device marked `timeout`.
pub mod ending;
mod machine;
pub mod session;

pub use ending::Ending;
pub use session::Session;

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::checks::progress::{Done, Failed, Progress, Scope};
use crate::checks::{bench, burn, gpu, pipeline, SAMPLE_SALT};
use crate::cpu::{self, Repeat};
use crate::cuda;
use crate::report::{
    DeviceStatus, DriverInfo, Report, ReportCommand, Settings, Verdict, SCHEMA_VERSION,
};
use crate::stage::Stage;
use crate::telemetry;
use crate::verify::{Inputs, Reference};
use ending::NoGpu;
use gpu::read_telemetry;
use machine::{
    cpu_baseline, cpu_reference, cpu_reference_fits, identify, initialise, load_driver, load_nvml,
    select,
};

/// Which devices to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    All,
    List(Vec<Selector>),
}

/// One entry of `--devices`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// CUDA ordinal in this process.
    Index(u32),
    /// A UUID or a unique prefix of one ("GPU-5b3a", "MIG-8c2f").
    Uuid(String),
    /// A MIG instance in the form of drivers before 470,
    /// `MIG-GPU-<gpu uuid>/<gpu instance>/<compute instance>` (NVIDIA MIG
    /// User Guide, "CUDA Device Enumeration").
    MigInstance {
        /// The parent GPU's UUID, `GPU-…`.
        gpu: String,
        gpu_instance: u32,
        compute_instance: u32,
    },
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selector::Index(i) => write!(f, "{i}"),
            Selector::Uuid(u) => f.write_str(u),
            Selector::MigInstance {
                gpu,
                gpu_instance,
                compute_instance,
            } => write!(f, "MIG-{gpu}/{gpu_instance}/{compute_instance}"),
        }
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("all"),
            Selection::List(list) => {
                let parts: Vec<String> = list.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

/// What a command asks the probe to do, built once by the command from
/// its own arguments (src/app.rs); nothing below asks which command runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The command the report names.
    pub command: ReportCommand,
    /// The work on the GPUs.
    pub work: Work,
    /// The matmul's size (n x n x n).
    pub size: u32,
    pub repeat: Repeat,
    pub devices: Selection,
    pub seed: u64,
    pub timeout: Duration,
}

/// The work a command does once the driver sees its GPUs.
#[derive(Debug, Clone)]
pub enum Work {
    /// `list`: NVML's readings of every device, no stage on one.
    List,
    /// `health --no-context`: NVML's readings of the selected devices, no
    /// context.
    NvmlOnly,
    /// `bench`: every kernel at each size, ascending.
    Sweep { sizes: Vec<u32> },
    /// Each selected GPU's pipeline beside the CPU reference.
    Gpus(GpuWork),
}

/// Which checks each GPU's pipeline runs, and what the CPU does beside it.
#[derive(Debug, Clone, Copy)]
pub struct GpuWork {
    /// The tensor-core check (not in `health`, a liveness check, nor in
    /// `burn`, a sustained FP32 load).
    pub tensor_cores: bool,
    /// The bandwidth check's buffer size in bytes (`--bandwidth-size`; 0:
    /// recorded as skipped), `None` where the command has no such check.
    pub bandwidth: Option<u64>,
    /// `burn`: the sustained run after the other checks.
    pub burn: Option<burn::Plan>,
    pub cpu: CpuWork,
}

/// What the CPU does while the GPUs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuWork {
    /// Only the product to check the readback against, untimed (`health`).
    ReferenceOnly,
    /// The timed CPU reference; `baseline`: and the CPU baseline after the
    /// GPUs are done (not in `burn`, whose subject is the GPU under load).
    Timed { baseline: bool },
}

impl Options {
    /// The bandwidth check's buffer size in bytes where this command runs
    /// the check, `None` where it has none.
    #[must_use]
    pub fn bandwidth(&self) -> Option<u64> {
        match &self.work {
            Work::Gpus(w) => w.bandwidth,
            _ => None,
        }
    }

    /// `burn`'s plan, where the command burns.
    #[must_use]
    pub fn burn(&self) -> Option<burn::Plan> {
        match &self.work {
            Work::Gpus(w) => w.burn,
            _ => None,
        }
    }
}

/// A probe's facts and how it ended, for the judge to conclude.
#[derive(Debug, Clone)]
pub struct Probed {
    pub report: Report,
    pub ending: Ending,
}

pub(crate) fn empty_report(options: &Options) -> Report {
    let (iterations, min_time_ms) = match options.repeat {
        Repeat::Times(t) => (Some(t), None),
        Repeat::AtLeast(d) => (None, Some(d.as_secs_f64() * 1e3)),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        gpuprobe_version: env!("CARGO_PKG_VERSION").into(),
        command: options.command,
        started_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        duration_ms: 0.0,
        verdict: Verdict::Failed,
        exit_code: crate::exit_code::FAILED,
        summary: String::new(),
        settings: Settings {
            size: options.size,
            iterations,
            min_time_ms,
            devices: options.devices.to_string(),
            seed: options.seed,
            timeout_ms: options.timeout.as_secs_f64() * 1e3,
            no_context: matches!(options.work, Work::NvmlOnly),
            bandwidth_bytes: options.bandwidth(),
            burn: options.burn().map(|p| crate::report::BurnSettings {
                duration_ms: p.duration.as_secs_f64() * 1e3,
                sample_ms: p.sample.as_secs_f64() * 1e3,
                verify_ms: p.verify.as_secs_f64() * 1e3,
            }),
        },
        checks: Vec::new(),
        driver: DriverInfo::default(),
        devices: Vec::new(),
        cpu: None,
        nvml: crate::report::NvmlInfo {
            status: crate::report::NvmlStatus::NotChecked,
            ..Default::default()
        },
        environment: crate::report::Environment::default(),
        diagnoses: Vec::new(),
        bench: None,
    }
}

fn finish(mut report: Report, started: Instant, ending: Ending) -> Probed {
    report.duration_ms = started.elapsed().as_secs_f64() * 1e3;
    Probed { report, ending }
}

/// The probe body, on the worker thread: NVML first (device threads read
/// telemetry right after their matmul; health uses it too, since memory
/// errors and a lost GPU make a GPU unusable however its launch went), then
/// the CUDA stages, then the environment.
fn probe(progress: &Progress, options: &Options, deadline: Option<Instant>) -> Ending {
    crate::environment::note_nodes_before_driver(&crate::environment::root());
    let nvml = load_nvml(progress);
    let ending = match probe_cuda(progress, options, nvml, deadline) {
        Ok(measured) => Ending::Finished { measured },
        Err(cause) => Ending::NoGpu(cause),
    };
    let (cuda, nvml) =
        progress.update(|r| (r.driver.library_path.clone(), r.nvml.library_path.clone()));
    let environment = crate::environment::gather(
        &crate::environment::root(),
        cuda.as_deref(),
        nvml.as_deref(),
    );
    progress.update(|r| r.environment = environment);
    ending
}

/// The CUDA stages: the driver up to the devices, then either the listing
/// or the devices' pipelines beside the CPU reference, then the peaks.
/// Whether the devices' workloads ran, or why no GPU could be used.
fn probe_cuda(
    progress: &Progress,
    options: &Options,
    nvml: Option<&'static telemetry::Loaded>,
    deadline: Option<Instant>,
) -> Result<bool, NoGpu> {
    let driver = load_driver(progress)?;
    let count = initialise(progress, &driver)?;
    let handles: Vec<Option<cuda::CuDevice>> =
        (0..count).map(|i| identify(&driver, progress, i)).collect();
    let selected = select(progress, &options.devices);
    let measured = match &options.work {
        Work::List => {
            list_only(progress, nvml, handles.len());
            false
        }
        Work::NvmlOnly => {
            nvml_only(progress, nvml, &selected);
            false
        }
        Work::Sweep { sizes } => {
            let probed = probed(&handles, &selected);
            let cpus = cpu::available(&crate::environment::root());
            let sweep = bench::Sweep {
                sizes,
                seed: options.seed,
                repeat: options.repeat,
            };
            bench::run(progress, &sweep, &driver, &probed, nvml, cpus, deadline);
            false
        }
        Work::Gpus(work) => {
            let probed = probed(&handles, &selected);
            let cpus = cpu::available(&crate::environment::root());
            let fits = host_memory(progress, options.size, probed.len())
                && (work.cpu == CpuWork::ReferenceOnly
                    || cpu_reference_fits(progress, options.size, cpus.count, deadline));
            if fits {
                run_devices(
                    progress, options, work, &driver, &probed, nvml, cpus, deadline,
                );
                compare_with_cpu(progress, &selected);
            } else {
                progress.update(|r| {
                    for d in &mut r.devices {
                        d.status = DeviceStatus::Skipped;
                    }
                });
            }
            fits
        }
    };
    // Every mode's devices carry their peaks (`list` and `--no-context`
    // too), for the requirements, which judge the efficiency.
    progress.update(crate::peak::fill);
    Ok(measured)
}

/// The selected GPUs the driver identified: (slot, handle).
fn probed(handles: &[Option<cuda::CuDevice>], selected: &[usize]) -> Vec<(usize, cuda::CuDevice)> {
    handles
        .iter()
        .enumerate()
        .filter_map(|(slot, h)| h.filter(|_| selected.contains(&slot)).map(|h| (slot, h)))
        .collect()
}

/// `list`: NVML's readings of every device, and no stage that runs on one.
fn list_only(progress: &Progress, nvml: Option<&'static telemetry::Loaded>, devices: usize) {
    if let Some(nvml) = nvml {
        for slot in 0..devices {
            read_telemetry(progress, nvml, slot, None);
        }
    }
    progress.update(|r| {
        for d in &mut r.devices {
            if d.status != DeviceStatus::Fail {
                d.status = DeviceStatus::Skipped;
            }
        }
    });
}

/// `health --no-context`: NVML's readings of the selected devices, and no
/// stage that needs a context; the diagnoses judge them (a lost GPU, memory
/// errors), the others are skipped.
fn nvml_only(progress: &Progress, nvml: Option<&'static telemetry::Loaded>, selected: &[usize]) {
    if let Some(nvml) = nvml {
        for &slot in selected {
            read_telemetry(progress, nvml, slot, None);
        }
    }
    progress.update(|r| {
        for (slot, d) in r.devices.iter_mut().enumerate() {
            if !selected.contains(&slot) {
                d.status = DeviceStatus::Skipped;
            }
        }
    });
}

/// Whether the matmul's host buffers fit in what this process may take:
/// A and B of both verification passes, the CPU product and its scratch
/// copy, and two results per GPU.
fn host_memory(progress: &Progress, n: u32, gpus: usize) -> bool {
    let need = (6 + 2 * gpus as u64) * u64::from(n) * u64::from(n) * 4;
    progress
        .stage(Scope::Machine, Stage::HostMemory, || {
            let available = crate::environment::available_memory(&crate::environment::root());
            let detail = format!(
                "the {n}x{n}x{n} matmul needs {} of host memory, {} available",
                crate::units::bytes(need),
                available.map_or("unknown".into(), crate::units::bytes)
            );
            match available {
                Some(a) if need > a => Err(Failed::new(format!("{detail}; try a smaller --size"))),
                _ => Ok(Done::pass((), detail)),
            }
        })
        .is_some()
}

/// Each selected GPU's pipeline on a thread of its own, beside the CPU
/// product they are checked against; then, with every GPU thread done, the
/// CPU baseline timed on its own (GPU threads waiting on their events
/// would take cores from it: src/cpu.rs).
#[allow(
    clippy::too_many_arguments,
    reason = "the machine-wide state a workload needs: the plan, the driver, NVML, the CPUs and the deadline"
)]
fn run_devices(
    progress: &Progress,
    options: &Options,
    work: &GpuWork,
    driver: &cuda::Driver,
    probed: &[(usize, cuda::CuDevice)],
    nvml: Option<&'static telemetry::Loaded>,
    cpus: cpu::Cpus,
    deadline: Option<Instant>,
) {
    let n = options.size;
    let inputs = Inputs::generate(n, n, n, options.seed);
    let reference = OnceLock::new();
    let tensor = OnceLock::new();
    let host_link = std::sync::Mutex::new(());
    let start_line = burn::StartLine::new(probed.len());
    let product_time = std::thread::scope(|scope| {
        for &(slot, device) in probed {
            let job = pipeline::Pipeline {
                command: options.command,
                job: gpu::Job {
                    driver,
                    progress,
                    slot,
                    device,
                    inputs: &inputs,
                    reference: &reference,
                    repeat: options.repeat,
                    nvml,
                    deadline,
                    host_link: &host_link,
                },
                tensor_cores: work.tensor_cores,
                tensor: &tensor,
                burn: work.burn,
                start_line: work.burn.is_some().then_some(&start_line),
                at_start_line: std::cell::Cell::new(false),
                bandwidth: work.bandwidth,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("gpu{slot}"))
                .spawn_scoped(scope, move || pipeline::probe(&job));
            if let Err(e) = spawned {
                // No thread, no burn: the others need not wait for it.
                start_line.leave();
                progress.skip(
                    Scope::Device(slot),
                    Stage::Context,
                    format!("could not start a thread: {e}"),
                );
            }
        }
        cpu_product(progress, work.cpu, &inputs, cpus, &reference)
    });
    if let Some(estimate) = product_time.filter(|_| work.cpu == CpuWork::Timed { baseline: true }) {
        cpu_baseline(progress, &inputs, options.repeat, cpus, estimate, deadline);
    }
}

/// The CPU's product the GPUs are checked against, published in
/// `reference`: untimed (`CpuWork::ReferenceOnly`), or timed, returning
/// how long it took.
fn cpu_product(
    progress: &Progress,
    work: CpuWork,
    inputs: &Inputs,
    cpus: cpu::Cpus,
    reference: &OnceLock<Reference>,
) -> Option<Duration> {
    if work != CpuWork::ReferenceOnly {
        return cpu_reference(progress, inputs, cpus.count, reference);
    }
    // Only the product, to check the readback against; no timing.
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let mut product = vec![0f32; m * n];
    cpu::naive_sgemm(m, n, k, &inputs.a, &inputs.b, &mut product);
    // The only publication in this run, so `set` cannot find it taken.
    let _ = reference.set(Reference::new(inputs, product, inputs.seed ^ SAMPLE_SALT));
    None
}

/// Each GPU's speed over the CPU's; GPUs not selected are skipped.
fn compare_with_cpu(progress: &Progress, selected: &[usize]) {
    progress.update(|r| {
        let cpu_gflops = r.cpu.as_ref().map(|c| c.gflops).filter(|g| *g > 0.0);
        for d in &mut r.devices {
            if let (Some(m), Some(cpu)) = (d.matmul.as_mut(), cpu_gflops) {
                m.speedup_vs_cpu = Some(m.gpu_gflops / cpu);
            }
            if !selected.contains(&(d.index as usize)) {
                d.status = DeviceStatus::Skipped;
            }
        }
    });
}
