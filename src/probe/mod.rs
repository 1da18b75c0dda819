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

use std::time::{Duration, Instant, SystemTime};

use crate::checks::gpu::read_telemetry;
use crate::checks::progress::Progress;
use crate::checks::{bench, burn, gpus};
pub use crate::checks::{CpuWork, GpuWork};
use crate::cpu::{self, Repeat};
use crate::cuda;
use crate::report::{
    CheckName, DeviceStatus, DriverInfo, Report, ReportCommand, Settings, Verdict, SCHEMA_VERSION,
};
use crate::telemetry;
use ending::NoGpu;
use machine::{identify, initialise, load_driver, load_nvml, select};

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
    /// Watch NVML's events (critical Xids, ECC errors) while the probe
    /// runs (`crate::events`): the probe, burn, bench and watch do.
    pub events: bool,
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

    /// Whether this plan runs the check `name` at all (at run time it may
    /// still not run: a busy GPU, the deadline, `--bandwidth-size 0`):
    /// what `--require-checks` may name.
    #[must_use]
    pub fn may_run(&self, name: CheckName) -> bool {
        use crate::stage::Stage as S;
        let Some(stage) = name.stage() else {
            return self.events;
        };
        match &self.work {
            Work::List => false,
            Work::NvmlOnly => matches!(stage, S::Nvml | S::Telemetry),
            Work::Sweep { .. } => matches!(
                stage,
                S::Nvml | S::Context | S::Cublas | S::BenchCpu | S::Bench | S::Telemetry
            ),
            Work::Gpus(w) => match stage {
                S::Nvml | S::Context | S::Matmul | S::Verify | S::Telemetry => true,
                S::CpuReference => w.cpu != CpuWork::ReferenceOnly,
                S::CpuBaseline => w.cpu == CpuWork::Timed { baseline: true },
                S::TensorCores => w.tensor_cores,
                // `--bandwidth-size 0` is planned and turned off: the
                // check is then recorded as not run, and fails a run that
                // requires it.
                S::Bandwidth => w.bandwidth.is_some(),
                S::Memtest => w.memtest.is_some(),
                S::Burn => w.burn.is_some(),
                // With one GPU selected there is no peer: not reached.
                S::Peer => w.peers.is_some(),
                _ => false,
            },
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
        events: None,
        required_checks: Vec::new(),
        peers: None,
        watch: None,
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
    progress.update(|r| {
        let gpus: Vec<(u32, String)> = r
            .devices
            .iter()
            .filter_map(|d| Some((d.index, d.pci_bus_id.clone()?)))
            .collect();
        r.environment = environment;
        r.environment.iommu = crate::environment::iommu(&crate::environment::root(), &gpus);
    });
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
            let gpus = gpus::Gpus {
                progress,
                driver: &driver,
                nvml,
                deadline,
                probed: probed(&handles, &selected),
                selected: &selected,
                command: options.command,
                size: options.size,
                repeat: options.repeat,
                seed: options.seed,
            };
            gpus::run(&gpus, work)
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
            read_telemetry(progress, Some(nvml), slot, None, None, None);
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
    for &slot in selected {
        // A GPU --no-context makes no context on: the one stage it has,
        // and NVML's readings.
        progress.skip(
            crate::checks::progress::Scope::Device(slot),
            crate::stage::Stage::Context,
            crate::report::NotRun::NotPlanned,
            "not made: --no-context",
        );
        read_telemetry(progress, nvml, slot, None, None, None);
    }
    progress.update(|r| {
        for (slot, d) in r.devices.iter_mut().enumerate() {
            if !selected.contains(&slot) {
                d.status = DeviceStatus::Skipped;
            }
        }
    });
}
