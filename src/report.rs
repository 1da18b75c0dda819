//! The report: one tree of plain serde types that every output format is
//! rendered from.
//!
//! This is a published contract (docs/report.md, docs/report.schema.json).
//! Within a `schema_version` fields are only ever added, never renamed,
//! retyped or removed. Values that are unknown are `null`, never zero.
//!
//! Readers are forward compatible (docs/report.md, "Compatibility policy"):
//! no type here denies unknown fields, so a report from a newer gpuprobe of
//! the same `schema_version` reads back with its new fields ignored, and
//! `Report::from_json` refuses only another `schema_version`.
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

mod bench;
pub use bench::{
    BenchCpu, BenchKernel, BenchReport, BenchRow, BenchStatus, CublasInfo, CublasSource,
    CublasStatus,
};

/// Major version of the JSON report. Bumped only for an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// The outcome of one gpuprobe run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Major version of this format; fields are only added within a version.
    pub schema_version: u32,
    /// The gpuprobe release that wrote the report.
    pub gpuprobe_version: String,
    /// What ran: `probe` (the full check), `list` (enumeration only),
    /// `health` (the liveness check) or `bench` (the GEMM sweep).
    pub command: ReportCommand,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall time of the whole run in milliseconds.
    pub duration_ms: f64,
    /// The overall result; see `Verdict`.
    pub verdict: Verdict,
    /// The process exit code that goes with `verdict`.
    pub exit_code: i32,
    /// One sentence saying what the verdict rests on.
    pub summary: String,
    /// The options the run used.
    pub settings: Settings,
    /// Stages that concern the whole machine (driver library, cuInit,
    /// enumeration), in the order they ran.
    pub checks: Vec<Check>,
    /// The CUDA driver as gpuprobe found it.
    pub driver: DriverInfo,
    /// Every GPU visible to this process, in CUDA ordinal order.
    pub devices: Vec<DeviceReport>,
    /// The CPU reference GEMM, when one ran.
    pub cpu: Option<CpuReport>,
    /// NVML (libnvidia-ml) as gpuprobe found it.
    pub nvml: NvmlInfo,
    /// What the container looks like from inside: device nodes, variables,
    /// the kernel module, where the driver libraries came from.
    pub environment: Environment,
    /// Misconfigurations found, with their fixes, most severe first.
    pub diagnoses: Vec<Diagnosis>,
    /// `bench`: the sizes, the CPU GEMM at each and cuBLAS as found; null
    /// for other commands and in reports of older versions.
    #[serde(default)]
    pub bench: Option<BenchReport>,
}

/// Why bytes could not be read as a report of this `SCHEMA_VERSION`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON, or not shaped like a report.
    #[error("is not a gpuprobe report: {0}")]
    Invalid(#[source] serde_json::Error),
    /// A report of another major version, which this gpuprobe cannot read.
    #[error("has schema_version {found}; this gpuprobe reads schema_version {SCHEMA_VERSION}")]
    Version { found: u64 },
}

impl Report {
    /// Reads a report written by any gpuprobe of this `SCHEMA_VERSION`,
    /// ignoring fields added after this release. The version is checked
    /// first, so a report of another major version is named as such rather
    /// than failing on whichever field changed.
    pub fn from_json(bytes: &[u8]) -> Result<Report, ReadError> {
        #[derive(Deserialize)]
        struct Versioned {
            schema_version: u64,
        }
        let found = serde_json::from_slice::<Versioned>(bytes)
            .map_err(ReadError::Invalid)?
            .schema_version;
        if found != u64::from(SCHEMA_VERSION) {
            return Err(ReadError::Version { found });
        }
        serde_json::from_slice(bytes).map_err(ReadError::Invalid)
    }
}

/// The overall result of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every requested GPU passed every check. Exit code 0.
    Healthy,
    /// The GPUs work, with warnings worth reading. Exit code 0.
    Degraded,
    /// A GPU is there but a check failed. Exit code 1.
    Failed,
    /// No usable GPU: no driver, no device, or initialisation refused. Exit code 3.
    NoGpu,
    /// The deadline passed before the probe finished. Exit code 4.
    Timeout,
}

impl Verdict {
    /// The process exit code for this verdict (see `exit_code`).
    #[must_use]
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Healthy | Verdict::Degraded => crate::exit_code::HEALTHY,
            Verdict::Failed => crate::exit_code::FAILED,
            Verdict::NoGpu => crate::exit_code::NO_GPU,
            Verdict::Timeout => crate::exit_code::TIMEOUT,
        }
    }

    /// Lower-case name as it appears in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Failed => "failed",
            Verdict::NoGpu => "no_gpu",
            Verdict::Timeout => "timeout",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportCommand {
    /// The full probe: enumerate, then the matmul and checks on each device.
    Probe,
    /// Enumeration only: no context, no kernel.
    List,
    /// The liveness check: a tiny verified launch per device.
    Health,
    /// The probe, then the matmul back to back on every GPU for a set
    /// duration, verified at intervals, with NVML sampled throughout.
    Burn,
    /// The GEMM sweep: every kernel at every size, each result verified.
    Bench,
}

/// The options a run used, so a report can be reproduced.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Settings {
    /// Matrix size N of the N x N x N matmul (`bench`: the largest size
    /// swept; `bench.sizes` has them all).
    pub size: u32,
    /// Fixed number of timed iterations, when `--iterations` was given.
    pub iterations: Option<u32>,
    /// Minimum timed duration per measurement in milliseconds, when
    /// iterations were not fixed.
    pub min_time_ms: Option<f64>,
    /// The devices asked for: `all`, or the `--devices` list as given.
    pub devices: String,
    /// Seed of the input generator; `--seed` with this value repeats the inputs.
    pub seed: u64,
    /// Deadline for the whole run in milliseconds.
    pub timeout_ms: f64,
    /// `health --no-context`: no CUDA context was created; the GPUs were
    /// judged by their device nodes, NVML and the diagnoses only.
    #[serde(default)]
    pub no_context: bool,
    /// `burn`: how long and how it sampled and verified.
    #[serde(default)]
    pub burn: Option<BurnSettings>,
    /// `--bandwidth-size`: the bandwidth check's buffer size in bytes asked
    /// for (0: the check turned off); null where the command runs no
    /// bandwidth check (`health`, `list`, `bench`).
    #[serde(default)]
    pub bandwidth_bytes: Option<u64>,
}

/// The options of a `burn` run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BurnSettings {
    /// `--duration`, ms.
    pub duration_ms: f64,
    /// `--sample-every`: one throughput measurement and NVML reading per
    /// interval of this length, ms.
    pub sample_ms: f64,
    /// `--verify-every`: the product is copied back and compared bit for
    /// bit at this interval (and at the end), ms.
    pub verify_ms: f64,
}

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
    pub compute_capability: Option<String>,
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
}

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
    /// `under_load` (read while the host copies ran) or `max` (the
    /// maximum of the GPU and its slot, when no reading under load was had).
    pub reading: LinkReading,
}

/// Which NVML reading of the PCIe link was used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkReading {
    /// nvmlDeviceGetCurrPcieLinkGeneration/Width while copies ran.
    UnderLoad,
    /// nvmlDeviceGetMaxPcieLinkGeneration/Width.
    Max,
}

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

/// Input precision of a tensor-core matmul (f32 accumulation in both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TensorPrecision {
    /// TF32 inputs, mma.sync m16n8k8.
    Tf32,
    /// BF16 inputs, mma.sync m16n8k16.
    Bf16,
}

impl std::fmt::Display for TensorPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TensorPrecision::Tf32 => "TF32",
            TensorPrecision::Bf16 => "BF16",
        })
    }
}

/// A tensor-core matmul: speed, and whether its result was right.
///
/// Its inputs are the exact pass's kind (src/verify.rs) with every value
/// representable in BF16, hence in TF32: every product and partial sum is
/// exact, so C must equal the CPU's f32 product bit for bit. There is no
/// rounding pass (`verification.f64_sample.elements` is 0): a tensor core's
/// accumulation need not round as f32 arithmetic does.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TensorMatmul {
    /// Input precision.
    pub precision: TensorPrecision,
    /// Kernel entry point that ran.
    pub kernel: String,
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Timed launches (after one warm-up launch).
    pub iterations: u32,
    /// Mean GPU time per launch in milliseconds (CUDA events).
    pub gpu_time_ms: f64,
    /// Throughput, 2·m·n·k / time, in TFLOP/s.
    pub gpu_tflops: f64,
    /// The exact check against the CPU product.
    pub verification: Verification,
}

impl DeviceReport {
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

/// The GPU matmul: speed, and whether its result was right.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Matmul {
    /// Kernel entry point that ran.
    pub kernel: String,
    /// Rows of A and C.
    pub m: u32,
    /// Columns of B and C.
    pub n: u32,
    /// Columns of A, rows of B.
    pub k: u32,
    /// Timed products (after two untimed launches: the first, which pays
    /// one-off costs such as lazy module loading, and one that sizes the
    /// rest). Fewer than `iterations_requested` when no more fit before the
    /// deadline.
    pub iterations: u32,
    /// Products asked for: `--iterations`, or as many as `--min-time`
    /// needs at the measured pace. Null in reports of older versions.
    #[serde(default)]
    pub iterations_requested: Option<u32>,
    /// The first launch, outside every timed iteration, in milliseconds:
    /// with lazy module loading (the default from CUDA 12.2) it includes
    /// loading the kernel into the GPU. Null in reports of older versions.
    #[serde(default)]
    pub first_launch_ms: Option<f64>,
    /// Launches per product: 1, or more where the GPU has a kernel run-time
    /// limit (CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT, a Windows display
    /// GPU) and the product is split by rows of C so that each launch stays
    /// far under it. Null in reports of older versions.
    #[serde(default)]
    pub launches_per_product: Option<u32>,
    /// Mean GPU time per product in milliseconds (CUDA events).
    pub gpu_time_ms: f64,
    /// GPU throughput, 2·m·n·k / time, in GFLOP/s.
    pub gpu_gflops: f64,
    /// GPU throughput over the CPU reference's, when both are known.
    pub speedup_vs_cpu: Option<f64>,
    /// What the GPU could do at most: its FP32 peak at the maximum clock
    /// (`peak.fp32_gflops`), in GFLOP/s. Null in reports of older versions.
    #[serde(default)]
    pub expected_gflops: Option<Figure>,
    /// `gpu_gflops` over `expected_gflops`, 0 to 1: the fraction of the
    /// GPU's peak gpuprobe's kernel reached. Null in reports of older
    /// versions.
    #[serde(default)]
    pub efficiency: Option<Figure>,
    /// The result check.
    pub verification: Verification,
    /// Thread blocks of one product: with the GPU's SMs, whether the
    /// product filled it (a product of fewer blocks than two per SM is
    /// launch-bound, and its efficiency is reported, not judged). Null in
    /// reports of older versions.
    #[serde(default)]
    pub blocks: Option<u64>,
    /// NVML's SM clock while the timed products ran, in MHz; null when
    /// NVML could not say or the products ended before the reading.
    #[serde(default)]
    pub sm_clock_mhz_under_load: Option<u32>,
    /// NVML's throttle reasons at that moment (names as in `telemetry`).
    #[serde(default)]
    pub throttle_reasons_under_load: Option<Vec<String>>,
    /// NVML's power draw at that moment, in watts.
    #[serde(default)]
    pub power_draw_watts_under_load: Option<f64>,
}

/// How the GPU's product was checked (src/verify.rs).
///
/// The exact pass: inputs are small integers times a power of two, sized
/// from K so that every partial sum is exact in f32; every element must equal
/// the CPU GEMM's bit for bit (`exact`). The rounding pass: non-integer
/// inputs, a random sample compared with an f64 reference within
/// γ̃(K)·Σ|a||b|, γ̃(K) ≈ 8·√K·u and u = 2⁻²⁴ (`f64_sample`). Only for
/// K ≥ 2²⁴ (beyond the command line) does the first pass use the rigorous
/// bound 2·γ(K)·Σ|a|·max|b| with γ(K) = K·u/(1-K·u) instead.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    /// True when no element was outside its tolerance.
    pub passed: bool,
    /// Elements compared with the CPU result (all of them).
    pub elements: u64,
    /// Distinct elements of C found wrong, by either comparison: an
    /// element wrong in both is counted once, so this never exceeds
    /// `elements`. Each pass's own count: `full_pass_mismatches` and
    /// `f64_sample.mismatches`.
    pub mismatches: u64,
    /// Elements wrong in the pass over every element (the exact pass, or
    /// the tolerance pass when K is too large for exact sums); null in
    /// reports of older versions.
    #[serde(default)]
    pub full_pass_mismatches: Option<u64>,
    /// Largest |gpu - cpu| over all elements.
    pub max_abs_error: f64,
    /// The tolerance of the element where `max_abs_error` was found.
    pub tolerance: f64,
    /// The worst element relative to its tolerance (1.0 = at the limit).
    pub max_error_ratio: f64,
    /// The first element found outside its tolerance.
    pub first_mismatch: Option<Mismatch>,
    /// The rounding pass: its sample compared with the f64 reference.
    pub f64_sample: SampleCheck,
    /// The first pass was bit for bit: its inputs kept every partial sum
    /// exact, so any element that differs at all is wrong (`tolerance` 0).
    #[serde(default)]
    pub exact: bool,
    /// The exact pass's inputs were integers in [-integer_max, integer_max]
    /// times a power of two; null when K was too large for exact sums.
    #[serde(default)]
    pub integer_max: Option<u32>,
    /// The wrong elements, in the order found: the exact pass's, then the
    /// rounding pass's; at most 16 are listed (`mismatches` counts all).
    #[serde(default)]
    pub faults: Vec<Mismatch>,
}

/// One wrong element.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Mismatch {
    /// Row of C.
    pub row: u32,
    /// Column of C.
    pub col: u32,
    /// What the GPU returned.
    pub gpu: f64,
    /// What it should be within `tolerance`.
    pub expected: f64,
    /// The allowed difference at this element (0 in the exact pass).
    pub tolerance: f64,
    /// Index of the element in C, row-major (row · n + col).
    #[serde(default)]
    pub index: Option<u64>,
    /// The f32 bit patterns of `gpu` and `expected` XORed: the bits that
    /// differ (1 = the lowest mantissa bit). Null in the rounding pass,
    /// whose reference is f64.
    #[serde(default)]
    pub differing_bits: Option<u32>,
    /// Which comparison found it.
    #[serde(default)]
    pub kind: Option<MismatchKind>,
}

/// The comparison that found a wrong element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MismatchKind {
    /// The exact pass: not bit for bit the exact product.
    Exact,
    /// The first pass when exact sums were impossible (K ≥ 2²⁴): outside
    /// the rigorous rounding bound.
    Tolerance,
    /// The rounding pass: outside the probabilistic bound of the f64
    /// reference.
    F64Sample,
}

/// The f64 comparison on a sample of elements.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SampleCheck {
    /// Elements sampled.
    pub elements: u32,
    /// Seed that chose them; a new one every run unless `--seed` is given.
    pub seed: u64,
    /// Largest |gpu - f64 reference| in the sample.
    pub max_abs_error: f64,
    /// The tolerance at that element, γ̃(K)·Σ|a||b| (src/verify.rs,
    /// `ROUNDING_LAMBDA`).
    pub tolerance: f64,
    /// Sampled elements outside their tolerance.
    pub mismatches: u64,
}

/// The CPU reference GEMM, the baseline the GPU's speed is compared with.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CpuReport {
    /// The GEMM implementation.
    pub library: String,
    /// Threads it ran on.
    pub threads: u32,
    /// CPUs this process may use (affinity and cgroup quota applied).
    pub available_cpus: u32,
    /// What set `available_cpus`; null in reports of older versions.
    #[serde(default)]
    pub threads_limited_by: Option<CpuLimit>,
    /// Timed runs (after one run that also produced the reference).
    pub iterations: u32,
    /// Mean time per run in milliseconds.
    pub time_ms: f64,
    /// Throughput in GFLOP/s.
    pub gflops: f64,
}

/// What bounds the CPUs the baseline runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CpuLimit {
    /// The process's affinity mask (sched_getaffinity; `taskset`,
    /// `docker run --cpuset-cpus`).
    Affinity,
    /// The cgroup v2 CPU quota, `cpu.max` (`docker run --cpus`, a
    /// Kubernetes CPU limit).
    CgroupCpuMax,
    /// The cgroup v1 CPU quota, `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
    CgroupCfsQuota,
    /// Neither could be read (not Linux): the standard library's
    /// `available_parallelism`.
    Platform,
}

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
impl NeverAReason for Vec<String> {}
impl NeverAReason for ComputeMode {}

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

/// Where a driver library file came from, as /proc/self/mountinfo tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LibraryOrigin {
    /// Bind-mounted into the container by the GPU runtime.
    Injected,
    /// A file of the image itself.
    Image,
    /// Not in a container.
    Host,
    /// No /proc/self/mountinfo to tell.
    Unknown,
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
    /// (while the matmul's launches were still running on the GPU) or
    /// `idle` (no work of gpuprobe's on the GPU: `list`, or the launches
    /// finished before the reading). An idle link trains down to save power,
    /// so only an `under_load` generation says anything about the link.
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
    pub throttle_reasons: Reading<Vec<String>>,
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

/// The container as seen from inside.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    /// NVIDIA device nodes found under /dev, and whether they open.
    pub device_nodes: Vec<DeviceNode>,
    /// WSL2: /dev/dxg or /usr/lib/wsl/lib present.
    pub wsl: bool,
    /// The kernel module's version from /proc/driver/nvidia/version.
    pub kernel_module_version: Option<String>,
    /// Why the kernel module version is unknown, when the file is there but
    /// unreadable or unrecognised.
    pub kernel_module_error: Option<String>,
    /// The variables that decide GPU access, as set (unset ones left out).
    pub variables: Vec<Variable>,
    /// LD_LIBRARY_PATH entries that hold the toolkit's stub libcuda.
    pub library_path_stubs: Vec<String>,
    /// LD_LIBRARY_PATH entries that hold CUDA forward-compatibility libraries.
    pub library_path_compat: Vec<String>,
    /// The driver version in the loaded libcuda's file name
    /// (libcuda.so.VERSION), when it has one.
    pub cuda_library_version: Option<String>,
    /// Where the loaded libcuda came from: `injected` (bind-mounted into the
    /// container by the GPU runtime), `image` (a file of the image itself),
    /// `host` (not in a container), or `unknown` (no /proc/self/mountinfo).
    pub cuda_library_origin: Option<LibraryOrigin>,
    /// The same for libnvidia-ml.
    pub nvml_library_origin: Option<LibraryOrigin>,
    /// The loaded libcuda is a CUDA forward-compatibility library (NVIDIA's
    /// cuda-compat package): it lies in a `compat` folder (such as
    /// /usr/local/cuda/compat) or an LD_LIBRARY_PATH compat entry, and its
    /// driver version is newer than the kernel module's (or one of the two
    /// is unknown). Such a library is in the image on purpose.
    #[serde(default)]
    pub cuda_forward_compat: bool,
    /// Windows only: what the GPU device class brings into a container.
    pub windows: Option<WindowsEnvironment>,
}

/// One NVIDIA device node.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceNode {
    pub path: String,
    /// Whether it opens for reading and writing, as the driver opens it.
    pub openable: bool,
    /// The error when it does not.
    pub error: Option<String>,
    /// What kind of failure `error` is, when the node does not open.
    #[serde(default)]
    pub error_kind: Option<NodeError>,
    /// The node was not there when gpuprobe started: the driver library made
    /// it during this run (libcuda, run as root, creates missing nodes
    /// itself), so the container runtime did not give it.
    #[serde(default)]
    pub created_during_run: bool,
}

/// Why a device node does not open, by the OS error (open(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeError {
    /// EPERM or EACCES: the device cgroup, SELinux or file permissions
    /// refuse it.
    PermissionDenied,
    /// ENXIO or ENODEV: the node exists but no kernel driver answers behind
    /// it (the NVIDIA kernel module is not loaded).
    NoDriver,
    /// Any other error.
    Other,
}

/// An environment variable.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

/// What a Windows container holds of the host's driver.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WindowsEnvironment {
    /// Whether this is a container (C:\Windows\System32\HostDriverStore, or
    /// the container user) at all.
    pub container: bool,
    /// C:\Windows\System32\HostDriverStore exists: started with the GPU
    /// device class.
    pub host_driver_store: bool,
    /// Where nvcuda.dll was found, if anywhere.
    pub nvcuda_dll: Option<String>,
    /// Where nvml.dll was found, if anywhere.
    pub nvml_dll: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
                round_trip::<Vec<String>>(&Reading::Unavailable(reason)),
                Reading::Unavailable(reason)
            );
        }
        for mode in ComputeMode::ALL {
            assert_eq!(round_trip(&Reading::Value(mode)), Reading::Value(mode));
        }
        let reasons = vec!["not_supported".to_string()];
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

/// A GPU's sustained run (`gpuprobe burn`): the probe's matmul launched back
/// to back for the duration, each interval timed with events and NVML read
/// while the launches ran, and the product copied back and compared bit for
/// bit with the one the `verify` check proved right.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Burn {
    /// The SGEMM kernel, as in `matmul.kernel`.
    pub kernel: String,
    /// The product's shape (C is m x n, the inner dimension k).
    pub m: u32,
    pub n: u32,
    pub k: u32,
    /// How long the burn ran, ms.
    pub duration_ms: f64,
    /// How it ended.
    pub ended: BurnEnd,
    /// Products computed in all.
    pub products: u64,
    /// Mean throughput over the whole run, GFLOP/s.
    pub gflops_mean: f64,
    /// The best interval's throughput after the first, GFLOP/s.
    pub gflops_best: f64,
    /// The median interval's throughput, GFLOP/s; null with no interval.
    pub gflops_median: Option<f64>,
    /// The interval with the lowest throughput after the first (whose
    /// clocks may still be ramping up; the first itself when it is the
    /// only one), when any interval was measured.
    pub worst_interval: Option<BurnInterval>,
    /// The worst interval's throughput over the best's, both after the
    /// first interval (1.0: steady).
    pub worst_over_best: Option<f64>,
    /// Every interval, in order.
    pub intervals: Vec<BurnInterval>,
    /// Products compared bit for bit with the verified one: every product
    /// when `compared_on_gpu`, plus those copied back.
    pub verifications: u64,
    /// Every product was compared with the verified one on the GPU
    /// (kernels/compare.cu); false when the GPU had no room for a copy of
    /// the product, and then only the products copied back at
    /// `--verify-every` were (the check's detail says why).
    pub compared_on_gpu: bool,
    /// What went wrong, with when: up to 25 of each kind, the first of
    /// each kind always among them.
    pub errors: Vec<BurnError>,
    /// Errors seen beyond those listed.
    pub errors_not_listed: u64,
    /// Every error of each kind seen, listed or not (a kind absent: none).
    #[serde(default)]
    pub error_counts: Vec<BurnErrorCount>,
    /// NVML's volatile ECC counters' growth during the burn, when read
    /// before and after.
    pub ecc_corrected_delta: Option<u64>,
    pub ecc_uncorrected_delta: Option<u64>,
    /// The highest temperature and power and the lowest SM clock NVML
    /// reported during the burn.
    pub temperature_max_celsius: Option<u32>,
    pub power_max_watts: Option<f64>,
    pub sm_clock_min_mhz: Option<u32>,
    /// The SM clock's maximum (NVML), for the clocks above.
    pub sm_clock_max_mhz: Option<u32>,
}

/// Why a burn stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BurnEnd {
    /// It ran for the whole `--duration`.
    Completed,
    /// SIGINT or SIGTERM (Ctrl-C, `docker stop`) ended it early.
    Interrupted,
    /// The run's deadline (`--timeout`) came before the duration ended.
    Deadline,
    /// A driver error ended it: the GPU could not go on.
    Error,
}

/// One measured interval of a burn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BurnInterval {
    /// When the interval started, ms after the burn started.
    pub at_ms: f64,
    /// The GPU's time for the interval's products (events), ms.
    pub gpu_ms: f64,
    /// Products in the interval.
    pub products: u32,
    /// Throughput over the interval, GFLOP/s.
    pub gflops: f64,
    /// NVML, read while the interval's launches ran.
    pub sm_clock_mhz: Option<u32>,
    pub temperature_celsius: Option<u32>,
    pub power_draw_watts: Option<f64>,
    /// nvmlClocksThrottleReasons names, as in `telemetry.throttle_reasons`
    /// (empty: none); null when NVML could not say.
    pub throttle_reasons: Option<Vec<String>>,
    /// Whether the interval's products matched the verified one bit for
    /// bit: `true` when every comparison of the interval did (each product
    /// on the GPU, and the last one copied back when it was), `false` when
    /// one did not; null when none was compared.
    pub verified: Option<bool>,
}

/// Something that went wrong during a burn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BurnError {
    /// When it was seen, ms after the burn started.
    pub at_ms: f64,
    pub kind: BurnErrorKind,
    /// What was seen, in words.
    pub detail: String,
}

/// How many errors of one kind a burn saw in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BurnErrorCount {
    pub kind: BurnErrorKind,
    pub count: u64,
}

/// The kinds of `BurnError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BurnErrorKind {
    /// A product differed from the verified one: a wrong result under load.
    WrongResult,
    /// A driver call failed (the burn then stops on this GPU).
    Driver,
    /// NVML's volatile uncorrectable ECC count grew.
    EccUncorrected,
    /// NVML's volatile correctable ECC count grew (a warning: the GPU
    /// corrected them).
    EccCorrected,
}
