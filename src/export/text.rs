//! Text for people: one block per GPU, the verdict last.
//!
//! The lines a gpu_check.py user looks for (available, current device, total
//! memory) come first. Not a contract: use `--json` for machines.
use std::fmt::Write as _;

use super::Exporter;
use crate::report::{
    Bandwidth, Check, CheckStatus, DeviceReport, DeviceStatus, Figure, LinkReading, NotRun,
    Reading, Report, Telemetry, Transfer, Unavailable, Verdict,
};
use crate::units::{bytes, flops, percent};

pub struct Text {
    /// ANSI colour (a terminal, and NO_COLOR unset).
    pub color: bool,
}

const GREEN: &str = "32";
const YELLOW: &str = "33";
const RED: &str = "31";
const BOLD: &str = "1";

impl Text {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Exporter for Text {
    fn render(&self, r: &Report) -> String {
        let mut out = String::new();
        header(&mut out, r);
        availability(&mut out, r);
        let failed_machine: Vec<&Check> = r
            .checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Fail | CheckStatus::Timeout))
            .collect();
        if !failed_machine.is_empty() || r.driver.library_path.is_none() {
            out.push('\n');
            for c in &failed_machine {
                let _ = writeln!(out, "  {} {}: {}", self.paint(RED, "✗"), c.name, c.detail);
            }
            if r.driver.library_path.is_none() && !r.driver.search_path.is_empty() {
                let _ = writeln!(out, "    searched: {}", r.driver.search_path.join(", "));
            }
        }
        if let Some(line) = not_run_line(&r.checks) {
            let _ = writeln!(out, "not run:         {line}");
        }
        for d in &r.devices {
            self.device(&mut out, d, r);
        }
        super::bench::machine(&mut out, r);
        if let Some(cpu) = &r.cpu {
            let quota = match cpu.threads_limited_by {
                Some(
                    crate::report::CpuLimit::CgroupCpuMax | crate::report::CpuLimit::CgroupCfsQuota,
                ) => " under the cgroup's CPU quota",
                _ => "",
            };
            let _ = writeln!(
                out,
                "\nCPU reference: {} on {} thread(s) ({} CPUs available{quota}), {}",
                flops(cpu.gflops),
                cpu.threads,
                cpu.available_cpus,
                cpu.library
            );
        }
        if let Some(peers) = &r.peers {
            peer_summary(&mut out, peers);
        }
        if !r.diagnoses.is_empty() {
            out.push_str("\nDiagnoses (most severe first):\n");
            for d in &r.diagnoses {
                let colour = match d.severity {
                    crate::report::Severity::Error => RED,
                    crate::report::Severity::Warning => YELLOW,
                    crate::report::Severity::Info => GREEN,
                };
                let _ = writeln!(
                    out,
                    "  {} {}: {}",
                    d.code,
                    self.paint(colour, severity(d.severity)),
                    d.summary
                );
                for e in &d.evidence {
                    let _ = writeln!(out, "      seen: {e}");
                }
                let _ = writeln!(out, "      -> fix: {}", d.fix);
                if d.action != crate::report::Action::None {
                    let _ = writeln!(out, "      -> action: {}", d.action.as_str());
                }
            }
        }
        let (word, colour) = match r.verdict {
            Verdict::Healthy => ("HEALTHY", GREEN),
            Verdict::Degraded => ("DEGRADED", YELLOW),
            Verdict::Failed => ("FAILED", RED),
            Verdict::NoGpu => ("NO GPU", RED),
            Verdict::Timeout => ("TIMEOUT", RED),
        };
        let _ = writeln!(
            out,
            "\nverdict: {} (exit {}): {}",
            self.paint(&format!("{BOLD};{colour}"), word),
            r.verdict.exit_code(),
            r.summary
        );
        out
    }
}

fn severity(s: crate::report::Severity) -> &'static str {
    match s {
        crate::report::Severity::Info => "info",
        crate::report::Severity::Warning => "warning",
        crate::report::Severity::Error => "error",
    }
}

fn header(out: &mut String, r: &Report) {
    let _ = write!(out, "gpuprobe {}", r.gpuprobe_version);
    if let Some(v) = &r.driver.cuda_version {
        let _ = write!(out, ", CUDA driver {v}");
    }
    if let Some(p) = &r.driver.library_path {
        let _ = write!(out, " ({p})");
    }
    out.push('\n');
    let mut versions = Vec::new();
    if let Some(v) = &r.nvml.driver_version {
        versions.push(format!("user-space driver {v}"));
    }
    if let Some(v) = &r.environment.kernel_module_version {
        versions.push(format!("kernel module {v}"));
    }
    if r.environment.sandbox == Some(crate::report::Sandbox::Gvisor) {
        versions.push("in a gVisor sandbox (nvproxy)".into());
    }
    if !versions.is_empty() {
        let _ = writeln!(out, "{}", versions.join(", "));
    }
    out.push('\n');
}

/// A reading for people: the value, or why there is none.
fn show<T>(reading: &Reading<T>, f: impl Fn(&T) -> String) -> String {
    match reading {
        Reading::Value(v) => f(v),
        Reading::Unavailable(Unavailable::NotSupported) => "n/a".into(),
        Reading::Unavailable(Unavailable::NoPermission) => "no permission".into(),
        Reading::Unavailable(Unavailable::GpuLost) => "GPU lost".into(),
        Reading::Unavailable(Unavailable::Error) => "error".into(),
    }
}

fn telemetry_lines(t: &Telemetry) -> [String; 3] {
    let num = |v: &u32| v.to_string();
    [
        format!(
            "{} °C, {} W of {} W, SM {}/{} MHz, memory {}/{} MHz",
            show(&t.temperature_celsius, num),
            show(&t.power_draw_watts, |w| format!("{w:.0}")),
            show(&t.power_limit_watts, |w| format!("{w:.0}")),
            show(&t.sm_clock_mhz, num),
            show(&t.sm_clock_max_mhz, num),
            show(&t.memory_clock_mhz, num),
            show(&t.memory_clock_max_mhz, num),
        ),
        format!(
            "PCIe gen {} x{} (max gen {} x{}), ECC {}, {} uncorrectable, remap pending {}",
            show(&t.pcie_generation, num),
            show(&t.pcie_width_lanes, num),
            show(&t.pcie_generation_max, num),
            show(&t.pcie_width_max_lanes, num),
            show(&t.ecc_enabled, |b| if *b {
                "on".into()
            } else {
                "off".into()
            }),
            show(&t.ecc_uncorrected_volatile, ToString::to_string),
            show(&t.remapped_rows_pending, |b| if *b {
                "YES".into()
            } else {
                "no".into()
            }),
        ),
        format!(
            "throttling {}, persistence {}, compute mode {}, MIG {}",
            show(&t.throttle_reasons, |r| if r.is_empty() {
                "none".into()
            } else {
                r.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            show(&t.persistence_mode, |b| if *b {
                "on".into()
            } else {
                "off".into()
            }),
            show(&t.compute_mode, ToString::to_string),
            show(&t.mig_enabled, |b| if *b {
                "on".into()
            } else {
                "off".into()
            }),
        ),
    ]
}

/// What the run added to the GPU's error counters, in one line.
fn counters_line(c: &crate::report::RunCounters) -> String {
    let added: Vec<String> = c
        .named()
        .into_iter()
        .map(|(name, change)| {
            let by = change
                .delta
                .map_or_else(|| show(&change.after, |_| "?".into()), |d| format!("+{d}"));
            format!("{} {by}", name.replace('_', " "))
        })
        .collect();
    format!("over {:.1} s: {}", c.seconds, added.join(", "))
}

/// The memory test in one line: what was tested, how fast, what was found.
fn memtest_line(m: &crate::report::Memtest) -> String {
    let share = m
        .efficiency
        .and_then(Figure::value)
        .map_or(String::new(), |e| format!(" ({})", percent(e)));
    let found = match m.mismatches {
        0 => "no word read back wrong".to_string(),
        n => format!("{n} word(s) read back wrong"),
    };
    let capped = if m.capped_for_other_process {
        ", capped beside another process"
    } else {
        ""
    };
    format!(
        "{} tested{capped}, {} pass(es), {:.1} GB/s{share}; {found}",
        bytes(m.bytes_tested),
        m.passes,
        m.gbps
    )
}

/// The bandwidth check in one line: each measurement with its share of
/// what the GPU should reach, and the link the host copies were judged by.
fn bandwidth_line(b: &Bandwidth) -> String {
    let one = |what: &str, t: &Option<Transfer>| {
        t.as_ref().map(|t| {
            let share = t
                .efficiency
                .and_then(Figure::value)
                .map_or(String::new(), |e| format!(" ({})", percent(e)));
            format!("{what} {:.1} GB/s{share}", t.gbps)
        })
    };
    let device: Vec<String> = [one("copy", &b.device_copy), one("kernel", &b.stream_kernel)]
        .into_iter()
        .flatten()
        .collect();
    let host: Vec<String> = [
        one("to GPU", &b.host_to_device),
        one("from GPU", &b.device_to_host),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut line = format!("memory {}", device.join(", "));
    if b.pinned_memory_refused {
        line.push_str("; host copies not measured: pinned memory refused");
    } else if !host.is_empty() {
        let _ = write!(line, "; host {}", host.join(", "));
        if let Some(l) = &b.pcie_link {
            let when = match l.reading {
                LinkReading::UnderLoad => "under load",
                LinkReading::Max => "maximum",
            };
            let _ = write!(
                line,
                " over PCIe gen {} x{} ({when})",
                l.generation, l.width
            );
        }
    }
    line
}

fn availability(out: &mut String, r: &Report) {
    let usable = r
        .devices
        .iter()
        .filter(|d| matches!(d.status, DeviceStatus::Pass | DeviceStatus::Warn))
        .count();
    let visible = r.devices.len();
    let available = match r.verdict {
        Verdict::NoGpu => "no".to_string(),
        _ if r.command == crate::report::ReportCommand::List => {
            format!("{visible} device(s) visible (not exercised: `list` only enumerates)")
        }
        _ => format!(
            "{} ({usable} of {visible} device(s) usable)",
            if usable > 0 { "yes" } else { "no" }
        ),
    };
    let _ = writeln!(out, "GPU available:   {available}");
    if let Some(first) = r.devices.first() {
        let _ = writeln!(
            out,
            "current device:  {} ({})",
            first.index,
            first.name.as_deref().unwrap_or("name unknown")
        );
        if let Some(total) = first.memory_total_bytes {
            let _ = writeln!(out, "total memory:    {}", bytes(total));
        }
    }
}

impl Text {
    fn device(&self, out: &mut String, d: &DeviceReport, r: &Report) {
        let (word, colour) = match d.status {
            // Nothing failed, and nothing was computed either: no pass.
            DeviceStatus::Pass | DeviceStatus::Warn if d.admits_no_context() => {
                ("NOT VERIFIED", YELLOW)
            }
            DeviceStatus::Pass => ("PASS", GREEN),
            DeviceStatus::Warn => ("WARN", YELLOW),
            DeviceStatus::Fail => ("FAIL", RED),
            DeviceStatus::Skipped => ("not probed", YELLOW),
            DeviceStatus::Timeout => ("TIMEOUT", RED),
        };
        let name = d.name.as_deref().unwrap_or("(name unknown)");
        let _ = writeln!(
            out,
            "\nGPU {}  {}  [{}]",
            d.index,
            name,
            self.paint(colour, word)
        );
        identity_rows(out, d);
        if let Some(t) = &d.telemetry {
            let [first, second, third] = telemetry_lines(t);
            row(out, "telemetry", first);
            row(out, "", second);
            row(out, "", third);
        }
        if let Some(c) = &d.counters {
            row(out, "counters", counters_line(c));
        }
        if let Some(n) = &d.nvlink {
            for (i, line) in super::nvlink::lines(n).into_iter().enumerate() {
                row(out, if i == 0 { "nvlink" } else { "" }, line);
            }
        }
        if let Some(m) = &d.matmul {
            self.matmul_rows(out, m, r);
        }
        if let Some(b) = &d.burn {
            self.burn_row(out, b);
        }
        super::bench::table(out, d, self.color);
        if let Some(b) = &d.bandwidth {
            row(out, "bandwidth", bandwidth_line(b));
        }
        if let Some(m) = &d.memtest {
            row(out, "memtest", memtest_line(m));
        }
        for c in d.checks.iter().filter(|c| {
            matches!(
                c.status,
                CheckStatus::Fail | CheckStatus::Timeout | CheckStatus::Warn
            )
        }) {
            let mark = if c.status == CheckStatus::Warn {
                self.paint(YELLOW, "!")
            } else {
                self.paint(RED, "✗")
            };
            let _ = writeln!(out, "  {mark} {}: {}", c.name, c.detail);
        }
        if let Some(line) = not_run_line(&d.checks) {
            row(out, "not run", line);
        }
        let timings: Vec<String> = d
            .checks
            .iter()
            .filter(|c| c.status != CheckStatus::Skip)
            .map(|c| format!("{} {:.0} ms", c.name, c.duration_ms))
            .collect();
        if !timings.is_empty() {
            row(out, "stages", timings.join(", "));
        }
    }

    /// The matmul's speed and the verification's result.
    fn matmul_rows(&self, out: &mut String, m: &crate::report::Matmul, r: &Report) {
        let cpu = r.cpu.as_ref().map_or(String::new(), |c| {
            format!(" vs {} on the CPU", flops(c.gflops))
        });
        let speedup = m
            .speedup_vs_cpu
            .map_or(String::new(), |s| format!(": {s:.1}x"));
        row(
            out,
            &format!("matmul {}³", m.m),
            format!(
                "{} on the GPU{cpu}{speedup}{}",
                flops(m.gpu_gflops),
                m.efficiency
                    .and_then(Figure::value)
                    .map_or(String::new(), |e| format!(
                        "; {} of the FP32 peak",
                        percent(e)
                    ))
            ),
        );
        let v = &m.verification;
        let verdict = if v.passed {
            self.paint(GREEN, "correct")
        } else {
            self.paint(RED, "WRONG")
        };
        let first = if v.exact {
            format!(
                "{} of {} elements differ from the exact product",
                v.mismatches.saturating_sub(v.f64_sample.mismatches),
                v.elements
            )
        } else {
            format!(
                "{} of {} elements outside tolerance; max error {:.2e} (tolerance {:.2e})",
                v.mismatches.saturating_sub(v.f64_sample.mismatches),
                v.elements,
                v.max_abs_error,
                v.tolerance
            )
        };
        row(
            out,
            "result",
            format!(
                "{verdict}: {first}; rounding pass {} of {} outside {:.2e} (max error {:.2e})",
                v.f64_sample.mismatches,
                v.f64_sample.elements,
                v.f64_sample.tolerance,
                v.f64_sample.max_abs_error
            ),
        );
    }

    /// The burn's line.
    fn burn_row(&self, out: &mut String, b: &crate::report::Burn) {
        let worst = b.worst_interval.as_ref().map_or(String::new(), |w| {
            format!(", worst {} at {:.0} s", flops(w.gflops), w.at_ms / 1e3)
        });
        let wrong = b
            .errors
            .iter()
            .filter(|e| e.kind != crate::report::BurnErrorKind::EccCorrected)
            .count();
        let verdict = if wrong == 0 {
            self.paint(GREEN, "no error")
        } else {
            self.paint(RED, &format!("{wrong} error(s)"))
        };
        row(
            out,
            "burn",
            format!(
                "{:.0} s, {} products: mean {}{worst}; {} comparison(s), {verdict}",
                b.duration_ms / 1e3,
                b.products,
                flops(b.gflops_mean),
                b.verifications
            ),
        );
    }
}

/// The checks that did not run, by reason ("busy: context, memory, …;
/// turned_off: bandwidth"), leaving out those the command never plans
/// (they would be on every `health`); `None` when there are none.
fn not_run_line(checks: &[Check]) -> Option<String> {
    let mut by_reason: Vec<(NotRun, Vec<&str>)> = Vec::new();
    for c in checks {
        let Some(why) = c.not_run.filter(|w| *w != NotRun::NotPlanned) else {
            continue;
        };
        match by_reason.iter_mut().find(|(w, _)| *w == why) {
            Some((_, names)) => names.push(&c.name),
            None => by_reason.push((why, vec![&c.name])),
        }
    }
    let parts: Vec<String> = by_reason
        .iter()
        .map(|(why, names)| format!("{why}: {}", names.join(", ")))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// One labelled row of a GPU's block.
fn row(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {label:<16}{value}");
}

/// What the GPU is: its UUID, PCI bus id, compute, peak and memory.
fn identity_rows(out: &mut String, d: &DeviceReport) {
    if let Some(u) = &d.uuid {
        match &d.mig_parent_uuid {
            Some(gpu) => row(out, "uuid", format!("{u} (a MIG instance of {gpu})")),
            None => row(out, "uuid", u.clone()),
        }
    }
    if let Some(p) = &d.pci_bus_id {
        row(out, "pci bus id", p.clone());
    }
    if let Some(cc) = &d.compute_capability {
        let sms = d
            .multiprocessors
            .map_or(String::new(), |s| format!(", {s} SMs"));
        let clock = d
            .clock_mhz
            .map_or(String::new(), |c| format!(" at {c} MHz"));
        row(out, "compute", format!("capability {cc}{sms}{clock}"));
    }
    if let Some(p) = &d.peak {
        let shown = |f: Figure, unit: &str| match f {
            Figure::Value(v) => format!("{v:.0} {unit}"),
            Figure::Missing(why) => format!("unknown ({why})"),
        };
        row(
            out,
            "peak",
            format!(
                "FP32 {}, memory {}",
                shown(p.fp32_gflops, "GFLOP/s"),
                shown(p.memory_bandwidth_gbps, "GB/s")
            ),
        );
    }
    if let Some(total) = d.memory_total_bytes {
        let free = d
            .memory_free_bytes
            .map_or(String::new(), |f| format!(" ({} free)", bytes(f)));
        row(out, "memory", format!("{}{free}", bytes(total)));
    }
}

/// One line for the peer check: the pairs by access, and the writes.
fn peer_summary(out: &mut String, peers: &crate::report::Peers) {
    use crate::report::PeerAccess;
    let count = |a: PeerAccess| peers.pairs.iter().filter(|p| p.access == a).count();
    let writes: Vec<_> = peers
        .pairs
        .iter()
        .flat_map(|p| [&p.copy, &p.kernel])
        .flatten()
        .collect();
    let exact = writes.iter().filter(|w| w.exact).count();
    let _ = writeln!(
        out,
        "\nPeers: {} ordered pair(s): {} with peer access, {} without (through host memory){}; \
         {exact} of {} peer write(s) of {} KiB exact",
        peers.pairs.len(),
        count(PeerAccess::Granted),
        count(PeerAccess::NotOffered),
        match count(PeerAccess::Failed) + count(PeerAccess::NotTried) {
            0 => String::new(),
            n => format!(", {n} not checked"),
        },
        writes.len(),
        peers.words * 4 / 1024
    );
}
