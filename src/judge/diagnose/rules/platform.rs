//! Windows containers (Microsoft's GPU acceleration in Windows containers:
//! the GPU device class, and CUDA unsupported there) and WSL2's GPU
//! paravirtualization.
use crate::judge::diagnose::{Remedy, Rule, Trigger};
use crate::report::{Action, Report, Severity};

pub(super) const GP018: Rule = Rule {
    code: "GP018",
    severity: Severity::Error,
    summary: "This Windows container was started without the GPU device class",
    when: "a Windows container with no C:\\Windows\\System32\\HostDriverStore and no nvcuda.dll",
    fix: "Run with process isolation and the GPU device class: `docker run --isolation process --device class/5B45201D-F2F2-4F3B-85BB-30FF1F953599 IMAGE` (Windows Server 2019 or Windows 10 1809 and newer, Docker 19.03+). Docker rejects PCI addresses such as `--device 0000:01:00.0`; do not install a driver in the image.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(windows_no_gpu_device),
};

fn windows_no_gpu_device(r: &Report) -> Option<Vec<String>> {
    let w = r.environment.windows.as_ref()?;
    (w.container && !w.host_driver_store && w.nvcuda_dll.is_none()).then(|| {
        vec![
            "no C:\\Windows\\System32\\HostDriverStore (the GPU device class was not given)".into(),
            "no nvcuda.dll".into(),
        ]
    })
}

pub(super) const GP019: Rule = Rule {
    code: "GP019",
    severity: Severity::Warning,
    summary: "CUDA is not officially supported inside Windows containers",
    when: "a Windows container started with the GPU device class",
    fix: "In Windows containers use DirectX-based APIs (DirectML, WinML), which Microsoft supports; run CUDA workloads in Linux containers (on Windows: Docker Desktop with WSL2 and `docker run --gpus all`).",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(windows_cuda_unsupported),
};

fn windows_cuda_unsupported(r: &Report) -> Option<Vec<String>> {
    let w = r.environment.windows.as_ref()?;
    (w.container && w.host_driver_store).then(|| {
        vec![
            "a Windows container with the GPU device class".into(),
            format!(
                "nvcuda.dll: {}",
                w.nvcuda_dll.as_deref().unwrap_or("not present")
            ),
        ]
    })
}

pub(super) const GP024: Rule = Rule {
    code: "GP024",
    severity: Severity::Info,
    summary: "Running under WSL2 GPU paravirtualization: some NVML readings are not supported",
    when: "/dev/dxg or /usr/lib/wsl/lib is present",
    fix: "Nothing to fix: under WSL2 use `docker run --gpus all` and expect `not_supported` telemetry.",
    action: Remedy::Always(Action::None),
    trigger: Trigger::Machine(wsl),
};

fn wsl(r: &Report) -> Option<Vec<String>> {
    r.environment
        .wsl
        .then(|| vec!["/dev/dxg or /usr/lib/wsl/lib present".into()])
}
