//! Settings an earlier job left on a GPU, which slow or change every job
//! after it until someone restores them: applications clocks or a power
//! limit lowered, an ECC or MIG mode change waiting for a reset, and
//! persistence mode off. Each is reported whether or not this run felt it
//! (a lowered clock slows the next job's work, not gpuprobe's small
//! products), with NVML's value, its default and the nvidia-smi command
//! that restores it (nvidia-smi(1); NVML reference, "Device Commands").
//!
//! Locked clocks (`nvidia-smi -lgc`, `-lmc`) are not among them: NVML has
//! setters for them (nvmlDeviceSetGpuLockedClocks,
//! nvmlDeviceSetMemoryLockedClocks) and no getter in the 535 and 550
//! drivers, and the clocks event reason they may raise
//! (nvmlClocksThrottleReasonUserDefinedClocks, nvml.h's alias of the
//! applications-clocks reason) does not say which setting it is. Where
//! locked clocks hold a matmul down, GP030 names them and `-rgc`.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, DeviceReport, Reading, Report, Severity, Telemetry};

/// Each physical GPU once: a MIG instance reads its GPU's settings, so the
/// first device of each GPU speaks for it.
fn gpus(r: &Report) -> impl Iterator<Item = (&DeviceReport, &Telemetry)> {
    let mut seen: Vec<&str> = Vec::new();
    r.devices.iter().filter_map(move |d| {
        let t = d.telemetry.as_ref()?;
        if let Some(gpu) = d.mig_parent_uuid.as_deref().or(d.uuid.as_deref()) {
            if seen.contains(&gpu) {
                return None;
            }
            seen.push(gpu);
        }
        Some((d, t))
    })
}

/// "GPU 0 (GPU-…)" and the `-i` argument nvidia-smi takes for it: the
/// GPU's UUID (its MIG parent's for an instance), which, unlike an index,
/// means the same GPU inside and outside the container.
fn names(d: &DeviceReport) -> (String, String) {
    let uuid = d.mig_parent_uuid.as_deref().or(d.uuid.as_deref());
    (
        format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?")),
        uuid.map_or(String::new(), |u| format!(" -i {u}")),
    )
}

pub(super) const GP046: Rule = Rule {
    code: "GP046",
    severity: Severity::Warning,
    summary: "A GPU keeps a setting an earlier job left: lowered clocks or power limit, or an ECC or MIG change waiting for a reset",
    when: "NVML reads, on a GPU, applications clocks below their defaults (nvmlDeviceGetApplicationsClock against nvmlDeviceGetDefaultApplicationsClock, graphics or memory), an enforced power limit more than 1 W below the board's default (nvmlDeviceGetPowerManagementDefaultLimit), or an ECC or MIG mode whose pending value (after the next reset) differs from the current one (nvmlDeviceGetEccMode, nvmlDeviceGetMigMode). Reported whether or not this run was slowed: the next job is. Where GP017 or GP030 already explain a slow run on that GPU by the same setting, they carry this evidence. Locked clocks (`nvidia-smi -lgc`/`-lmc`) cannot be read through NVML (no getter in drivers 535 and 550): GP030 names them when they hold a matmul down",
    fix: "Restore what the evidence names, as root on the host (nvidia-smi -i <uuid>): applications clocks with `nvidia-smi -rac`, the power limit with `nvidia-smi -pl <default watts>`, and apply a pending ECC or MIG change with a GPU reset (`nvidia-smi -r`, once no process uses it) or a reboot, or undo it (`nvidia-smi -e 0|1`, `nvidia-smi -mig 0|1`). Make the job that changed it restore it when it ends (a Slurm epilog, a pod's preStop), or have the scheduler reset clocks between jobs.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(left_behind),
};

/// GP046: each setting a GPU keeps from an earlier job.
fn left_behind(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (d, t) in gpus(r) {
        let (who, i) = names(d);
        let lines = [
            lowered_clocks(t, &i),
            lowered_power_limit(t, &i),
            pending("ECC", &t.ecc_enabled, &t.ecc_pending_enabled, &i, "-e"),
            pending(
                "MIG mode",
                &t.mig_enabled,
                &t.mig_pending_enabled,
                &i,
                "-mig",
            ),
        ];
        evidence.extend(
            lines
                .into_iter()
                .flatten()
                .map(|line| (Some(d.index), format!("{who}: {line}"))),
        );
    }
    evidence
}

/// Applications clocks below their defaults (`nvidia-smi -ac`).
fn lowered_clocks(t: &Telemetry, i: &str) -> Option<String> {
    let below = |now: &Reading<u32>, default: &Reading<u32>| match (now, default) {
        (Reading::Value(now), Reading::Value(default)) if now < default => Some((*now, *default)),
        _ => None,
    };
    let clocks: Vec<String> = [
        (
            "graphics",
            below(&t.applications_clock_mhz, &t.applications_clock_default_mhz),
        ),
        (
            "memory",
            below(
                &t.applications_memory_clock_mhz,
                &t.applications_memory_clock_default_mhz,
            ),
        ),
    ]
    .into_iter()
    .filter_map(|(name, v)| {
        v.map(|(now, default)| format!("{name} {now} MHz of its default {default} MHz"))
    })
    .collect();
    (!clocks.is_empty()).then(|| {
        format!(
            "applications clocks lowered ({}): restore with `nvidia-smi{i} -rac`",
            clocks.join(", ")
        )
    })
}

/// An enforced power limit below the board's default (`nvidia-smi -pl`).
fn lowered_power_limit(t: &Telemetry, i: &str) -> Option<String> {
    let (Reading::Value(limit), Reading::Value(default)) =
        (&t.power_limit_watts, &t.power_default_limit_watts)
    else {
        return None;
    };
    // A watt of slack for rounding (NVML reports milliwatts), as GP017.
    (limit + 1.0 < *default).then(|| {
        format!(
            "power limit {limit:.0} W, below the board's default {default:.0} W: restore with `nvidia-smi{i} -pl {default:.0}`"
        )
    })
}

/// A mode whose pending value (after the next reset) differs from the
/// current one; `flag` is nvidia-smi's switch that sets it.
fn pending(
    what: &str,
    now: &Reading<bool>,
    after_reset: &Reading<bool>,
    i: &str,
    flag: &str,
) -> Option<String> {
    let (Reading::Value(now), Reading::Value(after)) = (now, after_reset) else {
        return None;
    };
    let on_off = |b: bool| if b { "on" } else { "off" };
    (now != after).then(|| {
        format!(
            "{what} {} now, {} after the next reset (a pending change): reset the GPU (`nvidia-smi{i} -r`) or reboot to apply it, or undo it with `nvidia-smi{i} {flag} {}`",
            on_off(*now),
            on_off(*after),
            u8::from(*now)
        )
    })
}

pub(super) const GP047: Rule = Rule {
    code: "GP047",
    severity: Severity::Info,
    summary: "Persistence mode is off on a GPU: every new CUDA process waits for it to start again",
    when: "NVML reports persistence mode off (nvmlDeviceGetPersistenceMode; Linux only): the driver deinitialises the GPU when its last client exits, and the next process waits 1-3 s for it (NVIDIA, Driver Persistence). Advice, reported whether or not this run started slowly; where cuInit was slow for it, GP037 carries this evidence",
    fix: "Keep the GPUs initialised on the host: `systemctl enable --now nvidia-persistenced` (NVIDIA's persistence daemon), or `nvidia-smi -pm 1` as root (the older way). It is the host's setting, not the container's.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(persistence_off),
};

/// GP047: each GPU NVML says is not kept initialised.
fn persistence_off(r: &Report) -> DeviceEvidence {
    gpus(r)
        .filter(|(_, t)| t.persistence_mode == Reading::Value(false))
        .map(|(d, _)| {
            let (who, i) = names(d);
            (
                Some(d.index),
                format!("{who}: persistence mode off: turn it on with `nvidia-smi{i} -pm 1` or run nvidia-persistenced"),
            )
        })
        .collect()
}
