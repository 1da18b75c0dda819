//! What NVML says: how far gpuprobe got with it (`Report::nvml`), each GPU's
//! readings (`DeviceReport::telemetry`), and `Reading`, a value or the reason
//! there is none, whose JSON form reads back unambiguously for the value
//! types `NeverAReason` admits.
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::ThrottleReason;

/// A reading NVML may not give: the value, or why there is none.
///
/// On the wire a reading is its value as is (`71`, `true`, `[...]`,
/// `"default"`), or one of the `Unavailable` words. That is unambiguous
/// only because no value is ever a string spelling such a word: `Reading`
/// reads back only for value types that promise so (`NeverAReason`), which
/// excludes `String`, and a reason word always reads back as the reason
/// (docs/report.md, "Values").
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Reading<T> {
    Value(T),
    Unavailable(Unavailable),
}

/// A value type whose JSON form is never a string equal to an `Unavailable`
/// word, so that `Reading<Self>` reads back as it was written. Numbers,
/// booleans and arrays are never strings; an enum of words qualifies when
/// none of its words is a reason (see the tests).
pub trait NeverAReason {}

impl NeverAReason for u32 {}
impl NeverAReason for u64 {}
impl NeverAReason for f64 {}
impl NeverAReason for bool {}
// An array is never a string.
impl<T> NeverAReason for Vec<T> {}
impl NeverAReason for ComputeMode {}
/// Its words (`none`, `gpu_reset`, ..., `unknown_N`) are no reason's (see
/// the tests); `Other` holds only words read back, where a reason word
/// reads as the reason first.
impl NeverAReason for super::RecoveryAction {}

impl<'de, T> Deserialize<'de> for Reading<T>
where
    T: Deserialize<'de> + NeverAReason,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The reason first: a reason word is always the reason.
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "a reading: its value, or \"not_supported\", \"no_permission\", \"gpu_lost\" or \"error\""
        )]
        enum Wire<T> {
            Unavailable(Unavailable),
            Value(T),
        }
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Unavailable(u) => Reading::Unavailable(u),
            Wire::Value(v) => Reading::Value(v),
        })
    }
}

/// Why a reading has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// This GPU or driver does not support the query (NVML_ERROR_NOT_SUPPORTED).
    NotSupported,
    /// The process may not ask (NVML_ERROR_NO_PERMISSION).
    NoPermission,
    /// The GPU has fallen off the bus (NVML_ERROR_GPU_IS_LOST).
    GpuLost,
    /// Any other error.
    Error,
}

impl<T> Reading<T> {
    /// The value, if there is one.
    pub fn value(&self) -> Option<&T> {
        match self {
            Reading::Value(v) => Some(v),
            Reading::Unavailable(_) => None,
        }
    }
}

/// A GPU's compute mode (nvmlComputeMode_t, NVML API reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComputeMode {
    /// Any number of contexts, from any process.
    Default,
    /// One context, used by one thread at a time (removed in CUDA 8; older
    /// drivers may still report it).
    ExclusiveThread,
    /// No context can be created.
    Prohibited,
    /// One context, from one process, used by any of its threads.
    ExclusiveProcess,
}

impl ComputeMode {
    /// Every mode, in nvml.h's order.
    pub const ALL: [ComputeMode; 4] = [
        ComputeMode::Default,
        ComputeMode::ExclusiveThread,
        ComputeMode::Prohibited,
        ComputeMode::ExclusiveProcess,
    ];

    /// The word used in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeMode::Default => "default",
            ComputeMode::ExclusiveThread => "exclusive_thread",
            ComputeMode::Prohibited => "prohibited",
            ComputeMode::ExclusiveProcess => "exclusive_process",
        }
    }
}

impl std::fmt::Display for ComputeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far gpuprobe got with NVML.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NvmlStatus {
    /// nvmlInit succeeded.
    Loaded,
    /// No libnvidia-ml: no `utility` capability, or no GPU runtime.
    NotFound,
    /// The library loaded but nvmlInit failed (`error_code` says how).
    InitFailed,
    /// The run ended before NVML was tried.
    #[default]
    NotChecked,
}

impl NvmlStatus {
    /// The word used in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NvmlStatus::Loaded => "loaded",
            NvmlStatus::NotFound => "not_found",
            NvmlStatus::InitFailed => "init_failed",
            NvmlStatus::NotChecked => "not_checked",
        }
    }
}

impl std::fmt::Display for NvmlStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// NVML as found: loaded or not, and what it says of the machine.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct NvmlInfo {
    /// `loaded`, `not_found` (no libnvidia-ml: no `utility` capability or no
    /// GPU runtime), `init_failed`, or `not_checked` (the run ended before NVML was tried).
    pub status: NvmlStatus,
    /// The file the loader mapped, when loaded.
    pub library_path: Option<String>,
    /// The NVML return code of a failed nvmlInit, e.g. 18 (driver/library
    /// version mismatch).
    pub error_code: Option<i32>,
    /// What went wrong, in words.
    pub error: Option<String>,
    /// The user-space driver version, e.g. "550.54.15".
    pub driver_version: Option<String>,
    /// NVML's own version.
    pub nvml_version: Option<String>,
    /// The GPUs NVML sees (all GPUs given to the container; CUDA_VISIBLE_DEVICES
    /// does not apply to NVML).
    pub device_uuids: Vec<String>,
    /// NVML indices of GPUs that answered NVML_ERROR_GPU_IS_LOST.
    pub lost_devices: Vec<u32>,
    /// The registration with the NVLink fabric of every GPU NVML sees that
    /// is on one (NVSwitch systems; read at each probe, also when cuInit
    /// failed): empty on PCIe-only machines, before Hopper, and from
    /// drivers before R535. Added within schema version 1.
    #[serde(default)]
    pub fabric: Vec<crate::report::GpuFabric>,
}

/// NVML readings for one GPU. Units are in the names.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Telemetry {
    pub temperature_celsius: Reading<u32>,
    pub power_draw_watts: Reading<f64>,
    pub power_limit_watts: Reading<f64>,
    /// The board's default power limit
    /// (nvmlDeviceGetPowerManagementDefaultLimit): an enforced limit below
    /// it was lowered (`nvidia-smi -pl`, or a job left it so).
    #[serde(default = "not_read::<f64>")]
    pub power_default_limit_watts: Reading<f64>,
    pub utilization_gpu_percent: Reading<u32>,
    pub utilization_memory_percent: Reading<u32>,
    pub sm_clock_mhz: Reading<u32>,
    pub sm_clock_max_mhz: Reading<u32>,
    pub memory_clock_mhz: Reading<u32>,
    pub memory_clock_max_mhz: Reading<u32>,
    pub memory_bus_width_bits: Reading<u32>,
    /// The PCIe link's current generation, read when `pcie_link_state` says.
    pub pcie_generation: Reading<u32>,
    /// The highest generation the GPU and its slot support.
    pub pcie_generation_max: Reading<u32>,
    /// The PCIe link's current width, read when `pcie_link_state` says.
    pub pcie_width_lanes: Reading<u32>,
    /// The widest link the GPU and its slot support.
    pub pcie_width_max_lanes: Reading<u32>,
    /// When `pcie_generation` and `pcie_width_lanes` were read: `under_load`
    /// (at work: the highest generation and lowest width of the readings
    /// taken while the matmul's timed products, or else the bandwidth
    /// check's copies, had run at least 100 ms, the time a link may take to
    /// train up) or `idle` (no such reading: `list`, `health --no-context`,
    /// or timed work too short; the reading is then the one taken after the
    /// work). An idle link may train down in generation and width to save
    /// power, so only an `under_load` link says anything of the link.
    #[serde(default)]
    pub pcie_link_state: Option<LinkState>,
    pub ecc_enabled: Reading<bool>,
    /// Uncorrectable ECC errors since the driver loaded.
    pub ecc_uncorrected_volatile: Reading<u64>,
    /// Uncorrectable ECC errors over the GPU's life.
    pub ecc_uncorrected_aggregate: Reading<u64>,
    pub ecc_corrected_volatile: Reading<u64>,
    /// Pages waiting to be retired at the next driver reload (older GPUs).
    pub retired_pages_pending: Reading<bool>,
    /// A row remap waiting for a GPU reset (Ampere and newer).
    pub remapped_rows_pending: Reading<bool>,
    /// A row remap failed: the GPU needs service.
    pub remapped_rows_failure: Reading<bool>,
    pub remapped_rows_uncorrectable: Reading<u32>,
    /// Why clocks were held down right after the benchmark, e.g.
    /// `sw_power_cap`, `hw_thermal_slowdown`; empty when none.
    pub throttle_reasons: Reading<Vec<ThrottleReason>>,
    pub persistence_mode: Reading<bool>,
    /// `default`, `exclusive_process`, `prohibited` (or, from old drivers,
    /// `exclusive_thread`).
    pub compute_mode: Reading<ComputeMode>,
    pub mig_enabled: Reading<bool>,
    /// Processes with a compute context on the GPU, as
    /// nvmlDeviceGetComputeRunningProcesses lists them (gpuprobe's own
    /// among them once it holds a context). Counted, never resolved:
    /// inside a container NVML reports the host's PIDs.
    #[serde(default = "not_read::<u32>")]
    pub compute_processes: Reading<u32>,
    /// The device memory those processes hold, in bytes.
    #[serde(default = "not_read::<u64>")]
    pub compute_processes_memory_bytes: Reading<u64>,
    /// What the driver says the GPU needs (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION,
    /// drivers from R565): `none`, `gpu_reset`, `node_reboot`, `drain_p2p`,
    /// `drain_and_reset` (or `unknown_N`); `not_supported` from older
    /// drivers. Added within schema version 1.
    #[serde(default = "not_read::<crate::report::RecoveryAction>")]
    pub recovery_action: Reading<crate::report::RecoveryAction>,
    /// The graphics applications clock the GPU runs work at now
    /// (nvmlDeviceGetApplicationsClock), MHz: set by `nvidia-smi -ac`, or
    /// left so by an earlier job. Added within schema version 1.
    #[serde(default = "not_read::<u32>")]
    pub applications_clock_mhz: Reading<u32>,
    /// Its default, what `nvidia-smi -rac` restores
    /// (nvmlDeviceGetDefaultApplicationsClock), MHz. Added within schema 1.
    #[serde(default = "not_read::<u32>")]
    pub applications_clock_default_mhz: Reading<u32>,
    /// The memory applications clock now, MHz. Added within schema 1.
    #[serde(default = "not_read::<u32>")]
    pub applications_memory_clock_mhz: Reading<u32>,
    /// Its default, MHz. Added within schema 1.
    #[serde(default = "not_read::<u32>")]
    pub applications_memory_clock_default_mhz: Reading<u32>,
    /// Whether ECC will be on after the next GPU reset or reboot
    /// (nvmlDeviceGetEccMode's pending mode): differing from `ecc_enabled`,
    /// a change (`nvidia-smi -e`) waits for a reset. Added within schema 1.
    #[serde(default = "not_read::<bool>")]
    pub ecc_pending_enabled: Reading<bool>,
    /// Whether MIG mode will be on after the next GPU reset
    /// (nvmlDeviceGetMigMode's pending mode): differing from
    /// `mig_enabled`, a change (`nvidia-smi -mig`) waits for a reset.
    /// Added within schema 1.
    #[serde(default = "not_read::<bool>")]
    pub mig_pending_enabled: Reading<bool>,
    /// Whether the driver knows of device memory it cannot repair
    /// (nvmlDeviceGetUnrepairableMemoryFlag_v1, drivers from R590):
    /// `true` means the GPU needs service; `not_supported` from older
    /// drivers. Added within schema version 1.
    #[serde(default = "not_read::<bool>")]
    pub unrepairable_memory: Reading<bool>,
}

/// A reading absent from a report of an older gpuprobe.
fn not_read<T>() -> Reading<T> {
    Reading::Unavailable(Unavailable::NotSupported)
}

/// When a PCIe link reading was taken (nvidia-smi(1), "Link
/// Width/Generation": the current values "may be reduced when the GPU is not
/// in use").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// While gpuprobe's launches were running: the link at work.
    UnderLoad,
    /// With no work of gpuprobe's on the GPU: the link may have trained down.
    Idle,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{LibraryOrigin, ReportCommand};

    const REASONS: [Unavailable; 4] = [
        Unavailable::NotSupported,
        Unavailable::NoPermission,
        Unavailable::GpuLost,
        Unavailable::Error,
    ];

    fn word<T: Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    fn round_trip<T>(reading: &Reading<T>) -> Reading<T>
    where
        T: Serialize + for<'de> Deserialize<'de> + NeverAReason,
    {
        serde_json::from_str(&serde_json::to_string(reading).unwrap()).unwrap()
    }

    #[test]
    fn no_recovery_action_is_spelled_like_a_reason() {
        let reasons: Vec<String> = REASONS.iter().map(word).collect();
        for v in 0..16 {
            let action = super::super::RecoveryAction::from_value(v);
            assert!(!reasons.contains(&action.word().into_owned()), "{action}");
            let reading = Reading::Value(action);
            assert_eq!(round_trip(&reading), reading);
        }
    }

    #[test]
    fn no_compute_mode_is_spelled_like_a_reason() {
        let reasons: Vec<String> = REASONS.iter().map(word).collect();
        for mode in ComputeMode::ALL {
            assert!(!reasons.contains(&word(mode)), "{mode}");
            assert_eq!(word(mode), mode.as_str());
        }
    }

    #[test]
    fn readings_read_back_as_written() {
        for reason in REASONS {
            assert_eq!(
                round_trip::<u32>(&Reading::Unavailable(reason)),
                Reading::Unavailable(reason)
            );
            assert_eq!(
                round_trip::<ComputeMode>(&Reading::Unavailable(reason)),
                Reading::Unavailable(reason)
            );
            assert_eq!(
                round_trip::<Vec<ThrottleReason>>(&Reading::Unavailable(reason)),
                Reading::Unavailable(reason)
            );
        }
        for mode in ComputeMode::ALL {
            assert_eq!(round_trip(&Reading::Value(mode)), Reading::Value(mode));
        }
        // A reason word inside the array is a throttle reason, kept.
        let reasons = vec![ThrottleReason::from_word("not_supported")];
        assert_eq!(
            round_trip(&Reading::Value(reasons.clone())),
            Reading::Value(reasons)
        );
        assert_eq!(round_trip(&Reading::Value(250.5f64)), Reading::Value(250.5));
        assert_eq!(round_trip(&Reading::Value(false)), Reading::Value(false));
        // Anything else is refused, not guessed.
        assert!(serde_json::from_str::<Reading<ComputeMode>>("\"exclusive\"").is_err());
        assert!(serde_json::from_str::<Reading<u32>>("\"12\"").is_err());
    }

    #[test]
    fn words_in_text_match_the_json() {
        for status in [
            NvmlStatus::Loaded,
            NvmlStatus::NotFound,
            NvmlStatus::InitFailed,
            NvmlStatus::NotChecked,
        ] {
            assert_eq!(word(status), status.to_string());
        }
        assert_eq!(word(ReportCommand::List), "list");
        assert_eq!(word(LibraryOrigin::Injected), "injected");
    }
}
