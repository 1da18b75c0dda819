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
pub mod version;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::rc::Rc;

use cudarc::driver::sys::{CUdevice_attribute, CUuuid};

pub use driver::{CuDevice, Driver, LoadError};
pub use error::{call_in_flight, CudaError};
pub use version::CudaVersion;

use driver::{CuContext, CuDevicePtr, CuEvent, CuFunction, CuModule, CuStream};

/// `CU_EVENT_DEFAULT`: timing enabled (CU_EVENT_DISABLE_TIMING would make
/// cuEventElapsedTime fail with CUDA_ERROR_INVALID_HANDLE; CUDA driver API, cuEventCreate).
const EVENT_DEFAULT: u32 = 0;

impl Driver {
    /// cuDriverGetVersion: 1000 * major + 10 * minor.
    pub fn version(&self) -> Result<i32, CudaError> {
        let mut v = 0;
        // SAFETY: (fn), (out).
        self.call("cuDriverGetVersion", || unsafe {
            (self.api.cuDriverGetVersion)(&raw mut v)
        })?;
        Ok(v)
    }

    pub fn init(&self) -> Result<(), CudaError> {
        // SAFETY: (fn); flags must be 0 (CUDA driver API, cuInit).
        self.call("cuInit", || unsafe { (self.api.cuInit)(0) })
    }

    pub fn device_count(&self) -> Result<u32, CudaError> {
        let mut n = 0;
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetCount", || unsafe {
            (self.api.cuDeviceGetCount)(&raw mut n)
        })?;
        Ok(n.max(0) as u32)
    }

    pub fn device(&self, ordinal: u32) -> Result<CuDevice, CudaError> {
        let mut d = 0;
        // SAFETY: (fn), (out); a bad ordinal is an error the driver returns.
        self.call("cuDeviceGet", || unsafe {
            (self.api.cuDeviceGet)(&raw mut d, ordinal as c_int)
        })?;
        Ok(d)
    }

    pub fn device_name(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 256];
        // SAFETY: (fn); the driver writes at most `len` bytes into `buf`.
        self.call("cuDeviceGetName", || unsafe {
            (self.api.cuDeviceGetName)(buf.as_mut_ptr(), buf.len() as c_int, dev)
        })?;
        Ok(c_buffer_to_string(&buf))
    }

    /// The device's UUID as nvidia-smi and NVIDIA_VISIBLE_DEVICES spell it,
    /// and whether it is a MIG instance.
    ///
    /// cuDeviceGetUuid_v2 (CUDA 11.4) gives a MIG instance's own UUID ("If
    /// the device is in MIG mode, returns its MIG UUID which uniquely
    /// identifies the subscribed MIG compute instance", CUDA driver API),
    /// which nvidia-smi writes `MIG-…` from driver 470 on; the older
    /// cuDeviceGetUuid gives the parent GPU's, the gap _v2 was added to
    /// close. So a device whose two UUIDs differ is a MIG instance, and the
    /// first is its parent GPU. Without _v2 (a driver before 11.4) a MIG
    /// instance cannot be told from its GPU and shows the GPU's UUID.
    pub fn device_uuid(&self, dev: CuDevice) -> Result<DeviceUuid, CudaError> {
        let mut gpu = CUuuid { bytes: [0; 16] };
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetUuid", || unsafe {
            (self.api.cuDeviceGetUuid)(&raw mut gpu, dev)
        })?;
        let gpu = gpu.bytes.map(|b| b as u8);
        let Some(v2) = self.api.cuDeviceGetUuid_v2 else {
            return Ok(DeviceUuid {
                uuid: format_uuid("GPU", &gpu),
                mig_parent: None,
            });
        };
        let mut own = CUuuid { bytes: [0; 16] };
        // SAFETY: (fn), (out).
        self.call("cuDeviceGetUuid_v2", || unsafe { v2(&raw mut own, dev) })?;
        let own = own.bytes.map(|b| b as u8);
        Ok(if own == gpu {
            DeviceUuid {
                uuid: format_uuid("GPU", &gpu),
                mig_parent: None,
            }
        } else {
            DeviceUuid {
                uuid: format_uuid("MIG", &own),
                mig_parent: Some(format_uuid("GPU", &gpu)),
            }
        })
    }

    pub fn device_pci_bus_id(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 64];
        // SAFETY: (fn); the driver writes at most `len` bytes into `buf`.
        self.call("cuDeviceGetPCIBusId", || unsafe {
            (self.api.cuDeviceGetPCIBusId)(buf.as_mut_ptr(), buf.len() as c_int, dev)
        })?;
        Ok(c_buffer_to_string(&buf))
    }

    pub fn device_attribute(
        &self,
        dev: CuDevice,
        attr: CUdevice_attribute,
    ) -> Result<i32, CudaError> {
        let mut v = 0;
        // SAFETY: (fn), (out); an attribute this driver does not know is an
        // error it returns.
        self.call("cuDeviceGetAttribute", || unsafe {
            (self.api.cuDeviceGetAttribute)(&raw mut v, attr, dev)
        })?;
        Ok(v)
    }

    pub fn device_total_memory(&self, dev: CuDevice) -> Result<u64, CudaError> {
        let mut bytes = 0usize;
        // SAFETY: (fn), (out).
        self.call("cuDeviceTotalMem_v2", || unsafe {
            (self.api.cuDeviceTotalMem_v2)(&raw mut bytes, dev)
        })?;
        Ok(bytes as u64)
    }
}

fn c_buffer_to_string(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A device's identity: its UUID, and its GPU's when it is a MIG instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUuid {
    /// `GPU-…`, or `MIG-…` for a MIG instance.
    pub uuid: String,
    /// The parent GPU's `GPU-…` UUID when this is a MIG instance.
    pub mig_parent: Option<String>,
}

/// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (or "MIG-…" with that prefix).
#[must_use]
pub fn format_uuid(prefix: &str, bytes: &[u8; 16]) -> String {
    let hex = bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    format!(
        "{prefix}-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The device's primary context, current on the thread that bound it while
/// it lives.
///
/// Not `Send` and not `Sync`, on purpose. The CUDA driver API binds a
/// context to the calling CPU thread (cuCtxSetCurrent: "Binds the specified
/// CUDA context to the calling CPU thread"), and every call below, and every
/// owner that borrows this, relies on the context being current on the
/// thread making the call; `Drop` unbinds it from the current thread. A
/// context may be made current on other threads too (cuCtxSetCurrent,
/// cuCtxPushCurrent; CUDA Programming Guide, "Context"), but this type does
/// not do that: moving it to another thread would leave it current where it
/// no longer lives and make its calls run against whatever that thread has
/// current. gpuprobe gives each device a thread of its own, so nothing needs
/// more.
pub struct Context<'d> {
    pub driver: &'d Driver,
    device: CuDevice,
    _bound_to_this_thread: PhantomData<*const ()>,
}

impl<'d> Context<'d> {
    pub fn bind(driver: &'d Driver, device: CuDevice) -> Result<Self, CudaError> {
        let mut ctx = CuContext::NULL;
        // SAFETY: (fn), (out); `device` came from cuDeviceGet.
        driver.call("cuDevicePrimaryCtxRetain", || unsafe {
            (driver.api.cuDevicePrimaryCtxRetain)(&raw mut ctx, device)
        })?;
        // From here on, dropping `bound` releases the retained context.
        let bound = Context {
            driver,
            device,
            _bound_to_this_thread: PhantomData,
        };
        // SAFETY: (fn); `ctx` was just retained and is held by `bound`.
        driver.call("cuCtxSetCurrent", || unsafe {
            (driver.api.cuCtxSetCurrent)(ctx)
        })?;
        Ok(bound)
    }

    /// (free, total) bytes.
    pub fn memory_info(&self) -> Result<(u64, u64), CudaError> {
        let (mut free, mut total) = (0usize, 0usize);
        // SAFETY: (fn), (out); this context is current on this thread.
        self.driver.call("cuMemGetInfo_v2", || unsafe {
            (self.driver.api.cuMemGetInfo_v2)(&raw mut free, &raw mut total)
        })?;
        Ok((free as u64, total as u64))
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        // SAFETY: (fn); no arguments.
        self.driver.call("cuCtxSynchronize", || unsafe {
            (self.driver.api.cuCtxSynchronize)()
        })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // Errors here have nothing left to spoil; the report has the real ones.
        // SAFETY: (fn); unbinding the current context takes no handle, and
        // the primary context of `device` was retained once by `bind`, so
        // this is the matching release. Owners borrowing `self` (modules,
        // buffers, events) have been dropped before it.
        unsafe {
            (self.driver.api.cuCtxSetCurrent)(CuContext::NULL);
            (self.driver.api.cuDevicePrimaryCtxRelease_v2)(self.device);
        }
    }
}

/// A loaded module.
pub struct Module<'c> {
    ctx: &'c Context<'c>,
    handle: CuModule,
}

impl<'c> Module<'c> {
    /// Loads PTX; the driver JIT-compiles it for this GPU.
    pub fn load(ctx: &'c Context<'c>, ptx: &CStr) -> Result<Self, CudaError> {
        let mut handle = CuModule::NULL;
        // SAFETY: (fn), (out); `ptx` is NUL-terminated PTX text, as
        // cuModuleLoadData requires of a text image, and outlives the call.
        ctx.driver.call("cuModuleLoadData", || unsafe {
            (ctx.driver.api.cuModuleLoadData)(&raw mut handle, ptx.as_ptr().cast::<c_void>())
        })?;
        Ok(Module { ctx, handle })
    }

    /// The kernel `name` of this module. A function handle is only valid
    /// while its module is loaded, so the kernel takes the module with it.
    pub fn kernel(self, name: &CStr) -> Result<Kernel<'c>, CudaError> {
        let [kernel] = self.kernels([name])?;
        Ok(kernel)
    }

    /// Several kernels of this module, loaded (JIT-compiled) once; the
    /// module stays loaded while any of them exists.
    pub fn kernels<const N: usize>(self, names: [&CStr; N]) -> Result<[Kernel<'c>; N], CudaError> {
        let module = Rc::new(self);
        let mut kernels = Vec::with_capacity(N);
        for name in names {
            let mut function = CuFunction::NULL;
            // SAFETY: (fn), (out), (handle); `name` is NUL-terminated.
            module.ctx.driver.call("cuModuleGetFunction", || unsafe {
                (module.ctx.driver.api.cuModuleGetFunction)(
                    &raw mut function,
                    module.handle,
                    name.as_ptr(),
                )
            })?;
            kernels.push(Kernel {
                function,
                _module: Rc::clone(&module),
            });
        }
        // The loop pushed exactly one kernel per name, N in all, so the
        // conversion cannot fail; no input reaches this.
        Ok(kernels
            .try_into()
            .unwrap_or_else(|_| unreachable!("one kernel per name")))
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        // SAFETY: (fn), (handle); loaded by `load`, unloaded once, and every
        // `Function` borrowing it is gone.
        unsafe { (self.ctx.driver.api.cuModuleUnload)(self.handle) };
    }
}

/// A kernel entry point and the loaded module it lives in, which stays
/// loaded as long as the kernel exists.
pub struct Kernel<'c> {
    function: CuFunction,
    _module: Rc<Module<'c>>,
}

/// An allocation or copy refused before it reached the driver, or the
/// driver's own error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CopyError {
    #[error("{call}: {host} floats on the host do not fit the {device}-float device buffer")]
    TooLarge {
        call: &'static str,
        host: usize,
        device: usize,
    },
    /// A byte count past what `usize` holds: no allocation that large can
    /// exist, so it is never asked for.
    #[error("{call}: {floats} floats are more bytes than this platform can address")]
    Overflow { call: &'static str, floats: usize },
    /// Pinned memory and a device buffer of different contexts: the copy
    /// would be queued on one context and waited for on another.
    #[error("{call}: the pinned host memory and the device buffer belong to different contexts")]
    OtherContext { call: &'static str },
    #[error(transparent)]
    Cuda(#[from] CudaError),
}

/// Bytes in `floats` f32s, or `Overflow` naming `call`.
fn float_bytes(call: &'static str, floats: usize) -> Result<usize, CopyError> {
    floats
        .checked_mul(size_of::<f32>())
        .ok_or(CopyError::Overflow { call, floats })
}

/// A device allocation of f32s.
pub struct Buffer<'c> {
    ctx: &'c Context<'c>,
    pub ptr: CuDevicePtr,
    len: usize,
}

impl<'c> Buffer<'c> {
    /// `len` floats of device memory; a byte count past `usize` is refused
    /// (`Overflow`) rather than wrapped to a smaller allocation.
    pub fn alloc(ctx: &'c Context<'c>, len: usize) -> Result<Self, CopyError> {
        let bytes = float_bytes("cuMemAlloc_v2", len)?;
        let mut ptr = CuDevicePtr::NULL;
        // SAFETY: (fn), (out).
        ctx.driver.call("cuMemAlloc_v2", || unsafe {
            (ctx.driver.api.cuMemAlloc_v2)(&raw mut ptr, bytes)
        })?;
        Ok(Buffer { ctx, ptr, len })
    }

    /// Copies `data` to the start of the buffer; refuses a slice longer than
    /// the buffer rather than copying part of it.
    pub fn upload(&self, data: &[f32]) -> Result<(), CopyError> {
        self.fits("cuMemcpyHtoD_v2", data.len())?;
        // SAFETY: (fn), (handle); `data` is live for the call and the copy
        // reads `data.len()` floats from it and writes as many into the
        // buffer, which holds at least that many (checked above).
        self.ctx.driver.call("cuMemcpyHtoD_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyHtoD_v2)(
                self.ptr,
                data.as_ptr().cast(),
                std::mem::size_of_val(data),
            )
        })?;
        Ok(())
    }

    /// Fills `out` from the start of the buffer; refuses a slice longer than
    /// the buffer rather than leaving part of it as it was.
    pub fn download(&self, out: &mut [f32]) -> Result<(), CopyError> {
        self.fits("cuMemcpyDtoH_v2", out.len())?;
        // SAFETY: (fn), (handle); `out` is live and exclusively borrowed for
        // the call, and the copy writes `out.len()` floats into it, read from
        // the buffer, which holds at least that many (checked above).
        self.ctx.driver.call("cuMemcpyDtoH_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoH_v2)(
                out.as_mut_ptr().cast(),
                self.ptr,
                std::mem::size_of_val(out),
            )
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of `src` into the start of
    /// this buffer (cuMemcpyDtoD_v2: asynchronous to the host, ordered on
    /// the default stream); refuses a `len` past either buffer's end.
    pub fn copy_from(&self, src: &Buffer<'_>, len: usize) -> Result<(), CopyError> {
        self.fits("cuMemcpyDtoD_v2", len)?;
        src.fits("cuMemcpyDtoD_v2", len)?;
        // SAFETY: (fn), (handle) for both buffers; both hold at least `len`
        // floats (checked above), and device memory is freed only by
        // `Drop`, which the borrows of `self` and `src` hold off until the
        // call returns; the GPU finishes the copy before any later work on
        // the default stream, and before the context's end.
        self.ctx.driver.call("cuMemcpyDtoD_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoD_v2)(self.ptr, src.ptr, len * size_of::<f32>())
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of `host` into the start of
    /// this buffer on the default stream (cuMemcpyHtoDAsync_v2; from
    /// pinned memory the call returns before the copy is done).
    /// Refuses pinned memory of another context (`OtherContext`).
    pub fn upload_async(&self, host: &Pinned<'_>, len: usize) -> Result<(), CopyError> {
        self.pairs_with("cuMemcpyHtoDAsync_v2", host)?;
        self.fits("cuMemcpyHtoDAsync_v2", len)?;
        host.fits("cuMemcpyHtoDAsync_v2", len)?;
        // SAFETY: (fn), (handle); both sides hold at least `len` floats
        // (checked above). The copy may still read `host` after the call
        // returns: it is queued on this buffer's context, which is `host`'s
        // (checked above), and `Pinned` hands its memory to the host only
        // after synchronising that context, and frees it only after that too.
        self.ctx.driver.call("cuMemcpyHtoDAsync_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyHtoDAsync_v2)(
                self.ptr,
                host.ptr.cast_const().cast(),
                len * size_of::<f32>(),
                CuStream::NULL,
            )
        })?;
        Ok(())
    }

    /// Queues a copy of the first `len` floats of this buffer into the
    /// start of `host` on the default stream (cuMemcpyDtoHAsync_v2);
    /// refuses pinned memory of another context (`OtherContext`).
    pub fn download_async(&self, host: &Pinned<'_>, len: usize) -> Result<(), CopyError> {
        self.pairs_with("cuMemcpyDtoHAsync_v2", host)?;
        self.fits("cuMemcpyDtoHAsync_v2", len)?;
        host.fits("cuMemcpyDtoHAsync_v2", len)?;
        // SAFETY: (fn), (handle); both sides hold at least `len` floats
        // (checked above). The copy may write `host` after the call
        // returns; it is queued on this buffer's context, which is `host`'s
        // (checked above), and the host reads or writes a `Pinned` only
        // through `Pinned::host`, which first waits for every copy queued
        // on that context, and `Drop` waits too before freeing it.
        self.ctx.driver.call("cuMemcpyDtoHAsync_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoHAsync_v2)(
                host.ptr.cast(),
                self.ptr,
                len * size_of::<f32>(),
                CuStream::NULL,
            )
        })?;
        Ok(())
    }

    /// The address of element `at`, or `None` past the end.
    #[must_use]
    pub fn ptr_at(&self, at: usize) -> Option<CuDevicePtr> {
        (at < self.len).then(|| self.ptr.offset((at * size_of::<f32>()) as u64))
    }

    /// Whether `host` was allocated through this buffer's `Context` (the
    /// same value, not merely the same device): `Pinned` waits for its
    /// copies by synchronising its own context, so a copy queued on
    /// another could still run when the host is handed the memory.
    fn pairs_with(&self, call: &'static str, host: &Pinned<'_>) -> Result<(), CopyError> {
        if std::ptr::eq(self.ctx, host.ctx) {
            Ok(())
        } else {
            Err(CopyError::OtherContext { call })
        }
    }

    fn fits(&self, call: &'static str, host: usize) -> Result<(), CopyError> {
        if host > self.len {
            return Err(CopyError::TooLarge {
                call,
                host,
                device: self.len,
            });
        }
        Ok(())
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        // SAFETY: (fn), (handle); allocated by `alloc`, freed once.
        unsafe { (self.ctx.driver.api.cuMemFree_v2)(self.ptr) };
    }
}

/// Page-locked ("pinned") host memory of f32s (cuMemAllocHost_v2), which the
/// GPU's copy engines read and write directly, so that copies from and to it
/// run at the host link's speed and return before they are done
/// (cuMemcpyHtoDAsync_v2 and cuMemcpyDtoHAsync_v2).
///
/// Such a copy may still be running after its call returned, so the host
/// never sees this memory while one could be: `host` waits for the context's
/// work first, and `Drop` waits before freeing it.
pub struct Pinned<'c> {
    ctx: &'c Context<'c>,
    ptr: *mut f32,
    len: usize,
}

impl<'c> Pinned<'c> {
    /// `len` zeroed floats of pinned memory. The driver refuses it (an
    /// error, never a panic) when the host cannot lock that much memory or
    /// does not offer page-locked memory at all; a byte count past `usize`
    /// is refused before asking (`Overflow`).
    pub fn alloc(ctx: &'c Context<'c>, len: usize) -> Result<Self, CopyError> {
        let bytes = float_bytes("cuMemAllocHost_v2", len)?;
        let mut ptr: *mut c_void = std::ptr::null_mut();
        // SAFETY: (fn), (out).
        ctx.driver.call("cuMemAllocHost_v2", || unsafe {
            (ctx.driver.api.cuMemAllocHost_v2)(&raw mut ptr, bytes)
        })?;
        let pinned = Pinned {
            ctx,
            ptr: ptr.cast(),
            len,
        };
        // SAFETY: the driver returned `len` floats of host memory, aligned
        // for any type (page-aligned: CUDA driver API, cuMemAllocHost); no
        // copy uses it yet. Zeroing it makes every float initialised before
        // `host` can hand out a slice of it.
        unsafe { pinned.ptr.write_bytes(0, len) };
        Ok(pinned)
    }

    /// The memory, once every copy queued on the context has finished.
    pub fn host(&mut self) -> Result<&mut [f32], CudaError> {
        self.ctx.synchronize()?;
        // SAFETY: `len` initialised floats (zeroed by `alloc`) that this
        // value owns; no copy runs any more (synchronised above) and none
        // can be queued while the slice borrows `self` mutably, since
        // queueing one borrows it too.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    fn fits(&self, call: &'static str, len: usize) -> Result<(), CopyError> {
        if len > self.len {
            return Err(CopyError::TooLarge {
                call,
                host: len,
                device: self.len,
            });
        }
        Ok(())
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        // A queued copy may still use the memory; errors here have nothing
        // left to spoil (the report has the real ones).
        let _ = self.ctx.synchronize();
        // SAFETY: (fn); allocated by `alloc`, freed once, no copy running.
        unsafe { (self.ctx.driver.api.cuMemFreeHost)(self.ptr.cast()) };
    }
}

/// A timing event on the default stream.
pub struct Event<'c> {
    ctx: &'c Context<'c>,
    handle: CuEvent,
}

impl<'c> Event<'c> {
    pub fn new(ctx: &'c Context<'c>) -> Result<Self, CudaError> {
        let mut handle = CuEvent::NULL;
        // SAFETY: (fn), (out); EVENT_DEFAULT is a valid flag set.
        ctx.driver.call("cuEventCreate", || unsafe {
            (ctx.driver.api.cuEventCreate)(&raw mut handle, EVENT_DEFAULT)
        })?;
        Ok(Event { ctx, handle })
    }

    pub fn record(&self) -> Result<(), CudaError> {
        // SAFETY: (fn), (handle); the null stream is the default stream.
        self.ctx.driver.call("cuEventRecord", || unsafe {
            (self.ctx.driver.api.cuEventRecord)(self.handle, CuStream::NULL)
        })
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        // SAFETY: (fn), (handle).
        self.ctx.driver.call("cuEventSynchronize", || unsafe {
            (self.ctx.driver.api.cuEventSynchronize)(self.handle)
        })
    }

    /// Whether the work recorded before this event has finished, without
    /// waiting (cuEventQuery: CUDA_ERROR_NOT_READY while it runs).
    pub fn query(&self) -> Result<bool, CudaError> {
        // SAFETY: (fn), (handle).
        let done = self.ctx.driver.call("cuEventQuery", || unsafe {
            (self.ctx.driver.api.cuEventQuery)(self.handle)
        });
        match done {
            Ok(()) => Ok(true),
            Err(e) if e.code == error::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Milliseconds from `self` to `end`, both recorded and complete.
    pub fn elapsed_ms(&self, end: &Event<'_>) -> Result<f64, CudaError> {
        let mut ms = 0f32;
        // SAFETY: (fn), (out), (handle) for both events.
        self.ctx.driver.call("cuEventElapsedTime", || unsafe {
            (self.ctx.driver.api.cuEventElapsedTime)(&raw mut ms, self.handle, end.handle)
        })?;
        Ok(f64::from(ms))
    }
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        // SAFETY: (fn), (handle); created by `new`, destroyed once.
        unsafe { (self.ctx.driver.api.cuEventDestroy_v2)(self.handle) };
    }
}

/// Launches `kernel` on the default stream.
///
/// # Safety
/// `kernel` must have been loaded in `ctx`, and `params` must hold one
/// pointer per kernel parameter, in order, each to a live value of that
/// parameter's type, as cuLaunchKernel requires.
pub unsafe fn launch(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    grid: [u32; 3],
    block: [u32; 3],
    params: &mut [*mut c_void],
) -> Result<(), CudaError> {
    // SAFETY: (fn); the function is live (its module is loaded while the
    // kernel exists) and the caller promises `params` matches its
    // parameters; no dynamic shared memory, the default stream, no `extra`.
    ctx.driver.call("cuLaunchKernel", || unsafe {
        (ctx.driver.api.cuLaunchKernel)(
            kernel.function,
            grid[0],
            grid[1],
            grid[2],
            block[0],
            block[1],
            block[2],
            0,
            CuStream::NULL,
            params.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    })
}

/// Launches `gpuprobe_stream_copy` (kernels/stream.cu) on the default
/// stream: the first `n` floats of `src` into `dst`.
///
/// # Safety
/// `kernel` must be that kernel, loaded in `ctx`; `src` and `dst` must point
/// into allocations of this context holding at least `n` floats each.
pub unsafe fn launch_stream_copy(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    (grid, block): ([u32; 3], [u32; 3]),
    n: u64,
    [src, dst]: [CuDevicePtr; 2],
) -> Result<(), CudaError> {
    let (mut count, mut s, mut d) = (n, src, dst);
    let mut params: [*mut c_void; 3] = [
        (&raw mut count).cast(),
        (&raw mut s).cast(),
        (&raw mut d).cast(),
    ];
    // SAFETY: `params` points to one live value per parameter of
    // `(unsigned long long n, const float *src, float *dst)`, in order; the
    // caller promises the kernel and the buffers.
    unsafe { launch(ctx, kernel, grid, block, &mut params) }
}

/// Launches `gpuprobe_compare` (kernels/compare.cu) on the default stream:
/// sets the word at `differ` to 1 if the first `n` words of `got` and
/// `want` differ other than in the sign of a zero; leaves it as it is
/// otherwise.
///
/// # Safety
/// `kernel` must be that kernel, loaded in `ctx`; `got` and `want` must
/// point into allocations of this context holding at least `n` words each,
/// and `differ` into one holding at least one.
pub unsafe fn launch_compare(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    (grid, block): ([u32; 3], [u32; 3]),
    n: u64,
    [got, want, differ]: [CuDevicePtr; 3],
) -> Result<(), CudaError> {
    let (mut count, mut g, mut w, mut d) = (n, got, want, differ);
    let mut params: [*mut c_void; 4] = [
        (&raw mut count).cast(),
        (&raw mut g).cast(),
        (&raw mut w).cast(),
        (&raw mut d).cast(),
    ];
    // SAFETY: `params` points to one live value per parameter of
    // `(unsigned long long n, const unsigned *got, const unsigned *want,
    // unsigned *differ)`, in order; the caller promises the kernel and the
    // buffers.
    unsafe { launch(ctx, kernel, grid, block, &mut params) }
}

/// Launches a GEMM kernel of gpuprobe's kernels/ (every one takes
/// `(int m, int n, int k, const float *a, const float *b, float *c)`) on the
/// default stream: C (m x n) = A (m x k) B (k x n), row-major.
///
/// # Safety
/// `kernel` must be one of those GEMM kernels, loaded in `ctx`; `a`, `b`
/// and `c` must point into allocations of this context holding at least
/// m*k, k*n and m*n floats (row blocks of larger buffers are fine).
pub unsafe fn launch_gemm(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    (grid, block): ([u32; 3], [u32; 3]),
    (m, n, k): (u32, u32, u32),
    [a, b, c]: [CuDevicePtr; 3],
) -> Result<(), CudaError> {
    let (mut mm, mut nn, mut kk) = (m as i32, n as i32, k as i32);
    let (mut pa, mut pb, mut pc) = (a, b, c);
    let mut params: [*mut c_void; 6] = [
        (&raw mut mm).cast(),
        (&raw mut nn).cast(),
        (&raw mut kk).cast(),
        (&raw mut pa).cast(),
        (&raw mut pb).cast(),
        (&raw mut pc).cast(),
    ];
    // SAFETY: `params` points to one live value per parameter of the GEMM
    // signature, in order; the caller promises the kernel and the buffers.
    unsafe { launch(ctx, kernel, grid, block, &mut params) }
}
