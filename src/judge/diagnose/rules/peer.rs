//! What the peer-to-peer check finds between GPUs: words one GPU wrote
//! into another's memory that did not arrive as written, or writes over a
//! peer path CUDA offered that the driver could not make.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, PeerAccess, PeerPair, PeerWrite, Report, Severity};

pub(super) const GP058: Rule = Rule {
    code: "GP058",
    severity: Severity::Error,
    summary: "Data written from one GPU into another's memory does not arrive intact: the peer-to-peer path is broken",
    when: "the peer check (`peers`, after the GPUs' own checks when two or more are selected: the probe, `exec` and `burn`) found, for a pair CUDA offers peer access for (cuDeviceCanAccessPeer), words of a peer copy or of a kernel's stores through the peer mapping that differ from what was written (lost: the buffer kept what it held; or altered bits), or a peer write, its enabling (cuCtxEnablePeerAccess) or its wait that the driver failed. The evidence names the pair, the direction and the writer, with the count and the first word",
    fix: "Keep multi-GPU jobs off this node until the path is fixed: NCCL and frameworks use exactly this path and will hang or compute wrong. On PCIe systems the usual cause is the IOMMU translating peer traffic or PCIe ACS redirecting it to the root complex: boot with the IOMMU in passthrough (`iommu=pt`, or `intel_iommu=off`/`amd_iommu=off` where policy allows; `dmesg | grep -i -e DMAR -e IOMMU` shows faults) and disable ACS on the PCIe switches between the GPUs (`lspci -vvv | grep ACSCtl`; NVIDIA's GPUDirect and NCCL troubleshooting guides), as root on the host; in a VM the hypervisor must allow peer-to-peer. Until then `NCCL_P2P_DISABLE=1` makes jobs go through host memory, slower but correct. On NVLink or NVSwitch systems a broken pair points at the link or the switch: read `nvidia-smi nvlink -s` and `-e` and the kernel log for Xid 74, and service the node.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(peer_path_broken),
};

/// GP058: every pair whose writes did not arrive intact, named for the
/// writing and the receiving GPU.
fn peer_path_broken(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    let Some(peers) = &r.peers else {
        return evidence;
    };
    for pair in peers
        .pairs
        .iter()
        .filter(|p| p.access != PeerAccess::NotOffered)
    {
        if pair.access == PeerAccess::NotTried {
            // One of the two could not take part: its own checks say why.
            continue;
        }
        for (writer, write) in [
            ("copy (cuMemcpyDtoD over the peer path)", &pair.copy),
            ("kernel stores through the peer mapping", &pair.kernel),
        ] {
            let Some(line) = write
                .as_ref()
                .and_then(|w| broken(pair, writer, w, peers.words))
            else {
                continue;
            };
            evidence.push((Some(pair.from), line.clone()));
            evidence.push((
                Some(pair.to),
                format!(
                    "GPU {} received GPU {}'s words wrong (above)",
                    pair.to, pair.from
                ),
            ));
        }
    }
    evidence
}

/// One writer's fault on `pair`, as an evidence line.
fn broken(pair: &PeerPair, writer: &str, w: &PeerWrite, words: u64) -> Option<String> {
    let head = format!("GPU {} -> GPU {}, {writer}", pair.from, pair.to);
    if let Some(error) = &w.error {
        return Some(format!("{head}: failed: {error}"));
    }
    if w.exact {
        return None;
    }
    let first = w.first_mismatches.first().map_or(String::new(), |m| {
        let kind = if m.actual == 0 {
            "never arrived (the buffer kept the zeros it held)".to_string()
        } else {
            let bits = m.expected ^ m.actual;
            format!(
                "arrived altered in {} bit(s) ({bits:#010x})",
                bits.count_ones()
            )
        };
        format!(
            "; first at word {}: wrote {:#010x}, read {:#010x}: {kind}",
            m.index, m.expected, m.actual
        )
    });
    Some(format!(
        "{head}: {} of {words} words wrong{first}",
        w.mismatches
    ))
}
