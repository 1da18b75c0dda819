//! A fake NVIDIA driver for testing gpuprobe on machines without a GPU.
//!
//! Built as a static library and linked per scenario into `libcuda.so.1`
//! (see `main.rs`, `fakegpu prepare`), so a scenario can also leave symbols
//! out, as an old driver would. The scenario file is named by the
//! `FAKEGPU_SCENARIO` variable, which only this library reads: gpuprobe
//! cannot tell it from the real driver.
pub mod cuda;
pub mod scenario;
