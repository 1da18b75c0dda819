//! The ways gpuprobe runs inside a container besides the one-shot probe:
//! health check, entrypoint gate, monitoring agent, GEMM sweep, sustained
//! load.
pub mod bench;
pub mod burn;
pub mod exec;
pub mod health;
pub mod watch;
