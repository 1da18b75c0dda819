//! The `bandwidth` check's measurements (`DeviceReport::bandwidth`): device
//! memory copies and the host link's pinned copies, each against what the
//! GPU's memory or its PCIe link allow.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Figure;

/// What the `bandwidth` check measured on one GPU (docs/report.md,
/// "Bandwidth"). A measurement that did not run is null; the check's
/// `detail` says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bandwidth {
    /// cuMemcpyDtoD_v2 from one device buffer to another. Counts the bytes
    /// read and the bytes written, 2 × `bytes` per copy, as CUDA's
    /// bandwidthTest and BabelStream's Copy do.
    pub device_copy: Option<Transfer>,
    /// gpuprobe's streaming kernel (`gpuprobe_stream_copy`, docs/kernels.md),
    /// also 2 × `bytes` per pass.
    pub stream_kernel: Option<Transfer>,
    /// Pinned host memory to the GPU (cuMemcpyHtoDAsync_v2): `bytes` per
    /// copy, judged against the PCIe link in `pcie_link`.
    pub host_to_device: Option<Transfer>,
    /// The GPU to pinned host memory (cuMemcpyDtoHAsync_v2), likewise.
    pub device_to_host: Option<Transfer>,
    /// cuMemAllocHost_v2 refused the pinned host memory, with any code (the
    /// host or the container cannot lock that much; page-locked memory
    /// limited or not offered: WSL, vGPU, confidential computing): the host
    /// copies did not run, and the check still passes with the refusal as
    /// its `error`.
    pub pinned_memory_refused: bool,
    /// The PCIe link the host copies are judged against: NVML's reading
    /// while they ran, else the link's maximum. Null when NVML gave
    /// neither (no NVML, a MIG instance, a GPU with no PCIe link).
    pub pcie_link: Option<PcieLink>,
    /// NVML's memory clock (MHz) read while the device copies ran; null
    /// without NVML, or when the copies had ended before the reading.
    pub memory_clock_mhz_under_load: Option<u32>,
}

/// One timed bandwidth measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Transfer {
    /// Bytes each copy (or kernel pass) took from its source.
    pub bytes: u64,
    /// Timed copies, back to back on the GPU (after an untimed warm-up).
    pub iterations: u32,
    /// Mean GPU time per copy in milliseconds (CUDA events).
    pub time_ms: f64,
    /// Bytes moved per second over 10⁹: 2 × `bytes` / time for the device
    /// measurements (read and write), `bytes` / time for the host copies.
    pub gbps: f64,
    /// What the GPU should reach: the theoretical memory bandwidth
    /// (`peak.memory_bandwidth_gbps`) for the device measurements, the
    /// PCIe link's per-direction bandwidth for the host copies, in GB/s.
    /// Null until derived.
    pub expected_gbps: Option<Figure>,
    /// `gbps` over `expected_gbps`, 0 to 1. Null until derived.
    pub efficiency: Option<Figure>,
}

/// A PCIe link's generation and width, and which NVML reading gave them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PcieLink {
    /// PCIe generation (1 to 6 have a known rate).
    pub generation: u32,
    /// Lanes.
    pub width: u32,
    /// `under_load` (read at work: while the host copies or the matmul
    /// ran, once gpuprobe's work had run long enough for the link to ramp
    /// up) or `max` (the maximum of the GPU and its slot, when no reading
    /// at work was had).
    pub reading: LinkReading,
}

/// Which NVML reading of the PCIe link was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkReading {
    /// nvmlDeviceGetCurrPcieLinkGeneration/Width at work: the highest
    /// generation and lowest width of the readings taken once the copies
    /// (or the matmul before them) had run 100 ms.
    UnderLoad,
    /// nvmlDeviceGetMaxPcieLinkGeneration/Width.
    Max,
}
