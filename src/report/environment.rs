//! The container as seen from inside (`Report::environment`): device nodes,
//! the variables that decide GPU access, the kernel module, where the driver
//! libraries came from, and what a Windows container holds of the host's
//! driver.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a driver library file came from, as /proc/self/mountinfo tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LibraryOrigin {
    /// Mounted into the container by the GPU runtime: the file itself
    /// bind-mounted (the NVIDIA Container Toolkit, CDI), or a folder above
    /// it other than the root (a volume of the host's driver folder, as
    /// GKE's device plugin mounts /usr/local/nvidia).
    Injected,
    /// A file of the image itself.
    Image,
    /// Not in a container.
    Host,
    /// No /proc/self/mountinfo to tell.
    Unknown,
}

/// The container as seen from inside.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct Environment {
    /// NVIDIA device nodes found under /dev, and whether they open.
    pub device_nodes: Vec<DeviceNode>,
    /// WSL2: /dev/dxg or /usr/lib/wsl/lib present.
    pub wsl: bool,
    /// The kernel module's version from /proc/driver/nvidia/version.
    pub kernel_module_version: Option<String>,
    /// Why the kernel module version is unknown, when the file is there but
    /// unreadable or unrecognised.
    pub kernel_module_error: Option<String>,
    /// The variables that decide GPU access, as set (unset ones left out).
    pub variables: Vec<Variable>,
    /// LD_LIBRARY_PATH entries that hold the toolkit's stub libcuda.
    pub library_path_stubs: Vec<String>,
    /// LD_LIBRARY_PATH entries that hold CUDA forward-compatibility libraries.
    pub library_path_compat: Vec<String>,
    /// The driver version in the loaded libcuda's file name
    /// (libcuda.so.VERSION), when it has one.
    pub cuda_library_version: Option<String>,
    /// Where the loaded libcuda came from: `injected` (bind-mounted into the
    /// container by the GPU runtime), `image` (a file of the image itself),
    /// `host` (not in a container), or `unknown` (no /proc/self/mountinfo).
    pub cuda_library_origin: Option<LibraryOrigin>,
    /// The same for libnvidia-ml.
    pub nvml_library_origin: Option<LibraryOrigin>,
    /// The loaded libcuda is a CUDA forward-compatibility library (NVIDIA's
    /// cuda-compat package): it lies in a `compat` folder (such as
    /// /usr/local/cuda/compat) or an LD_LIBRARY_PATH compat entry, and its
    /// driver version is newer than the kernel module's (or one of the two
    /// is unknown). Such a library is in the image on purpose.
    #[serde(default)]
    pub cuda_forward_compat: bool,
    /// Windows only: what the GPU device class brings into a container.
    pub windows: Option<WindowsEnvironment>,
    /// The sandbox the container runs in, when gpuprobe can tell; null when
    /// it found none (runc, a VM, or a sandbox it cannot tell). Added in
    /// schema 1.
    #[serde(default)]
    pub sandbox: Option<Sandbox>,
    /// Variables set in this container that change what CUDA does in every
    /// process started here, and slow or break jobs (DCGM's diagnostic
    /// warns of the same list), and an MPS pipe directory with no MPS
    /// control socket in it. Empty when none is set. Added in schema 1.
    #[serde(default)]
    pub traps: Vec<EnvironmentTrap>,
}

/// A variable of `Environment::traps`, as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentTrap {
    /// Which variable.
    pub variable: TrapVariable,
    /// Its value (not valid UTF-8 shown lossily; cut at 256 characters).
    pub value: String,
}

/// The variables that change CUDA's behaviour for every process of a
/// container. The first ten are those DCGM's diagnostic warns of
/// (NVIDIA/DCGM, nvvs/plugin_src/software/Software.cpp,
/// `checkForBadEnvVaribles`, DCGM_FR_BAD_CUDA_ENV); the JSON word is the
/// variable's own name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrapVariable {
    /// Loads a tracing or profiling library into every 32-bit CUDA process.
    CudaInjection32Path,
    /// Loads a tracing or profiling library into every CUDA process
    /// (Nsight Systems, CUPTI injection).
    CudaInjection64Path,
    /// Makes every CUDA process attachable by the Nsight debugger, which
    /// stays resident.
    NsightCudaDebugger,
    /// Overrides the GPU's auto boost setting (deprecated).
    CudaAutoBoost,
    /// Writes a GPU core dump (and a CPU one) on every device exception.
    CudaEnableCoredumpOnException,
    /// Where GPU core dumps go.
    CudaCoredumpFile,
    /// Halts a process on a device exception, waiting for a debugger.
    CudaDeviceWaitsOnException,
    /// The legacy CUDA profiler.
    CudaProfile,
    /// The legacy compute profiler.
    ComputeProfile,
    /// The legacy OpenCL profiler.
    OpenclProfile,
    /// Makes every kernel launch synchronous (debugging only).
    CudaLaunchBlocking,
    /// Names an MPS pipe directory that holds no MPS control socket: CUDA
    /// then runs without MPS.
    CudaMpsPipeDirectory,
}

impl TrapVariable {
    /// Every variable, in the order they are reported.
    pub const ALL: [TrapVariable; 12] = [
        TrapVariable::CudaInjection32Path,
        TrapVariable::CudaInjection64Path,
        TrapVariable::NsightCudaDebugger,
        TrapVariable::CudaAutoBoost,
        TrapVariable::CudaEnableCoredumpOnException,
        TrapVariable::CudaCoredumpFile,
        TrapVariable::CudaDeviceWaitsOnException,
        TrapVariable::CudaProfile,
        TrapVariable::ComputeProfile,
        TrapVariable::OpenclProfile,
        TrapVariable::CudaLaunchBlocking,
        TrapVariable::CudaMpsPipeDirectory,
    ];

    /// The variable's name, as in the environment and the JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TrapVariable::CudaInjection32Path => "CUDA_INJECTION32_PATH",
            TrapVariable::CudaInjection64Path => "CUDA_INJECTION64_PATH",
            TrapVariable::NsightCudaDebugger => "NSIGHT_CUDA_DEBUGGER",
            TrapVariable::CudaAutoBoost => "CUDA_AUTO_BOOST",
            TrapVariable::CudaEnableCoredumpOnException => "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
            TrapVariable::CudaCoredumpFile => "CUDA_COREDUMP_FILE",
            TrapVariable::CudaDeviceWaitsOnException => "CUDA_DEVICE_WAITS_ON_EXCEPTION",
            TrapVariable::CudaProfile => "CUDA_PROFILE",
            TrapVariable::ComputeProfile => "COMPUTE_PROFILE",
            TrapVariable::OpenclProfile => "OPENCL_PROFILE",
            TrapVariable::CudaLaunchBlocking => "CUDA_LAUNCH_BLOCKING",
            TrapVariable::CudaMpsPipeDirectory => "CUDA_MPS_PIPE_DIRECTORY",
        }
    }
}

impl std::fmt::Display for TrapVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sandbox between the container and the host's kernel, which changes
/// what the container sees of the GPU driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sandbox {
    /// gVisor (runsc, GKE Sandbox): its kernel log starts with "Starting
    /// gVisor...", the check gVisor's documentation gives ("Verify the
    /// runtime": `dmesg`). GPUs reach it through nvproxy, which exposes
    /// only /dev/nvidiactl, /dev/nvidia-uvm and /dev/nvidiaN and no
    /// /proc/driver/nvidia/version (gVisor, "GPU Support").
    Gvisor,
}

/// One NVIDIA device node.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeviceNode {
    pub path: String,
    /// Whether it opens for reading and writing, as the driver opens it.
    pub openable: bool,
    /// The error when it does not.
    pub error: Option<String>,
    /// What kind of failure `error` is, when the node does not open.
    #[serde(default)]
    pub error_kind: Option<NodeError>,
    /// The node was not there when gpuprobe started: the driver library made
    /// it during this run (libcuda, run as root, creates missing nodes
    /// itself), so the container runtime did not give it.
    #[serde(default)]
    pub created_during_run: bool,
}

/// Why a device node does not open, by the OS error (open(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeError {
    /// EPERM or EACCES: the device cgroup, SELinux or file permissions
    /// refuse it.
    PermissionDenied,
    /// ENXIO or ENODEV: the node exists but no kernel driver answers behind
    /// it (the NVIDIA kernel module is not loaded).
    NoDriver,
    /// Any other error.
    Other,
}

/// An environment variable.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

/// What a Windows container holds of the host's driver.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct WindowsEnvironment {
    /// Whether this is a container (C:\Windows\System32\HostDriverStore, or
    /// the container user) at all.
    pub container: bool,
    /// C:\Windows\System32\HostDriverStore exists: started with the GPU
    /// device class.
    pub host_driver_store: bool,
    /// Where nvcuda.dll was found, if anywhere.
    pub nvcuda_dll: Option<String>,
    /// Where nvml.dll was found, if anywhere.
    pub nvml_dll: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::TrapVariable;

    #[test]
    fn trap_words_are_the_variables_names() {
        for v in TrapVariable::ALL {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
    }
}
