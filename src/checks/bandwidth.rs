//! The bandwidth check: how fast a GPU moves data in its own memory (a
//! device-to-device copy and gpuprobe's streaming kernel) and over its host
//! link (copies from and to pinned host memory), and whether the data
//! arrives intact. src/peak.rs sets each measurement against what the GPU
//! should do: the theoretical memory bandwidth, and the PCIe link's
//! per-direction bandwidth as NVML read the link while the host copies ran
//! (an idle link trains down, so only a reading under load says what the
//! copies had), else its maximum.
//!
//! It is small on purpose, since it runs in every full probe: buffers of at
//! most `--bandwidth-size` (256 MiB) and an eighth of the GPU's free memory
//! and of the host's available memory; transfers in a time box of
//! `BUDGET_MS` per GPU, at most a quarter of what is left before the
//! deadline. Each measurement starts with a warm-up of at most 1 MiB, which
//! also pays what is paid once (the kernel's lazy loading, first touches)
//! and prices a copy; the timed copies are then fitted to the
//! measurement's share of the box: at most `MAX_REPS` full-size copies, or
//! one shorter copy where a full one would not fit. Host copies are made by
//! one GPU at a time (`host_link_turn`), so each measures its own link.
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute as Attr;

use super::gpu::{poll_batch, Job, Polled};
use super::progress::{Done, Failed};
use crate::cuda::kernels::{self, stream_launch};
use crate::cuda::{self, Buffer, Context, CopyError, CudaError, Event, Kernel, Module, Pinned};
use crate::report::{Bandwidth, LinkReading, NotRun, PcieLink, Reading, Transfer};
use crate::telemetry;
use crate::units::bytes;

/// Transfers per GPU at most, in milliseconds: a few tenths of a second,
/// beside a matmul of seconds.
const BUDGET_MS: f64 = 300.0;

/// Below this the time box is too small to measure anything.
const MIN_BUDGET_MS: f64 = 20.0;

/// The box's shares: the four measurements and the untimed check.
const SHARES: f64 = 5.0;

/// Timed copies per measurement at most. Each full-size copy is long
/// enough (0.17 ms for 256 MiB through 3.35 TB/s) that the events'
/// resolution (about half a microsecond, CUDA driver API,
/// cuEventElapsedTime) is far below a batch of ten.
const MAX_REPS: u32 = 10;

/// Floats of the warm-up copy and of the untimed check: 1 MiB.
const WARM_UP_FLOATS: usize = 256 * 1024;

/// The smallest buffer worth measuring: 4 KiB.
const MIN_FLOATS: usize = 1024;

/// Device memory and host memory the buffers may take: an eighth of what
/// is free, so a GPU or container with little to spare is not pushed over.
const FREE_FRACTION: u64 = 8;

/// Floats in each buffer: `requested` bytes, at most an eighth of the GPU's
/// free memory and of the host's available memory (unknown: no bound),
/// whole 16-byte vectors.
fn buffer_floats(requested: u64, free_device: u64, available_host: Option<u64>) -> usize {
    let bytes = requested
        .min(free_device / FREE_FRACTION)
        .min(available_host.map_or(u64::MAX, |a| a / FREE_FRACTION));
    usize::try_from(bytes / 16 * 4).unwrap_or(usize::MAX / 16 * 4)
}

/// Milliseconds left before `deadline`, if there is one.
fn left_ms(deadline: Option<Instant>) -> Option<f64> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64() * 1e3)
}

/// The right to make host copies, one GPU at a time: GPUs behind one PCIe
/// switch or root port share its uplink (and all share the host's memory),
/// so copies of several GPUs at once would measure what they share, not
/// this GPU's link. Waits for the other GPUs' turns, but not past the
/// deadline (`None`); a turn that panicked is still a turn.
fn host_link_turn(lock: &Mutex<()>, deadline: Option<Instant>) -> Option<MutexGuard<'_, ()>> {
    loop {
        match lock.try_lock() {
            Ok(turn) => return Some(turn),
            Err(TryLockError::Poisoned(p)) => return Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The time box in ms: `BUDGET_MS`, at most a quarter of what is left
/// before the deadline (the rest is for the telemetry, the CPU baseline
/// and the other GPUs' threads).
fn time_box(left_ms: Option<f64>) -> f64 {
    left_ms.map_or(BUDGET_MS, |left| (left / 4.0).min(BUDGET_MS))
}

/// Floats per timed copy and how many copies, from a warm-up of
/// `warm_len` floats that took `warm_ms`, so that the batch fills at most
/// `share_ms`: up to `MAX_REPS` copies of all `n` floats, or one copy of as
/// many whole vectors as fit (never fewer than the warm-up's, which fit).
fn fit(n: usize, warm_len: usize, warm_ms: f64, share_ms: f64) -> (usize, u32) {
    if warm_ms <= 0.0 || warm_len == 0 {
        return (n, MAX_REPS);
    }
    let ms_per_float = warm_ms / warm_len as f64;
    let copy_ms = ms_per_float * n as f64;
    if copy_ms <= share_ms {
        let reps = (share_ms / copy_ms).floor().clamp(1.0, f64::from(MAX_REPS));
        (n, reps as u32)
    } else {
        let len = (share_ms / ms_per_float) as usize / 4 * 4;
        (len.clamp(warm_len, n), 1)
    }
}

/// Times the measurements (CUDA events on the default stream) within their
/// share of the time box, and keeps the words for the check's detail.
struct Meter<'c> {
    start: Event<'c>,
    stop: Event<'c>,
    share_ms: f64,
    notes: Vec<String>,
    /// The driver's refusal of the pinned host memory, kept as the check's
    /// evidence.
    refusal: Option<CudaError>,
}

impl Meter<'_> {
    /// GPU time of whatever `queue` puts on the default stream, in ms.
    fn time(&self, queue: &dyn Fn() -> Result<(), Failed>) -> Result<f64, Failed> {
        self.start.record()?;
        queue()?;
        self.stop.record()?;
        self.stop.synchronize()?;
        Ok(self.start.elapsed_ms(&self.stop)?)
    }

    /// Warms up on at most `WARM_UP_FLOATS` of `n` floats, then times the
    /// copies that fit the share; `moved` bytes count per byte copied (2:
    /// read and written). `read` runs while the timed copies run
    /// (`gpu::poll_batch`: copies return before they finish), and what it
    /// read comes back with the transfer. `None`, with a note saying why,
    /// when the warm-up alone outlasts the share.
    fn measure<T: Send>(
        &mut self,
        what: &str,
        n: usize,
        moved: u64,
        copy: &dyn Fn(usize) -> Result<(), Failed>,
        read: Option<&(dyn Fn() -> T + Sync)>,
    ) -> Result<(Option<Transfer>, Polled<T>), Failed> {
        let warm_len = n.min(WARM_UP_FLOATS);
        let warm_ms = self.time(&|| copy(warm_len))?;
        if warm_ms > self.share_ms {
            self.notes.push(format!(
                "{what} not measured: its warm-up took {warm_ms:.1} ms, more than its {:.1} ms \
                 share of the time box",
                self.share_ms
            ));
            return Ok((None, Polled::default()));
        }
        let (len, reps) = fit(n, warm_len, warm_ms, self.share_ms);
        let expected = Duration::try_from_secs_f64(
            warm_ms / warm_len.max(1) as f64 * len as f64 * f64::from(reps) / 1e3,
        )
        .unwrap_or_default();
        let polled = poll_batch(&self.stop, expected, read, |begun| {
            self.start.record()?;
            for _ in 0..reps {
                copy(len)?;
                begun();
            }
            Ok(self.stop.record()?)
        })?;
        self.stop.synchronize()?;
        let time_ms = self.start.elapsed_ms(&self.stop)? / f64::from(reps);
        let copied = len as u64 * 4;
        if time_ms.is_nan() || time_ms <= 0.0 {
            return Err(Failed::new(format!(
                "the CUDA events timed {reps} copies of {} at {time_ms} ms",
                bytes(copied)
            )));
        }
        let gbps = (moved * copied) as f64 / (time_ms * 1e6);
        self.notes.push(format!(
            "{what} {gbps:.1} GB/s ({reps} x {})",
            bytes(copied)
        ));
        let transfer = Transfer {
            bytes: copied,
            iterations: reps,
            time_ms,
            gbps,
            expected_gbps: None,
            efficiency: None,
        };
        Ok((Some(transfer), polled))
    }
}

/// The `bandwidth` stage (where the plan runs it): skipped with
/// `--bandwidth-size 0`; else measured, recorded in the device's
/// `bandwidth`, and failed only by a driver error or data that came back
/// changed.
pub fn stage(
    job: &Job<'_>,
    requested: u64,
    ctx: &Context<'_>,
    nvml: Option<&nvml_wrapper::Device<'static>>,
    link_under_load: &mut Option<telemetry::Link>,
) -> Result<Done<()>, Failed> {
    if requested == 0 {
        // Turned off: a `watch` beside a workload need not take its
        // memory bandwidth, its PCIe link and pinned host memory each cycle.
        return Ok(Done::skip(
            (),
            NotRun::TurnedOff,
            "not run: --bandwidth-size 0",
            None,
        ));
    }
    let left = left_ms(job.deadline);
    let budget_ms = time_box(left);
    if budget_ms < MIN_BUDGET_MS {
        return Ok(Done::skip(
            (),
            NotRun::OutOfTime,
            format!(
                "not run: a quarter of the {:.0} ms left before the deadline is under the \
                 {MIN_BUDGET_MS:.0} ms the measurements need; use a longer --timeout",
                left.unwrap_or_default()
            ),
            None,
        ));
    }
    let (free, _) = ctx.memory_info()?;
    let host = crate::environment::available_memory(&crate::environment::root());
    let n = buffer_floats(requested, free, host);
    if n < MIN_FLOATS {
        return Ok(Done::skip(
            (),
            NotRun::NoMemory,
            format!(
                "not run: an eighth of the {} free on the GPU (or of the host's {} available) \
                 is under {}",
                bytes(free),
                host.map_or("unknown".into(), bytes),
                bytes(MIN_FLOATS as u64 * 4)
            ),
            None,
        ));
    }
    let sms = job
        .driver
        .device_attribute(job.device, Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?
        .max(1) as u32;
    let kernel = Module::load(ctx, kernels::STREAM_PTX)?.kernel(kernels::STREAM_COPY)?;
    let (a, b) = (Buffer::alloc(ctx, n)?, Buffer::alloc(ctx, n)?);
    let mut meter = Meter {
        start: Event::new(ctx)?,
        stop: Event::new(ctx)?,
        share_ms: budget_ms / SHARES,
        notes: Vec::new(),
        refusal: None,
    };
    let mut report = Bandwidth {
        device_copy: None,
        stream_kernel: None,
        host_to_device: None,
        device_to_host: None,
        pinned_memory_refused: false,
        pcie_link: None,
        memory_clock_mhz_under_load: None,
    };
    let gpu = Measuring {
        job,
        ctx,
        nvml,
        kernel: &kernel,
        sms,
        buffers: [&a, &b],
        n,
    };
    let measured = gpu.run(&mut meter, &mut report, link_under_load);
    // Nothing of this check's may still run when its buffers are freed.
    let settled = ctx.synchronize();
    // What was measured is reported, also when a later step failed.
    job.progress
        .update(|r| r.devices[job.slot].bandwidth = Some(report));
    measured?;
    settled?;
    Ok(Done {
        error: meter.refusal,
        ..Done::pass(
            (),
            format!("{}; the data came back intact", meter.notes.join("; ")),
        )
    })
}

/// What the measurements run on.
struct Measuring<'a, 'c> {
    job: &'a Job<'a>,
    ctx: &'a Context<'c>,
    nvml: Option<&'a nvml_wrapper::Device<'static>>,
    kernel: &'a Kernel<'c>,
    sms: u32,
    /// The copies' source and destination, `n` floats each.
    buffers: [&'a Buffer<'c>; 2],
    n: usize,
}

impl Measuring<'_, '_> {
    /// The four measurements into `report`, then the untimed check.
    fn run(
        &self,
        meter: &mut Meter<'_>,
        report: &mut Bandwidth,
        link_under_load: &mut Option<telemetry::Link>,
    ) -> Result<(), Failed> {
        let Measuring {
            job,
            ctx,
            nvml,
            kernel,
            sms,
            buffers: [a, b],
            n,
        } = *self;
        let read = nvml.map(|d| move || telemetry::memory_clock(d));
        let (t, clocks) = meter.measure(
            "device copy",
            n,
            2,
            &|len| Ok(b.copy_from(a, len)?),
            read.as_ref()
                .map(|r| r as &(dyn Fn() -> Option<u32> + Sync)),
        )?;
        // The memory clock does not train down as a link does: the first
        // reading at work serves.
        (report.device_copy, report.memory_clock_mhz_under_load) =
            (t, clocks.first().copied().flatten());
        let copy = |len| stream(ctx, kernel, sms, len, a, b);
        report.stream_kernel = meter
            .measure::<()>("streaming kernel", n, 2, &copy, None)?
            .0;

        let turn = host_link_turn(job.host_link, job.deadline);
        if turn.is_some() {
            // What is left may have shrunk while other GPUs copied.
            meter.share_ms = meter.share_ms.min(time_box(left_ms(job.deadline)) / SHARES);
        } else {
            meter.notes.push(
                "host copies not measured: other GPUs' host copies lasted until the deadline"
                    .into(),
            );
        }
        // Any refusal skips the host copies, whatever its code: out of
        // memory where the host or container cannot lock that much, other
        // codes where page-locked memory is limited or not offered (WSL,
        // vGPU, confidential computing). These copies are an optional
        // measurement, so a refusal is evidence kept, not a failure; the
        // untimed check below then goes through pageable memory.
        let pinned = match turn.as_ref().map(|_| Pinned::alloc(ctx, n)) {
            None => None,
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                report.pinned_memory_refused = true;
                meter.notes.push(format!(
                    "host copies not measured: pinned host memory refused ({} asked: {e})",
                    bytes(n as u64 * 4)
                ));
                if let CopyError::Cuda(e) = e {
                    meter.refusal = Some(e);
                }
                None
            }
        };
        if let Some(pinned) = &pinned {
            // The readings of the link at work, from both directions.
            let mut at_work: Vec<telemetry::Link> = Vec::new();
            for up in [true, false] {
                let (what, copy): (&str, &dyn Fn(usize) -> Result<(), Failed>) = if up {
                    ("host to device", &|len| Ok(a.upload_async(pinned, len)?))
                } else {
                    ("device to host", &|len| Ok(b.download_async(pinned, len)?))
                };
                let read = nvml.map(|d| move || telemetry::pcie_link(d));
                let (t, links) = meter.measure(
                    what,
                    n,
                    1,
                    copy,
                    read.as_ref()
                        .map(|r| r as &(dyn Fn() -> telemetry::Link + Sync)),
                )?;
                if up {
                    report.host_to_device = t;
                } else {
                    report.device_to_host = t;
                }
                at_work.extend(links.settled().cloned());
            }
            // The link at work: from the copies' own readings once they
            // had run long enough for it to ramp up (`gpu::LINK_RAMP`),
            // else from the matmul's, read at work moments before (each
            // timed batch here lasts a share of a 300 ms box, under the
            // ramp); against its maximum when neither read it.
            let own = telemetry::Link::at_work(&at_work)
                .filter(|l| pcie_link(l, LinkReading::UnderLoad).is_some());
            let loaded = own.clone().or_else(|| link_under_load.clone());
            report.pcie_link = match loaded
                .as_ref()
                .and_then(|l| pcie_link(l, LinkReading::UnderLoad))
            {
                Some(l) => Some(l),
                None => {
                    nvml.and_then(|d| pcie_link(&telemetry::pcie_link_max(d), LinkReading::Max))
                }
            };
            // The matmul's reading, when it had none at work.
            if link_under_load.is_none() {
                *link_under_load = own;
            }
            if let Some(l) = &report.pcie_link {
                let when = match l.reading {
                    LinkReading::UnderLoad => "under load",
                    LinkReading::Max => "its maximum: no reading under load",
                };
                meter
                    .notes
                    .push(format!("PCIe gen {} x{} ({when})", l.generation, l.width));
            }
        }

        // The check copies through the host link too: still this GPU's
        // turn, so that its copies do not share the link with another
        // GPU's timed ones.
        let checked = check(ctx, kernel, sms, n.min(WARM_UP_FLOATS), [a, b], pinned);
        drop(turn);
        checked
    }
}

/// One pass of the streaming kernel over the first `len` floats of `src`
/// into `dst`.
fn stream(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    sms: u32,
    len: usize,
    src: &Buffer<'_>,
    dst: &Buffer<'_>,
) -> Result<(), Failed> {
    let at = |b: &Buffer<'_>| {
        // The last float must be inside: the kernel reads and writes
        // `len` floats from the start.
        b.ptr_at(len.saturating_sub(1))
            .map(|_| b.ptr)
            .ok_or_else(|| Failed::new(format!("internal: {len} floats do not fit the buffer")))
    };
    let pointers = [at(src)?, at(dst)?];
    // SAFETY: `kernel` is gpuprobe_stream_copy, loaded in `ctx`; both
    // buffers are allocations of `ctx` holding at least `len` floats
    // (checked by `ptr_at` above).
    unsafe {
        cuda::launch_stream_copy(
            ctx,
            kernel,
            stream_launch(len as u64, sms),
            len as u64,
            pointers,
        )?;
    }
    Ok(())
}

/// A PCIe link with a known generation and width, as `reading`.
fn pcie_link(link: &telemetry::Link, reading: LinkReading) -> Option<PcieLink> {
    match (&link.generation, &link.width) {
        (Reading::Value(generation), Reading::Value(width)) if *generation > 0 && *width > 0 => {
            Some(PcieLink {
                generation: *generation,
                width: *width,
                reading,
            })
        }
        _ => None,
    }
}

/// Bit patterns of finite floats in [2, 4) that differ from their
/// neighbours, so a float copied to the wrong place shows.
fn pattern(i: usize) -> f32 {
    f32::from_bits(0x4000_0000 | ((i as u32).wrapping_mul(0x9E37_79B1) >> 9))
}

/// The untimed check: `len` floats of `pattern` through every path the
/// measurements took (host to device, device copy, streaming kernel,
/// device to host; pageable host memory where pinned was refused), and
/// compared bit for bit on their return.
fn check(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    sms: u32,
    len: usize,
    [a, b]: [&Buffer<'_>; 2],
    pinned: Option<Pinned<'_>>,
) -> Result<(), Failed> {
    let sent: Vec<f32> = (0..len).map(pattern).collect();
    let mut back = vec![0f32; len];
    if let Some(mut pinned) = pinned {
        pinned.host()?[..len].copy_from_slice(&sent);
        a.upload_async(&pinned, len)?;
        b.copy_from(a, len)?;
        stream(ctx, kernel, sms, len, b, a)?;
        pinned.host()?[..len].fill(0.0);
        a.download_async(&pinned, len)?;
        back.copy_from_slice(&pinned.host()?[..len]);
    } else {
        a.upload(&sent)?;
        b.copy_from(a, len)?;
        stream(ctx, kernel, sms, len, b, a)?;
        a.download(&mut back)?;
    }
    match sent
        .iter()
        .zip(&back)
        .position(|(s, r)| s.to_bits() != r.to_bits())
    {
        None => Ok(()),
        Some(at) => {
            let wrong = sent
                .iter()
                .zip(&back)
                .filter(|(s, r)| s.to_bits() != r.to_bits())
                .count();
            let mut detail = format!(
                "data moved by the copies and the streaming kernel came back changed: {wrong} of \
                 {len} floats differ"
            );
            let _ = write!(
                detail,
                ", the first at float {at} (sent {:#010x}, got {:#010x})",
                sent[at].to_bits(),
                back[at].to_bits()
            );
            Err(Failed::new(detail))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_take_at_most_an_eighth_of_what_is_free() {
        const MIB: u64 = 1 << 20;
        // The request, when memory is plentiful.
        assert_eq!(buffer_floats(256 * MIB, 80 << 30, Some(64 << 30)), 64 << 20);
        // An eighth of the GPU's free memory.
        assert_eq!(buffer_floats(256 * MIB, 800 * MIB, None), 25 << 20);
        // An eighth of the host's available memory.
        assert_eq!(buffer_floats(256 * MIB, 80 << 30, Some(80 * MIB)), 10 << 18);
        // Whole 16-byte vectors.
        assert_eq!(buffer_floats(1000, 80 << 30, None), 248);
    }

    #[test]
    fn the_time_box_shrinks_with_the_deadline() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(time_box(None), BUDGET_MS));
        assert!(close(time_box(Some(60_000.0)), BUDGET_MS));
        assert!(close(time_box(Some(400.0)), 100.0));
        assert!(time_box(Some(40.0)) < MIN_BUDGET_MS);
    }

    #[test]
    fn host_copies_take_turns_until_the_deadline() {
        let lock = Mutex::new(());
        assert!(host_link_turn(&lock, None).is_some());
        let held = lock.lock().unwrap();
        assert!(host_link_turn(&lock, Some(Instant::now())).is_none());
        drop(held);
        // A GPU thread that panicked in its turn leaves the turn usable.
        let lock = std::sync::Arc::new(Mutex::new(()));
        let poisoner = std::sync::Arc::clone(&lock);
        let _ = std::thread::spawn(move || {
            let _turn = poisoner.lock().unwrap();
            panic!("a GPU thread that panicked");
        })
        .join();
        assert!(lock.is_poisoned());
        assert!(host_link_turn(&lock, Some(Instant::now())).is_some());
    }

    #[test]
    fn copies_fill_their_share_and_no_more() {
        // 1 MiB warm-up in 0.1 ms: a full 64 MiB copy takes 6.4 ms, so 9
        // fit in 60 ms.
        assert_eq!(fit(16 << 20, 1 << 18, 0.1, 60.0), (16 << 20, 9));
        // Fast copies: at most MAX_REPS.
        assert_eq!(fit(16 << 20, 1 << 18, 0.001, 60.0), (16 << 20, MAX_REPS));
        // A slow link: one copy of what fits, in whole vectors.
        assert_eq!(fit(16 << 20, 1 << 18, 10.0, 60.0), (6 << 18, 1));
        // A buffer no larger than the warm-up: the warm-up fitted, so it does.
        assert_eq!(fit(1000, 1000, 59.0, 60.0), (1000, 1));
        // A timer that saw no time: the most copies.
        assert_eq!(fit(1024, 1024, 0.0, 60.0), (1024, MAX_REPS));
    }

    #[test]
    fn the_pattern_is_finite_and_varied() {
        let values: Vec<f32> = (0..4096).map(pattern).collect();
        assert!(values
            .iter()
            .all(|v| v.is_finite() && *v >= 2.0 && *v < 4.0));
        let mut bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        assert_eq!(bits.len(), 4096);
    }
}
