//! `gpuprobe exec -- CMD`: verify, then become the workload.
//!
//! Meant as `ENTRYPOINT ["gpuprobe", "exec", "--"]` with the workload as
//! CMD. On Unix the process is replaced (execvp): the workload keeps the PID,
//! PID 1 in a container, and receives `docker stop`'s SIGTERM itself.
use std::ffi::OsString;

use crate::export::{Exporter, Text};
use crate::modes::health::is_ok;
use crate::report::Report;

/// Exit code when CMD cannot be found (as POSIX shells use).
pub const NOT_FOUND: i32 = 127;
/// Exit code when CMD exists but cannot be run.
pub const CANNOT_RUN: i32 = 126;

/// Starts `command` if the report allows it (or `warn_only`); otherwise
/// prints the report to stderr and returns the probe's exit code.
#[must_use]
pub fn run(report: &Report, command: &[OsString], warn_only: bool) -> i32 {
    let shown = command
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    if is_ok(report.verdict) {
        crate::output::stderr_line!(
            "gpuprobe: {}: {}; starting {shown}",
            report.verdict.as_str(),
            report.summary
        );
    } else {
        crate::output::stderr_text!("{}", Text { color: false }.render(report));
        if !warn_only {
            // Say what was not done: whoever reads the container's log
            // should not wonder whether the workload ran and failed.
            crate::output::stderr_line!(
                "gpuprobe: did not start {shown}: the GPU check ended {} (exit {}); `gpuprobe exec --warn-only` starts it anyway",
                report.verdict.as_str(),
                report.verdict.exit_code()
            );
            return report.verdict.exit_code();
        }
        crate::output::stderr_line!("gpuprobe: --warn-only: starting {shown} anyway");
    }
    replace_process(command)
}

#[cfg(unix)]
fn replace_process(command: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = command.split_first() else {
        return CANNOT_RUN;
    };
    // exec only returns on failure.
    cannot_run(
        program,
        &std::process::Command::new(program).args(args).exec(),
    )
}

/// Windows has no exec: run the workload as a child and pass its exit code on.
#[cfg(not(unix))]
fn replace_process(command: &[OsString]) -> i32 {
    let Some((program, args)) = command.split_first() else {
        return CANNOT_RUN;
    };
    match std::process::Command::new(program).args(args).status() {
        Ok(status) => status.code().unwrap_or(CANNOT_RUN),
        Err(error) => cannot_run(program, &error),
    }
}

/// Reports a workload that could not be started; 127 or 126 as shells do.
fn cannot_run(program: &OsString, error: &std::io::Error) -> i32 {
    crate::output::stderr_line!(
        "gpuprobe: cannot run {}: {error}",
        program.to_string_lossy()
    );
    if error.kind() == std::io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        CANNOT_RUN
    }
}
