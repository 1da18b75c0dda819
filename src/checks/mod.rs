//! The checks: the workloads gpuprobe runs and the facts they record,
//! each a module of its own on one floor, below the orchestrator
//! (`crate::probe`) that runs them and the judge that concludes.
//!
//! `progress` is how every stage records itself (a `Check`, timed, under
//! the watchdog's eye); `gpu` what every check on one GPU shares (its
//! `Job`, a `Product`, the deadline fitting, the telemetry stage);
//! `context` the context check, busy or broken; `pipeline` one GPU's
//! ordered list of stages, the matmul's among them, with the checks the
//! plan adds (`tensor`, `bandwidth`, `burn`); `gpus` runs the pipelines
//! beside the CPU's side (`cpu_reference`); `bench` the GEMM sweep. A
//! new per-GPU check is a module here, a `Stage`, a field of `GpuWork`
//! when a plan may leave it out, and its entry in
//! `pipeline::PIPELINE` (docs/architecture.md, "Where each kind of change
//! goes").
pub mod bandwidth;
pub mod bench;
pub mod burn;
pub mod context;
pub mod cpu_reference;
pub mod gpu;
pub mod gpus;
pub mod memtest;
pub mod peer;
pub mod pipeline;
pub mod progress;
pub mod tensor;

/// Keeps the sample's seed apart from the inputs' seed.
pub const SAMPLE_SALT: u64 = 0x5EED_5A4D_1E5E_ED00;

/// Which checks each GPU's pipeline runs, and what the CPU does beside it.
#[derive(Debug, Clone, Copy)]
pub struct GpuWork {
    /// The tensor-core check (not in `health`, a liveness check, nor in
    /// `burn`, a sustained FP32 load).
    pub tensor_cores: bool,
    /// The bandwidth check's buffer size in bytes (`--bandwidth-size`; 0:
    /// recorded as skipped), `None` where the command has no such check.
    pub bandwidth: Option<u64>,
    /// `burn`: the sustained run after the other checks.
    pub burn: Option<burn::Plan>,
    /// The memory test after the other checks (`memtest`, `--memtest`;
    /// never in `health` nor `watch`).
    pub memtest: Option<memtest::Plan>,
    /// The peer-to-peer check across the GPUs, after their pipelines
    /// (never in `health` nor `watch`: a hung peer write cannot be
    /// cancelled).
    pub peers: Option<peer::Plan>,
    /// Whether the error counters and the NVLinks' counters are read before
    /// the work too, so the report says what the run added (not in
    /// `health`: its milliseconds add nothing, and the reads before would
    /// double its NVML calls; docs/benchmarks.md, "health").
    pub counters_before: bool,
    pub cpu: CpuWork,
}

/// What the CPU does while the GPUs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuWork {
    /// Only the product to check the readback against, untimed (`health`).
    ReferenceOnly,
    /// The timed CPU reference; `baseline`: and the CPU baseline after the
    /// GPUs are done (not in `burn`, whose subject is the GPU under load).
    Timed { baseline: bool },
}
