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

/// Where a memory-test launch writes its findings: a 64-bit mismatch
/// counter and room for `max_records` records of four words.
#[derive(Debug, Clone, Copy)]
pub struct MemtestFindings {
    pub count: CuDevicePtr,
    pub records: CuDevicePtr,
    pub max_records: u32,
}

/// What one memory-test launch writes or checks: `n` words at `buf`, which
/// are words `base..base + n` of the tested region, in the pattern `kind`
/// with `param` and `seed` (kernels/memtest.cu).
#[derive(Debug, Clone, Copy)]
pub struct MemtestSweep {
    pub n: u64,
    pub buf: CuDevicePtr,
    pub base: u64,
    pub kind: super::kernels::PatternFn,
    pub param: u32,
    pub seed: u32,
}

/// Launches one of the memory test's kernels (kernels/memtest.cu) on the
/// default stream; `findings` is for the verify kernels and ignored by the
/// write kernel.
///
/// # Safety
/// `kernel` must be `which`, loaded in `ctx` from kernels/memtest.ptx;
/// `sweep.buf` must point into an allocation of this context holding at
/// least `sweep.n` words; for the verify kernels `findings.count` must
/// point to a live 8-byte word and `findings.records` to at least
/// `4 * max_records` live words, both in this context.
pub unsafe fn launch_memtest(
    ctx: &Context<'_>,
    kernel: &Kernel<'_>,
    which: super::kernels::MemtestKernel,
    (grid, block): ([u32; 3], [u32; 3]),
    sweep: MemtestSweep,
    findings: MemtestFindings,
) -> Result<(), CudaError> {
    let (mut n, mut buf, mut base) = (sweep.n, sweep.buf, sweep.base);
    let (mut kind, mut param, mut seed) = (sweep.kind as u32, sweep.param, sweep.seed);
    let (mut count, mut records, mut max) =
        (findings.count, findings.records, findings.max_records);
    let mut params: [*mut c_void; 9] = [
        (&raw mut n).cast(),
        (&raw mut buf).cast(),
        (&raw mut base).cast(),
        (&raw mut kind).cast(),
        (&raw mut param).cast(),
        (&raw mut seed).cast(),
        (&raw mut count).cast(),
        (&raw mut records).cast(),
        (&raw mut max).cast(),
    ];
    let used = match which {
        super::kernels::MemtestKernel::Write => 6,
        _ => 9,
    };
    // SAFETY: the first `used` entries of `params` point to one live value
    // per parameter of the kernel's signature, in order: `(unsigned long
    // long n, unsigned *buf, unsigned long long base, unsigned kind,
    // unsigned param, unsigned seed)` for the write kernel, and those
    // followed by `(unsigned long long *count, unsigned *records, unsigned
    // max_records)` for the verify kernels; cuLaunchKernel reads as many
    // as the kernel has. The caller promises the kernel and the buffers.
    unsafe { launch(ctx, kernel, grid, block, &mut params[..used]) }
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
