//! A GPU's sustained run under `gpuprobe burn` (`DeviceReport::burn`): the
//! intervals measured, the errors seen and NVML's extremes. The run's
//! options are `Settings::burn`.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ThrottleReason;

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
    /// The burn had not returned when the run ended: a driver call of its
    /// hung (the watchdog's timeout, exit 4) or the run was stopped before
    /// it could finish. What it holds is what it had measured by the end of
    /// its last whole interval. Added within schema version 1.
    Unfinished,
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
    pub throttle_reasons: Option<Vec<ThrottleReason>>,
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
    /// The interval it was seen in, counting from 0 in the order the
    /// intervals ran (its start is `at_ms`); the interval a driver error
    /// ended is not among `intervals`, which hold the measured ones. Null
    /// for what was seen after the last interval (the final comparison,
    /// NVML's reading after the run).
    #[serde(default)]
    pub interval: Option<u64>,
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
    /// The driver failed the burn's work with CUDA_ERROR_ECC_UNCORRECTABLE
    /// (214): an uncorrectable ECC error hit this context's work. It is
    /// sticky for the context, so the burn stops on this GPU (`ended`:
    /// `error`); with error containment the GPU goes on serving other
    /// contexts. The diagnoses judge it from NVML's memory-error signals
    /// read after it (GP036 contained, a remap pending; GP015 or GP033
    /// otherwise).
    EccUncorrectable,
}
