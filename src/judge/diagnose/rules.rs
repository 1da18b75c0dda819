//! The rule table. Facts and fixes come from NVIDIA's and Microsoft's documentation:
//! the NVIDIA Container Toolkit's behaviour, the CUDA and NVML error codes
//! users meet in containers, Windows containers, and health-check rules.
use super::{DeviceEvidence, Rule, Trigger};
use crate::cuda::error::{
    CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, CUDA_ERROR_JIT_COMPILER_NOT_FOUND,
    CUDA_ERROR_NO_DEVICE, CUDA_ERROR_STUB_LIBRARY, CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
    CUDA_ERROR_UNKNOWN, CUDA_ERROR_UNSUPPORTED_PTX_VERSION,
};
use crate::cuda::CudaVersion;
use crate::report::{
    Check, DeviceNode, DriverLoadFailure, LibraryOrigin, LinkState, NodeError, NotVerified,
    NvmlStatus, Reading, Report, Severity, Telemetry, Unavailable,
};
use crate::stage::Stage;

/// nvml.h's NVML_ERROR_LIB_RM_VERSION_MISMATCH: user-space NVML and the
/// kernel module differ (nvml-wrapper exposes no constant for it).
const NVML_ERROR_LIB_RM_VERSION_MISMATCH: i32 = 18;

fn var<'a>(r: &'a Report, name: &str) -> Option<&'a str> {
    r.environment
        .variables
        .iter()
        .find(|v| v.name == name)
        .map(|v| v.value.as_str())
}

fn machine_check(r: &Report, stage: Stage) -> Option<&Check> {
    r.checks.iter().find(|c| stage.is(&c.name))
}

/// The CUresult cuInit failed with.
fn init_error(r: &Report) -> Option<i32> {
    machine_check(r, Stage::CuInit)?
        .error
        .as_ref()
        .map(|e| e.code)
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

/// No libcuda anywhere on the loader path.
fn cuda_missing(r: &Report) -> bool {
    r.driver.load_failure == Some(DriverLoadFailure::NotFound)
}

/// The device nodes the container was given: those present before the
/// driver library ran (see `DeviceNode::created_during_run`).
fn given_nodes(r: &Report) -> impl Iterator<Item = &DeviceNode> {
    r.environment
        .device_nodes
        .iter()
        .filter(|n| !n.created_during_run)
}

fn gpu_nodes(r: &Report) -> Vec<&DeviceNode> {
    given_nodes(r)
        .filter(|n| {
            n.path
                .strip_prefix("/dev/nvidia")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

fn has_node(r: &Report, path: &str) -> bool {
    given_nodes(r).any(|n| n.path == path)
}

fn nvidia_nodes(r: &Report) -> bool {
    given_nodes(r).any(|n| n.path.starts_with("/dev/nvidia"))
}

fn non_empty(evidence: Vec<String>) -> Option<Vec<String>> {
    (!evidence.is_empty()).then_some(evidence)
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "(unset)".to_string(), |v| format!("{v:?}"))
}

/// Readings of every device with telemetry, labelled.
fn telemetry(r: &Report) -> impl Iterator<Item = (Option<u32>, String, &Telemetry)> {
    r.devices.iter().filter_map(|d| {
        d.telemetry.as_ref().map(|t| {
            (
                Some(d.index),
                format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?")),
                t,
            )
        })
    })
}

fn no_gpu_runtime(r: &Report) -> Option<Vec<String>> {
    // Windows has no /dev: GP018 speaks for Windows containers.
    let windows = r.environment.windows.is_some();
    // Without device nodes no driver library can reach a GPU, whether the
    // libraries are missing or were baked into the image.
    let cuda_failed =
        cuda_missing(r) || init_error(r).is_some() || r.driver.device_count == Some(0);
    if !cuda_failed
        || nvidia_nodes(r)
        || r.environment.wsl
        || r.nvml.status == NvmlStatus::Loaded
        || windows
    {
        return None;
    }
    let mut evidence = vec![match (&r.driver.library_path, init_error(r)) {
        (None, _) => "no libcuda.so.1 on the loader path".to_string(),
        (Some(path), Some(code)) => format!("libcuda at {path}, but cuInit returned {code}"),
        (Some(path), None) => format!("libcuda at {path}, but no GPU"),
    }];
    let created: Vec<&DeviceNode> = r
        .environment
        .device_nodes
        .iter()
        .filter(|n| n.created_during_run)
        .collect();
    evidence.push(if created.is_empty() {
        "no /dev/nvidia* device nodes".into()
    } else {
        "no /dev/nvidia* device nodes before the driver library ran".into()
    });
    for node in created {
        evidence.push(format!(
            "{} appeared during this run: the driver library created it (as root, libcuda makes missing nodes itself), the container was not given it{}",
            node.path,
            node.error
                .as_deref()
                .map_or_else(String::new, |e| format!("; opening it fails: {e}"))
        ));
    }
    evidence.push(match r.nvml.status {
        NvmlStatus::NotFound => "no libnvidia-ml.so.1".to_string(),
        _ => format!(
            "NVML cannot initialise: {}",
            r.nvml.error.as_deref().unwrap_or("?")
        ),
    });
    if let Some(v) = var(r, "NVIDIA_VISIBLE_DEVICES") {
        evidence.push(format!("NVIDIA_VISIBLE_DEVICES={v:?}"));
    }
    Some(evidence)
}

fn nvml_without_cuda(r: &Report) -> Option<Vec<String>> {
    (cuda_missing(r) && r.nvml.status == NvmlStatus::Loaded).then(|| {
        vec![
            format!(
                "libnvidia-ml loaded from {}",
                r.nvml.library_path.as_deref().unwrap_or("?")
            ),
            "no libcuda.so.1 on the loader path".into(),
            format!(
                "NVIDIA_DRIVER_CAPABILITIES={}",
                shown(var(r, "NVIDIA_DRIVER_CAPABILITIES"))
            ),
        ]
    })
}

fn visible_devices_none(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "NVIDIA_VISIBLE_DEVICES")?;
    let v = value.trim().to_ascii_lowercase();
    let no_gpu = cuda_missing(r)
        || init_error(r) == Some(CUDA_ERROR_NO_DEVICE)
        || r.driver.device_count == Some(0);
    (matches!(v.as_str(), "none" | "void" | "") && no_gpu)
        .then(|| vec![format!("NVIDIA_VISIBLE_DEVICES={value:?}")])
}

fn visible_devices_malformed(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "NVIDIA_VISIBLE_DEVICES")?;
    let v = value.trim().to_ascii_lowercase();
    if matches!(v.as_str(), "all" | "none" | "void" | "") {
        return None;
    }
    let bad: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|e| {
            !(e.parse::<u32>().is_ok()
                || e.starts_with("GPU-")
                || e.starts_with("MIG-")
                || e.split(':').count() == 2 && e.split(':').all(|p| p.parse::<u32>().is_ok()))
        })
        .map(|e| format!("entry {e:?} in NVIDIA_VISIBLE_DEVICES={value:?} is not an index, a UUID or index:index"))
        .collect();
    non_empty(bad)
}

/// How many GPUs the container has, whatever CUDA_VISIBLE_DEVICES says.
fn gpus_given(r: &Report) -> usize {
    if r.nvml.status == NvmlStatus::Loaded {
        r.nvml.device_uuids.len() + r.nvml.lost_devices.len()
    } else {
        gpu_nodes(r).len()
    }
}

fn cuda_visible_hides_all(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "CUDA_VISIBLE_DEVICES")?;
    let none_seen = init_error(r) == Some(CUDA_ERROR_NO_DEVICE) || r.driver.device_count == Some(0);
    let given = gpus_given(r);
    (none_seen && given > 0).then(|| {
        vec![
            format!("CUDA_VISIBLE_DEVICES={value:?}"),
            format!("the container has {given} GPU(s), CUDA sees none"),
        ]
    })
}

fn cuda_visible_unknown_entry(r: &Report) -> Option<Vec<String>> {
    let value = var(r, "CUDA_VISIBLE_DEVICES")?;
    if r.driver.device_count.unwrap_or(0) == 0 {
        return None;
    }
    let given = gpus_given(r);
    let uuids = &r.nvml.device_uuids;
    let first_bad = value.split(',').map(str::trim).find(|e| {
        if let Ok(i) = e.parse::<usize>() {
            given > 0 && i >= given
        } else if e.starts_with("MIG-") {
            mig_entry_names_nothing(r, e)
        } else if e.starts_with("GPU-") {
            r.nvml.status == NvmlStatus::Loaded && !uuids.iter().any(|u| u.starts_with(e))
        } else {
            true
        }
    })?;
    Some(vec![
        format!("CUDA_VISIBLE_DEVICES={value:?}: entry {first_bad:?} names no GPU of the {given} this container has"),
        format!("CUDA sees {} GPU(s)", r.driver.device_count.unwrap_or(0)),
    ])
}

/// Whether a `MIG-…` entry of CUDA_VISIBLE_DEVICES surely names no MIG
/// device of this container. Both forms are valid (NVIDIA MIG User Guide,
/// "CUDA Device Enumeration"): `MIG-<uuid>` (drivers >= 470) and
/// `MIG-GPU-<gpu uuid>/<gi>/<ci>` (older). NVML lists whole GPUs only, and
/// CUDA enumerates one MIG device per process, so a `MIG-<uuid>` CUDA did
/// not enumerate may still be another instance: it is judged only where no
/// GPU here is in MIG mode at all. The older form is judged by its GPU.
fn mig_entry_names_nothing(r: &Report, entry: &str) -> bool {
    if let Some(legacy) = entry.strip_prefix("MIG-GPU-") {
        let gpu = format!("GPU-{}", legacy.split('/').next().unwrap_or(""));
        let known = r.nvml.device_uuids.contains(&gpu)
            || r.devices
                .iter()
                .any(|d| d.mig_parent_uuid.as_deref() == Some(gpu.as_str()));
        return r.nvml.status == NvmlStatus::Loaded && !known;
    }
    let enumerated = r
        .devices
        .iter()
        .any(|d| d.uuid.as_deref().is_some_and(|u| u.starts_with(entry)));
    let mig_in_use = r.devices.iter().any(|d| {
        d.mig_parent_uuid.is_some()
            || d.telemetry
                .as_ref()
                .is_some_and(|t| t.mig_enabled == Reading::Value(true))
    });
    r.nvml.status == NvmlStatus::Loaded && !enumerated && !mig_in_use
}

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

fn compat_mismatch(r: &Report) -> Option<Vec<String>> {
    init_code_rule(
        r,
        CUDA_ERROR_SYSTEM_DRIVER_MISMATCH,
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
    )
}

fn compat_unsupported(r: &Report) -> Option<Vec<String>> {
    init_code_rule(
        r,
        CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE,
        "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
    )
}

fn uvm_missing(r: &Report) -> Option<Vec<String>> {
    // With no NVIDIA nodes at all the container has no GPU runtime (GP001).
    (init_error(r) == Some(CUDA_ERROR_UNKNOWN)
        && !has_node(r, "/dev/nvidia-uvm")
        && has_node(r, "/dev/nvidiactl"))
    .then(|| {
        vec![
            "cuInit returned 999 (CUDA_ERROR_UNKNOWN)".into(),
            "no /dev/nvidia-uvm device node".into(),
        ]
    })
}

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

fn ptx_too_new(r: &Report) -> DeviceEvidence {
    let driver = r.driver.cuda_version.as_deref().unwrap_or("?");
    device_error(r, Stage::Module, CUDA_ERROR_UNSUPPORTED_PTX_VERSION)
        .into_iter()
        .map(|(d, e)| (d, format!("{e}; the driver supports CUDA {driver}, gpuprobe's PTX (ISA 4.2) needs CUDA 7.0")))
        .collect()
}

/// "cuda>=12.2" out of NVIDIA_REQUIRE_CUDA ("cuda>=12.2 brand=tesla,driver>=470 ...").
fn required_cuda(value: &str) -> Option<CudaVersion> {
    let spec = value
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cuda>="))?;
    spec.parse().ok()
}

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

/// Given nodes that fail to open with `kind`.
fn nodes_failing(r: &Report, kind: NodeError) -> Option<Vec<String>> {
    non_empty(
        given_nodes(r)
            .filter(|n| !n.openable && n.error_kind == Some(kind))
            .map(|n| {
                format!(
                    "{} is present but cannot be opened: {}",
                    n.path,
                    n.error.as_deref().unwrap_or("?")
                )
            })
            .collect(),
    )
}

fn nodes_denied(r: &Report) -> Option<Vec<String>> {
    nodes_failing(r, NodeError::PermissionDenied)
}

fn nodes_without_driver(r: &Report) -> Option<Vec<String>> {
    nodes_failing(r, NodeError::NoDriver)
}

fn gpu_lost(r: &Report) -> DeviceEvidence {
    let mut evidence: Vec<(Option<u32>, String)> = r
        .nvml
        .lost_devices
        .iter()
        .map(|i| (None, format!("NVML GPU {i}: GPU is lost")))
        .collect();
    for (device, who, t) in telemetry(r) {
        if t.temperature_celsius == Reading::Unavailable(Unavailable::GpuLost) {
            evidence.push((device, format!("{who}: NVML says GPU is lost")));
        }
    }
    evidence
}

/// Whether the GPU repairs memory by row remapping (Ampere GA100 and
/// newer: compute capability 8.0 and up; `None` when its compute
/// capability is unknown, and then both repairs' signals are judged),
/// which replaced page retirement
/// (NVIDIA, "GPU Memory Error Management": on these GPUs "retired pages"
/// do not apply, and remapping is "not supported on pre-Ampere GPUs").
fn remaps_rows(r: &Report, index: Option<u32>) -> Option<bool> {
    r.devices
        .iter()
        .find(|d| Some(d.index) == index)
        .and_then(|d| d.compute_capability.as_deref())
        .and_then(crate::cuda::version::parse_version)
        .map(|(major, _)| major >= 8)
}

/// A row remap that waits for a reset on a GPU that remaps rows, with no
/// remap failed: the uncorrectable errors were contained (GP036).
fn remap_pending_only(t: &Telemetry) -> bool {
    t.remapped_rows_pending == Reading::Value(true)
        && t.remapped_rows_failure != Reading::Value(true)
}

/// GP015: memory faults that need the GPU out of service, judged as
/// NVIDIA's memory error management does by architecture. With row
/// remapping (Ampere+): a remap that failed (no spare rows: replace the
/// GPU), or uncorrectable errors with no remap pending to contain them; a
/// pending remap alone is GP036's. With page retirement (before Ampere):
/// uncorrectable errors, or pages pending retirement.
fn memory_errors(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (device, who, t) in telemetry(r) {
        let remapping = remaps_rows(r, device);
        if remapping == Some(true) && remap_pending_only(t) {
            continue;
        }
        if let Some(n) = t.ecc_uncorrected_volatile.value().filter(|n| **n > 0) {
            evidence.push((
                device,
                format!("{who}: {n} uncorrectable ECC error(s) since the driver loaded"),
            ));
        }
        let remap: [(&Reading<bool>, &str); 2] = [
            (
                &t.remapped_rows_pending,
                "a row remap is pending (needs a GPU reset)",
            ),
            (&t.remapped_rows_failure, "a row remap failed"),
        ];
        let retire = [(&t.retired_pages_pending, "pages are pending retirement")];
        let signals: Vec<(&Reading<bool>, &str)> = match remapping {
            Some(true) => remap.to_vec(),
            Some(false) => retire.to_vec(),
            None => remap.into_iter().chain(retire).collect(),
        };
        for (reading, what) in signals {
            if *reading == Reading::Value(true) {
                evidence.push((device, format!("{who}: {what}")));
            }
        }
    }
    evidence
}

/// GP036: on a GPU that remaps rows, uncorrectable errors contained by a
/// row remap that waits for a reset, with no remap failed.
fn remap_pending(r: &Report) -> DeviceEvidence {
    telemetry(r)
        .filter(|(device, _, t)| remaps_rows(r, *device) == Some(true) && remap_pending_only(t))
        .map(|(device, who, t)| {
            let errors = t
                .ecc_uncorrected_volatile
                .value()
                .filter(|n| **n > 0)
                .map_or(String::new(), |n| {
                    format!("{n} uncorrectable ECC error(s) since the driver loaded; ")
                });
            (
                device,
                format!("{who}: {errors}a row remap is pending (applied at the next GPU reset)"),
            )
        })
        .collect()
}

/// An idle link trains down to save power (nvidia-smi(1), "Link
/// Width/Generation": the current values "may be reduced when the GPU is not
/// in use"), so the generation is judged only from a reading taken while
/// gpuprobe's launches ran; the width, which normally stays, from any
/// reading. Both against the maximum of the GPU and its slot.
fn pcie_degraded(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (device, who, t) in telemetry(r) {
        let pair = |a: &Reading<u32>, b: &Reading<u32>| a.value().copied().zip(b.value().copied());
        let under_load = t.pcie_link_state == Some(LinkState::UnderLoad);
        if let Some((cur, max)) =
            pair(&t.pcie_generation, &t.pcie_generation_max).filter(|(c, m)| under_load && c < m)
        {
            evidence.push((
                device,
                format!("{who}: PCIe gen {cur} of {max} while the matmul ran"),
            ));
        }
        if let Some((cur, max)) =
            pair(&t.pcie_width_lanes, &t.pcie_width_max_lanes).filter(|(c, m)| c < m)
        {
            evidence.push((device, format!("{who}: PCIe x{cur} of x{max}")));
        }
    }
    evidence
}

/// Throttle reasons that mean the GPU could not run at full speed.
const BAD_THROTTLE: [&str; 5] = [
    "sw_power_cap",
    "hw_slowdown",
    "sw_thermal_slowdown",
    "hw_thermal_slowdown",
    "hw_power_brake_slowdown",
];

fn busy_gpu(r: &Report) -> DeviceEvidence {
    r.devices
        .iter()
        .filter(|d| {
            matches!(
                d.compute_not_verified,
                Some(NotVerified::BusyComputeMode | NotVerified::BusyMemory)
            )
        })
        .map(|d| {
            let mode = d
                .telemetry
                .as_ref()
                .and_then(|t| t.compute_mode.value().copied())
                .map_or("unknown (no NVML)".to_string(), |m| m.to_string());
            let refusal = d
                .checks
                .iter()
                .find(|c| crate::stage::Stage::Context.is(&c.name))
                .and_then(|c| c.error.as_ref())
                .map_or("a refusal".to_string(), |e| {
                    format!("{} ({})", e.code, e.name.as_deref().unwrap_or("unnamed"))
                });
            let others = d
                .telemetry
                .as_ref()
                .and_then(|t| t.compute_processes.value().copied())
                .map_or(String::new(), |n| {
                    format!("; NVML lists {n} compute process(es) on it")
                });
            let memory = match (d.compute_not_verified, d.memory_used_bytes, d.memory_free_bytes) {
                (Some(NotVerified::BusyMemory), Some(used), Some(free)) => format!(
                    "; {} used, {} free",
                    crate::units::bytes(used),
                    crate::units::bytes(free)
                ),
                _ => String::new(),
            };
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): context creation returned {refusal}; compute mode {mode}{others}{memory}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect()
}

fn throttled(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(t) = d.telemetry.as_ref() else {
            continue;
        };
        let who = format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?"));
        // The reasons and draw while the matmul ran, where NVML was read
        // then: after the run the GPU idles, and its draw says nothing of
        // the load (a cap judged from an idle draw would read as "capping
        // at 70 W"). Else the reading after the run.
        let loaded = d.matmul.as_ref().and_then(|m| {
            Some((
                m.throttle_reasons_under_load.as_ref()?,
                m.power_draw_watts_under_load,
            ))
        });
        let (reasons, draw) = match loaded {
            Some((reasons, draw)) => (reasons.as_slice(), draw),
            None => match t.throttle_reasons.value() {
                Some(reasons) => (reasons.as_slice(), t.power_draw_watts.value().copied()),
                None => continue,
            },
        };
        let bad: Vec<&str> = reasons
            .iter()
            .map(String::as_str)
            .filter(|x| BAD_THROTTLE.contains(x))
            .collect();
        if bad.is_empty() {
            continue;
        }
        let power = if bad == ["sw_power_cap"] {
            match power_capping(t, draw) {
                PowerCap::HoldingItsLimit => continue,
                PowerCap::Unusual(why) => format!(": {why}"),
            }
        } else {
            String::new()
        };
        let temp = t
            .temperature_celsius
            .value()
            .map_or(String::new(), |c| format!(" at {c} °C"));
        evidence.push((
            Some(d.index),
            format!("{who}: clocks held down by {}{temp}{power}", bad.join(", ")),
        ));
    }
    evidence
}

/// What a power cap alone says about a GPU.
enum PowerCap {
    /// The GPU draws its full, default limit: how a GPU under sustained
    /// load holds its power limit (the sw_power_cap reason is "the SW Power
    /// Scaling algorithm is reducing the clocks below requested clocks
    /// because the GPU is consuming too much power", nvml.h), which fleet
    /// health checks do not count as a fault (Azure's HPC health checks
    /// exclude it).
    HoldingItsLimit,
    /// A limit left lowered, or capping while drawing far less than it:
    /// why, with the numbers.
    Unusual(String),
}

/// Draw at or above this fraction of the enforced limit is "at the limit".
const AT_POWER_LIMIT: f64 = 0.9;

/// `draw`: the power drawn while the reasons were read.
fn power_capping(t: &Telemetry, draw: Option<f64>) -> PowerCap {
    let limit = t.power_limit_watts.value().copied();
    let default = t.power_default_limit_watts.value().copied();
    if let (Some(limit), Some(default)) = (limit, default) {
        // A watt of slack for rounding (NVML reports milliwatts).
        if limit + 1.0 < default {
            return PowerCap::Unusual(format!(
                "power limit {limit:.0} W below the default {default:.0} W (lowered by \
                 `nvidia-smi -pl` or left so by an earlier job)"
            ));
        }
    }
    match (draw, limit) {
        (Some(draw), Some(limit)) if draw >= AT_POWER_LIMIT * limit => PowerCap::HoldingItsLimit,
        (Some(draw), Some(limit)) => {
            PowerCap::Unusual(format!("capping at {draw:.0} W of a {limit:.0} W limit"))
        }
        _ => PowerCap::Unusual("power draw or limit unknown".into()),
    }
}

/// Below this fraction of the FP32 peak a matmul is slow enough for NVML's
/// readings to explain. gpuprobe's kernel's fraction of peak on a healthy
/// GPU is unmeasured (docs/kernels.md, docs/gpu-validation.md): hand-written
/// SGEMMs of its kind reach 13 to 78% of cuBLAS by technique on an A6000
/// (../shared/FACTS.md section 6), and cuBLAS itself stays under the peak,
/// so until a real GPU's run records the fraction, the floor is a quarter,
/// which a healthy GPU filled by the product clears with margin; and GP030
/// fires only together with a cause NVML saw while the product ran, so
/// that it explains rather than guesses.
const LOW_EFFICIENCY: f64 = 0.25;

/// Below this fraction of its maximum the SM clock counts as held down.
const CLOCK_HELD_DOWN: f64 = 0.9;

/// A product of fewer thread blocks than this many per SM is launch-bound:
/// each SM gets at most one short turn of work, so its time is mostly the
/// launch's and the tail's, and its efficiency says nothing of the GPU.
const BLOCKS_PER_SM_TO_JUDGE: u64 = 2;

/// What NVML saw while the matmul ran that holds a GPU below its peak: the
/// SM clock held below `CLOCK_HELD_DOWN` of its maximum, and the throttle
/// reasons that explain it. A reason with the clock at its maximum holds
/// nothing down (an A100 boosts to 1410 MHz above a 1155 MHz applications
/// clock: ../shared/FACTS.md section 12), and a reading after the run says
/// nothing of it (the GPU clocks down to idle), so only the reading taken
/// while the products ran counts.
fn slowdown_causes(d: &crate::report::DeviceReport, t: &Telemetry) -> Vec<String> {
    let Some(m) = &d.matmul else {
        return Vec::new();
    };
    let (Some(now), Some(max)) = (m.sm_clock_mhz_under_load, t.sm_clock_max_mhz.value()) else {
        return Vec::new();
    };
    if *max == 0 || f64::from(now) >= CLOCK_HELD_DOWN * f64::from(*max) {
        return Vec::new();
    }
    let mut causes = vec![format!(
        "SM clock {now} MHz of its maximum {max} MHz while the matmul ran"
    )];
    let held: Vec<&str> = m
        .throttle_reasons_under_load
        .iter()
        .flatten()
        .map(String::as_str)
        // GP017 reports power and thermal throttling on its own.
        .filter(|r| *r != "gpu_idle" && !BAD_THROTTLE.contains(r))
        .collect();
    if !held.is_empty() {
        causes.push(format!("throttle reasons {}", held.join(", ")));
    }
    // A MIG slice alone explains nothing: its peak counts only its own SMs
    // (the driver's SM count of a MIG device). With a cause, it is context:
    // the slice shares its GPU's memory bandwidth, L2 and clocks.
    if d.mig_parent_uuid.is_some() || t.mig_enabled.value() == Some(&true) {
        causes
            .push("a MIG slice, sharing its GPU's memory, L2 and clocks with other slices".into());
    }
    causes
}

/// Whether the matmul filled the GPU: at least `BLOCKS_PER_SM_TO_JUDGE`
/// thread blocks per SM (unknown counts as not).
fn fills_the_gpu(d: &crate::report::DeviceReport) -> bool {
    match (d.matmul.as_ref().and_then(|m| m.blocks), d.multiprocessors) {
        (Some(blocks), Some(sms)) => blocks >= BLOCKS_PER_SM_TO_JUDGE * u64::from(sms),
        _ => false,
    }
}

fn low_efficiency(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (d, t) in r
        .devices
        .iter()
        .filter(|d| fills_the_gpu(d))
        .filter_map(|d| Some((d, d.telemetry.as_ref()?)))
    {
        let Some(e) = d
            .matmul
            .as_ref()
            .and_then(|m| m.efficiency)
            .and_then(crate::report::Figure::value)
        else {
            continue;
        };
        let causes = slowdown_causes(d, t);
        if e < LOW_EFFICIENCY && !causes.is_empty() {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {} ({}): the matmul reached {} of the FP32 peak; NVML saw {}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    crate::units::percent(e),
                    causes.join("; ")
                ),
            ));
        }
    }
    evidence
}

/// What NVML saw in a burn's worst interval that slows a GPU: the SM clock
/// held below `CLOCK_HELD_DOWN` of its maximum, a throttle reason, and the
/// temperature then.
fn burn_slowdown_causes(b: &crate::report::Burn) -> Vec<String> {
    let Some(w) = &b.worst_interval else {
        return Vec::new();
    };
    let mut causes = Vec::new();
    if let (Some(now), Some(max)) = (w.sm_clock_mhz, b.sm_clock_max_mhz) {
        if max > 0 && f64::from(now) < CLOCK_HELD_DOWN * f64::from(max) {
            causes.push(format!("SM clock {now} MHz of its maximum {max} MHz"));
        }
    }
    let held: Vec<&str> = w
        .throttle_reasons
        .iter()
        .flatten()
        .map(String::as_str)
        .filter(|r| *r != "gpu_idle")
        .collect();
    if !held.is_empty() {
        causes.push(format!("throttle reasons {}", held.join(", ")));
    }
    if let (false, Some(t)) = (causes.is_empty(), w.temperature_celsius) {
        causes.push(format!("{t} °C"));
    }
    causes
}

fn burn_slowdown(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(b) = &d.burn else { continue };
        let (Some(ratio), Some(w)) = (b.worst_over_best, &b.worst_interval) else {
            continue;
        };
        if ratio >= crate::probe::burn::SLOWDOWN {
            continue;
        }
        let causes = burn_slowdown_causes(b);
        let seen = if causes.is_empty() {
            "NVML saw no cause (no NVML, or no clock or throttle change: another \
             process's work on the GPU?)"
                .to_string()
        } else {
            format!("NVML then saw {}", causes.join("; "))
        };
        evidence.push((
            Some(d.index),
            format!(
                "GPU {} ({}): under sustained load the throughput fell to {} of its best \
                 ({} of {}, the interval at {:.1} s); {seen}",
                d.index,
                d.uuid.as_deref().unwrap_or("?"),
                crate::units::percent(ratio),
                crate::units::flops(w.gflops),
                crate::units::flops(b.gflops_best),
                w.at_ms / 1e3
            ),
        ));
    }
    evidence
}

fn burn_errors(r: &Report) -> DeviceEvidence {
    use crate::report::BurnErrorKind;
    let mut evidence = Vec::new();
    for d in &r.devices {
        let Some(b) = &d.burn else { continue };
        for e in b.errors.iter().filter(|e| {
            matches!(
                e.kind,
                BurnErrorKind::WrongResult | BurnErrorKind::EccUncorrected
            )
        }) {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {} ({}): at {:.1} s of sustained load, after the probe's own \
                     check had passed: {}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?"),
                    e.at_ms / 1e3,
                    e.detail
                ),
            ));
        }
    }
    evidence
}

/// Below this fraction of what a GPU's memory or its PCIe link allow, a
/// measured bandwidth is low enough for NVML's readings to explain. Real
/// GPUs are reported to reach about 80-93% of the theoretical memory
/// bandwidth in a copy and 75-90% of the link in pinned copies (public
/// bandwidthTest and BabelStream results; unconfirmed on gpuprobe's own
/// runs, docs/gpu-validation.md), so a healthy GPU stays far above it;
/// GP031 fires only together with a cause NVML saw, so that it explains
/// rather than guesses.
const LOW_BANDWIDTH: f64 = 0.5;

/// Host copies shorter than this are not judged: a copy's fixed cost (a
/// few microseconds to set up the copy engine) is then no longer small
/// beside its transfer (4 MiB take 66 µs at 63 GB/s).
const MIN_JUDGED_HOST_BYTES: u64 = 4 << 20;

/// Device copies shorter than this are not judged, likewise (64 MiB take
/// 40 µs through 3.35 TB/s, reading and writing).
const MIN_JUDGED_DEVICE_BYTES: u64 = 64 << 20;

/// Host copies far below what the link allows at its maximum generation and
/// width, while NVML saw it trained down under load; device copies far
/// below the theoretical memory bandwidth while NVML saw the memory clock
/// held down. Not for MIG instances, whose share of either is unknown.
fn low_bandwidth(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for d in r.devices.iter().filter(|d| d.mig_parent_uuid.is_none()) {
        let (Some(b), Some(t)) = (&d.bandwidth, &d.telemetry) else {
            continue;
        };
        let who = format!("GPU {} ({})", d.index, d.uuid.as_deref().unwrap_or("?"));
        if let Some(line) = slow_host_link(b, t) {
            evidence.push((Some(d.index), format!("{who}: {line}")));
        }
        if let Some(line) = slow_memory(b, t) {
            evidence.push((Some(d.index), format!("{who}: {line}")));
        }
    }
    evidence
}

fn slow_host_link(b: &crate::report::Bandwidth, t: &Telemetry) -> Option<String> {
    let link = b
        .pcie_link
        .as_ref()
        .filter(|l| l.reading == crate::report::LinkReading::UnderLoad)?;
    let (max_gen, max_width) = (
        *t.pcie_generation_max.value()?,
        *t.pcie_width_max_lanes.value()?,
    );
    let full = crate::peak::pcie_gbps(max_gen, max_width)?;
    let mut causes = Vec::new();
    if link.width < max_width {
        causes.push(format!("x{} of x{max_width}", link.width));
    }
    if link.generation < max_gen {
        causes.push(format!("gen {} of {max_gen}", link.generation));
    }
    let slow: Vec<String> = [
        ("host to device", &b.host_to_device),
        ("device to host", &b.device_to_host),
    ]
    .into_iter()
    .filter_map(|(what, x)| Some((what, x.as_ref()?)))
    .filter(|(_, x)| x.bytes >= MIN_JUDGED_HOST_BYTES && x.gbps < LOW_BANDWIDTH * full)
    .map(|(what, x)| {
        format!(
            "{what} {:.1} GB/s ({})",
            x.gbps,
            crate::units::percent(x.gbps / full)
        )
    })
    .collect();
    (!slow.is_empty() && !causes.is_empty()).then(|| {
        format!(
            "{} of the {full:.1} GB/s a gen {max_gen} x{max_width} link allows; NVML saw the \
             link at {} while the copies ran",
            slow.join(", "),
            causes.join(", ")
        )
    })
}

fn slow_memory(b: &crate::report::Bandwidth, t: &Telemetry) -> Option<String> {
    let clock = b.memory_clock_mhz_under_load?;
    let max = *t.memory_clock_max_mhz.value()?;
    if max == 0 || f64::from(clock) >= CLOCK_HELD_DOWN * f64::from(max) {
        return None;
    }
    let slow: Vec<String> = [
        ("device copy", &b.device_copy),
        ("streaming kernel", &b.stream_kernel),
    ]
    .into_iter()
    .filter_map(|(what, x)| {
        let x = x.as_ref().filter(|x| x.bytes >= MIN_JUDGED_DEVICE_BYTES)?;
        let e = x.efficiency.and_then(crate::report::Figure::value)?;
        (e < LOW_BANDWIDTH).then(|| {
            format!(
                "{what} {:.0} GB/s ({} of the memory's theoretical bandwidth)",
                x.gbps,
                crate::units::percent(e)
            )
        })
    })
    .collect();
    (!slow.is_empty()).then(|| {
        format!(
            "{}; NVML saw the memory clock at {clock} MHz of its maximum {max} MHz while the \
             copies ran",
            slow.join(", ")
        )
    })
}

fn windows_no_gpu_device(r: &Report) -> Option<Vec<String>> {
    let w = r.environment.windows.as_ref()?;
    (w.container && !w.host_driver_store && w.nvcuda_dll.is_none()).then(|| {
        vec![
            "no C:\\Windows\\System32\\HostDriverStore (the GPU device class was not given)".into(),
            "no nvcuda.dll".into(),
        ]
    })
}

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

fn jit_missing(r: &Report) -> DeviceEvidence {
    device_error(r, Stage::Module, CUDA_ERROR_JIT_COMPILER_NOT_FOUND)
}

fn nvml_missing(r: &Report) -> Option<Vec<String>> {
    (r.nvml.status == NvmlStatus::NotFound && r.driver.library_path.is_some()).then(|| {
        vec![
            "no libnvidia-ml.so.1 on the loader path".into(),
            format!(
                "NVIDIA_DRIVER_CAPABILITIES={}",
                shown(var(r, "NVIDIA_DRIVER_CAPABILITIES"))
            ),
        ]
    })
}

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

fn wsl(r: &Report) -> Option<Vec<String>> {
    r.environment
        .wsl
        .then(|| vec!["/dev/dxg or /usr/lib/wsl/lib present".into()])
}

fn kernel_version_unreadable(r: &Report) -> Option<Vec<String>> {
    r.environment.kernel_module_error.clone().map(|e| vec![e])
}

pub const RULES: &[Rule] = &[
    Rule {
        code: "GP001",
        severity: Severity::Error,
        summary: "This container has no GPU runtime: it was started without GPU access",
        when: "no /dev/nvidia* device nodes, CUDA missing or failing, NVML missing or failing (and not WSL2 or a Windows container): also when driver libraries were baked into the image",
        fix: "Start it with GPU access: `docker run --gpus all ...` (NVIDIA Container Toolkit), `--runtime=nvidia`, or CDI `--device nvidia.com/gpu=all`; in Kubernetes request `nvidia.com/gpu` in resources.limits. Do not install a driver in the image.",
        trigger: Trigger::Machine(no_gpu_runtime),
    },
    Rule {
        code: "GP002",
        severity: Severity::Error,
        summary: "NVML is here but libcuda is not: the container got the `utility` capability without `compute`",
        when: "libnvidia-ml loads and initialises, libcuda.so.1 is missing",
        fix: "Add the compute capability: `-e NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or `all`), e.g. `ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility` in the Dockerfile.",
        trigger: Trigger::Machine(nvml_without_cuda),
    },
    Rule {
        code: "GP003",
        severity: Severity::Error,
        summary: "NVIDIA_VISIBLE_DEVICES gives this container no GPU",
        when: "NVIDIA_VISIBLE_DEVICES is `none`, `void` or empty and CUDA finds no GPU",
        fix: "Set NVIDIA_VISIBLE_DEVICES=all (or GPU indices or UUIDs), or start with `--gpus all`: `none` injects the driver without GPUs, `void` or empty injects nothing.",
        trigger: Trigger::Machine(visible_devices_none),
    },
    Rule {
        code: "GP004",
        severity: Severity::Error,
        summary: "CUDA_VISIBLE_DEVICES hides every GPU this container has",
        when: "CUDA_VISIBLE_DEVICES is set, CUDA sees no device, but NVML or /dev/nvidiaN show GPUs",
        fix: "Unset CUDA_VISIBLE_DEVICES or list GPUs that exist (indices 0..N-1 or UUIDs from `gpuprobe list`); CUDA reads the list only up to its first invalid entry.",
        trigger: Trigger::Machine(cuda_visible_hides_all),
    },
    Rule {
        code: "GP005",
        severity: Severity::Warning,
        summary: "CUDA_VISIBLE_DEVICES names a GPU that does not exist, hiding it and every GPU listed after it",
        when: "an entry of CUDA_VISIBLE_DEVICES is out of range, an unknown UUID, or not an index or UUID, while CUDA still sees some GPU; a MIG entry (`MIG-<uuid>`, or `MIG-GPU-<uuid>/<gi>/<ci>` of drivers before 470) counts as unknown only when no GPU here is in MIG mode, or its GPU does not exist",
        fix: "Correct CUDA_VISIBLE_DEVICES: CUDA stops reading the list at the first entry that names no GPU, silently dropping the rest. Inside a container, indices count only the GPUs the container was given.",
        trigger: Trigger::Machine(cuda_visible_unknown_entry),
    },
    Rule {
        code: "GP006",
        severity: Severity::Error,
        summary: "The CUDA toolkit's stub libcuda was loaded instead of the driver",
        when: "cuInit returns 34 (CUDA_ERROR_STUB_LIBRARY) or the loaded libcuda lies in a stubs folder",
        fix: "Remove the toolkit's stubs folder (…/lib64/stubs) from LD_LIBRARY_PATH and /etc/ld.so.conf.d; the stub only serves linking at build time.",
        trigger: Trigger::Machine(stub_library),
    },
    Rule {
        code: "GP007",
        severity: Severity::Error,
        summary: "A CUDA forward-compatibility libcuda does not match the host's kernel module",
        when: "cuInit returns 803 (CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)",
        fix: "Remove /usr/local/cuda/compat from LD_LIBRARY_PATH (and ld.so.conf), or install the cuda-compat package that matches the host driver's branch.",
        trigger: Trigger::Machine(compat_mismatch),
    },
    Rule {
        code: "GP008",
        severity: Severity::Error,
        summary: "CUDA forward compatibility was attempted on a GPU that does not support it",
        when: "cuInit returns 804 (CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE)",
        fix: "Forward compatibility works only on data-center GPUs: remove the compat libraries from the image and upgrade the host driver instead.",
        trigger: Trigger::Machine(compat_unsupported),
    },
    Rule {
        code: "GP009",
        severity: Severity::Error,
        summary: "The nvidia-uvm kernel module or its device node is missing",
        when: "cuInit returns 999 (CUDA_ERROR_UNKNOWN), /dev/nvidiactl is there and /dev/nvidia-uvm is not",
        fix: "On the host, load nvidia_uvm and create its node: `sudo nvidia-modprobe -u -c=0`; then recreate the container (the toolkit passes /dev/nvidia-uvm only when it exists).",
        trigger: Trigger::Machine(uvm_missing),
    },
    Rule {
        code: "GP010",
        severity: Severity::Error,
        summary: "The user-space driver does not match the kernel module",
        when: "nvmlInit returns 18 (NVML_ERROR_LIB_RM_VERSION_MISMATCH), or NVML's driver version differs from /proc/driver/nvidia/version",
        fix: "If the host driver was upgraded, reboot the host (or reload the nvidia modules). If the image bakes NVIDIA driver libraries in, remove them: the toolkit injects the host's own.",
        trigger: Trigger::Machine(nvml_driver_mismatch),
    },
    Rule {
        code: "GP011",
        severity: Severity::Error,
        summary: "The driver is too old to compile the embedded PTX",
        when: "cuModuleLoadData returns 222 (CUDA_ERROR_UNSUPPORTED_PTX_VERSION)",
        fix: "Upgrade the host driver: a driver JIT-compiles PTX only up to the ISA of its own CUDA version.",
        trigger: Trigger::PerDevice(ptx_too_new),
    },
    Rule {
        code: "GP012",
        severity: Severity::Error,
        summary: "The host driver is older than the CUDA version this image requires",
        when: "NVIDIA_REQUIRE_CUDA (cuda>=X.Y) or --require-driver asks for a newer CUDA than cuDriverGetVersion reports",
        fix: "Upgrade the host driver (Linux: CUDA 12.x needs 525.60.13 or newer, 13.x needs 580.65.06 or newer), or use an image built for an older CUDA.",
        trigger: Trigger::Machine(driver_too_old),
    },
    Rule {
        code: "GP013",
        severity: Severity::Error,
        summary: "NVIDIA device nodes are present but access to them is denied",
        when: "a /dev/nvidia* node the container was given (present before the driver library ran) fails to open for read and write with EPERM or EACCES",
        fix: "Recreate the container: with the systemd cgroup driver, `systemctl daemon-reload` on the host revokes a running container's GPU access. Use CDI (`--device nvidia.com/gpu=all`) or pass the nodes with `--device /dev/nvidiaN` to avoid it; under SELinux try `--security-opt label=disable`.",
        trigger: Trigger::Machine(nodes_denied),
    },
    Rule {
        code: "GP014",
        severity: Severity::Error,
        summary: "A GPU has fallen off the bus",
        when: "NVML answers NVML_ERROR_GPU_IS_LOST (15) for a GPU",
        fix: "Check the host's kernel log for Xid 79, reset the GPU (`nvidia-smi -r -i N`) or reboot, and keep the node drained until gpuprobe passes again.",
        trigger: Trigger::PerDevice(gpu_lost),
    },
    Rule {
        code: "GP015",
        severity: Severity::Error,
        summary: "GPU memory has uncorrectable errors that need the GPU out of service",
        when: "judged by architecture, as NVIDIA's GPU memory error management does. A GPU that remaps rows (compute capability 8.0+): a row remap failed, or volatile uncorrectable ECC errors with no row remap pending to contain them (a pending remap alone is GP036). A GPU that retires pages (before 8.0): volatile uncorrectable ECC errors, or pages pending retirement",
        fix: "Drain the node. A failed row remap means the GPU has no spare rows left: replace it. Pages pending retirement are retired at the next GPU reset (`nvidia-smi -r`) or reboot; uncorrectable errors that recur after it mean the GPU needs replacing.",
        trigger: Trigger::PerDevice(memory_errors),
    },
    Rule {
        code: "GP016",
        severity: Severity::Warning,
        summary: "A GPU's PCIe link runs below its maximum",
        when: "the PCIe width is below the maximum of the GPU and its slot, or the generation is below it in a reading taken while the matmul ran (an idle link trains down to save power, so `list` and idle readings never judge the generation)",
        fix: "Reseat the card and check the riser and slot, the BIOS PCIe settings and the GPU's power cables; a degraded link slows every host transfer.",
        trigger: Trigger::PerDevice(pcie_degraded),
    },
    Rule {
        code: "GP017",
        severity: Severity::Warning,
        summary: "A GPU was throttled by temperature or power during the benchmark",
        when: "NVML's throttle reasons right after the benchmark include a thermal or hardware slowdown or a power brake; or a power cap (sw_power_cap) alone while the enforced limit is below the board's default (nvmlDeviceGetPowerManagementDefaultLimit) or the GPU draws under 90% of it. A GPU drawing its full, default limit under sustained load is holding that limit, which is normal (Azure's HPC health checks exclude it), and no finding",
        fix: "Check cooling and power delivery (`nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER`); a power limit set below the default also throttles.",
        trigger: Trigger::PerDevice(throttled),
    },
    Rule {
        code: "GP018",
        severity: Severity::Error,
        summary: "This Windows container was started without the GPU device class",
        when: "a Windows container with no C:\\Windows\\System32\\HostDriverStore and no nvcuda.dll",
        fix: "Run with process isolation and the GPU device class: `docker run --isolation process --device class/5B45201D-F2F2-4F3B-85BB-30FF1F953599 IMAGE` (Windows Server 2019 or Windows 10 1809 and newer, Docker 19.03+). Docker rejects PCI addresses such as `--device 0000:01:00.0`; do not install a driver in the image.",
        trigger: Trigger::Machine(windows_no_gpu_device),
    },
    Rule {
        code: "GP019",
        severity: Severity::Warning,
        summary: "CUDA is not officially supported inside Windows containers",
        when: "a Windows container started with the GPU device class",
        fix: "In Windows containers use DirectX-based APIs (DirectML, WinML), which Microsoft supports; run CUDA workloads in Linux containers (on Windows: Docker Desktop with WSL2 and `docker run --gpus all`).",
        trigger: Trigger::Machine(windows_cuda_unsupported),
    },
    Rule {
        code: "GP020",
        severity: Severity::Error,
        summary: "The PTX JIT compiler library is missing",
        when: "CUDA returns 221 (CUDA_ERROR_JIT_COMPILER_NOT_FOUND)",
        fix: "Add the compute capability (`NVIDIA_DRIVER_CAPABILITIES=compute,utility`) so the toolkit injects libnvidia-ptxjitcompiler.",
        trigger: Trigger::PerDevice(jit_missing),
    },
    Rule {
        code: "GP021",
        severity: Severity::Info,
        summary: "NVML is not in this container: no temperature, power, ECC or throttling data",
        when: "libcuda loads but libnvidia-ml.so.1 is missing",
        fix: "Add the utility capability: `NVIDIA_DRIVER_CAPABILITIES=compute,utility`.",
        trigger: Trigger::Machine(nvml_missing),
    },
    Rule {
        code: "GP022",
        severity: Severity::Warning,
        summary: "The CUDA toolkit's stubs folder is on LD_LIBRARY_PATH",
        when: "an LD_LIBRARY_PATH entry holds `stubs`, though the real driver was loaded",
        fix: "Remove the stubs folder from LD_LIBRARY_PATH: a program that loads libcuda.so (rather than libcuda.so.1) gets the stub and fails with CUDA_ERROR_STUB_LIBRARY.",
        trigger: Trigger::Machine(stubs_on_path),
    },
    Rule {
        code: "GP023",
        severity: Severity::Warning,
        summary: "The image carries its own NVIDIA driver libraries instead of the host's",
        when: "the loaded libcuda.so.VERSION differs from /proc/driver/nvidia/version, or a loaded driver library is a file of the image rather than a mount from the host (/proc/self/mountinfo); a CUDA forward-compatibility libcuda (in a compat folder, newer than the kernel module: GP028) is neither",
        fix: "Remove the NVIDIA driver packages from the image; the container toolkit injects the host's matching libraries (baked-in ones break at the next host driver upgrade).",
        trigger: Trigger::Machine(driver_baked_in),
    },
    Rule {
        code: "GP024",
        severity: Severity::Info,
        summary: "Running under WSL2 GPU paravirtualization: some NVML readings are not supported",
        when: "/dev/dxg or /usr/lib/wsl/lib is present",
        fix: "Nothing to fix: under WSL2 use `docker run --gpus all` and expect `not_supported` telemetry.",
        trigger: Trigger::Machine(wsl),
    },
    Rule {
        code: "GP025",
        severity: Severity::Info,
        summary: "The kernel module's version could not be read",
        when: "/proc/driver/nvidia/version exists but is unreadable or holds no version",
        fix: "Check that the container sees the host's /proc/driver/nvidia (the toolkit mounts it); driver/library mismatches cannot be checked without it.",
        trigger: Trigger::Machine(kernel_version_unreadable),
    },
    Rule {
        code: "GP026",
        severity: Severity::Warning,
        summary: "NVIDIA_VISIBLE_DEVICES holds entries the container toolkit does not understand",
        when: "an entry is not `all`, `none`, `void`, an index, a GPU or MIG UUID, or index:index",
        fix: "Use `all`, comma-separated indices, or UUIDs from `nvidia-smi -L`.",
        trigger: Trigger::Machine(visible_devices_malformed),
    },
    Rule {
        code: "GP027",
        severity: Severity::Error,
        summary: "NVIDIA device nodes are present but no NVIDIA kernel driver answers behind them",
        when: "a /dev/nvidia* node the container was given fails to open with ENXIO or ENODEV (open(2): no device behind the node)",
        fix: "On the host, check `nvidia-smi` and `lsmod | grep nvidia`: load the NVIDIA kernel module (`sudo modprobe nvidia`), or reinstall the driver and reboot after an upgrade. Device nodes alone do not make a GPU.",
        trigger: Trigger::Machine(nodes_without_driver),
    },
    Rule {
        code: "GP028",
        severity: Severity::Info,
        summary: "CUDA forward compatibility is in use: the image's newer libcuda runs on the host's older kernel module",
        when: "the loaded libcuda lies in a compat folder (/usr/local/cuda/compat or an LD_LIBRARY_PATH compat entry), its driver version is newer than /proc/driver/nvidia/version's, and cuInit succeeded",
        fix: "Nothing to fix: NVIDIA supports forward compatibility on data-center GPUs (CUDA Compatibility guide). Keep the cuda-compat package matched to the image's CUDA version; upgrading the host driver past it makes it unnecessary.",
        trigger: Trigger::Machine(forward_compat_in_use),
    },
    Rule {
        code: "GP029",
        severity: Severity::Info,
        summary: "A GPU is busy: it admits no CUDA context of this process, so its compute was not verified",
        when: "context creation is refused because the GPU is busy: compute mode PROHIBITED with CUDA_ERROR_DEVICE_UNAVAILABLE (46) or CUDA_ERROR_UNKNOWN (999, what cuda.h documents for the first retain), or EXCLUSIVE_PROCESS with 46, or with 101 or 216 (older drivers) while NVML lists another compute process (the workload); or out of memory (CUDA_ERROR_OUT_OF_MEMORY) with under 1 GiB free, the processes NVML lists holding at least 90% of the used memory (a job using nearly all of it; memory held by no listed process is GP034). Any other refusal fails the GPU, and NVML's health signals still judge a busy one",
        fix: "Nothing to fix for a GPU in use. To check compute, run gpuprobe before the workload starts (`gpuprobe exec -- CMD`) or while it is stopped; use `gpuprobe health --no-context` beside the workload, which makes no context. `nvidia-smi -q -d COMPUTE` shows the mode; `nvidia-smi -c DEFAULT` allows shared use.",
        trigger: Trigger::PerDevice(busy_gpu),
    },
    Rule {
        code: "GP030",
        severity: Severity::Warning,
        summary: "A GPU's matmul reached a low fraction of its FP32 peak, and NVML shows why",
        when: "the matmul filled the GPU (at least two thread blocks per SM: a smaller product is launch-bound, its efficiency reported but not judged), reached under 25% of the theoretical FP32 peak at the maximum clock (a floor until a real GPU's run measures the kernel), and NVML read the SM clock below 90% of its maximum while the products ran; throttle reasons read then, other than idle and those GP017 reports, name why (such as applications clocks set below the maximum). A reason with the clock at its maximum, or a reading after the run (an idle GPU clocks down), is no cause; on a MIG slice the evidence says so (its peak counts only its own SMs, so MIG alone is no cause)",
        fix: "For held-down clocks check `nvidia-smi -q -d PERFORMANCE,CLOCK`: reset applications clocks (`nvidia-smi -rac`) and locked clocks (`nvidia-smi -rgc`), and check cooling and power limits (`nvidia-smi -q -d POWER`). A MIG slice shares its GPU's clocks: another slice's load or a GPU-wide clock setting slows it too.",
        trigger: Trigger::PerDevice(low_efficiency),
    },
    Rule {
        code: "GP031",
        severity: Severity::Warning,
        summary: "A GPU moves data far slower than it should, and NVML shows why",
        when: "the bandwidth check's pinned host copies (of 4 MiB or more) reach under 50% of what the PCIe link allows at its maximum generation and width while NVML read the link narrower or slower than that maximum as they ran; or its device copy or streaming kernel (of 64 MiB or more) reaches under 50% of the theoretical memory bandwidth while NVML read the memory clock below 90% of its maximum as they ran. Healthy GPUs are reported to reach about 80-93% of the memory bandwidth in a copy and 75-90% of the link in pinned copies; MIG instances, whose share of either is unknown, are not judged",
        fix: "For the host link: reseat the card, check the riser and the slot, the BIOS PCIe settings and the GPU's power cables, and compare `nvidia-smi -q -d PCIE` (or `lspci -vv`: LnkSta against LnkCap) under load; a link trained down slows every transfer to and from the GPU. For memory: check `nvidia-smi -q -d CLOCK,PERFORMANCE` for a memory clock held down: reset locked memory clocks (`nvidia-smi -rmc`) and applications clocks (`nvidia-smi -rac`), and check power and cooling.",
        trigger: Trigger::PerDevice(low_bandwidth),
    },
    Rule {
        code: "GP032",
        severity: Severity::Warning,
        summary: "A GPU slowed down under sustained load",
        when: "`burn`: the worst interval's throughput is below 85% of the best interval's (both after the first, whose clocks may still be ramping up); the evidence gives what NVML read during that interval (SM clock below 90% of its maximum, throttle reasons, temperature), or says that it saw no cause. `sw_power_cap` alone is how a GPU at its power limit runs; a thermal slowdown is a cooling fault",
        fix: "A GPU that slows once warm is held by power or cooling: check `nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER` during load, the chassis airflow and fan state, the power limit (`nvidia-smi -pl`) and the PSU; compare with the node's other GPUs. With no NVML cause, look for another process on the GPU (`nvidia-smi`), or a clock setting changed during the run.",
        trigger: Trigger::PerDevice(burn_slowdown),
    },
    Rule {
        code: "GP033",
        severity: Severity::Error,
        summary: "A GPU computed wrong results, or reported uncorrectable memory errors, under sustained load",
        when: "`burn`: a product copied back during the burn differs in any bit from the same product verified against the CPU at the start, or NVML's volatile uncorrectable ECC count grew during the burn",
        fix: "Take the node out of service: a GPU that is right when cool and wrong under load has failing memory or an unstable core (heat, power delivery). Check `nvidia-smi -q -d ECC,ROW_REMAPPER,TEMPERATURE`, reset the GPU (`nvidia-smi -r`) to apply pending row remaps, run `dcgmi diag -r 3`, and open an RMA with the evidence if it repeats.",
        trigger: Trigger::PerDevice(burn_errors),
    },
    Rule {
        code: "GP034",
        severity: Severity::Warning,
        summary: "A GPU's memory is full, held by no process NVML lists",
        when: "context creation ran out of memory (CUDA_ERROR_OUT_OF_MEMORY) with under 1 GiB free, and the processes nvmlDeviceGetComputeRunningProcesses lists hold under 90% of the used memory: memory held with no process (an orphaned context, a driver leak). A full GPU whose memory the listed processes hold is busy instead (GP029)",
        fix: "Find the memory's owner on the host (`nvidia-smi --query-compute-apps=pid,used_memory --format=csv`; inside a container NVML lists the host's PIDs). With no owner, reset the GPU when it is idle (`nvidia-smi -r -i N`) or reboot the node; until then jobs scheduled on it fail to allocate.",
        trigger: Trigger::PerDevice(memory_without_process),
    },
    Rule {
        code: "GP035",
        severity: Severity::Error,
        summary: "Wrong results that look like software, not a faulty GPU: gpuprobe's kernel or the driver's JIT",
        when: "two or more GPUs returned the same wrong elements of the matmul, bit for bit (hardware faults are random and per GPU; a miscompiled kernel is wrong alike everywhere), or a GPU's tensor-core check got wrong elements while its FP32 matmul on the same integer inputs was exact (gpuprobe's tensor-core kernels hold hand-written mma.sync PTX)",
        fix: "Do not drain these GPUs for this: the likely cause is gpuprobe's kernel or the driver's PTX JIT. Compare with another driver version or node, and with cuBLAS (`gpuprobe bench`); report it to gpuprobe with this JSON output (`--json`) and the driver version. The run still failed: nothing on these GPUs was shown to compute right.",
        trigger: Trigger::PerDevice(software_fault),
    },
    Rule {
        code: "GP036",
        severity: Severity::Warning,
        summary: "Uncorrectable memory errors were contained, and a row remap waits for a GPU reset",
        when: "a GPU that remaps rows (compute capability 8.0+: Ampere GA100 and newer) reports a pending row remap and no failed one, whatever its volatile uncorrectable count: error containment kept the error to the process that hit it (CUDA_ERROR_ECC_UNCORRECTABLE, 214, sticky for that context only), and the remap takes effect at the next reset (NVIDIA, GPU Memory Error Management)",
        fix: "Reset the GPU when it is idle (`nvidia-smi -r -i N`) or at the next maintenance window: the remap is applied then. Jobs can run meanwhile; the one that hit the error must restart. Drain and replace only if a remap fails or errors recur after the reset.",
        trigger: Trigger::PerDevice(remap_pending),
    },
];

/// GPUs whose wrong results point at software rather than silicon (GP035):
/// the same wrong elements on two or more GPUs, bit for bit, or a
/// tensor-core check that failed where the FP32 matmul was exact.
fn software_fault(r: &Report) -> DeviceEvidence {
    use crate::report::Verification;
    let wrong: Vec<(u32, &Verification)> = r
        .devices
        .iter()
        .filter_map(|d| {
            let v = &d.matmul.as_ref()?.verification;
            (!v.passed).then_some((d.index, v))
        })
        .collect();
    let alike = |a: &Verification, b: &Verification| {
        a.mismatches == b.mismatches
            && !a.faults.is_empty()
            && a.faults.len() == b.faults.len()
            && a.faults
                .iter()
                .zip(&b.faults)
                .all(|(x, y)| x.index == y.index && x.gpu.to_bits() == y.gpu.to_bits())
    };
    let mut evidence = Vec::new();
    for (index, v) in &wrong {
        let twins: Vec<String> = wrong
            .iter()
            .filter(|(other, w)| other != index && alike(v, w))
            .map(|(other, _)| other.to_string())
            .collect();
        if let (false, Some(first)) = (twins.is_empty(), v.faults.first()) {
            evidence.push((
                Some(*index),
                format!(
                    "GPU {index}: the same {} wrong element(s) as GPU {}, bit for bit (the \
                     first at row {}, column {}: {} for {})",
                    v.mismatches,
                    twins.join(", GPU "),
                    first.row,
                    first.col,
                    first.gpu,
                    first.expected
                ),
            ));
        }
    }
    // A tensor-core kernel that another GPU of the node ran right is no
    // software fault: this GPU's tensor units are the suspects then.
    let passed_elsewhere = |index: u32, kernel: &str| {
        r.devices.iter().any(|o| {
            o.index != index
                && o.tensor_cores
                    .iter()
                    .any(|t| t.kernel == kernel && t.verification.passed)
        })
    };
    for d in &r.devices {
        if !d.matmul.as_ref().is_some_and(|m| m.verification.passed) {
            continue;
        }
        for t in d
            .tensor_cores
            .iter()
            .filter(|t| !t.verification.passed && !passed_elsewhere(d.index, &t.kernel))
        {
            evidence.push((
                Some(d.index),
                format!(
                    "GPU {}: the tensor-core kernel {} got {} of {} elements wrong while the \
                     FP32 matmul on the same integer inputs was exact",
                    d.index, t.kernel, t.verification.mismatches, t.verification.elements
                ),
            ));
        }
    }
    evidence
}

/// GPUs whose memory is full and held by no listed process (GP034).
fn memory_without_process(r: &Report) -> DeviceEvidence {
    r.devices
        .iter()
        .filter(|d| d.compute_not_verified == Some(NotVerified::MemoryHeldWithoutProcess))
        .map(|d| {
            let held = d
                .telemetry
                .as_ref()
                .and_then(|t| {
                    Some((
                        *t.compute_processes.value()?,
                        *t.compute_processes_memory_bytes.value()?,
                    ))
                })
                .map_or("unknown".to_string(), |(n, bytes)| {
                    format!("{n} process(es) holding {}", crate::units::bytes(bytes))
                });
            let used = d
                .memory_used_bytes
                .map_or("?".to_string(), crate::units::bytes);
            let free = d
                .memory_free_bytes
                .map_or("?".to_string(), crate::units::bytes);
            (
                Some(d.index),
                format!(
                    "GPU {} ({}): {used} used, {free} free; NVML lists {held}",
                    d.index,
                    d.uuid.as_deref().unwrap_or("?")
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_ordered() {
        let codes: Vec<&str> = RULES.iter().map(|r| r.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted);
    }

    /// GP031 needs all three: a bandwidth far below what it should be,
    /// copies long enough to judge, and a cause NVML saw while they ran.
    #[test]
    fn low_bandwidth_needs_a_cause_and_copies_long_enough_to_judge() {
        use crate::report::{Figure, LinkReading, PcieLink};
        let healthy =
            Report::from_json(include_bytes!("../../../benches/report-one-gpu.json")).unwrap();
        let fires = |r: &Report| !low_bandwidth(r).is_empty();
        assert!(!fires(&healthy), "the fixture's GPU reaches 90% and 85%");

        // Device memory: a third of the theoretical bandwidth, the memory
        // clock held at 1000 of 2619 MHz.
        let slow_memory = |clock: u32, efficiency: f64, bytes: u64| {
            let mut r = healthy.clone();
            let b = r.devices[0].bandwidth.as_mut().unwrap();
            b.memory_clock_mhz_under_load = Some(clock);
            let t = b.device_copy.as_mut().unwrap();
            t.efficiency = Some(Figure::Value(efficiency));
            t.bytes = bytes;
            r
        };
        assert!(fires(&slow_memory(1000, 0.34, 256 << 20)));
        assert!(!fires(&slow_memory(2619, 0.34, 256 << 20)), "no cause");
        assert!(!fires(&slow_memory(1000, 0.85, 256 << 20)), "not slow");
        assert!(!fires(&slow_memory(1000, 0.34, 1 << 20)), "too short");
        let mut mig = slow_memory(1000, 0.34, 256 << 20);
        mig.devices[0].mig_parent_uuid = Some("GPU-5b3a8f1e".into());
        assert!(!fires(&mig), "a MIG slice's share is unknown");

        // The host link: x4 of x16 under load, a fifth of gen 5 x16.
        let slow_link = |width: u32, reading: LinkReading, gbps: f64| {
            let mut r = healthy.clone();
            let b = r.devices[0].bandwidth.as_mut().unwrap();
            b.pcie_link = Some(PcieLink {
                generation: 5,
                width,
                reading,
            });
            b.host_to_device.as_mut().unwrap().gbps = gbps;
            r
        };
        let evidence = low_bandwidth(&slow_link(4, LinkReading::UnderLoad, 13.4));
        assert_eq!(evidence.len(), 1);
        assert!(evidence[0].1.contains("x4 of x16"), "{}", evidence[0].1);
        assert!(
            !fires(&slow_link(16, LinkReading::UnderLoad, 13.4)),
            "no cause"
        );
        assert!(
            !fires(&slow_link(4, LinkReading::Max, 13.4)),
            "not read under load"
        );
        assert!(
            !fires(&slow_link(4, LinkReading::UnderLoad, 40.0)),
            "not slow"
        );
    }

    #[test]
    fn require_cuda_parsing() {
        assert_eq!(
            required_cuda("cuda>=12.2 brand=tesla,driver>=470,driver<471"),
            Some(CudaVersion::new(12, 2))
        );
        assert_eq!(required_cuda("brand=tesla"), None);
        assert_eq!(required_cuda("cuda>=twelve"), None);
    }
}
