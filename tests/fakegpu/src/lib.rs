//! A fake NVIDIA driver for testing gpuprobe on machines without a GPU.
//!
//! Built as a static library and linked per scenario into `libcuda.so.1` and
//! `libnvidia-ml.so.1` (see `main.rs`, `fakegpu prepare`), so a scenario can
//! also leave a library or symbols out, as a misconfigured container or an
//! old driver would. `prepare` also lays out the root gpuprobe inspects
//! (device nodes, /proc/driver/nvidia/version) and the process environment. The scenario file is named by the
//! `FAKEGPU_SCENARIO` variable, which only this library reads: gpuprobe
//! cannot tell it from the real driver.
pub mod cublas;
pub mod cuda;
pub mod driver_lock;
pub mod errors;
pub mod models;
pub mod names;
#[cfg(unix)]
pub mod nodes;
pub mod nvlink;
pub mod nvml;
pub mod nvml_events;
pub mod rm;
pub mod scenario;
