//! What a GPU should do at most (`DeviceReport::peak`, derived by
//! src/peak.rs), and `Figure`: a derived value, or the input it lacked. The
//! measured throughputs and bandwidths are judged against these.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A GPU's theoretical peaks, from its properties (docs/report.md,
/// "Expected performance"). Each figure is its value, or why an input is
/// missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Peak {
    /// FP32 lanes (CUDA cores) per SM for this compute capability, null
    /// when the compute capability is unknown or not in gpuprobe's table.
    pub fp32_lanes_per_sm: Option<u32>,
    /// The SM clock the peak is computed at, in MHz: NVML's maximum SM
    /// clock, else the driver's clock rate attribute.
    pub fp32_clock_mhz: Option<u32>,
    /// Where `fp32_clock_mhz` came from.
    pub fp32_clock_source: Option<ClockSource>,
    /// SMs × FP32 lanes per SM × 2 (a fused multiply-add) × clock, in
    /// GFLOP/s.
    pub fp32_gflops: Figure,
    /// The same at NVML's SM clock read while the matmul ran
    /// (`matmul.sm_clock_mhz_under_load`).
    pub fp32_gflops_at_current_clock: Figure,
    /// 2 × NVML's maximum memory clock × bus width / 8, in GB/s (10⁹
    /// bytes per second).
    pub memory_bandwidth_gbps: Figure,
}

/// Where a peak's clock came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// NVML's maximum SM clock (nvmlDeviceGetMaxClockInfo).
    NvmlMax,
    /// The driver's CU_DEVICE_ATTRIBUTE_CLOCK_RATE (`clock_mhz`).
    Driver,
}

/// A figure gpuprobe derives: its value, or the word saying which input
/// was missing. No value is a string, so the two never read alike.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Figure {
    Value(f64),
    Missing(MissingInput),
}

impl Figure {
    /// The value, if there is one.
    #[must_use]
    pub fn value(self) -> Option<f64> {
        match self {
            Figure::Value(v) => Some(v),
            Figure::Missing(_) => None,
        }
    }
}

/// Why a figure has no value: the input that was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MissingInput {
    /// NVML is not available, or does not list this GPU.
    NoNvml,
    /// NVML gave no reading (not supported, no permission, an error) or 0.
    NvmlReading,
    /// The driver did not give the SM count, clock or compute capability.
    DeviceAttribute,
    /// The compute capability is not in gpuprobe's table of FP32 lanes per
    /// SM (a GPU newer than this gpuprobe).
    UnknownArchitecture,
    /// No measured throughput: the matmul did not run.
    NoMatmul,
    /// A MIG instance: it has a share of its GPU's memory bandwidth and copy
    /// engines that NVML does not state.
    MigInstance,
    /// A PCIe generation gpuprobe has no rate for (newer than 6).
    UnknownPcieGeneration,
}

impl std::fmt::Display for MissingInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MissingInput::NoNvml => "no NVML reading of this GPU",
            MissingInput::NvmlReading => "NVML gave no value",
            MissingInput::DeviceAttribute => {
                "the driver gave no SM count, clock or compute capability"
            }
            MissingInput::UnknownArchitecture => "compute capability not in gpuprobe's table",
            MissingInput::NoMatmul => "the matmul did not run",
            MissingInput::MigInstance => "a MIG instance's share is not known",
            MissingInput::UnknownPcieGeneration => "PCIe generation not in gpuprobe's table",
        })
    }
}
