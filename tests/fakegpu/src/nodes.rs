//! Device nodes as the fake lays them out or creates them: ones with no
//! kernel driver behind them, and ones whose opening is denied. Each is a
//! real file-system object that gives gpuprobe the same open(2) error a real
//! node would, so gpuprobe's own inspection code runs unchanged.
use std::path::Path;

/// A node with no kernel driver behind it: open(2) fails with ENXIO, as it
/// does on a character device whose driver is not loaded. As root this is
/// the real thing (mknod, mode 0666, the major/minor NVIDIA's driver uses);
/// elsewhere a socket stands in, which open(2) refuses with ENXIO too.
pub fn driverless(path: &Path, minor: u32) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: c_path is a valid NUL-terminated path; mknod only reads it.
    let made = unsafe {
        libc::mknod(
            c_path.as_ptr(),
            libc::S_IFCHR | 0o666,
            libc::makedev(195, minor),
        )
    } == 0;
    if !made {
        std::os::unix::net::UnixListener::bind(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// A node whose open for read and write is denied, as the device cgroup
/// denies a revoked node (EPERM) or SELinux does (EACCES). The kernel refuses
/// to open a read-only sysfs attribute for writing with EACCES even for root
/// (kernfs_fop_open), so the node is a link to one; without sysfs, a file
/// with no permissions does the same for a user without CAP_DAC_OVERRIDE.
/// Either way the result is checked, so a machine where neither denies
/// fails here instead of faking a different error.
pub fn denied(path: &Path) -> Result<(), String> {
    let sysfs = Path::new("/sys/devices/system/cpu/possible");
    let is_denied = |path: &Path| {
        matches!(
            std::fs::OpenOptions::new().read(true).write(true).open(path),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
        )
    };
    let _ = std::fs::remove_file(path);
    if sysfs.exists() {
        std::os::unix::fs::symlink(sysfs, path).map_err(|e| e.to_string())?;
        if is_denied(path) {
            return Ok(());
        }
        std::fs::remove_file(path).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, b"").map_err(|e| e.to_string())?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .map_err(|e| e.to_string())?;
    if is_denied(path) {
        Ok(())
    } else {
        Err(format!(
            "{}: cannot model a denied device node here (the sysfs attribute opens for writing, and this user bypasses file permissions)",
            path.display()
        ))
    }
}

/// The minor number of an NVIDIA node name: nvidiaN is N, nvidiactl 255
/// (NVIDIA's driver README, "device files"); others get 254.
#[must_use]
pub fn minor(name: &str) -> u32 {
    match name.strip_prefix("nvidia").map(str::parse::<u32>) {
        Some(Ok(n)) => n,
        _ if name == "nvidiactl" => 255,
        _ => 254,
    }
}
