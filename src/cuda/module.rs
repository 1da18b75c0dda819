//! A loaded module of PTX, its kernels (each keeping the module loaded),
//! and their launches on the default stream, with the parameter lists of
//! gpuprobe's kernels.
//! Its SAFETY comments cite the facts listed in cuda/mod.rs: (fn), (out),
//! (handle).
use std::ffi::{c_void, CStr};
use std::rc::Rc;

use super::driver::{CuDevicePtr, CuFunction, CuModule, CuStream};
use super::{Context, CudaError};

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
