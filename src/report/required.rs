//! `--require-checks`: the checks a run must have run (`CheckName`, the
//! closed set a user may name) and what the judge found of each
//! (`RequiredCheck`, in `Report::required_checks`).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CheckStatus, NotRun};
use crate::stage::Stage;

/// A check `--require-checks` may name: the report's check name (and
/// `events`, NVML's event watch, `Report::events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckName {
    /// Machine-wide: libnvidia-ml loaded and initialised.
    Nvml,
    /// Machine-wide: the timed CPU product the GPUs are checked against.
    CpuReference,
    /// Machine-wide: the CPU baseline of `speedup_vs_cpu`.
    CpuBaseline,
    /// Per GPU: a context of this process.
    Context,
    /// Per GPU: the timed FP32 matmul.
    Matmul,
    /// Per GPU: the matmul's product checked against the CPU's.
    Verify,
    /// Per GPU: the tensor-core matmuls.
    TensorCores,
    /// Per GPU: device memory and host-link bandwidth.
    Bandwidth,
    /// Per GPU: the memory test.
    Memtest,
    /// Per GPU: `burn`'s sustained load.
    Burn,
    /// Per GPU: `bench`'s kernels at every size.
    Bench,
    /// Machine-wide: `bench`'s CPU product at every size.
    BenchCpu,
    /// Machine-wide: `bench`'s cuBLAS found and loaded.
    Cublas,
    /// Per GPU: NVML's readings of the GPU.
    Telemetry,
    /// Machine-wide: NVML's events (critical Xids, ECC errors) watched.
    Events,
    /// Per GPU: the peer-to-peer writes with the other GPUs (where two or
    /// more are selected).
    Peer,
}

impl CheckName {
    /// Every name, in the order of `--help`.
    pub const ALL: [CheckName; 16] = [
        CheckName::Nvml,
        CheckName::CpuReference,
        CheckName::CpuBaseline,
        CheckName::Context,
        CheckName::Matmul,
        CheckName::Verify,
        CheckName::TensorCores,
        CheckName::Bandwidth,
        CheckName::Memtest,
        CheckName::Burn,
        CheckName::Bench,
        CheckName::BenchCpu,
        CheckName::Cublas,
        CheckName::Telemetry,
        CheckName::Events,
        CheckName::Peer,
    ];

    /// The stage whose checks this name judges; `None` for `events`,
    /// which is no stage.
    #[must_use]
    pub const fn stage(self) -> Option<Stage> {
        Some(match self {
            CheckName::Nvml => Stage::Nvml,
            CheckName::CpuReference => Stage::CpuReference,
            CheckName::CpuBaseline => Stage::CpuBaseline,
            CheckName::Context => Stage::Context,
            CheckName::Matmul => Stage::Matmul,
            CheckName::Verify => Stage::Verify,
            CheckName::TensorCores => Stage::TensorCores,
            CheckName::Bandwidth => Stage::Bandwidth,
            CheckName::Memtest => Stage::Memtest,
            CheckName::Burn => Stage::Burn,
            CheckName::Bench => Stage::Bench,
            CheckName::BenchCpu => Stage::BenchCpu,
            CheckName::Cublas => Stage::Cublas,
            CheckName::Telemetry => Stage::Telemetry,
            CheckName::Peer => Stage::Peer,
            CheckName::Events => return None,
        })
    }

    /// Whether the check runs once per GPU (else once for the machine).
    #[must_use]
    pub const fn per_gpu(self) -> bool {
        matches!(
            self,
            CheckName::Context
                | CheckName::Matmul
                | CheckName::Verify
                | CheckName::TensorCores
                | CheckName::Bandwidth
                | CheckName::Memtest
                | CheckName::Burn
                | CheckName::Bench
                | CheckName::Telemetry
                | CheckName::Peer
        )
    }

    /// The name as typed and as the report writes it ("tensor_cores").
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self.stage() {
            Some(stage) => stage.as_str(),
            None => "events",
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `--require-checks` found of one named check, on one GPU or for
/// the machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequiredCheck {
    /// The check named.
    pub check: CheckName,
    /// The GPU's CUDA ordinal, for a per-GPU check; null for a
    /// machine-wide one, and for a per-GPU one no GPU was probed for.
    pub index: Option<u32>,
    /// The GPU's UUID, when known.
    pub uuid: Option<String>,
    /// Whether it ran (passed, warned or failed on its own work). A
    /// check that did not run fails the run.
    pub ran: bool,
    /// Its check's status; null where there is no record of it.
    pub status: Option<CheckStatus>,
    /// Why it did not run; null when it ran.
    pub not_run: Option<NotRun>,
}
