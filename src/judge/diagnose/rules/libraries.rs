//! Which driver libraries the container loaded: the CUDA toolkit's stub
//! libcuda, driver libraries baked into the image instead of the host's,
//! and CUDA forward compatibility (NVIDIA's CUDA Compatibility guide), used
//! or failing.
use super::facts::{init_error, machine_check, non_empty};
use crate::cuda::error::{
    CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, CUDA_ERROR_STUB_LIBRARY,
    CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
};
use crate::judge::diagnose::{Remedy, Rule, Trigger};
use crate::report::{Action, LibraryOrigin, Report, Severity};
use crate::stage::Stage;

pub(super) const GP006: Rule = Rule {
    code: "GP006",
    severity: Severity::Error,
    summary: "The CUDA toolkit's stub libcuda was loaded instead of the driver",
    when: "cuInit returns 34 (CUDA_ERROR_STUB_LIBRARY) or the loaded libcuda lies in a stubs folder",
    fix: "Remove the toolkit's stubs folder (…/lib64/stubs) from LD_LIBRARY_PATH and /etc/ld.so.conf.d; the stub only serves linking at build time.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(stub_library),
};

fn stub_library(r: &Report) -> Option<Vec<String>> {
    let path = r.driver.library_path.as_deref().unwrap_or("");
    if init_error(r) != Some(CUDA_ERROR_STUB_LIBRARY) && !path.contains("/stubs/") {
        return None;
    }
    let mut evidence = vec![format!("loaded {path}")];
    if init_error(r) == Some(CUDA_ERROR_STUB_LIBRARY) {
        evidence.push("cuInit returned 34 (CUDA_ERROR_STUB_LIBRARY)".into());
    }
    evidence.extend(
        r.environment
            .library_path_stubs
            .iter()
            .map(|s| format!("LD_LIBRARY_PATH holds {s}")),
    );
    Some(evidence)
}

pub(super) const GP022: Rule = Rule {
    code: "GP022",
    severity: Severity::Warning,
    summary: "The CUDA toolkit's stubs folder is on LD_LIBRARY_PATH",
    when: "an LD_LIBRARY_PATH entry holds `stubs`, though the real driver was loaded",
    fix: "Remove the stubs folder from LD_LIBRARY_PATH: a program that loads libcuda.so (rather than libcuda.so.1) gets the stub and fails with CUDA_ERROR_STUB_LIBRARY.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(stubs_on_path),
};

fn stubs_on_path(r: &Report) -> Option<Vec<String>> {
    if r.environment.library_path_stubs.is_empty() || stub_library(r).is_some() {
        return None;
    }
    Some(
        r.environment
            .library_path_stubs
            .iter()
            .map(|s| format!("LD_LIBRARY_PATH holds {s}"))
            .collect(),
    )
}

fn init_code_rule(r: &Report, code: i32, name: &str) -> Option<Vec<String>> {
    (init_error(r) == Some(code)).then(|| {
        let mut evidence = vec![format!("cuInit returned {code} ({name})")];
        evidence.extend(
            r.environment
                .library_path_compat
                .iter()
                .map(|s| format!("LD_LIBRARY_PATH holds {s}")),
        );
        if let Some(p) = &r.driver.library_path {
            evidence.push(format!("loaded {p}"));
        }
        if let Some(k) = &r.environment.kernel_module_version {
            evidence.push(format!("kernel module {k}"));
        }
        evidence
    })
}

pub(super) const GP007: Rule = Rule {
    code: "GP007",
    severity: Severity::Error,
    summary: "A CUDA forward-compatibility libcuda does not match the host's kernel module",
    when: "cuInit returns 803 (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)",
    fix: "Remove /usr/local/cuda/compat from LD_LIBRARY_PATH (and ld.so.conf), or install the cuda-compat package that matches the host driver's branch.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(compat_mismatch),
};

fn compat_mismatch(r: &Report) -> Option<Vec<String>> {
    init_code_rule(
        r,
        CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    )
}

pub(super) const GP008: Rule = Rule {
    code: "GP008",
    severity: Severity::Error,
    summary: "CUDA forward compatibility was attempted on a GPU that does not support it",
    when: "cuInit returns 804 (CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE)",
    fix: "Forward compatibility works only on data-center GPUs: remove the compat libraries from the image and upgrade the host driver instead.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(compat_unsupported),
};

fn compat_unsupported(r: &Report) -> Option<Vec<String>> {
    init_code_rule(
        r,
        CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
        "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    )
}

pub(super) const GP028: Rule = Rule {
    code: "GP028",
    severity: Severity::Info,
    summary: "CUDA forward compatibility is in use: the image's newer libcuda runs on the host's older kernel module",
    when: "the loaded libcuda lies in a compat folder (/usr/local/cuda/compat or an LD_LIBRARY_PATH compat entry), its driver version is newer than /proc/driver/nvidia/version's, and cuInit succeeded",
    fix: "Nothing to fix: NVIDIA supports forward compatibility on data-center GPUs (CUDA Compatibility guide). Keep the cuda-compat package matched to the image's CUDA version; upgrading the host driver past it makes it unnecessary.",
    action: Remedy::Always(Action::None),
    trigger: Trigger::Machine(forward_compat_in_use),
};

fn forward_compat_in_use(r: &Report) -> Option<Vec<String>> {
    let env = &r.environment;
    let initialised = machine_check(r, Stage::CuInit)
        .is_some_and(|c| c.status == crate::report::CheckStatus::Pass);
    if !env.cuda_forward_compat || !initialised {
        return None;
    }
    let mut evidence = vec![format!(
        "loaded {}",
        r.driver.library_path.as_deref().unwrap_or("?")
    )];
    if let (Some(lib), Some(kernel)) = (
        env.cuda_library_version.as_deref(),
        env.kernel_module_version.as_deref(),
    ) {
        evidence.push(format!("libcuda of driver {lib} on kernel module {kernel}"));
    }
    evidence.extend(
        env.library_path_compat
            .iter()
            .map(|s| format!("LD_LIBRARY_PATH holds {s}")),
    );
    if let Some(v) = &r.driver.cuda_version {
        evidence.push(format!("cuInit succeeded: CUDA {v}"));
    }
    Some(evidence)
}

pub(super) const GP023: Rule = Rule {
    code: "GP023",
    severity: Severity::Warning,
    summary: "The image carries its own NVIDIA driver libraries instead of the host's",
    when: "the loaded libcuda.so.VERSION differs from /proc/driver/nvidia/version, or a loaded driver library is a file of the image rather than a mount from the host (/proc/self/mountinfo); a CUDA forward-compatibility libcuda (in a compat folder, newer than the kernel module: GP028) is neither",
    fix: "Remove the NVIDIA driver packages from the image; the container toolkit injects the host's matching libraries (baked-in ones break at the next host driver upgrade).",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(driver_baked_in),
};

fn driver_baked_in(r: &Report) -> Option<Vec<String>> {
    let env = &r.environment;
    let mut evidence = Vec::new();
    if let (Some(lib), Some(kernel)) = (
        env.cuda_library_version.as_deref(),
        env.kernel_module_version.as_deref(),
    ) {
        // A forward-compatibility libcuda is newer than the kernel module
        // on purpose (GP028); when it fails, GP007 and GP008 say why.
        if lib != kernel && !env.cuda_forward_compat {
            evidence.push(format!(
                "loaded libcuda of driver {lib}; the host's kernel module is {kernel}"
            ));
        }
    }
    for (name, path, origin) in [
        ("libcuda", &r.driver.library_path, &env.cuda_library_origin),
        (
            "libnvidia-ml",
            &r.nvml.library_path,
            &env.nvml_library_origin,
        ),
    ] {
        // cuda-compat installs its libcuda into the image by design.
        let compat = name == "libcuda" && env.cuda_forward_compat;
        if *origin == Some(LibraryOrigin::Image) && !compat {
            evidence.push(format!(
                "{name} at {} is a file of the image, not mounted in by the GPU runtime",
                path.as_deref().unwrap_or("?")
            ));
        }
    }
    non_empty(evidence)
}
