//! gpuprobe: can this container really use its GPUs, and how well?
//!
//! The binary's logic lives here so that benches and tests can drive it;
//! `main.rs` only maps the outcome to an exit code.
pub mod app;
pub mod checks;
pub mod cli;
pub mod cpu;
pub mod cuda;
pub mod environment;
pub mod events;
pub mod exit_code;
pub mod export;
pub mod judge;
pub mod modes;
pub mod output;
pub mod peak;
pub mod plot;
pub mod probe;
pub mod report;
pub mod serve;
pub mod signals;
pub mod stage;
pub mod telemetry;
pub mod units;
pub mod verify;
