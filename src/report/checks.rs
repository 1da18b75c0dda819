//! A stage's outcome as the report records it: the `Check`, how it ended,
//! and the driver error behind it. The machine's checks are `Report::checks`,
//! each GPU's `DeviceReport::checks`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One timed stage of the probe.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Check {
    /// Stage name, e.g. `load_driver`, `cu_init`, `context`, `matmul`, `verify`.
    pub name: String,
    /// How the stage ended.
    pub status: CheckStatus,
    /// Wall time of the stage in milliseconds.
    pub duration_ms: f64,
    /// What was found, in words.
    pub detail: String,
    /// The driver error that failed the stage, if one did; or the one
    /// behind a stage it did not fail (a busy GPU's skipped context,
    /// refused pinned memory in the bandwidth check).
    pub error: Option<DriverError>,
}

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Done, nothing wrong.
    Pass,
    /// Done, with something worth a look.
    Warn,
    /// The stage failed.
    Fail,
    /// Not run, because an earlier stage failed.
    Skip,
    /// Still running when the deadline passed.
    Timeout,
}

/// A CUDA driver API call that returned an error.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DriverError {
    /// The driver API function, e.g. `cuInit`.
    pub call: String,
    /// The CUresult number.
    pub code: i32,
    /// The CUresult name, e.g. `CUDA_ERROR_NO_DEVICE`, when known.
    pub name: Option<String>,
    /// The driver's own description, when it gives one.
    pub description: Option<String>,
}
