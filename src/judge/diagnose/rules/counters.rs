//! What a run added to NVML's error counters (`DeviceReport::counters`):
//! PCIe replays and correctable ECC errors, which a healthy GPU also has
//! now and then and which are judged by how fast they came, and
//! uncorrectable SRAM errors, which no healthy GPU has.
use crate::judge::diagnose::{DeviceEvidence, Remedy, Rule, Trigger};
use crate::report::{Action, CounterChange, Report, RunCounters, Severity};

/// Replays one run may add without a word: DCGM's PCIe diagnostic plugin
/// allows `pcie.max_pcie_replays` = 80 per device while it runs
/// (DCGM nvvs/plugin_src/pcie, PCIE_STR_MAX_PCIE_REPLAYS's default).
const REPLAYS_PER_RUN: f64 = 80.0;

/// Replays per minute past which a longer run is judged: "8 replays per
/// minute is the maximum recommended by RM" (the driver's resource
/// manager), DCGM's health watch DCGM_LIMIT_MAX_PCIREPLAY_RATE
/// (dcgm_gpu_hardware_limits.h).
const REPLAYS_PER_MINUTE: f64 = 8.0;

/// The replays a run of `seconds` may add: DCGM's plugin's allowance, or
/// DCGM's health rate over a run long enough for it to be more.
fn replay_limit(seconds: f64) -> f64 {
    REPLAYS_PER_RUN.max(REPLAYS_PER_MINUTE * seconds / 60.0)
}

/// Azure's HPC node health checks (Azure/azurehpc-health-checks,
/// customTests/azure_gpu_ecc.nhc, run as `check_gpu_ecc 20000000 10000`
/// on ND H100 v5) fail a GPU whose DRAM ECC counts pass 20,000,000 and
/// whose correctable SRAM counts pass 10,000. Those are counts over the
/// GPU's life; gpuprobe reads them as a day's budget and warns when a
/// run adds correctable errors faster than would spend it in a day (over
/// at least a minute, so that a short run's few errors say nothing).
const DRAM_CORRECTED_PER_DAY: f64 = 20_000_000.0;
const SRAM_CORRECTED_PER_DAY: f64 = 10_000.0;

/// The correctable errors a run of `seconds` may add at `per_day`.
fn corrected_limit(per_day: f64, seconds: f64) -> f64 {
    per_day / 86_400.0 * seconds.max(60.0)
}

/// Every device's counters, labelled.
fn counters(r: &Report) -> impl Iterator<Item = (u32, &RunCounters)> {
    r.devices
        .iter()
        .filter_map(|d| d.counters.as_ref().map(|c| (d.index, c)))
}

/// How a delta reads in evidence: the count, the run's length and the
/// rate per minute.
fn rate(delta: u64, seconds: f64) -> String {
    format!(
        "{delta} in {seconds:.1} s ({:.1} per minute)",
        delta as f64 * 60.0 / seconds.max(f64::MIN_POSITIVE)
    )
}

pub(super) const GP050: Rule = Rule {
    code: "GP050",
    severity: Severity::Warning,
    summary: "The GPU's PCIe link resent packets faster than NVIDIA's tools allow while gpuprobe worked",
    when: "NVML's PCIe replay counter grew during the run by more than DCGM's PCIe plugin allows a device while it runs (80 replays), or, on runs longer than ten minutes, by more than 8 per minute (the rate DCGM's health watch warns at: the maximum NVIDIA's driver recommends). A few replays are normal; many mean a marginal link (riser, slot, retimer, cable) that costs bandwidth and can end in the GPU falling off the bus",
    fix: "Reseat the GPU or its riser and check the slot, retimers and cables; compare with the other GPUs of the node (`nvidia-smi -q -d PCIE`, `lspci -vvv` for the link's AER errors) and run `dcgmi diag -r 2` (its PCIe test). A link that keeps replaying after reseating needs service.",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(pcie_replays),
};

/// GP050: replays past DCGM's limits.
fn pcie_replays(r: &Report) -> DeviceEvidence {
    counters(r)
        .filter_map(|(index, c)| {
            let delta = c.pcie_replays.delta?;
            let limit = replay_limit(c.seconds);
            (delta as f64 > limit).then(|| {
                (
                    Some(index),
                    format!(
                        "GPU {index}: PCIe replays grew by {} (limit {limit:.0} for this run: \
                         DCGM allows 80 per run, 8 per minute)",
                        rate(delta, c.seconds)
                    ),
                )
            })
        })
        .collect()
}

pub(super) const GP051: Rule = Rule {
    code: "GP051",
    severity: Severity::Warning,
    summary: "The GPU's memory corrected ECC errors fast while gpuprobe worked",
    when: "NVML's volatile correctable ECC count grew during the run faster than would reach, within a day, the count at which Azure's HPC node health checks fail a GPU: 20,000,000 for device memory (DRAM), 10,000 for on-chip SRAM (where the driver reports SRAM, R535 on); judged over at least a minute. Occasional corrected errors are normal; a stream of them is a weakening memory that may soon fail uncorrectably",
    fix: "Watch the GPU: read `nvidia-smi -q -d ECC,ROW_REMAPPER` (remapped rows, pending remaps) and run `gpuprobe memtest` and `dcgmi diag -r 3`. Drain it if uncorrectable errors or a row remap follow, or if the rate holds on the next run.",
    action: Remedy::Always(Action::None),
    trigger: Trigger::PerDevice(corrected_fast),
};

/// GP051: correctable errors faster than AzNHC's counts allow a day.
fn corrected_fast(r: &Report) -> DeviceEvidence {
    let mut evidence = Vec::new();
    for (index, c) in counters(r) {
        let checks: [(&CounterChange, f64, &str); 2] = [
            (&c.ecc_corrected, DRAM_CORRECTED_PER_DAY, "device memory"),
            (&c.sram_corrected, SRAM_CORRECTED_PER_DAY, "SRAM"),
        ];
        for (change, per_day, what) in checks {
            let Some(delta) = change.delta else { continue };
            let limit = corrected_limit(per_day, c.seconds);
            if delta as f64 > limit {
                evidence.push((
                    Some(index),
                    format!(
                        "GPU {index}: correctable ECC errors in {what} grew by {} \
                         (limit {limit:.0} for this run: {per_day:.0} a day, Azure's count)",
                        rate(delta, c.seconds)
                    ),
                ));
            }
        }
    }
    evidence
}

pub(super) const GP052: Rule = Rule {
    code: "GP052",
    severity: Severity::Error,
    summary: "The GPU's on-chip SRAM had uncorrectable errors while gpuprobe worked",
    when: "NVML's volatile uncorrectable SRAM ECC count (parity and SEC-DED errors in caches and register files, nvmlDeviceGetSramEccErrorStatus, drivers from R535) grew during the run. Azure's HPC node health checks fail a GPU with any uncorrectable SRAM error; unlike device memory, SRAM has no row remapping to repair it",
    fix: "Drain the node: the GPU's results cannot be trusted. Reset the GPU (`nvidia-smi -r`), read `nvidia-smi -q -d ECC` (the aggregate SRAM sources: L2, SM, PCIe, MCU), and run `gpuprobe burn` and `dcgmi diag -r 3` again; errors that recur mean the GPU needs replacing (NVIDIA's RMA process, with this report).",
    action: Remedy::Always(Action::DrainAndService),
    trigger: Trigger::PerDevice(sram_uncorrectable),
};

/// GP052: any uncorrectable SRAM error the run added.
fn sram_uncorrectable(r: &Report) -> DeviceEvidence {
    counters(r)
        .filter_map(|(index, c)| {
            let delta = c.sram_uncorrected.delta.filter(|d| *d > 0)?;
            Some((
                Some(index),
                format!(
                    "GPU {index}: uncorrectable SRAM ECC errors grew by {}",
                    rate(delta, c.seconds)
                ),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_limit_is_dcgms_allowance_then_its_rate() {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(replay_limit(5.0), 80.0));
        assert!(near(replay_limit(600.0), 80.0));
        assert!(near(replay_limit(3600.0), 480.0));
    }

    #[test]
    fn the_corrected_limit_spends_a_day_of_azures_count() {
        // A run under a minute is judged as one minute.
        assert!((corrected_limit(SRAM_CORRECTED_PER_DAY, 2.0) - 6.94).abs() < 0.01);
        assert!((corrected_limit(DRAM_CORRECTED_PER_DAY, 60.0) - 13_888.9).abs() < 0.1);
        assert!((corrected_limit(DRAM_CORRECTED_PER_DAY, 86_400.0) - 2e7).abs() < 1.0);
    }
}
