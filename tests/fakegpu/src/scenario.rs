//! Scenario files: what the fake driver pretends the machine is.
//!
//! One JSON file (tests/scenarios/NAME.json) configures the fake libcuda and
//! the fake NVML alike. Unknown fields are rejected so a typo in a scenario
//! fails loudly instead of silently testing the healthy path; for the same
//! reason every field that names something the fake matches in code (a
//! driver call, an exported symbol, an NVML reading, a kernel, a device
//! node) takes only the names the fake knows (`crate::names`).
use serde::Deserialize;

use crate::cuda::Call;
use crate::names::{self, ClosedSet};
use crate::nvml::Field;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario stands for; documentation only.
    #[serde(default)]
    pub description: String,
    /// What cuDriverGetVersion reports (1000 * major + 10 * minor).
    #[serde(default = "default_driver_version")]
    pub driver_version: i32,
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Calls that fail, or never return.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// A kernel that computes wrong on every GPU alike, as a miscompiled
    /// kernel or a driver's PTX JIT bug would: software, where a hardware
    /// fault is random and per GPU. Every launch of an entry point whose
    /// name starts with `kernel` leaves `words` words of its C wrong, at
    /// the same places and with the same bits on every device.
    #[serde(default)]
    pub kernel_bug: Option<KernelBug>,
    /// Driver API symbols the library does not export, as on an old driver
    /// (any of `cuda::Call`: what the fake exports).
    #[serde(default, deserialize_with = "missing_symbols")]
    pub missing_symbols: Vec<Call>,
    /// Whether libcuda.so.1 exists at all (false: `utility` capability only).
    #[serde(default = "yes")]
    pub cuda_library: bool,
    /// Where libcuda.so.1 lies, relative to the prepared folder ("" = in it),
    /// e.g. "usr/local/cuda/lib64/stubs" for the toolkit's stub.
    #[serde(default)]
    pub cuda_library_dir: String,
    /// The driver version in libcuda's real file name
    /// (libcuda.so.1 -> libcuda.so.VERSION), as the driver installs it.
    #[serde(default)]
    pub cuda_library_version: Option<String>,
    /// libcuda is a file of the image even where the container toolkit
    /// mounts the other driver libraries in (`host.driver_mounts`), as
    /// NVIDIA's cuda-compat package installs its forward-compatibility
    /// libcuda.
    #[serde(default)]
    pub cuda_library_in_image: bool,
    /// The fake NVML (libnvidia-ml.so.1).
    #[serde(default)]
    pub nvml: Nvml,
    /// Whether the image also holds cuBLAS, and where: `true` is
    /// libcublas.so.12 beside the driver libraries (on the loader's path),
    /// as CUDA toolkit images have it; an object names the library and its
    /// place (`Cublas`), e.g. a pip wheel's folder as PyTorch images have
    /// it; absent or `false`: gpuprobe's own image, with no toolkit.
    #[serde(default, deserialize_with = "cublas_setting")]
    pub cublas: Option<Cublas>,
    /// What gpuprobe finds under its root: device nodes, /proc, WSL files.
    #[serde(default)]
    pub host: Host,
    /// Environment variables of the process; "{dir}" stands for the
    /// prepared folder.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// The GPUs reach the host through one shared PCIe link (a PCIe switch
    /// with several GPUs below it and one uplink to the CPU, as in many
    /// 8-GPU servers): host copies on several GPUs at once share the
    /// uplink's bandwidth, so each runs at its share (a switch forwards no
    /// more than its upstream port carries: PCI Express Base Specification,
    /// switch ports). Absent: each GPU has a link of its own.
    #[serde(default)]
    pub shared_host_link: bool,
    /// How long the first cuInit of a process takes, ms. NVIDIA's Driver
    /// Persistence guide ("Overview"): a program that makes the driver
    /// initialise a GPU "may incur a short (order of 1-3 second) startup
    /// cost per GPU due to ECC scrubbing", which a GPU kept initialised
    /// (persistence mode, nvidia-persistenced, or another process holding
    /// it) does not pay. Absent: `INIT_MS_PER_COLD_GPU` for each GPU with
    /// persistence mode off and no other process on it, none otherwise (a
    /// warm cuInit's own fraction of a second, ../shared/FACTS.md section
    /// 12, is not modelled, to keep tests fast). A test states a small
    /// value to model a cold start cheaply.
    #[serde(default)]
    pub cu_init_ms: Option<f64>,
    /// Peer-to-peer between the GPUs: which pairs CUDA lets access each
    /// other, how fast, and what the path between them does to the data.
    #[serde(default)]
    pub peer: Peer,
}

/// Peer-to-peer between the scenario's GPUs, as CUDA offers it: peer access
/// (cuDeviceCanAccessPeer, cuCtxEnablePeerAccess), device-to-device copies
/// between GPUs (unified addressing: cuMemcpyDtoD takes any two device
/// pointers), and kernels that store through a pointer into a peer's
/// memory. Devices are named by their index in `devices`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The ordered pairs cuDeviceCanAccessPeer answers 1 for.
    #[serde(default)]
    pub access: PeerAccess,
    /// Bytes per second of a copy between two GPUs with peer access (their
    /// NVLink or PCIe path); absent: the source GPU's device copy rate. A
    /// copy between GPUs without peer access is staged through host memory
    /// (CUDA Programming Guide, "Peer-to-Peer Memory Copy": "performed ...
    /// through host memory" when peer access is not enabled) and runs at
    /// the slower of the two GPUs' host links.
    #[serde(default)]
    pub bytes_per_second: Option<f64>,
    /// Peer writes the path between two GPUs loses or alters although
    /// access is granted: the IOMMU in translated mode, or PCIe ACS sending
    /// peer traffic up to a root complex that drops or misroutes it
    /// (pytorch#84803, vllm#51513; ../shared/FACTS.md section 13).
    /// Copies staged through host memory never take the peer path.
    #[serde(default)]
    pub faults: Vec<PeerFault>,
}

/// Which ordered pairs of GPUs may access each other's memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerAccess {
    /// None (the default): GPUs under different CPU sockets or root
    /// complexes that do not route peer traffic, boards without
    /// peer-to-peer, a scenario that says nothing of it.
    #[default]
    None,
    /// Every pair: an NVLink or NVSwitch node, or GPUs under one PCIe
    /// switch that routes peer traffic.
    All,
    /// These ordered pairs, `[from, to]`.
    Pairs(Vec<[usize; 2]>),
}

impl PeerAccess {
    /// Whether device `from` may access device `to` (scenario indices);
    /// never a device itself (cuDeviceCanAccessPeer answers 0 for it).
    #[must_use]
    pub fn allows(&self, from: usize, to: usize) -> bool {
        from != to
            && match self {
                PeerAccess::None => false,
                PeerAccess::All => true,
                PeerAccess::Pairs(pairs) => pairs.contains(&[from, to]),
            }
    }
}

/// Writes over one peer path that do not arrive as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFault {
    /// The GPU whose data it is (the copy's source, the kernel's GPU).
    pub from: usize,
    /// The GPU whose memory receives it.
    pub to: usize,
    /// Which writer's traffic it hits.
    #[serde(default)]
    pub writer: PeerWriter,
    pub kind: PeerFaultKind,
    /// Every how many 32-bit words one is hit, from the first.
    #[serde(default = "one")]
    pub every: usize,
}

fn one() -> usize {
    1
}

/// Who writes into a peer's memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerWriter {
    /// Both: the copy engines and kernel stores take the same path.
    #[default]
    Any,
    /// A device-to-device copy (the copy engines).
    Copy,
    /// A kernel's stores through a pointer into the peer's memory.
    Kernel,
}

impl Peer {
    fn validate(&self, devices: usize) -> Result<(), String> {
        if let PeerAccess::Pairs(pairs) = &self.access {
            for [from, to] in pairs {
                if *from >= devices || *to >= devices || from == to {
                    return Err(format!(
                        "peer.access: [{from}, {to}] is no pair of the {devices} devices"
                    ));
                }
            }
        }
        if let Some(rate) = self.bytes_per_second {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("peer.bytes_per_second: {rate} is not a rate"));
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            if f.from >= devices || f.to >= devices || f.from == f.to {
                return Err(format!(
                    "peer.faults[{i}]: from {} to {} is no pair",
                    f.from, f.to
                ));
            }
            if f.every == 0 {
                return Err(format!("peer.faults[{i}].every: 0"));
            }
            if let PeerFaultKind::Flip { bit } = f.kind {
                if bit >= 32 {
                    return Err(format!("peer.faults[{i}].kind: bit {bit} of a 32-bit word"));
                }
            }
        }
        Ok(())
    }
}

impl PeerWriter {
    #[must_use]
    pub fn hits(self, writer: PeerWriter) -> bool {
        self == PeerWriter::Any || self == writer
    }
}

/// What happens to a hit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerFaultKind {
    /// Never arrives: the destination keeps what it held.
    Drop,
    /// Arrives with bit `bit` inverted.
    Flip { bit: u32 },
}

/// A cold GPU's start-up in cuInit, ms: the middle of NVIDIA's "order of
/// 1-3 second" per GPU (Driver Persistence, "Overview").
pub const INIT_MS_PER_COLD_GPU: f64 = 2000.0;

fn yes() -> bool {
    true
}

fn missing_symbols<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Call>, D::Error> {
    names::list(d, "missing_symbols")
}

fn fault_call<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Call, D::Error> {
    names::one(d, "faults[].call")
}

fn not_supported<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<crate::nvml::Field>, D::Error> {
    names::list(d, "devices[].nvml.not_supported")
}

/// Where the fake libcublas goes (`"cublas": {...}` in a scenario).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cublas {
    /// The library's file name and SONAME, e.g. "libcublas.so.13".
    #[serde(default = "default_cublas_soname")]
    pub soname: String,
    #[serde(default)]
    pub place: CublasPlace,
    /// The site-packages folder a `pip_wheel_*` place is under, as an
    /// absolute path on the machine (laid out under the root).
    #[serde(default = "default_site_packages")]
    pub site_packages: String,
}

/// Where the fake libcublas lies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CublasPlace {
    /// In the prepared folder, on LD_LIBRARY_PATH (a toolkit install).
    #[default]
    Loader,
    /// SITE/nvidia/cublas/lib/, under the root: the folder of
    /// nvidia-cublas-cu12 (and -cu11) wheels.
    PipWheelCu12,
    /// SITE/nvidia/cu13/lib/, under the root: the folder of CUDA 13's
    /// nvidia-cublas wheels.
    PipWheelCu13,
}

impl CublasPlace {
    /// The wheel's folder below site-packages, for a pip place.
    #[must_use]
    pub fn wheel_folder(self) -> Option<&'static str> {
        match self {
            CublasPlace::Loader => None,
            CublasPlace::PipWheelCu12 => Some("nvidia/cublas/lib"),
            CublasPlace::PipWheelCu13 => Some("nvidia/cu13/lib"),
        }
    }
}

fn default_cublas_soname() -> String {
    "libcublas.so.12".into()
}

/// Where pip as root puts wheels with Ubuntu's Python.
fn default_site_packages() -> String {
    "/usr/local/lib/python3.12/dist-packages".into()
}

/// `"cublas"`: a bool (today's toolkit install, or none) or a `Cublas`,
/// whose own errors (a misspelt field) are reported as they are.
fn cublas_setting<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cublas>, D::Error> {
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(false) => Ok(None),
        serde_json::Value::Bool(true) => Ok(Some(Cublas {
            soname: default_cublas_soname(),
            place: CublasPlace::Loader,
            site_packages: default_site_packages(),
        })),
        object @ serde_json::Value::Object(_) => serde_json::from_value(object)
            .map(Some)
            .map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "cublas is true, false or an object, not {other}"
        ))),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Nvml {
    /// Whether libnvidia-ml.so.1 exists.
    #[serde(default = "yes")]
    pub present: bool,
    /// What nvmlInit_v2 returns (NVML_SUCCESS = 0).
    #[serde(default)]
    pub init_result: i32,
    /// nvmlSystemGetDriverVersion.
    #[serde(default = "default_kernel_driver")]
    pub driver_version: String,
}

impl Default for Nvml {
    fn default() -> Self {
        Nvml {
            present: true,
            init_result: 0,
            driver_version: default_kernel_driver(),
        }
    }
}

#[must_use]
pub fn default_kernel_driver() -> String {
    "550.54.15".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Names under /dev; default: nvidiactl, nvidia-uvm, nvidia-uvm-tools and
    /// nvidiaN for each device.
    #[serde(default)]
    pub dev: Option<Vec<String>>,
    /// Device nodes that exist but whose opening is denied (EACCES), as
    /// after a cgroup revocation; each one of the nodes laid out
    /// (`Scenario::dev_nodes`).
    #[serde(default)]
    pub dev_unopenable: Vec<String>,
    /// Device nodes with no kernel driver behind them (ENXIO), as on a host
    /// whose NVIDIA kernel module is not loaded; each one of the nodes laid
    /// out.
    #[serde(default)]
    pub dev_without_driver: Vec<String>,
    /// Contents of /proc/driver/nvidia/version; default: the NVML driver
    /// version's kernel module. null: the file does not exist.
    #[serde(default = "default_proc")]
    pub proc_driver_version: Option<String>,
    /// Other files to create, path (relative to the root) -> contents;
    /// "{dir}" stands for the prepared folder.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// Whether /proc/self/mountinfo shows the driver libraries bind-mounted
    /// into a container (as the toolkit does); false: files of the image.
    /// null: no mountinfo at all.
    #[serde(default = "injected")]
    pub driver_mounts: Option<bool>,
    /// What the kernel log answers syslog(2) SYSLOG_ACTION_READ_ALL (what
    /// `dmesg` reads), laid out as the root's proc/kmsg, the file form of
    /// the same log (proc(5)), where gpuprobe reads it under a test root.
    /// Absent: no log to read (a host with kernel.dmesg_restrict, the
    /// usual container). gVisor's sentry answers with a log of its own
    /// that starts "Starting gVisor..." (gVisor docs, "Verify the
    /// runtime"; pkg/sentry/kernel/syslog.go: records "<6>[%11.6f] %s").
    #[serde(default)]
    pub kernel_log: Option<String>,
    /// The process runs as root: cuInit creates /dev/nvidiactl when it is
    /// missing, as NVIDIA's libcuda does (observed with the 470, 535 and 550
    /// drivers: mknod 195:255 during cuInit, even with no kernel module).
    #[serde(default)]
    pub runs_as_root: bool,
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "the serde default of an Option field (null is a value of its own)"
)]
fn injected() -> Option<bool> {
    Some(true)
}

#[allow(
    clippy::unnecessary_wraps,
    reason = "the serde default of an Option field (null is a value of its own)"
)]
fn default_proc() -> Option<String> {
    Some(String::new())
}

impl Default for Host {
    fn default() -> Self {
        Host {
            dev: None,
            dev_unopenable: Vec::new(),
            dev_without_driver: Vec::new(),
            proc_driver_version: default_proc(),
            files: std::collections::BTreeMap::new(),
            driver_mounts: injected(),
            kernel_log: None,
            runs_as_root: false,
        }
    }
}

fn default_driver_version() -> i32 {
    12040
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub name: String,
    /// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints it.
    pub uuid: String,
    /// "0000:01:00.0".
    pub pci_bus_id: String,
    /// [major, minor].
    pub compute_capability: [i32; 2],
    pub multiprocessors: i32,
    pub clock_mhz: i32,
    pub memory_bytes: u64,
    /// Memory already taken by other processes when the probe starts.
    #[serde(default)]
    pub memory_used_bytes: u64,
    /// Elements of every device-to-host copy that come back wrong (a bit
    /// flipped in the exponent), as on a GPU with bad memory.
    #[serde(default)]
    pub corrupt_results: u32,
    /// Device memory one context takes while it exists, deducted from free
    /// memory as the kernel module sees it (cuMemGetInfo, NVML). NVIDIA's
    /// CUDA Programming Guide ("Lazy Loading") says eager module loading
    /// costs GPU memory that lazy loading saves; with eager loading a
    /// context measured 636 MiB, lazily 274 MiB (pytorch/pytorch#86509, on
    /// an A100); the default stands for an eager context on a Hopper-class
    /// GPU. Unconfirmed on an H100 (docs/gpu-validation.md).
    #[serde(default = "default_context_bytes")]
    pub context_bytes: u64,
    /// Another process (a training job) holds a context on this GPU. In
    /// compute mode EXCLUSIVE_PROCESS no other process then gets one: the
    /// driver answers `exclusive_refusal_code`; in PROHIBITED no process
    /// ever does, and the first cuDevicePrimaryCtxRetain fails with
    /// CUDA_ERROR_UNKNOWN (999), as cuda.h documents for that call (cuda.h,
    /// CUcomputemode; ../shared/FACTS.md section 12).
    #[serde(default)]
    pub held_by_other_process: bool,
    /// What an EXCLUSIVE_PROCESS GPU held by another process answers a
    /// context: CUDA_ERROR_DEVICE_UNAVAILABLE (46) from current drivers;
    /// older ones have been seen to answer CUDA_ERROR_INVALID_DEVICE (101)
    /// (JuliaGPU/CUDAnative.jl#555, Theano/libgpuarray#105), and 216
    /// (CONTEXT_ALREADY_IN_USE) was the removed EXCLUSIVE_THREAD mode's.
    #[serde(default = "default_exclusive_refusal_code")]
    pub exclusive_refusal_code: i32,
    /// The other processes with a CUDA context on this GPU, as
    /// nvmlDeviceGetComputeRunningProcesses lists them: PIDs of the host
    /// (inside a container NVML reports the host's PID namespace) and the
    /// device memory each holds. Their memory is part of
    /// `memory_used_bytes`, as on a real GPU.
    #[serde(default)]
    pub other_processes: Vec<OtherProcess>,
    /// What NVML reports for this device.
    #[serde(default)]
    pub nvml: DeviceNvml,
    /// CU_DEVICE_ATTRIBUTE_KERNEL_EXEC_TIMEOUT: the OS limits how long a
    /// kernel may run, as on a Windows display GPU under WDDM (TDR,
    /// "Timeout Detection and Recovery", default TdrDelay 2 s). A launch
    /// whose modelled time (`launch_ns_per_thread`) passes `watchdog_ms`
    /// fails with CUDA_ERROR_LAUNCH_TIMEOUT (702) and leaves the context
    /// unusable ("This leaves the process in an inconsistent state and any
    /// further CUDA work will return the same error", cuda.h).
    #[serde(default)]
    pub kernel_exec_timeout: bool,
    /// The watchdog's limit, ms.
    #[serde(default = "default_watchdog_ms")]
    pub watchdog_ms: f64,
    /// How long the GPU takes per thread of a launch, ns: a launch of T
    /// threads takes T times this, on the events' clock and against the
    /// watchdog. A model of a slow GPU that does not depend on how fast the
    /// emulator runs on the test machine; with gpuprobe's matmul one thread
    /// makes one element of C, so the time scales with the rows launched.
    /// Keep it above what the emulation takes per thread (a 32 x 32 product
    /// emulates in about 12 ms on a 2-core machine): gpuprobe sizes its
    /// loops from the events, so a model faster than the emulation makes a
    /// loop planned for one second of GPU time run for many on the host,
    /// past its deadline (tests/defaults.rs runs every scenario at the
    /// defaults). Absent: launches take what the emulation takes.
    #[serde(default)]
    pub launch_ns_per_thread: Option<f64>,
    /// How the GPU changes as it stays under load: each phase starts once
    /// the GPU has worked `after_ms` in all (the summed time of its
    /// launches, modelled or emulated) and replaces the readings it names.
    /// A GPU under sustained load heats up, and its clocks fall when it
    /// reaches a thermal or power limit (NVML's nvmlClocksThrottleReasons:
    /// "SW Power Scaling algorithm is reducing the clocks below requested
    /// clocks", "HW Thermal Slowdown ... temperature being too high"); a
    /// kernel bound by arithmetic then runs slower by the clock's ratio.
    #[serde(default)]
    pub under_load: Vec<LoadPhase>,
    /// The fraction of the theoretical memory bandwidth (2 × NVML's current
    /// memory clock × bus width / 8) that a device-to-device copy or a
    /// streaming kernel reaches, which sets their modelled time. Real GPUs
    /// are reported to reach about 80-93% in a copy (public bandwidthTest
    /// and BabelStream results; unconfirmed on gpuprobe's own runs,
    /// docs/gpu-validation.md).
    #[serde(default = "default_memory_copy_efficiency")]
    pub memory_copy_efficiency: f64,
    /// The fraction of the PCIe link's per-direction bandwidth, at the
    /// generation and width the link has under load (`nvml.pcie.load`),
    /// that a copy from or to host memory reaches, which sets its modelled
    /// time. Pinned copies are reported to reach about 75-90% of the link
    /// (public bandwidthTest results; unconfirmed likewise); the rest is
    /// packet and protocol overhead.
    #[serde(default = "default_host_copy_efficiency")]
    pub host_copy_efficiency: f64,
    /// MIG instances on this GPU (MIG mode on: `nvml.mig_mode` must be
    /// true). CUDA then enumerates instances, never the GPU itself: with MIG
    /// mode on, CUDA work runs only on MIG devices (NVIDIA MIG User Guide,
    /// "CUDA Device Enumeration").
    #[serde(default)]
    pub mig_instances: Vec<MigInstance>,
    /// Faulty cells of this GPU's memory (HBM), as a memory test finds
    /// them: bits stuck at 0 or 1, a bit that flips once after it is
    /// written, and a bit coupled to a neighbour's (`memory::apply_faults`).
    /// Stuck-at and coupling faults are the classic fault models of RAM
    /// cells (van de Goor, "Testing Semiconductor Memories", 1991; the
    /// memtest86 test descriptions), and HBM faults were 17.2% of the
    /// unplanned stops of Llama 3 405B's training on 16,384 H100
    /// (../shared/FACTS.md section 13).
    #[serde(default)]
    pub memory_faults: Vec<MemoryFault>,
    /// `cuDeviceGetUuid` (the pre-11.4 entry point) of a MIG instance
    /// answers with the parent GPU's UUID; `cuDeviceGetUuid_v2`, added in
    /// CUDA 11.4 for this, with the instance's own. Set by the fake when it
    /// turns a `MigInstance` into a CUDA device; never in a scenario file.
    #[serde(skip)]
    pub mig_parent_uuid: Option<String>,
}

/// One MIG device: a GPU instance with one compute instance, as
/// `nvidia-smi mig -cgi 1g.10gb -C` creates it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigInstance {
    /// "MIG-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as `nvidia-smi -L` prints
    /// it (drivers >= 470).
    pub uuid: String,
    /// The GPU instance id (`nvidia-smi mig -lgi`).
    pub gpu_instance_id: u32,
    /// The compute instance id inside it (`nvidia-smi mig -lci`).
    pub compute_instance_id: u32,
    /// What cuDeviceGetName answers, e.g. "NVIDIA A100-SXM4-80GB MIG 1g.10gb".
    pub name: String,
    /// The instance's share of the GPU's SMs.
    pub multiprocessors: i32,
    /// The instance's share of the GPU's memory.
    pub memory_bytes: u64,
}

/// One faulty cell of `Device::memory_faults`. A cell sits at one
/// physical place, which one allocation covers: the fake puts it in the
/// oldest live allocation of the device that reaches past `offset` (and
/// `aggressor_offset`), so a small allocation made before a large one does
/// not hide it, and a freed allocation hands it to the next.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryFault {
    /// Byte offset of the faulty 32-bit word in its allocation (a multiple
    /// of 4).
    pub offset: u64,
    /// Bit of that word, 0 (least significant) to 31.
    pub bit: u32,
    pub kind: MemoryFaultKind,
    /// `coupled`: the word holding the aggressor cell, byte offset in the
    /// same allocation (a multiple of 4).
    #[serde(default)]
    pub aggressor_offset: Option<u64>,
    /// `coupled`: the aggressor cell's bit, 0 to 31.
    #[serde(default)]
    pub aggressor_bit: Option<u32>,
}

impl MemoryFault {
    /// The aggressor cell of a coupling fault: (byte offset, bit).
    #[must_use]
    pub fn aggressor(&self) -> Option<(u64, u32)> {
        self.aggressor_offset.zip(self.aggressor_bit)
    }

    fn validate(&self) -> Result<(), String> {
        let word = |offset: u64, bit: u32| {
            if !offset.is_multiple_of(4) || bit > 31 {
                Err(format!(
                    "offset {offset} bit {bit} is no bit of a 32-bit word"
                ))
            } else {
                Ok(())
            }
        };
        word(self.offset, self.bit)?;
        match (self.kind, self.aggressor()) {
            (MemoryFaultKind::Coupled, Some((at, bit))) if at == self.offset && bit == self.bit => {
                Err("a cell cannot be coupled to itself".into())
            }
            (MemoryFaultKind::Coupled, Some((at, bit))) => word(at, bit),
            (MemoryFaultKind::Coupled, None) => {
                Err("coupled needs aggressor_offset and aggressor_bit".into())
            }
            (_, Some(_)) => Err("only a coupled fault has an aggressor".into()),
            (_, None) => Ok(()),
        }
    }
}

/// How a faulty cell misbehaves. The device's memory settles after every
/// write the fake makes into it (a kernel launch, a copy to the device):
/// the faulty cells then hold what their fault leaves, and every later read
/// (a kernel's, a copy back) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryFaultKind {
    /// Stuck-at-0: the cell reads 0 whatever was written.
    #[serde(rename = "stuck_at_0")]
    StuckAt0,
    /// Stuck-at-1: the cell reads 1 whatever was written.
    #[serde(rename = "stuck_at_1")]
    StuckAt1,
    /// A soft error: the cell flips once, after the first kernel that runs
    /// while its allocation exists, and holds what is written after that.
    Flip,
    /// A state coupling (bridging) fault: the victim cell reads what the
    /// aggressor cell holds. Patterns that write the same value to both
    /// cells (solid and walking patterns, when both are the same bit
    /// position) cannot see it; patterns that differ from word to word
    /// (random data and its inverse, the moving inversions) can.
    Coupled,
}

fn default_memory_copy_efficiency() -> f64 {
    0.9
}

fn default_host_copy_efficiency() -> f64 {
    0.85
}

/// `kernel_bug`: which kernels, and how many words of C they leave wrong.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelBug {
    /// The start of the entry points' names, e.g. "gpuprobe_sgemm_": the
    /// start of at least one kernel the emulator runs (`cuda::KERNELS`).
    pub kernel: String,
    pub words: u32,
}

fn default_exclusive_refusal_code() -> i32 {
    46
}

/// One process of `other_processes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherProcess {
    pub pid: u32,
    pub used_memory_bytes: u64,
}

fn default_context_bytes() -> u64 {
    512 << 20
}

/// nvmlComputeMode_t (nvml.h): the modes that refuse another process's context.
pub const COMPUTE_MODE_PROHIBITED: u32 = 2;
pub const COMPUTE_MODE_EXCLUSIVE_PROCESS: u32 = 3;

/// One phase of a GPU under sustained load (`Device::under_load`): what
/// changes from the scenario's readings once the GPU has worked `after_ms`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPhase {
    pub after_ms: f64,
    #[serde(default)]
    pub sm_clock_mhz: Option<u32>,
    #[serde(default)]
    pub temperature_celsius: Option<u32>,
    #[serde(default)]
    pub power_draw_watts: Option<f64>,
    /// nvmlClocksThrottleReasons bits.
    #[serde(default)]
    pub throttle_reasons: Option<u64>,
    #[serde(default)]
    pub ecc_corrected_volatile: Option<u64>,
    #[serde(default)]
    pub ecc_uncorrected_volatile: Option<u64>,
    /// The PCIe replay counter and the SRAM ECC counts from this phase on
    /// (`DeviceNvml`'s fields of the same names): a few replays or
    /// corrected errors that came with the work, whatever its length.
    #[serde(default)]
    pub pcie_replay_counter: Option<u64>,
    #[serde(default)]
    pub sram_corrected_volatile: Option<u64>,
    #[serde(default)]
    pub sram_uncorrected_volatile: Option<u64>,
    /// NVML's aggregate uncorrectable count (nvmlDeviceGetTotalEccErrors,
    /// NVML_AGGREGATE_ECC: kept across driver reloads in the InfoROM), which
    /// grows with the volatile one.
    #[serde(default)]
    pub ecc_uncorrected_aggregate: Option<u64>,
    /// nvmlDeviceGetRemappedRows from this phase on: a row marked for
    /// remapping after an uncorrectable error waits for the next GPU reset
    /// (`remapped_rows_pending`), and the rows remapped for uncorrectable
    /// errors count it (`remapped_rows_uncorrectable`); `remapped_rows_failure`
    /// when no spare row was left (NVIDIA, GPU Memory Error Management,
    /// "Row Remapping"; Xid 63 records the entry, Xid 64 a failure to).
    #[serde(default)]
    pub remapped_rows_pending: Option<bool>,
    #[serde(default)]
    pub remapped_rows_failure: Option<bool>,
    #[serde(default)]
    pub remapped_rows_uncorrectable: Option<u32>,
    /// From this phase on, the work of this process's context on the GPU
    /// has hit an error the driver reports to that context alone, sticky
    /// (`ContextError`): the launch running when the phase starts is the
    /// one hit. Set it in the same phase as the NVML counters that record
    /// the fault, so that they move at the same moment, as they do on a
    /// real GPU.
    #[serde(default)]
    pub context_error: Option<ContextError>,
    /// As `Device::corrupt_results`, from this phase on: memory that fails
    /// only once hot, seen in every copy to the host.
    #[serde(default)]
    pub corrupt_results: Option<u32>,
    /// From this phase on, every GEMM launch (gpuprobe's `gpuprobe_sgemm_*`
    /// kernels) leaves this many words of its C wrong in device memory (the
    /// exponent's top bit flipped): an ALU or memory that fails only once
    /// hot, seen by any later reader of C, on the GPU or after a copy.
    #[serde(default)]
    pub corrupt_products: Option<u32>,
}

/// An error that ends the work of the context that met it, and only that
/// context's: the driver reports it to the context at the next call that
/// waits for its work (launches are asynchronous: cuda.h, "may also return
/// error codes from previous, asynchronous launches"), and every later call
/// of that context returns it too (sticky). Other processes' contexts on
/// the GPU go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextError {
    /// CUDA_ERROR_ECC_UNCORRECTABLE (214, cuda.h: "an uncorrectable ECC
    /// error was detected during execution"). With error containment
    /// (NVIDIA, GPU Memory Error Management, "Error Containment": GA100 and
    /// GH100) "the impact will be limited to the applications that
    /// encounter the error", with no GPU reset needed; the driver logs Xid
    /// 94 ("Contained ... RST: No"), offlines the page and marks its row
    /// for remapping at the next reset.
    EccUncorrectable,
}

impl ContextError {
    /// The CUresult the context's calls return.
    #[must_use]
    pub fn code(self) -> i32 {
        match self {
            ContextError::EccUncorrectable => 214,
        }
    }
}

impl Device {
    /// The phase of `under_load` the GPU is in after working `worked_ms`.
    #[must_use]
    pub fn phase(&self, worked_ms: f64) -> Option<&LoadPhase> {
        self.under_load
            .iter()
            .filter(|p| p.after_ms <= worked_ms)
            .max_by(|a, b| a.after_ms.total_cmp(&b.after_ms))
    }

    /// NVML's readings after the GPU has worked `worked_ms`.
    #[must_use]
    pub fn nvml_after(&self, worked_ms: f64) -> DeviceNvml {
        let mut n = self.nvml.clone();
        if let Some(p) = self.phase(worked_ms) {
            n.pcie_replay_counter = p.pcie_replay_counter.unwrap_or(n.pcie_replay_counter);
            n.sram_corrected_volatile = p
                .sram_corrected_volatile
                .unwrap_or(n.sram_corrected_volatile);
            n.sram_uncorrected_volatile = p
                .sram_uncorrected_volatile
                .unwrap_or(n.sram_uncorrected_volatile);
            n.sm_clock_mhz = p.sm_clock_mhz.unwrap_or(n.sm_clock_mhz);
            n.temperature_celsius = p.temperature_celsius.unwrap_or(n.temperature_celsius);
            n.power_draw_watts = p.power_draw_watts.unwrap_or(n.power_draw_watts);
            n.throttle_reasons = p.throttle_reasons.unwrap_or(n.throttle_reasons);
            n.ecc_corrected_volatile = p.ecc_corrected_volatile.unwrap_or(n.ecc_corrected_volatile);
            n.ecc_uncorrected_volatile = p
                .ecc_uncorrected_volatile
                .unwrap_or(n.ecc_uncorrected_volatile);
            n.ecc_uncorrected_aggregate = p
                .ecc_uncorrected_aggregate
                .unwrap_or(n.ecc_uncorrected_aggregate);
            n.remapped_rows_pending = p.remapped_rows_pending.unwrap_or(n.remapped_rows_pending);
            n.remapped_rows_failure = p.remapped_rows_failure.unwrap_or(n.remapped_rows_failure);
            n.remapped_rows_uncorrectable = p
                .remapped_rows_uncorrectable
                .unwrap_or(n.remapped_rows_uncorrectable);
        }
        // What the counters' steady growth has added by now, on top.
        let grow = n.counters_per_work_second;
        n.pcie_replay_counter += CounterGrowth::added(grow.pcie_replays, worked_ms);
        n.ecc_corrected_volatile += CounterGrowth::added(grow.ecc_corrected, worked_ms);
        n.sram_corrected_volatile += CounterGrowth::added(grow.sram_corrected, worked_ms);
        n.sram_uncorrected_volatile += CounterGrowth::added(grow.sram_uncorrected, worked_ms);
        n
    }

    /// The error a context of this GPU meets once the GPU has worked
    /// `worked_ms`: the first phase reached that sets one (a later phase
    /// does not take it back: the error is sticky).
    #[must_use]
    pub fn context_error_after(&self, worked_ms: f64) -> Option<ContextError> {
        self.under_load
            .iter()
            .filter(|p| p.after_ms <= worked_ms)
            .filter_map(|p| p.context_error.map(|e| (p.after_ms, e)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, e)| e)
    }

    /// Words of C each GEMM launch leaves wrong after `worked_ms`.
    #[must_use]
    pub fn corrupt_products_after(&self, worked_ms: f64) -> u32 {
        self.phase(worked_ms)
            .and_then(|p| p.corrupt_products)
            .unwrap_or(0)
    }

    /// Elements of each copy back that come back wrong after `worked_ms`.
    #[must_use]
    pub fn corrupt_results_after(&self, worked_ms: f64) -> u32 {
        self.phase(worked_ms)
            .and_then(|p| p.corrupt_results)
            .unwrap_or(self.corrupt_results)
    }

    /// How much longer a launch takes after `worked_ms` than at the
    /// scenario's clock: the ratio of the clocks (an arithmetic-bound
    /// kernel's time scales with the SM clock's period).
    #[must_use]
    pub fn slowdown_after(&self, worked_ms: f64) -> f64 {
        match self.phase(worked_ms).and_then(|p| p.sm_clock_mhz) {
            Some(now) if now > 0 => f64::from(self.nvml.sm_clock_mhz) / f64::from(now),
            _ => 1.0,
        }
    }

    /// The CUresult a context of this process is refused with, by the
    /// compute mode and the other process's context (cuda.h,
    /// CUcomputemode; see `held_by_other_process`), or `None`.
    #[must_use]
    pub fn refuses_context(&self) -> Option<i32> {
        match self.nvml.compute_mode {
            COMPUTE_MODE_PROHIBITED => Some(999),
            COMPUTE_MODE_EXCLUSIVE_PROCESS if self.held_by_other_process => {
                Some(self.exclusive_refusal_code)
            }
            _ => None,
        }
    }

    /// Bytes per second a copy inside device memory moves, counting reads
    /// and writes: `memory_copy_efficiency` of 2 transfers per clock ×
    /// NVML's current memory clock × bus width / 8 (a memory clock held
    /// down slows it, as on a real GPU).
    #[must_use]
    pub fn memory_bytes_per_second(&self) -> f64 {
        let n = &self.nvml;
        self.memory_copy_efficiency
            * 2.0
            * f64::from(n.memory_clock_mhz)
            * 1e6
            * f64::from(n.memory_bus_width_bits)
            / 8.0
    }

    /// Bytes per second a copy between host and device memory moves:
    /// `host_copy_efficiency` of the PCIe link under load, per direction
    /// (PCI-SIG's rates: 2.5 and 5 GT/s with 8b/10b coding for gen 1 and 2,
    /// 8, 16 and 32 GT/s with 128b/130b for gen 3 to 5, 64 GT/s FLIT mode
    /// for gen 6), times its lanes, over 8 bits.
    #[must_use]
    pub fn host_bytes_per_second(&self) -> f64 {
        let link = self.nvml.pcie.load;
        let per_lane = match link.generation {
            1 => 2.5e9 * 0.8,
            2 => 5e9 * 0.8,
            3 => 8e9 * 128.0 / 130.0,
            4 => 16e9 * 128.0 / 130.0,
            5 => 32e9 * 128.0 / 130.0,
            _ => 64e9,
        };
        self.host_copy_efficiency * per_lane * f64::from(link.width) / 8.0
    }
}

/// One state of a PCIe link.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub generation: u32,
    pub width: u32,
}

/// A GPU's PCIe link: NVML's current generation and width are the `idle`
/// state while no work is queued on the GPU and the `load` state while
/// some is (nvidia-smi(1), "Link Width/Generation": the current values
/// "may be reduced when the GPU is not in use"); `max` is what the device
/// and its slot support (nvmlDeviceGetMaxPcieLinkGeneration/Width).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pcie {
    pub idle: Link,
    pub load: Link,
    pub max: Link,
    /// How long, in ms of wall time, work must have been queued on an idle
    /// GPU before its link reaches the `load` state; before that NVML still
    /// reads the `idle` one. The link's generation follows the GPU's
    /// performance state, which the driver raises with load and not
    /// instantly (NVIDIA/open-gpu-kernel-modules#731: P8 at Gen1, P0 at
    /// Gen3 and up; ../shared/FACTS.md section 12). Users report the
    /// retrain as quick ("under load the link immediately retrains",
    /// open-gpu-kernel-modules#1010) without a number: the default, 50 ms,
    /// stands for a few of the driver's performance-state samples and is
    /// unconfirmed on a real GPU (docs/gpu-validation.md).
    pub ramp_ms: f64,
}

impl Default for Pcie {
    /// A Gen5 x16 link that stays up at idle (a link with power management
    /// off); a scenario states an idle link that trains down.
    fn default() -> Self {
        let full = Link {
            generation: 5,
            width: 16,
        };
        Pcie {
            idle: full,
            load: full,
            max: full,
            ramp_ms: 50.0,
        }
    }
}

/// NVML readings of one device; `not_supported` names fields whose getter
/// returns NVML_ERROR_NOT_SUPPORTED, and `lost` makes every getter return
/// NVML_ERROR_GPU_IS_LOST.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceNvml {
    pub temperature_celsius: u32,
    pub power_draw_watts: f64,
    /// What the board draws with nothing queued (never above
    /// `power_draw_watts`).
    pub power_idle_watts: f64,
    /// The enforced limit (nvmlDeviceGetEnforcedPowerLimit): what the
    /// board holds now, lowered by `nvidia-smi -pl` or a job left behind.
    pub power_limit_watts: f64,
    /// The board's default limit (nvmlDeviceGetPowerManagementDefaultLimit:
    /// "the default power management limit on this device"); the
    /// enforced one when absent.
    pub power_default_limit_watts: Option<f64>,
    pub utilization_gpu_percent: u32,
    pub utilization_memory_percent: u32,
    /// The SM clock while the GPU works (or held down, by a phase).
    pub sm_clock_mhz: u32,
    /// The SM clock with nothing queued: a GPU clocks down when idle and
    /// reports the GpuIdle reason (nvml.h, nvmlClocksEventReasonGpuIdle,
    /// "Nothing is running on the GPU and the clocks are dropping to Idle
    /// state"); one H200 read 345 MHz idle and 1980 MHz right after load
    /// (../shared/FACTS.md section 12). Never above `sm_clock_mhz`.
    pub sm_clock_idle_mhz: u32,
    pub sm_clock_max_mhz: u32,
    pub memory_clock_mhz: u32,
    pub memory_clock_max_mhz: u32,
    pub memory_bus_width_bits: u32,
    pub pcie: Pcie,
    pub ecc_enabled: bool,
    pub ecc_uncorrected_volatile: u64,
    pub ecc_uncorrected_aggregate: u64,
    pub ecc_corrected_volatile: u64,
    /// nvmlDeviceGetPcieReplayCounter before any work: the link's replays
    /// since the driver loaded ("For Kepler or newer fully supported
    /// devices", NVML API Reference).
    pub pcie_replay_counter: u64,
    /// nvmlDeviceGetSramEccErrorStatus's volatile counts (drivers from
    /// R535: the symbol is in NVIDIA's 535 and 550 libraries, not in 470):
    /// `volatileCor`, and `volatileUncSecDed` (the parity count is 0).
    pub sram_corrected_volatile: u64,
    pub sram_uncorrected_volatile: u64,
    /// How fast the error counters grow while the GPU works, per second of
    /// its work (`rm::worked_ms`, the summed time of its launches); all 0
    /// (flat) by default. PCIe replays are the link layer resending a TLP
    /// whose LCRC failed or whose ACK timed out (PCI Express Base
    /// Specification, Data Link Layer "Retry"), so they happen only with
    /// traffic on the link; ECC errors are counted when the memory is read
    /// (NVIDIA, GPU Memory Error Management). A marginal link or a weak
    /// memory cell therefore adds to its counter as the GPU works, and an
    /// idle GPU's counters stay where they are.
    pub counters_per_work_second: CounterGrowth,
    /// nvmlDeviceGetUnrepairableMemoryFlag_v1: the driver knows of memory
    /// it cannot repair ("to report whether or not there is unrepairable
    /// memory", NVML's changes between v580 and v590: drivers from R590;
    /// older `nvml.driver_version`s lack the symbol).
    pub unrepairable_memory: bool,
    pub retired_pages_pending: bool,
    pub remapped_rows_pending: bool,
    pub remapped_rows_failure: bool,
    pub remapped_rows_uncorrectable: u32,
    /// nvmlClocksThrottleReasons bits.
    pub throttle_reasons: u64,
    pub persistence_mode: bool,
    /// nvmlComputeMode_t: 0 default, 2 prohibited, 3 exclusive process.
    pub compute_mode: u32,
    pub mig_mode: bool,
    /// MIG mode after the next GPU reset (nvmlDeviceGetMigMode's pending
    /// mode): a change made with `nvidia-smi -mig` "is pending until the
    /// GPU is reset" (NVIDIA MIG user guide); absent, `mig_mode`.
    pub mig_pending: Option<bool>,
    /// ECC after the next reset or reboot (nvmlDeviceGetEccMode's pending
    /// mode: `nvidia-smi -e` takes effect "after the next reboot", NVML
    /// reference, nvmlDeviceSetEccMode); absent, `ecc_enabled`.
    pub ecc_pending: Option<bool>,
    /// The graphics applications clock now (nvmlDeviceGetApplicationsClock),
    /// as `nvidia-smi -ac MEM,GRAPHICS` left it; absent, the default.
    pub applications_clock_mhz: Option<u32>,
    /// The default graphics applications clock
    /// (nvmlDeviceGetDefaultApplicationsClock, restored by `nvidia-smi
    /// -rac`); absent, `sm_clock_max_mhz`. Boards differ (an A100's is
    /// 1155 MHz below its 1410 MHz boost: ../shared/FACTS.md section 12),
    /// so a scenario about applications clocks states it.
    pub applications_clock_default_mhz: Option<u32>,
    /// The memory applications clock now; absent, the default, which is
    /// `memory_clock_max_mhz` (memory runs at one clock under load).
    pub applications_memory_clock_mhz: Option<u32>,
    /// Readings whose getters answer NVML_ERROR_NOT_SUPPORTED (any of
    /// `nvml::Field`, e.g. "power_draw_watts", "ecc").
    #[serde(deserialize_with = "not_supported")]
    pub not_supported: Vec<crate::nvml::Field>,
    pub lost: bool,
    /// The GPU's registration with the NVLink fabric of an NVSwitch system
    /// (nvmlDeviceGetGpuFabricInfo(V)); absent: on no fabric
    /// (NVML_GPU_FABRIC_STATE_NOT_SUPPORTED, or NVML_ERROR_NOT_SUPPORTED
    /// before Hopper: the calls are "for Hopper or newer fully supported
    /// devices", NVML API Reference). Until every GPU's registration has
    /// completed without error, cuInit answers CUDA_ERROR_SYSTEM_NOT_READY
    /// (802), as on an HGX whose fabric manager is not running
    /// (../shared/FACTS.md section 13).
    pub fabric: Option<Fabric>,
    /// NVML_FI_DEV_GET_GPU_RECOVERY_ACTION (nvml.h's
    /// nvmlDeviceGpuRecoveryAction_t: 0 none, 1 GPU reset, 2 node reboot,
    /// 3 drain P2P, 4 drain and reset), which drivers from R565 report;
    /// older drivers (`nvml.driver_version`) answer the field
    /// NVML_ERROR_NOT_SUPPORTED. Absent on a newer driver: 0.
    pub recovery_action: Option<u32>,
    /// Events the driver raises on this GPU, each `after_ms` of wall time
    /// after NVML was first initialised (`crate::nvml_events`): an
    /// application that registered for the kind before then gets it from
    /// nvmlEventSetWait; one that registered after never does (NVML
    /// delivers no event from before registration).
    pub events: Vec<ScheduledEvent>,
    /// The GPU falls off the bus this long (wall time, ms) after NVML was
    /// first initialised: from then on every NVML getter and the event wait
    /// answer NVML_ERROR_GPU_IS_LOST, as for `lost` (Xid 79; the Xid event
    /// itself may or may not arrive first: list it in `events` when it does).
    pub lost_after_ms: Option<f64>,
}

/// `DeviceNvml::counters_per_work_second`: each counter's growth per
/// second of the GPU's work.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CounterGrowth {
    pub pcie_replays: f64,
    pub ecc_corrected: f64,
    pub sram_corrected: f64,
    pub sram_uncorrected: f64,
}

impl CounterGrowth {
    /// What a counter growing at `per_second` has added after `worked_ms`.
    #[must_use]
    pub fn added(per_second: f64, worked_ms: f64) -> u64 {
        (per_second.max(0.0) * worked_ms.max(0.0) / 1e3).floor() as u64
    }
}

/// One event of `DeviceNvml::events`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledEvent {
    pub after_ms: f64,
    pub kind: EventKind,
    /// The Xid, for `critical_xid` (nvmlEventData_t::eventData).
    #[serde(default)]
    pub xid: Option<u64>,
}

/// The NVML event types the fake raises (nvmlEventType*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CriticalXid,
    DoubleBitEcc,
    SingleBitEcc,
    ClockChange,
}

impl EventKind {
    /// nvmlEventType* bit.
    #[must_use]
    pub fn bit(self) -> u64 {
        match self {
            EventKind::SingleBitEcc => 0x1,
            EventKind::DoubleBitEcc => 0x2,
            EventKind::CriticalXid => 0x8,
            EventKind::ClockChange => 0x10,
        }
    }
}

/// `DeviceNvml::fabric`: nvmlGpuFabricInfo_v2_t's state, status and
/// health mask.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub state: FabricState,
    /// The registration's nvmlReturn_t, once `completed` (0: success).
    #[serde(default)]
    pub status: i32,
    /// NVML_GPU_FABRIC_HEALTH_MASK_* fields (drivers from R550).
    #[serde(default)]
    pub health_mask: u32,
}

/// nvmlGpuFabricState_t, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FabricState {
    NotStarted,
    InProgress,
    Completed,
}

impl FabricState {
    /// NVML_GPU_FABRIC_STATE_*.
    #[must_use]
    pub fn value(self) -> u8 {
        match self {
            FabricState::NotStarted => 1,
            FabricState::InProgress => 2,
            FabricState::Completed => 3,
        }
    }
}

impl Fabric {
    /// Whether CUDA may start work on this GPU: registered, without error.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.state == FabricState::Completed && self.status == 0
    }
}

/// nvmlClocksEventReasonGpuIdle and nvmlClocksEventReasonSwPowerCap
/// (nvml.h).
const GPU_IDLE: u64 = 0x1;
const SW_POWER_CAP: u64 = 0x4;

impl DeviceNvml {
    /// The readings of this GPU with nothing queued on it: its SM clock
    /// down to the idle clock and GpuIdle among the reasons.
    #[must_use]
    pub fn idle(&self) -> DeviceNvml {
        let mut n = self.clone();
        n.sm_clock_mhz = n.sm_clock_idle_mhz.min(n.sm_clock_mhz);
        // No load, no power to cap: an idle GPU draws little and reports
        // no software power cap.
        n.power_draw_watts = n.power_idle_watts.min(n.power_draw_watts);
        n.throttle_reasons = (n.throttle_reasons & !SW_POWER_CAP) | GPU_IDLE;
        n
    }
}

/// The default board: an H100 SXM5 (700 W) drawing 72.5 W.
const DEFAULT_POWER_DRAW_WATTS: f64 = 72.5;
const DEFAULT_POWER_LIMIT_WATTS: f64 = 700.0;

impl Default for DeviceNvml {
    /// An H100 SXM5's readings (NVIDIA H100 datasheet: 1980 MHz boost,
    /// 5120-bit HBM3 at 2619 MHz, 700 W, PCIe Gen5 x16): what a device
    /// whose model `crate::models` does not know reads
    /// (`Scenario::resolve_models`).
    fn default() -> Self {
        DeviceNvml {
            temperature_celsius: 34,
            power_draw_watts: DEFAULT_POWER_DRAW_WATTS,
            power_idle_watts: DEFAULT_POWER_DRAW_WATTS,
            power_limit_watts: DEFAULT_POWER_LIMIT_WATTS,
            power_default_limit_watts: None,
            utilization_gpu_percent: 0,
            utilization_memory_percent: 0,
            sm_clock_mhz: 1980,
            sm_clock_idle_mhz: 345,
            sm_clock_max_mhz: 1980,
            memory_clock_mhz: 2619,
            memory_clock_max_mhz: 2619,
            memory_bus_width_bits: 5120,
            pcie: Pcie::default(),
            ecc_enabled: true,
            ecc_uncorrected_volatile: 0,
            ecc_uncorrected_aggregate: 0,
            ecc_corrected_volatile: 0,
            pcie_replay_counter: 0,
            sram_corrected_volatile: 0,
            sram_uncorrected_volatile: 0,
            counters_per_work_second: CounterGrowth::default(),
            unrepairable_memory: false,
            retired_pages_pending: false,
            remapped_rows_pending: false,
            remapped_rows_failure: false,
            remapped_rows_uncorrectable: 0,
            throttle_reasons: 0,
            persistence_mode: true,
            compute_mode: 0,
            mig_mode: false,
            mig_pending: None,
            ecc_pending: None,
            applications_clock_mhz: None,
            applications_clock_default_mhz: None,
            applications_memory_clock_mhz: None,
            not_supported: Vec::new(),
            lost: false,
            fabric: None,
            recovery_action: None,
            events: Vec::new(),
            lost_after_ms: None,
        }
    }
}

fn default_watchdog_ms() -> f64 {
    2000.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The entry point, e.g. "cuInit" or "cuMemAlloc_v2" (any of
    /// `cuda::Call`: what the fake exports).
    #[serde(deserialize_with = "fault_call")]
    pub call: Call,
    /// Only calls on this device (CUDA ordinal); all devices when absent.
    #[serde(default)]
    pub device: Option<usize>,
    /// The CUresult the call returns.
    #[serde(default)]
    pub result: Option<i32>,
    /// The call never returns.
    #[serde(default)]
    pub hang: bool,
    /// What a hang holds: the driver's global lock (`driver`, the
    /// default: a wedged kernel module, where every later call of every
    /// GPU, NVML's and the exit-time destructors wait too), or only its
    /// own GPU (`gpu`: a kernel that never finishes, so a wait on that
    /// GPU never returns while the driver serves the other GPUs).
    #[serde(default)]
    pub hang_scope: HangScope,
    /// The call succeeds but one element of what it copies back comes back
    /// wrong, as from a bad memory cell or a faulty ALU; only for
    /// cuMemcpyDtoH_v2.
    #[serde(default)]
    pub corrupt: Option<Corruption>,
    /// Calls that succeed before the fault starts.
    #[serde(default)]
    pub after: u32,
    /// How many calls the fault lasts once it starts; the calls after
    /// them succeed again: a fault that comes and goes, as a marginal
    /// link or a neighbour's transient load does between one monitoring
    /// cycle and the next. Absent: every later call.
    #[serde(default)]
    pub times: Option<u32>,
}

/// `Fault::hang_scope`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangScope {
    #[default]
    Driver,
    Gpu,
}

/// How one element of a device-to-host copy goes wrong: the faults a GPU
/// shows when nothing on the path corrects them (ECC off, or an error in
/// logic rather than memory): a flipped bit, a cell stuck at zero, a NaN
/// from a faulty unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// The lowest mantissa bit flipped: a last-place error.
    LowMantissaBit,
    /// The top exponent bit flipped: far outside any tolerance.
    ExponentBit,
    /// The element reads as zero (a stuck cell); a zero is only visible
    /// where the value was not zero, so the first such element is hit.
    Zero,
    /// The element reads as a quiet NaN.
    Nan,
}

impl Corruption {
    /// The 32-bit word after the corruption.
    #[must_use]
    pub fn apply(self, word: u32) -> u32 {
        match self {
            Corruption::LowMantissaBit => word ^ 1,
            Corruption::ExponentBit => word ^ (1 << 30),
            Corruption::Zero => 0,
            Corruption::Nan => 0x7FC0_0000,
        }
    }
}

impl Scenario {
    /// Reads and checks the scenario file at `path`: what `fakegpu check`,
    /// `fakegpu prepare` and both fake libraries at run time all call, so
    /// each accepts and rejects the same files. An error starts with the
    /// path (and the line and column, where the JSON locates it) and names
    /// the key.
    pub fn load(path: &str) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let scenario: Scenario = serde_json::from_str(&text).map_err(|e| {
            // serde_json ends its message with " at line L column C"; the
            // place goes first, as a compiler's would.
            let message = e.to_string();
            let at = format!(" at line {} column {}", e.line(), e.column());
            match message.strip_suffix(&at) {
                Some(message) => format!("{path}:{}:{}: {message}", e.line(), e.column()),
                None => format!("{path}: {message}"),
            }
        })?;
        let mut scenario = scenario;
        // The same text parsed again, to tell a stated reading from a
        // defaulted one (serde's defaults cannot).
        let raw: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        scenario.resolve_models(&raw);
        scenario.validate().map_err(|e| format!("{path}: {e}"))?;
        Ok(scenario)
    }

    /// Gives each device the NVML readings of its model (`crate::models`)
    /// where the scenario states none: a V100 reads a V100's clocks, bus,
    /// power limit and link. `raw` is the file as JSON, to tell what it
    /// states. A model not in the table keeps `DeviceNvml::default()`, an
    /// H100 SXM5's readings, as every device had before the table.
    fn resolve_models(&mut self, raw: &serde_json::Value) {
        for (i, d) in self.devices.iter_mut().enumerate() {
            let Some(model) = crate::models::model(&d.name) else {
                continue;
            };
            let stated_nvml = &raw["devices"][i]["nvml"];
            let stated = |key: &str| stated_nvml.get(key).is_some();
            let n = &mut d.nvml;
            if !stated("sm_clock_max_mhz") {
                n.sm_clock_max_mhz = model.sm_clock_max_mhz;
            }
            // A GPU at work runs at its boost clock unless held down.
            if !stated("sm_clock_mhz") {
                n.sm_clock_mhz = n.sm_clock_max_mhz;
            }
            if !stated("memory_clock_max_mhz") {
                n.memory_clock_max_mhz = model.memory_clock_mhz;
            }
            if !stated("memory_clock_mhz") {
                n.memory_clock_mhz = n.memory_clock_max_mhz;
            }
            if !stated("memory_bus_width_bits") {
                n.memory_bus_width_bits = model.memory_bus_width_bits;
            }
            if !stated("power_limit_watts") {
                n.power_limit_watts = model.power_limit_watts;
            }
            // No datasheet gives a board's draw with nothing queued: the
            // default H100's 72.5 W of 700 W, as a share of the limit.
            let share = DEFAULT_POWER_DRAW_WATTS / DEFAULT_POWER_LIMIT_WATTS;
            if !stated("power_draw_watts") {
                n.power_draw_watts = n.power_limit_watts * share;
            }
            if !stated("power_idle_watts") {
                n.power_idle_watts = n.power_limit_watts * share;
            }
            let link = Link {
                generation: model.pcie_generation,
                width: model.pcie_width,
            };
            let stated_pcie = &stated_nvml["pcie"];
            for (key, state) in [
                ("idle", &mut n.pcie.idle),
                ("load", &mut n.pcie.load),
                ("max", &mut n.pcie.max),
            ] {
                if stated_pcie.get(key).is_none() {
                    *state = link;
                }
            }
            // A board without ECC memory answers NOT_SUPPORTED for its ECC
            // mode and counters, unless the scenario says otherwise.
            if !model.ecc && !stated("ecc_enabled") && !n.not_supported.contains(&Field::Ecc) {
                n.ecc_enabled = false;
                n.not_supported.push(Field::Ecc);
            }
        }
    }

    /// How long the first cuInit takes (`cu_init_ms`, or its default by
    /// the GPUs' persistence mode), ms.
    #[must_use]
    pub fn cu_init_ms(&self) -> f64 {
        self.cu_init_ms.unwrap_or_else(|| {
            let cold = self
                .devices
                .iter()
                .filter(|d| {
                    !d.nvml.persistence_mode
                        && !d.held_by_other_process
                        && d.other_processes.is_empty()
                })
                .count();
            INIT_MS_PER_COLD_GPU * cold as f64
        })
    }

    /// What the fake libcuda exports for this scenario: every entry point
    /// but its `missing_symbols`.
    #[must_use]
    pub fn cuda_exports(&self) -> Vec<&'static str> {
        Call::ALL
            .iter()
            .filter(|c| !self.missing_symbols.contains(c))
            .map(|c| c.name())
            .collect()
    }

    /// The device nodes laid out under /dev: `host.dev`, or by default
    /// nvidiactl, nvidia-uvm, nvidia-uvm-tools and nvidiaN for each device.
    #[must_use]
    pub fn dev_nodes(&self) -> Vec<String> {
        self.host.dev.clone().unwrap_or_else(|| {
            let mut v: Vec<String> = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]
                .map(String::from)
                .to_vec();
            v.extend((0..self.devices.len()).map(|i| format!("nvidia{i}")));
            v
        })
    }

    fn validate(&self) -> Result<(), String> {
        self.validate_names()?;
        if let Some(ms) = self.cu_init_ms {
            if !(ms.is_finite() && ms >= 0.0) {
                return Err(format!("cu_init_ms: {ms} is not a time"));
            }
        }
        self.peer.validate(self.devices.len())?;
        if let Some(c) = &self.cublas {
            if !c.soname.starts_with("libcublas.so") || c.soname.contains('/') {
                return Err(format!("cublas.soname {:?} is no libcublas name", c.soname));
            }
            if !c.site_packages.starts_with('/') {
                return Err(format!(
                    "cublas.site_packages {:?} is not an absolute path",
                    c.site_packages
                ));
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            parse_uuid(&d.uuid)
                .ok_or_else(|| format!("devices[{i}].uuid: bad uuid {:?}", d.uuid))?;
            for (key, e) in [
                ("memory_copy_efficiency", d.memory_copy_efficiency),
                ("host_copy_efficiency", d.host_copy_efficiency),
            ] {
                if !(e > 0.0 && e <= 1.0) {
                    return Err(format!("devices[{i}].{key}: {e} is not in (0, 1]"));
                }
            }
            for (j, f) in d.memory_faults.iter().enumerate() {
                f.validate()
                    .map_err(|e| format!("devices[{i}].memory_faults[{j}]: {e}"))?;
            }
            let ramp = d.nvml.pcie.ramp_ms;
            if !(ramp.is_finite() && ramp >= 0.0) {
                return Err(format!(
                    "devices[{i}].nvml.pcie.ramp_ms: {ramp} is not a time in ms"
                ));
            }
            if !d.mig_instances.is_empty() && !d.nvml.mig_mode {
                return Err(format!(
                    "devices[{i}].mig_instances: MIG instances, but nvml.mig_mode is off"
                ));
            }
            for (j, m) in d.mig_instances.iter().enumerate() {
                if !m.uuid.starts_with("MIG-") || parse_uuid(&m.uuid).is_none() {
                    return Err(format!(
                        "devices[{i}].mig_instances[{j}].uuid: bad MIG uuid {:?}",
                        m.uuid
                    ));
                }
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            let kinds = usize::from(f.result.is_some())
                + usize::from(f.hang)
                + usize::from(f.corrupt.is_some());
            if kinds != 1 {
                return Err(format!(
                    "faults[{i}] (on {}): needs exactly one of result, hang and corrupt",
                    f.call
                ));
            }
            if f.corrupt.is_some() && f.call != Call::cuMemcpyDtoH_v2 {
                return Err(format!(
                    "faults[{i}].corrupt: applies to cuMemcpyDtoH_v2, not {}",
                    f.call
                ));
            }
            if let Some(dev) = f.device {
                if dev >= self.devices.len() {
                    return Err(format!(
                        "faults[{i}].device: {dev}, but the scenario has {} devices",
                        self.devices.len()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The names checked against what the scenario itself makes (the
    /// kernels the emulator runs, the nodes laid out); the fixed sets are
    /// checked as the file is read (`crate::names`).
    fn validate_names(&self) -> Result<(), String> {
        if let Some(bug) = &self.kernel_bug {
            // Any start of a kernel's name is one; the whole names are listed.
            let kernels = crate::cuda::KERNELS;
            if !kernels.iter().any(|k| k.starts_with(&bug.kernel)) {
                return Err(names::unknown(
                    "kernel_bug.kernel",
                    "start of a kernel name",
                    &bug.kernel,
                    kernels,
                ));
            }
        }
        // A node that is not laid out would be denied, or driverless, nowhere.
        let nodes = self.dev_nodes();
        let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
        for (key, listed) in [
            ("host.dev_unopenable", &self.host.dev_unopenable),
            ("host.dev_without_driver", &self.host.dev_without_driver),
        ] {
            if let Some(node) = listed.iter().find(|n| !nodes.contains(&n.as_str())) {
                return Err(names::unknown(key, "device node", node, &nodes));
            }
        }
        Ok(())
    }
}

/// "GPU-" (or "MIG-" for a MIG instance) followed by 32 hex digits in
/// 8-4-4-4-12 groups, to 16 bytes.
#[must_use]
pub fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text
        .strip_prefix("GPU-")
        .or_else(|| text.strip_prefix("MIG-"))?
        .chars()
        .filter(|c| *c != '-')
        .collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
