//! What a GPU should do at most: its theoretical FP32 peak, memory
//! bandwidth and PCIe link bandwidth, from its properties, and the matmul's
//! and the bandwidth check's efficiencies against them.
//!
//! The peak is what separates "this GPU is slow" from "gpuprobe's kernel is
//! slow": a card throttled to half its clock reaches half the efficiency of
//! a healthy one running the same kernel. The figures are derived from the
//! finished report (the driver's attributes and NVML's readings), so that
//! every mode computes them alike; each missing input is named
//! (`MissingInput`), never guessed.
use crate::report::{
    ClockSource, DeviceReport, Figure, MissingInput, Peak, Reading, Report, Telemetry, Transfer,
};

/// FP32 lanes (CUDA cores) per SM by compute capability: cuda-samples
/// `Common/helper_cuda.h`, `_ConvertSMVer2Cores`. `None` for a compute
/// capability the table does not know (a GPU newer than this gpuprobe).
#[must_use]
pub fn fp32_lanes_per_sm(major: u32, minor: u32) -> Option<u32> {
    match (major, minor) {
        (5 | 10 | 12, _) | (6, 1 | 2) | (8, 6 | 7 | 9) | (9 | 11, 0) => Some(128),
        (6 | 8, 0) | (7, _) => Some(64),
        _ => None,
    }
}

/// SMs × lanes × 2 (one fused multiply-add is two operations) × MHz, in
/// GFLOP/s.
fn fp32_gflops(sms: u32, lanes: u32, clock_mhz: u32) -> f64 {
    f64::from(sms) * f64::from(lanes) * 2.0 * f64::from(clock_mhz) / 1e3
}

/// A positive NVML reading, or why there is none.
fn positive(
    telemetry: Option<&Telemetry>,
    pick: fn(&Telemetry) -> &Reading<u32>,
) -> Result<u32, MissingInput> {
    let t = telemetry.ok_or(MissingInput::NoNvml)?;
    match pick(t) {
        // NVML answers 0 on some parts (unified-memory GPUs): unknown.
        Reading::Value(v) if *v > 0 => Ok(*v),
        _ => Err(MissingInput::NvmlReading),
    }
}

fn figure(value: Result<f64, MissingInput>) -> Figure {
    value.map_or_else(Figure::Missing, Figure::Value)
}

/// The peaks of one GPU.
#[must_use]
pub fn peak_of(device: &DeviceReport) -> Peak {
    let t = device.telemetry.as_ref();
    let lanes = match device.compute_capability {
        Some(cc) => fp32_lanes_per_sm(cc.major, cc.minor).ok_or(MissingInput::UnknownArchitecture),
        None => Err(MissingInput::DeviceAttribute),
    };
    let sms = device
        .multiprocessors
        .filter(|n| *n > 0)
        .ok_or(MissingInput::DeviceAttribute);
    let (clock, source) = match positive(t, |t| &t.sm_clock_max_mhz) {
        Ok(mhz) => (Ok(mhz), Some(ClockSource::NvmlMax)),
        Err(_) => match device.clock_mhz.filter(|c| *c > 0) {
            Some(mhz) => (Ok(mhz), Some(ClockSource::Driver)),
            None => (Err(MissingInput::DeviceAttribute), None),
        },
    };
    let at = |clock: Result<u32, MissingInput>| {
        figure(sms.and_then(|s| Ok(fp32_gflops(s, lanes?, clock?))))
    };
    let bandwidth = positive(t, |t| &t.memory_clock_max_mhz).and_then(|mhz| {
        let bits = positive(t, |t| &t.memory_bus_width_bits)?;
        // 2 transfers per clock × MHz × 10⁶ × bits / 8, in GB/s.
        Ok(2.0 * f64::from(mhz) * f64::from(bits) / 8.0 / 1e3)
    });
    Peak {
        fp32_lanes_per_sm: lanes.ok(),
        fp32_clock_mhz: clock.ok(),
        fp32_clock_source: source,
        fp32_gflops: at(clock),
        // The clock while the matmul ran: after it, a GPU clocks down to
        // idle (nvml.h, GpuIdle), which says nothing of the run.
        fp32_gflops_at_current_clock: at(match (&device.matmul, t) {
            (_, None) => Err(MissingInput::NoNvml),
            (None, Some(_)) => Err(MissingInput::NoMatmul),
            (Some(m), Some(_)) => m
                .sm_clock_mhz_under_load
                .filter(|mhz| *mhz > 0)
                .ok_or(MissingInput::NvmlReading),
        }),
        memory_bandwidth_gbps: figure(bandwidth),
    }
}

/// A PCIe link's bandwidth in one direction, in GB/s: transfer rate ×
/// line-code efficiency × lanes / 8 bits (PCI-SIG's per-generation rates:
/// 2.5 and 5 GT/s with 8b/10b coding for gen 1 and 2; 8, 16 and 32 GT/s
/// with 128b/130b for gen 3 to 5, 15.75 GB/s for gen 3 x16; gen 6 64 GT/s
/// PAM4 in FLIT mode, whose 1b/1b coding gives PCI-SIG's 128 GB/s per
/// direction at x16, the FLIT's CRC and FEC bytes not deducted, as packet
/// headers are not for the older generations). `None` for a generation not
/// in the table.
#[must_use]
pub fn pcie_gbps(generation: u32, width: u32) -> Option<f64> {
    let (giga_transfers, coding) = match generation {
        1 => (2.5, 8.0 / 10.0),
        2 => (5.0, 8.0 / 10.0),
        3 => (8.0, 128.0 / 130.0),
        4 => (16.0, 128.0 / 130.0),
        5 => (32.0, 128.0 / 130.0),
        6 => (64.0, 1.0),
        _ => return None,
    };
    Some(giga_transfers * coding * f64::from(width) / 8.0)
}

/// Sets a bandwidth measurement against what it should reach.
fn judge(transfer: &mut Transfer, expected: Figure) {
    transfer.expected_gbps = Some(expected);
    transfer.efficiency = Some(match expected {
        Figure::Value(e) if e > 0.0 => Figure::Value(transfer.gbps / e),
        Figure::Value(_) => Figure::Missing(MissingInput::NvmlReading),
        missing @ Figure::Missing(_) => missing,
    });
}

/// The bandwidth check's expected figures and efficiencies: device memory
/// against the theoretical memory bandwidth, the host copies against the
/// PCIe link they were judged by. A MIG instance has a share of both that
/// NVML does not state.
fn fill_bandwidth(d: &mut DeviceReport, memory: Figure) {
    let mig = d.mig_parent_uuid.is_some();
    let nvml = d.telemetry.is_some();
    let Some(b) = d.bandwidth.as_mut() else {
        return;
    };
    let (memory, link) = if mig {
        let m = Figure::Missing(MissingInput::MigInstance);
        (m, m)
    } else {
        let link = match &b.pcie_link {
            Some(l) => {
                figure(pcie_gbps(l.generation, l.width).ok_or(MissingInput::UnknownPcieGeneration))
            }
            None if nvml => Figure::Missing(MissingInput::NvmlReading),
            None => Figure::Missing(MissingInput::NoNvml),
        };
        (memory, link)
    };
    for t in [&mut b.device_copy, &mut b.stream_kernel]
        .into_iter()
        .flatten()
    {
        judge(t, memory);
    }
    for t in [&mut b.host_to_device, &mut b.device_to_host]
        .into_iter()
        .flatten()
    {
        judge(t, link);
    }
}

/// The memory test's pattern traffic against the theoretical memory
/// bandwidth (a MIG instance has a share NVML does not state).
fn fill_memtest(d: &mut DeviceReport, memory: Figure) {
    let mig = d.mig_parent_uuid.is_some();
    let Some(m) = d.memtest.as_mut() else {
        return;
    };
    let expected = if mig {
        Figure::Missing(MissingInput::MigInstance)
    } else {
        memory
    };
    m.expected_gbps = Some(expected);
    m.efficiency = Some(match expected {
        Figure::Value(e) if e > 0.0 && m.gbps.is_finite() => Figure::Value(m.gbps / e),
        Figure::Value(_) => Figure::Missing(MissingInput::NvmlReading),
        missing @ Figure::Missing(_) => missing,
    });
}

/// Each device's peaks, each matmul's expected throughput and efficiency,
/// and each bandwidth measurement's, derived afresh from the report.
pub fn fill(report: &mut Report) {
    for d in &mut report.devices {
        let peak = peak_of(d);
        fill_bandwidth(d, peak.memory_bandwidth_gbps);
        fill_memtest(d, peak.memory_bandwidth_gbps);
        if let Some(m) = d.matmul.as_mut() {
            m.expected_gflops = Some(peak.fp32_gflops);
            m.efficiency = Some(match peak.fp32_gflops {
                // A throughput that is not a positive finite number (a
                // time that was no measurement) is none.
                Figure::Value(_) if !(m.gpu_gflops.is_finite() && m.gpu_gflops > 0.0) => {
                    Figure::Missing(MissingInput::NoMatmul)
                }
                Figure::Value(p) => Figure::Value(m.gpu_gflops / p),
                missing @ Figure::Missing(_) => missing,
            });
        }
        d.peak = Some(peak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ComputeCapability;

    #[test]
    fn lanes_follow_the_cuda_samples_table() {
        for (cc, lanes) in [
            ((5, 2), Some(128)),
            ((6, 0), Some(64)),
            ((6, 1), Some(128)),
            ((7, 0), Some(64)),
            ((7, 5), Some(64)),
            ((8, 0), Some(64)),
            ((8, 6), Some(128)),
            ((8, 9), Some(128)),
            ((9, 0), Some(128)),
            ((10, 0), Some(128)),
            ((12, 0), Some(128)),
            ((3, 5), None),
            ((13, 0), None),
        ] {
            assert_eq!(fp32_lanes_per_sm(cc.0, cc.1), lanes, "{cc:?}");
        }
    }

    #[test]
    fn h100_sxm_peak_matches_nvidias_figure() {
        // 132 SMs × 128 × 2 × 1980 MHz = 66.9 TFLOP/s (H100 datasheet: 67).
        let p = fp32_gflops(132, 128, 1980);
        assert!((p - 66_908.16).abs() < 0.01, "{p}");
    }

    #[test]
    fn pcie_rates_match_pci_sigs_figures() {
        let x16 = |generation| pcie_gbps(generation, 16).unwrap();
        // Per direction at x16: 4, 8, 15.75, 31.5, 63 and 128 GB/s as
        // PCI-SIG rounds them.
        for (generation, gbps) in [
            (1, 4.0),
            (2, 8.0),
            (3, 15.754),
            (4, 31.508),
            (5, 63.015),
            (6, 128.0),
        ] {
            assert!((x16(generation) - gbps).abs() < 0.001, "gen {generation}");
        }
        assert!((pcie_gbps(5, 4).unwrap() - 15.754).abs() < 0.001);
        assert_eq!(pcie_gbps(7, 16), None);
        assert_eq!(pcie_gbps(0, 16), None);
    }

    fn bench_device() -> DeviceReport {
        let report = Report::from_json(include_bytes!("../benches/report-one-gpu.json")).unwrap();
        report.devices[0].clone()
    }

    #[test]
    fn missing_inputs_are_named() {
        let mut d = bench_device();
        d.compute_capability = Some(ComputeCapability::new(13, 0));
        let p = peak_of(&d);
        assert_eq!(p.fp32_lanes_per_sm, None);
        assert_eq!(
            p.fp32_gflops,
            Figure::Missing(MissingInput::UnknownArchitecture)
        );
        // The bandwidth needs no compute capability.
        assert!(matches!(p.memory_bandwidth_gbps, Figure::Value(v) if v > 0.0));

        let mut d = bench_device();
        d.multiprocessors = None;
        assert_eq!(
            peak_of(&d).fp32_gflops,
            Figure::Missing(MissingInput::DeviceAttribute)
        );

        // NVML's 0 (unified-memory parts) is unknown, not a zero bandwidth;
        // a missing maximum SM clock falls back to the driver's.
        let mut d = bench_device();
        let t = d.telemetry.as_mut().unwrap();
        t.memory_bus_width_bits = Reading::Value(0);
        t.sm_clock_max_mhz = Reading::Unavailable(crate::report::Unavailable::NotSupported);
        let p = peak_of(&d);
        assert_eq!(
            p.memory_bandwidth_gbps,
            Figure::Missing(MissingInput::NvmlReading)
        );
        assert_eq!(p.fp32_clock_source, Some(ClockSource::Driver));
        assert_eq!(p.fp32_clock_mhz, d.clock_mhz);
    }

    #[test]
    fn fill_sets_the_efficiency_and_drops_a_time_of_zero() {
        let mut report =
            Report::from_json(include_bytes!("../benches/report-one-gpu.json")).unwrap();
        fill(&mut report);
        let m = report.devices[0].matmul.clone().unwrap();
        let expected = report.devices[0]
            .peak
            .as_ref()
            .unwrap()
            .fp32_gflops
            .value()
            .unwrap();
        assert_eq!(m.efficiency, Some(Figure::Value(m.gpu_gflops / expected)));
        report.devices[0].matmul.as_mut().unwrap().gpu_gflops = f64::INFINITY;
        fill(&mut report);
        assert_eq!(
            report.devices[0].matmul.as_ref().unwrap().efficiency,
            Some(Figure::Missing(MissingInput::NoMatmul))
        );
    }
}
