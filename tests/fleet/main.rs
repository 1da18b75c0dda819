//! Fleet integration: gpuprobe against the programs that run GPU fleets,
//! the real ones, not our reading of their formats.
//!
//! - `http`: `watch --listen` through the real binary (no tool needed).
//! - `prometheus`: a real Prometheus scrapes `watch --listen` and its API
//!   returns the series; promtool checks and unit-tests the alert rules and
//!   the example configuration.
//! - `grafana`: every dashboard query is PromQL promtool accepts, over
//!   metric names gpuprobe exports.
//! - `kubernetes`: the manifests validate against named Kubernetes schema
//!   versions (kubernetes-validate); the node-problem-detector plugin config
//!   uses only NPD's fields, and `gpuprobe health`'s exit codes map onto
//!   NPD's OK / NonOK, never Unknown.
//! - `pod_security`: every pod the manifests run meets the Kubernetes
//!   "restricted" Pod Security Standard, control by control, and every
//!   Namespace there enforces it.
//! - `slurm`: a real one-node Slurm (munged, slurmctld, slurmd) drains and
//!   resumes the node on the health-check script's word.
//!
//! Tests needing a tool are `#[ignore]`d with the reason (run them with
//! `cargo nextest run --run-ignored all`, as .ci/run does); with
//! GPUPROBE_REQUIRE_TOOLS=1 a missing tool fails them instead of skipping.
#[path = "../common/mod.rs"]
mod common;

mod grafana;
mod http;
mod kubernetes;
mod pod_security;
mod prometheus;
mod slurm;
mod support;
