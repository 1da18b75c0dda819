//! The checks: the workloads gpuprobe runs and the facts they record,
//! each a module of its own on one floor, below the orchestrator
//! (`crate::probe`) that runs them and the judge that concludes.
//!
//! `progress` is how every stage records itself (a `Check`, timed, under
//! the watchdog's eye); `gpu` what every check on one GPU shares (its
//! `Job`, a `Product`, the deadline fitting, the telemetry stage);
//! `context` the context check, busy or broken; `pipeline` one GPU's
//! ordered list of stages, the matmul's among them, with the checks the
//! plan adds (`tensor`, `bandwidth`, `burn`); `bench` the GEMM sweep. A
//! new per-GPU check is a module here, a `Stage`, a field of
//! `probe::GpuWork` when a plan may leave it out, and its entry in
//! `pipeline::PIPELINE` (docs/architecture.md, "Where each kind of change
//! goes").
pub mod bandwidth;
pub mod bench;
pub mod burn;
pub mod context;
pub mod gpu;
pub mod pipeline;
pub mod progress;
pub mod tensor;

/// Keeps the sample's seed apart from the inputs' seed.
pub const SAMPLE_SALT: u64 = 0x5EED_5A4D_1E5E_ED00;
