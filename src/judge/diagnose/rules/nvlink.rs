//! A GPU's NVLinks (`DeviceReport::nvlink`): a link the GPU itself says
//! should be up that is down, and error counters that grew while gpuprobe
//! ran. What makes a link expected is the probe's reading
//! (telemetry/nvlink.rs): every link of a GPU on NVSwitches, and any link
//! that was up at either reading; a PCIe-only GPU expects none.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{
    Action, DeviceReport, NvLink, NvLinkCounter, NvLinkLink, NvLinkState, Report, Severity,
};

pub(super) const GP055: Rule = Rule {
    code: "GP055",
    severity: Severity::Error,
    summary: "An NVLink the GPU should have up is down",
    when: "NVML reports a link inactive that the GPU's own report says should be up: any link of a GPU whose links go to NVSwitches, as a link up to one shows (an HGX board: every one of an H100's 18 or an A100's 12 is cabled to a switch), or a link that was active before gpuprobe's work and inactive after it. A link inactive at both readings on a GPU wired GPU to GPU (a PCIe card without its NVLink bridge, or a bridge that wires only some links) is not a fault and is not reported, nor is anything on a GPU without NVLink or with no link up at all (an HGX GPU passed alone to a VM has its NVLinks out of use by design)",
    fix: "`nvidia-smi nvlink --status -i <index>` shows the links as the driver sees them, `nvidia-smi nvlink -e -i <index>` their error counters. A link down breaks NCCL's NVLink paths (its collectives fall back to slower paths, or fail, and the all-reduce bandwidth of the whole node drops), so drain multi-GPU jobs from the node. Then reset the GPU (`nvidia-smi -r -i <index>` once no process uses it) or reboot the node, and on an NVSwitch system check the fabric manager's log (`journalctl -u nvidia-fabricmanager`); a link that stays down after that needs the board, the bridge or the baseboard serviced (NVIDIA's health checks: drain, reset the GPU, restart the OS, then service).",
    action: Remedy::Always(Action::ResetGpu),
    trigger: Trigger::PerDevice(links_down),
};

/// Each GPU with links down: which, where they went, and what is still up.
fn links_down(r: &Report) -> DeviceEvidence {
    probed(r)
        .filter_map(|(d, n)| {
            let down: Vec<&NvLinkLink> = n.listed().iter().filter(|l| l.is_down()).collect();
            if down.is_empty() {
                return None;
            }
            let words: Vec<String> = down.iter().map(|l| describe_down(l)).collect();
            let wired = if n.nvswitch {
                "its links go to NVSwitches, so every one should be up"
            } else {
                "wired GPU to GPU"
            };
            Some((
                Some(d.index),
                format!(
                    "{}: {} of {} expected NVLinks active ({wired}); {}",
                    who(d),
                    n.active(),
                    n.expected(),
                    words.join("; ")
                ),
            ))
        })
        .collect()
}

fn describe_down(l: &NvLinkLink) -> String {
    let when = match l.state_before {
        Some(NvLinkState::Active) => "went down during the run",
        Some(NvLinkState::Inactive) => "inactive before and after the run",
        None => "inactive",
    };
    let to = l.remote.as_ref().map_or(String::new(), |r| {
        format!(
            " (to {} {})",
            r.kind.as_str(),
            r.pci_bus_id.as_deref().unwrap_or("?")
        )
    });
    format!("link {} {when}{to}", l.link)
}

/// The GPU in words for evidence.
fn who(d: &DeviceReport) -> String {
    format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?"))
}

/// The GPUs whose links NVML listed.
fn probed(r: &Report) -> impl Iterator<Item = (&DeviceReport, &NvLink)> {
    r.devices
        .iter()
        .filter_map(|d| d.nvlink.as_ref().map(|n| (d, n)))
}

/// Replay and recovery errors at all: DCGM's health watch fails a GPU for
/// one (DCGM_LIMIT_MAX_NVLINK_ERROR 1 in dcgm_gpu_hardware_limits.h;
/// NVIDIA/DCGM modules/health/DcgmHealthWatch.cpp, MonitorNVLink: replay
/// and recovery errors are DCGM_FR_NVLINK_ERROR_CRITICAL).
const REPLAY_RECOVERY_LIMIT: u64 = 1;

/// CRC errors per second that matter: "RM has informed us that CRC errors
/// only matter at rates of 100+ per second" (DCGM's
/// DCGM_LIMIT_MAX_NVLINK_CRC_ERROR, 100.0, same files). Fewer are counted
/// in the report and the metrics, never a diagnosis.
const CRC_PER_SECOND_LIMIT: f64 = 100.0;

pub(super) const GP056: Rule = Rule {
    code: "GP056",
    severity: Severity::Warning,
    summary: "NVLink errors grew on a link while gpuprobe ran",
    when: "between NVML's reading of a GPU's NVLink error counters before gpuprobe's work and the one after, a link's replay or recovery counter grew by 1 or more, or its CRC counters (flit and data together) by 100 or more a second: DCGM's health watch thresholds (a replay or a recovery is critical to DCGM; CRC errors matter from 100 a second). Not judged where the links were read once (`list`, `health --no-context`)",
    fix: "Errors that grow on one link point at that link: its cable, bridge or connector, or the NVSwitch port at the other end. Watch them with `nvidia-smi nvlink -e -i <index>` while a multi-GPU job runs (or `dcgmi health`); a replay resends data at the link level (unseen by NCCL, at a cost in bandwidth), a recovery retrains the link and stalls its traffic. Drain the node from multi-GPU jobs if they keep growing, reset the GPU or reboot to clear a transient, and have the link serviced if they return; report the GPU, the link and the counts with the service request.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(errors_grew),
};

/// Each link whose counters grew past DCGM's thresholds over the window.
fn errors_grew(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (d, n) in probed(r) {
        let Some(window_ms) = n.window_ms.filter(|w| *w > 0.0) else {
            continue;
        };
        for l in n.listed() {
            let grew = |c| l.growth(c).unwrap_or(0);
            let (replay, recovery) = (grew(NvLinkCounter::Replay), grew(NvLinkCounter::Recovery));
            let crc = grew(NvLinkCounter::CrcFlit).saturating_add(grew(NvLinkCounter::CrcData));
            let crc_rate = crc as f64 / (window_ms / 1e3);
            if replay < REPLAY_RECOVERY_LIMIT
                && recovery < REPLAY_RECOVERY_LIMIT
                && crc_rate < CRC_PER_SECOND_LIMIT
            {
                continue;
            }
            evidence.push((
                Some(d.index),
                format!(
                    "{}: NVLink {} in {:.1} s: +{replay} replay, +{recovery} recovery, +{crc} CRC \
                     ({crc_rate:.0}/s; flit {}, data {})",
                    who(d),
                    l.link,
                    window_ms / 1e3,
                    grew(NvLinkCounter::CrcFlit),
                    grew(NvLinkCounter::CrcData),
                ),
            ));
        }
    }
    evidence
}
