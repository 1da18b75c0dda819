//! From parsed arguments to output and an exit code.
use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::Parser;

use crate::checks::progress::Scope;
use crate::cli::{
    BenchArgs, BurnArgs, Cli, Command, FormatArgs, HealthArgs, MatmulArgs, MemtestArgs,
    MemtestSize, OutputArgs, RequireArgs, TargetArgs, DEFAULT_BANDWIDTH_SIZE,
    DEFAULT_BENCH_TIMEOUT, DEFAULT_MIN_TIME, DEFAULT_SIZE, DEFAULT_TIMEOUT,
};
use crate::cpu::Repeat;
use crate::exit_code;
use crate::export::{self, Exporter};
use crate::judge::{self, Plan, Policy};
use crate::modes::{self, health};
use crate::probe::{self, CpuWork, GpuWork, Work};
use crate::report::{Report, ReportCommand};

/// Runs gpuprobe with the process's arguments; returns the exit code.
#[must_use]
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, &args),
    };
    if let Some(code) = refuse_unwritable(&cli) {
        return code;
    }
    match &cli.command {
        None => {
            let p = &cli.probe;
            let mut plan = probe_plan(&p.target, &p.matmul, &p.require);
            if let Some(size) = p.memtest {
                // One pass over the size asked for.
                add_memtest(&mut plan, std::time::Duration::ZERO, size);
            }
            if let Some(code) = refuse_never_run(&plan, None) {
                return code;
            }
            publish(&run_probe(&plan), &p.format, &p.output)
        }
        Some(Command::List(l)) => {
            let plan = plan(ReportCommand::List, Work::List, &l.target, None, None);
            publish(&run_probe(&plan), &l.format, &l.output)
        }
        Some(Command::Schema) => deliver(export::PUBLISHED_SCHEMA)
            .err()
            .unwrap_or(exit_code::HEALTHY),
        Some(Command::Diagnoses) => deliver(&crate::judge::diagnose::markdown())
            .err()
            .unwrap_or(exit_code::HEALTHY),
        Some(Command::Completions { shell }) => {
            deliver(shell.script()).err().unwrap_or(exit_code::HEALTHY)
        }
        Some(Command::Health(h)) => run_health(h),
        Some(Command::Exec(e)) => {
            let plan = probe_plan(&e.target, &e.matmul, &e.require);
            if let Some(code) = refuse_never_run(&plan, Some("exec")) {
                return code;
            }
            let report = run_probe(&plan);
            match write_output(&e.output, &report) {
                Some(code) => code,
                None => modes::exec::run(&report, &e.command, e.warn_only),
            }
        }
        Some(Command::Burn(b)) => run_burn(b),
        Some(Command::Memtest(m)) => run_memtest(m),
        Some(Command::Watch(w)) => {
            let mut plan = probe_plan(&w.target, &w.matmul, &w.require);
            // Never between GPUs in a monitoring loop: a peer write that
            // hangs cannot be cancelled, and the node's jobs use the path.
            if let Work::Gpus(g) = &mut plan.probe.work {
                g.peers = None;
            }
            if let Some(code) = refuse_never_run(&plan, Some("watch")) {
                return code;
            }
            modes::watch::run(&plan, w)
        }
        Some(Command::Bench(b)) => run_bench(b),
    }
}

/// Checks every file the command will write before anything runs
/// (`output::check_writable`), so a 10-minute burn does not end by losing
/// its report to a missing folder; USAGE, naming each flag, when one cannot
/// be written. What fails only when written (a full disk) stays OUTPUT.
fn refuse_unwritable(cli: &Cli) -> Option<i32> {
    let files = match &cli.command {
        None => vec![("--output", &cli.probe.output.output)],
        Some(Command::List(l)) => vec![("--output", &l.output.output)],
        Some(Command::Exec(e)) => vec![("--output", &e.output.output)],
        Some(Command::Watch(w)) => vec![("--state", &w.state), ("--prometheus", &w.prometheus)],
        Some(Command::Bench(b)) => vec![("--output", &b.output.output), ("--plot", &b.plot)],
        Some(Command::Burn(b)) => vec![("--output", &b.output.output), ("--plot", &b.plot)],
        Some(Command::Memtest(m)) => vec![("--output", &m.output.output)],
        Some(
            Command::Health(_) | Command::Schema | Command::Diagnoses | Command::Completions { .. },
        ) => Vec::new(),
    };
    let mut refused = false;
    for (flag, path) in files {
        let Some(path) = path else { continue };
        if let Err(e) = crate::output::check_writable(path) {
            crate::output::stderr_line!(
                "gpuprobe: cannot write {flag} {}: {e}; nothing was run",
                path.display()
            );
            refused = true;
        }
    }
    refused.then_some(exit_code::USAGE)
}

/// USAGE (for `health`, one line and UNHEALTHY) when `--require-checks`
/// names a check the plan never runs: the requirement could only fail,
/// and the mistake is the command line's, not the GPU's. `shown`: the
/// command's name where its plan is another's (`exec`, `watch`).
fn refuse_never_run(plan: &Plan, shown: Option<&str>) -> Option<i32> {
    let never = plan.never_runs();
    if never.is_empty() {
        return None;
    }
    let names: Vec<&str> = never.iter().map(|c| c.as_str()).collect();
    let command = match (shown, plan.probe.command, &plan.probe.work) {
        (Some(shown), ..) => shown,
        (None, ReportCommand::Health, Work::NvmlOnly) => "health --no-context",
        (None, command, _) => command.as_str(),
    };
    let message = format!(
        "--require-checks names {}, which `{command}` never runs as asked (README, \"No silent skip\")",
        names.join(", ")
    );
    if plan.probe.command == ReportCommand::Health {
        let _ = deliver(&format!("unhealthy: usage error: {message}\n"));
        return Some(health::UNHEALTHY);
    }
    crate::output::stderr_line!("error: {message}");
    Some(exit_code::USAGE)
}

/// `burn`'s default deadline beyond `--duration`: the probe's stages before
/// the burn (a CPU reference product of 8192³ takes seconds on a few
/// cores) and the last comparison after it.
const BURN_TIMEOUT_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a stopped `burn` waits for its GPUs to end their intervals
/// before it reports what is still running: an interval of the default
/// second, and a product of a large `--size`, end well within it.
const BURN_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Ends the process with `code` once the output is out, without running
/// anything else: no atexit handlers and no library destructors.
///
/// A driver call that never returned (the probe's deadline passed) can hold
/// the driver's internal lock, and the exit-time destructors of libcuda and
/// libnvidia-ml, which `std::process::exit` runs through exit(3), take that
/// lock: the process would hang after printing its verdict. So every exit
/// leaves the way `_exit(2)` does, after flushing stdout and stderr (the
/// `--output`, `--state` and `--prometheus` files are already synced to
/// disk when written). The kernel releases the driver's resources of a
/// process that ends either way. On Windows `ExitProcess` is not enough: it
/// runs every DLL's detach routine (DllMain, DLL_PROCESS_DETACH) under the
/// loader lock; `TerminateProcess` on the own process runs none
/// (Microsoft's documentation of ExitProcess and TerminateProcess).
pub fn leave(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    terminate(code)
}

#[cfg(unix)]
fn terminate(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and never returns; skipping exit(3)'s
    // handlers is the point (see `leave`), and the output is flushed.
    unsafe { libc::_exit(code) }
}

#[cfg(windows)]
fn terminate(code: i32) -> ! {
    #[link(name = "kernel32")]
    extern "system" {
        fn GetCurrentProcess() -> *mut std::ffi::c_void;
        fn TerminateProcess(process: *mut std::ffi::c_void, exit_code: u32) -> i32;
    }
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no
    // closing and is always valid for the calling process; TerminateProcess
    // on it ends this process at once with `code` as its exit status.
    unsafe {
        TerminateProcess(GetCurrentProcess(), code as u32);
    }
    // Not reached: TerminateProcess on the own process does not return.
    std::process::abort()
}

#[cfg(not(any(unix, windows)))]
fn terminate(code: i32) -> ! {
    std::process::exit(code)
}

/// Prints a clap error and returns its exit code: 0 for --help and
/// --version, USAGE otherwise, and for `health` one line and UNHEALTHY
/// (Docker reserves 2, and a broken health check is an unhealthy one).
fn usage_error(e: &clap::Error, args: &[OsString]) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return exit_code::HEALTHY;
    }
    let note = blame_environment(e, args);
    if is_health(args) {
        let note = note.map_or(String::new(), |n| format!(" ({n})"));
        let _ = deliver(&format!(
            "unhealthy: usage error: {}{note}\n",
            one_line(&e.to_string())
        ));
        return health::UNHEALTHY;
    }
    let _ = e.print();
    if let Some(note) = note {
        crate::output::stderr_line!("{note}");
    }
    exit_code::USAGE
}

/// Clap's message without its usage and help footer, on one line.
fn one_line(error: &str) -> String {
    let text: Vec<&str> = error
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect();
    let text = text.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_string()
}

/// A bad value may come from the environment rather than the command line;
/// clap names only the flag, so say which variable held it. Clap's error
/// context (not its message) says which argument and value it rejected;
/// the variable is blamed only when it holds that value and the flag is
/// not on the command line (`--flag V` or `--flag=V`, before any `--`).
fn blame_environment(e: &clap::Error, args: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let (Some(ContextValue::String(arg)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return None;
    };
    // Clap names the argument as its help does: "--bandwidth-size <SIZE>".
    let flag = arg.split([' ', '=']).next()?;
    let (var, _) = environment_flags().into_iter().find(|(_, f)| f == flag)?;
    let set = std::env::var_os(&var)?;
    let given = args
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .filter_map(|a| a.to_str())
        .any(|a| {
            a.strip_prefix(flag)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        });
    (!given && set.to_string_lossy() == value.as_str())
        .then(|| format!("note: {flag} was set by the environment: {var}={value}"))
}

/// Each variable that sets a flag and that flag, ("GPUPROBE_STRICT",
/// "--strict"): read from the `env` attributes in cli.rs through clap's
/// view of the command line and every subcommand's.
#[must_use]
pub fn environment_flags() -> Vec<(String, String)> {
    fn walk(command: &clap::Command, table: &mut Vec<(String, String)>) {
        for arg in command.get_arguments() {
            if let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) {
                let entry = (var.to_string_lossy().into_owned(), format!("--{long}"));
                if !table.contains(&entry) {
                    table.push(entry);
                }
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, table);
        }
    }
    let mut table = Vec::new();
    walk(&<Cli as clap::CommandFactory>::command(), &mut table);
    table
}

/// `health`: one line and the exit code Docker and Kubernetes read.
fn run_health(h: &HealthArgs) -> i32 {
    let (line, code) = if let (Some(path), Some(max_age)) = (&h.state, h.max_age) {
        health::judge_state(path, max_age, std::time::SystemTime::now())
    } else {
        let work = if h.no_context {
            Work::NvmlOnly
        } else {
            // A liveness check: the FP32 product only, checked
            // against an untimed CPU product; no bandwidth.
            Work::Gpus(GpuWork {
                tensor_cores: false,
                bandwidth: None,
                burn: None,
                memtest: None,
                peers: None,
                counters_before: false,
                cpu: CpuWork::ReferenceOnly,
            })
        };
        let plan = plan(
            ReportCommand::Health,
            work,
            &h.target,
            None,
            Some(&h.require),
        );
        if let Some(code) = refuse_never_run(&plan, None) {
            return code;
        }
        health::judge(&judge::run(&plan, |_, _| {}))
    };
    // The exit code is the health check's answer; a lost line does
    // not change it (Docker and Kubernetes read the code).
    let _ = deliver(&format!("{line}\n"));
    code
}

/// `burn`: the sustained load, its report and plot.
fn run_burn(b: &BurnArgs) -> i32 {
    crate::signals::install();
    // A sustained FP32 load: no tensor cores, and no CPU baseline
    // after it (its subject is the GPU under load).
    let work = Work::Gpus(GpuWork {
        tensor_cores: false,
        bandwidth: Some(b.matmul.bandwidth_size),
        burn: Some(crate::checks::burn::Plan {
            duration: b.duration,
            sample: b.sample_every,
            verify: b.verify_every,
            stop: crate::signals::stop_requested,
        }),
        memtest: None,
        // Under load: the burn's GPUs write into each other after it.
        peers: Some(crate::checks::peer::Plan {
            words: crate::checks::peer::PROBE_WORDS,
        }),
        counters_before: true,
        cpu: CpuWork::Timed { baseline: false },
    });
    let mut plan = plan(
        ReportCommand::Burn,
        work,
        &b.target,
        Some(&b.matmul),
        Some(&b.require),
    );
    plan.probe.timeout = b
        .target
        .timeout
        .unwrap_or_else(|| b.duration.saturating_add(BURN_TIMEOUT_MARGIN));
    if let Some(size) = b.memtest {
        // Its patterns between the burn's intervals, for as long as the
        // burn runs (the duration is the burn's).
        add_memtest(&mut plan, std::time::Duration::ZERO, size);
    }
    if let Some(code) = refuse_never_run(&plan, None) {
        return code;
    }
    // Ctrl-C ends the burn's intervals; what does not end within
    // the grace (a driver call that never returns) is reported.
    let mut line = ProgressLine::new();
    let report = judge::Session::new(plan).run_with_grace(
        |progress, elapsed| line.show(progress, elapsed),
        crate::signals::stop_requested,
        BURN_STOP_GRACE,
    );
    line.clear();
    // The report goes out whether or not the plot could be written.
    let plotted = modes::bench::write_plot(b.plot.as_deref(), || modes::burn::chart(&report));
    let published = publish(&report, &b.format, &b.output);
    plotted.err().unwrap_or(published)
}

/// `memtest`'s default deadline beyond `--duration`: the small matmul
/// before it, the allocation of the region, and the pass under way when
/// the duration ends (a pass over 80 GiB takes seconds on a GPU).
const MEMTEST_TIMEOUT_MARGIN: std::time::Duration = std::time::Duration::from_secs(120);

/// `memtest`: a small verified matmul (the GPU computes), then the memory
/// test for the duration.
fn run_memtest(m: &MemtestArgs) -> i32 {
    let work = Work::Gpus(GpuWork {
        tensor_cores: false,
        bandwidth: None,
        burn: None,
        memtest: None,
        peers: None,
        counters_before: true,
        cpu: CpuWork::ReferenceOnly,
    });
    // health's small product, once: the memory test is the subject.
    let matmul = MatmulArgs {
        size: health::SIZE,
        measure: crate::cli::MeasureArgs {
            iterations: Some(1),
            min_time: None,
            seed: m.seed,
        },
        bandwidth_size: DEFAULT_BANDWIDTH_SIZE,
    };
    let mut plan = plan(
        ReportCommand::Memtest,
        work,
        &m.target,
        Some(&matmul),
        Some(&m.require),
    );
    plan.probe.timeout = m
        .target
        .timeout
        .unwrap_or_else(|| m.duration.saturating_add(MEMTEST_TIMEOUT_MARGIN));
    add_memtest(&mut plan, m.duration, m.size);
    if let Some(code) = refuse_never_run(&plan, None) {
        return code;
    }
    publish(&run_probe(&plan), &m.format, &m.output)
}

/// Adds the memory test to a plan whose work runs the GPUs' pipelines,
/// its random patterns seeded from the plan's seed.
fn add_memtest(plan: &mut Plan, duration: std::time::Duration, size: MemtestSize) {
    let seed = (plan.probe.seed ^ (plan.probe.seed >> 32)) as u32;
    if let Work::Gpus(g) = &mut plan.probe.work {
        g.memtest = Some(crate::checks::memtest::Plan {
            duration,
            size,
            seed,
        });
    }
}

/// `bench`: the GEMM sweep, its report and plot.
fn run_bench(b: &BenchArgs) -> i32 {
    let mut sizes = b.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let largest = sizes.last().copied().unwrap_or(DEFAULT_SIZE);
    // The bench runs no bandwidth check: the size is unused.
    let matmul = MatmulArgs {
        size: largest,
        measure: b.measure.clone(),
        bandwidth_size: DEFAULT_BANDWIDTH_SIZE,
    };
    let work = Work::Sweep { sizes };
    let mut plan = plan(ReportCommand::Bench, work, &b.target, Some(&matmul), None);
    plan.policy
        .requirements
        .checks
        .clone_from(&b.require.require_checks);
    if let Some(code) = refuse_never_run(&plan, None) {
        return code;
    }
    let report = modes::bench::run(&plan, b.format.format(), b.cublas.clone());
    // The report goes out whether or not the plot could be written.
    let plotted = modes::bench::plot(&report, b.plot.as_deref());
    let published = publish(&report, &b.format, &b.output);
    plotted.err().unwrap_or(published)
}

/// Whether the command line asks for `health` (before any `--`).
fn is_health(args: &[OsString]) -> bool {
    args.iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "health")
}

/// The plan of the probe and of `exec` and `watch`: every check, the
/// bandwidth at `--bandwidth-size`, the CPU baseline.
fn probe_plan(target: &TargetArgs, matmul: &MatmulArgs, require: &RequireArgs) -> Plan {
    let work = Work::Gpus(GpuWork {
        tensor_cores: true,
        bandwidth: Some(matmul.bandwidth_size),
        burn: None,
        memtest: None,
        // Last, where several GPUs are selected and the deadline allows.
        peers: Some(crate::checks::peer::Plan {
            words: crate::checks::peer::PROBE_WORDS,
        }),
        counters_before: true,
        cpu: CpuWork::Timed { baseline: true },
    });
    plan(
        ReportCommand::Probe,
        work,
        target,
        Some(matmul),
        Some(require),
    )
}

/// A command's plan from the option groups it has; a command without a
/// group gets that group's defaults (health: its own light ones).
fn plan(
    command: ReportCommand,
    work: Work,
    target: &TargetArgs,
    matmul: Option<&MatmulArgs>,
    require: Option<&RequireArgs>,
) -> Plan {
    let health = command == ReportCommand::Health;
    let (size, repeat, seed) = match matmul {
        Some(MatmulArgs {
            size, measure: m, ..
        }) => (
            *size,
            match (m.iterations, m.min_time) {
                (Some(n), _) => Repeat::Times(n),
                (None, Some(d)) => Repeat::AtLeast(d),
                (None, None) => Repeat::AtLeast(DEFAULT_MIN_TIME),
            },
            m.seed,
        ),
        None if health => (health::SIZE, Repeat::Times(1), None),
        None => (DEFAULT_SIZE, Repeat::AtLeast(DEFAULT_MIN_TIME), None),
    };
    let timeout = target.timeout.unwrap_or(match command {
        ReportCommand::Health => health::DEFAULT_TIMEOUT,
        ReportCommand::Bench => DEFAULT_BENCH_TIMEOUT,
        // burn and memtest: their own, from --duration (their callers).
        ReportCommand::Probe
        | ReportCommand::List
        | ReportCommand::Burn
        | ReportCommand::Memtest => DEFAULT_TIMEOUT,
    });
    Plan {
        probe: probe::Options {
            command,
            work,
            size,
            repeat,
            devices: target.devices.clone(),
            seed: seed.unwrap_or_else(fresh_seed),
            timeout,
            // NVML's events, where a command's work could cause them.
            events: matches!(
                command,
                ReportCommand::Probe
                    | ReportCommand::Burn
                    | ReportCommand::Bench
                    | ReportCommand::Memtest
            ),
        },
        policy: Policy {
            requirements: require.map(RequireArgs::requirements).unwrap_or_default(),
            // `health` and `memtest` (one small product) measure no speed
            // to hold to a requirement.
            measured_speed: !health && command != ReportCommand::Memtest,
            strict: require.is_some_and(|r| r.strict),
        },
    }
}

/// The probe with a progress line on a terminal.
fn run_probe(plan: &Plan) -> Report {
    let mut line = ProgressLine::new();
    let report = judge::run(plan, |progress, elapsed| {
        line.show(progress, elapsed);
    });
    line.clear();
    report
}

/// Writes --output (if asked) and the report on stdout; the report's exit
/// code, or OUTPUT when either write failed.
fn publish(report: &Report, format: &FormatArgs, output: &OutputArgs) -> i32 {
    let written = write_output(output, report);
    let printed = deliver(&format.format().render(report));
    written
        .or(printed.err())
        .unwrap_or(report.verdict.exit_code())
}

/// Writes --output if asked; `Some(OUTPUT)` when that fails.
fn write_output(output: &OutputArgs, report: &Report) -> Option<i32> {
    let path = output.output.as_ref()?;
    match crate::output::write_report(path, export::Json.render(report).as_bytes()) {
        Ok(()) => None,
        Err(e) => {
            crate::output::stderr_line!("gpuprobe: cannot write --output {}: {e}", path.display());
            Some(exit_code::OUTPUT)
        }
    }
}

/// Writes to stdout. A closed pipe (`gpuprobe | head`) is not an error, as
/// in ripgrep; any other failure (`> /dev/full`) loses the report, which is
/// said on stderr and is `Err(OUTPUT)`.
fn deliver(text: &str) -> Result<(), i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => {
            crate::output::stderr_line!("gpuprobe: cannot write the report to stdout: {e}");
            Err(exit_code::OUTPUT)
        }
    }
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

    fn show(&mut self, progress: &crate::checks::progress::Progress, elapsed: std::time::Duration) {
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
