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
//!
//! Each part of the tree has a file of its own below; every type is
//! re-exported here, so each is named `crate::report::X`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod bandwidth;
mod bench;
mod burn;
mod checks;
mod compute_capability;
mod counters;
mod device;
mod diagnosis;
mod driver;
mod environment;
mod events;
mod fabric;
mod matmul;
mod memtest;
mod nvlink;
mod nvml;
mod peak;
mod peer;
mod required;
mod throttle;
mod watch;

pub use bandwidth::{Bandwidth, LinkReading, PcieLink, Transfer};
pub use bench::{
    BenchCpu, BenchKernel, BenchReport, BenchRow, BenchStatus, CublasInfo, CublasSource,
    CublasStatus,
};
pub use burn::{Burn, BurnEnd, BurnError, BurnErrorCount, BurnErrorKind, BurnInterval};
pub use checks::{Check, CheckStatus, DriverError, NotRun};
pub use compute_capability::{BadComputeCapability, ComputeCapability};
pub use counters::{CounterChange, RunCounters};
pub use device::{DeviceReport, DeviceStatus, NotVerified};
pub use diagnosis::{Action, Diagnosis, Severity};
pub use driver::{DriverInfo, DriverLoadFailure};
pub use environment::{
    DeviceNode, Environment, EnvironmentTrap, Iommu, IommuGpu, LibraryOrigin, NodeError, Sandbox,
    TrapVariable, Variable, WindowsEnvironment,
};
pub use events::{EventGpu, EventKind, Events, EventsStatus, GpuEvent};
pub use fabric::{FabricState, GpuFabric, RecoveryAction};
pub use matmul::{
    CpuLimit, CpuReport, Matmul, Mismatch, MismatchKind, SampleCheck, TensorMatmul,
    TensorPrecision, Verification,
};
pub use memtest::{Memtest, MemtestMismatch, MemtestPattern, MemtestPatternKind};
pub use nvlink::{
    NvLink, NvLinkCounter, NvLinkCounters, NvLinkLink, NvLinkRemote, NvLinkRemoteKind, NvLinkState,
};
pub use nvml::{
    ComputeMode, LinkState, NeverAReason, NvmlInfo, NvmlStatus, Reading, Telemetry, Unavailable,
};
pub use peak::{ClockSource, Figure, MissingInput, Peak};
pub use peer::{PeerAccess, PeerMismatch, PeerPair, PeerWrite, Peers};
pub use required::{CheckName, RequiredCheck};
pub use throttle::ThrottleReason;
pub use watch::WatchStreak;

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
    // The wire's copy: written by judge::conclude alone, from the verdict;
    // gpuprobe itself reads `verdict.exit_code()`, never this field.
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
    /// The GPU events NVML delivered while this run (or `watch` cycle)
    /// watched: critical Xids and ECC errors; null for commands that do not
    /// watch (`list`, `health`) and in reports of older versions. Added
    /// within schema version 1.
    #[serde(default)]
    pub events: Option<Events>,
    /// `--require-checks`: each named check on each GPU probed (or for
    /// the machine), whether it ran and why not; empty when no check was
    /// named, and in reports of older versions. Added within schema
    /// version 1.
    #[serde(default)]
    pub required_checks: Vec<RequiredCheck>,
    /// The peer-to-peer check across the selected GPUs (docs/report.md,
    /// "Peers"); null where it did not run (one GPU, a command without it,
    /// the deadline; each GPU's `peer` check says why) and in reports of
    /// older versions. Added within schema version 1.
    #[serde(default)]
    pub peers: Option<Peers>,
    /// `watch` only: this cycle's place in the run of failed cycles, which
    /// decides whether the watch calls the node unhealthy
    /// (`--unhealthy-after`); null for other commands and in reports of
    /// older versions. Added within schema version 1.
    #[serde(default)]
    pub watch: Option<WatchStreak>,
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
    /// A small verified matmul, then the memory test for a set duration.
    Memtest,
}

impl ReportCommand {
    /// The command as typed ("health"); the probe's is `gpuprobe` itself.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReportCommand::Probe => "gpuprobe",
            ReportCommand::List => "list",
            ReportCommand::Health => "health",
            ReportCommand::Burn => "burn",
            ReportCommand::Bench => "bench",
            ReportCommand::Memtest => "memtest",
        }
    }
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
