//! Prometheus text exposition format, for node_exporter's textfile collector
//! (`watch --prometheus FILE`).
//!
//! Names are `gpuprobe_*` in base units (bytes, seconds, FLOP/s), every
//! metric a gauge with HELP and TYPE lines; device metrics carry `index`,
//! `uuid` and `name` labels, so series survive a change of CUDA ordinals. A
//! value gpuprobe does not know is left out, never written as 0.
use std::fmt::Write as _;

use super::Exporter;
use crate::report::{DeviceReport, DeviceStatus, Reading, Report, Verdict};

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

impl Exporter for Prometheus {
    fn render(&self, r: &Report) -> String {
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
                f64::from(u8::from(v == r.verdict)),
            );
        }
        let mut exit = Family::new(
            "gpuprobe_exit_code",
            "Exit code of the latest probe (0 healthy, 1 failed, 3 no GPU, 4 timeout).",
        );
        exit.add("", f64::from(r.exit_code));
        let mut when = Family::new(
            "gpuprobe_last_probe_timestamp_seconds",
            "When the latest probe started, Unix time.",
        );
        if let Ok(t) = humantime::parse_rfc3339(&r.started_at) {
            if let Ok(since) = t.duration_since(std::time::UNIX_EPOCH) {
                when.add("", since.as_secs_f64());
            }
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

        let mut up = Family::new(
            "gpuprobe_device_up",
            "1 when the GPU passed every check, 0 when one failed or hung.",
        );
        let mut total = Family::new("gpuprobe_device_memory_total_bytes", "Total GPU memory.");
        let mut free = Family::new(
            "gpuprobe_device_memory_free_bytes",
            "Free GPU memory when probed.",
        );
        let mut used = Family::new(
            "gpuprobe_device_memory_used_bytes",
            "Used GPU memory when probed.",
        );
        let mut flops = Family::new(
            "gpuprobe_device_matmul_flop_per_second",
            "Measured FP32 matmul throughput.",
        );
        let mut seconds = Family::new(
            "gpuprobe_device_matmul_seconds",
            "Mean time of one matmul launch.",
        );
        let mut speedup = Family::new(
            "gpuprobe_device_matmul_speedup_ratio",
            "GPU matmul throughput over the CPU reference's.",
        );
        let mut error = Family::new(
            "gpuprobe_device_verification_max_abs_error",
            "Largest absolute error of the GPU result.",
        );
        let mut wrong = Family::new(
            "gpuprobe_device_verification_mismatches",
            "Result elements outside their tolerance.",
        );
        let mut temperature = Family::new(
            "gpuprobe_device_temperature_celsius",
            "GPU temperature after the benchmark.",
        );
        let mut power = Family::new(
            "gpuprobe_device_power_draw_watts",
            "Power draw after the benchmark.",
        );
        let mut power_limit =
            Family::new("gpuprobe_device_power_limit_watts", "Enforced power limit.");
        let mut sm_clock = Family::new(
            "gpuprobe_device_sm_clock_hertz",
            "SM clock after the benchmark.",
        );
        let mut sm_clock_max =
            Family::new("gpuprobe_device_sm_clock_max_hertz", "Maximum SM clock.");
        let mut pcie_gen = Family::new(
            "gpuprobe_device_pcie_generation",
            "Current PCIe link generation.",
        );
        let mut pcie_gen_max = Family::new(
            "gpuprobe_device_pcie_generation_max",
            "Maximum PCIe link generation.",
        );
        let mut pcie_width = Family::new(
            "gpuprobe_device_pcie_width_lanes",
            "Current PCIe link width.",
        );
        let mut pcie_width_max = Family::new(
            "gpuprobe_device_pcie_width_max_lanes",
            "Maximum PCIe link width.",
        );
        let mut ecc = Family::new(
            "gpuprobe_device_ecc_uncorrected_errors",
            "Uncorrectable ECC errors (volatile: since driver load; aggregate: lifetime).",
        );
        let mut remap = Family::new(
            "gpuprobe_device_remapped_rows_pending",
            "1 when a row remap waits for a GPU reset.",
        );
        let mut throttle = Family::new(
            "gpuprobe_device_throttle_reason",
            "1 for each reason clocks were held down after the benchmark.",
        );
        for d in r
            .devices
            .iter()
            .filter(|d| d.status != DeviceStatus::Skipped)
        {
            let labels = device_labels(d);
            up.add(
                &labels,
                f64::from(u8::from(matches!(
                    d.status,
                    DeviceStatus::Pass | DeviceStatus::Warn
                ))),
            );
            let put = |family: &mut Family, value: Option<f64>| {
                if let Some(v) = value {
                    family.add(&labels, v);
                }
            };
            put(&mut total, d.memory_total_bytes.map(|b| b as f64));
            put(&mut free, d.memory_free_bytes.map(|b| b as f64));
            put(&mut used, d.memory_used_bytes.map(|b| b as f64));
            if let Some(m) = &d.matmul {
                put(&mut flops, Some(m.gpu_gflops * 1e9));
                put(&mut seconds, Some(m.gpu_time_ms / 1e3));
                put(&mut speedup, m.speedup_vs_cpu);
                put(&mut error, Some(m.verification.max_abs_error));
                put(&mut wrong, Some(m.verification.mismatches as f64));
            }
            if let Some(t) = &d.telemetry {
                let num = |x: &Reading<u32>| x.value().map(|v| f64::from(*v));
                put(&mut temperature, num(&t.temperature_celsius));
                put(&mut power, t.power_draw_watts.value().copied());
                put(&mut power_limit, t.power_limit_watts.value().copied());
                put(&mut sm_clock, num(&t.sm_clock_mhz).map(|m| m * 1e6));
                put(&mut sm_clock_max, num(&t.sm_clock_max_mhz).map(|m| m * 1e6));
                put(&mut pcie_gen, num(&t.pcie_generation));
                put(&mut pcie_gen_max, num(&t.pcie_generation_max));
                put(&mut pcie_width, num(&t.pcie_width_lanes));
                put(&mut pcie_width_max, num(&t.pcie_width_max_lanes));
                put(
                    &mut remap,
                    t.remapped_rows_pending
                        .value()
                        .map(|b| f64::from(u8::from(*b))),
                );
                let inner = labels.trim_end_matches('}');
                for (counter, reading) in [
                    ("volatile", &t.ecc_uncorrected_volatile),
                    ("aggregate", &t.ecc_uncorrected_aggregate),
                ] {
                    if let Some(v) = reading.value() {
                        ecc.add(&format!("{inner},counter=\"{counter}\"}}"), *v as f64);
                    }
                }
                for reason in t.throttle_reasons.value().into_iter().flatten() {
                    throttle.add(&format!("{inner},reason=\"{}\"}}", escape(reason)), 1.0);
                }
            }
        }
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

        let mut out = String::new();
        for family in [
            &info,
            &verdict,
            &exit,
            &when,
            &duration,
            &visible,
            &up,
            &total,
            &free,
            &used,
            &flops,
            &seconds,
            &speedup,
            &error,
            &wrong,
            &temperature,
            &power,
            &power_limit,
            &sm_clock,
            &sm_clock_max,
            &pcie_gen,
            &pcie_gen_max,
            &pcie_width,
            &pcie_width_max,
            &ecc,
            &remap,
            &throttle,
            &cpu,
            &diagnosis,
        ] {
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
