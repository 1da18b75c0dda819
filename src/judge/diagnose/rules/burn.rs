//! What `gpuprobe burn` finds under sustained load: a GPU that slows down,
//! and wrong results or uncorrectable memory errors once warm (those judged
//! with NVML's memory-error signals, as GP015 and GP036 judge them).
use super::facts::{is_memory_error, listed, when, CLOCK_HELD_DOWN};
use super::hardware::contained;
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, BurnErrorKind, Report, Severity, ThrottleReason};

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
    action: Remedy::Always(Action::DrainAndService),
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
    summary: "A GPU computed wrong results, or met uncorrectable memory errors not known to be contained, under sustained load",
    when: "`burn`: a product copied back during the burn differs in any bit from the same product verified against the CPU at the start; or an uncorrectable ECC error (CUDA_ERROR_ECC_UNCORRECTABLE, 214, in the burn's own work, or NVML's volatile uncorrectable count growing) on a GPU whose memory-error signals read after it do not show it contained. Contained (a GPU that remaps rows, a remap pending, none failed) it is GP036's, a reset when convenient; where GP015 fires on the same GPU it takes this evidence",
    fix: "Take the node out of service: a GPU that is right when cool and wrong under load has failing memory or an unstable core (heat, power delivery), and an uncorrectable memory error that NVML does not show contained may have hit every process on the GPU. Check `nvidia-smi -q -d ECC,ROW_REMAPPER,TEMPERATURE` and the kernel log (Xid 94 contained, 95 uncontained, 48 double-bit), reset the GPU (`nvidia-smi -r`) to apply pending row remaps, run `dcgmi diag -r 3`, and open an RMA with the evidence if it repeats.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(burn_errors),
};

/// GP033: wrong results under load, and uncorrectable memory errors that
/// NVML does not show contained (`hardware::contained`; contained ones are
/// GP036's).
fn burn_errors(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(b) = &d.burn else { continue };
        let contained = contained(r, d.index);
        for e in b.errors.iter().filter(|e| {
            e.kind == BurnErrorKind::WrongResult || (is_memory_error(e.kind) && !contained)
        }) {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {} ({}): {} of sustained load, after the probe's own check had \
                     passed: {}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    when(e),
                    e.detail
                ),
            ));
        }
    }
    evidence
}
