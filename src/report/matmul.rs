//! The matmuls and how their results were checked: the FP32 matmul on each
//! GPU, the tensor-core matmuls, the verification passes (src/verify.rs),
//! and the CPU reference GEMM they are timed against and checked with.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Figure, ThrottleReason};

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
    pub throttle_reasons_under_load: Option<Vec<ThrottleReason>>,
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
