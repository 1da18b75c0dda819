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
//! `under_load` phases, which NVML's readings follow). Each view is
//! renamed into place whole (`write`), so a reader never sees half a write.
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
    /// While `busy`: when the GPU last went from idle to busy, in ms of
    /// wall time since the Unix epoch (the clock both libraries share, as
    /// the kernel module's is shared by the real ones); what the link's
    /// ramp (`Pcie::ramp_ms`) counts from.
    pub busy_since_ms: f64,
}

impl Rm {
    /// How long the GPU has been busy, ms (0 when idle).
    #[must_use]
    pub fn busy_for_ms(&self) -> f64 {
        if self.busy {
            (now_ms() - self.busy_since_ms).max(0.0)
        } else {
            0.0
        }
    }
}

/// Wall time since the Unix epoch, ms.
#[must_use]
pub fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
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
        busy_since_ms: words.next().and_then(|w| w.parse().ok()).unwrap_or(0.0),
    }
}

/// Publishes the view of scenario device `index`: written beside and
/// renamed into place, so a reader sees the old view or the new one, never
/// an empty or half-written file (a launch publishes what its emulation
/// took after the call has let the driver lock go).
pub fn write(index: usize, rm: Rm) {
    if let Some(p) = path(index) {
        let state = if rm.busy { "busy" } else { "idle" };
        let scratch = p.with_extension(format!("tmp-{}", std::process::id()));
        let text = format!(
            "{state} {} {} {}\n",
            rm.used_bytes, rm.worked_ms, rm.busy_since_ms
        );
        if std::fs::write(&scratch, text).is_ok() && std::fs::rename(&scratch, &p).is_err() {
            let _ = std::fs::remove_file(&scratch);
        }
    }
}
