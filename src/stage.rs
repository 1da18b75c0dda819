//! The names of the probe's stages: the vocabulary the probe runs by, the
//! requirements and the diagnoses read by, and the report carries as each
//! check's `name`.
//!
//! In the report a check's name stays a string: a newer gpuprobe may add a
//! stage, and an older reader must still read its report (docs/report.md,
//! "Compatibility policy"). Inside gpuprobe every stage is a `Stage`, and
//! no module compares check names as text.
use std::fmt;

/// One stage of the probe. `as_str` is the check name in the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    // Machine-wide, in the order they run.
    /// Load libnvidia-ml and nvmlInit.
    Nvml,
    /// Find and load libcuda, resolve its entry points.
    LoadDriver,
    /// cuDriverGetVersion.
    DriverVersion,
    /// cuInit.
    CuInit,
    /// cuDeviceGetCount.
    Enumerate,
    /// --devices against what was enumerated.
    SelectDevices,
    /// The matmul's host buffers against the memory this process may take.
    HostMemory,
    /// The CPU GEMM product that the GPUs' results are checked against.
    CpuReference,
    /// The CPU GEMM timed on its own, after the GPUs' stages: the baseline
    /// of `speedup_vs_cpu`.
    CpuBaseline,
    /// --require-driver.
    RequireDriver,
    /// --require-gpus.
    RequireGpus,
    /// `bench`: libcublas looked for and loaded (skipped when absent).
    Cublas,
    /// `bench`: one size's CPU GEMM, the reference and the baseline of
    /// that size (one check per size).
    BenchCpu,

    // Per GPU, in the order they run.
    /// Name, UUID, PCI bus id, memory, compute capability.
    Identify,
    /// The primary context, made current on the GPU's thread.
    Context,
    /// Free and total memory in the context.
    Memory,
    /// The embedded PTX loaded (JIT-compiled) and the kernel found.
    Module,
    /// Device buffers for A, B and C.
    Allocate,
    /// A and B copied to the GPU.
    Upload,
    /// The timed kernel launches.
    Matmul,
    /// C copied back.
    Download,
    /// C checked against the CPU reference.
    Verify,
    /// The tensor-core (mma.sync) matmuls, TF32 and BF16, checked exactly;
    /// skipped below compute capability 8.0.
    TensorCores,
    /// Device memory and host-link bandwidth, against what the GPU and its
    /// PCIe link allow; skipped in `health`.
    Bandwidth,
    /// The memory test: patterns written over the free memory and read
    /// back by the GPU's kernels (`memtest`, `--memtest`).
    Memtest,
    /// `burn`: the matmul back to back for the duration, each product
    /// compared with the verified one.
    Burn,
    /// Peer-to-peer with the other selected GPUs, after every GPU's own
    /// stages: this GPU's writes into each peer (a copy and a kernel's
    /// stores) and the peers' writes into it, checked word for word.
    Peer,
    /// `bench`, in place of the stages from `Allocate` on: every kernel at
    /// one size, timed and verified (one check per size).
    Bench,
    /// NVML readings of the GPU after its matmul.
    Telemetry,
    /// --require-memory.
    RequireMemory,
    /// --require-compute-capability.
    RequireComputeCapability,
    /// --require-speedup.
    RequireSpeedup,
    /// --require-efficiency.
    RequireEfficiency,
    /// --require-checks: the named checks ran.
    RequireChecks,
}

impl Stage {
    /// The check name in the report.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Nvml => "nvml",
            Stage::LoadDriver => "load_driver",
            Stage::DriverVersion => "driver_version",
            Stage::CuInit => "cu_init",
            Stage::Enumerate => "enumerate",
            Stage::SelectDevices => "select_devices",
            Stage::HostMemory => "host_memory",
            Stage::CpuReference => "cpu_reference",
            Stage::CpuBaseline => "cpu_baseline",
            Stage::RequireDriver => "require_driver",
            Stage::RequireGpus => "require_gpus",
            Stage::Cublas => "cublas",
            Stage::BenchCpu => "bench_cpu",
            Stage::Identify => "identify",
            Stage::Context => "context",
            Stage::Memory => "memory",
            Stage::Module => "module",
            Stage::Allocate => "allocate",
            Stage::Upload => "upload",
            Stage::Matmul => "matmul",
            Stage::Download => "download",
            Stage::Verify => "verify",
            Stage::TensorCores => "tensor_cores",
            Stage::Bandwidth => "bandwidth",
            Stage::Memtest => "memtest",
            Stage::Peer => "peer",
            Stage::Burn => "burn",
            Stage::Bench => "bench",
            Stage::Telemetry => "telemetry",
            Stage::RequireMemory => "require_memory",
            Stage::RequireComputeCapability => "require_compute_capability",
            Stage::RequireSpeedup => "require_speedup",
            Stage::RequireEfficiency => "require_efficiency",
            Stage::RequireChecks => "require_checks",
        }
    }

    /// Whether the report's check `name` is this stage.
    #[must_use]
    pub fn is(self, name: &str) -> bool {
        self.as_str() == name
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
