//! The kernel module's view of each GPU, shared by the fake's two libraries.
//!
//! On a real machine NVML learns from the kernel module's resource manager
//! what libcuda did: the memory a context and its allocations take
//! (nvmlDeviceGetMemoryInfo) and whether the GPU has work, which keeps its
//! PCIe link trained up (nvidia-smi(1), "Link Width/Generation"). The fake's
//! libcuda.so.1 and libnvidia-ml.so.1 share no memory, as the real ones do
//! not, so libcuda publishes that view in one small file per GPU of the
//! prepared folder (FAKEGPU_RM, written by `fakegpu prepare`) and NVML reads
//! it, with how long the GPU has worked so far (the clock of a scenario's
//! `under_load` phases, which NVML's readings follow). Both do so holding the driver lock (driver_lock.rs), so a reader never
//! sees half a write.
use std::path::PathBuf;

/// What the kernel module knows of one GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rm {
    /// Work is queued on the GPU that no host call has waited for yet.
    pub busy: bool,
    /// Device memory this process's contexts and allocations take.
    pub used_bytes: u64,
    /// The summed time of the launches this process ran on the GPU, ms.
    pub worked_ms: f64,
}

fn path(index: usize) -> Option<PathBuf> {
    std::env::var_os("FAKEGPU_RM").map(|dir| PathBuf::from(dir).join(format!("gpu{index}")))
}

/// The view of scenario device `index`: nothing queued and nothing taken
/// until libcuda has published one.
#[must_use]
pub fn read(index: usize) -> Rm {
    let Some(text) = path(index).and_then(|p| std::fs::read_to_string(p).ok()) else {
        return Rm::default();
    };
    let mut words = text.split_whitespace();
    Rm {
        busy: words.next() == Some("busy"),
        used_bytes: words.next().and_then(|w| w.parse().ok()).unwrap_or(0),
        worked_ms: words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0),
    }
}

/// Publishes the view of scenario device `index`.
pub fn write(index: usize, rm: Rm) {
    if let Some(p) = path(index) {
        let state = if rm.busy { "busy" } else { "idle" };
        let _ = std::fs::write(p, format!("{state} {} {}\n", rm.used_bytes, rm.worked_ms));
    }
}
