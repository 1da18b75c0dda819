//! The GPU events NVML delivered while gpuprobe ran (`Report::events`):
//! critical Xid errors, ECC errors, and the limits of what NVML can say.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// NVML's event stream over one run (or one `watch` cycle): what was
/// registered, and every event delivered after that.
///
/// NVML delivers events only from registration on (events before it are
/// lost), may collapse several Xids of one GPU into the last, may never
/// deliver some (Xid 79, 119, 120 can leave the driver unable to), and
/// Windows has no event API: an empty list says only that NVML delivered
/// nothing (docs/report.md, "Events").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Events {
    pub status: EventsStatus,
    /// Why events could not be watched, in words, when `status` says so.
    pub reason: Option<String>,
    /// Every GPU NVML sees, with what was registered on it.
    pub gpus: Vec<EventGpu>,
    /// How long events were watched for this report, ms.
    pub watched_ms: f64,
    /// The events, in the order NVML delivered them (at most 100).
    pub events: Vec<GpuEvent>,
    /// Events delivered beyond the 100 listed.
    pub events_not_listed: u64,
}

/// Whether NVML's events were watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventsStatus {
    /// Registered on at least one GPU, and watched.
    Watched,
    /// NVML offers no events here: no NVML, Windows (no event API), or
    /// every GPU refused registration (NOT_SUPPORTED: MIG without
    /// privileges, some drivers). Never a fault of the GPU.
    NotAvailable,
}

/// One GPU as the event watch saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventGpu {
    /// NVML's index.
    pub nvml_index: u32,
    pub uuid: Option<String>,
    /// The event kinds registered on it (those of gpuprobe's four it
    /// supports, nvmlDeviceGetSupportedEventTypes).
    pub registered: Vec<EventKind>,
    /// Why registration failed, when it did (e.g. "not supported").
    pub error: Option<String>,
}

/// An event kind gpuprobe registers for (nvmlEventType*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// nvmlEventTypeXidCriticalError: the driver logged a critical Xid.
    CriticalXid,
    /// nvmlEventTypeDoubleBitEccError: an uncorrectable memory error.
    DoubleBitEcc,
    /// nvmlEventTypeSingleBitEccError: a corrected memory error.
    SingleBitEcc,
    /// nvmlEventTypeClock: the GPU's clocks changed.
    ClockChange,
    /// Not an NVML event type: the event wait answered GPU_IS_LOST, the
    /// GPU fell off the bus (or NVML lost it).
    GpuLost,
}

/// One event NVML delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuEvent {
    /// When it was delivered, ms after the watch of this report began.
    pub at_ms: f64,
    /// NVML's index of the GPU, when the event named one.
    pub nvml_index: Option<u32>,
    pub uuid: Option<String>,
    pub kind: EventKind,
    /// The Xid, for `critical_xid` (null where NVML gave 999, "unknown").
    pub xid: Option<u64>,
}
