//! GPUs of one kind on one node that do not keep up with each other. The
//! absolute checks judge a GPU against its model's peak, which gpuprobe
//! knows only roughly (a floor until real runs measure its kernels); twins
//! on the same node are a sharper yardstick: same model, same SMs, same
//! power limit, same run, so one clearly slower than the best of them is
//! held back by something of its own (clocks, cooling, power delivery, a
//! failing part). gpu-fryer flags a GPU 10% below the node's best
//! (../shared/FACTS.md section 13); this is that rule.
use std::collections::BTreeMap;

use super::bandwidth::MIN_JUDGED_DEVICE_BYTES;
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, BurnEnd, DeviceReport, Report, Severity};

/// A GPU below this fraction of the best of its kind in any measure is
/// named: gpu-fryer's 10% (../shared/FACTS.md section 13).
const OF_THE_BEST: f64 = 0.9;

/// Timed matmul products shorter than this in all (GPU time, CUDA events)
/// are not compared: a launch's fixed cost and the clock's climb from idle
/// are then no longer small beside the work, and a 10% difference may be
/// theirs. 100 ms is half the default `--min-time`, which a default run
/// fills (checks::gpu::LINK_RAMP reasons alike about the link).
const MIN_TIMED_MATMUL_MS: f64 = 100.0;

/// Whether every SM got at least one thread block of the matmul: a
/// smaller product runs on some SMs only, so it measures those (and the
/// launch), not the GPU. GP030, which judges against the peak, asks for
/// two per SM; a comparison between twins, whose tails are alike, needs
/// only the whole GPU at work (gpuprobe's default 2048 product is 256
/// blocks: every SM of an H100, 132, or of a B200, 148).
fn every_sm_worked(d: &DeviceReport) -> bool {
    match (d.matmul.as_ref().and_then(|m| m.blocks), d.multiprocessors) {
        (Some(blocks), Some(sms)) => blocks >= u64::from(sms),
        _ => false,
    }
}

/// What is compared between twins, each as the report holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measure {
    /// The matmul's GFLOP/s (`matmul.gpu_gflops`): verified products that
    /// gave every SM work.
    Matmul,
    /// The bandwidth check's device copy, GB/s (`bandwidth.device_copy`).
    DeviceCopy,
    /// The burn's mean throughput, GFLOP/s (`burn.gflops_mean`), of burns
    /// that ran their whole duration without an error, of the matmul's
    /// product (so, as it, giving every SM work).
    Burn,
}

impl Measure {
    const ALL: [Self; 3] = [Self::Matmul, Self::DeviceCopy, Self::Burn];

    fn name(self) -> &'static str {
        match self {
            Self::Matmul => "matmul",
            Self::DeviceCopy => "device copy",
            Self::Burn => "burn throughput",
        }
    }

    /// The GPU's value, where it measured one long enough to compare.
    fn value(self, d: &DeviceReport) -> Option<f64> {
        let v = match self {
            Self::Matmul | Self::Burn if !every_sm_worked(d) => None,
            Self::Matmul => d
                .matmul
                .as_ref()
                .filter(|m| m.verification.passed)
                .filter(|m| m.gpu_time_ms * f64::from(m.iterations) >= MIN_TIMED_MATMUL_MS)
                .map(|m| m.gpu_gflops),
            Self::DeviceCopy => d
                .bandwidth
                .as_ref()?
                .device_copy
                .as_ref()
                .filter(|c| c.bytes >= MIN_JUDGED_DEVICE_BYTES)
                .map(|c| c.gbps),
            Self::Burn => d
                .burn
                .as_ref()
                .filter(|b| b.ended == BurnEnd::Completed && b.errors.is_empty())
                .map(|b| b.gflops_mean),
        };
        v.filter(|v| v.is_finite() && *v > 0.0)
    }

    fn shown(self, v: f64) -> String {
        match self {
            Self::Matmul | Self::Burn if v >= 10.0 => crate::units::flops(v),
            Self::Matmul | Self::Burn => format!("{} GFLOP/s", three_digits(v)),
            Self::DeviceCopy => format!("{} GB/s", three_digits(v)),
        }
    }
}

/// At least three significant digits: a slow GPU's few GFLOP/s (or the
/// fake's modelled thousandths of one) still show how far apart two are.
fn three_digits(v: f64) -> String {
    let decimals = (2.0 - v.log10().floor()).clamp(0.0, 12.0) as usize;
    format!("{v:.decimals$}")
}

/// What makes two GPUs twins: the model's name, its SMs and its power
/// limit (whole watts; unknown without NVML, and then alike only to other
/// unknowns).
type Kind = (String, u32, Option<u64>);

fn kind(d: &DeviceReport) -> Option<Kind> {
    let power = d
        .telemetry
        .as_ref()
        .and_then(|t| t.power_limit_watts.value().copied())
        .filter(|w| w.is_finite() && *w >= 0.0)
        .map(|w| w.round() as u64);
    Some((d.name.clone()?, d.multiprocessors?, power))
}

pub(super) const GP043: Rule = Rule {
    code: "GP043",
    severity: Severity::Warning,
    summary: "A GPU is more than 10% slower than the best of its identical neighbours",
    when: "among two or more GPUs of the node with the same model name, SM count and power limit (MIG instances aside), one's matmul GFLOP/s (verified, at least 100 ms of timed products, at least one thread block per SM: a smaller product measures some SMs, not the GPU), device-copy bandwidth (copies of 64 MiB or more) or burn throughput (a burn of that product that ran its duration without errors) is below 90% of the best of them, gpu-fryer's rule; the evidence names the GPU, the measure, its value against the best and how far below it is. It stands beside the absolute checks against the model's peak, which a GPU can pass while its twins run faster",
    fix: "Compare the slow GPU with its neighbours under load: `nvidia-smi -q -d PERFORMANCE,CLOCK,POWER,TEMPERATURE` (throttle reasons, clocks held down, a lower enforced power limit, a hotter slot), `nvidia-smi -q -d PCIE` and the kernel log for Xids. Reset its clocks (`nvidia-smi -rgc`, `-rmc`, `-rac`), check airflow and power cabling for its slot; if it stays slow with nothing to show, run `dcgmi diag -r 3` and raise it with the vendor.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(slower_than_twins),
};

/// Every GPU more than 10% below the best of its twins, per measure.
fn slower_than_twins(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for measure in Measure::ALL {
        let mut kinds: BTreeMap<Kind, Vec<(&DeviceReport, f64)>> = BTreeMap::new();
        for d in r.devices.iter().filter(|d| d.mig_parent_uuid.is_none()) {
            if let (Some(k), Some(v)) = (kind(d), measure.value(d)) {
                kinds.entry(k).or_default().push((d, v));
            }
        }
        for ((name, sms, power), twins) in &kinds {
            if twins.len() < 2 {
                continue;
            }
            // The best, the first of equals (the lowest index).
            let (best, top) = twins
                .iter()
                .skip(1)
                .fold(twins[0], |b, &t| if t.1 > b.1 { t } else { b });
            let power = power.map_or_else(|| "unknown".to_string(), |w| format!("{w} W"));
            for &(d, v) in twins {
                if v >= OF_THE_BEST * top {
                    continue;
                }
                evidence.push((
                    Some(d.index),
                    format!(
                        "GPU {} ({}): {} {}, {} below the best of the node's {} {name} \
                         GPUs ({sms} SMs, power limit {power}): GPU {}'s {}",
                        d.index,
                        d.uuid.as_deref().unwrap_or("?"),
                        measure.name(),
                        measure.shown(v),
                        crate::units::percent(1.0 - v / top),
                        twins.len(),
                        best.index,
                        measure.shown(top),
                    ),
                ));
            }
        }
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Figure;

    /// Four identical GPUs from the one-GPU fixture, each with the
    /// matmul's, the device copy's and a burn's values.
    fn four() -> Report {
        let one =
            Report::from_json(include_bytes!("../../../../benches/report-one-gpu.json")).unwrap();
        let mut r = one.clone();
        r.devices = (0..4)
            .map(|i| {
                let mut d = one.devices[0].clone();
                d.index = i;
                d.uuid = Some(format!("GPU-{i}"));
                let m = d.matmul.as_mut().unwrap();
                m.blocks = Some(256);
                m.gpu_gflops = 1000.0;
                m.gpu_time_ms = 50.0;
                m.iterations = 4;
                let c = d.bandwidth.as_mut().unwrap().device_copy.as_mut().unwrap();
                c.gbps = 3000.0;
                c.bytes = 256 << 20;
                c.efficiency = Some(Figure::Value(0.9));
                d
            })
            .collect();
        r
    }

    fn m_blocks_all(r: &mut Report, blocks: u64) {
        for d in &mut r.devices {
            d.matmul.as_mut().unwrap().blocks = Some(blocks);
        }
    }

    fn fired(r: &Report) -> Vec<(Option<u32>, String)> {
        slower_than_twins(r)
    }

    #[test]
    fn identical_gpus_within_ten_percent_raise_nothing() {
        let mut r = four();
        r.devices[1].matmul.as_mut().unwrap().gpu_gflops = 905.0;
        assert!(fired(&r).is_empty(), "{:?}", fired(&r));
    }

    #[test]
    fn a_gpu_more_than_ten_percent_below_the_best_is_named_with_measure_and_percentage() {
        let mut r = four();
        r.devices[2].matmul.as_mut().unwrap().gpu_gflops = 700.0;
        let e = fired(&r);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, Some(2));
        assert!(e[0].1.contains("matmul 700 GFLOP/s"), "{}", e[0].1);
        assert!(e[0].1.contains("30% below"), "{}", e[0].1);
        assert!(e[0].1.contains("GPU 0's 1.0 TFLOP/s"), "{}", e[0].1);

        let mut r = four();
        let c = r.devices[3].bandwidth.as_mut().unwrap();
        c.device_copy.as_mut().unwrap().gbps = 2000.0;
        let e = fired(&r);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, Some(3));
        assert!(e[0].1.contains("device copy 2000 GB/s"), "{}", e[0].1);
        assert!(e[0].1.contains("GPU 0's 3000 GB/s"), "{}", e[0].1);
        assert!(e[0].1.contains("33% below"), "{}", e[0].1);
    }

    #[test]
    fn only_twins_are_compared() {
        // Another model, another SM count, another power limit: no twin.
        for change in 0..3 {
            let mut r = four();
            r.devices.truncate(2);
            let d = &mut r.devices[1];
            d.matmul.as_mut().unwrap().gpu_gflops = 500.0;
            match change {
                0 => d.name = Some("NVIDIA H100 PCIe".into()),
                1 => d.multiprocessors = Some(114),
                _ => {
                    let t = d.telemetry.as_mut().unwrap();
                    t.power_limit_watts = crate::report::Reading::Value(350.0);
                }
            }
            assert!(fired(&r).is_empty(), "change {change}: {:?}", fired(&r));
        }
        // One GPU alone has nothing to be compared with.
        let mut r = four();
        r.devices.truncate(1);
        assert!(fired(&r).is_empty());
        // A MIG instance is no twin of anything.
        let mut r = four();
        r.devices.truncate(2);
        r.devices[1].matmul.as_mut().unwrap().gpu_gflops = 500.0;
        r.devices[1].mig_parent_uuid = Some("GPU-0".into());
        assert!(fired(&r).is_empty());
    }

    #[test]
    fn measurements_too_short_or_wrong_are_not_compared() {
        let mut r = four();
        let m = r.devices[1].matmul.as_mut().unwrap();
        m.gpu_gflops = 500.0;
        m.gpu_time_ms = 1.0;
        assert!(fired(&r).is_empty(), "1 ms x 4 of timed products");
        let mut r = four();
        let m = r.devices[1].matmul.as_mut().unwrap();
        m.gpu_gflops = 500.0;
        m.blocks = Some(131);
        assert!(fired(&r).is_empty(), "an SM of the 132 without work");
        m_blocks_all(&mut r, 132);
        assert_eq!(fired(&r).len(), 1, "every SM at work");
        let mut r = four();
        let m = r.devices[1].matmul.as_mut().unwrap();
        m.gpu_gflops = 500.0;
        m.verification.passed = false;
        assert!(fired(&r).is_empty(), "a wrong product is another rule's");
        let mut r = four();
        let c = r.devices[1].bandwidth.as_mut().unwrap();
        let c = c.device_copy.as_mut().unwrap();
        c.gbps = 1000.0;
        c.bytes = 1 << 20;
        assert!(fired(&r).is_empty(), "1 MiB copies");
    }
}
