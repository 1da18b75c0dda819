//! How a probe ended, as the orchestrator saw it: the one fact the judge
//! needs beside the report to conclude a run. The probe never writes a
//! verdict or a summary; it records what happened, and `crate::judge`
//! decides what that means.
use std::time::Duration;

use crate::checks::progress::Hung;

/// How a probe ended.
#[derive(Debug, Clone)]
pub enum Ending {
    /// The probe ran to its end; its checks say how each part went.
    Finished {
        /// Whether the devices' workloads ran (not `list`, `--no-context`,
        /// `bench`, nor a matmul that did not fit in host memory): the
        /// requirements judge only a run that measured.
        measured: bool,
    },
    /// No GPU could be used: the driver could not be loaded or initialised,
    /// or it sees none.
    NoGpu(NoGpu),
    /// The deadline passed with stages still running.
    TimedOut(TimedOut),
    /// gpuprobe itself failed.
    Internal(Internal),
}

/// Why no GPU could be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoGpu {
    /// No libcuda in the search path.
    DriverNotFound,
    /// A libcuda was found but could not be loaded; the loader's error.
    DriverBroken(String),
    /// The libcuda found lacks entry points gpuprobe needs.
    DriverTooOld { path: String, missing: Vec<String> },
    /// cuInit failed; the stage's detail.
    InitRefused(String),
    /// cuDeviceGetCount failed.
    CountFailed,
    /// The driver counts no device.
    NoDevice,
}

/// The deadline passed (or a stop's grace ran out) with stages running.
#[derive(Debug, Clone)]
pub struct TimedOut {
    /// The time the probe was given.
    pub limit: Duration,
    /// Each stage still running at the deadline, device statuses not yet
    /// marked: the judge marks them.
    pub hung: Vec<Hung>,
    /// Whether any driver call returned after the oldest stuck one began:
    /// the driver still answered, so what hangs is a GPU, not the driver.
    pub answered_since: bool,
    /// A stop (SIGINT, SIGTERM) came first, and what was running did not
    /// end in the grace it was given.
    pub stopped: bool,
    /// An earlier probe of this session is still stuck, so this one did
    /// not touch the driver: the report is that probe's, as of now.
    pub still_wedged: bool,
}

/// What failed inside gpuprobe itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Internal {
    /// The probe's worker thread could not be started.
    ThreadStart(String),
    /// The probe panicked.
    Panic,
    /// The probe was given up without a report: a stop with no grace
    /// (`watch`), where the caller prints nothing of it.
    Abandoned,
}
