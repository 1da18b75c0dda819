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
