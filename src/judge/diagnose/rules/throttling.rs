//! GPUs held below their speed while the matmul ran: throttled by
//! temperature or power (nvml.h's throttle reasons, with a power cap judged
//! against the draw and the default limit), and a matmul far below the FP32
//! peak with clocks NVML saw held down.
use super::facts::{listed, CLOCK_HELD_DOWN};
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, Report, Severity, Telemetry, ThrottleReason};

/// Whether a throttle reason means the GPU could not run at full speed:
/// held by power or temperature, in software or hardware.
fn slows_the_gpu(reason: &ThrottleReason) -> bool {
    matches!(
        reason,
        ThrottleReason::SwPowerCap
            | ThrottleReason::HwSlowdown
            | ThrottleReason::SwThermalSlowdown
            | ThrottleReason::HwThermalSlowdown
            | ThrottleReason::HwPowerBrakeSlowdown
    )
}

pub(super) const GP017: Rule = Rule {
    code: "GP017",
    severity: Severity::Warning,
    summary: "A GPU was throttled by temperature or power during the benchmark",
    when: "NVML's throttle reasons right after the benchmark include a thermal or hardware slowdown or a power brake; or a power cap (sw_power_cap) alone while the enforced limit is below the board's default (nvmlDeviceGetPowerManagementDefaultLimit) or the GPU draws under 90% of it. A GPU drawing its full, default limit under sustained load is holding that limit, which is normal (Azure's HPC health checks exclude it), and no finding",
    fix: "Check cooling and power delivery (`nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER`); a power limit set below the default also throttles.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(throttled),
};

fn throttled(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(t) = d.telemetry.as_ref() else {
            continue;
        };
        let who = format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?"));
        // The reasons and draw while the matmul ran, where NVML was read
        // then: after the run the GPU idles, and its draw says nothing of
        // the load (a cap judged from an idle draw would read as "capping
        // at 70 W"). Else the reading after the run.
        let loaded = d.matmul.as_ref().and_then(|m| {
            Some((
                m.throttle_reasons_under_load.as_ref()?,
                m.power_draw_watts_under_load,
            ))
        });
        let (reasons, draw) = match loaded {
            Some((reasons, draw)) => (reasons.as_slice(), draw),
            None => match t.throttle_reasons.value() {
                Some(reasons) => (reasons.as_slice(), t.power_draw_watts.value().copied()),
                None => continue,
            },
        };
        let bad: Vec<&ThrottleReason> = reasons.iter().filter(|r| slows_the_gpu(r)).collect();
        if bad.is_empty() {
            continue;
        }
        let power = if bad == [&ThrottleReason::SwPowerCap] {
            match power_capping(t, draw) {
                PowerCap::HoldingItsLimit => continue,
                PowerCap::Unusual(why) => format!(": {why}"),
            }
        } else {
            String::new()
        };
        let temp = t
            .temperature_celsius
            .value()
            .map_or(String::new(), |c| format!(" at {c} °C"));
        evidence.push((
            Some(d.index),
            format!("{who}: clocks held down by {}{temp}{power}", listed(bad)),
        ));
    }
    evidence
}

/// What a power cap alone says about a GPU.
enum PowerCap {
    /// The GPU draws its full, default limit: how a GPU under sustained
    /// load holds its power limit (the sw_power_cap reason is "the SW Power
    /// Scaling algorithm is reducing the clocks below requested clocks
    /// because the GPU is consuming too much power", nvml.h), which fleet
    /// health checks do not count as a fault (Azure's HPC health checks
    /// exclude it).
    HoldingItsLimit,
    /// A limit left lowered, or capping while drawing far less than it:
    /// why, with the numbers.
    Unusual(String),
}

/// Draw at or above this fraction of the enforced limit is "at the limit".
const AT_POWER_LIMIT: f64 = 0.9;

/// `draw`: the power drawn while the reasons were read.
fn power_capping(t: &Telemetry, draw: Option<f64>) -> PowerCap {
    let limit = t.power_limit_watts.value().copied();
    let default = t.power_default_limit_watts.value().copied();
    if let (Some(limit), Some(default)) = (limit, default) {
        // A watt of slack for rounding (NVML reports milliwatts).
        if limit + 1.0 < default {
            return PowerCap::Unusual(format!(
                "power limit {limit:.0} W below the default {default:.0} W (lowered by \
                 `nvidia-smi -pl` or left so by an earlier job)"
            ));
        }
    }
    match (draw, limit) {
        (Some(draw), Some(limit)) if draw >= AT_POWER_LIMIT * limit => PowerCap::HoldingItsLimit,
        (Some(draw), Some(limit)) => {
            PowerCap::Unusual(format!("capping at {draw:.0} W of a {limit:.0} W limit"))
        }
        _ => PowerCap::Unusual("power draw or limit unknown".into()),
    }
}

/// Below this fraction of the FP32 peak a matmul is slow enough for NVML's
/// readings to explain. gpuprobe's kernel's fraction of peak on a healthy
/// GPU is unmeasured (docs/kernels.md, docs/gpu-validation.md): hand-written
/// SGEMMs of its kind reach 13 to 78% of cuBLAS by technique on an A6000
/// (../shared/FACTS.md section 6), and cuBLAS itself stays under the peak,
/// so until a real GPU's run records the fraction, the floor is a quarter,
/// which a healthy GPU filled by the product clears with margin; and GP030
/// fires only together with a cause NVML saw while the product ran, so
/// that it explains rather than guesses.
const LOW_EFFICIENCY: f64 = 0.25;

/// A product of fewer thread blocks than this many per SM is launch-bound:
/// each SM gets at most one short turn of work, so its time is mostly the
/// launch's and the tail's, and its efficiency says nothing of the GPU.
const BLOCKS_PER_SM_TO_JUDGE: u64 = 2;

/// What NVML saw while the matmul ran that holds a GPU below its peak: the
/// SM clock held below `CLOCK_HELD_DOWN` of its maximum, and the throttle
/// reasons that explain it. A reason with the clock at its maximum holds
/// nothing down (an A100 boosts to 1410 MHz above a 1155 MHz applications
/// clock: ../shared/FACTS.md section 12), and a reading after the run says
/// nothing of it (the GPU clocks down to idle), so only the reading taken
/// while the products ran counts.
fn slowdown_causes(d: &crate::report::DeviceReport, t: &Telemetry) -> Vec<String> {
    let Some(m) = &d.matmul else {
        return Vec::new();
    };
    let (Some(now), Some(max)) = (m.sm_clock_mhz_under_load, t.sm_clock_max_mhz.value()) else {
        return Vec::new();
    };
    if *max == 0 || f64::from(now) >= CLOCK_HELD_DOWN * f64::from(*max) {
        return Vec::new();
    }
    let mut causes = vec![format!(
        "SM clock {now} MHz of its maximum {max} MHz while the matmul ran"
    )];
    let held: Vec<&ThrottleReason> = m
        .throttle_reasons_under_load
        .iter()
        .flatten()
        // GP017 reports power and thermal throttling on its own.
        .filter(|r| **r != ThrottleReason::GpuIdle && !slows_the_gpu(r))
        .collect();
    if !held.is_empty() {
        causes.push(format!("throttle reasons {}", listed(held)));
    }
    // A MIG slice alone explains nothing: its peak counts only its own SMs
    // (the driver's SM count of a MIG device). With a cause, it is context:
    // the slice shares its GPU's memory bandwidth, L2 and clocks.
    if d.mig_parent_uuid.is_some() || t.mig_enabled.value() == Some(&true) {
        causes
            .push("a MIG slice, sharing its GPU's memory, L2 and clocks with other slices".into());
    }
    causes
}

/// Whether the matmul filled the GPU: at least `BLOCKS_PER_SM_TO_JUDGE`
/// thread blocks per SM (unknown counts as not).
fn fills_the_gpu(d: &crate::report::DeviceReport) -> bool {
    match (d.matmul.as_ref().and_then(|m| m.blocks), d.multiprocessors) {
        (Some(blocks), Some(sms)) => blocks >= BLOCKS_PER_SM_TO_JUDGE * u64::from(sms),
        _ => false,
    }
}

pub(super) const GP030: Rule = Rule {
    code: "GP030",
    severity: Severity::Warning,
    summary: "A GPU's matmul reached a low fraction of its FP32 peak, and NVML shows why",
    when: "the matmul filled the GPU (at least two thread blocks per SM: a smaller product is launch-bound, its efficiency reported but not judged), reached under 25% of the theoretical FP32 peak at the maximum clock (a floor until a real GPU's run measures the kernel), and NVML read the SM clock below 90% of its maximum while the products ran; throttle reasons read then, other than idle and those GP017 reports, name why (such as applications clocks set below the maximum). A reason with the clock at its maximum, or a reading after the run (an idle GPU clocks down), is no cause; on a MIG slice the evidence says so (its peak counts only its own SMs, so MIG alone is no cause)",
    fix: "For held-down clocks check `nvidia-smi -q -d PERFORMANCE,CLOCK`: reset applications clocks (`nvidia-smi -rac`) and locked clocks (`nvidia-smi -rgc`), and check cooling and power limits (`nvidia-smi -q -d POWER`). A MIG slice shares its GPU's clocks: another slice's load or a GPU-wide clock setting slows it too.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(low_efficiency),
};

fn low_efficiency(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (d, t) in r
        .devices
        .iter()
        .filter(|d| fills_the_gpu(d))
        .filter_map(|d| Some((d, d.telemetry.as_ref()?)))
    {
        let Some(e) = d
            .matmul
            .as_ref()
            .and_then(|m| m.efficiency)
            .and_then(crate::report::Figure::value)
        else {
            continue;
        };
        let causes = slowdown_causes(d, t);
        if e < LOW_EFFICIENCY && !causes.is_empty() {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {} ({}): the matmul reached {} of the FP32 peak; NVML saw {}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    crate::units::percent(e),
                    causes.join("; ")
                ),
            ));
        }
    }
    evidence
}
