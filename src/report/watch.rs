//! Where a `watch` cycle stands in its run of failed cycles
//! (`Report::watch`): one failed cycle is no reason to drain a node, so
//! `watch` calls the node unhealthy only after `--unhealthy-after`
//! consecutive failed cycles, while each cycle's own verdict stays in its
//! report.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A `watch` cycle's place in the run of failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WatchStreak {
    /// Cycles this watch has run, this one included (from 1).
    pub cycle: u64,
    /// Consecutive cycles, ending with this one, whose verdict `health`
    /// counts as unhealthy (`failed`, `no_gpu`, `timed_out`, ...); 0 when
    /// this cycle's verdict is `healthy` or `degraded`.
    pub consecutive_failures: u32,
    /// `--unhealthy-after`: how many consecutive failed cycles make the
    /// node unhealthy.
    pub unhealthy_after: u32,
    /// Whether the watch calls the node unhealthy now:
    /// `consecutive_failures` has reached `unhealthy_after`. `/healthz`,
    /// `health --state` (and through it node-problem-detector and the
    /// Slurm health check) follow this, not the cycle's own verdict.
    pub unhealthy: bool,
}
