//! The report's parts that `gpuprobe bench` fills: the sweep's machine-wide
//! results (`Report::bench`) and each GPU's rows (`DeviceReport::bench`).
//! Added within schema version 1: absent (null, empty) in other commands'
//! reports and in reports of older versions.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Figure, Verification};

/// What `gpuprobe bench` measured beside the GPUs.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BenchReport {
    /// The matrix sizes N swept (N x N x N each), ascending, each once.
    pub sizes: Vec<u32>,
    /// The CPU GEMM at each size: the product every GPU result of that size
    /// is checked against, and the baseline of the rows' `speedup_vs_cpu`.
    pub cpu: Vec<BenchCpu>,
    /// cuBLAS as found: its SGEMM is measured beside gpuprobe's kernels
    /// when it loads, and gpuprobe needs nothing of it otherwise.
    pub cublas: CublasInfo,
}

/// The CPU GEMM at one size.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BenchCpu {
    /// Matrix size N.
    pub size: u32,
    /// `pass` (measured), or `skip`: the size was not run, and `reason`
    /// says why (host memory, the deadline).
    pub status: BenchStatus,
    /// Why the size was skipped; null when it ran.
    pub reason: Option<String>,
    /// Threads the GEMM ran on (the CPUs this process is granted).
    pub threads: u32,
    /// Timed runs: 1 when the reference product itself took at least
    /// 200 ms (it is the measurement), else as many as fill 200 ms or
    /// `--min-time` after an untimed warm-up run.
    pub iterations: u32,
    /// Mean time per run in milliseconds; null when skipped.
    pub time_ms: Option<f64>,
    /// 2·N³ / time, in GFLOP/s; null when skipped.
    pub gflops: Option<f64>,
}

/// How far gpuprobe got with cuBLAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CublasStatus {
    /// Loaded, every entry point found.
    Loaded,
    /// No libcublas on the loader's path nor in a pip wheel's folder (the
    /// usual case: gpuprobe's image need not carry the CUDA toolkit), or
    /// none at the path `--cublas` names.
    NotFound,
    /// Found, but the loader refused it (a missing dependency such as
    /// libcublasLt, the wrong architecture).
    Unloadable,
    /// Loaded, but it lacks an entry point gpuprobe calls.
    MissingSymbols,
    /// Not looked for: the run ended before a GPU was benched.
    NotChecked,
}

/// How `bench` came to a cuBLAS library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CublasSource {
    /// By its library name, on the dynamic loader's path (LD_LIBRARY_PATH,
    /// /etc/ld.so.cache, the system folders; on Windows the DLL search
    /// order), as CUDA toolkit images install it.
    LoaderPath,
    /// In a pip wheel's folder under one of Python's site-packages
    /// directories (`nvidia/cu13/lib` of CUDA 13's nvidia-cublas,
    /// `nvidia/cublas/lib` of nvidia-cublas-cu12 and -cu11), as PyTorch
    /// images keep it, loaded by its full path.
    PipWheel,
    /// The file `bench --cublas` or GPUPROBE_CUBLAS names; nothing else is
    /// tried then.
    Explicit,
}

/// cuBLAS as `bench` found it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CublasInfo {
    /// `loaded`, `not_found`, `unloadable`, `missing_symbols` or `not_checked`.
    pub status: CublasStatus,
    /// The file the loader mapped, symlinks resolved, when one was.
    pub library_path: Option<String>,
    /// The candidates tried, in order: library names asked of the loader,
    /// then the files of pip wheels' folders (full paths); with `--cublas`
    /// only its path.
    pub library_candidates: Vec<String>,
    /// How the library that loaded (or that was found and would not load)
    /// was found: `loader_path`, `pip_wheel` or `explicit`; null when none
    /// was found or cuBLAS was not looked for. Added within schema 1.
    #[serde(default)]
    pub library_source: Option<CublasSource>,
    /// Why it could not be used, in words; null when it loaded.
    pub error: Option<String>,
}

/// A GEMM that `bench` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BenchKernel {
    /// `gpuprobe_sgemm_fast`: FP32, 128 x 128 block tiles (the probe's matmul).
    Fast,
    /// `gpuprobe_sgemm_tiled`: FP32, 16 x 16 shared-memory tiles.
    Tiled,
    /// `gpuprobe_mma_tf32`: TF32 inputs on tensor cores, f32 accumulation.
    Tf32,
    /// `gpuprobe_mma_bf16`: BF16 inputs on tensor cores, f32 accumulation.
    Bf16,
    /// cuBLAS's `cublasSgemm_v2` in CUBLAS_DEFAULT_MATH: FP32, no TF32.
    Cublas,
}

impl BenchKernel {
    /// Every kernel, in the order a size runs them.
    pub const ALL: [BenchKernel; 5] = [
        BenchKernel::Fast,
        BenchKernel::Tiled,
        BenchKernel::Cublas,
        BenchKernel::Tf32,
        BenchKernel::Bf16,
    ];

    /// The word used in JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BenchKernel::Fast => "fast",
            BenchKernel::Tiled => "tiled",
            BenchKernel::Tf32 => "tf32",
            BenchKernel::Bf16 => "bf16",
            BenchKernel::Cublas => "cublas",
        }
    }
}

impl std::fmt::Display for BenchKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How one measurement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BenchStatus {
    /// Measured, and the result was right.
    Pass,
    /// The result was wrong, or the driver failed: the GPU fails.
    Fail,
    /// Not run; `reason` says why (memory, the deadline, no tensor cores,
    /// no cuBLAS, an earlier failure). No failure in itself.
    Skip,
}

/// One kernel at one size on one GPU.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BenchRow {
    /// Matrix size N of the N x N x N product.
    pub size: u32,
    /// Which GEMM.
    pub kernel: BenchKernel,
    /// `pass`, `fail` or `skip`.
    pub status: BenchStatus,
    /// Why it was skipped or failed; null when it passed.
    pub reason: Option<String>,
    /// The entry point that ran (a kernel of kernels/, or `cublasSgemm_v2`).
    pub entry: String,
    /// Timed products, after one untimed warm-up; null when not run.
    pub iterations: Option<u32>,
    /// Mean GPU time per product in milliseconds (CUDA events).
    pub gpu_time_ms: Option<f64>,
    /// 2·N³ / `gpu_time_ms`, in GFLOP/s.
    pub gpu_gflops: Option<f64>,
    /// The CPU GEMM at this size (`bench.cpu`), in GFLOP/s.
    pub cpu_gflops: Option<f64>,
    /// `gpu_gflops` over `cpu_gflops`.
    pub speedup_vs_cpu: Option<f64>,
    /// `gpu_gflops` over the GPU's FP32 peak (`peak.fp32_gflops`), or the
    /// missing input. Tensor-core rows (`tf32`, `bf16`) can pass 1: tensor
    /// cores are not bound by the FP32 lanes.
    pub efficiency: Option<Figure>,
    /// The result check (src/verify.rs): for FP32 kernels and cuBLAS the
    /// exact pass and the rounding pass, as the probe's matmul; for the
    /// tensor-core kernels the exact pass on inputs exact in BF16. Null
    /// when the product was not made.
    pub verification: Option<Verification>,
}
