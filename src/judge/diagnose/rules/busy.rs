//! GPUs that admit no context of this process, so their compute went
//! unverified: busy with another's work (compute mode, memory held by listed
//! processes), or full of memory no listed process holds.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, NotVerified, Report, Severity};

pub(super) const GP029: Rule = Rule {
    code: "GP029",
    severity: Severity::Info,
    summary: "A GPU is busy: it admits no CUDA context of this process, so its compute was not verified",
    when: "context creation is refused because the GPU is busy: compute mode PROHIBITED with CUDA_ERROR_DEVICE_UNAVAILABLE (46) or CUDA_ERROR_UNKNOWN (999, what cuda.h documents for the first retain), or EXCLUSIVE_PROCESS with 46, or with 101 or 216 (older drivers) while NVML lists another compute process (the workload); or out of memory (CUDA_ERROR_OUT_OF_MEMORY) with under 1 GiB free, the processes NVML lists holding at least 90% of the used memory (a job using nearly all of it; memory held by no listed process is GP034). Any other refusal fails the GPU, and NVML's health signals still judge a busy one",
    fix: "Nothing to fix for a GPU in use. To check compute, run gpuprobe before the workload starts (`gpuprobe exec -- CMD`) or while it is stopped; use `gpuprobe health --no-context` beside the workload, which makes no context. `nvidia-smi -q -d COMPUTE` shows the mode; `nvidia-smi -c DEFAULT` allows shared use.",
    action: Remedy::Always(Action::None),
    trigger: Trigger::PerDevice(busy_gpu),
};

fn busy_gpu(r: &Report) -> DeviceEvidence {
    r.devices
        .iter()
        .filter(|d| {
            matches!(
                d.compute_not_verified,
                Some(NotVerified::BusyComputeMode | NotVerified::BusyMemory)
            )
        })
        .map(|d| {
            let mode = d
                .telemetry
                .as_ref()
                .and_then(|t| t.compute_mode.value().copied())
                .map_or("unknown (no NVML)".to_string(), |m| m.to_string());
            let refusal = d
                .checks
                .iter()
                .find(|c| crate::stage::Stage::Context.is(&c.name))
                .and_then(|c| c.error.as_ref())
                .map_or("a refusal".to_string(), |e| {
                    format!("{} ({})", e.code, e.name.as_deref().unwrap_or("unnamed"))
                });
            let others = d
                .telemetry
                .as_ref()
                .and_then(|t| t.compute_processes.value().copied())
                .map_or(String::new(), |n| {
                    format!("; NVML lists {n} compute process(es) on it")
                });
            let memory = match (d.compute_not_verified, d.memory_used_bytes, d.memory_free_bytes) {
                (Some(NotVerified::BusyMemory), Some(used), Some(free)) => format!(
                    "; {} used, {} free",
                    crate::units::bytes(used),
                    crate::units::bytes(free)
                ),
                _ => String::new(),
            };
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): context creation returned {refusal}; compute mode {mode}{others}{memory}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect()
}

pub(super) const GP034: Rule = Rule {
    code: "GP034",
    severity: Severity::Warning,
    summary: "A GPU's memory is full, held by no process NVML lists",
    when: "context creation ran out of memory (CUDA_ERROR_OUT_OF_MEMORY) with under 1 GiB free, and the processes nvmlDeviceGetComputeRunningProcesses lists hold under 90% of the used memory: memory held with no process (an orphaned context, a driver leak). A full GPU whose memory the listed processes hold is busy instead (GP029)",
    fix: "Find the memory's owner on the host (`nvidia-smi --query-compute-apps=pid,used_memory --format=csv`; inside a container NVML lists the host's PIDs). With no owner, reset the GPU when it is idle (`nvidia-smi -r -i N`) or reboot the node; until then jobs scheduled on it fail to allocate.",
    action: Remedy::Always(Action::ResetGpu),
    trigger: Trigger::PerDevice(memory_without_process),
};

/// GPUs whose memory is full and held by no listed process (GP034).
fn memory_without_process(r: &Report) -> DeviceEvidence {
    r.devices
        .iter()
        .filter(|d| d.compute_not_verified == Some(NotVerified::MemoryHeldWithoutProcess))
        .map(|d| {
            let held = d
                .telemetry
                .as_ref()
                .and_then(|t| {
                    Some((
                        *t.compute_processes.value()?,
                        *t.compute_processes_memory_bytes.value()?,
                    ))
                })
                .map_or("unknown".to_string(), |(n, bytes)| {
                    format!("{n} process(es) holding {}", crate::units::bytes(bytes))
                });
            let used = d
                .memory_used_bytes
                .map_or("?".to_string(), crate::units::bytes);
            let free = d
                .memory_free_bytes
                .map_or("?".to_string(), crate::units::bytes);
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): {used} used, {free} free; NVML lists {held}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect()
}
