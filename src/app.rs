//! From parsed arguments to output and an exit code.
use std::io::{IsTerminal, Write};

use clap::Parser;

use crate::cli::{Cli, Command, Format, DEFAULT_MIN_TIME};
use crate::cpu::Repeat;
use crate::exit_code;
use crate::export::{self, Exporter};
use crate::probe::{self, progress::Scope, Mode};
use crate::report::Report;

/// Runs gpuprobe with the process's arguments; returns the exit code.
#[must_use]
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit_code::USAGE
            } else {
                exit_code::HEALTHY
            };
        }
    };
    let mode = match cli.command {
        Some(Command::Schema) => {
            emit(&export::schema());
            return exit_code::HEALTHY;
        }
        Some(Command::List) => Mode::List,
        None => Mode::Probe,
    };
    let o = &cli.options;
    let options = probe::Options {
        mode,
        size: o.size,
        repeat: match (o.iterations, o.min_time) {
            (Some(n), _) => Repeat::Times(n),
            (None, Some(d)) => Repeat::AtLeast(d),
            (None, None) => Repeat::AtLeast(DEFAULT_MIN_TIME),
        },
        devices: o.devices.clone(),
        seed: o.seed.unwrap_or_else(fresh_seed),
        timeout: o.timeout,
    };

    let mut line = ProgressLine::new();
    let report = probe::run(&options, |progress, elapsed| line.show(progress, elapsed));
    line.clear();

    let json = o.json || o.format == Format::Json;
    let mut code = report.exit_code;
    if let Some(path) = &o.output {
        if let Err(e) = crate::output::write_atomic(path, export::Json.render(&report).as_bytes()) {
            eprintln!("gpuprobe: cannot write --output {}: {e}", path.display());
            code = exit_code::USAGE;
        }
    }
    emit(&render(&report, json));
    code
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
        eprint!(
            "\r\x1b[Kgpuprobe: {:.1} s, {}",
            elapsed.as_secs_f64(),
            stages.join(", ")
        );
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}
