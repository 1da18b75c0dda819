//! Prometheus text exposition format, for node_exporter's textfile collector
//! (`watch --prometheus FILE`).
//!
//! Names are `gpuprobe_*` in base units (bytes, seconds, FLOP/s), every
//! metric a gauge with HELP and TYPE lines; device metrics carry `index`,
//! `uuid` and `name` labels, so series survive a change of CUDA ordinals. A
//! value gpuprobe does not know is left out, never written as 0.
use std::fmt::Write as _;

use super::Exporter;
use crate::report::{DeviceReport, DeviceStatus, Reading, Report, Transfer, Verdict};

pub struct Prometheus;

const VERDICTS: [Verdict; 5] = [
    Verdict::Healthy,
    Verdict::Degraded,
    Verdict::Failed,
    Verdict::NoGpu,
    Verdict::Timeout,
];

/// One metric family: its samples, written after HELP and TYPE.
struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str) -> Self {
        Family {
            name,
            help,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: &str, value: f64) {
        self.samples.push((labels.to_string(), value));
    }

    fn write(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} gauge", self.name);
        for (labels, value) in &self.samples {
            let _ = writeln!(out, "{}{labels} {value}", self.name);
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn device_labels(d: &DeviceReport) -> String {
    format!(
        "{{index=\"{}\",uuid=\"{}\",name=\"{}\"}}",
        d.index,
        escape(d.uuid.as_deref().unwrap_or("")),
        escape(d.name.as_deref().unwrap_or(""))
    )
}

/// A sample of a device metric: an extra label (`counter="volatile"`) or
/// none, and the value.
type Sample = (Option<String>, f64);

/// A device metric: one sample per probed GPU, or several with an extra
/// label (`counter`, `reason`).
struct DeviceGauge {
    name: &'static str,
    help: &'static str,
    samples: fn(&DeviceReport) -> Vec<Sample>,
}

/// One unlabelled sample, when the value is known.
fn one(value: Option<f64>) -> Vec<Sample> {
    value.map(|v| (None, v)).into_iter().collect()
}

fn reading(r: &Reading<u32>) -> Option<f64> {
    r.value().map(|v| f64::from(*v))
}

fn flag(value: bool) -> f64 {
    f64::from(u8::from(value))
}

/// One sample per bandwidth measurement that ran, labelled with its
/// `kind`, where `value` knows it.
fn bandwidth(d: &DeviceReport, value: fn(&Transfer) -> Option<f64>) -> Vec<Sample> {
    let Some(b) = &d.bandwidth else {
        return Vec::new();
    };
    [
        ("d2d", &b.device_copy),
        ("stream", &b.stream_kernel),
        ("h2d", &b.host_to_device),
        ("d2h", &b.device_to_host),
    ]
    .into_iter()
    .filter_map(|(kind, t)| Some((Some(format!("kind=\"{kind}\"")), value(t.as_ref()?)?)))
    .collect()
}

/// `burn`'s throughput: over the whole run, its best interval and its worst
/// (both after the first).
fn burn_flops(d: &DeviceReport) -> Vec<Sample> {
    let Some(b) = &d.burn else {
        return Vec::new();
    };
    [
        ("mean", Some(b.gflops_mean)),
        ("best", Some(b.gflops_best)),
        ("worst", b.worst_interval.as_ref().map(|w| w.gflops)),
    ]
    .into_iter()
    .filter_map(|(stat, g)| Some((Some(format!("stat=\"{stat}\"")), g? * 1e9)))
    .collect()
}

/// A sample per check that did not run, labelled with its name and why.
fn not_run(checks: &[crate::report::Check]) -> Vec<Sample> {
    checks
        .iter()
        .filter_map(|c| {
            let why = c.not_run?;
            Some((
                Some(format!("check=\"{}\",reason=\"{why}\"", escape(&c.name))),
                1.0,
            ))
        })
        .collect()
}

/// One sample per error counter NVML read before and after the run,
/// labelled with its `counter`: what the run added.
fn counter_increases(d: &DeviceReport) -> Vec<Sample> {
    let Some(c) = &d.counters else {
        return Vec::new();
    };
    c.named()
        .into_iter()
        .filter_map(|(name, change)| {
            Some((Some(format!("counter=\"{name}\"")), change.delta? as f64))
        })
        .collect()
}

/// The device metrics, in the order they are written. Adding a device
/// metric is one entry here.
const DEVICE_GAUGES: &[DeviceGauge] = &[
    DeviceGauge {
        name: "gpuprobe_device_up",
        help: "1 when no check of the GPU failed or hung (a busy GPU whose compute was not verified included: see gpuprobe_device_compute_verified), 0 when one did.",
        samples: |d| {
            one(Some(flag(matches!(
                d.status,
                DeviceStatus::Pass | DeviceStatus::Warn
            ))))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_memory_total_bytes",
        help: "Total GPU memory.",
        samples: |d| one(d.memory_total_bytes.map(|b| b as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_memory_free_bytes",
        help: "Free GPU memory when probed.",
        samples: |d| one(d.memory_free_bytes.map(|b| b as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_memory_used_bytes",
        help: "Used GPU memory when probed.",
        samples: |d| one(d.memory_used_bytes.map(|b| b as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_matmul_flop_per_second",
        help: "Measured FP32 matmul throughput.",
        samples: |d| one(d.matmul.as_ref().map(|m| m.gpu_gflops * 1e9)),
    },
    DeviceGauge {
        name: "gpuprobe_device_matmul_seconds",
        help: "Mean time of one matmul launch.",
        samples: |d| one(d.matmul.as_ref().map(|m| m.gpu_time_ms / 1e3)),
    },
    DeviceGauge {
        name: "gpuprobe_device_matmul_speedup_ratio",
        help: "GPU matmul throughput over the CPU reference's.",
        samples: |d| one(d.matmul.as_ref().and_then(|m| m.speedup_vs_cpu)),
    },
    DeviceGauge {
        name: "gpuprobe_device_matmul_efficiency_ratio",
        help: "GPU matmul throughput over the GPU's theoretical FP32 peak at its maximum clock.",
        samples: |d| {
            one(d
                .matmul
                .as_ref()
                .and_then(|m| m.efficiency)
                .and_then(crate::report::Figure::value))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_bandwidth_bytes_per_second",
        help: "Measured bandwidth: kind d2d (device copy, read and write bytes), stream (streaming kernel, likewise), h2d and d2h (pinned host copies).",
        samples: |d| bandwidth(d, |t| Some(t.gbps * 1e9)),
    },
    DeviceGauge {
        name: "gpuprobe_device_bandwidth_efficiency_ratio",
        help: "Measured bandwidth over what the GPU should reach: the theoretical memory bandwidth (d2d, stream) or the PCIe link's per-direction bandwidth (h2d, d2h).",
        samples: |d| {
            bandwidth(d, |t| {
                t.efficiency.and_then(crate::report::Figure::value)
            })
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_memtest_mismatches",
        help: "Memory test: words that did not read back as written (absent when the test did not run).",
        samples: |d| one(d.memtest.as_ref().map(|m| m.mismatches as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_memtest_bytes_per_second",
        help: "Memory test: pattern traffic (bytes written and read) per second of GPU time.",
        samples: |d| one(d.memtest.as_ref().map(|m| m.gbps * 1e9)),
    },
    DeviceGauge {
        name: "gpuprobe_device_memtest_tested_bytes",
        help: "Memory test: bytes of device memory the patterns covered.",
        samples: |d| one(d.memtest.as_ref().map(|m| m.bytes_tested as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_burn_flop_per_second",
        help: "burn: sustained FP32 matmul throughput; stat mean (the whole run), best and worst (intervals after the first).",
        samples: burn_flops,
    },
    DeviceGauge {
        name: "gpuprobe_device_burn_seconds",
        help: "burn: how long the GPU was kept under load.",
        samples: |d| one(d.burn.as_ref().map(|b| b.duration_ms / 1e3)),
    },
    DeviceGauge {
        name: "gpuprobe_device_burn_products_compared",
        help: "burn: products compared bit for bit with the verified one.",
        samples: |d| one(d.burn.as_ref().map(|b| b.verifications as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_verification_max_abs_error",
        help: "Largest absolute error of the GPU result.",
        samples: |d| one(d.matmul.as_ref().map(|m| m.verification.max_abs_error)),
    },
    DeviceGauge {
        name: "gpuprobe_device_verification_mismatches",
        help: "Result elements outside their tolerance.",
        samples: |d| one(d.matmul.as_ref().map(|m| m.verification.mismatches as f64)),
    },
    DeviceGauge {
        name: "gpuprobe_device_temperature_celsius",
        help: "GPU temperature after the benchmark.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.temperature_celsius)))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_power_draw_watts",
        help: "Power draw after the benchmark.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| t.power_draw_watts.value().copied()))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_power_limit_watts",
        help: "Enforced power limit.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| t.power_limit_watts.value().copied()))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_power_default_limit_watts",
        help: "The board's default power limit; an enforced limit below it was lowered.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| t.power_default_limit_watts.value().copied()))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_compute_verified",
        help: "1 when the GPU's compute was checked, 0 when it was not verified (busy, or its memory full with no process holding it; see compute_not_verified in the JSON); absent when the GPU failed first.",
        samples: |d| {
            // 1 only where a product was computed and checked; a GPU that
            // failed before it has no sample (its status says why).
            if d.compute_not_verified.is_some() {
                one(Some(0.0))
            } else if d.matmul.is_some() {
                one(Some(1.0))
            } else {
                Vec::new()
            }
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_check_not_run",
        help: "1 for each check of the GPU that did not run, labelled with the check and the reason (not_planned, turned_off, busy, memory_held, earlier_failure, unsupported, unavailable, no_memory, out_of_time, not_reached, internal).",
        samples: |d| not_run(&d.checks),
    },
    DeviceGauge {
        name: "gpuprobe_device_recovery_action_pending",
        help: "1 when the driver asks for the GPU to be recovered before use, labelled with the action (gpu_reset, node_reboot, drain_p2p, drain_and_reset; NVML_FI_DEV_GET_GPU_RECOVERY_ACTION, drivers from R565), 0 when it asks for none; absent where the driver does not say.",
        samples: |d| {
            let Some(Reading::Value(action)) = d.telemetry.as_ref().map(|t| &t.recovery_action)
            else {
                return Vec::new();
            };
            let pending = *action != crate::report::RecoveryAction::None;
            vec![(Some(format!("action=\"{action}\"")), flag(pending))]
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_compute_processes",
        help: "Processes with a compute context on the GPU (NVML; gpuprobe's own among them while it holds one).",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| t.compute_processes.value().map(|n| f64::from(*n))))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_sm_clock_hertz",
        help: "SM clock after the benchmark.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.sm_clock_mhz))
                .map(|m| m * 1e6))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_sm_clock_max_hertz",
        help: "Maximum SM clock.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.sm_clock_max_mhz))
                .map(|m| m * 1e6))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_pcie_generation",
        help: "Current PCIe link generation.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.pcie_generation)))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_pcie_generation_max",
        help: "Maximum PCIe link generation.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.pcie_generation_max)))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_pcie_width_lanes",
        help: "Current PCIe link width.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.pcie_width_lanes)))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_pcie_width_max_lanes",
        help: "Maximum PCIe link width.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| reading(&t.pcie_width_max_lanes)))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_ecc_uncorrected_errors",
        help: "Uncorrectable ECC errors (volatile: since driver load; aggregate: lifetime).",
        samples: |d| {
            let Some(t) = &d.telemetry else {
                return Vec::new();
            };
            [
                ("volatile", &t.ecc_uncorrected_volatile),
                ("aggregate", &t.ecc_uncorrected_aggregate),
            ]
            .into_iter()
            .filter_map(|(counter, r)| {
                r.value()
                    .map(|v| (Some(format!("counter=\"{counter}\"")), *v as f64))
            })
            .collect()
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_remapped_rows_pending",
        help: "1 when a row remap waits for a GPU reset.",
        samples: |d| {
            one(d
                .telemetry
                .as_ref()
                .and_then(|t| t.remapped_rows_pending.value().map(|b| flag(*b))))
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_nvlink_links_active",
        help: "NVLinks up at the last reading; absent on a GPU without NVLink.",
        samples: |d| super::nvlink::links(d, false),
    },
    DeviceGauge {
        name: "gpuprobe_device_nvlink_links_expected",
        help: "NVLinks the GPU's own report expects up: every link of a GPU on NVSwitches, and any link up at either reading; absent on a GPU without NVLink.",
        samples: |d| super::nvlink::links(d, true),
    },
    DeviceGauge {
        name: "gpuprobe_device_nvlink_errors_during_run",
        help: "NVLink error counters' growth over all the GPU's links between NVML's readings before and after the run's work, by counter (crc_flit, crc_data, replay, recovery); absent where the links were read once.",
        samples: super::nvlink::errors_during_run,
    },
    DeviceGauge {
        name: "gpuprobe_device_nvlink_crc_errors_per_second",
        help: "NVLink CRC errors (flit and data, all links) per second between the readings before and after the run's work; DCGM treats 100 a second as a failing link.",
        samples: super::nvlink::crc_per_second,
    },
    DeviceGauge {
        name: "gpuprobe_device_throttle_reason",
        help: "1 for each reason clocks were held down after the benchmark.",
        samples: |d| {
            d.telemetry
                .as_ref()
                .and_then(|t| t.throttle_reasons.value())
                .into_iter()
                .flatten()
                .map(|reason| (Some(format!("reason=\"{}\"", escape(&reason.word()))), 1.0))
                .collect()
        },
    },
    DeviceGauge {
        name: "gpuprobe_device_errors_added",
        help: "What the run added to an NVML error counter of the GPU, by counter: pcie_replays, ecc_corrected, ecc_uncorrected (device memory, volatile), sram_corrected, sram_uncorrected; only counters NVML read before and after.",
        samples: counter_increases,
    },
    DeviceGauge {
        name: "gpuprobe_device_errors_window_seconds",
        help: "Seconds between the readings of the GPU's error counters before and after the run.",
        samples: |d| one(d.counters.as_ref().map(|c| c.seconds)),
    },
];

/// The machine-wide families: version, verdict, exit code, when and how
/// long, GPUs visible.
fn machine_families(r: &Report) -> Vec<Family> {
    let mut info = Family::new(
        "gpuprobe_info",
        "gpuprobe version and the CUDA version the driver supports.",
    );
    info.add(
        &format!(
            "{{version=\"{}\",cuda_driver_version=\"{}\"}}",
            escape(&r.gpuprobe_version),
            escape(r.driver.cuda_version.as_deref().unwrap_or(""))
        ),
        1.0,
    );
    let mut verdict = Family::new(
        "gpuprobe_verdict",
        "1 for the latest probe's verdict, 0 for the others.",
    );
    for v in VERDICTS {
        verdict.add(
            &format!("{{verdict=\"{}\"}}", v.as_str()),
            flag(v == r.verdict),
        );
    }
    let mut exit = Family::new(
        "gpuprobe_exit_code",
        "Exit code of the latest probe (0 healthy, 1 failed, 3 no GPU, 4 timeout).",
    );
    exit.add("", f64::from(r.verdict.exit_code()));
    let mut when = Family::new(
        "gpuprobe_last_probe_timestamp_seconds",
        "When the latest probe started, Unix time.",
    );
    if let Some(since) = humantime::parse_rfc3339(&r.started_at)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        when.add("", since.as_secs_f64());
    }
    let mut duration = Family::new(
        "gpuprobe_probe_duration_seconds",
        "Wall time of the latest probe.",
    );
    duration.add("", r.duration_ms / 1e3);
    let mut visible = Family::new("gpuprobe_devices_visible", "GPUs visible to the probe.");
    if let Some(n) = r.driver.device_count {
        visible.add("", f64::from(n));
    }
    let mut fabric = Family::new(
        "gpuprobe_fabric_registered",
        "NVSwitch systems: 1 when the GPU's NVLink fabric registration completed without error, 0 while it is not started or in progress or when it failed (state label); one sample per GPU NVML sees on a fabric, none elsewhere.",
    );
    for f in &r.nvml.fabric {
        let state = match f.state {
            crate::report::FabricState::NotStarted => "not_started",
            crate::report::FabricState::InProgress => "in_progress",
            crate::report::FabricState::Completed => "completed",
        };
        fabric.add(
            &format!(
                "{{nvml_index=\"{}\",uuid=\"{}\",state=\"{state}\"}}",
                f.index,
                escape(f.uuid.as_deref().unwrap_or(""))
            ),
            flag(f.state == crate::report::FabricState::Completed && f.status == Some(0)),
        );
    }
    let mut not_run_here = Family::new(
        "gpuprobe_check_not_run",
        "1 for each machine-wide check that did not run (nvml, cpu_reference, cpu_baseline, ...), labelled with the check and the reason; the GPUs' are gpuprobe_device_check_not_run.",
    );
    for (labels, value) in not_run(&r.checks) {
        not_run_here.add(&format!("{{{}}}", labels.unwrap_or_default()), value);
    }
    vec![
        info,
        verdict,
        exit,
        when,
        duration,
        visible,
        fabric,
        events_watched(r),
        xid_events(r),
        not_run_here,
    ]
    .into_iter()
    .chain(watch_streak(r))
    .collect()
}

/// `watch` only: the run of failed probes and whether it has made the
/// node unhealthy (`--unhealthy-after`); absent for other commands.
fn watch_streak(r: &Report) -> [Family; 2] {
    let mut failures = Family::new(
        "gpuprobe_watch_consecutive_failures",
        "watch: consecutive failed probes ending with the latest (0 when it passed).",
    );
    let mut unhealthy = Family::new(
        "gpuprobe_watch_unhealthy",
        "watch: 1 when --unhealthy-after consecutive probes failed, so /healthz and health --state call the node unhealthy.",
    );
    if let Some(w) = r.watch {
        failures.add("", f64::from(w.consecutive_failures));
        unhealthy.add("", flag(w.unhealthy));
    }
    [failures, unhealthy]
}

/// Whether NVML's events were watched for the latest report.
fn events_watched(r: &Report) -> Family {
    let mut family = Family::new(
        "gpuprobe_events_watched",
        "1 when NVML's events (critical Xids, ECC errors) were watched for the latest probe, 0 when NVML offers none here (no NVML, Windows, registration refused); absent for commands that do not watch.",
    );
    if let Some(e) = &r.events {
        family.add("", flag(e.status == crate::report::EventsStatus::Watched));
    }
    family
}

/// A GPU (NVML index, UUID) and an Xid.
type XidKey<'a> = (Option<u32>, Option<&'a str>, u64);

/// Critical Xids delivered during the latest probe (a `watch` cycle: since
/// the cycle before), counted per GPU and Xid.
fn xid_events(r: &Report) -> Family {
    let mut family = Family::new(
        "gpuprobe_xid_events",
        "Critical Xid events NVML delivered during the latest probe (watch: since the cycle before), per GPU (NVML index, UUID) and Xid; GP040-GP042 judge them by NVIDIA's Xid catalog.",
    );
    let mut counts: Vec<(XidKey<'_>, u32)> = Vec::new();
    for e in r.events.iter().flat_map(|e| &e.events) {
        let Some(xid) = e
            .xid
            .filter(|_| e.kind == crate::report::EventKind::CriticalXid)
        else {
            continue;
        };
        let key = (e.nvml_index, e.uuid.as_deref(), xid);
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    for ((index, uuid, xid), n) in counts {
        family.add(
            &format!(
                "{{nvml_index=\"{}\",uuid=\"{}\",xid=\"{xid}\"}}",
                index.map_or(String::new(), |i| i.to_string()),
                escape(uuid.unwrap_or(""))
            ),
            f64::from(n),
        );
    }
    family
}

/// One family per entry of `DEVICE_GAUGES`, over the GPUs that were probed.
fn device_families(r: &Report) -> Vec<Family> {
    let probed: Vec<&DeviceReport> = r
        .devices
        .iter()
        .filter(|d| d.status != DeviceStatus::Skipped)
        .collect();
    DEVICE_GAUGES
        .iter()
        .map(|gauge| {
            let mut family = Family::new(gauge.name, gauge.help);
            for d in &probed {
                let labels = device_labels(d);
                for (extra, value) in (gauge.samples)(d) {
                    match extra {
                        None => family.add(&labels, value),
                        Some(extra) => family.add(
                            &format!("{},{extra}}}", labels.trim_end_matches('}')),
                            value,
                        ),
                    }
                }
            }
            family
        })
        .collect()
}

/// The CPU reference and the diagnoses.
fn summary_families(r: &Report) -> Vec<Family> {
    let mut cpu = Family::new(
        "gpuprobe_cpu_gemm_flop_per_second",
        "Throughput of the CPU reference GEMM.",
    );
    if let Some(c) = &r.cpu {
        cpu.add(&format!("{{threads=\"{}\"}}", c.threads), c.gflops * 1e9);
    }
    let mut diagnosis = Family::new(
        "gpuprobe_diagnosis",
        "1 for each diagnosis the latest probe made.",
    );
    for d in &r.diagnoses {
        let severity = serde_json::to_value(d.severity)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        diagnosis.add(
            &format!(
                "{{code=\"{}\",severity=\"{}\"}}",
                escape(&d.code),
                escape(&severity)
            ),
            1.0,
        );
    }
    let mut action = Family::new(
        "gpuprobe_diagnosis_action",
        "1 for each diagnosis the latest probe made, labelled with what it asks of the node or the workload (none, fix_configuration, restart_workload, reset_gpu, drain_and_reset, reboot_node, drain_and_service; docs/diagnoses.md).",
    );
    for d in &r.diagnoses {
        action.add(
            &format!(
                "{{code=\"{}\",action=\"{}\"}}",
                escape(&d.code),
                d.action.as_str()
            ),
            1.0,
        );
    }
    vec![cpu, diagnosis, action]
}

/// The peer-to-peer check: each ordered pair's access, and each write's
/// outcome, by CUDA index (`from` writes into `to`'s memory).
fn peer_families(r: &Report) -> Vec<Family> {
    let mut access = Family::new(
        "gpuprobe_peer_access",
        "1 for each ordered pair of GPUs the peer check considered, labelled with what CUDA offered: granted, not_offered (no peer path: data goes through host memory), failed, not_tried.",
    );
    let mut exact = Family::new(
        "gpuprobe_peer_write_exact",
        "1 when every word one GPU wrote into another's memory over the peer path arrived as written, 0 when any was lost or altered or the write failed (diagnosis GP058); writer: copy or kernel.",
    );
    let mut wrong = Family::new(
        "gpuprobe_peer_mismatched_words",
        "Words of a peer write that arrived lost or altered.",
    );
    let Some(peers) = &r.peers else {
        return Vec::new();
    };
    for p in &peers.pairs {
        let word = serde_json::to_value(p.access)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        access.add(
            &format!(
                "{{from=\"{}\",to=\"{}\",access=\"{}\"}}",
                p.from,
                p.to,
                escape(&word)
            ),
            1.0,
        );
        for (writer, write) in [("copy", &p.copy), ("kernel", &p.kernel)] {
            let Some(w) = write else { continue };
            let labels = format!(
                "{{from=\"{}\",to=\"{}\",writer=\"{writer}\"}}",
                p.from, p.to
            );
            exact.add(&labels, if w.exact { 1.0 } else { 0.0 });
            wrong.add(&labels, w.mismatches as f64);
        }
    }
    vec![access, exact, wrong]
}

impl Exporter for Prometheus {
    fn render(&self, r: &Report) -> String {
        let mut out = String::new();
        for family in machine_families(r)
            .iter()
            .chain(&device_families(r))
            .chain(&peer_families(r))
            .chain(&summary_families(r))
        {
            family.write(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
