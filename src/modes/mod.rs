//! The ways gpuprobe runs inside a container besides the one-shot probe:
//! health check, entrypoint gate, monitoring agent.
pub mod bench;
pub mod exec;
pub mod health;
pub mod watch;
