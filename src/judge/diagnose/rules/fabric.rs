//! What the driver says a node or a GPU needs before CUDA work can be
//! trusted: the NVLink fabric's registration on NVSwitch systems (CUDA's
//! 802 until the fabric manager has registered every GPU) and the GPU
//! recovery action of drivers from R565.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, FabricState, Reading, RecoveryAction, Report, Severity};

/// CUDA_ERROR_SYSTEM_NOT_READY (cuda.h: "the system is not yet ready to
/// start any CUDA work"); on NVSwitch systems, the fabric manager has not
/// registered the GPUs with the fabric (../shared/FACTS.md section 13).
const CUDA_ERROR_SYSTEM_NOT_READY: i32 = 802;

pub(super) const GP038: Rule = Rule {
    code: "GP038",
    severity: Severity::Error,
    summary: "The NVLink fabric has not registered this node's GPUs: CUDA is not ready",
    when: "a CUDA call (cuInit, or a context) returns 802 (CUDA_ERROR_SYSTEM_NOT_READY), or NVML's GPU fabric info says a GPU's registration completed with an error; the evidence gives each GPU's fabric state as NVML reads it (not started: no fabric manager at work; in progress: registering; completed with an error status)",
    fix: "On an NVSwitch system (HGX A100/H100/H200, B200), the host must run NVIDIA's fabric manager, at the driver's exact version: `systemctl enable --now nvidia-fabricmanager` (on Blackwell also NVLSM, the NVLink subnet manager); in Kubernetes the GPU Operator deploys it. A registration in progress finishes within seconds of the service starting: run gpuprobe again. A registration that completed with an error needs `journalctl -u nvidia-fabricmanager` (or /var/log/fabricmanager.log): a version mismatch with the driver, a missing NVSwitch or a degraded NVLink are the usual causes.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(fabric_not_ready),
};

/// 802 from any CUDA call, or a fabric registration that completed with an
/// error; the evidence is every fabric GPU's state.
fn fabric_not_ready(r: &Report) -> Option<Vec<String>> {
    let not_ready: Vec<String> = r
        .checks
        .iter()
        .chain(r.devices.iter().flat_map(|d| &d.checks))
        .filter_map(|c| c.error.as_ref())
        .filter(|e| e.code == CUDA_ERROR_SYSTEM_NOT_READY)
        .map(|e| format!("{} returned 802 (CUDA_ERROR_SYSTEM_NOT_READY)", e.call))
        .collect();
    let failed = r
        .nvml
        .fabric
        .iter()
        .any(|f| f.status.is_some_and(|s| s != 0));
    if not_ready.is_empty() && !failed {
        return None;
    }
    let mut evidence = not_ready;
    evidence.dedup();
    for f in &r.nvml.fabric {
        let who = format!(
            "NVML GPU {} ({})",
            f.index,
            f.uuid.as_deref().unwrap_or("?")
        );
        let state = match (f.state, f.status) {
            (FabricState::NotStarted, _) => {
                "fabric registration not started (no fabric manager at work)".to_string()
            }
            (FabricState::InProgress, _) => "fabric registration in progress".to_string(),
            (FabricState::Completed, Some(0) | None) => "fabric registration completed".into(),
            (FabricState::Completed, Some(code)) => {
                format!("fabric registration completed with NVML error {code}")
            }
        };
        let degraded = if f.bandwidth_degraded == Some(true) {
            "; fabric bandwidth degraded"
        } else {
            ""
        };
        evidence.push(format!("{who}: {state}{degraded}"));
    }
    if r.nvml.fabric.is_empty() {
        evidence.push(
            "NVML reports no GPU on an NVLink fabric (no NVML, a driver before R535, or no \
             NVSwitch): the fabric's state could not be read"
                .into(),
        );
    }
    Some(evidence)
}

pub(super) const GP039: Rule = Rule {
    code: "GP039",
    severity: Severity::Error,
    summary: "The driver asks for a GPU to be recovered before it is used",
    when: "NVML's GPU recovery action (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, drivers from R565) is anything but none: gpu_reset, node_reboot, drain_p2p or drain_and_reset; read with or without a context (`health --no-context` too). Older drivers do not report it (`not_supported`), which is never a fault",
    fix: "Do exactly what the evidence says the driver asks for (reset the GPU with `nvidia-smi -r -i <index>` once no process uses it; reboot the node; drain peer-to-peer or multi-GPU work from it; or drain, then reset), then run gpuprobe again: the driver clears the action once it is done. Until then keep the node out of scheduling: a GPU that passes a check while its recovery action is pending can still fail the next job.",
    action: Remedy::AsTheDriverAsks,
    trigger: Trigger::PerDevice(recovery_pending),
};

fn recovery_pending(r: &Report) -> DeviceEvidence {
    r.devices
        .iter()
        .filter_map(|d| {
            let t = d.telemetry.as_ref()?;
            let Reading::Value(action) = &t.recovery_action else {
                return None;
            };
            (*action != RecoveryAction::None).then(|| {
                (
                    Some(d.index),
                    format!(
                        "GPU {} ({}): recovery action {action}: {}",
                        d.index,
                        d.uuid.as_deref().unwrap_or("?"),
                        action.advice()
                    ),
                )
            })
        })
        .collect()
}
