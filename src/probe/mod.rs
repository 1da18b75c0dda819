//! The probe: NVML -> driver -> cuInit -> devices -> per-device stages in
//! parallel with the CPU reference -> environment -> verdict and diagnoses,
//! all under a deadline. machine.rs holds the machine-wide stages, device.rs
//! a GPU's, verdict.rs how checks become a verdict.
//!
//! The probe runs on a worker thread and writes into a shared `Progress`;
//! the calling thread is the watchdog. A driver call that never returns
//! cannot hang gpuprobe: at the deadline the report as it stands is returned
//! with the stuck stage of each device marked `timeout`.
mod device;
mod machine;
pub mod progress;
mod verdict;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::cpu::{self, Repeat};
use crate::cuda;
use crate::report::{DeviceStatus, DriverInfo, Report, Settings, Verdict, SCHEMA_VERSION};
use crate::requirements::Requirements;
use crate::telemetry;
use crate::verify::{Inputs, Reference};
use machine::{
    cpu_reference, cuda_version, identify, load_driver, load_nvml, read_telemetry, select,
};
use progress::{Done, Failed, Progress, Scope};
use verdict::{decide, set_outcome, timed_out};

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Everything: enumerate, then the matmul and checks on each device.
    Probe,
    /// Enumerate devices only; no context, no kernel.
    List,
    /// The liveness check: a tiny launch and readback per device, verified,
    /// with no CPU benchmark and no large allocation.
    Health,
}

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
    /// A UUID or a unique prefix of one ("GPU-5b3a").
    Uuid(String),
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Selection::All => f.write_str("all"),
            Selection::List(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|s| match s {
                        Selector::Index(i) => i.to_string(),
                        Selector::Uuid(u) => u.clone(),
                    })
                    .collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub size: u32,
    pub repeat: Repeat,
    pub devices: Selection,
    pub seed: u64,
    pub timeout: Duration,
    pub requirements: Requirements,
    /// A degraded verdict counts as failed.
    pub strict: bool,
}

/// A value one thread publishes and others wait for.
pub struct Shared<T> {
    value: Mutex<Option<Arc<T>>>,
    ready: Condvar,
}

impl<T> Shared<T> {
    fn new() -> Self {
        Shared {
            value: Mutex::new(None),
            ready: Condvar::new(),
        }
    }

    fn publish(&self, value: T) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(value));
        self.ready.notify_all();
    }

    fn wait(&self) -> Arc<T> {
        let mut guard = self.value.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(v) = guard.as_ref() {
                return Arc::clone(v);
            }
            guard = self
                .ready
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Keeps the sample's seed apart from the inputs' seed.
const SAMPLE_SALT: u64 = 0x5EED_5A4D_1E5E_ED00;

/// How often the watchdog wakes to check the deadline and report progress.
const TICK: Duration = Duration::from_millis(100);

/// Runs the probe under `options.timeout`. `on_tick` is called from the
/// waiting thread while the probe runs (the terminal progress line).
pub fn run(options: &Options, on_tick: impl FnMut(&Progress, Duration)) -> Report {
    run_until(options, on_tick, || false).unwrap_or_else(|| empty_report(options))
}

/// As `run`, but gives up waiting and returns `None` as soon as `stop`
/// returns true (a signal in watch mode).
pub fn run_until(
    options: &Options,
    mut on_tick: impl FnMut(&Progress, Duration),
    stop: impl Fn() -> bool,
) -> Option<Report> {
    let started = Instant::now();
    let progress = Arc::new(Progress::new(empty_report(options)));
    let (done_tx, done_rx) = mpsc::channel();
    let worker = {
        let progress = Arc::clone(&progress);
        let options = options.clone();
        std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || {
                let ok = catch_unwind(AssertUnwindSafe(|| probe(&progress, &options))).is_ok();
                let _ = done_tx.send(ok);
            })
    };
    if let Err(e) = worker {
        let mut report = progress.report();
        report.verdict = Verdict::Failed;
        report.summary = format!("could not start the probe thread: {e}");
        return Some(finish(report, started));
    }

    // No deadline when it lies past what Instant can hold (the command line
    // refuses such timeouts; a library caller may not).
    let deadline = started.checked_add(options.timeout);
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Some(timed_out(&progress, started, options.timeout));
        }
        if stop() {
            return None;
        }
        match done_rx.recv_timeout(deadline.map_or(TICK, |d| TICK.min(d - now))) {
            Ok(true) => {
                let mut report = finish(progress.report(), started);
                if options.strict {
                    // After the diagnoses: a warning diagnosis degrades the
                    // verdict, and --strict must see that.
                    verdict::strict(&mut report);
                }
                return Some(report);
            }
            Ok(false) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let mut report = progress.report();
                report.verdict = Verdict::Failed;
                report.summary =
                    "gpuprobe hit an internal error (a bug: please report it with this output)"
                        .into();
                return Some(finish(report, started));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => on_tick(&progress, started.elapsed()),
        }
    }
}

fn empty_report(options: &Options) -> Report {
    let (iterations, min_time_ms) = match options.repeat {
        Repeat::Times(t) => (Some(t), None),
        Repeat::AtLeast(d) => (None, Some(d.as_secs_f64() * 1e3)),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        gpuprobe_version: env!("CARGO_PKG_VERSION").into(),
        command: match options.mode {
            Mode::Probe => "probe",
            Mode::List => "list",
            Mode::Health => "health",
        }
        .into(),
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
        },
        checks: Vec::new(),
        driver: DriverInfo::default(),
        devices: Vec::new(),
        cpu: None,
        nvml: crate::report::NvmlInfo {
            status: "not_checked".into(),
            ..Default::default()
        },
        environment: crate::report::Environment::default(),
        diagnoses: Vec::new(),
    }
}

fn finish(mut report: Report, started: Instant) -> Report {
    report.duration_ms = started.elapsed().as_secs_f64() * 1e3;
    report.exit_code = report.verdict.exit_code();
    crate::diagnose::apply(&mut report);
    report
}

/// The probe body, on the worker thread: NVML first (device threads read
/// telemetry right after their matmul; health uses it too, since memory
/// errors and a lost GPU make a GPU unusable however its launch went), then
/// the CUDA stages, then the environment.
fn probe(progress: &Progress, options: &Options) {
    crate::environment::note_nodes_before_driver(&crate::environment::root());
    let nvml = load_nvml(progress);
    probe_cuda(progress, options, nvml);
    let (cuda, nvml) =
        progress.update(|r| (r.driver.library_path.clone(), r.nvml.library_path.clone()));
    let environment = crate::environment::gather(
        &crate::environment::root(),
        cuda.as_deref(),
        nvml.as_deref(),
    );
    progress.update(|r| r.environment = environment);
}

fn probe_cuda(progress: &Progress, options: &Options, nvml: Option<&'static telemetry::Loaded>) {
    let Some(driver) = load_driver(progress) else {
        return;
    };

    if let Some(v) = progress.stage(Scope::Machine, "driver_version", || {
        let v = driver.version()?;
        Ok(Done::pass(
            v,
            format!("driver supports CUDA {}", cuda_version(v)),
        ))
    }) {
        progress.update(|r| {
            r.driver.cuda_version = Some(cuda_version(v));
            r.driver.cuda_version_raw = Some(v);
        });
    }

    if progress
        .stage(Scope::Machine, "cu_init", || {
            driver.init()?;
            Ok(Done::pass((), "driver initialised"))
        })
        .is_none()
    {
        let error = progress.update(|r| {
            r.checks
                .last()
                .map(|c| c.detail.clone())
                .unwrap_or_default()
        });
        set_outcome(
            progress,
            Verdict::NoGpu,
            format!("the CUDA driver refused to initialise: {error}"),
        );
        return;
    }

    let Some(count) = progress.stage(Scope::Machine, "enumerate", || {
        let n = driver.device_count()?;
        Ok(Done::pass(n, format!("{n} GPU(s) visible to this process")))
    }) else {
        set_outcome(
            progress,
            Verdict::NoGpu,
            "the driver could not count its devices".into(),
        );
        return;
    };
    progress.update(|r| r.driver.device_count = Some(count));
    if count == 0 {
        set_outcome(
            progress,
            Verdict::NoGpu,
            "the driver sees no GPU in this container".into(),
        );
        return;
    }

    let handles: Vec<Option<cuda::CuDevice>> =
        (0..count).map(|i| identify(&driver, progress, i)).collect();
    let selected = select(progress, &options.devices);

    if options.mode == Mode::List {
        if let Some(nvml) = nvml {
            for slot in 0..handles.len() {
                read_telemetry(progress, nvml, slot);
            }
        }
        progress.update(|r| {
            for d in &mut r.devices {
                if d.status != DeviceStatus::Fail {
                    d.status = DeviceStatus::Skipped;
                }
            }
        });
        decide(progress);
        return;
    }

    let n = options.size;
    let probed = handles
        .iter()
        .enumerate()
        .filter(|(slot, h)| h.is_some() && selected.contains(slot))
        .count();
    // A and B of both verification passes, the CPU product and its scratch
    // copy, and two results per GPU.
    let need = (6 + 2 * probed as u64) * u64::from(n) * u64::from(n) * 4;
    if progress
        .stage(Scope::Machine, "host_memory", || {
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
        .is_none()
    {
        progress.update(|r| {
            for d in &mut r.devices {
                d.status = DeviceStatus::Skipped;
            }
        });
        decide(progress);
        return;
    }
    let inputs = Inputs::generate(n, n, n, options.seed);
    let reference = Shared::new();
    std::thread::scope(|scope| {
        for (slot, handle) in handles.iter().enumerate() {
            let Some(device) = *handle else { continue };
            if !selected.contains(&slot) {
                continue;
            }
            let job = device::Job {
                driver: &driver,
                progress,
                slot,
                device,
                inputs: &inputs,
                reference: &reference,
                repeat: options.repeat,
                nvml,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("gpu{slot}"))
                .spawn_scoped(scope, move || device::probe(&job));
            if let Err(e) = spawned {
                progress.skip(
                    Scope::Device(slot),
                    "context",
                    format!("could not start a thread: {e}"),
                );
            }
        }
        if options.mode == Mode::Health {
            // Only the product, to check the readback against; no timing.
            let mut product = vec![0f32; (n * n) as usize];
            cpu::naive_sgemm(
                n as usize,
                n as usize,
                n as usize,
                &inputs.a,
                &inputs.b,
                &mut product,
            );
            reference.publish(Reference::new(&inputs, product, options.seed ^ SAMPLE_SALT));
        } else {
            cpu_reference(progress, &inputs, options.repeat, &reference);
        }
    });

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
    options
        .requirements
        .check(progress, options.mode != Mode::Health);
    decide(progress);
}
