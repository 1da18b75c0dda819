//! The `bandwidth` check's copies far slower than the GPU's memory or its
//! PCIe link allow, judged only where NVML saw why while they ran.
use super::facts::CLOCK_HELD_DOWN;
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, Report, Severity, Telemetry};

/// Below this fraction of what a GPU's memory or its PCIe link allow, a
/// measured bandwidth is low enough for NVML's readings to explain. Real
/// GPUs are reported to reach about 80-93% of the theoretical memory
/// bandwidth in a copy and 75-90% of the link in pinned copies (public
/// bandwidthTest and BabelStream results; unconfirmed on gpuprobe's own
/// runs, docs/gpu-validation.md), so a healthy GPU stays far above it;
/// GP031 fires only together with a cause NVML saw, so that it explains
/// rather than guesses.
const LOW_BANDWIDTH: f64 = 0.5;

/// Host copies shorter than this are not judged: a copy's fixed cost (a
/// few microseconds to set up the copy engine) is then no longer small
/// beside its transfer (4 MiB take 66 µs at 63 GB/s).
const MIN_JUDGED_HOST_BYTES: u64 = 4 << 20;

/// Device copies shorter than this are not judged, likewise (64 MiB take
/// 40 µs through 3.35 TB/s, reading and writing).
pub(super) const MIN_JUDGED_DEVICE_BYTES: u64 = 64 << 20;

pub(super) const GP031: Rule = Rule {
    code: "GP031",
    severity: Severity::Warning,
    summary: "A GPU moves data far slower than it should, and NVML shows why",
    when: "the bandwidth check's pinned host copies (of 4 MiB or more) reach under 50% of what the PCIe link allows at its maximum generation and width while NVML read the link narrower or slower than that maximum as they ran; or its device copy or streaming kernel (of 64 MiB or more) reaches under 50% of the theoretical memory bandwidth while NVML read the memory clock below 90% of its maximum as they ran. Healthy GPUs are reported to reach about 80-93% of the memory bandwidth in a copy and 75-90% of the link in pinned copies; MIG instances, whose share of either is unknown, are not judged",
    fix: "For the host link: reseat the card, check the riser and the slot, the BIOS PCIe settings and the GPU's power cables, and compare `nvidia-smi -q -d PCIE` (or `lspci -vv`: LnkSta against LnkCap) under load; a link trained down slows every transfer to and from the GPU. For memory: check `nvidia-smi -q -d CLOCK,PERFORMANCE` for a memory clock held down: reset locked memory clocks (`nvidia-smi -rmc`) and applications clocks (`nvidia-smi -rac`), and check power and cooling.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(low_bandwidth),
};

/// Host copies far below what the link allows at its maximum generation and
/// width, while NVML saw it trained down under load; device copies far
/// below the theoretical memory bandwidth while NVML saw the memory clock
/// held down. Not for MIG instances, whose share of either is unknown.
fn low_bandwidth(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in r.devices.iter().filter(|d| d.mig_parent_uuid.is_none()) {
        let (Some(b), Some(t)) = (&d.bandwidth, &d.telemetry) else {
            continue;
        };
        let who = format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?"));
        if let Some(line) = slow_host_link(b, t) {
            evidence.push((Some(d.index), format!("{who}: {line}")));
        }
        if let Some(line) = slow_memory(b, t) {
            evidence.push((Some(d.index), format!("{who}: {line}")));
        }
    }
    evidence
}

fn slow_host_link(b: &crate::report::Bandwidth, t: &Telemetry) -> Option<String> {
    let link = b
        .pcie_link
        .as_ref()
        .filter(|l| l.reading == crate::report::LinkReading::UnderLoad)?;
    let (max_gen, max_width) = (
        *t.pcie_generation_max.value()?,
        *t.pcie_width_max_lanes.value()?,
    );
    let full = crate::peak::pcie_gbps(max_gen, max_width)?;
    let mut causes = Vec::new();
    if link.width < max_width {
        causes.push(format!("x{} of x{max_width}", link.width));
    }
    if link.generation < max_gen {
        causes.push(format!("gen {} of {max_gen}", link.generation));
    }
    let slow: Vec<String> = [
        ("host to device", &b.host_to_device),
        ("device to host", &b.device_to_host),
    ]
    .into_iter()
    .filter_map(|(what, x)| Some((what, x.as_ref()?)))
    .filter(|(_, x)| x.bytes >= MIN_JUDGED_HOST_BYTES && x.gbps < LOW_BANDWIDTH * full)
    .map(|(what, x)| {
        format!(
            "{what} {:.1} GB/s ({})",
            x.gbps,
            crate::units::percent(x.gbps / full)
        )
    })
    .collect();
    (!slow.is_empty() && !causes.is_empty()).then(|| {
        format!(
            "{} of the {full:.1} GB/s a gen {max_gen} x{max_width} link allows; NVML saw the \
             link at {} while the copies ran",
            slow.join(", "),
            causes.join(", ")
        )
    })
}

fn slow_memory(b: &crate::report::Bandwidth, t: &Telemetry) -> Option<String> {
    let clock = b.memory_clock_mhz_under_load?;
    let max = *t.memory_clock_max_mhz.value()?;
    if max == 0 || f64::from(clock) >= CLOCK_HELD_DOWN * f64::from(max) {
        return None;
    }
    let slow: Vec<String> = [
        ("device copy", &b.device_copy),
        ("streaming kernel", &b.stream_kernel),
    ]
    .into_iter()
    .filter_map(|(what, x)| {
        let x = x.as_ref().filter(|x| x.bytes >= MIN_JUDGED_DEVICE_BYTES)?;
        let e = x.efficiency.and_then(crate::report::Figure::value)?;
        (e < LOW_BANDWIDTH).then(|| {
            format!(
                "{what} {:.0} GB/s ({} of the memory's theoretical bandwidth)",
                x.gbps,
                crate::units::percent(e)
            )
        })
    })
    .collect();
    (!slow.is_empty()).then(|| {
        format!(
            "{}; NVML saw the memory clock at {clock} MHz of its maximum {max} MHz while the \
             copies ran",
            slow.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GP031 needs all three: a bandwidth far below what it should be,
    /// copies long enough to judge, and a cause NVML saw while they ran.
    #[test]
    fn low_bandwidth_needs_a_cause_and_copies_long_enough_to_judge() {
        use crate::report::{Figure, LinkReading, PcieLink};
        let healthy =
            Report::from_json(include_bytes!("../../../../benches/report-one-gpu.json")).unwrap();
        let fires = |r: &Report| !low_bandwidth(r).is_empty();
        assert!(!fires(&healthy), "the fixture's GPU reaches 90% and 85%");

        // Device memory: a third of the theoretical bandwidth, the memory
        // clock held at 1000 of 2619 MHz.
        let slow_memory = |clock: u32, efficiency: f64, bytes: u64| {
            let mut r = healthy.clone();
            let b = r.devices[0].bandwidth.as_mut().unwrap();
            b.memory_clock_mhz_under_load = Some(clock);
            let t = b.device_copy.as_mut().unwrap();
            t.efficiency = Some(Figure::Value(efficiency));
            t.bytes = bytes;
            r
        };
        assert!(fires(&slow_memory(1000, 0.34, 256 << 20)));
        assert!(!fires(&slow_memory(2619, 0.34, 256 << 20)), "no cause");
        assert!(!fires(&slow_memory(1000, 0.85, 256 << 20)), "not slow");
        assert!(!fires(&slow_memory(1000, 0.34, 1 << 20)), "too short");
        let mut mig = slow_memory(1000, 0.34, 256 << 20);
        mig.devices[0].mig_parent_uuid = Some("GPU-5b3a8f1e".into());
        assert!(!fires(&mig), "a MIG slice's share is unknown");

        // The host link: x4 of x16 under load, a fifth of gen 5 x16.
        let slow_link = |width: u32, reading: LinkReading, gbps: f64| {
            let mut r = healthy.clone();
            let b = r.devices[0].bandwidth.as_mut().unwrap();
            b.pcie_link = Some(PcieLink {
                generation: 5,
                width,
                reading,
            });
            b.host_to_device.as_mut().unwrap().gbps = gbps;
            r
        };
        let evidence = low_bandwidth(&slow_link(4, LinkReading::UnderLoad, 13.4));
        assert_eq!(evidence.len(), 1);
        assert!(evidence[0].1.contains("x4 of x16"), "{}", evidence[0].1);
        assert!(
            !fires(&slow_link(16, LinkReading::UnderLoad, 13.4)),
            "no cause"
        );
        assert!(
            !fires(&slow_link(4, LinkReading::Max, 13.4)),
            "not read under load"
        );
        assert!(
            !fires(&slow_link(4, LinkReading::UnderLoad, 40.0)),
            "not slow"
        );
    }
}
