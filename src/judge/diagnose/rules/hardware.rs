//! Faults NVML reports in a GPU itself: fallen off the bus, memory errors
//! judged as NVIDIA's GPU memory error management does by architecture (row
//! remapping or page retirement), and a PCIe link below its maximum.
use super::facts::{is_memory_error, when};
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{
    Action, ComputeCapability, LinkState, Reading, Report, Severity, Telemetry, Unavailable,
};

/// Readings of every device with telemetry, labelled.
fn telemetry(r: &Report) -> impl Iterator<Item = (Option<u32>, String, &Telemetry)> {
    r.devices.iter().filter_map(|d| {
        d.telemetry.as_ref().map(|t| {
            (
                Some(d.index),
                format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?")),
                t,
            )
        })
    })
}

pub(super) const GP014: Rule = Rule {
    code: "GP014",
    severity: Severity::Error,
    summary: "A GPU has fallen off the bus",
    when: "NVML answers NVML_ERROR_GPU_IS_LOST (15) for a GPU",
    fix: "Check the host's kernel log for Xid 79, reset the GPU (`nvidia-smi -r -i N`) or reboot, and keep the node drained until gpuprobe passes again.",
    action: Remedy::Always(Action::RebootNode),
    trigger: Trigger::PerDevice(gpu_lost),
};

fn gpu_lost(r: &Report) -> DeviceEvidence {
    let mut evidence: Vec<(Option<u32>, String)> = r
        .nvml
        .lost_devices
        .iter()
        .map(|i| (None, format!("NVML GPU {i}: GPU is lost")))
        .collect();
    for (device, who, t) in telemetry(r) {
        if t.temperature_celsius == Reading::Unavailable(Unavailable::GpuLost) {
            evidence.push((device, format!("{who}: NVML says GPU is lost")));
        }
    }
    evidence
}

/// The first compute capability that remaps rows (GA100, Ampere).
const ROW_REMAPPING: ComputeCapability = ComputeCapability::new(8, 0);

/// Whether the GPU repairs memory by row remapping (Ampere GA100 and
/// newer: compute capability 8.0 and up; `None` when its compute
/// capability is unknown, and then both repairs' signals are judged),
/// which replaced page retirement
/// (NVIDIA, "GPU Memory Error Management": on these GPUs "retired pages"
/// do not apply, and remapping is "not supported on pre-Ampere GPUs").
fn remaps_rows(r: &Report, index: Option<u32>) -> Option<bool> {
    r.devices
        .iter()
        .find(|d| Some(d.index) == index)
        .and_then(|d| d.compute_capability)
        .map(|cc| cc >= ROW_REMAPPING)
}

/// A row remap that waits for a reset on a GPU that remaps rows, with no
/// remap failed: the uncorrectable errors were contained (GP036).
fn remap_pending_only(t: &Telemetry) -> bool {
    t.remapped_rows_pending == Reading::Value(true)
        && t.remapped_rows_failure != Reading::Value(true)
}

/// Whether NVML's memory-error signals, read after the probe's work, say
/// that the GPU's uncorrectable errors were contained: a GPU that remaps
/// rows with a remap pending and none failed (GP036's condition). Then an
/// uncorrectable error met under load (`burn`) is GP036's to judge, not
/// GP033's.
pub(super) fn contained(r: &Report, index: u32) -> bool {
    r.devices
        .iter()
        .find(|d| d.index == index)
        .and_then(|d| d.telemetry.as_ref())
        .is_some_and(|t| {
            remaps_rows(r, Some(index)) == Some(true)
                && remap_pending_only(t)
                && t.unrepairable_memory != Reading::Value(true)
        })
}

pub(super) const GP015: Rule = Rule {
    code: "GP015",
    severity: Severity::Error,
    summary: "GPU memory has uncorrectable errors that need the GPU out of service",
    when: "judged by architecture, as NVIDIA's GPU memory error management does. A GPU that remaps rows (compute capability 8.0+): a row remap failed, or volatile uncorrectable ECC errors with no row remap pending to contain them (a pending remap alone is GP036). A GPU that retires pages (before 8.0): volatile uncorrectable ECC errors, or pages pending retirement. Any GPU: the driver flags memory it cannot repair (nvmlDeviceGetUnrepairableMemoryFlag_v1, drivers from R590)",
    fix: "Drain the node. A failed row remap, or memory the driver flags as unrepairable, means the GPU has no spare rows left: replace it. Pages pending retirement are retired at the next GPU reset (`nvidia-smi -r`) or reboot; uncorrectable errors that recur after it mean the GPU needs replacing.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(memory_errors),
};

/// GP015: memory faults that need the GPU out of service, judged as
/// NVIDIA's memory error management does by architecture. With row
/// remapping (Ampere+): a remap that failed (no spare rows: replace the
/// GPU), or uncorrectable errors with no remap pending to contain them; a
/// pending remap alone is GP036's. With page retirement (before Ampere):
/// uncorrectable errors, or pages pending retirement. On any GPU, the
/// driver's flag for memory it cannot repair (R590 on).
fn memory_errors(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (device, who, t) in telemetry(r) {
        // The driver's own verdict on its repairs, whatever contained them.
        if t.unrepairable_memory == Reading::Value(true) {
            evidence.push((
                device,
                format!("{who}: the driver flags memory it cannot repair"),
            ));
        }
        let remapping = remaps_rows(r, device);
        if remapping == Some(true) && remap_pending_only(t) {
            continue;
        }
        if let Some(n) = t.ecc_uncorrected_volatile.value().filter(|n| **n > 0) {
            evidence.push((
                device,
                format!("{who}: {n} uncorrectable ECC error(s) since the driver loaded"),
            ));
        }
        let remap: [(&Reading<bool>, &str); 2] = [
            (
                &t.remapped_rows_pending,
                "a row remap is pending (needs a GPU reset)",
            ),
            (&t.remapped_rows_failure, "a row remap failed"),
        ];
        let retire = [(&t.retired_pages_pending, "pages are pending retirement")];
        let signals: Vec<(&Reading<bool>, &str)> = match remapping {
            Some(true) => remap.to_vec(),
            Some(false) => retire.to_vec(),
            None => remap.into_iter().chain(retire).collect(),
        };
        for (reading, what) in signals {
            if *reading == Reading::Value(true) {
                evidence.push((device, format!("{who}: {what}")));
            }
        }
    }
    evidence
}

pub(super) const GP036: Rule = Rule {
    code: "GP036",
    severity: Severity::Warning,
    summary: "Uncorrectable memory errors were contained, and a row remap waits for a GPU reset",
    when: "a GPU that remaps rows (compute capability 8.0+: Ampere GA100 and newer) reports a pending row remap and no failed one, whatever its volatile uncorrectable count: error containment kept the error to the process that hit it (CUDA_ERROR_ECC_UNCORRECTABLE, 214, sticky for that context only), and the remap takes effect at the next reset (NVIDIA, GPU Memory Error Management). Also when that process was `burn`'s own: the evidence says in which interval the error ended that GPU's burn, and what NVML read after it",
    fix: "Reset the GPU when it is idle (`nvidia-smi -r -i N`) or at the next maintenance window: the remap is applied then. Jobs can run meanwhile; the one that hit the error must restart. Drain and replace only if a remap fails or errors recur after the reset.",
    action: Remedy::Always(Action::ResetGpu),
    trigger: Trigger::PerDevice(remap_pending),
};

/// GP036: on a GPU that remaps rows, uncorrectable errors contained by a
/// row remap that waits for a reset, with no remap failed; with what
/// `burn` met of them on that GPU (the error that ended its burn, NVML's
/// counters that grew).
fn remap_pending(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (device, who, t) in telemetry(r)
        .filter(|(device, _, t)| remaps_rows(r, *device) == Some(true) && remap_pending_only(t))
    {
        let errors = t
            .ecc_uncorrected_volatile
            .value()
            .filter(|n| **n > 0)
            .map_or(String::new(), |n| {
                format!("{n} uncorrectable ECC error(s) since the driver loaded; ")
            });
        evidence.push((
            device,
            format!("{who}: {errors}a row remap is pending (applied at the next GPU reset)"),
        ));
        let burn = r
            .devices
            .iter()
            .find(|d| Some(d.index) == device)
            .and_then(|d| d.burn.as_ref());
        for e in burn
            .iter()
            .flat_map(|b| &b.errors)
            .filter(|e| is_memory_error(e.kind))
        {
            evidence.push((
                device,
                format!(
                    "{who}: under sustained load (`burn`), {}: {}",
                    when(e),
                    e.detail
                ),
            ));
        }
    }
    evidence
}

pub(super) const GP016: Rule = Rule {
    code: "GP016",
    severity: Severity::Warning,
    summary: "A GPU's PCIe link runs below its maximum",
    when: "in readings taken while gpuprobe's work had run long enough for the link to ramp up, the highest generation is below the maximum of the GPU and its slot, or the lowest width is below its maximum (an idle link may train down in generation and width to save power, so `list` and idle readings never judge the link)",
    fix: "Reseat the card and check the riser and slot, the BIOS PCIe settings and the GPU's power cables; a degraded link slows every host transfer.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(pcie_degraded),
};

/// An idle link trains down to save power, in generation and in width
/// (nvidia-smi(1), "Link Width/Generation": the current values "may be
/// reduced when the GPU is not in use"), and back up with load, not
/// instantly (checks::gpu::LINK_RAMP). So the link is judged only from
/// readings taken while gpuprobe's work had run long enough to ramp it
/// (`LinkState::UnderLoad`): the generation from the highest, the width
/// from the lowest, both against the maximum of the GPU and its slot.
fn pcie_degraded(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (device, who, t) in telemetry(r) {
        if t.pcie_link_state != Some(LinkState::UnderLoad) {
            continue;
        }
        let pair = |a: &Reading<u32>, b: &Reading<u32>| a.value().copied().zip(b.value().copied());
        if let Some((cur, max)) =
            pair(&t.pcie_generation, &t.pcie_generation_max).filter(|(c, m)| c < m)
        {
            evidence.push((device, format!("{who}: PCIe gen {cur} of {max} under load")));
        }
        if let Some((cur, max)) =
            pair(&t.pcie_width_lanes, &t.pcie_width_max_lanes).filter(|(c, m)| c < m)
        {
            evidence.push((device, format!("{who}: PCIe x{cur} of x{max} under load")));
        }
    }
    evidence
}
