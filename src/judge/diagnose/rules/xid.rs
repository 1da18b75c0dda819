//! The Xid errors NVML delivered while gpuprobe watched (`Report::events`),
//! judged by NVIDIA's Xid catalog: a hardware or driver fault needs the GPU
//! out of service or reset; an application's own error (13, 31, 43, ...) is
//! that application's, not the node's, unless it repeats or gpuprobe's own
//! verified kernels met it.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, EventKind, GpuEvent, Report, Severity};

/// What NVIDIA's Xid catalog says to do first about an Xid (its
/// "Resolution Bucket (Immediate Action)", docs.nvidia.com/deploy/xid-errors,
/// "Analyzing Xid Errors with the Xid Catalog", Ampere and newer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    /// RESTART_APP: the application's own error (a bad address, an
    /// exception in its kernel); the GPU serves others on.
    Application,
    /// RESET_GPU: drain the GPU's work and reset it.
    ResetGpu,
    /// RESTART_BM: reboot the node (the GPU is off the bus).
    RebootNode,
    /// The link between GPUs: check NVLink (the catalog's NVLink workflow).
    CheckNvlink,
    /// A memory repair recorded or an error contained: reset when
    /// convenient for the repair to take effect.
    ResetWhenConvenient,
    /// Worth watching; act if it repeats.
    Watch,
    /// Xid 154: the driver changed the GPU's recovery action, which
    /// `telemetry.recovery_action` (GP039) says.
    RecoveryAction,
}

/// The Xids gpuprobe names: (Xid, what it is, bucket). Descriptions and
/// buckets from NVIDIA's Xid catalog; an Xid not listed is judged as
/// unknown (a warning pointing at the catalog).
const CATALOG: &[(u64, &str, Bucket)] = &[
    (13, "graphics engine exception", Bucket::Application),
    (31, "GPU memory page fault", Bucket::Application),
    (
        43,
        "GPU stopped processing (channel reset)",
        Bucket::Application,
    ),
    (
        45,
        "preemptive cleanup after an earlier error",
        Bucket::Application,
    ),
    (48, "double-bit ECC error", Bucket::ResetGpu),
    (61, "internal micro-controller breakpoint", Bucket::ResetGpu),
    (62, "internal micro-controller halt", Bucket::ResetGpu),
    (
        63,
        "ECC page retirement or row remap recorded",
        Bucket::ResetWhenConvenient,
    ),
    (
        64,
        "ECC page retirement or row remap failed",
        Bucket::ResetGpu,
    ),
    (68, "video decoder exception", Bucket::Application),
    (69, "graphics engine class error", Bucket::Application),
    (74, "NVLink error", Bucket::CheckNvlink),
    (79, "GPU has fallen off the bus", Bucket::RebootNode),
    (92, "high single-bit ECC error rate", Bucket::Watch),
    (94, "contained ECC error", Bucket::ResetWhenConvenient),
    (95, "uncontained ECC error", Bucket::ResetGpu),
    (109, "context switch timeout", Bucket::Application),
    (119, "GSP RPC timeout", Bucket::ResetGpu),
    (120, "GSP error", Bucket::ResetGpu),
    (121, "C2C link corrected error", Bucket::Watch),
    (140, "unrecovered ECC error", Bucket::ResetGpu),
    (154, "GPU recovery action changed", Bucket::RecoveryAction),
];

/// An application Xid seen this often on one GPU in one report is the
/// GPU's problem, whoever's work met it.
const REPEATED: usize = 3;

/// CUresults of an exception in a running kernel (cuda.h: 700 illegal
/// address, 714 hardware stack error, 715 illegal instruction, 716
/// misaligned address, 717 invalid address space, 718 invalid PC, 719
/// launch failed): the errors a context sees when an application Xid (13,
/// 31, 43) is its own.
const KERNEL_EXCEPTIONS: [i32; 7] = [700, 714, 715, 716, 717, 718, 719];

fn lookup(xid: u64) -> Option<(&'static str, Bucket)> {
    CATALOG
        .iter()
        .find(|(x, _, _)| *x == xid)
        .map(|(_, what, bucket)| (*what, *bucket))
}

/// The CUDA index of the probed GPU an event concerns (by UUID, a MIG
/// instance's parent too).
fn cuda_index(r: &Report, e: &GpuEvent) -> Option<u32> {
    let uuid = e.uuid.as_deref()?;
    r.devices
        .iter()
        .find(|d| d.uuid.as_deref() == Some(uuid) || d.mig_parent_uuid.as_deref() == Some(uuid))
        .map(|d| d.index)
}

/// Whether gpuprobe's own context on that GPU met a kernel exception in
/// this report: Xid events carry no process, so an application Xid counts
/// as gpuprobe's only then.
fn own(r: &Report, index: Option<u32>) -> bool {
    r.devices
        .iter()
        .filter(|d| Some(d.index) == index)
        .flat_map(|d| &d.checks)
        .filter_map(|c| c.error.as_ref())
        .any(|e| KERNEL_EXCEPTIONS.contains(&e.code))
}

/// The Xid events of the report, each with its catalog entry.
fn xids(r: &Report) -> impl Iterator<Item = (&GpuEvent, u64, Option<(&'static str, Bucket)>)> {
    r.events
        .iter()
        .flat_map(|ev| &ev.events)
        .filter(|e| e.kind == EventKind::CriticalXid)
        .filter_map(|e| e.xid.map(|x| (e, x, lookup(x))))
}

fn line(e: &GpuEvent, xid: u64, what: &str, todo: &str) -> String {
    format!(
        "NVML GPU {} ({}): Xid {xid} ({what}) {:.0} ms into the watch: {todo}",
        e.nvml_index.map_or("?".into(), |i| i.to_string()),
        e.uuid.as_deref().unwrap_or("?"),
        e.at_ms
    )
}

/// How many application Xids of this number the GPU had in the report.
fn count(r: &Report, e: &GpuEvent, xid: u64) -> usize {
    xids(r)
        .filter(|(o, x, _)| *x == xid && o.uuid == e.uuid)
        .count()
}

pub(super) const GP040: Rule = Rule {
    code: "GP040",
    severity: Severity::Error,
    summary: "A GPU reported a hardware or driver fault (Xid) while gpuprobe watched",
    when: "NVML delivered, while gpuprobe ran, a critical Xid that NVIDIA's Xid catalog answers with a GPU reset, a reboot or an NVLink check (48, 61, 62, 64, 74, 79, 95, 119, 120, 140, or 154, the recovery action changed), the GPU was lost (NVML_ERROR_GPU_IS_LOST), or an application Xid (13, 31, 43, 45, 68, 69, 109) met gpuprobe's own verified kernels (its context saw a kernel exception, 700 or 714-719, on that GPU)",
    fix: "Drain the node and do what each evidence line says: reset the GPU (`nvidia-smi -r -i <index>` once no process uses it), reboot the node for a GPU off the bus (Xid 79), check the NVLink links for Xid 74 (`nvidia-smi nvlink -s`, `-e`); keep the kernel log (`dmesg | grep -i xid`) for support. A GPU whose fault repeats after a reset needs replacing.",
    action: Remedy::Always(Action::DrainAndReset),
    trigger: Trigger::PerDevice(hardware_xids),
};

fn hardware_xids(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (e, xid, entry) in xids(r) {
        let index = cuda_index(r, e);
        let todo = match entry {
            Some((_, Bucket::ResetGpu)) => "drain the GPU and reset it",
            Some((_, Bucket::RebootNode)) => "reboot the node",
            Some((_, Bucket::CheckNvlink)) => "check the GPU's NVLink links, then reset it",
            Some((_, Bucket::RecoveryAction)) => {
                "do what its recovery action says (telemetry.recovery_action, GP039)"
            }
            Some((_, Bucket::Application)) if own(r, index) => {
                "gpuprobe's own verified kernel met it: the GPU is at fault, drain and reset it"
            }
            _ => continue,
        };
        let what = entry.map_or("", |(w, _)| w);
        evidence.push((index, line(e, xid, what, todo)));
    }
    for e in r.events.iter().flat_map(|ev| &ev.events) {
        if e.kind == EventKind::GpuLost {
            evidence.push((
                cuda_index(r, e),
                format!(
                    "NVML GPU {} ({}): fell off the bus while gpuprobe watched (the event wait \
                     answered GPU_IS_LOST): reboot the node",
                    e.nvml_index.map_or("?".into(), |i| i.to_string()),
                    e.uuid.as_deref().unwrap_or("?")
                ),
            ));
        }
    }
    evidence
}

pub(super) const GP041: Rule = Rule {
    code: "GP041",
    severity: Severity::Warning,
    summary: "A GPU reported an Xid that needs attention, not a drain",
    when: "NVML delivered a critical Xid that NVIDIA's Xid catalog answers with a reset when convenient or with watching (63 and 94: a row remap recorded or an error contained; 92 and 121: corrected errors at a high rate), an Xid gpuprobe's table does not name, or the same application Xid three or more times on one GPU in one run",
    fix: "Schedule a GPU reset when the GPU is idle for a recorded row remap or a contained error to take effect (`nvidia-smi -r -i <index>`); watch corrected-error Xids, and replace a GPU whose rate keeps rising; look up an unnamed Xid in NVIDIA's Xid catalog (docs.nvidia.com/deploy/xid-errors). An application Xid that repeats on one GPU, whoever's work meets it, is worth a `burn` of that GPU.",
    action: Remedy::Always(Action::ResetGpu),
    trigger: Trigger::PerDevice(attention_xids),
};

fn attention_xids(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    // A repeated application Xid is said once per GPU, at its first.
    let mut said: Vec<(Option<&str>, u64)> = Vec::new();
    for (e, xid, entry) in xids(r) {
        let index = cuda_index(r, e);
        if said.contains(&(e.uuid.as_deref(), xid)) {
            continue;
        }
        let line = match entry {
            Some((what, Bucket::ResetWhenConvenient)) => {
                line(e, xid, what, "reset the GPU when it is idle")
            }
            Some((what, Bucket::Watch)) => line(e, xid, what, "watch it; act if it repeats"),
            None => line(
                e,
                xid,
                "not in gpuprobe's table",
                "see NVIDIA's Xid catalog",
            ),
            Some((what, Bucket::Application)) if !own(r, index) && count(r, e, xid) >= REPEATED => {
                let n = count(r, e, xid);
                line(
                    e,
                    xid,
                    what,
                    &format!("seen {n} times on this GPU in this run"),
                )
            }
            _ => continue,
        };
        said.push((e.uuid.as_deref(), xid));
        evidence.push((index, line));
    }
    evidence
}

pub(super) const GP042: Rule = Rule {
    code: "GP042",
    severity: Severity::Info,
    summary: "Another application met an error on a GPU (an application Xid): not the node's fault",
    when: "NVML delivered an application Xid (13, 31, 43, 45, 68, 69, 109: NVIDIA's Xid catalog answers them with restarting the application) fewer than three times on a GPU, while gpuprobe's own kernels there ran without a kernel exception: Xid events carry no process, so it belongs to another process on the GPU (a job beside gpuprobe)",
    fix: "Nothing to do on the node: the application that met it should look at its own error (an illegal address, an exception in its kernel). If it repeats, GP041 says so.",
    action: Remedy::Always(Action::None),
    trigger: Trigger::PerDevice(application_xids),
};

fn application_xids(r: &Report) -> DeviceEvidence {
    xids(r)
        .filter(|(_, _, entry)| matches!(entry, Some((_, Bucket::Application))))
        .filter(|(e, xid, _)| !own(r, cuda_index(r, e)) && count(r, e, *xid) < REPEATED)
        .map(|(e, xid, entry)| {
            let what = entry.map_or("", |(w, _)| w);
            (
                cuda_index(r, e),
                line(e, xid, what, "another process's error, not the GPU's"),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_sorted_and_has_each_xid_once() {
        let xids: Vec<u64> = CATALOG.iter().map(|(x, _, _)| *x).collect();
        let mut sorted = xids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(xids, sorted);
        // The application Xids the Kubernetes device plugin also skips
        // (../shared/FACTS.md section 13) are the application's here.
        for x in [13, 31, 43, 45, 68, 109] {
            assert_eq!(lookup(x).map(|(_, b)| b), Some(Bucket::Application), "{x}");
        }
    }
}
