//! The CUDA driver seam: the library, its errors, and small owners for the
//! handles gpuprobe creates, so every early return releases what it took.
pub mod driver;
pub mod error;
pub mod kernels;
pub mod version;

use std::ffi::{c_char, c_int, c_void, CStr};
use std::fmt::Write as _;

use cudarc::driver::sys::{CUdevice_attribute, CUuuid};

pub use driver::{CuDevice, Driver, LoadError};
pub use error::{call_in_flight, CudaError};
pub use version::CudaVersion;

use driver::{CuDevicePtr, Handle};

/// `CU_EVENT_DEFAULT`: timing enabled (CU_EVENT_DISABLE_TIMING would make
/// cuEventElapsedTime fail with CUDA_ERROR_INVALID_HANDLE; CUDA driver API, cuEventCreate).
const EVENT_DEFAULT: u32 = 0;

impl Driver {
    /// cuDriverGetVersion: 1000 * major + 10 * minor.
    pub fn version(&self) -> Result<i32, CudaError> {
        let mut v = 0;
        self.call("cuDriverGetVersion", || unsafe {
            (self.api.cuDriverGetVersion)(&raw mut v)
        })?;
        Ok(v)
    }

    pub fn init(&self) -> Result<(), CudaError> {
        self.call("cuInit", || unsafe { (self.api.cuInit)(0) })
    }

    pub fn device_count(&self) -> Result<u32, CudaError> {
        let mut n = 0;
        self.call("cuDeviceGetCount", || unsafe {
            (self.api.cuDeviceGetCount)(&raw mut n)
        })?;
        Ok(n.max(0) as u32)
    }

    pub fn device(&self, ordinal: u32) -> Result<CuDevice, CudaError> {
        let mut d = 0;
        self.call("cuDeviceGet", || unsafe {
            (self.api.cuDeviceGet)(&raw mut d, ordinal as c_int)
        })?;
        Ok(d)
    }

    pub fn device_name(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 256];
        self.call("cuDeviceGetName", || unsafe {
            (self.api.cuDeviceGetName)(buf.as_mut_ptr(), buf.len() as c_int, dev)
        })?;
        Ok(c_buffer_to_string(&buf))
    }

    /// The UUID as nvidia-smi and NVIDIA_VISIBLE_DEVICES spell it. Uses
    /// cuDeviceGetUuid_v2 where the driver has it, so a MIG instance reports
    /// its own UUID.
    pub fn device_uuid(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut uuid = CUuuid { bytes: [0; 16] };
        match self.api.cuDeviceGetUuid_v2 {
            Some(v2) => self.call("cuDeviceGetUuid_v2", || unsafe { v2(&raw mut uuid, dev) })?,
            None => self.call("cuDeviceGetUuid", || unsafe {
                (self.api.cuDeviceGetUuid)(&raw mut uuid, dev)
            })?,
        }
        Ok(format_uuid(&uuid.bytes.map(|b| b as u8)))
    }

    pub fn device_pci_bus_id(&self, dev: CuDevice) -> Result<String, CudaError> {
        let mut buf = [0 as c_char; 64];
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
        self.call("cuDeviceGetAttribute", || unsafe {
            (self.api.cuDeviceGetAttribute)(&raw mut v, attr, dev)
        })?;
        Ok(v)
    }

    pub fn device_total_memory(&self, dev: CuDevice) -> Result<u64, CudaError> {
        let mut bytes = 0usize;
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

/// "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
#[must_use]
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex = bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    format!(
        "GPU-{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The device's primary context, current on this thread while it lives.
pub struct Context<'d> {
    pub driver: &'d Driver,
    device: CuDevice,
}

impl<'d> Context<'d> {
    pub fn bind(driver: &'d Driver, device: CuDevice) -> Result<Self, CudaError> {
        let mut ctx: Handle = std::ptr::null_mut();
        driver.call("cuDevicePrimaryCtxRetain", || unsafe {
            (driver.api.cuDevicePrimaryCtxRetain)(&raw mut ctx, device)
        })?;
        let bound = Context { driver, device };
        driver.call("cuCtxSetCurrent", || unsafe {
            (driver.api.cuCtxSetCurrent)(ctx)
        })?;
        Ok(bound)
    }

    /// (free, total) bytes.
    pub fn memory_info(&self) -> Result<(u64, u64), CudaError> {
        let (mut free, mut total) = (0usize, 0usize);
        self.driver.call("cuMemGetInfo_v2", || unsafe {
            (self.driver.api.cuMemGetInfo_v2)(&raw mut free, &raw mut total)
        })?;
        Ok((free as u64, total as u64))
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.driver.call("cuCtxSynchronize", || unsafe {
            (self.driver.api.cuCtxSynchronize)()
        })
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // Errors here have nothing left to spoil; the report has the real ones.
        unsafe {
            (self.driver.api.cuCtxSetCurrent)(std::ptr::null_mut());
            (self.driver.api.cuDevicePrimaryCtxRelease_v2)(self.device);
        }
    }
}

/// A loaded module.
pub struct Module<'c> {
    ctx: &'c Context<'c>,
    handle: Handle,
}

impl<'c> Module<'c> {
    /// Loads PTX; the driver JIT-compiles it for this GPU.
    pub fn load(ctx: &'c Context<'c>, ptx: &CStr) -> Result<Self, CudaError> {
        let mut handle: Handle = std::ptr::null_mut();
        ctx.driver.call("cuModuleLoadData", || unsafe {
            (ctx.driver.api.cuModuleLoadData)(&raw mut handle, ptx.as_ptr().cast::<c_void>())
        })?;
        Ok(Module { ctx, handle })
    }

    pub fn function(&self, name: &CStr) -> Result<Handle, CudaError> {
        let mut f: Handle = std::ptr::null_mut();
        self.ctx.driver.call("cuModuleGetFunction", || unsafe {
            (self.ctx.driver.api.cuModuleGetFunction)(&raw mut f, self.handle, name.as_ptr())
        })?;
        Ok(f)
    }
}

impl Drop for Module<'_> {
    fn drop(&mut self) {
        unsafe { (self.ctx.driver.api.cuModuleUnload)(self.handle) };
    }
}

/// A device allocation of f32s.
pub struct Buffer<'c> {
    ctx: &'c Context<'c>,
    pub ptr: CuDevicePtr,
    len: usize,
}

impl<'c> Buffer<'c> {
    pub fn alloc(ctx: &'c Context<'c>, len: usize) -> Result<Self, CudaError> {
        let mut ptr = 0;
        ctx.driver.call("cuMemAlloc_v2", || unsafe {
            (ctx.driver.api.cuMemAlloc_v2)(&raw mut ptr, len * size_of::<f32>())
        })?;
        Ok(Buffer { ctx, ptr, len })
    }

    pub fn upload(&self, data: &[f32]) -> Result<(), CudaError> {
        let n = data.len().min(self.len);
        self.ctx.driver.call("cuMemcpyHtoD_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyHtoD_v2)(
                self.ptr,
                data.as_ptr().cast(),
                n * size_of::<f32>(),
            )
        })
    }

    pub fn download(&self, out: &mut [f32]) -> Result<(), CudaError> {
        let n = out.len().min(self.len);
        self.ctx.driver.call("cuMemcpyDtoH_v2", || unsafe {
            (self.ctx.driver.api.cuMemcpyDtoH_v2)(
                out.as_mut_ptr().cast(),
                self.ptr,
                n * size_of::<f32>(),
            )
        })
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        unsafe { (self.ctx.driver.api.cuMemFree_v2)(self.ptr) };
    }
}

/// A timing event on the default stream.
pub struct Event<'c> {
    ctx: &'c Context<'c>,
    handle: Handle,
}

impl<'c> Event<'c> {
    pub fn new(ctx: &'c Context<'c>) -> Result<Self, CudaError> {
        let mut handle: Handle = std::ptr::null_mut();
        ctx.driver.call("cuEventCreate", || unsafe {
            (ctx.driver.api.cuEventCreate)(&raw mut handle, EVENT_DEFAULT)
        })?;
        Ok(Event { ctx, handle })
    }

    pub fn record(&self) -> Result<(), CudaError> {
        self.ctx.driver.call("cuEventRecord", || unsafe {
            (self.ctx.driver.api.cuEventRecord)(self.handle, std::ptr::null_mut())
        })
    }

    pub fn synchronize(&self) -> Result<(), CudaError> {
        self.ctx.driver.call("cuEventSynchronize", || unsafe {
            (self.ctx.driver.api.cuEventSynchronize)(self.handle)
        })
    }

    /// Milliseconds from `self` to `end`, both recorded and complete.
    pub fn elapsed_ms(&self, end: &Event<'_>) -> Result<f64, CudaError> {
        let mut ms = 0f32;
        self.ctx.driver.call("cuEventElapsedTime", || unsafe {
            (self.ctx.driver.api.cuEventElapsedTime)(&raw mut ms, self.handle, end.handle)
        })?;
        Ok(f64::from(ms))
    }
}

impl Drop for Event<'_> {
    fn drop(&mut self) {
        unsafe { (self.ctx.driver.api.cuEventDestroy_v2)(self.handle) };
    }
}

/// Launches `function` on the default stream.
///
/// # Safety
/// `function` must come from a loaded module of `ctx`, and `params` must
/// hold one pointer per kernel parameter, in order, each to a live value of
/// that parameter's type, as cuLaunchKernel requires.
pub unsafe fn launch(
    ctx: &Context<'_>,
    function: Handle,
    grid: [u32; 3],
    block: [u32; 3],
    params: &mut [*mut c_void],
) -> Result<(), CudaError> {
    ctx.driver.call("cuLaunchKernel", || unsafe {
        (ctx.driver.api.cuLaunchKernel)(
            function,
            grid[0],
            grid[1],
            grid[2],
            block[0],
            block[1],
            block[2],
            0,
            std::ptr::null_mut(),
            params.as_mut_ptr(),
            std::ptr::null_mut(),
        )
    })
}
