//! NVML's event stream: critical Xid errors and ECC errors as the driver
//! reports them, watched from a thread of its own for the life of a probe,
//! a burn, a bench, or a whole `watch`.
//!
//! nvmlDeviceRegisterEvents puts a GPU's chosen event types into an event
//! set, and nvmlEventSetWait blocks until one arrives or its timeout
//! passes. NVML delivers only what happens after registration (an Xid
//! logged before the watch began is lost), may keep only the last of
//! several Xids of one GPU, and may never deliver some (79, 119, 120: the
//! driver may be unable to); registration itself can answer NOT_SUPPORTED
//! (MIG without privileges, some drivers), and Windows has no event API.
//! All of that is "not available", never a fault (docs/report.md, "Events").
//!
//! The event set belongs to the watching thread (NVML's handle is not
//! shared); the events it collects are taken by the session at the end of
//! each probe (`Watcher::take`), so a `watch` cycle reports the events since
//! the cycle before. A wedged driver blocks the thread, never the probe.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[cfg(target_os = "linux")]
use crate::report::EventKind;
use crate::report::{EventGpu, Events, EventsStatus, GpuEvent};
use crate::telemetry::Loaded;

/// Events listed per report; the rest are counted.
#[cfg(target_os = "linux")]
const MAX_LISTED: usize = 100;

/// How long one nvmlEventSetWait blocks, so that a stop is seen this soon.
#[cfg(target_os = "linux")]
const WAIT_MS: u32 = 250;

/// How long the session waits for registration before its probe starts, so
/// that what the probe's work causes is watched (NVML loses what comes
/// before); a slow NVML only delays the watch, never the probe, past it.
const REGISTRATION_WAIT: Duration = Duration::from_secs(2);

/// What the watching thread has gathered since the last `take`.
struct Collected {
    status: EventsStatus,
    reason: Option<String>,
    gpus: Vec<EventGpu>,
    since: Instant,
    events: Vec<GpuEvent>,
    not_listed: u64,
}

/// A running watch of NVML's events.
pub struct Watcher {
    collected: Arc<Mutex<Collected>>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts watching every GPU NVML sees; returns once registration is
    /// done (or `REGISTRATION_WAIT` has passed). Without NVML, on Windows,
    /// or where no thread can be started, the watcher reports why no event
    /// can be seen.
    #[must_use]
    pub fn start(nvml: Option<&'static Loaded>) -> Watcher {
        let collected = Arc::new(Mutex::new(Collected {
            status: EventsStatus::NotAvailable,
            reason: None,
            gpus: Vec::new(),
            since: Instant::now(),
            events: Vec::new(),
            not_listed: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = Watcher {
            collected: Arc::clone(&collected),
            stop: Arc::clone(&stop),
        };
        let Some(nvml) = nvml else {
            watcher.not_available("no NVML: events come from libnvidia-ml");
            return watcher;
        };
        if cfg!(windows) {
            watcher.not_available("Windows has no NVML event API");
            return watcher;
        }
        let (registered, ready) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("nvml-events".into())
            .spawn(move || watch(nvml, &collected, &stop, &registered));
        match spawned {
            Ok(_) => {
                let _ = ready.recv_timeout(REGISTRATION_WAIT);
            }
            Err(e) => watcher.not_available(&format!("no thread to watch events on: {e}")),
        }
        watcher
    }

    fn not_available(&self, why: &str) {
        let mut c = lock(&self.collected);
        c.status = EventsStatus::NotAvailable;
        c.reason = Some(why.to_string());
    }

    /// The events since the last take (or the start), for one report; the
    /// watch goes on.
    #[must_use]
    pub fn take(&self) -> Events {
        let mut c = lock(&self.collected);
        let now = Instant::now();
        let since = std::mem::replace(&mut c.since, now);
        Events {
            status: c.status,
            reason: c.reason.clone(),
            gpus: c.gpus.clone(),
            watched_ms: (now - since).as_secs_f64() * 1e3,
            events: std::mem::take(&mut c.events),
            events_not_listed: std::mem::take(&mut c.not_listed),
        }
    }
}

impl Drop for Watcher {
    /// The thread ends at its next wait's timeout; nothing waits for it
    /// (a wedged driver may hold it for good).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn lock(c: &Mutex<Collected>) -> std::sync::MutexGuard<'_, Collected> {
    c.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Each GPU's NVML device, handle, index and UUID: to name the GPU of an
/// event even once it is lost (a lost GPU answers no getter), and to find
/// which GPU the event wait's GPU_IS_LOST is about.
#[cfg(target_os = "linux")]
type Handles = Vec<(nvml_wrapper::Device<'static>, usize, u32, Option<String>)>;

/// The watching thread: registers every GPU, says so on `registered`, then
/// waits for events until `stop`.
#[cfg(target_os = "linux")]
fn watch(
    nvml: &'static Loaded,
    collected: &Mutex<Collected>,
    stop: &AtomicBool,
    registered: &mpsc::Sender<()>,
) {
    let set = match nvml.nvml.create_event_set() {
        Ok(set) => set,
        Err(e) => {
            lock(collected).reason = Some(format!("nvmlEventSetCreate: {e}"));
            let _ = registered.send(());
            return;
        }
    };
    let (set, gpus, handles) = register(nvml, set);
    let watched = gpus.iter().any(|g| !g.registered.is_empty());
    {
        let mut c = lock(collected);
        c.gpus = gpus;
        if watched {
            c.status = EventsStatus::Watched;
        } else {
            c.reason = Some(
                "no GPU accepted event registration (not supported: MIG without privileges, \
                 or this driver)"
                    .into(),
            );
        }
    }
    let _ = registered.send(());
    if let Some(set) = set.filter(|_| watched) {
        deliver(&set, &handles, collected, stop);
    }
}

/// Registers every GPU NVML sees for the kinds gpuprobe watches that it
/// supports; the set (a new one after a refusal, which frees it), what each
/// GPU took, and the GPUs' handles.
#[cfg(target_os = "linux")]
fn register(
    nvml: &'static Loaded,
    set: nvml_wrapper::EventSet<'static>,
) -> (
    Option<nvml_wrapper::EventSet<'static>>,
    Vec<EventGpu>,
    Handles,
) {
    use nvml_wrapper::bitmasks::event::EventTypes;
    let wanted = EventTypes::CRITICAL_XID_ERROR
        | EventTypes::DOUBLE_BIT_ECC_ERROR
        | EventTypes::SINGLE_BIT_ECC_ERROR
        | EventTypes::CLOCK_CHANGE;
    let mut set = Some(set);
    let (mut gpus, mut handles) = (Vec::new(), Vec::new());
    for index in 0..nvml.nvml.device_count().unwrap_or(0) {
        let device = nvml.nvml.device_by_index(index);
        let uuid = device.as_ref().ok().and_then(|d| d.uuid().ok());
        if let Ok(d) = nvml.nvml.device_by_index(index) {
            // SAFETY: the handle is only compared, never used to call NVML.
            let handle = unsafe { d.handle() } as usize;
            handles.push((d, handle, index, uuid.clone()));
        }
        let mut gpu = EventGpu {
            nvml_index: index,
            uuid,
            registered: Vec::new(),
            error: None,
        };
        let types = device
            .and_then(|d| Ok((d.supported_event_types()? & wanted, d)))
            .map_err(|e| e.to_string());
        set = match (types, set) {
            (Ok((types, device)), Some(s)) if !types.is_empty() => {
                match device.register_events(types, s) {
                    Ok(s) => {
                        gpu.registered = kinds(types);
                        Some(s)
                    }
                    // nvml-wrapper frees a set whose registration failed:
                    // a new one for the GPUs after this.
                    Err(e) => {
                        gpu.error = Some(e.error.to_string());
                        nvml.nvml.create_event_set().ok()
                    }
                }
            }
            (Ok(_), s) => {
                gpu.error = Some("none of the watched event types is supported".into());
                s
            }
            (Err(e), s) => {
                gpu.error = Some(e);
                s
            }
        };
        gpus.push(gpu);
    }
    (set, gpus, handles)
}

/// Waits for events on `set` until `stop`, recording each.
#[cfg(target_os = "linux")]
fn deliver(
    set: &nvml_wrapper::EventSet<'static>,
    handles: &Handles,
    collected: &Mutex<Collected>,
    stop: &AtomicBool,
) {
    use nvml_wrapper::error::NvmlError;
    while !stop.load(Ordering::Acquire) {
        let event = match set.wait(WAIT_MS) {
            Ok(data) => {
                // SAFETY: as in `register`, compared only.
                let handle = unsafe { data.device.handle() } as usize;
                let (nvml_index, uuid) = handles
                    .iter()
                    .find(|(_, h, _, _)| *h == handle)
                    .map_or((None, None), |(_, _, i, u)| (Some(*i), u.clone()));
                let Some(kind) = kinds(data.event_type).first().copied() else {
                    continue;
                };
                let xid = match data.event_data {
                    Some(nvml_wrapper::enums::event::XidError::Value(v)) => Some(v),
                    _ => None,
                };
                GpuEvent {
                    at_ms: 0.0,
                    nvml_index,
                    uuid,
                    kind,
                    xid,
                }
            }
            Err(NvmlError::Timeout) => continue,
            Err(e) => {
                // The wait answers the same until the GPU is back: the
                // thread slows down rather than spin, and says each lost
                // GPU once (the one whose own getters answer GPU_IS_LOST).
                std::thread::sleep(Duration::from_millis(u64::from(WAIT_MS)));
                if matches!(e, NvmlError::GpuLost) {
                    for (device, _, index, uuid) in handles {
                        let said = lock(collected)
                            .events
                            .iter()
                            .any(|e| e.kind == EventKind::GpuLost && e.nvml_index == Some(*index));
                        if !said && matches!(device.uuid(), Err(NvmlError::GpuLost)) {
                            record(
                                collected,
                                GpuEvent {
                                    at_ms: 0.0,
                                    nvml_index: Some(*index),
                                    uuid: uuid.clone(),
                                    kind: EventKind::GpuLost,
                                    xid: None,
                                },
                            );
                        }
                    }
                }
                continue;
            }
        };
        record(collected, event);
    }
}

/// Keeps one event, stamped now, or counts it beyond `MAX_LISTED`.
#[cfg(target_os = "linux")]
fn record(collected: &Mutex<Collected>, event: GpuEvent) {
    let mut c = lock(collected);
    let event = GpuEvent {
        at_ms: c.since.elapsed().as_secs_f64() * 1e3,
        ..event
    };
    if c.events.len() < MAX_LISTED {
        c.events.push(event);
    } else {
        c.not_listed += 1;
    }
}

#[cfg(not(target_os = "linux"))]
fn watch(
    _nvml: &'static Loaded,
    collected: &Mutex<Collected>,
    _stop: &AtomicBool,
    registered: &mpsc::Sender<()>,
) {
    lock(collected).reason = Some("NVML's event API is Linux-only".into());
    let _ = registered.send(());
}

/// The kinds among NVML's event type bits.
#[cfg(target_os = "linux")]
fn kinds(types: nvml_wrapper::bitmasks::event::EventTypes) -> Vec<EventKind> {
    use nvml_wrapper::bitmasks::event::EventTypes;
    [
        (EventTypes::CRITICAL_XID_ERROR, EventKind::CriticalXid),
        (EventTypes::DOUBLE_BIT_ECC_ERROR, EventKind::DoubleBitEcc),
        (EventTypes::SINGLE_BIT_ECC_ERROR, EventKind::SingleBitEcc),
        (EventTypes::CLOCK_CHANGE, EventKind::ClockChange),
    ]
    .into_iter()
    .filter(|(bit, _)| types.contains(*bit))
    .map(|(_, kind)| kind)
    .collect()
}
