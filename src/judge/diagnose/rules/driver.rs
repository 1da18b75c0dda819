//! The host driver against what this container needs: user-space and
//! kernel versions that differ, a kernel module version that cannot be read,
//! a driver too old for the image's CUDA or for gpuprobe's PTX, and a
//! missing PTX JIT compiler.
use super::facts::{machine_check, non_empty, var};
use crate::cuda::error::{CUDA_ERROR_JIT_COMPILER_NOT_FOUND, CUDA_ERROR_UNSUPPORTED_PTX_VERSION};
use crate::cuda::CudaVersion;
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, Reading, Report, Severity};
use crate::stage::Stage;

/// nvml.h's NVML_ERROR_LIB_RM_VERSION_MISMATCH: user-space NVML and the
/// kernel module differ (nvml-wrapper exposes no constant for it).
const NVML_ERROR_LIB_RM_VERSION_MISMATCH: i32 = 18;

pub(super) const GP010: Rule = Rule {
    code: "GP010",
    severity: Severity::Error,
    summary: "The user-space driver does not match the kernel module",
    when: "nvmlInit returns 18 (NVML_ERROR_LIB_RM_VERSION_MISMATCH), or NVML's driver version differs from /proc/driver/nvidia/version",
    fix: "If the host driver was upgraded, reboot the host (or reload the nvidia modules). If the image bakes NVIDIA driver libraries in, remove them: the toolkit injects the host's own.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(nvml_driver_mismatch),
};

fn nvml_driver_mismatch(r: &Report) -> Option<Vec<String>> {
    let kernel = r.environment.kernel_module_version.as_deref();
    // NVML_ERROR_LIB_RM_VERSION_MISMATCH (nvml.h).
    if r.nvml.error_code == Some(NVML_ERROR_LIB_RM_VERSION_MISMATCH) {
        let mut evidence =
            vec!["nvmlInit returned 18 (driver/library version mismatch)".to_string()];
        if let Some(k) = kernel {
            evidence.push(format!("kernel module {k}"));
        }
        if let Some(p) = &r.nvml.library_path {
            evidence.push(format!("libnvidia-ml loaded from {p}"));
        }
        return Some(evidence);
    }
    let user = r.nvml.driver_version.as_deref()?;
    (kernel? != user).then(|| {
        vec![format!(
            "NVML (user-space driver) {user}, kernel module {}",
            kernel.unwrap_or("?")
        )]
    })
}

pub(super) const GP025: Rule = Rule {
    code: "GP025",
    severity: Severity::Info,
    summary: "The kernel module's version could not be read",
    when: "/proc/driver/nvidia/version exists but is unreadable or holds no version",
    fix: "Check that the container sees the host's /proc/driver/nvidia (the toolkit mounts it); driver/library mismatches cannot be checked without it.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(kernel_version_unreadable),
};

fn kernel_version_unreadable(r: &Report) -> Option<Vec<String>> {
    r.environment.kernel_module_error.clone().map(|e| vec![e])
}

/// Devices whose `stage` failed with CUresult `code`.
fn device_error(r: &Report, stage: Stage, code: i32) -> DeviceEvidence {
    r.devices
        .iter()
        .filter(|d| {
            d.checks
                .iter()
                .any(|c| stage.is(&c.name) && c.error.as_ref().is_some_and(|e| e.code == code))
        })
        .map(|d| {
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): {stage} failed with CUresult {code}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect()
}

pub(super) const GP011: Rule = Rule {
    code: "GP011",
    severity: Severity::Error,
    summary: "The driver is too old to compile the embedded PTX",
    when: "cuModuleLoadData returns 222 (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
    fix: "Upgrade the host driver: a driver JIT-compiles PTX only up to the ISA of its own CUDA version.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(ptx_too_new),
};

fn ptx_too_new(r: &Report) -> DeviceEvidence {
    let driver = r.driver.cuda_version.as_deref().unwrap_or("?");
    device_error(r, Stage::Module, CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
        .into_iter()
        .map(|(d, e)| (d, format!("{e}; the driver supports CUDA {driver}, gpuprobe's PTX (ISA 4.2) needs CUDA 7.0")))
        .collect()
}

pub(super) const GP020: Rule = Rule {
    code: "GP020",
    severity: Severity::Error,
    summary: "The PTX JIT compiler library is missing",
    when: "CUDA returns 221 (CUDA_ERROR_JIT_COMPILER_NOT_FOUND)",
    fix: "Add the compute capability (`NVIDIA_DRIVER_CAPABILITIES=compute,utility`) so the toolkit injects libnvidia-ptxjitcompiler.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(jit_missing),
};

fn jit_missing(r: &Report) -> DeviceEvidence {
    device_error(r, Stage::Module, CUDA_ERROR_JIT_COMPILER_NOT_FOUND)
}

/// "cuda>=12.2" out of NVIDIA_REQUIRE_CUDA ("cuda>=12.2 brand=tesla,driver>=470 ...").
fn required_cuda(value: &str) -> Option<CudaVersion> {
    let spec = value
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cuda>="))?;
    spec.parse().ok()
}

pub(super) const GP012: Rule = Rule {
    code: "GP012",
    severity: Severity::Error,
    summary: "The host driver is older than the CUDA version this image requires",
    when: "NVIDIA_REQUIRE_CUDA (cuda>=X.Y) or --require-driver asks for a newer CUDA than cuDriverGetVersion reports",
    fix: "Upgrade the host driver (Linux: CUDA 12.x needs 525.60.13 or newer, 13.x needs 580.65.06 or newer), or use an image built for an older CUDA.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(driver_too_old),
};

fn driver_too_old(r: &Report) -> Option<Vec<String>> {
    let mut evidence = Vec::new();
    let have = r.driver.cuda_version_raw.and_then(CudaVersion::from_driver);
    if let (Some(value), Some(have)) = (var(r, "NVIDIA_REQUIRE_CUDA"), have) {
        if let Some(need) = required_cuda(value) {
            if have < need {
                evidence.push(format!(
                    "NVIDIA_REQUIRE_CUDA={value:?}, the driver supports CUDA {}",
                    r.driver.cuda_version.as_deref().unwrap_or("?")
                ));
            }
        }
    }
    if let Some(c) = machine_check(r, Stage::RequireDriver)
        .filter(|c| c.status == crate::report::CheckStatus::Fail)
    {
        evidence.push(c.detail.clone());
    }
    non_empty(evidence)
}

/// A cuInit this slow is a cold start: twice what it takes with the GPUs
/// kept initialised (about 0.5 s, ../shared/FACTS.md section 12), the low
/// end of the 1-3 s per GPU NVIDIA gives for initialising one (Driver
/// Persistence, "Overview").
const SLOW_INIT_MS: f64 = 1000.0;

pub(super) const GP037: Rule = Rule {
    code: "GP037",
    severity: Severity::Info,
    summary: "CUDA was slow to start because persistence mode is off: every new process waits for each GPU to start again",
    when: "cuInit took 1 s or more and NVML reports persistence mode off on a GPU: without persistence the driver deinitialises a GPU when its last client exits, and the next process to use it waits for it to start again, about 1-3 s per GPU (NVIDIA, Driver Persistence). A slow start, not a fault: the verdict does not change",
    fix: "Keep the GPUs initialised on the host: run NVIDIA's persistence daemon (`systemctl enable --now nvidia-persistenced`), or set persistence mode as root (`nvidia-smi -pm 1`, the older way). It is the host's setting, not the container's; until then give health checks a timeout that allows a cold start.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::PerDevice(cold_start),
};

/// GP037: a slow cuInit, on each GPU NVML says is not kept initialised.
fn cold_start(r: &Report) -> DeviceEvidence {
    let Some(init) = machine_check(r, Stage::CuInit).filter(|c| c.duration_ms >= SLOW_INIT_MS)
    else {
        return Vec::new();
    };
    r.devices
        .iter()
        .filter(|d| {
            d.telemetry
                .as_ref()
                .is_some_and(|t| t.persistence_mode == Reading::Value(false))
        })
        .map(|d| {
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): persistence mode off; cuInit took {:.1} s of the run's {:.1} s",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    init.duration_ms / 1e3,
                    r.duration_ms / 1e3
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_cuda_parsing() {
        assert_eq!(
            required_cuda("cuda>=12.2 brand=tesla,driver>=470,driver<471"),
            Some(CudaVersion::new(12, 2))
        );
        assert_eq!(required_cuda("brand=tesla"), None);
        assert_eq!(required_cuda("cuda>=twelve"), None);
    }

    #[test]
    fn a_cold_start_needs_both_a_slow_cu_init_and_persistence_off() {
        use crate::report::Reading;
        let fixture =
            Report::from_json(include_bytes!("../../../../benches/report-one-gpu.json")).unwrap();
        let run = |init_ms: f64, persistence: Reading<bool>| {
            let mut r = fixture.clone();
            r.checks
                .iter_mut()
                .find(|c| Stage::CuInit.is(&c.name))
                .expect("the fixture's cu_init check")
                .duration_ms = init_ms;
            r.devices[0].telemetry.as_mut().unwrap().persistence_mode = persistence;
            !cold_start(&r).is_empty()
        };
        assert!(run(2100.0, Reading::Value(false)));
        assert!(run(SLOW_INIT_MS, Reading::Value(false)));
        assert!(!run(450.0, Reading::Value(false)), "a warm start");
        assert!(!run(2100.0, Reading::Value(true)), "another cause");
        let unknown = Reading::Unavailable(crate::report::Unavailable::NotSupported);
        assert!(!run(2100.0, unknown), "persistence mode unknown (Windows)");
    }
}
