//! The command line.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::probe::{Selection, Selector};
use crate::requirements::{parse_size, parse_version, Requirements};

/// Can this container really use its GPUs, and how well?
///
/// Loads the CUDA driver, lists the GPUs, runs a matmul on each, checks the
/// result against the CPU and measures both. Exit codes: 0 healthy, 1 a GPU
/// failed a check, 2 usage error, 3 no usable GPU, 4 deadline exceeded.
#[derive(Debug, Parser)]
#[command(name = "gpuprobe", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub options: Options,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPUs this process sees, without running anything on them.
    List,
    /// Print the JSON Schema of the report.
    Schema,
    /// Print every diagnosis rule: code, severity, cause, trigger and fix.
    Diagnoses,
    /// Liveness check for Docker HEALTHCHECK and Kubernetes probes: a tiny
    /// verified launch per GPU, one line of output, exit 0 or 1 only.
    Health(HealthArgs),
    /// Verify the GPUs, then replace this process with CMD (for ENTRYPOINT).
    Exec(ExecArgs),
    /// Probe every --interval, writing JSON lines, a state file and
    /// Prometheus metrics.
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Check the report that `watch --state FILE` keeps instead of touching
    /// the GPU: healthy when it is fresh and its verdict is healthy.
    #[arg(long, value_name = "FILE", requires = "max_age")]
    pub state: Option<PathBuf>,

    /// How old the state file's report may be, e.g. 2m.
    #[arg(long, value_parser = parse_positive_duration, requires = "state")]
    pub max_age: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Start CMD even when the check fails (the report still goes to stderr).
    #[arg(long)]
    pub warn_only: bool,

    /// The workload and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between the starts of two probes, e.g. 30s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub interval: Duration,

    /// Keep the latest report in FILE (atomically replaced), for `health --state`.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// Keep Prometheus metrics in FILE (node_exporter textfile format).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,

    /// Serve /metrics (Prometheus) and /healthz over HTTP on ADDR, e.g.
    /// 127.0.0.1:9477 or 0.0.0.0:9477 (default: no listener).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// Do not write JSON lines to stdout.
    #[arg(long)]
    pub quiet: bool,

    /// Stop after this many probes (default: until SIGTERM or SIGINT).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct Options {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,

    /// Shorthand for --format json.
    #[arg(long, global = true)]
    pub json: bool,

    /// GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or
    /// unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`.
    #[arg(long, default_value = "all", value_parser = parse_devices, global = true)]
    pub devices: Selection,

    /// Matrix size N of the N x N x N matmul.
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=32768), global = true)]
    pub size: u32,

    /// Timed iterations per measurement (default: as many as fill --min-time).
    #[arg(long, conflicts_with = "min_time", value_parser = clap::value_parser!(u32).range(1..=100_000), global = true)]
    pub iterations: Option<u32>,

    /// Minimum measured time per measurement, e.g. 200ms, 1s.
    #[arg(long, value_parser = parse_positive_duration, global = true)]
    pub min_time: Option<Duration>,

    /// Also write the JSON report to FILE (atomically: temp file + rename).
    #[arg(long, value_name = "FILE", global = true)]
    pub output: Option<PathBuf>,

    /// Seed for the input matrices, to repeat a run exactly (default: fresh).
    #[arg(long, global = true)]
    pub seed: Option<u64>,

    /// Deadline for the whole run (health: 10s); a stuck driver call is
    /// reported, not waited on.
    #[arg(long, value_parser = parse_positive_duration, global = true)]
    pub timeout: Option<Duration>,

    /// Fail unless at least N GPUs pass.
    #[arg(long, value_name = "N", env = "GPUPROBE_REQUIRE_GPUS", global = true)]
    pub require_gpus: Option<u32>,

    /// Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB.
    #[arg(long, value_name = "SIZE", env = "GPUPROBE_REQUIRE_MEMORY", value_parser = parse_size, global = true)]
    pub require_memory: Option<u64>,

    /// Fail unless every GPU has at least this compute capability, e.g. 8.0.
    #[arg(long, value_name = "X.Y", env = "GPUPROBE_REQUIRE_COMPUTE_CAPABILITY", value_parser = parse_version_arg, global = true)]
    pub require_compute_capability: Option<(u32, u32)>,

    /// Fail unless the driver supports at least this CUDA version, e.g. 12.2.
    #[arg(long, value_name = "X.Y", env = "GPUPROBE_REQUIRE_DRIVER", value_parser = parse_version_arg, global = true)]
    pub require_driver: Option<(u32, u32)>,

    /// Fail unless every GPU's matmul is at least X times the CPU's.
    #[arg(long, value_name = "X", env = "GPUPROBE_REQUIRE_SPEEDUP", value_parser = parse_speedup, global = true)]
    pub require_speedup: Option<f64>,

    /// Count a degraded verdict as failed.
    #[arg(long, env = "GPUPROBE_STRICT", global = true)]
    pub strict: bool,
}

impl Options {
    #[must_use]
    pub fn requirements(&self) -> Requirements {
        Requirements {
            gpus: self.require_gpus,
            memory: self.require_memory,
            compute_capability: self.require_compute_capability,
            driver: self.require_driver,
            speedup: self.require_speedup,
        }
    }
}

fn parse_version_arg(text: &str) -> Result<(u32, u32), String> {
    parse_version(text).ok_or_else(|| format!("{text:?} is not a version like 8.0"))
}

fn parse_speedup(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('x').parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a positive factor like 10")),
    }
}

/// Default --timeout of the probe, exec and watch (health has its own).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default --min-time.
pub const DEFAULT_MIN_TIME: Duration = Duration::from_millis(200);

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 30s, 2m)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// `all`, or indices and UUIDs separated by commas.
pub fn parse_devices(text: &str) -> Result<Selection, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(Selection::All);
    }
    let mut list = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err("empty entry in the device list".into());
        }
        if let Ok(i) = part.parse::<u32>() {
            list.push(Selector::Index(i));
        } else if part.starts_with("GPU-") || part.starts_with("MIG-") {
            list.push(Selector::Uuid(part.to_string()));
        } else {
            return Err(format!(
                "{part:?} is neither a device index nor a UUID (GPU-...)"
            ));
        }
    }
    Ok(Selection::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists() {
        assert_eq!(parse_devices("all"), Ok(Selection::All));
        assert_eq!(
            parse_devices("0, GPU-ab"),
            Ok(Selection::List(vec![
                Selector::Index(0),
                Selector::Uuid("GPU-ab".into())
            ]))
        );
        assert!(parse_devices("0,,1").is_err());
        assert!(parse_devices("first").is_err());
        assert!(parse_devices("-1").is_err());
    }

    #[test]
    fn speedups() {
        assert_eq!(parse_speedup("10"), Ok(10.0));
        assert_eq!(parse_speedup("2.5x"), Ok(2.5));
        assert!(parse_speedup("0").is_err());
        assert!(parse_speedup("fast").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_positive_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("soon").is_err());
    }
}
