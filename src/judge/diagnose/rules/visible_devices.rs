//! The variables that choose a container's GPUs and gave it none or the
//! wrong ones: NVIDIA_VISIBLE_DEVICES (read by the NVIDIA Container Toolkit)
//! and CUDA_VISIBLE_DEVICES (read by CUDA, which stops at its first entry
//! that names no GPU).
use super::facts::{cuda_missing, given_nodes, init_error, non_empty, var};
use crate::cuda::error::CUDA_ERROR_NO_DEVICE;
use crate::judge::diagnose::{Remedy, Rule, Trigger};
use crate::report::{Action, DeviceNode, NvmlStatus, Reading, Report, Severity};

pub(super) const GP003: Rule = Rule {
    code: "GP003",
    severity: Severity::Error,
    summary: "NVIDIA_VISIBLE_DEVICES gives this container no GPU",
    when: "NVIDIA_VISIBLE_DEVICES is `none`, `void` or empty and CUDA finds no GPU",
    fix: "Set NVIDIA_VISIBLE_DEVICES=all (or GPU indices or UUIDs), or start with `--gpus all`: `none` injects the driver without GPUs, `void` or empty injects nothing.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(visible_devices_none),
};

fn visible_devices_none(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "NVIDIA_VISIBLE_DEVICES")?;
    let v = value.trim().to_ascii_lowercase();
    let no_gpu = cuda_missing(r)
        || init_error(r) == Some(CUDA_ERROR_NO_DEVICE)
        || r.driver.device_count == Some(0);
    (matches!(v.as_str(), "none" | "void" | "") && no_gpu)
        .then(|| vec![format!("NVIDIA_VISIBLE_DEVICES={value:?}")])
}

pub(super) const GP026: Rule = Rule {
    code: "GP026",
    severity: Severity::Warning,
    summary: "NVIDIA_VISIBLE_DEVICES holds entries the container toolkit does not understand",
    when: "an entry is not `all`, `none`, `void`, an index, a GPU or MIG UUID, or index:index",
    fix: "Use `all`, comma-separated indices, or UUIDs from `nvidia-smi -L`.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(visible_devices_malformed),
};

fn visible_devices_malformed(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "NVIDIA_VISIBLE_DEVICES")?;
    let v = value.trim().to_ascii_lowercase();
    if matches!(v.as_str(), "all" | "none" | "void" | "") {
        return None;
    }
    let bad: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|e| {
            !(e.parse::<u32>().is_ok()
                || e.starts_with("GPU-")
                || e.starts_with("MIG-")
                || e.split(':').count() == 2 && e.split(':').all(|p| p.parse::<u32>().is_ok()))
        })
        .map(|e| format!("entry {e:?} in NVIDIA_VISIBLE_DEVICES={value:?} is not an index, a UUID or index:index"))
        .collect();
    non_empty(bad)
}

fn gpu_nodes(r: &Report) -> Vec<&DeviceNode> {
    given_nodes(r)
        .filter(|n| {
            n.path
                .strip_prefix("/dev/nvidia")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// How many GPUs the container has, whatever CUDA_VISIBLE_DEVICES says.
fn gpus_given(r: &Report) -> usize {
    if r.nvml.status == NvmlStatus::Loaded {
        r.nvml.device_uuids.len() + r.nvml.lost_devices.len()
    } else {
        gpu_nodes(r).len()
    }
}

pub(super) const GP004: Rule = Rule {
    code: "GP004",
    severity: Severity::Error,
    summary: "CUDA_VISIBLE_DEVICES hides every GPU this container has",
    when: "CUDA_VISIBLE_DEVICES is set, CUDA sees no device, but NVML or /dev/nvidiaN show GPUs",
    fix: "Unset CUDA_VISIBLE_DEVICES or list GPUs that exist (indices 0..N-1 or UUIDs from `gpuprobe list`); CUDA reads the list only up to its first invalid entry.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(cuda_visible_hides_all),
};

fn cuda_visible_hides_all(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "CUDA_VISIBLE_DEVICES")?;
    let none_seen = init_error(r) == Some(CUDA_ERROR_NO_DEVICE) || r.driver.device_count == Some(0);
    let given = gpus_given(r);
    (none_seen && given > 0).then(|| {
        vec![
            format!("CUDA_VISIBLE_DEVICES={value:?}"),
            format!("the container has {given} GPU(s), CUDA sees none"),
        ]
    })
}

pub(super) const GP005: Rule = Rule {
    code: "GP005",
    severity: Severity::Warning,
    summary: "CUDA_VISIBLE_DEVICES names a GPU that does not exist, hiding it and every GPU listed after it",
    when: "an entry of CUDA_VISIBLE_DEVICES is out of range, an unknown UUID, or not an index or UUID, while CUDA still sees some GPU; a MIG entry (`MIG-<uuid>`, or `MIG-GPU-<uuid>/<gi>/<ci>` of drivers before 470) counts as unknown only when no GPU here is in MIG mode, or its GPU does not exist",
    fix: "Correct CUDA_VISIBLE_DEVICES: CUDA stops reading the list at the first entry that names no GPU, silently dropping the rest. Indices count GPUs in nvidia-smi's order, never MIG instances (a GPU in MIG mode is one index; its MIG devices are named by their `MIG-` UUIDs), and inside a container only the GPUs the container was given.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(cuda_visible_unknown_entry),
};

fn cuda_visible_unknown_entry(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "CUDA_VISIBLE_DEVICES")?;
    if r.driver.device_count.unwrap_or(0) == 0 {
        return None;
    }
    let given = gpus_given(r);
    let uuids = &r.nvml.device_uuids;
    let first_bad = value.split(',').map(str::trim).find(|e| {
        if let Ok(i) = e.parse::<usize>() {
            given > 0 && i >= given
        } else if e.starts_with("MIG-") {
            mig_entry_names_nothing(r, e)
        } else if e.starts_with("GPU-") {
            r.nvml.status == NvmlStatus::Loaded && !uuids.iter().any(|u| u.starts_with(e))
        } else {
            true
        }
    })?;
    Some(vec![
        format!("CUDA_VISIBLE_DEVICES={value:?}: entry {first_bad:?} names no GPU of the {given} this container has"),
        format!("CUDA sees {} GPU(s)", r.driver.device_count.unwrap_or(0)),
    ])
}

/// Whether a `MIG-…` entry of CUDA_VISIBLE_DEVICES surely names no MIG
/// device of this container. Both forms are valid (NVIDIA MIG User Guide,
/// "CUDA Device Enumeration"): `MIG-<uuid>` (drivers >= 470) and
/// `MIG-GPU-<gpu uuid>/<gi>/<ci>` (older). NVML lists whole GPUs only, and
/// CUDA enumerates one MIG device per process, so a `MIG-<uuid>` CUDA did
/// not enumerate may still be another instance: it is judged only where no
/// GPU here is in MIG mode at all. The older form is judged by its GPU.
fn mig_entry_names_nothing(r: &Report, entry: &str) -> bool {
    if let Some(legacy) = entry.strip_prefix("MIG-GPU-") {
        let gpu = format!("GPU-{}", legacy.split('/').next().unwrap_or(""));
        let known = r.nvml.device_uuids.contains(&gpu)
            || r.devices
                .iter()
                .any(|d| d.mig_parent_uuid.as_deref() == Some(gpu.as_str()));
        return r.nvml.status == NvmlStatus::Loaded && !known;
    }
    let enumerated = r
        .devices
        .iter()
        .any(|d| d.uuid.as_deref().is_some_and(|u| u.starts_with(entry)));
    let mig_in_use = r.devices.iter().any(|d| {
        d.mig_parent_uuid.is_some()
            || d.telemetry
                .as_ref()
                .is_some_and(|t| t.mig_enabled == Reading::Value(true))
    });
    r.nvml.status == NvmlStatus::Loaded && !enumerated && !mig_in_use
}
