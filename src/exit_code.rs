//! The process exit codes, one place for all of them.
//!
//! They separate "the GPU is faulty" from "this container cannot reach a GPU"
//! from "you called it wrong", which a shell, a Kubernetes probe or an
//! orchestrator can act on without parsing output. Documented in README.md;
//! the JSON report carries the same number in `exit_code`.

/// Every requested GPU passed every check (verdict `healthy` or `degraded`).
pub const HEALTHY: i32 = 0;
/// A GPU is there but a check failed on it: wrong results, a driver error
/// during the run, allocation failure, an unmet requirement.
pub const FAILED: i32 = 1;
/// The command line was wrong (unknown flag, a flag the subcommand does not
/// take, bad value), including a `watch --listen` address that cannot be
/// bound (taken, or not an address of this machine) and a file of
/// `--output`, `--plot`, `--state` or `--prometheus` that cannot be written
/// at all (a missing folder, a directory, a name too long, a read-only
/// folder): all found before anything runs (`output::check_writable`).
pub const USAGE: i32 = 2;
/// No usable GPU: no driver library, a driver too old for gpuprobe, cuInit
/// refused, or no device visible to this container.
pub const NO_GPU: i32 = 3;
/// The deadline passed before the probe finished; the report names the
/// stage and the device that did not answer.
pub const TIMEOUT: i32 = 4;
/// The run finished but its report was not delivered: stdout, `--output` or
/// `--plot` failed when written (a full disk, `/dev/full`, a FIFO nobody
/// reads), or `watch` could not write `--state` or `--prometheus`. It takes
/// precedence over the verdict's code: whoever reads the code has no report
/// to read.
/// A closed pipe on stdout (`gpuprobe | head`) is not a failure.
pub const OUTPUT: i32 = 5;
