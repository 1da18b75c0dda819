//! What `gpuprobe burn` finds under sustained load: a GPU that slows down,
//! and wrong results or uncorrectable memory errors once warm.
use super::facts::{listed, CLOCK_HELD_DOWN};
use crate::judge::diagnose::{DeviceEvidence, Rule, Trigger};
use crate::report::{Report, Severity, ThrottleReason};

/// The worst interval below this fraction of the best is a slowdown worth a
/// warning (GP032). Both leave out the first interval, whose clocks may still be
/// ramping up. A GPU under steady load stays within a few percent of its
/// best (its clocks move in small steps); a thermal slowdown, a clock
/// pulled down mid-run, or a GPU that settles far below its early pace at
/// its power limit costs more, and GP032 then says which from NVML's
/// throttle reasons (power capping is how a GPU at its limit runs; thermal
/// slowdown is a cooling fault). Against the median instead, a GPU that
/// spends most of the burn throttled would look steady.
const SLOWDOWN: f64 = 0.85;

/// What NVML saw in a burn's worst interval that slows a GPU: the SM clock
/// held below `CLOCK_HELD_DOWN` of its maximum, a throttle reason, and the
/// temperature then.
fn burn_slowdown_causes(b: &crate::report::Burn) -> Vec<String> {
    let Some(w) = &b.worst_interval else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    if let (Some(now), Some(max)) = (w.sm_clock_mhz, b.sm_clock_max_mhz) {
        if max > 0 && f64::from(now) < CLOCK_HELD_DOWN * f64::from(max) {
            causes.push(format!("SM clock {now} MHz of its maximum {max} MHz"));
        }
    }
    let held: Vec<&ThrottleReason> = w
        .throttle_reasons
        .iter()
        .flatten()
        .filter(|r| **r != ThrottleReason::GpuIdle)
        .collect();
    if !held.is_empty() {
        causes.push(format!("throttle reasons {}", listed(held)));
    }
    if let (false, Some(t)) = (causes.is_empty(), w.temperature_celsius) {
        causes.push(format!("{t} °C"));
    }
    causes
}

pub(super) const GP032: Rule = Rule {
    code: "GP032",
    severity: Severity::Warning,
    summary: "A GPU slowed down under sustained load",
    when: "`burn`: the worst interval's throughput is below 85% of the best interval's (both after the first, whose clocks may still be ramping up); the evidence gives what NVML read during that interval (SM clock below 90% of its maximum, throttle reasons, temperature), or says that it saw no cause. `sw_power_cap` alone is how a GPU at its power limit runs; a thermal slowdown is a cooling fault",
    fix: "A GPU that slows once warm is held by power or cooling: check `nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER` during load, the chassis airflow and fan state, the power limit (`nvidia-smi -pl`) and the PSU; compare with the node's other GPUs. With no NVML cause, look for another process on the GPU (`nvidia-smi`), or a clock setting changed during the run.",
    trigger: Trigger::PerDevice(burn_slowdown),
};

fn burn_slowdown(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(b) = &d.burn else { continue };
        let (Some(ratio), Some(w)) = (b.worst_over_best, &b.worst_interval) else {
            continue;
        };
        if ratio >= SLOWDOWN {
            continue;
        }
        let causes = burn_slowdown_causes(b);
        let seen = if causes.is_empty() {
            "NVML saw no cause (no NVML, or no clock or throttle change: another \
             process's work on the GPU?)"
                .to_string()
        } else {
            format!("NVML then saw {}", causes.join("; "))
        };
        evidence.push((
            Some(d.index),
            format!(
                "GPU {} ({}): under sustained load the throughput fell to {} of its best \
                 ({} of {}, the interval at {:.1} s); {seen}",
                d.index,
                d.uuid.as_deref().unwrap_or("?"),
                crate::units::percent(ratio),
                crate::units::flops(w.gflops),
                crate::units::flops(b.gflops_best),
                w.at_ms / 1e3
            ),
        ));
    }
    evidence
}

pub(super) const GP033: Rule = Rule {
    code: "GP033",
    severity: Severity::Error,
    summary: "A GPU computed wrong results, or reported uncorrectable memory errors, under sustained load",
    when: "`burn`: a product copied back during the burn differs in any bit from the same product verified against the CPU at the start, or NVML's volatile uncorrectable ECC count grew during the burn",
    fix: "Take the node out of service: a GPU that is right when cool and wrong under load has failing memory or an unstable core (heat, power delivery). Check `nvidia-smi -q -d ECC,ROW_REMAPPER,TEMPERATURE`, reset the GPU (`nvidia-smi -r`) to apply pending row remaps, run `dcgmi diag -r 3`, and open an RMA with the evidence if it repeats.",
    trigger: Trigger::PerDevice(burn_errors),
};

fn burn_errors(r: &Report) -> DeviceEvidence {
    use crate::report::BurnErrorKind;
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(b) = &d.burn else { continue };
        for e in b.errors.iter().filter(|e| {
            matches!(
                e.kind,
                BurnErrorKind::WrongResult | BurnErrorKind::EccUncorrected
            )
        }) {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {} ({}): at {:.1} s of sustained load, after the probe's own \
                     check had passed: {}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    e.at_ms / 1e3,
                    e.detail
                ),
            ));
        }
    }
    evidence
}
