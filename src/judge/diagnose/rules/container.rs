//! A container started without a GPU runtime, or with only part of one: no
//! device nodes, the `utility` capability without `compute` or the reverse,
//! no nvidia-uvm node, device nodes that do not open (the NVIDIA Container
//! Toolkit's documentation and open(2)).
use super::facts::{cuda_missing, given_nodes, init_error, non_empty, var};
use crate::cuda::error::CUDA_ERROR_UNKNOWN;
use crate::judge::diagnose::{Remedy, Rule, Trigger};
use crate::report::{Action, DeviceNode, NodeError, NvmlStatus, Report, Severity};

fn has_node(r: &Report, path: &str) -> bool {
    given_nodes(r).any(|n| n.path == path)
}

fn nvidia_nodes(r: &Report) -> bool {
    given_nodes(r).any(|n| n.path.starts_with("/dev/nvidia"))
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "(unset)".to_string(), |v| format!("{v:?}"))
}

pub(super) const GP001: Rule = Rule {
    code: "GP001",
    severity: Severity::Error,
    summary: "This container has no GPU runtime: it was started without GPU access",
    when: "no /dev/nvidia* device nodes, CUDA missing or failing, NVML missing or failing (and not WSL2 or a Windows container): also when driver libraries were baked into the image",
    fix: "Start it with GPU access: `docker run --gpus all ...` (NVIDIA Container Toolkit), `--runtime=nvidia`, or CDI `--device nvidia.com/gpu=all`; in Kubernetes request `nvidia.com/gpu` in resources.limits. Do not install a driver in the image.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(no_gpu_runtime),
};

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

pub(super) const GP002: Rule = Rule {
    code: "GP002",
    severity: Severity::Error,
    summary: "NVML is here but libcuda is not: the container got the `utility` capability without `compute`",
    when: "libnvidia-ml loads and initialises, libcuda.so.1 is missing",
    fix: "Add the compute capability: `-e NVIDIA_DRIVER_CAPABILITIES=compute,utility` (or `all`), e.g. `ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility` in the Dockerfile.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(nvml_without_cuda),
};

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

pub(super) const GP021: Rule = Rule {
    code: "GP021",
    severity: Severity::Info,
    summary: "NVML is not in this container: no temperature, power, ECC or throttling data",
    when: "libcuda loads but libnvidia-ml.so.1 is missing",
    fix: "Add the utility capability: `NVIDIA_DRIVER_CAPABILITIES=compute,utility`.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(nvml_missing),
};

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

pub(super) const GP009: Rule = Rule {
    code: "GP009",
    severity: Severity::Error,
    summary: "The nvidia-uvm kernel module or its device node is missing",
    when: "cuInit returns 999 (CUDA_ERROR_UNKNOWN), /dev/nvidiactl is there and /dev/nvidia-uvm is not",
    fix: "On the host, load nvidia_uvm and create its node: `sudo nvidia-modprobe -u -c=0`; then recreate the container (the toolkit passes /dev/nvidia-uvm only when it exists).",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(uvm_missing),
};

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

pub(super) const GP013: Rule = Rule {
    code: "GP013",
    severity: Severity::Error,
    summary: "NVIDIA device nodes are present but access to them is denied",
    when: "a /dev/nvidia* node the container was given (present before the driver library ran) fails to open for read and write with EPERM or EACCES",
    fix: "Recreate the container: with the systemd cgroup driver, `systemctl daemon-reload` on the host revokes a running container's GPU access. Use CDI (`--device nvidia.com/gpu=all`) or pass the nodes with `--device /dev/nvidiaN` to avoid it; under SELinux try `--security-opt label=disable`.",
    action: Remedy::Always(Action::RestartWorkload),
    trigger: Trigger::Machine(nodes_denied),
};

fn nodes_denied(r: &Report) -> Option<Vec<String>> {
    nodes_failing(r, NodeError::PermissionDenied)
}

pub(super) const GP027: Rule = Rule {
    code: "GP027",
    severity: Severity::Error,
    summary: "NVIDIA device nodes are present but no NVIDIA kernel driver answers behind them",
    when: "a /dev/nvidia* node the container was given fails to open with ENXIO or ENODEV (open(2): no device behind the node)",
    fix: "On the host, check `nvidia-smi` and `lsmod | grep nvidia`: load the NVIDIA kernel module (`sudo modprobe nvidia`), or reinstall the driver and reboot after an upgrade. Device nodes alone do not make a GPU.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(nodes_without_driver),
};

fn nodes_without_driver(r: &Report) -> Option<Vec<String>> {
    nodes_failing(r, NodeError::NoDriver)
}
