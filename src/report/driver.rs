//! The CUDA driver library as gpuprobe found it (`Report::driver`): the
//! file loaded, where the loader looked, what the library lacked, and why it
//! could not be used when it could not.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CUDA driver library and what it reported.
/// Why the CUDA driver library could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriverLoadFailure {
    /// No libcuda on the loader's path (nvcuda.dll on Windows).
    NotFound,
    /// Found, but the loader refused it (wrong architecture, a missing
    /// dependency, a broken file).
    Unloadable,
    /// Loaded, but it lacks entry points gpuprobe needs (too old a driver).
    MissingSymbols,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct DriverInfo {
    /// The file actually loaded (resolved through the loader), when one was.
    pub library_path: Option<String>,
    /// The library names tried, in order.
    pub library_candidates: Vec<String>,
    /// Where the dynamic loader looks for them, in its order.
    pub search_path: Vec<String>,
    /// Driver API symbols gpuprobe needs that the library lacks (an older driver).
    pub missing_symbols: Vec<String>,
    /// Entry points gpuprobe uses when present that this driver lacks; the
    /// probe works without them (e.g. cuDeviceGetUuid_v2 before CUDA 11.4:
    /// a MIG instance then shows its parent GPU's UUID).
    #[serde(default)]
    pub missing_optional_symbols: Vec<String>,
    /// Why libcuda could not be used, when it could not; null when it loaded.
    #[serde(default)]
    pub load_failure: Option<DriverLoadFailure>,
    /// CUDA version the driver supports, "major.minor" (cuDriverGetVersion).
    pub cuda_version: Option<String>,
    /// The raw cuDriverGetVersion value (1000 * major + 10 * minor).
    pub cuda_version_raw: Option<i32>,
    /// GPUs visible to this process (cuDeviceGetCount).
    pub device_count: Option<u32>,
}
