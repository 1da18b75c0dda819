//! A diagnosis as the report records it (`Report::diagnoses`): the rule's
//! code and severity, the evidence, the GPUs it concerns and the fix. The
//! rules themselves are in src/judge/diagnose/.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A misconfiguration, its evidence and its fix.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Diagnosis {
    /// Stable rule code, e.g. `GP001`; docs/diagnoses.md lists them.
    pub code: String,
    /// How much it matters.
    pub severity: Severity,
    /// The cause in one line.
    pub summary: String,
    /// What was observed that triggered the rule.
    pub evidence: Vec<String>,
    /// CUDA indices of the GPUs it concerns; empty when it concerns the
    /// machine or container. Their `status` follows the severity.
    pub devices: Vec<u32>,
    /// What to change: a flag, a command, a variable.
    pub fix: String,
    /// What it asks of the node or the workload, from a closed set
    /// (docs/diagnoses.md lists each rule's); `none` when read from a
    /// report of gpuprobe 0.1.0, which had none.
    #[serde(default)]
    pub action: Action,
}

/// How much a diagnosis matters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; the verdict is unchanged.
    Info,
    /// The GPU works, but not as it should; the verdict becomes `degraded`.
    Warning,
    /// The GPU cannot be used as it is; the verdict becomes `failed` or `no_gpu`.
    Error,
}

/// What the node or its workload needs done about a diagnosis, from a
/// closed set a scheduler can act on without reading the fix's prose
/// (`Diagnosis::action`). Ordered from least to most disruptive, so the
/// maximum of several is the one that covers them all (`Action::needed`).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do: advice, or a fact worth knowing.
    #[default]
    None,
    /// Change how the container, image, node or driver is set up (a flag,
    /// a variable, a package, a service); the GPU itself is fine.
    FixConfiguration,
    /// Restart or change the workload (another job holds the GPU, an
    /// application met an error); nothing is wrong with the node.
    RestartWorkload,
    /// Reset the GPU (`nvidia-smi -r`) once no process uses it.
    ResetGpu,
    /// Take the work off the GPU (or the node's peer-to-peer and multi-GPU
    /// work), then reset it.
    DrainAndReset,
    /// Reboot the node.
    RebootNode,
    /// Take the node out of scheduling for repair or replacement of the
    /// GPU: a reset or a reboot does not make it trustworthy again.
    DrainAndService,
}

impl Action {
    /// Every action, least disruptive first.
    pub const ALL: [Action; 7] = [
        Action::None,
        Action::FixConfiguration,
        Action::RestartWorkload,
        Action::ResetGpu,
        Action::DrainAndReset,
        Action::RebootNode,
        Action::DrainAndService,
    ];

    /// What the warnings and errors among `diagnoses` ask, the most
    /// disruptive of them; `None` when they ask nothing (advice alone).
    #[must_use]
    pub fn needed(diagnoses: &[Diagnosis]) -> Action {
        diagnoses
            .iter()
            .filter(|d| d.severity > Severity::Info)
            .map(|d| d.action)
            .max()
            .unwrap_or_default()
    }

    /// Its word on the wire, in Prometheus labels and in health's line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::FixConfiguration => "fix_configuration",
            Action::RestartWorkload => "restart_workload",
            Action::ResetGpu => "reset_gpu",
            Action::DrainAndReset => "drain_and_reset",
            Action::RebootNode => "reboot_node",
            Action::DrainAndService => "drain_and_service",
        }
    }
}
