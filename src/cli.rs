//! The command line.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::probe::{Selection, Selector};

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
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=32768))]
    pub size: u32,

    /// Timed iterations per measurement (default: as many as fill --min-time).
    #[arg(long, conflicts_with = "min_time", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub iterations: Option<u32>,

    /// Minimum measured time per measurement, e.g. 200ms, 1s.
    #[arg(long, value_parser = parse_positive_duration)]
    pub min_time: Option<Duration>,

    /// Also write the JSON report to FILE (atomically: temp file + rename).
    #[arg(long, value_name = "FILE", global = true)]
    pub output: Option<PathBuf>,

    /// Seed for the input matrices, to repeat a run exactly (default: fresh).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Deadline for the whole run; a stuck driver call is reported, not waited on.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, global = true)]
    pub timeout: Duration,
}

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
    fn durations() {
        assert_eq!(
            parse_positive_duration("250ms"),
            Ok(Duration::from_millis(250))
        );
        assert!(parse_positive_duration("0s").is_err());
        assert!(parse_positive_duration("soon").is_err());
    }
}
