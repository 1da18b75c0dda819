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
    /// Why the stage did not run, when it did not: always set on a
    /// `skip`, and on a `warn` or `fail` whose finding is that it could
    /// not run (a memory test that could allocate nothing, a matmul that
    /// did not fit the deadline); null for a stage that ran, and in
    /// reports of older versions. Added within schema version 1.
    #[serde(default)]
    pub not_run: Option<NotRun>,
}

impl Check {
    /// Whether the stage ran: it passed, warned or failed on its own
    /// work, rather than being left out, stopped before it began or cut
    /// off by the deadline.
    #[must_use]
    pub fn ran(&self) -> bool {
        self.not_run.is_none()
            && matches!(
                self.status,
                CheckStatus::Pass | CheckStatus::Warn | CheckStatus::Fail
            )
    }
}

/// Why a stage did not run: a closed set, so that a reader (and
/// `--require-checks`) can tell a check the plan left out from one a busy
/// GPU, the deadline or an earlier failure kept from running. The words
/// are in the check's `detail`. Peers skip without a word (DCGM#55) or
/// pass a test that could not allocate (DCGM#284): ../shared/FACTS.md
/// section 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotRun {
    /// The command's plan leaves it out (`health` runs no tensor-core or
    /// bandwidth check, `health --no-context` makes no context, `health`
    /// and `memtest` time no speed to require).
    NotPlanned,
    /// An option turned it off (`--bandwidth-size 0`).
    TurnedOff,
    /// The GPU admits no context of this process because another holds
    /// it: its compute mode (PROHIBITED, or EXCLUSIVE_PROCESS held by
    /// another process) or its memory held by the processes NVML lists.
    /// The device's `compute_not_verified` says which. Its compute is not
    /// verified; that fails a run only when `--require-checks` names the
    /// check.
    Busy,
    /// The GPU admits no context of this process and its memory is held
    /// by no process NVML lists (`compute_not_verified`:
    /// `memory_held_without_process`).
    MemoryHeld,
    /// A stage before it failed (on this GPU, or machine-wide).
    EarlierFailure,
    /// The GPU lacks what the check needs (tensor cores below compute
    /// capability 8.0).
    Unsupported,
    /// A library the check needs is not in this container (NVML, cuBLAS),
    /// or NVML offers it nothing here (no event API on Windows,
    /// registration refused).
    Unavailable,
    /// Too little free memory, on the GPU or the host, for its buffers.
    NoMemory,
    /// Too little time left before the deadline (or before a burn ended)
    /// for it.
    OutOfTime,
    /// The run ended before it was reached: no record of it was made.
    NotReached,
    /// gpuprobe could not start it (a thread could not be started).
    Internal,
}

impl NotRun {
    /// The reason as the report writes it ("busy").
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NotRun::NotPlanned => "not_planned",
            NotRun::TurnedOff => "turned_off",
            NotRun::Busy => "busy",
            NotRun::MemoryHeld => "memory_held",
            NotRun::EarlierFailure => "earlier_failure",
            NotRun::Unsupported => "unsupported",
            NotRun::Unavailable => "unavailable",
            NotRun::NoMemory => "no_memory",
            NotRun::OutOfTime => "out_of_time",
            NotRun::NotReached => "not_reached",
            NotRun::Internal => "internal",
        }
    }
}

impl std::fmt::Display for NotRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Not run: `not_run` says why (the plan left it out, an earlier
    /// stage failed, the GPU was busy, ...). Never a pass.
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
