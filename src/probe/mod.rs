//! The probe: driver -> cuInit -> devices -> per-device stages in parallel
//! with the CPU reference -> verdict, all under a deadline.
//!
//! The probe runs on a worker thread and writes into a shared `Progress`;
//! the calling thread is the watchdog. A driver call that never returns
//! cannot hang gpuprobe: at the deadline the report as it stands is returned
//! with the stuck stage of each device marked `timeout`.
mod device;
pub mod progress;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use crate::cpu::{self, Repeat};
use crate::cuda::{self, Driver, LoadError};
use crate::report::{
    CheckStatus, CpuReport, DeviceReport, DeviceStatus, DriverInfo, Report, Settings, Verdict,
    SCHEMA_VERSION,
};
use crate::requirements::Requirements;
use crate::telemetry;
use crate::units::flops;
use crate::verify::{Inputs, Reference};
use progress::{Done, Failed, Progress, Scope};

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

    let deadline = started + options.timeout;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Some(timed_out(&progress, started, options.timeout));
        }
        if stop() {
            return None;
        }
        match done_rx.recv_timeout(TICK.min(deadline - now)) {
            Ok(true) => return Some(finish(progress.report(), started)),
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

fn timed_out(progress: &Progress, started: Instant, timeout: Duration) -> Report {
    let (mut report, hung) = progress.snapshot_timed_out();
    let places: Vec<String> = hung
        .iter()
        .map(|h| {
            let call = h.call.map_or(String::new(), |c| format!(", stuck in {c}"));
            match h.scope {
                Scope::Machine => format!("stage {}{call}", h.stage),
                Scope::Device(i) => {
                    let d = &mut report.devices[i];
                    d.status = DeviceStatus::Timeout;
                    format!(
                        "GPU {} ({}) in stage {}{call}",
                        d.index,
                        d.uuid.as_deref().unwrap_or("uuid unknown"),
                        h.stage
                    )
                }
            }
        })
        .collect();
    report.verdict = Verdict::Timeout;
    report.summary =
        format!(
        "no answer within {}: {}; the driver call there never returned (a wedged GPU or driver)",
        humantime::format_duration(timeout),
        if places.is_empty() { "between stages".to_string() } else { places.join(", ") }
    );
    finish(report, started)
}

fn set_outcome(progress: &Progress, verdict: Verdict, summary: String) {
    progress.update(|r| {
        r.verdict = verdict;
        r.summary = summary;
    });
}

/// The probe body, on the worker thread: NVML first (device threads read
/// telemetry right after their matmul; health uses it too, since memory
/// errors and a lost GPU make a GPU unusable however its launch went), then
/// the CUDA stages, then the environment.
fn probe(progress: &Progress, options: &Options) {
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

/// Loads NVML, recording what was found; a missing NVML is a finding.
fn load_nvml(progress: &Progress) -> Option<&'static telemetry::Loaded> {
    progress
        .stage(Scope::Machine, "nvml", || match telemetry::load() {
            Ok(loaded) => {
                let detail = format!(
                    "NVML {} (driver {}) sees {} GPU(s)",
                    loaded.info.nvml_version.as_deref().unwrap_or("?"),
                    loaded.info.driver_version.as_deref().unwrap_or("?"),
                    loaded.info.device_uuids.len() + loaded.info.lost_devices.len()
                );
                progress.update(|r| r.nvml = loaded.info.clone());
                Ok(Done::pass(Some(loaded), detail))
            }
            Err(info) => {
                let detail = format!(
                    "no NVML telemetry: {} ({})",
                    info.status,
                    info.error.as_deref().unwrap_or("")
                );
                progress.update(|r| r.nvml = *info);
                Ok(Done {
                    value: None,
                    detail,
                    status: CheckStatus::Skip,
                })
            }
        })
        .flatten()
}

/// Reads one device's telemetry into the report.
fn read_telemetry(progress: &Progress, nvml: &telemetry::Loaded, slot: usize) {
    let (uuid, pci) = progress.update(|r| {
        (
            r.devices[slot].uuid.clone(),
            r.devices[slot].pci_bus_id.clone(),
        )
    });
    progress.stage(Scope::Device(slot), "telemetry", || {
        let Some(device) = telemetry::find(&nvml.nvml, uuid.as_deref(), pci.as_deref()) else {
            return Ok(Done::pass(
                (),
                "NVML does not list this GPU (matched by UUID, then PCI bus id)",
            ));
        };
        let t = telemetry::read(&device);
        let detail = format!(
            "{} °C, {} W",
            t.temperature_celsius
                .value()
                .map_or("?".into(), ToString::to_string),
            t.power_draw_watts
                .value()
                .map_or("?".into(), |w| format!("{w:.0}"))
        );
        progress.update(|r| r.devices[slot].telemetry = Some(t));
        Ok(Done::pass((), detail))
    });
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
    // A, B, the CPU product and its scratch copy, and one result per GPU.
    let need = (4 + probed as u64) * u64::from(n) * u64::from(n) * 4;
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
    if options.strict {
        progress.update(|r| {
            if r.verdict == Verdict::Degraded {
                r.verdict = Verdict::Failed;
                r.summary = format!("{} (degraded counts as failed: --strict)", r.summary);
            }
        });
    }
}

/// The driver, loaded once per process: watch mode probes again and again,
/// and a CUDA driver is not meant to be unloaded and reloaded.
fn cached_driver() -> Result<Arc<Driver>, LoadError> {
    static DRIVER: std::sync::OnceLock<Result<Arc<Driver>, LoadError>> = std::sync::OnceLock::new();
    DRIVER.get_or_init(|| Driver::load().map(Arc::new)).clone()
}

fn load_driver(progress: &Progress) -> Option<Arc<Driver>> {
    progress.update(|r| {
        r.driver.library_candidates = cuda::driver::CANDIDATES
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        r.driver.search_path = cuda::driver::search_path();
    });
    let loaded = progress.stage(Scope::Machine, "load_driver", || match cached_driver() {
        Ok(driver) => {
            let detail = format!("loaded {}", driver.path);
            Ok(Done::pass(Ok(driver), detail))
        }
        Err(e) => {
            let detail = e.to_string();
            // Recorded as a failed stage; the error itself is kept for the summary.
            Ok(Done {
                value: Err(e),
                detail,
                status: CheckStatus::Fail,
            })
        }
    })?;
    match loaded {
        Ok(driver) => {
            progress.update(|r| r.driver.library_path = Some(driver.path.clone()));
            Some(driver)
        }
        Err(e) => {
            let summary = match &e {
                LoadError::NotFound { .. } => {
                    "no CUDA driver library in this container: it was started without GPU access"
                        .to_string()
                }
                LoadError::Unloadable { .. } => {
                    format!("the CUDA driver library is present but broken: {e}")
                }
                LoadError::MissingSymbols { path, missing } => {
                    progress.update(|r| {
                        r.driver.library_path = Some(path.clone());
                        r.driver.missing_symbols.clone_from(missing);
                    });
                    format!(
                        "the CUDA driver at {path} is too old for gpuprobe: it lacks {}",
                        missing.join(", ")
                    )
                }
            };
            set_outcome(progress, Verdict::NoGpu, summary);
            None
        }
    }
}

/// "12.4" from 12040.
fn cuda_version(raw: i32) -> String {
    format!("{}.{}", raw / 1000, raw % 1000 / 10)
}

/// Adds device `ordinal` to the report with what the driver says of it.
fn identify(driver: &Driver, progress: &Progress, ordinal: u32) -> Option<cuda::CuDevice> {
    let slot = progress.update(|r| {
        r.devices.push(DeviceReport {
            index: ordinal,
            name: None,
            uuid: None,
            pci_bus_id: None,
            compute_capability: None,
            multiprocessors: None,
            clock_mhz: None,
            memory_total_bytes: None,
            memory_free_bytes: None,
            memory_used_bytes: None,
            status: DeviceStatus::Pass,
            checks: Vec::new(),
            matmul: None,
            telemetry: None,
        });
        r.devices.len() - 1
    });
    let found = progress.stage(Scope::Device(slot), "identify", || {
        let dev = driver.device(ordinal)?;
        let name = driver.device_name(dev)?;
        let uuid = driver.device_uuid(dev)?;
        let pci = driver.device_pci_bus_id(dev)?;
        let major =
            driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor =
            driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        let sms = driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
        let clock_khz = driver.device_attribute(dev, Attr::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)?;
        let total = driver.device_total_memory(dev)?;
        let detail = format!("{name}, {uuid}, compute capability {major}.{minor}");
        progress.update(|r| {
            let d = &mut r.devices[slot];
            d.name = Some(name);
            d.uuid = Some(uuid);
            d.pci_bus_id = Some(pci);
            d.compute_capability = Some(format!("{major}.{minor}"));
            d.multiprocessors = Some(sms.max(0) as u32);
            d.clock_mhz = Some((clock_khz.max(0) / 1000) as u32);
            d.memory_total_bytes = Some(total);
        });
        Ok(Done::pass(dev, detail))
    });
    if found.is_none() {
        progress.update(|r| r.devices[slot].status = DeviceStatus::Fail);
    }
    found
}

/// Resolves `--devices` against the enumerated devices; slots to probe.
fn select(progress: &Progress, selection: &Selection) -> Vec<usize> {
    let devices: Vec<(u32, Option<String>)> = progress.update(|r| {
        r.devices
            .iter()
            .map(|d| (d.index, d.uuid.clone()))
            .collect()
    });
    let Selection::List(list) = selection else {
        return (0..devices.len()).collect();
    };
    let mut slots = Vec::new();
    let mut unknown = Vec::new();
    for selector in list {
        let found: Vec<usize> = devices
            .iter()
            .enumerate()
            .filter(|(_, (index, uuid))| match selector {
                Selector::Index(i) => index == i,
                Selector::Uuid(prefix) => uuid
                    .as_deref()
                    .is_some_and(|u| u.starts_with(prefix.as_str())),
            })
            .map(|(slot, _)| slot)
            .collect();
        match found.as_slice() {
            [slot] => {
                if !slots.contains(slot) {
                    slots.push(*slot);
                }
            }
            _ => unknown.push(match selector {
                Selector::Index(i) => i.to_string(),
                Selector::Uuid(u) => u.clone(),
            }),
        }
    }
    let visible = devices.len();
    progress.stage(Scope::Machine, "select_devices", || {
        if unknown.is_empty() {
            Ok(Done::pass(
                (),
                format!("probing {} of {visible} visible GPU(s)", slots.len()),
            ))
        } else {
            Err(Failed::new(format!(
                "--devices names {} but this process sees {visible} GPU(s) (indices 0-{})",
                unknown.join(", "),
                visible.saturating_sub(1)
            )))
        }
    });
    slots
}

fn cpu_reference(
    progress: &Progress,
    inputs: &Inputs,
    repeat: Repeat,
    reference: &Shared<Reference>,
) {
    let (m, n, k) = (inputs.m as usize, inputs.n as usize, inputs.k as usize);
    let available = cpu::available_cpus();
    let measured = progress.stage(Scope::Machine, "cpu_reference", || {
        let measured = cpu::measure(m, n, k, &inputs.a, &inputs.b, available, repeat);
        let gflops = cpu::gflops(m, n, k, measured.mean);
        let detail = format!(
            "{} on {} thread(s), {:.3} ms per run",
            flops(gflops),
            measured.threads,
            measured.mean.as_secs_f64() * 1e3
        );
        Ok(Done::pass(measured, detail))
    });
    let Some(measured) = measured else { return };
    progress.update(|r| {
        r.cpu = Some(CpuReport {
            library: cpu::LIBRARY.into(),
            threads: measured.threads as u32,
            available_cpus: available as u32,
            iterations: measured.iterations,
            time_ms: measured.mean.as_secs_f64() * 1e3,
            gflops: cpu::gflops(m, n, k, measured.mean),
        });
    });
    // The sample changes every run: it is drawn from the run's seed, itself
    // fresh unless --seed fixed it.
    let sample_seed = inputs.seed ^ SAMPLE_SALT;
    reference.publish(Reference::new(inputs, measured.product, sample_seed));
}

/// Sets each device's status and the verdict from the checks.
fn decide(progress: &Progress) {
    progress.update(|r| {
        let machine_failed = r.checks.iter().any(|c| c.status == CheckStatus::Fail);
        for d in &mut r.devices {
            if d.status == DeviceStatus::Skipped {
                continue;
            }
            d.status = if d.checks.iter().any(|c| c.status == CheckStatus::Fail) {
                DeviceStatus::Fail
            } else if d.checks.iter().any(|c| c.status == CheckStatus::Warn) {
                DeviceStatus::Warn
            } else {
                DeviceStatus::Pass
            };
        }
        let probed: Vec<&DeviceReport> = r
            .devices
            .iter()
            .filter(|d| d.status != DeviceStatus::Skipped)
            .collect();
        let failed: Vec<&DeviceReport> = probed
            .iter()
            .copied()
            .filter(|d| d.status == DeviceStatus::Fail)
            .collect();
        let passed = probed.len() - failed.len();
        let list_only = r.command == "list";
        let (verdict, summary) = if !failed.is_empty() {
            let names: Vec<String> = failed
                .iter()
                .map(|d| {
                    let stage = d
                        .checks
                        .iter()
                        .find(|c| c.status == CheckStatus::Fail)
                        .map_or("?", |c| c.name.as_str());
                    format!(
                        "GPU {} ({}) failed {stage}",
                        d.index,
                        d.uuid.as_deref().unwrap_or("uuid unknown")
                    )
                })
                .collect();
            (
                Verdict::Failed,
                format!(
                    "{}; {passed} of {} GPU(s) passed",
                    names.join("; "),
                    probed.len()
                ),
            )
        } else if machine_failed {
            let c = r
                .checks
                .iter()
                .find(|c| c.status == CheckStatus::Fail)
                .map_or(String::new(), |c| c.detail.clone());
            (Verdict::Failed, c)
        } else if list_only {
            (
                Verdict::Healthy,
                format!(
                    "{} GPU(s) visible; `gpuprobe` without `list` checks that they compute",
                    r.devices.len()
                ),
            )
        } else if probed.is_empty() {
            (Verdict::NoGpu, "no GPU was probed".into())
        } else {
            let best = probed
                .iter()
                .filter_map(|d| d.matmul.as_ref())
                .map(|m| m.gpu_gflops)
                .fold(0.0, f64::max);
            let warned = probed.iter().any(|d| d.status == DeviceStatus::Warn);
            let verdict = if warned {
                Verdict::Degraded
            } else {
                Verdict::Healthy
            };
            let speed = r.cpu.as_ref().map_or(String::new(), |c| {
                format!(
                    ", up to {} ({:.1}x the CPU)",
                    flops(best),
                    best / c.gflops.max(f64::MIN_POSITIVE)
                )
            });
            let warnings: Vec<String> = probed
                .iter()
                .flat_map(|d| {
                    d.checks
                        .iter()
                        .filter(|c| c.status == CheckStatus::Warn)
                        .map(move |c| format!("GPU {} {}: {}", d.index, c.name, c.detail))
                })
                .collect();
            let warnings = if warnings.is_empty() {
                String::new()
            } else {
                format!("; warnings: {}", warnings.join("; "))
            };
            (
                verdict,
                format!(
                    "{passed} of {} GPU(s) computed correct results{speed}{warnings}",
                    probed.len()
                ),
            )
        };
        r.verdict = verdict;
        r.summary = summary;
    });
}
