//! One GPU's part of the report (`Report::devices`): what the driver says of
//! it, whether it passed, and why its compute went unverified when it did.
//! Its measurements are types of their own: matmul.rs, bandwidth.rs,
//! peak.rs, burn.rs, bench.rs, and nvml.rs's `Telemetry`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::compute_capability::no_default;
use super::{
    Bandwidth, BenchRow, Burn, Check, ComputeCapability, Matmul, Memtest, Peak, RunCounters,
    Telemetry, TensorMatmul,
};

/// One GPU and what gpuprobe measured on it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceReport {
    /// CUDA ordinal inside this process (after CUDA_VISIBLE_DEVICES).
    pub index: u32,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: Option<String>,
    /// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", or "MIG-…" for a MIG
    /// instance (cuDeviceGetUuid_v2); stable across processes and
    /// containers, unlike `index`.
    pub uuid: Option<String>,
    /// When this device is a MIG instance (its `uuid` is then `MIG-…`), the
    /// UUID of the GPU it is part of, `GPU-…`; null for a whole GPU, and
    /// for a MIG instance under a driver without cuDeviceGetUuid_v2.
    #[serde(default)]
    pub mig_parent_uuid: Option<String>,
    /// PCI address, "domain:bus:device.function".
    pub pci_bus_id: Option<String>,
    /// Compute capability, "major.minor".
    #[serde(default, deserialize_with = "ComputeCapability::read_or_unknown")]
    #[schemars(transform = no_default)]
    pub compute_capability: Option<ComputeCapability>,
    /// Streaming multiprocessors.
    pub multiprocessors: Option<u32>,
    /// Maximum SM clock in MHz.
    pub clock_mhz: Option<u32>,
    /// Total memory in bytes.
    pub memory_total_bytes: Option<u64>,
    /// Free memory in bytes when the probe started on this device (in its
    /// context, cuMemGetInfo).
    pub memory_free_bytes: Option<u64>,
    /// Memory in use (by anyone) when the probe started, in bytes: NVML's
    /// reading before gpuprobe's context existed when NVML is available,
    /// else total less `memory_free_bytes` (which includes the context).
    pub memory_used_bytes: Option<u64>,
    /// Device memory gpuprobe's own CUDA context and module took: NVML's
    /// free memory before the context existed less cuMemGetInfo's once the
    /// context and the module were made. Null without NVML or when the
    /// context was not made; another process allocating meanwhile skews it.
    #[serde(default)]
    pub context_memory_bytes: Option<u64>,
    /// Why this GPU's compute was not verified though it was probed: it
    /// admitted no context of this process for a reason that is not a
    /// fault of its own (busy), or one that needs a look (memory held by
    /// no listed process). Null when its compute was checked, or when a
    /// failure stopped it (the checks say which). Added within schema 1.
    #[serde(default)]
    pub compute_not_verified: Option<NotVerified>,
    /// Whether this device passed; `skipped` when it was not asked for.
    pub status: DeviceStatus,
    /// The device's stages in the order they ran.
    pub checks: Vec<Check>,
    /// The matmul measurement, when it ran.
    pub matmul: Option<Matmul>,
    /// NVML readings taken right after the matmul, when NVML is available.
    pub telemetry: Option<Telemetry>,
    /// The tensor-core matmuls (`tensor_cores` check), one per input
    /// precision; empty when they did not run (below compute capability
    /// 8.0, or an earlier stage failed: the check says why).
    #[serde(default)]
    pub tensor_cores: Vec<TensorMatmul>,
    /// What this GPU should do at most: its theoretical FP32 peak and
    /// memory bandwidth (src/peak.rs). Null in reports of older versions.
    #[serde(default)]
    pub peak: Option<Peak>,
    /// Milliseconds the `module` stage spent in cuModuleLoadData (which
    /// JIT-compiles the embedded PTX unless the driver's JIT cache holds
    /// it) and cuModuleGetFunction. Null when the stage did not run, and
    /// in reports of older versions.
    #[serde(default)]
    pub module_load_ms: Option<f64>,
    /// `burn`: the sustained run on this GPU (docs/report.md, "burn").
    #[serde(default)]
    pub burn: Option<Burn>,
    /// `bench`: each kernel at each size, in the order run; empty for
    /// other commands and in reports of older versions.
    #[serde(default)]
    pub bench: Vec<BenchRow>,
    /// The `bandwidth` check's measurements: device memory (a copy and a
    /// streaming kernel) and the host link (pinned copies each way), each
    /// against what the GPU should do. Null when the check did not run
    /// (`health`, an earlier stage failed), and in reports of older
    /// versions.
    #[serde(default)]
    pub bandwidth: Option<Bandwidth>,
    /// The memory test (`memtest`, `--memtest`, `burn --memtest`): patterns
    /// written and read back over the GPU's free memory by its kernels.
    /// Null when it did not run, and in reports of older versions.
    #[serde(default)]
    pub memtest: Option<Memtest>,
    /// NVML's error counters (PCIe replays, ECC in memory and SRAM) read
    /// before and after gpuprobe's work on this GPU, with what the run
    /// added. Null without NVML, when NVML does not list the GPU, for
    /// `list` and `health --no-context`, and in reports of older versions.
    /// Added within schema version 1.
    #[serde(default)]
    pub counters: Option<RunCounters>,
}

impl DeviceReport {
    /// A device the driver counted, before anything is known of it.
    #[must_use]
    pub fn new(index: u32) -> DeviceReport {
        DeviceReport {
            index,
            name: None,
            uuid: None,
            mig_parent_uuid: None,
            pci_bus_id: None,
            compute_capability: None,
            multiprocessors: None,
            clock_mhz: None,
            memory_total_bytes: None,
            memory_free_bytes: None,
            memory_used_bytes: None,
            context_memory_bytes: None,
            compute_not_verified: None,
            status: DeviceStatus::Pass,
            checks: Vec::new(),
            matmul: None,
            telemetry: None,
            tensor_cores: Vec::new(),
            peak: None,
            module_load_ms: None,
            burn: None,
            bench: Vec::new(),
            bandwidth: None,
            memtest: None,
            counters: None,
        }
    }

    /// The GPU admitted no context of this process and was not probed
    /// further, for a reason gpuprobe records as a fact
    /// (`compute_not_verified`): its compute was not checked.
    #[must_use]
    pub fn admits_no_context(&self) -> bool {
        self.compute_not_verified.is_some()
    }
}

/// Why a probed GPU's compute was not verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotVerified {
    /// Its compute mode admits no context of this process: PROHIBITED, or
    /// EXCLUSIVE_PROCESS held by another process.
    BusyComputeMode,
    /// Its memory is held by the processes NVML lists (a job using nearly
    /// all of it): no room for a context.
    BusyMemory,
    /// No room for a context, and the processes NVML lists hold under 90%
    /// of the used memory: memory held with no process (an orphaned
    /// context, a leak in the driver), which a reset frees.
    MemoryHeldWithoutProcess,
}

/// Whether a device passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Every check passed.
    Pass,
    /// Passed, with warnings.
    Warn,
    /// A check failed.
    Fail,
    /// Not probed: not in `--devices`, or `list` only enumerates.
    Skipped,
    /// A stage did not finish before the deadline.
    Timeout,
}
