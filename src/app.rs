//! From parsed arguments to output and an exit code.
use std::io::{IsTerminal, Write};

use clap::Parser;

use std::ffi::OsString;

use crate::cli::{Cli, Command, Format, Options, DEFAULT_MIN_TIME, DEFAULT_TIMEOUT};
use crate::cpu::Repeat;
use crate::exit_code;
use crate::export::{self, Exporter};
use crate::modes::{self, health};
use crate::probe::{self, progress::Scope, Mode};
use crate::report::Report;

/// Runs gpuprobe with the process's arguments; returns the exit code.
#[must_use]
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                blame_environment(&e.to_string());
            }
            return if !e.use_stderr() {
                exit_code::HEALTHY
            } else if is_health(&args) {
                // Docker reserves 2: a broken health check is unhealthy.
                health::UNHEALTHY
            } else {
                exit_code::USAGE
            };
        }
    };
    let o = &cli.options;
    match &cli.command {
        Some(Command::Schema) => {
            emit(&export::schema());
            exit_code::HEALTHY
        }
        Some(Command::Diagnoses) => {
            emit(&crate::diagnose::markdown());
            exit_code::HEALTHY
        }
        Some(Command::Health(h)) => {
            let (line, code) = match (&h.state, h.max_age) {
                (Some(path), Some(max_age)) => {
                    health::judge_state(path, max_age, std::time::SystemTime::now())
                }
                _ => health::judge(&probe::run(&probe_options(o, Mode::Health), |_, _| {})),
            };
            emit(&format!("{line}\n"));
            code
        }
        Some(Command::Exec(e)) => {
            let report = run_probe(o, Mode::Probe);
            let mut code = write_output(o, &report);
            if code == exit_code::HEALTHY {
                code = modes::exec::run(&report, &e.command, e.warn_only);
            }
            code
        }
        Some(Command::Watch(w)) => modes::watch::run(&probe_options(o, Mode::Probe), w),
        Some(Command::List) | None => {
            let mode = if matches!(cli.command, Some(Command::List)) {
                Mode::List
            } else {
                Mode::Probe
            };
            let report = run_probe(o, mode);
            let code = write_output(o, &report);
            emit(&render(&report, o.json || o.format == Format::Json));
            if code == exit_code::HEALTHY {
                report.exit_code
            } else {
                code
            }
        }
    }
}

/// A bad value may come from the environment rather than the command line;
/// clap names only the flag, so say which variable held it.
fn blame_environment(error: &str) {
    for (var, flag) in [
        ("GPUPROBE_REQUIRE_GPUS", "--require-gpus"),
        ("GPUPROBE_REQUIRE_MEMORY", "--require-memory"),
        (
            "GPUPROBE_REQUIRE_COMPUTE_CAPABILITY",
            "--require-compute-capability",
        ),
        ("GPUPROBE_REQUIRE_DRIVER", "--require-driver"),
        ("GPUPROBE_REQUIRE_SPEEDUP", "--require-speedup"),
        ("GPUPROBE_STRICT", "--strict"),
    ] {
        if let Some(value) = std::env::var_os(var) {
            if error.contains(flag) {
                crate::output::stderr_line!(
                    "note: {flag} was set by the environment: {var}={}",
                    value.to_string_lossy()
                );
            }
        }
    }
}

/// Whether the command line asks for `health` (before any `--`).
fn is_health(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "health")
}

fn probe_options(o: &Options, mode: Mode) -> probe::Options {
    let health = mode == Mode::Health;
    probe::Options {
        mode,
        size: if health { health::SIZE } else { o.size },
        repeat: match (o.iterations, o.min_time) {
            _ if health => Repeat::Times(1),
            (Some(n), _) => Repeat::Times(n),
            (None, Some(d)) => Repeat::AtLeast(d),
            (None, None) => Repeat::AtLeast(DEFAULT_MIN_TIME),
        },
        devices: o.devices.clone(),
        seed: o.seed.unwrap_or_else(fresh_seed),
        timeout: o.timeout.unwrap_or(if health {
            health::DEFAULT_TIMEOUT
        } else {
            DEFAULT_TIMEOUT
        }),
        requirements: o.requirements(),
        strict: o.strict,
    }
}

/// The probe with a progress line on a terminal.
fn run_probe(o: &Options, mode: Mode) -> Report {
    let mut line = ProgressLine::new();
    let report = probe::run(&probe_options(o, mode), |progress, elapsed| {
        line.show(progress, elapsed);
    });
    line.clear();
    report
}

/// Writes --output if asked; returns USAGE when that fails, else HEALTHY.
fn write_output(o: &Options, report: &Report) -> i32 {
    if let Some(path) = &o.output {
        if let Err(e) = crate::output::write_atomic(path, export::Json.render(report).as_bytes()) {
            crate::output::stderr_line!("gpuprobe: cannot write --output {}: {e}", path.display());
            return exit_code::USAGE;
        }
    }
    exit_code::HEALTHY
}

fn render(report: &Report, json: bool) -> String {
    if json {
        export::Json.render(report)
    } else {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        export::Text { color }.render(report)
    }
}

/// Writes to stdout; a closed pipe (`gpuprobe | head`) is not an error.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// A different seed every run, unless --seed fixes it.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// "probing: GPU 0 matmul, GPU 1 verify" on stderr while a stage takes a
/// while, only when stderr is a terminal.
struct ProgressLine {
    enabled: bool,
    shown: bool,
}

impl ProgressLine {
    /// Quiet for runs shorter than this.
    const AFTER: std::time::Duration = std::time::Duration::from_millis(500);

    fn new() -> Self {
        ProgressLine {
            enabled: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn show(&mut self, progress: &probe::progress::Progress, elapsed: std::time::Duration) {
        if !self.enabled || elapsed < Self::AFTER {
            return;
        }
        let stages: Vec<String> = progress
            .running()
            .iter()
            .map(|(scope, stage)| match scope {
                Scope::Machine => (*stage).to_string(),
                Scope::Device(i) => format!("GPU {i} {stage}"),
            })
            .collect();
        crate::output::stderr_text!(
            "\r\x1b[Kgpuprobe: {:.1} s, {}",
            elapsed.as_secs_f64(),
            stages.join(", ")
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            crate::output::stderr_text!("\r\x1b[K");
        }
    }
}
