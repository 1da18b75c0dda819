//! The `context` check of one GPU, shared by the pipeline (device.rs) and
//! `bench`: the primary context, or why the GPU admits none, telling a
//! busy GPU (its compute mode, or its memory held by other processes) from
//! a broken one.
use super::progress::{Done, Progress, Scope};
use crate::cuda::{Context, CuDevice, Driver};
use crate::report::{ComputeMode, NotRun, NotVerified};
use crate::stage::Stage;
use crate::telemetry;
use crate::units::bytes;
use cudarc::driver::sys::CUdevice_attribute as Attr;

/// Why a GPU has no context: it admits none of this process (the check
/// skipped), or the check failed.
pub(super) enum NoContext {
    Refused(NotVerified),
    Failed,
}

/// The `context` check of the GPU in `slot` (also `bench`'s): skipped, not
/// failed, when the GPU is busy (`busy_refusal`, `memory_refusal`): a busy
/// GPU is not a broken one, and its health is then NVML's to tell (GP029);
/// the reason is recorded as `compute_not_verified`, with NVML's memory
/// readings, which need no context.
pub(super) fn bind_context<'d>(
    progress: &Progress,
    slot: usize,
    driver: &'d Driver,
    device: CuDevice,
    nvml: Option<&telemetry::NvmlDevice<'_>>,
) -> Result<Context<'d>, NoContext> {
    let made = progress.stage(Scope::Device(slot), Stage::Context, || {
        match Context::bind(driver, device) {
            Ok(ctx) => Ok(Done::pass(Ok(ctx), "primary context created and current")),
            Err(e) => {
                // Read after the refusal, with no context of ours on the
                // GPU: every process NVML lists is another's.
                let mode = compute_mode(driver, device, nvml.map(telemetry::NvmlDevice::gpu));
                // The device's own: a MIG device's processes and memory.
                let own = nvml.and_then(telemetry::NvmlDevice::own);
                let others = own.and_then(|d| telemetry::compute_processes(d).ok());
                let memory = own.and_then(telemetry::memory);
                let why = if busy_refusal(e.code, mode, others.map(|p| p.count)) {
                    NotVerified::BusyComputeMode
                } else if let Some(why) = memory_refusal(e.code, memory, others) {
                    why
                } else {
                    return Err(e.into());
                };
                progress.update(|r| {
                    let d = &mut r.devices[slot];
                    d.compute_not_verified = Some(why);
                    if let Some((free, used)) = memory {
                        d.memory_free_bytes = Some(free);
                        d.memory_used_bytes = Some(used);
                    }
                });
                let mode = mode.map_or("unknown".into(), |m| m.to_string());
                let others = others.map_or("unknown (no NVML)".into(), |p| {
                    format!("{} holding {}", p.count, bytes(p.bytes))
                });
                let memory = memory.map_or(String::new(), |(free, used)| {
                    format!("; {} used, {} free", bytes(used), bytes(free))
                });
                let detail = format!(
                    "compute not verified: the GPU admits no context of this process (compute \
                     mode {mode}; other compute processes {others}{memory}): {e}"
                );
                Ok(match why {
                    NotVerified::MemoryHeldWithoutProcess => Done {
                        error: Some(e),
                        ..Done::warn(Err(why), format!("{detail}; memory held with no process"))
                            .not_run(NotRun::MemoryHeld)
                    },
                    NotVerified::BusyComputeMode | NotVerified::BusyMemory => {
                        Done::skip(Err(why), NotRun::Busy, detail, Some(e))
                    }
                })
            }
        }
    });
    match made {
        Some(Ok(ctx)) => Ok(ctx),
        Some(Err(why)) => Err(NoContext::Refused(why)),
        None => Err(NoContext::Failed),
    }
}

/// Below this much free memory, NVML's reading explains a context that ran
/// out of memory: a context with gpuprobe's modules costs hundreds of MiB
/// (../shared/FACTS.md section 11; the probe measures it as
/// `context_memory_bytes`), so with more free than this an out-of-memory
/// context is no lack of room.
const CONTEXT_ROOM: u64 = 1 << 30;

/// The share of used memory the listed processes must hold for a full GPU
/// to count as busy rather than holding memory with no process.
const LISTED_SHARE: f64 = 0.9;

/// Why a context that ran out of memory (CUDA_ERROR_OUT_OF_MEMORY, 2, and
/// only that) was refused, from NVML's (free, used) memory and the (count,
/// bytes) of the processes it lists, which need no context: busy when less
/// than `CONTEXT_ROOM` is free and the listed processes hold at least
/// `LISTED_SHARE` of what is used (a job using nearly all of it); memory
/// held with no process when they hold less (an orphaned context or a
/// leak: a reset frees it); `None` (a failure) otherwise, NVML silent
/// included. A busy GPU's health is still NVML's signals' to judge.
pub(super) fn memory_refusal(
    code: i32,
    memory: Option<(u64, u64)>,
    others: Option<telemetry::Processes>,
) -> Option<NotVerified> {
    let ((free, used), listed) = (memory?, others?);
    if code != crate::cuda::error::CUDA_ERROR_OUT_OF_MEMORY || free >= CONTEXT_ROOM {
        return None;
    }
    // A listed process whose memory NVML cannot read (WDDM) may hold it
    // all: busy, never "held by no process".
    let held = listed.some_unknown && listed.count > 0
        || (listed.bytes as f64 >= LISTED_SHARE * used as f64 && used > 0);
    Some(if held {
        NotVerified::BusyMemory
    } else {
        NotVerified::MemoryHeldWithoutProcess
    })
}

/// The GPU's compute mode, from the driver (CU_DEVICE_ATTRIBUTE_COMPUTE_MODE
/// needs no context) or else NVML; CUcomputemode and nvmlComputeMode_t
/// share their numbers.
fn compute_mode(
    driver: &Driver,
    device: CuDevice,
    nvml: Option<&nvml_wrapper::Device<'_>>,
) -> Option<ComputeMode> {
    driver
        .device_attribute(device, Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_MODE)
        .ok()
        .and_then(|m| usize::try_from(m).ok())
        .and_then(|m| ComputeMode::ALL.get(m).copied())
        .or_else(|| {
            nvml.and_then(|d| d.compute_mode().ok())
                .map(ComputeMode::from)
        })
}

/// Whether a refused context means a busy GPU rather than a broken one,
/// from the code, the compute mode and how many other processes NVML lists
/// (`None`: NVML cannot say). The codes by mode (../shared/FACTS.md
/// section 12): PROHIBITED refuses every context, the first retain with
/// CUDA_ERROR_UNKNOWN (999, cuda.h on cuDevicePrimaryCtxRetain) and later
/// ones with CUDA_ERROR_DEVICE_UNAVAILABLE (46). EXCLUSIVE_PROCESS held by
/// another process answers 46 from current drivers, 101 (INVALID_DEVICE)
/// from older ones, 216 (CONTEXT_ALREADY_IN_USE) from the removed
/// EXCLUSIVE_THREAD mode's: busy only when NVML lists that other process,
/// except 46, which means exactly this (cuda.h), where NVML cannot look.
/// Anything else is a failure: 999 is a missing nvidia-uvm outside
/// PROHIBITED (GP009), 101 or 216 in DEFAULT mode a broken device. NVML's
/// health signals still judge a busy GPU (GP015 and the others).
pub(super) fn busy_refusal(code: i32, mode: Option<ComputeMode>, others: Option<u32>) -> bool {
    use crate::cuda::error::{
        CUDA_ERROR_CONTEXT_ALREADY_IN_USE as IN_USE, CUDA_ERROR_DEVICE_UNAVAILABLE as UNAVAILABLE,
        CUDA_ERROR_INVALID_DEVICE as INVALID, CUDA_ERROR_UNKNOWN as UNKNOWN,
    };
    match mode {
        Some(ComputeMode::Prohibited) => code == UNAVAILABLE || code == UNKNOWN,
        Some(ComputeMode::ExclusiveProcess) => match others {
            Some(n) => n >= 1 && [UNAVAILABLE, INVALID, IN_USE].contains(&code),
            None => code == UNAVAILABLE,
        },
        // The mode unread: 46 still says busy (cuda.h), nothing else does.
        None => code == UNAVAILABLE,
        Some(ComputeMode::Default | ComputeMode::ExclusiveThread) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_busy_by_its_code_mode_and_the_other_processes() {
        use ComputeMode::{Default, ExclusiveProcess as Exclusive, Prohibited};
        // PROHIBITED: 46, and 999 on the first retain (cuda.h).
        assert!(busy_refusal(999, Some(Prohibited), None));
        assert!(busy_refusal(46, Some(Prohibited), Some(0)));
        assert!(!busy_refusal(101, Some(Prohibited), Some(1)));
        // EXCLUSIVE_PROCESS: 46/101/216 while NVML lists another process.
        for code in [46, 101, 216] {
            assert!(busy_refusal(code, Some(Exclusive), Some(1)), "{code}");
            assert!(!busy_refusal(code, Some(Exclusive), Some(0)), "{code}");
        }
        assert!(busy_refusal(46, Some(Exclusive), None));
        assert!(!busy_refusal(101, Some(Exclusive), None));
        assert!(!busy_refusal(999, Some(Exclusive), Some(1)));
        // DEFAULT: nothing holds the GPU; every refusal is a failure.
        for code in [46, 101, 216, 999] {
            assert!(!busy_refusal(code, Some(Default), Some(3)), "{code}");
        }
        // The mode unread: only 46 means busy.
        assert!(busy_refusal(46, None, None));
        assert!(!busy_refusal(999, None, Some(1)));
    }

    #[test]
    fn a_full_gpu_is_busy_when_its_processes_hold_the_memory() {
        use telemetry::Processes;
        const GIB: u64 = 1 << 30;
        let listed = |count, bytes, some_unknown| {
            Some(Processes {
                count,
                bytes,
                some_unknown,
            })
        };
        let full = Some((GIB / 4, 79 * GIB));
        assert_eq!(
            memory_refusal(2, full, listed(2, 78 * GIB, false)),
            Some(NotVerified::BusyMemory)
        );
        assert_eq!(
            memory_refusal(2, full, listed(0, 0, false)),
            Some(NotVerified::MemoryHeldWithoutProcess)
        );
        // NVML cannot read a listed process's memory (WDDM): busy.
        assert_eq!(
            memory_refusal(2, full, listed(1, 0, true)),
            Some(NotVerified::BusyMemory)
        );
        // Room enough, another code, or NVML silent: a failure.
        assert_eq!(
            memory_refusal(2, Some((8 * GIB, 70 * GIB)), listed(1, 70 * GIB, false)),
            None
        );
        assert_eq!(memory_refusal(999, full, listed(2, 78 * GIB, false)), None);
        assert_eq!(memory_refusal(2, None, listed(2, 78 * GIB, false)), None);
    }
}
