//! The CUDA driver seam: the library, its errors, and small owners for the
//! handles gpuprobe creates, so every early return releases what it took.
//!
//! Every driver call is an `unsafe` FFI call. What makes each one sound is
//! the same few facts, stated once here and referred to at each call:
//! - (fn) the entry point was resolved with cuda.h's prototype and stays
//!   valid while the `Driver` it came from lives (src/cuda/driver.rs), which
//!   every owner here borrows;
//! - (out) out-parameters point to live locals of the type cuda.h names;
//! - (handle) a handle passed in was created by the driver and is owned by
//!   the value passing it, so it is live and of the kind the call expects
//!   (the handle newtypes make passing another kind a type error).
//!
//! A driver that breaks its own contract is outside what Rust can check;
//! the driver's errors, though, are all returned, never assumed away.
pub mod cublas;
pub mod driver;
pub mod error;
pub mod kernels;
pub mod peer;
pub mod version;

mod context;
mod device;
mod event;
mod memory;
mod module;

pub use context::Context;
pub use device::{format_uuid, DeviceUuid};
pub use driver::{CuDevice, Driver, LoadError};
pub use error::{call_in_flight, CudaError};
pub use event::Event;
pub use memory::{Buffer, CopyError, Pinned};
pub use module::{
    launch, launch_compare, launch_gemm, launch_memtest, launch_stream_copy, Kernel,
    MemtestFindings, MemtestSweep, Module,
};
pub use version::CudaVersion;
