//! What NVML says a GPU needs beyond its own readings: its registration with
//! the NVLink fabric (NVSwitch systems) and the recovery action the driver
//! asks for.
use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One GPU's registration with the NVLink fabric, as
/// nvmlDeviceGetGpuFabricInfo(V) reports it (NVML API Reference, "Fabric
/// definitions"; Hopper and newer). On NVSwitch systems (HGX A100/H100/H200,
/// B200) the fabric manager (nvidia-fabricmanager, and NVLSM on Blackwell)
/// registers every GPU with the fabric; until it has, CUDA answers
/// CUDA_ERROR_SYSTEM_NOT_READY (802). GPUs on no fabric are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GpuFabric {
    /// NVML's index of the GPU.
    pub index: u32,
    /// The GPU's UUID, when NVML gave it.
    pub uuid: Option<String>,
    pub state: FabricState,
    /// When `state` is `completed`: the registration's NVML return code (0
    /// success; anything else failed). Null before completion, where NVML
    /// says it means nothing.
    pub status: Option<i32>,
    /// The fabric health mask (nvmlGpuFabricInfo_v2_t::healthMask, drivers
    /// from R550), raw: NVML_GPU_FABRIC_HEALTH_MASK_* fields of 2 bits each.
    /// Null from older drivers.
    pub health_mask: Option<u32>,
    /// The mask's "degraded bandwidth" field: true when NVML says the GPU's
    /// fabric bandwidth is degraded; null where the driver does not say.
    pub bandwidth_degraded: Option<bool>,
}

/// nvmlGpuFabricState_t.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FabricState {
    /// NVML_GPU_FABRIC_STATE_NOT_STARTED: no fabric manager has begun to
    /// register the GPU.
    NotStarted,
    /// NVML_GPU_FABRIC_STATE_IN_PROGRESS: registration under way.
    InProgress,
    /// NVML_GPU_FABRIC_STATE_COMPLETED: done; `status` says how it went.
    Completed,
}

/// What the driver says a GPU needs before it can be trusted again
/// (nvmlDeviceGetFieldValues, NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, drivers
/// from R565; nvml.h `nvmlDeviceGpuRecoveryAction_t`). On the wire a word:
/// nvml.h's name in snake case, or `unknown_N` for a value this release does
/// not name, so that no action the driver asks for is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryAction {
    /// NVML_GPU_RECOVERY_ACTION_NONE: nothing to do.
    None,
    /// NVML_GPU_RECOVERY_ACTION_GPU_RESET: reset the GPU.
    GpuReset,
    /// NVML_GPU_RECOVERY_ACTION_NODE_REBOOT: reboot the node.
    NodeReboot,
    /// NVML_GPU_RECOVERY_ACTION_DRAIN_P2P: stop peer-to-peer traffic to
    /// and from the GPU.
    DrainP2p,
    /// NVML_GPU_RECOVERY_ACTION_DRAIN_AND_RESET: drain the GPU's work,
    /// then reset it.
    DrainAndReset,
    /// A value nvml.h of this release does not name.
    Unknown(u32),
    /// A word of a later release, kept as written; the probe never makes one.
    Other(String),
}

impl RecoveryAction {
    const NAMED: [(u32, RecoveryAction, &'static str); 5] = [
        (0, RecoveryAction::None, "none"),
        (1, RecoveryAction::GpuReset, "gpu_reset"),
        (2, RecoveryAction::NodeReboot, "node_reboot"),
        (3, RecoveryAction::DrainP2p, "drain_p2p"),
        (4, RecoveryAction::DrainAndReset, "drain_and_reset"),
    ];

    /// The action of NVML's value.
    #[must_use]
    pub fn from_value(value: u32) -> RecoveryAction {
        RecoveryAction::NAMED
            .into_iter()
            .find(|(v, _, _)| *v == value)
            .map_or(RecoveryAction::Unknown(value), |(_, a, _)| a)
    }

    /// Its word on the wire.
    #[must_use]
    pub fn word(&self) -> Cow<'_, str> {
        match self {
            RecoveryAction::Unknown(v) => Cow::Owned(format!("unknown_{v}")),
            RecoveryAction::Other(word) => Cow::Borrowed(word),
            named => Cow::Borrowed(
                RecoveryAction::NAMED
                    .iter()
                    .find(|(_, a, _)| a == named)
                    .map_or("none", |(_, _, w)| w),
            ),
        }
    }

    /// The action a word on the wire stands for; never fails, so a report
    /// of a later release reads.
    #[must_use]
    pub fn from_word(word: &str) -> RecoveryAction {
        if let Some((_, a, _)) = RecoveryAction::NAMED
            .into_iter()
            .find(|(_, _, w)| *w == word)
        {
            return a;
        }
        word.strip_prefix("unknown_")
            .and_then(|v| v.parse().ok())
            .map(RecoveryAction::Unknown)
            .filter(|a| a.word() == word)
            .unwrap_or_else(|| RecoveryAction::Other(word.to_string()))
    }

    /// What to do, in words, for the diagnosis.
    #[must_use]
    pub fn advice(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            RecoveryAction::None => "nothing",
            RecoveryAction::GpuReset => {
                "reset the GPU (`nvidia-smi -r -i <index>` once no process uses it)"
            }
            RecoveryAction::NodeReboot => "reboot the node",
            RecoveryAction::DrainP2p => {
                "stop peer-to-peer traffic to and from this GPU (drain multi-GPU jobs from it)"
            }
            RecoveryAction::DrainAndReset => "drain the node's work from this GPU, then reset it",
            RecoveryAction::Unknown(v) => {
                return Cow::Owned(format!(
                    "recovery action {v}, which this release of gpuprobe does not name: see \
                     NVIDIA's NVML reference for nvmlDeviceGpuRecoveryAction_t"
                ))
            }
            RecoveryAction::Other(w) => return Cow::Owned(format!("recovery action {w}")),
        })
    }
}

impl fmt::Display for RecoveryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.word())
    }
}

impl Serialize for RecoveryAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.word())
    }
}

impl<'de> Deserialize<'de> for RecoveryAction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(RecoveryAction::from_word(&String::deserialize(
            deserializer,
        )?))
    }
}

/// A string on the wire (`none`, `gpu_reset`, `node_reboot`, `drain_p2p`,
/// `drain_and_reset`, or `unknown_N`).
impl JsonSchema for RecoveryAction {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "RecoveryAction".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_reads_back_from_its_word() {
        for v in 0..8 {
            let a = RecoveryAction::from_value(v);
            assert_eq!(RecoveryAction::from_word(&a.word()), a, "{v}");
        }
        assert_eq!(RecoveryAction::from_value(1).word(), "gpu_reset");
        assert_eq!(RecoveryAction::from_value(9).word(), "unknown_9");
        assert_eq!(
            RecoveryAction::from_word("unknown_09"),
            RecoveryAction::Other("unknown_09".into())
        );
        assert_eq!(
            RecoveryAction::from_word("reflash"),
            RecoveryAction::Other("reflash".into())
        );
    }
}
