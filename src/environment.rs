//! The container as seen from inside: NVIDIA device nodes, the variables that
//! decide GPU access, the kernel module's version, the library path, and on
//! Windows what the GPU device class brings in (NVIDIA Container Toolkit and Microsoft's GPU-in-Windows-containers documentation).
//!
//! Everything is read relative to a root, "/" in production. Tests point it
//! elsewhere with GPUPROBE_TEST_ROOT, the one test-only setting (README,
//! "Tests"), to give gpuprobe a fake /dev and /proc. Nothing here fails:
//! unreadable or garbage input becomes a finding.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::report::{
    DeviceNode, Environment, EnvironmentTrap, LibraryOrigin, NodeError, Sandbox, TrapVariable,
    Variable, WindowsEnvironment,
};

/// The variables reported and diagnosed.
pub const VARIABLES: [&str; 5] = [
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "NVIDIA_REQUIRE_CUDA",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
];

/// The longest value a trap reports, in characters.
const TRAP_VALUE_CHARS: usize = 256;

/// The variables of `TrapVariable` that are set in a way that changes
/// CUDA's behaviour, as `lookup` (the process's environment) gives them.
///
/// The switches (the debugger, core dumps, waiting on an exception, the
/// legacy profilers, blocking launches) are off at `0`, their documented
/// default (CUDA Programming Guide, "CUDA Environment Variables"), and
/// when empty; any other value is reported, as is any non-empty injection
/// path, core dump file or CUDA_AUTO_BOOST (either value overrides the
/// GPU's own setting). DCGM's diagnostic warns whenever one is set at all
/// (NVIDIA/DCGM, nvvs/plugin_src/software/Software.cpp); a documented
/// "off" is not reported here. CUDA_MPS_PIPE_DIRECTORY is reported when
/// it names a directory without MPS's control socket (`mps_control_socket`).
/// Never fails: a value that is not UTF-8 is shown lossily.
#[must_use]
pub fn traps(
    root: &Path,
    lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<EnvironmentTrap> {
    TrapVariable::ALL
        .into_iter()
        .filter_map(|variable| {
            let raw = lookup(variable.as_str())?;
            let value = raw.to_string_lossy();
            let value = value.trim();
            let set = match variable {
                TrapVariable::CudaInjection32Path
                | TrapVariable::CudaInjection64Path
                | TrapVariable::CudaCoredumpFile
                | TrapVariable::CudaAutoBoost => !value.is_empty(),
                TrapVariable::CudaMpsPipeDirectory => {
                    !value.is_empty() && !mps_control_socket(root, Path::new(value))
                }
                TrapVariable::NsightCudaDebugger
                | TrapVariable::CudaEnableCoredumpOnException
                | TrapVariable::CudaDeviceWaitsOnException
                | TrapVariable::CudaProfile
                | TrapVariable::ComputeProfile
                | TrapVariable::OpenclProfile
                | TrapVariable::CudaLaunchBlocking => !value.is_empty() && value != "0",
            };
            set.then(|| EnvironmentTrap {
                variable,
                value: value.chars().take(TRAP_VALUE_CHARS).collect(),
            })
        })
        .collect()
}

/// Whether the MPS pipe directory `dir` (under `root` when absolute)
/// holds the control daemon's socket, `control`: the UNIX domain socket
/// nvidia-cuda-mps-control creates there, which a CUDA process connects to
/// at initialisation; when the connection fails "the program continues to
/// run as it normally would without MPS" (nvidia-cuda-mps-control(1);
/// NVIDIA MPS documentation, CUDA_MPS_PIPE_DIRECTORY). The daemon usually
/// runs in another container (the device plugin's), so the socket is what
/// can be seen, not the process; only its file type is checked (no
/// connection is made, which the daemon would log): a socket left by a
/// daemon that died cannot be told from a live one. Windows has no MPS.
fn mps_control_socket(root: &Path, dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        let dir = match dir.strip_prefix("/") {
            Ok(relative) => root.join(relative),
            Err(_) => dir.to_path_buf(),
        };
        std::fs::metadata(dir.join("control")).is_ok_and(|m| m.file_type().is_socket())
    }
    #[cfg(not(unix))]
    {
        let _ = (root, dir);
        false
    }
}

/// Where to look: "/" on Linux, the system drive (%SystemDrive%, `C:` in a
/// Windows container) on Windows, unless the test-only GPUPROBE_TEST_ROOT
/// says otherwise.
#[must_use]
pub fn root() -> PathBuf {
    if let Some(root) = std::env::var_os("GPUPROBE_TEST_ROOT") {
        return PathBuf::from(root);
    }
    if cfg!(windows) {
        let drive = std::env::var("SystemDrive")
            .ok()
            .filter(|d| d.len() == 2 && d.ends_with(':'))
            .unwrap_or_else(|| "C:".into());
        PathBuf::from(format!("{drive}\\"))
    } else {
        PathBuf::from("/")
    }
}

/// nvml.dll as a Windows container gets it: in System32 where the runtime
/// copied it, else in the host driver store's FileRepository folder of the
/// NVIDIA display driver package (`nv*.inf_amd64_*`), which the GPU device
/// class maps into the container (Microsoft, "GPU acceleration in Windows
/// containers"). The first such folder by name when there are several.
#[must_use]
pub fn windows_nvml_dll(root: &Path) -> Option<PathBuf> {
    let system32 = root.join("Windows").join("System32");
    let direct = system32.join("nvml.dll");
    if direct.is_file() {
        return Some(direct);
    }
    let repository = system32.join("HostDriverStore").join("FileRepository");
    let mut found: Vec<PathBuf> = std::fs::read_dir(repository)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            name.starts_with("nv") && name.contains(".inf_amd64_")
        })
        .map(|entry| entry.path().join("nvml.dll"))
        .filter(|path| path.is_file())
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Gathers the environment of this platform.
#[must_use]
pub fn gather(root: &Path, cuda_library: Option<&str>, nvml_library: Option<&str>) -> Environment {
    let mut env = Environment {
        variables: VARIABLES
            .iter()
            .filter_map(|name| {
                std::env::var_os(name).map(|v| Variable {
                    name: (*name).into(),
                    value: v.to_string_lossy().into_owned(),
                })
            })
            .collect(),
        cuda_library_version: cuda_library.and_then(library_version),
        traps: traps(root, |name| std::env::var_os(name)),
        ..Environment::default()
    };
    if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&path) {
            let text = dir.display().to_string();
            if text.contains("stubs") {
                env.library_path_stubs.push(text);
            } else if text.contains("compat") {
                env.library_path_compat.push(text);
            }
        }
    }
    if cfg!(windows) {
        env.windows = Some(gather_windows(root));
    } else {
        gather_linux(root, &mut env);
        let mounts = std::fs::read(root.join("proc/self/mountinfo"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        env.cuda_library_origin = cuda_library.map(|p| origin(mounts.as_deref(), p));
        env.cuda_forward_compat = cuda_library.is_some_and(|p| {
            forward_compat(
                p,
                &env.library_path_compat,
                env.cuda_library_version.as_deref(),
                env.kernel_module_version.as_deref(),
            )
        });
        env.nvml_library_origin = nvml_library.map(|p| origin(mounts.as_deref(), p));
    }
    env
}

/// Whether a library file was put into the container by the GPU runtime.
/// The NVIDIA Container Toolkit (and CDI) bind-mount each driver file from
/// the host, so the file is a mount point in /proc/self/mountinfo; GKE's
/// device plugin mounts the host's driver folder as a volume
/// (/usr/local/nvidia), under gVisor too, so a folder above the file is one;
/// a file installed in the image is under the container's root mount
/// alone.
#[must_use]
pub fn origin(mountinfo: Option<&str>, library: &str) -> LibraryOrigin {
    let Some(text) = mountinfo else {
        return LibraryOrigin::Unknown;
    };
    // Fields (proc(5)): id parent major:minor root mount-point options
    // [optional...] - fstype source super-options; spaces in paths are \040.
    let mounts: Vec<(String, &str)> = text
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let point = before.split(' ').nth(4)?.replace("\\040", " ");
            Some((point, after.split(' ').next().unwrap_or("")))
        })
        .collect();
    if mounts.iter().any(|(point, _)| point == library) {
        return LibraryOrigin::Injected;
    }
    let under_volume = mounts.iter().any(|(point, _)| {
        point != "/"
            && library
                .strip_prefix(point.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    });
    // A FUSE file system shows as "fuse.SUBTYPE" (proc(5)): rootless Docker
    // and Podman, and Docker on hosts without kernel overlay support, run on
    // fuse-overlayfs, which mountinfo lists as "fuse.fuse-overlayfs".
    let container_root = mounts.iter().any(|(point, fs)| {
        point == "/"
            && matches!(
                fs.strip_prefix("fuse.").unwrap_or(fs),
                "overlay" | "fuse-overlayfs" | "aufs" | "overlayfs" | "zfs" | "btrfs"
            )
    });
    if container_root && under_volume {
        LibraryOrigin::Injected
    } else if container_root {
        LibraryOrigin::Image
    } else {
        LibraryOrigin::Host
    }
}

/// The NVIDIA (and WSL2 /dev/dxg) device nodes under `root`/dev, sorted.
fn node_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("dev"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("nvidia") || n == "dxg")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The device nodes present before any driver library was loaded, once per
/// process (the driver stays loaded across `watch` cycles).
static NODES_BEFORE_DRIVER: OnceLock<Vec<String>> = OnceLock::new();

/// Notes which device nodes exist, before NVML or libcuda is loaded. Run as
/// root without the nodes, libcuda's cuInit creates /dev/nvidiactl itself
/// (mknod 195:255, as nvidia-modprobe does: NVIDIA's nvidia-modprobe
/// sources, `nvidia_mknod`), so a node seen after the driver ran is no sign
/// that the container runtime gave GPU access. Later calls keep the first
/// snapshot.
pub fn note_nodes_before_driver(root: &Path) {
    NODES_BEFORE_DRIVER.get_or_init(|| node_names(root));
}

/// The kind of an open(2) failure on a device node.
#[must_use]
pub fn node_error(error: &std::io::Error) -> NodeError {
    #[cfg(unix)]
    match error.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => return NodeError::PermissionDenied,
        Some(libc::ENXIO | libc::ENODEV) => return NodeError::NoDriver,
        _ => {}
    }
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        NodeError::PermissionDenied
    } else {
        NodeError::Other
    }
}

fn gather_linux(root: &Path, env: &mut Environment) {
    let dev = root.join("dev");
    let before = NODES_BEFORE_DRIVER.get();
    for name in node_names(root) {
        let path = dev.join(&name);
        // Opened as the driver opens them: a node the device cgroup does not
        // allow fails with EPERM, one with no kernel driver behind it with
        // ENXIO.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path);
        env.device_nodes.push(DeviceNode {
            path: format!("/dev/{name}"),
            openable: opened.is_ok(),
            error_kind: opened.as_ref().err().map(node_error),
            error: opened.err().map(|e| e.to_string()),
            created_during_run: before.is_some_and(|b| !b.contains(&name)),
        });
    }
    env.wsl = dev.join("dxg").exists() || root.join("usr/lib/wsl/lib").is_dir();
    env.sandbox = kernel_log(root).as_deref().and_then(sandbox);
    match std::fs::read(root.join("proc/driver/nvidia/version")) {
        Ok(bytes) => match kernel_module_version(&String::from_utf8_lossy(&bytes)) {
            Some(v) => env.kernel_module_version = Some(v),
            None => {
                env.kernel_module_error =
                    Some("/proc/driver/nvidia/version has no recognisable version".into());
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => env.kernel_module_error = Some(format!("/proc/driver/nvidia/version: {e}")),
    }
}

/// The sandbox a kernel log says the container runs in. gVisor's sentry
/// answers syslog(2) with a log of its own whose first record is "Starting
/// gVisor..." (gVisor, "Verify the runtime": `dmesg`; the sentry's
/// pkg/sentry/kernel/syslog.go writes it at 0.000000 s). gVisor warns that
/// the log is easily imitated: it names the sandbox in the report and
/// decides nothing that matters for security.
#[must_use]
pub fn sandbox(log: &str) -> Option<Sandbox> {
    // syslog(2) records: "<level>[seconds] message".
    let (_, message) = log.lines().next()?.split_once("] ")?;
    (message.trim_end() == "Starting gVisor...").then_some(Sandbox::Gvisor)
}

/// How many bytes of the kernel log to read: gVisor's whole log (a dozen
/// short lines), and a host's most recent records, which never start with
/// gVisor's.
#[cfg(any(target_os = "linux", target_os = "android"))]
const KERNEL_LOG_BYTES: usize = 4096;

/// The kernel log as syslog(2) SYSLOG_ACTION_READ_ALL gives it (what
/// `dmesg` reads): unprivileged in gVisor; on a host with
/// kernel.dmesg_restrict set, refused without CAP_SYSLOG, and then `None`.
/// Under a test root, that root's proc/kmsg, the file form of the same log
/// (proc(5): "can be used instead of the syslog(2) system call"), which the
/// real /proc/kmsg is never read as: a read there consumes the messages.
fn kernel_log(root: &Path) -> Option<String> {
    if root != Path::new("/") {
        return std::fs::read(root.join("proc/kmsg"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
    }
    read_syslog()
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_syslog() -> Option<String> {
    /// SYSLOG_ACTION_READ_ALL (syslog(2)): read the log, non-destructively.
    const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
    let mut buf = vec![0u8; KERNEL_LOG_BYTES];
    let len = libc::c_int::try_from(buf.len()).ok()?;
    // SAFETY: klogctl writes at most `len` bytes into `buf`, which holds
    // that many; it returns how many it wrote, or -1.
    let n = unsafe { libc::klogctl(SYSLOG_ACTION_READ_ALL, buf.as_mut_ptr().cast(), len) };
    let n = usize::try_from(n).ok()?;
    buf.truncate(n.min(KERNEL_LOG_BYTES));
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn read_syslog() -> Option<String> {
    None
}

/// The GPU device class maps the host's driver store into the container
/// (Microsoft, "GPU acceleration in Windows containers"); nothing is installed in the image.
#[must_use]
pub fn gather_windows(root: &Path) -> WindowsEnvironment {
    let system32 = root.join("Windows").join("System32");
    let find = |name: &str| {
        let path = system32.join(name);
        path.exists().then(|| path.display().to_string())
    };
    let host_driver_store = system32.join("HostDriverStore").is_dir();
    WindowsEnvironment {
        // Container images run as ContainerUser/ContainerAdministrator.
        container: host_driver_store
            || std::env::var("USERNAME").is_ok_and(|u| u.starts_with("Container"))
            || root.join("License.txt").exists(),
        host_driver_store,
        nvcuda_dll: find("nvcuda.dll"),
        nvml_dll: windows_nvml_dll(root).map(|p| p.display().to_string()),
    }
}

/// Memory this process can still take, bytes: the smaller of the kernel's
/// MemAvailable and what the container's cgroup limit leaves (v2, then v1).
/// `None` when neither can be read (not Linux).
#[must_use]
pub fn available_memory(root: &Path) -> Option<u64> {
    let read = |path: &str| std::fs::read_to_string(root.join(path)).ok();
    let meminfo = read("proc/meminfo").and_then(|t| {
        let line = t.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()
            .map(|kib| kib.saturating_mul(1024))
    });
    let number = |text: Option<String>| text.and_then(|t| t.trim().parse::<u64>().ok());
    let cgroup = match number(read("sys/fs/cgroup/memory.max")) {
        Some(limit) => {
            Some(limit.saturating_sub(number(read("sys/fs/cgroup/memory.current")).unwrap_or(0)))
        }
        // v1 reports "no limit" as a huge number, which min() then ignores.
        None => number(read("sys/fs/cgroup/memory/memory.limit_in_bytes")).map(|limit| {
            limit.saturating_sub(
                number(read("sys/fs/cgroup/memory/memory.usage_in_bytes")).unwrap_or(0),
            )
        }),
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the libcuda at `path` is a CUDA forward-compatibility library.
///
/// NVIDIA's cuda-compat package installs a libcuda newer than the host's
/// kernel module into the image, under /usr/local/cuda-X.Y/compat, and the
/// image puts that folder first on LD_LIBRARY_PATH (CUDA Compatibility
/// guide, "Forward Compatibility"); on data-center GPUs that is supported.
/// So: the library lies in a folder named `compat` or in an LD_LIBRARY_PATH
/// entry that names one, and is not older than or equal to the kernel
/// module (a compat library of the host's own version or older is no
/// upgrade, just a copy of a driver in the image).
#[must_use]
pub fn forward_compat(
    path: &str,
    path_compat: &[String],
    library_version: Option<&str>,
    kernel_version: Option<&str>,
) -> bool {
    let dir = Path::new(path).parent();
    let in_compat_folder = dir.is_some_and(|d| {
        d.components().any(|c| c.as_os_str() == "compat")
            || path_compat.iter().any(|entry| Path::new(entry) == d)
    });
    let newer = match (library_version, kernel_version) {
        (Some(lib), Some(kernel)) => version_key(lib) > version_key(kernel),
        _ => true,
    };
    in_compat_folder && newer
}

/// "570.86.10" as [570, 86, 10], for comparing driver versions.
fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// "550.54.15" from "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Thu Feb ...".
#[must_use]
pub fn kernel_module_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    line.split_whitespace()
        .find(|w| is_version(w))
        .map(String::from)
}

fn is_version(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// "550.54.15" from ".../libcuda.so.550.54.15" (the driver's own file name).
#[must_use]
pub fn library_version(path: &str) -> Option<String> {
    let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
    let version = name.strip_prefix("libcuda.so.")?;
    (is_version(version) && version.contains('.')).then(|| version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traps_are_what_changes_cuda_and_never_a_panic() {
        let root = tempfile::tempdir().unwrap();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(traps(root.path(), |_| None).is_empty());
        // Documented "off" values are no trap.
        assert!(traps(
            root.path(),
            env(&[
                ("CUDA_LAUNCH_BLOCKING", "0"),
                ("CUDA_PROFILE", " "),
                ("CUDA_INJECTION64_PATH", "")
            ])
        )
        .is_empty());
        let found = traps(
            root.path(),
            env(&[
                ("CUDA_LAUNCH_BLOCKING", "yes please"),
                ("CUDA_AUTO_BOOST", "0"),
                (
                    "CUDA_INJECTION64_PATH",
                    "/opt/nsight/libToolsInjection64.so",
                ),
            ]),
        );
        let names: Vec<&str> = found.iter().map(|t| t.variable.as_str()).collect();
        assert_eq!(
            names,
            [
                "CUDA_INJECTION64_PATH",
                "CUDA_AUTO_BOOST",
                "CUDA_LAUNCH_BLOCKING"
            ]
        );
        assert_eq!(found[2].value, "yes please");
        // Not UTF-8, and very long: shown lossily, cut.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let odd = traps(root.path(), |n| {
                (n == "CUDA_COREDUMP_FILE").then(|| std::ffi::OsString::from_vec(vec![0xff; 5000]))
            });
            assert_eq!(odd.len(), 1);
            assert_eq!(odd[0].value.chars().count(), TRAP_VALUE_CHARS);
        }
    }

    #[cfg(unix)]
    #[test]
    fn an_mps_pipe_directory_is_judged_by_its_control_socket() {
        let root = tempfile::tempdir().unwrap();
        let mps = |dir: &str| {
            let dir = dir.to_string();
            traps(root.path(), move |n| {
                (n == "CUDA_MPS_PIPE_DIRECTORY").then(|| dir.clone().into())
            })
        };
        std::fs::create_dir_all(root.path().join("tmp/nvidia-mps")).unwrap();
        assert_eq!(mps("/tmp/nvidia-mps").len(), 1, "no socket");
        std::fs::write(root.path().join("tmp/nvidia-mps/control"), b"").unwrap();
        assert_eq!(mps("/tmp/nvidia-mps").len(), 1, "a plain file is no socket");
        std::fs::remove_file(root.path().join("tmp/nvidia-mps/control")).unwrap();
        let _listener =
            std::os::unix::net::UnixListener::bind(root.path().join("tmp/nvidia-mps/control"))
                .unwrap();
        assert!(mps("/tmp/nvidia-mps").is_empty(), "the control socket");
        assert_eq!(mps("/nonexistent").len(), 1);
        assert!(mps("").is_empty(), "empty: CUDA's default directory");
    }

    #[test]
    fn kernel_module_versions() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Thu Feb 22 01:44:30 UTC 2024\nGCC version: gcc 12";
        assert_eq!(kernel_module_version(text).as_deref(), Some("550.54.15"));
        let open =
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.104.05  Release Build";
        assert_eq!(kernel_module_version(open).as_deref(), Some("535.104.05"));
        assert_eq!(kernel_module_version("\u{0}\u{1}garbage"), None);
        assert_eq!(kernel_module_version("NVRM version: none here"), None);
    }

    #[test]
    fn forward_compat_libraries_are_told_from_baked_in_drivers() {
        let compat = "/usr/local/cuda-12.8/compat/libcuda.so.570.86.10";
        assert!(forward_compat(
            compat,
            &[],
            Some("570.86.10"),
            Some("535.104.05")
        ));
        // Unknown versions: the folder decides.
        assert!(forward_compat(compat, &[], None, Some("535.104.05")));
        // A compat folder on the path under another name.
        let lib = "/opt/cuda-fc/lib/libcuda.so.570.86.10";
        assert!(forward_compat(
            lib,
            &["/opt/cuda-fc/lib".into()],
            Some("570.86.10"),
            Some("550.54.15")
        ));
        // Not newer than the kernel module: no upgrade.
        assert!(!forward_compat(
            compat,
            &[],
            Some("535.104.05"),
            Some("535.104.05")
        ));
        assert!(!forward_compat(
            compat,
            &[],
            Some("525.60.13"),
            Some("550.54.15")
        ));
        // A driver library of the image elsewhere.
        assert!(!forward_compat(
            "/usr/lib/x86_64-linux-gnu/libcuda.so.570.86.10",
            &[],
            Some("570.86.10"),
            Some("535.104.05")
        ));
        // Numeric, not text, order.
        assert!(forward_compat(
            compat,
            &[],
            Some("1000.1.1"),
            Some("999.9.9")
        ));
    }

    #[test]
    fn library_versions() {
        assert_eq!(
            library_version("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15").as_deref(),
            Some("550.54.15")
        );
        assert_eq!(library_version("/usr/lib/libcuda.so.1"), None);
        assert_eq!(library_version("/weird/libcuda.so.1.x"), None);
    }

    #[test]
    fn available_memory_takes_the_tighter_of_kernel_and_cgroup() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(available_memory(root.path()), None);
        std::fs::create_dir_all(root.path().join("proc")).unwrap();
        std::fs::write(
            root.path().join("proc/meminfo"),
            "MemTotal: 100 kB\nMemAvailable:    2048 kB\n",
        )
        .unwrap();
        assert_eq!(available_memory(root.path()), Some(2048 * 1024));
        std::fs::create_dir_all(root.path().join("sys/fs/cgroup")).unwrap();
        std::fs::write(root.path().join("sys/fs/cgroup/memory.max"), "1048576\n").unwrap();
        std::fs::write(root.path().join("sys/fs/cgroup/memory.current"), "24576\n").unwrap();
        assert_eq!(available_memory(root.path()), Some(1_048_576 - 24576));
        std::fs::write(root.path().join("sys/fs/cgroup/memory.max"), "max\n").unwrap();
        assert_eq!(
            available_memory(root.path()),
            Some(2048 * 1024),
            "no cgroup limit"
        );
        std::fs::write(root.path().join("proc/meminfo"), "garbage").unwrap();
        assert_eq!(available_memory(root.path()), None);
    }

    #[test]
    fn library_origins() {
        let info = "21 1 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/x\n\
                    32 21 259:2 /usr/lib/libcuda.so.550 /usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15 ro - ext4 /dev/sda rw\n";
        assert_eq!(
            origin(Some(info), "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"),
            LibraryOrigin::Injected
        );
        assert_eq!(
            origin(Some(info), "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"),
            LibraryOrigin::Image
        );
        assert_eq!(
            origin(
                Some("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"),
                "/usr/lib/libcuda.so.1"
            ),
            LibraryOrigin::Host
        );
        // Docker on fuse-overlayfs (seen here: rootless and fuse storage).
        let fuse = "69 45 0:39 / / rw,nodev,noatime master:2 - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0\n";
        assert_eq!(
            origin(Some(fuse), "/opt/nvidia/libcuda.so.1"),
            LibraryOrigin::Image
        );
        assert_eq!(
            origin(None, "/usr/lib/libcuda.so.1"),
            LibraryOrigin::Unknown
        );
        assert_eq!(origin(Some("garbage\n\u{0}"), "/x"), LibraryOrigin::Host);
        // GKE's device plugin mounts the host's driver folder as a volume
        // (here as gVisor lists its gofer mounts); a folder named like it
        // but not above the file is no such mount.
        let volume = "1 0 0:1 / / rw - overlay none rw
\
                      5 1 0:5 / /usr/local/nvidia ro - 9p none ro,trans=fd
";
        assert_eq!(
            origin(Some(volume), "/usr/local/nvidia/lib64/libcuda.so.1"),
            LibraryOrigin::Injected
        );
        assert_eq!(
            origin(Some(volume), "/usr/local/nvidia-old/libcuda.so.1"),
            LibraryOrigin::Image
        );
    }

    #[test]
    fn gvisor_is_told_by_the_first_record_of_its_kernel_log() {
        // pkg/sentry/kernel/syslog.go: "<6>[%11.6f] %s\n", first at 0.0.
        let gvisor = "<6>[   0.000000] Starting gVisor...\n<6>[   0.312345] Ready!\n";
        assert_eq!(sandbox(gvisor), Some(Sandbox::Gvisor));
        // A host's log that mentions it later, or another first record.
        assert_eq!(
            sandbox("<6>[    1.0] Linux version 6.8\n<6>[ 9.0] Starting gVisor...\n"),
            None
        );
        assert_eq!(sandbox(""), None);
        assert_eq!(sandbox("Starting gVisor..."), None);
    }

    #[test]
    fn the_real_kernel_log_is_read_without_panic() {
        // Refused (dmesg_restrict) or read: either is an answer.
        let _ = kernel_log(Path::new("/"));
    }

    #[test]
    fn windows_layout() {
        let root = tempfile::tempdir().unwrap();
        let w = gather_windows(root.path());
        assert!(!w.host_driver_store && w.nvcuda_dll.is_none());
        std::fs::create_dir_all(root.path().join("Windows/System32/HostDriverStore")).unwrap();
        std::fs::write(root.path().join("Windows/System32/nvcuda.dll"), b"").unwrap();
        let w = gather_windows(root.path());
        assert!(w.container && w.host_driver_store && w.nvcuda_dll.is_some());
        // nvml.dll only in the driver package's FileRepository folder, as a
        // Windows container with the GPU device class has it.
        assert_eq!(w.nvml_dll, None);
        let package = root
            .path()
            .join("Windows/System32/HostDriverStore/FileRepository/nvlti.inf_amd64_5b3a8f1e2c4d");
        std::fs::create_dir_all(&package).unwrap();
        std::fs::create_dir_all(
            root.path()
                .join("Windows/System32/HostDriverStore/FileRepository/other.inf_amd64_1"),
        )
        .unwrap();
        std::fs::write(package.join("nvml.dll"), b"").unwrap();
        assert_eq!(
            gather_windows(root.path()).nvml_dll.map(PathBuf::from),
            Some(package.join("nvml.dll"))
        );
        // One in System32 comes first.
        std::fs::write(root.path().join("Windows/System32/nvml.dll"), b"").unwrap();
        assert_eq!(
            windows_nvml_dll(root.path()),
            Some(root.path().join("Windows/System32/nvml.dll"))
        );
    }
}
