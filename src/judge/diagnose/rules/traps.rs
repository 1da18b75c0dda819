//! Variables that change what CUDA does in every process of the container
//! and slow or break jobs (`Environment::traps`): DCGM's diagnostic warns
//! of the same list (NVIDIA/DCGM, nvvs/plugin_src/software/Software.cpp,
//! DCGM_FR_BAD_CUDA_ENV), with blocking launches and an MPS pipe directory
//! that leads nowhere added. What each does is from NVIDIA's documentation:
//! the CUDA Programming Guide's "CUDA Environment Variables", the Nsight
//! documentation and nvidia-cuda-mps-control(1).
use crate::judge::diagnose::{Remedy, Rule, Trigger};
use crate::report::{Action, Report, Severity, TrapVariable};

pub(super) const GP045: Rule = Rule {
    code: "GP045",
    severity: Severity::Warning,
    summary: "A variable set in this container changes how CUDA runs in every process started here, slowing or breaking jobs",
    when: "one of the variables DCGM's diagnostic warns of (CUDA_INJECTION32_PATH, CUDA_INJECTION64_PATH, NSIGHT_CUDA_DEBUGGER, CUDA_AUTO_BOOST, CUDA_ENABLE_COREDUMP_ON_EXCEPTION, CUDA_COREDUMP_FILE, CUDA_DEVICE_WAITS_ON_EXCEPTION, CUDA_PROFILE, COMPUTE_PROFILE, OPENCL_PROFILE), or CUDA_LAUNCH_BLOCKING, is set (a switch set to its documented default 0 is not), or CUDA_MPS_PIPE_DIRECTORY names a directory without the MPS control daemon's `control` socket, where CUDA runs without MPS. The evidence names each with its value and what it does",
    fix: "Remove the variable from the image (ENV), the pod spec or the job's environment; set debugging and profiling variables only in the run being debugged. For CUDA_MPS_PIPE_DIRECTORY, mount the MPS daemon's pipe directory (the one nvidia-cuda-mps-control -d was started with) at that path, or unset it if the job is not meant to share the GPU through MPS.",
    action: Remedy::Always(Action::FixConfiguration),
    trigger: Trigger::Machine(traps_set),
};

/// What a trap does to every CUDA process, and what to do about it.
fn effect(variable: TrapVariable) -> &'static str {
    match variable {
        TrapVariable::CudaInjection32Path | TrapVariable::CudaInjection64Path => {
            "loads a tracing or profiling library (Nsight Systems, CUPTI) into every CUDA process, which traces every call and holds the GPU's performance counters; unset it"
        }
        TrapVariable::NsightCudaDebugger => {
            "makes every CUDA process attachable by the Nsight debugger, which stays resident and slows it; unset it"
        }
        TrapVariable::CudaAutoBoost => {
            "overrides the GPU's auto boost setting (deprecated: NVIDIA points to applications clocks or NVML); unset it"
        }
        TrapVariable::CudaEnableCoredumpOnException => {
            "writes a GPU core dump, and a CPU one, on every device exception: a failing job stalls while gigabytes are written; unset it"
        }
        TrapVariable::CudaCoredumpFile => {
            "sends GPU core dumps to this file; unset it with the core dump switch"
        }
        TrapVariable::CudaDeviceWaitsOnException => {
            "halts a process on a device exception, waiting for a debugger to attach: a failing job hangs instead of ending; unset it"
        }
        TrapVariable::CudaProfile | TrapVariable::ComputeProfile | TrapVariable::OpenclProfile => {
            "turns on a legacy profiler that logs every kernel of every process; unset it"
        }
        TrapVariable::CudaLaunchBlocking => {
            "makes every kernel launch wait for the GPU (\"for debugging purposes only\", CUDA Programming Guide): every job runs slower; unset it or set 0"
        }
        TrapVariable::CudaMpsPipeDirectory => {
            "names an MPS pipe directory with no `control` socket in it: CUDA cannot reach the MPS control daemon and runs every process without MPS, on its own context (with EXCLUSIVE_PROCESS compute mode a second process is refused); mount the daemon's pipe directory there or unset it"
        }
    }
}

/// GP045: each trap set, with its value and what it does.
fn traps_set(r: &Report) -> Option<Vec<String>> {
    let lines: Vec<String> = r
        .environment
        .traps
        .iter()
        .map(|t| format!("{}={:?}: {}", t.variable, t.value, effect(t.variable)))
        .collect();
    (!lines.is_empty()).then_some(lines)
}
