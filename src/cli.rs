//! The command line: each subcommand takes exactly the options it uses.
//!
//! Options come in small groups (`#[command(flatten)]`): which GPUs and how
//! long, the matmul's shape, the requirements, the report's format and file.
//! A command flattens only the groups it reads, so `schema --size 4096` or
//! `health --output FILE` is a usage error instead of a flag that silently
//! does nothing. `gpuprobe [OPTIONS]` with no subcommand is the full probe.
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

pub use crate::checks::memtest::Size as MemtestSize;
use crate::cuda::CudaVersion;
pub use crate::export::OutputFormat;
use crate::judge::requirements::Requirements;
use crate::probe::{Selection, Selector};
use crate::report::{CheckName, ComputeCapability};
use crate::units::parse_size;

/// `--version`: the crate version, the git commit it was built from (short
/// hash, `-dirty` with uncommitted changes, `unknown` outside git, e.g. from
/// a crate tarball) and the target triple; build.rs supplies the last two.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GPUPROBE_GIT_COMMIT"),
    ", ",
    env!("GPUPROBE_TARGET"),
    ")"
);

/// Can this container really use its GPUs, and how well?
///
/// Loads the CUDA driver, lists the GPUs, runs a matmul on each, checks the
/// result against the CPU and measures both. Exit codes: 0 healthy, 1 a GPU
/// failed a check, 2 usage error, 3 no usable GPU, 4 deadline exceeded,
/// 5 the report could not be written.
#[derive(Debug, Parser)]
#[command(
    name = "gpuprobe",
    version = VERSION,
    max_term_width = 100,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The full probe's options, when no subcommand is given.
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the GPUs this process sees, without running anything on them.
    List(ListArgs),
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
    /// Sweep matrix sizes: every GEMM kernel (and cuBLAS's, when present)
    /// on each GPU against the CPU, each result verified; a table, JSON or
    /// an SVG plot.
    Bench(BenchArgs),
    /// Sustained load for node acceptance: the probe, then the matmul back
    /// to back on every GPU for --duration, each product compared bit for
    /// bit with the verified one, with throughput and NVML (clocks,
    /// temperature, power, throttling, ECC) recorded over time.
    Burn(BurnArgs),
    /// Memory test: a small verified matmul, then patterns (walking ones
    /// and zeros, own address, moving inversions of ones and zeros and of
    /// seeded random words) written over the GPU's free memory and read
    /// back by its kernels for --duration; every word that reads back
    /// wrong is reported with its offset and bits.
    Memtest(MemtestArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish,
    /// powershell), e.g. `gpuprobe completions bash > /etc/bash_completion.d/gpuprobe`.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `gpuprobe completions` has a script for. The scripts are
/// generated from these clap definitions by tools/docs (clap_complete) and
/// committed in completions/ (a test keeps them current), so the shipped
/// binary carries the scripts, not the generator (about 250 KiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

impl CompletionShell {
    /// The committed script for this shell.
    #[must_use]
    pub fn script(self) -> &'static str {
        match self {
            CompletionShell::Bash => include_str!("../completions/gpuprobe.bash"),
            CompletionShell::Zsh => include_str!("../completions/_gpuprobe"),
            CompletionShell::Fish => include_str!("../completions/gpuprobe.fish"),
            CompletionShell::Elvish => include_str!("../completions/gpuprobe.elv"),
            CompletionShell::Powershell => include_str!("../completions/_gpuprobe.ps1"),
        }
    }
}

/// The full probe (no subcommand).
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub matmul: MatmulArgs,
    /// Also run one pass of the memory test over SIZE of each GPU's free
    /// memory (e.g. 4GiB), a FRACTION of it (0.5, 50%) or `all` that is
    /// safe (off by default; `gpuprobe memtest` runs it for a duration).
    #[arg(long, value_name = "SIZE|FRACTION", value_parser = MemtestSize::parse)]
    pub memtest: Option<MemtestSize>,
    #[command(flatten)]
    pub require: RequireArgs,
}

/// `memtest`: the memory test for a duration.
#[derive(Debug, Args)]
pub struct MemtestArgs {
    /// How long to run passes of every pattern (at least one pattern runs).
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub duration: Duration,

    /// How much of each GPU's free memory to test: a SIZE (4GiB), a
    /// FRACTION (0.5, 50%) or `all` that is safe. At least 512 MiB or 5%
    /// of the memory always stays free for the driver; beside another
    /// compute process at most 1 GiB or 5%, whichever is smaller.
    #[arg(long, value_name = "SIZE|FRACTION", default_value = "all", value_parser = MemtestSize::parse)]
    pub size: MemtestSize,

    /// Seed of the random patterns (and of the matmul's inputs), to repeat
    /// a run exactly (default: fresh).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,

    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub require: RequireArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Check the report that `watch --state FILE` keeps instead of touching
    /// the GPU: healthy when it is fresh and its verdict is healthy or
    /// degraded.
    #[arg(long, value_name = "FILE", requires = "max_age")]
    pub state: Option<PathBuf>,

    /// How old the state file's report may be, e.g. 2m.
    #[arg(long, value_parser = parse_positive_duration, allow_hyphen_values = true, requires = "state")]
    pub max_age: Option<Duration>,

    /// Create no CUDA context: judge each GPU by its device nodes, NVML's
    /// health signals (a lost GPU, ECC and row-remap errors) and the
    /// diagnoses only, for a GPU whose workload cannot spare a context's
    /// device memory (hundreds of MiB). Without it, health makes a context
    /// and runs a tiny verified launch per GPU.
    #[arg(long, conflicts_with = "state")]
    pub no_context: bool,

    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub require: RequireArgs,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Start CMD even when the check fails (the report still goes to stderr).
    #[arg(long)]
    pub warn_only: bool,

    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub matmul: MatmulArgs,
    #[command(flatten)]
    pub require: RequireArgs,

    /// The workload and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Time between the starts of two probes, e.g. 30s, 5m.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
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
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), allow_negative_numbers = true)]
    pub count: Option<u64>,

    /// Call the node unhealthy (/healthz 503, `health --state` exit 1)
    /// only after this many consecutive failed probes, so that one failed
    /// cycle does not drain a node; each probe's own verdict stays in its
    /// report. 1: every failed probe. The default, 3, is Docker's
    /// HEALTHCHECK retries and Kubernetes' probe failureThreshold.
    #[arg(long, value_name = "N", default_value_t = 3, env = "GPUPROBE_UNHEALTHY_AFTER", value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub unhealthy_after: u32,

    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub matmul: MatmulArgs,
    #[command(flatten)]
    pub require: RequireArgs,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Matrix sizes N to sweep (N x N x N each), comma-separated, e.g.
    /// 256,1024; run in ascending order.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_values_t = DEFAULT_BENCH_SIZES, value_parser = clap::value_parser!(u32).range(1..=32768), allow_negative_numbers = true)]
    pub sizes: Vec<u32>,

    /// Also draw GFLOP/s against N per kernel, with each GPU's FP32 peak,
    /// as an SVG to FILE (replaced atomically).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// The cuBLAS library to measure, e.g.
    /// /opt/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13;
    /// nothing else is tried then, and one that does not load fails the
    /// run (default: the loader's path, then pip wheels' folders).
    #[arg(long, value_name = "PATH", env = "GPUPROBE_CUBLAS", value_parser = parse_cublas_path)]
    pub cublas: Option<PathBuf>,

    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub measure: MeasureArgs,
    #[command(flatten)]
    pub require: RequireChecksArgs,
}

#[derive(Debug, Args)]
pub struct BurnArgs {
    /// How long to keep every GPU under load, e.g. 10m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub duration: Duration,

    /// Length of one measured interval: its GFLOP/s and an NVML reading.
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub sample_every: Duration,

    /// How often a product is also copied back and compared element by
    /// element, naming what differs (and always at the end); every product
    /// is compared on the GPU.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub verify_every: Duration,

    /// Also draw GFLOP/s, SM clock and temperature over time, per GPU, as
    /// an SVG to FILE (replaced atomically).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,

    /// Also run the memory test, interleaved with the products: one of its
    /// patterns after each interval, over SIZE of each GPU's free memory
    /// (left after the burn's buffers), a FRACTION of it or `all` that is
    /// safe (off by default).
    #[arg(long, value_name = "SIZE|FRACTION", value_parser = MemtestSize::parse)]
    pub memtest: Option<MemtestSize>,

    #[command(flatten)]
    pub format: FormatArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub matmul: MatmulArgs,
    #[command(flatten)]
    pub require: RequireArgs,
}

/// The report's format on stdout.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long = "format", value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,

    /// Shorthand for --format json.
    #[arg(long)]
    json: bool,
}

impl FormatArgs {
    /// The one place the format is decided: `--json` wins over `--format`.
    #[must_use]
    pub fn format(&self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format
        }
    }
}

/// A file that also receives the JSON report.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Also write the JSON report to FILE (a regular file is replaced
    /// atomically: temp file + rename; a device or FIFO is written in place).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Which GPUs, and how long the run may take.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// GPUs to probe: `all`, or a comma list of CUDA indices and UUIDs (or
    /// unique UUID prefixes), e.g. `0,2` or `GPU-5b3a8f1e`.
    #[arg(long, default_value = "all", value_parser = parse_devices, allow_hyphen_values = true)]
    pub devices: Selection,

    /// Deadline for the whole run (default 60s; health 10s, bench 3m, burn and memtest --duration plus 2m); a
    /// stuck driver call is reported, not waited on.
    #[arg(long, value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub timeout: Option<Duration>,
}

/// What the measurements move: the matmul's shape and inputs, and the
/// bandwidth check's buffers.
#[derive(Debug, Args)]
pub struct MatmulArgs {
    /// Matrix size N of the N x N x N matmul.
    #[arg(long, default_value_t = DEFAULT_SIZE, value_parser = clap::value_parser!(u32).range(1..=32768), allow_negative_numbers = true)]
    pub size: u32,

    #[command(flatten)]
    pub measure: MeasureArgs,

    /// Bytes each bandwidth copy moves, e.g. 256MiB, 64MB; at most an
    /// eighth of the GPU's free memory and of the host's available memory;
    /// 0 turns the bandwidth check off (watch beside a workload).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", env = "GPUPROBE_BANDWIDTH_SIZE", value_parser = parse_bandwidth_size, allow_hyphen_values = true)]
    pub bandwidth_size: u64,
}

/// How each product is timed, and its inputs' seed.
#[derive(Debug, Clone, Args)]
pub struct MeasureArgs {
    /// Timed iterations per measurement (default: as many as fill --min-time).
    #[arg(long, conflicts_with = "min_time", value_parser = clap::value_parser!(u32).range(1..=100_000), allow_negative_numbers = true)]
    pub iterations: Option<u32>,

    /// Minimum measured time per measurement, e.g. 200ms, 1s.
    #[arg(long, value_parser = parse_positive_duration, allow_hyphen_values = true)]
    pub min_time: Option<Duration>,

    /// Seed for the input matrices, to repeat a run exactly (default: fresh).
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<u64>,
}

/// Smallest and largest `--bandwidth-size` but 0 (the check off): 4 KiB
/// (below it a copy is all overhead) to 16 GiB.
const BANDWIDTH_SIZES: std::ops::RangeInclusive<u64> = 4096..=16 << 30;

fn parse_bandwidth_size(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes == 0 || BANDWIDTH_SIZES.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("{text:?} is not 0 (off) or between 4KiB and 16GiB"))
    }
}

/// What the GPUs must offer for the run to pass.
#[derive(Debug, Args)]
pub struct RequireArgs {
    /// Fail unless at least N GPUs pass.
    #[arg(
        long,
        value_name = "N",
        env = "GPUPROBE_REQUIRE_GPUS",
        allow_negative_numbers = true
    )]
    pub require_gpus: Option<u32>,

    /// Fail unless every GPU has this much free memory, e.g. 16GiB, 500MB.
    #[arg(long, value_name = "SIZE", env = "GPUPROBE_REQUIRE_MEMORY", value_parser = parse_size, allow_hyphen_values = true)]
    pub require_memory: Option<u64>,

    /// Fail unless every GPU has at least this compute capability, e.g. 8.0.
    #[arg(long, value_name = "X.Y", env = "GPUPROBE_REQUIRE_COMPUTE_CAPABILITY", value_parser = parse_version_arg::<ComputeCapability>, allow_hyphen_values = true)]
    pub require_compute_capability: Option<ComputeCapability>,

    /// Fail unless the driver supports at least this CUDA version, e.g. 12.2.
    #[arg(long, value_name = "X.Y", env = "GPUPROBE_REQUIRE_DRIVER", value_parser = parse_version_arg::<CudaVersion>, allow_hyphen_values = true)]
    pub require_driver: Option<CudaVersion>,

    /// Fail unless every GPU's matmul is at least X times the CPU's.
    #[arg(long, value_name = "X", env = "GPUPROBE_REQUIRE_SPEEDUP", value_parser = parse_speedup, allow_hyphen_values = true)]
    pub require_speedup: Option<f64>,

    /// Fail unless every GPU's matmul reaches this percentage of the GPU's
    /// theoretical FP32 peak, e.g. 40.
    #[arg(long, value_name = "PERCENT", env = "GPUPROBE_REQUIRE_EFFICIENCY", value_parser = parse_percent, allow_hyphen_values = true)]
    pub require_efficiency: Option<f64>,

    /// Count a degraded verdict as failed (variable: 1/0, true/false, yes/no, on/off).
    #[arg(long, env = "GPUPROBE_STRICT", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub strict: bool,

    #[command(flatten)]
    pub checks: RequireChecksArgs,
}

/// `--require-checks`, in every command that runs checks (`bench` too,
/// which takes no other requirement).
#[derive(Debug, Args)]
pub struct RequireChecksArgs {
    /// Fail unless each named check ran, on every GPU probed (or for the
    /// machine), e.g. matmul,verify,bandwidth. A check that did not run
    /// (a busy GPU, the deadline, --bandwidth-size 0) otherwise only
    /// says why in the report; naming one this command never runs is a
    /// usage error.
    #[arg(long, value_name = "CHECK,...", value_delimiter = ',', env = "GPUPROBE_REQUIRE_CHECKS", value_parser = clap::builder::EnumValueParser::<CheckName>::new())]
    pub require_checks: Vec<CheckName>,
}

/// The names `--require-checks` takes: the report's check names.
impl clap::ValueEnum for CheckName {
    fn value_variants<'a>() -> &'a [Self] {
        &CheckName::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

impl RequireArgs {
    #[must_use]
    pub fn requirements(&self) -> Requirements {
        Requirements {
            checks: self.checks.require_checks.clone(),
            gpus: self.require_gpus,
            memory: self.require_memory,
            compute_capability: self.require_compute_capability,
            driver: self.require_driver,
            speedup: self.require_speedup,
            efficiency: self.require_efficiency.map(|p| p / 100.0),
        }
    }
}

/// `bench --cublas`: a file that exists, made absolute (a bare name would
/// otherwise be looked up on the loader's path).
fn parse_cublas_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() {
        return Err("is empty; name the cuBLAS library file".into());
    }
    let path = std::path::Path::new(text);
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => std::path::absolute(path).map_err(|e| format!("{text}: {e}")),
        Ok(_) => Err(format!(
            "{text} is not a file; name the library itself, e.g. {text}/libcublas.so.13"
        )),
        Err(e) => Err(format!("{text}: {e}")),
    }
}

/// A compute capability or a CUDA version, "major.minor" or "major"
/// (`units::parse_major_minor`).
fn parse_version_arg<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a version like 8.0"))
}

fn parse_speedup(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('x').parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a positive factor like 10")),
    }
}

fn parse_percent(text: &str) -> Result<f64, String> {
    match text.trim().trim_end_matches('%').parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 100.0 => Ok(x),
        _ => Err(format!(
            "{text:?} is not a percentage above 0 and at most 100, like 40"
        )),
    }
}

/// Default --timeout of the probe, exec and watch (health has its own).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default --size.
pub const DEFAULT_SIZE: u32 = 2048;

/// Default `bench --sizes`: doublings from where launch overhead dominates
/// to where a large GPU reaches its plateau.
pub const DEFAULT_BENCH_SIZES: [u32; 6] = [256, 512, 1024, 2048, 4096, 8192];

/// Default `bench --timeout`: the whole sweep, CPU references included;
/// sizes that would not fit are skipped, not waited for.
pub const DEFAULT_BENCH_TIMEOUT: Duration = Duration::from_secs(180);
/// Default --bandwidth-size (the flag's default text, "256MiB"): a copy
/// long enough to amortise its start on a 3 TB/s GPU (0.17 ms), small
/// beside the memory of any GPU gpuprobe runs a matmul on.
pub const DEFAULT_BANDWIDTH_SIZE: u64 = 256 << 20;

/// Default --min-time: the CPU baseline's own least measuring time.
pub const DEFAULT_MIN_TIME: Duration = crate::cpu::MIN_TIME;

/// The longest duration any flag accepts. Deadlines are `Instant + duration`,
/// which panics on overflow; a year is far beyond any real run and far below
/// where `Instant` arithmetic overflows on any platform.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration flag: positive, at most `MAX_DURATION`.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 500ms, 30s, 2m)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    if d > MAX_DURATION {
        return Err("must be at most 365d".into());
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
        } else if let Some(legacy) = part.strip_prefix("MIG-GPU-") {
            list.push(mig_instance(legacy).ok_or_else(|| {
                format!("{part:?} is not a MIG instance (MIG-GPU-<uuid>/<gpu instance>/<compute instance>)")
            })?);
        } else if part.starts_with("GPU-") || part.starts_with("MIG-") {
            list.push(Selector::Uuid(part.to_string()));
        } else {
            return Err(format!(
                "{part:?} is neither a device index nor a UUID (GPU-... or MIG-...)"
            ));
        }
    }
    Ok(Selection::List(list))
}

/// `<uuid>/<gi>/<ci>` after "MIG-GPU-": the MIG instance form of drivers
/// before 470.
fn mig_instance(text: &str) -> Option<Selector> {
    let mut parts = text.split('/');
    let (uuid, gi, ci) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || uuid.is_empty() {
        return None;
    }
    Some(Selector::MigInstance {
        gpu: format!("GPU-{uuid}"),
        gpu_instance: gi.parse().ok()?,
        compute_instance: ci.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mig_entries_of_both_forms() {
        assert_eq!(
            parse_devices("MIG-8c2f0d1a-1b2c-4d3e-9f00-112233445566"),
            Ok(Selection::List(vec![Selector::Uuid(
                "MIG-8c2f0d1a-1b2c-4d3e-9f00-112233445566".into()
            )]))
        );
        let legacy = "MIG-GPU-5b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a5b/1/0";
        let parsed = parse_devices(legacy);
        assert_eq!(
            parsed,
            Ok(Selection::List(vec![Selector::MigInstance {
                gpu: "GPU-5b3a8f1e-2c4d-4e6f-8a9b-0c1d2e3f4a5b".into(),
                gpu_instance: 1,
                compute_instance: 0
            }]))
        );
        assert_eq!(parsed.unwrap().to_string(), legacy);
        assert!(parse_devices("MIG-GPU-5b3a/1").is_err());
        assert!(parse_devices("MIG-GPU-5b3a/x/0").is_err());
    }

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
        assert_eq!(parse_percent("40"), Ok(40.0));
        assert_eq!(parse_percent("12.5%"), Ok(12.5));
        assert!(parse_percent("0").is_err());
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("most").is_err());
    }

    #[test]
    fn bandwidth_sizes() {
        assert_eq!(parse_bandwidth_size("256MiB"), Ok(DEFAULT_BANDWIDTH_SIZE));
        assert_eq!(parse_bandwidth_size("4KiB"), Ok(4096));
        assert_eq!(parse_bandwidth_size("0"), Ok(0));
        assert!(parse_bandwidth_size("1").is_err());
        assert!(parse_bandwidth_size("4095").is_err());
        assert!(parse_bandwidth_size("17GiB").is_err());
        assert!(parse_bandwidth_size("big").is_err());
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
