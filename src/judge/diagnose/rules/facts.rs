//! What several rules read from the finished report: a variable as set, a
//! machine-wide check and cuInit's error, whether libcuda was found, the
//! device nodes the container was given, and the clock threshold and the
//! wording of throttle reasons the slowdown rules share, and the burn's
//! memory errors the memory-error rules share. One rule's own lookups stay
//! in its file.
use crate::report::{
    BurnError, BurnErrorKind, Check, DeviceNode, DriverLoadFailure, Report, ThrottleReason,
};
use crate::stage::Stage;

pub(super) fn var<'a>(r: &'a Report, name: &str) -> Option<&'a str> {
    r.environment
        .variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

pub(super) fn machine_check(r: &Report, stage: Stage) -> Option<&Check> {
    r.checks.iter().find(|c| stage.is(&c.name))
}

/// The CUresult cuInit failed with.
pub(super) fn init_error(r: &Report) -> Option<i32> {
    machine_check(r, Stage::CuInit)?
        .error
        .as_ref()
        .map(|e| e.code)
}

/// No libcuda anywhere on the loader path.
pub(super) fn cuda_missing(r: &Report) -> bool {
    r.driver.load_failure == Some(DriverLoadFailure::NotFound)
}

/// The device nodes the container was given: those present before the
/// driver library ran (see `DeviceNode::created_during_run`).
pub(super) fn given_nodes(r: &Report) -> impl Iterator<Item = &DeviceNode> {
    r.environment
        .device_nodes
        .iter()
        .filter(|n| !n.created_during_run)
}

pub(super) fn non_empty(evidence: Vec<String>) -> Option<Vec<String>> {
    (!evidence.is_empty()).then_some(evidence)
}

/// Below this fraction of its maximum the SM clock counts as held down.
pub(super) const CLOCK_HELD_DOWN: f64 = 0.9;

/// Throttle reasons as evidence names them, by their report words:
/// "sw_power_cap, hw_thermal_slowdown".
pub(super) fn listed<'r>(reasons: impl IntoIterator<Item = &'r ThrottleReason>) -> String {
    reasons
        .into_iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An uncorrectable memory error met by `burn`: the driver's 214 in its own
/// work, or NVML's volatile uncorrectable count growing.
pub(super) fn is_memory_error(kind: BurnErrorKind) -> bool {
    matches!(
        kind,
        BurnErrorKind::EccUncorrectable | BurnErrorKind::EccUncorrected
    )
}

/// When a burn error was seen, in words: the time and the interval.
pub(super) fn when(e: &BurnError) -> String {
    match e.interval {
        Some(i) => format!("at {:.1} s (interval {i})", e.at_ms / 1e3),
        None => format!("at {:.1} s (after the last interval)", e.at_ms / 1e3),
    }
}
