//! What the checks on one GPU share: the GPU's job (`Job`), a product's
//! buffers and launch (`Product`), how many timed launches fit, the GPU as
//! NVML sees it and its telemetry stage. The pipeline (device.rs), the
//! checks beside it (tensor.rs, bandwidth.rs, burn/) and `bench` build
//! on this; it knows none of them.
use std::time::{Duration, Instant};

use super::progress::{Done, Failed, Progress, Scope};
use crate::cpu::Repeat;
use crate::cuda::{self, kernels, Buffer, Context, CuDevice, Driver, Kernel};
use crate::report::{LinkState, NotRun};
use crate::stage::Stage;
use crate::telemetry;
use crate::verify::{Inputs, Reference};

/// What every check gets of its GPU: the driver and the device, where to
/// record, the shared inputs and CPU product, the measurement's settings.
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
    /// When the session's deadline passes (`--timeout`); the matmul sizes
    /// its timed launches to what is left.
    pub deadline: Option<std::time::Instant>,
    /// Held by the GPU whose bandwidth check copies to and from the host.
    pub host_link: &'a std::sync::Mutex<()>,
}

/// Most timed launches a `--min-time` measurement makes.
const MAX_ITERATIONS: u32 = 10_000;

/// The longest a launch is planned to run under a kernel watchdog: a
/// tenth of Windows' default TDR delay of 2 s (Microsoft, "Timeout
/// Detection and Recovery (TDR)", TdrDelay), so a GPU slower than its first
/// launches showed still stays far from the reset.
pub(super) const WATCHDOG_LAUNCH_MS: f64 = 200.0;

/// The timed products that fit in `budget_ms` (half of what is left before
/// the deadline: the rest is for the rounding pass, the copy back, the
/// check and the CPU baseline), at most `requested`; `Err(budget)` when
/// not even one does.
pub(super) fn fit_to_deadline(
    requested: u32,
    product_ms: f64,
    budget_ms: Option<f64>,
) -> Result<u32, f64> {
    let Some(budget) = budget_ms else {
        return Ok(requested);
    };
    if product_ms > budget {
        return Err(budget);
    }
    if product_ms <= 0.0 {
        return Ok(requested);
    }
    Ok(requested.min((budget / product_ms).floor() as u32).max(1))
}

/// How long gpuprobe's timed work must have run on a GPU before a reading
/// of its PCIe link counts as one taken at work. The link's generation
/// follows the performance state, which the driver raises with load and
/// not instantly (NVIDIA/open-gpu-kernel-modules#731; ../shared/FACTS.md
/// section 12), so a reading right after the work was queued can still
/// show the idle link. 100 ms is half the default `--min-time` (a default
/// run reads the link at work for the second half of its timed products)
/// and twice the ramp the fake models; the real ramp is unmeasured
/// (docs/gpu-validation.md).
pub const LINK_RAMP: Duration = Duration::from_millis(100);

/// Between two readings while a timed batch runs: a reading costs a few
/// NVML calls, so 10 ms takes nothing from the GPU and gives a default run
/// about ten readings at work.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// Readings taken while a timed batch ran on the GPU (`poll_batch`), with
/// how long the batch had run when each was taken.
#[derive(Debug)]
pub struct Polled<T> {
    readings: Vec<(Duration, T)>,
}

impl<T> Default for Polled<T> {
    fn default() -> Self {
        Polled {
            readings: Vec::new(),
        }
    }
}

impl<T> Polled<T> {
    /// The first reading taken while the batch ran.
    #[must_use]
    pub fn first(&self) -> Option<&T> {
        self.readings.first().map(|(_, r)| r)
    }

    /// The readings taken once the batch had run `LINK_RAMP`.
    #[must_use]
    pub fn settled(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        let from = self.readings.partition_point(|(at, _)| *at < LINK_RAMP);
        self.readings[from..].iter().map(|(_, r)| r)
    }
}

/// How long a batch's end waits for a first reading the reading thread is
/// still taking (a slow NVML), before the batch is judged without it.
const FIRST_READING_WAIT: Duration = Duration::from_secs(1);

/// Queues a timed batch with `queue` and reads the GPU with `read` every
/// `POLL_EVERY` from another thread while the batch runs, until `stop`
/// completes or the batch's `expected` time has passed (the caller then
/// waits for `stop`). `queue` records `stop` after its work and calls the
/// function it is given once its first launch or copy is queued: the
/// readings start then, beside the queueing, because launches can block
/// (once the driver's launch queue is full a launch returns only when an
/// earlier one finishes, so most of a batch of short products can run
/// before the last launch returns). A reading counts only if the batch was
/// seen running after it began: one taken after the end shows an idle GPU.
pub fn poll_batch<T: Send>(
    stop: &cuda::Event<'_>,
    expected: Duration,
    read: Option<&(dyn Fn() -> T + Sync)>,
    queue: impl FnOnce(&dyn Fn()) -> Result<(), Failed>,
) -> Result<Polled<T>, Failed> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let started = Instant::now();
    let Some(read) = read else {
        queue(&|| ())?;
        return Ok(Polled::default());
    };
    let (begun, done, taken) = (
        AtomicBool::new(false),
        AtomicBool::new(false),
        AtomicUsize::new(0),
    );
    let (running_until, readings) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| {
            let mut readings = Vec::new();
            while !done.load(Ordering::Acquire) {
                if begun.load(Ordering::Acquire) {
                    readings.push((started.elapsed(), read()));
                    taken.fetch_add(1, Ordering::Release);
                }
                std::thread::sleep(if begun.load(Ordering::Acquire) {
                    POLL_EVERY
                } else {
                    Duration::from_millis(1)
                });
            }
            readings
        });
        let queued = queue(&|| begun.store(true, Ordering::Release));
        // A batch whose first launch failed never began.
        begun.store(true, Ordering::Release);
        let running_until = queued.and_then(|()| {
            let first = || taken.load(Ordering::Acquire) > 0;
            seen_running(stop, started, expected, &first)
        });
        done.store(true, Ordering::Release);
        // A reading thread that panicked leaves no readings, never a panic
        // here: the batch's measurement stands without them.
        (running_until, poller.join().unwrap_or_default())
    });
    let running_until = running_until?;
    Ok(Polled {
        readings: readings
            .into_iter()
            .take_while(|(at, _)| *at < running_until)
            .collect(),
    })
}

/// How long after `started` the batch ending at `stop` was last seen
/// running: polls `stop` until it completes, or `expected` has passed and
/// the reading thread has a first reading (`first`), waiting for that at
/// most `FIRST_READING_WAIT` more.
fn seen_running(
    stop: &cuda::Event<'_>,
    started: Instant,
    expected: Duration,
    first: &dyn Fn() -> bool,
) -> Result<Duration, Failed> {
    let mut running_until = Duration::ZERO;
    loop {
        let now = started.elapsed();
        if stop.query()? {
            return Ok(running_until);
        }
        running_until = now;
        if now >= expected && (first() || now >= expected + FIRST_READING_WAIT) {
            return Ok(running_until);
        }
        let wait = expected.saturating_sub(now).max(Duration::from_millis(1));
        std::thread::sleep(POLL_EVERY.min(wait));
    }
}

/// One product's buffers, shape and kernel.
pub struct Product<'b, 'c> {
    pub(super) a: &'b Buffer<'c>,
    pub(super) b: &'b Buffer<'c>,
    pub(super) c: &'b Buffer<'c>,
    pub(super) shape: (u32, u32, u32),
    pub(super) sgemm: kernels::Sgemm,
}

impl Product<'_, '_> {
    /// Launches the product, `rows` rows of C (and A) per launch.
    pub(super) fn launch(
        &self,
        ctx: &Context<'_>,
        kernel: &Kernel<'_>,
        rows: u32,
    ) -> Result<(), Failed> {
        let (m, n, k) = self.shape;
        let rows = rows.clamp(1, m.max(1));
        let mut row = 0;
        while row < m {
            let here = rows.min(m - row);
            let at = |buffer: &Buffer<'_>, offset: usize| {
                buffer
                    .ptr_at(offset)
                    .ok_or_else(|| missing("row block inside its buffer"))
            };
            let pointers = [
                at(self.a, row as usize * k as usize)?,
                self.b.ptr,
                at(self.c, row as usize * n as usize)?,
            ];
            // SAFETY: `kernel` is `self.sgemm`'s entry point, a GEMM kernel
            // loaded in `ctx`. The block's `here` rows of A and C start
            // inside their buffers (checked by `ptr_at`) and end at most at
            // m rows; B is whole.
            unsafe {
                cuda::launch_gemm(
                    ctx,
                    kernel,
                    self.sgemm.launch(here, n),
                    (here, n, k),
                    pointers,
                )?;
            };
            row += here;
        }
        Ok(())
    }
}

/// Launches needed to fill `min_time` at the warm-up's pace.
pub(super) fn iterations_for(min_time: Duration, warm_ms: f64) -> u32 {
    if warm_ms <= 0.0 {
        return MAX_ITERATIONS;
    }
    let n = (min_time.as_secs_f64() * 1e3 / warm_ms).ceil();
    (n as u32).clamp(1, MAX_ITERATIONS)
}

/// A stage that ran before this one did not leave what it should have.
pub(super) fn missing(what: &str) -> Failed {
    Failed::new(format!("internal: no {what} from an earlier stage"))
}

/// The GPU in `slot` as NVML sees it, matched by UUID, then PCI bus id
/// (also `bench`'s).
pub(super) fn nvml_device(
    progress: &Progress,
    slot: usize,
    nvml: Option<&'static telemetry::Loaded>,
) -> Option<telemetry::NvmlDevice<'static>> {
    let nvml = nvml?;
    let (uuid, pci) = progress.update(|r| {
        let d = &r.devices[slot];
        (d.uuid.clone(), d.pci_bus_id.clone())
    });
    telemetry::find(&nvml.nvml, uuid.as_deref(), pci.as_deref())
}

/// NVML's error counters of the GPU in `slot` before any work of this run
/// on it (`read_telemetry` reads them again after); `None` without NVML or
/// when NVML does not list the GPU.
pub(super) fn counters_before(
    progress: &Progress,
    slot: usize,
    nvml: Option<&'static telemetry::Loaded>,
) -> Option<telemetry::Before> {
    let device = nvml_device(progress, slot, nvml)?;
    Some(nvml?.before(&device))
}

/// The GPU's NVLinks as they are before the run's work on it, for
/// `read_telemetry` to compare with (error counters that grew, a link that
/// went down); `None` without NVML or where NVML does not list the GPU.
pub fn nvlink_before(
    progress: &Progress,
    slot: usize,
    nvml: Option<&'static telemetry::Loaded>,
) -> Option<telemetry::NvLinkSnapshot> {
    let device = nvml_device(progress, slot, nvml)?;
    Some(nvml?.nvlink(device.gpu()))
}

/// Reads one device's telemetry into the report; `under_load` is the PCIe
/// link as read while the device's matmul ran, which replaces the idle
/// reading taken now; `before`, the error counters as read before the
/// work (`counters_before`), against which the run's own are recorded;
/// `nvlink_before` the NVLinks as read before the run's work
/// (`nvlink_before`), which the reading now is compared with. Without
/// NVML the check is recorded as not run.
pub fn read_telemetry(
    progress: &Progress,
    nvml: Option<&telemetry::Loaded>,
    slot: usize,
    under_load: Option<telemetry::Link>,
    before: Option<telemetry::Before>,
    nvlink_before: Option<&telemetry::NvLinkSnapshot>,
) {
    let Some(nvml) = nvml else {
        progress.skip(
            Scope::Device(slot),
            Stage::Telemetry,
            NotRun::Unavailable,
            "not read: no NVML in this container (the nvml check says why)",
        );
        return;
    };
    let (uuid, pci) = progress.update(|r| {
        (
            r.devices[slot].uuid.clone(),
            r.devices[slot].pci_bus_id.clone(),
        )
    });
    progress.stage(Scope::Device(slot), Stage::Telemetry, || {
        let Some(device) = telemetry::find(&nvml.nvml, uuid.as_deref(), pci.as_deref()) else {
            return Ok(Done::skip(
                (),
                NotRun::Unavailable,
                "not read: NVML does not list this GPU (matched by UUID, then PCI bus id)",
                None,
            ));
        };
        let mut t = nvml.read(&device);
        let counters = before.map(|b| b.until(nvml.counts(&device)));
        if let Some(link) = under_load {
            t.pcie_generation = link.generation;
            t.pcie_width_lanes = link.width;
            t.pcie_link_state = Some(LinkState::UnderLoad);
        }
        let detail = format!(
            "{} °C, {} W",
            t.temperature_celsius
                .value()
                .map_or("?".into(), ToString::to_string),
            t.power_draw_watts
                .value()
                .map_or("?".into(), |w| format!("{w:.0}"))
        );
        let nvlink = telemetry::nvlink_report(nvlink_before, &nvml.nvlink(device.gpu()));
        let detail = match nvlink.expected() {
            0 => detail,
            expected => format!(
                "{detail}; NVLink {} of {expected} expected links active",
                nvlink.active()
            ),
        };
        progress.update(|r| {
            r.devices[slot].telemetry = Some(t);
            r.devices[slot].counters = counters;
            r.devices[slot].nvlink = Some(nvlink);
        });
        Ok(Done::pass((), detail))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_shrinks_or_refuses_the_timed_products() {
        assert_eq!(fit_to_deadline(10, 100.0, None), Ok(10));
        assert_eq!(fit_to_deadline(10, 100.0, Some(5000.0)), Ok(10));
        assert_eq!(fit_to_deadline(1000, 100.0, Some(5000.0)), Ok(50));
        assert_eq!(fit_to_deadline(1000, 100.0, Some(100.0)), Ok(1));
        assert_eq!(fit_to_deadline(3, 6000.0, Some(5000.0)), Err(5000.0));
    }

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
