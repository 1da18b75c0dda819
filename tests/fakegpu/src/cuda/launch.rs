//! Modules and launches: PTX images checked as the driver's JIT would check
//! them (ISA version, target), their entry points matched against the
//! emulated source, and cuLaunchKernel running the kernel on the CPU
//! emulation (emu/) within the hardware's launch limits, at the scenario's
//! modelled time and under its watchdog. Hardware faults and kernel bugs of
//! the scenario corrupt a GEMM's C here.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::Mutex;
use std::time::Instant;

use super::context::{current, in_context};
use super::{
    lock, modelled, write, CUresult, Call, ILLEGAL_ADDRESS, INVALID_HANDLE, INVALID_IMAGE,
    INVALID_PTX, INVALID_VALUE, LAUNCH_FAILED, LAUNCH_TIMEOUT, NOT_FOUND, SUCCESS, UNKNOWN,
    UNSUPPORTED_PTX_VERSION,
};
use crate::scenario::PeerWriter;

extern "C" {
    fn fakegpu_kernel_arity(name: *const c_char) -> c_int;
    fn fakegpu_run_kernel(
        name: *const c_char,
        grid: *const c_uint,
        block: *const c_uint,
        params: *mut *mut c_void,
    ) -> c_int;
}

/// Every kernel entry point the emulator runs (kernels/*.cu and the fake
/// libraries' emu/libraries/*.cu), from the list build.rs builds the
/// emulator's own table from.
pub const KERNELS: &[&str] = &include!(concat!(env!("OUT_DIR"), "/kernel_names.rs"));

pub(super) struct Module {
    device: usize,
    entries: Vec<(String, usize)>,
}

pub(super) struct Function {
    /// The module it came from: unloading the module invalidates it.
    module: usize,
    device: usize,
    name: std::ffi::CString,
    params: usize,
}

/// One launch at a time: `__shared__` variables are statics in the emulation.
static LAUNCH: Mutex<()> = Mutex::new(());

/// Where a launch stores, for the kernels that may store into a peer GPU's
/// memory.
enum PeerStore {
    /// Into its own GPU's memory (or a kernel that stores into no peer).
    Local,
    /// Into visible device `.0`'s allocation at `.1`, `.2` bytes.
    Into(usize, u64, usize),
}

/// `gpuprobe_peer_write(n, dst, seed)` (kernels/peer.cu) stores n words at
/// `dst`, which may lie in another GPU's memory; every other kernel stores
/// into its own GPU's.
///
/// # Safety
/// `params` holds the kernel's parameters, as cuLaunchKernel requires.
unsafe fn peer_store(state: &mut super::State, name: &CStr, params: *mut *mut c_void) -> PeerStore {
    if name.to_bytes() != b"gpuprobe_peer_write" || params.is_null() {
        return PeerStore::Local;
    }
    // SAFETY: the caller's promise: parameter 0 is the word count, 1 the
    // destination pointer.
    let (n, dst) = unsafe { (*(*params).cast::<u64>(), *(*params.add(1)).cast::<u64>()) };
    let Some(bytes) = usize::try_from(n).ok().and_then(|n| n.checked_mul(4)) else {
        return PeerStore::Local;
    };
    match (super::context::current(), state.owner(dst, bytes)) {
        (Some(d), Some(owner)) if owner != d => PeerStore::Into(owner, dst, bytes),
        _ => PeerStore::Local,
    }
}

/// Bytes a memory-bound kernel moves by its contract, from its parameters:
/// `gpuprobe_stream_copy(n, src, dst)` reads and writes n floats
/// (kernels/stream.cu), `gpuprobe_compare(n, got, want, differ)` reads two
/// sets of n words (kernels/compare.cu), the memory test's kernels
/// `(n, buf, ...)` write or read n words, or both (kernels/memtest.cu). Their time on a GPU is those bytes
/// at the memory's rate, whatever the emulation's cost.
///
/// # Safety
/// `params` holds the kernel's parameters, as cuLaunchKernel requires.
unsafe fn memory_bound_bytes(name: &CStr, params: *mut *mut c_void) -> Option<f64> {
    // Bytes per word: stream_copy and compare read and write (or read
    // twice), the memory test's write and verify touch each word once,
    // verify_invert reads and writes it (kernels/memtest.cu).
    let per_word = match name.to_bytes() {
        b"gpuprobe_stream_copy" | b"gpuprobe_compare" | b"gpuprobe_memtest_verify_invert" => 8.0,
        b"gpuprobe_memtest_write" | b"gpuprobe_memtest_verify" => 4.0,
        _ => return None,
    };
    if params.is_null() {
        return None;
    }
    // SAFETY: the kernel's first parameter is an unsigned long long
    // (cuLaunchKernel's contract, module doc).
    let n = unsafe { (*params).cast::<u64>().read_unaligned() };
    Some(per_word * n as f64)
}

/// A GEMM launch's C with `wrong` words flipped (the exponent's top bit),
/// spread over the rows it computed: the scenario's `corrupt_products`.
/// Other kernels are left alone.
///
/// # Safety
/// `params` holds the kernel's parameters, as cuLaunchKernel requires;
/// gpuprobe's GEMM kernels take `(int m, int n, int k, const float *a,
/// const float *b, float *c)` with C holding m x n floats.
unsafe fn corrupt_product(name: &CStr, params: *mut *mut c_void, wrong: u32, salt: usize) {
    let gemm = [&b"gpuprobe_sgemm_"[..], b"gpuprobe_mma_"];
    if !gemm.iter().any(|p| name.to_bytes().starts_with(p)) || params.is_null() {
        return;
    }
    // SAFETY: the GEMM signatures above (the caller's promise): m, n first
    // and C sixth in both the SGEMM and the mma kernels.
    let (m, n, c) = unsafe {
        (
            (*params).cast::<i32>().read_unaligned(),
            (*params.add(1)).cast::<i32>().read_unaligned(),
            (*params.add(5)).cast::<u64>().read_unaligned(),
        )
    };
    let words = (m.max(0) as usize) * (n.max(0) as usize);
    let wrong = (wrong as usize).min(words);
    for i in 0..wrong {
        let at = (i * words / wrong + words / 3 + salt * 7) % words;
        // SAFETY: `at` < m * n, inside C.
        unsafe {
            let word = (c as *mut u32).add(at);
            word.write_unaligned(word.read_unaligned() ^ (1 << 30));
        }
    }
}

/// The parts of a PTX module the JIT would reject, and its entry points with
/// their parameter counts.
struct Ptx {
    version: (u32, u32),
    target_sm: u32,
    entries: Vec<(String, usize)>,
}

fn parse_ptx(text: &str) -> Option<Ptx> {
    let directive = |name: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name).map(str::trim))
    };
    let (major, minor) = directive(".version ")?.split_once('.')?;
    let version = (major.parse().ok()?, minor.parse().ok()?);
    let target_sm = directive(".target ")?
        .strip_prefix("sm_")?
        .trim_end_matches(['a', 'f'])
        .parse()
        .ok()?;
    let mut entries = Vec::new();
    for (at, _) in text.match_indices(".entry ") {
        let rest = &text[at + 7..];
        let name = rest[..rest.find('(')?].trim().to_string();
        let params_text = &rest[..rest.find(')')?];
        entries.push((name, params_text.matches(".param ").count()));
    }
    Some(Ptx {
        version,
        target_sm,
        entries,
    })
}

/// Newest PTX ISA a driver of this CUDA version can JIT (PTX ISA release notes).
fn max_ptx_isa(driver_version: i32) -> (u32, u32) {
    let table: [(i32, (u32, u32)); 11] = [
        (13000, (9, 0)),
        (12050, (8, 5)),
        (12000, (8, 0)),
        (11080, (7, 8)),
        (11010, (7, 1)),
        (11000, (7, 0)),
        (10000, (6, 3)),
        (9000, (6, 0)),
        (8000, (5, 0)),
        (7000, (4, 2)),
        (6050, (4, 1)),
    ];
    table
        .iter()
        .find(|(v, _)| driver_version >= *v)
        .map_or((4, 0), |(_, isa)| *isa)
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleLoadData(
    module: *mut *mut c_void,
    image: *const c_void,
) -> CUresult {
    in_context(Call::cuModuleLoadData, |state, d| {
        if module.is_null() || image.is_null() {
            return INVALID_VALUE;
        }
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        let text = unsafe { CStr::from_ptr(image.cast::<c_char>()) }.to_string_lossy();
        let Some(ptx) = parse_ptx(&text) else {
            return INVALID_IMAGE;
        };
        if ptx.version > max_ptx_isa(state.scenario.driver_version) {
            return UNSUPPORTED_PTX_VERSION;
        }
        let [major, minor] = state.device(d).compute_capability;
        if ptx.target_sm > (major * 10 + minor) as u32 {
            return INVALID_PTX;
        }
        let handle = state.handle();
        state.modules.insert(
            handle,
            Module {
                device: d,
                entries: ptx.entries,
            },
        );
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { write(module, handle as *mut c_void) }
    })
}

#[no_mangle]
pub extern "C" fn cuModuleUnload(module: *mut c_void) -> CUresult {
    in_context(Call::cuModuleUnload, |state, _| {
        let handle = module as usize;
        if state.modules.remove(&handle).is_none() {
            return INVALID_HANDLE;
        }
        // The module's functions go with it (cuModuleUnload: "Unloads a
        // module ... from the current context"; its CUfunction handles are
        // invalid afterwards).
        state.functions.retain(|_, f| f.module != handle);
        SUCCESS
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuModuleGetFunction(
    function: *mut *mut c_void,
    module: *mut c_void,
    name: *const c_char,
) -> CUresult {
    in_context(Call::cuModuleGetFunction, |state, _| {
        if function.is_null() || name.is_null() {
            return INVALID_VALUE;
        }
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        let wanted = unsafe { CStr::from_ptr(name) };
        let Some(m) = state.modules.get(&(module as usize)) else {
            return INVALID_HANDLE;
        };
        let Some((_, params)) = m
            .entries
            .iter()
            .find(|(n, _)| n.as_bytes() == wanted.to_bytes())
        else {
            return NOT_FOUND;
        };
        // The emulated source must be the one the PTX came from.
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        let arity = unsafe { fakegpu_kernel_arity(wanted.as_ptr()) };
        if arity < 0 || arity as usize != *params {
            eprintln!("fakegpu: PTX entry {wanted:?} does not match kernels/*.cu (stale PTX?)");
            return INVALID_IMAGE;
        }
        let f = Function {
            module: module as usize,
            device: m.device,
            name: wanted.to_owned(),
            params: *params,
        };
        let handle = state.handle();
        state.functions.insert(handle, f);
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { write(function, handle as *mut c_void) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuLaunchKernel(
    f: *mut c_void,
    grid_x: c_uint,
    grid_y: c_uint,
    grid_z: c_uint,
    block_x: c_uint,
    block_y: c_uint,
    block_z: c_uint,
    shared_bytes: c_uint,
    stream: *mut c_void,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
) -> CUresult {
    let mut launch = None;
    let r = in_context(Call::cuLaunchKernel, |state, d| {
        let Some(function) = state.functions.get(&(f as usize)) else {
            return INVALID_HANDLE;
        };
        if function.device != d || !stream.is_null() {
            return INVALID_HANDLE;
        }
        let grid = [grid_x, grid_y, grid_z];
        let block = [block_x, block_y, block_z];
        // Limits of every GPU since compute capability 3.0 (CUDA C
        // Programming Guide, "Technical Specifications").
        let grid_ok = grid.iter().all(|g| *g >= 1)
            && grid_y <= 65535
            && grid_z <= 65535
            && grid_x < (1 << 31);
        let block_ok = block.iter().all(|b| *b >= 1)
            && block_x <= 1024
            && block_y <= 1024
            && block_z <= 64
            && block_x * block_y * block_z <= 1024;
        if !grid_ok || !block_ok || shared_bytes > 48 * 1024 || !extra.is_null() {
            return INVALID_VALUE;
        }
        if function.params > 0 && params.is_null() {
            return INVALID_VALUE;
        }
        let name = function.name.clone();
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        let into_peer = match unsafe { peer_store(state, &name, params) } {
            PeerStore::Local => None,
            PeerStore::Into(other, dst, bytes) if state.peer_enabled(d, other) => {
                // SAFETY: `dst` lies in a live allocation of `bytes`
                // (`peer_store` found it).
                let before = unsafe { std::slice::from_raw_parts(dst as *const u8, bytes) };
                Some((other, dst, before.to_vec()))
            }
            // A store into another GPU's memory without peer access faults
            // as any store to an address the GPU has no mapping for: the
            // context's sticky CUDA_ERROR_ILLEGAL_ADDRESS (CUDA Programming
            // Guide, "Peer-to-Peer Memory Access": access must be enabled
            // first), met at the next call that waits for the GPU.
            PeerStore::Into(..) => {
                state.sticky[d] = Some(ILLEGAL_ADDRESS);
                state.launched[d] += 1;
                return SUCCESS;
            }
        };
        let device = state.device(d);
        let threads: u64 = grid.iter().chain(&block).map(|x| u64::from(*x)).product();
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        let took = match unsafe { memory_bound_bytes(&name, params) } {
            Some(bytes) => modelled(bytes, device.memory_bytes_per_second()),
            // At a clock held down by the scenario's `under_load` phase an
            // arithmetic-bound launch takes longer.
            None => device.launch_ns_per_thread.map(|ns| {
                let slowdown = device.slowdown_after(state.worked_ms(d));
                std::time::Duration::from_secs_f64(threads as f64 * ns / 1e9 * slowdown)
            }),
        };
        if let Some(took) = took {
            if device.kernel_exec_timeout && took.as_secs_f64() * 1e3 > device.watchdog_ms {
                // The launch is queued and returns success; the watchdog
                // kills the kernel as it runs, and the error surfaces at
                // the next call that waits for the GPU (launches are
                // asynchronous, cuda.h: "may also return error codes from
                // previous, asynchronous launches"), sticky from then on.
                state.sticky[d] = Some(LAUNCH_TIMEOUT);
                state.launched[d] += 1;
                return SUCCESS;
            }
            state.modelled[d] += took;
        }
        launch = Some((name, grid, block, took.is_none(), into_peer));
        // Queued: the GPU is busy until the host waits for it.
        state.launched[d] += 1;
        state.publish(d);
        SUCCESS
    });
    let Some((name, grid, block, unmodelled, into_peer)) = launch else {
        return r;
    };
    let _serial = LAUNCH
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    let ran = unsafe { fakegpu_run_kernel(name.as_ptr(), grid.as_ptr(), block.as_ptr(), params) };
    let emulated = started.elapsed();
    match ran {
        0 => {}
        // Threads of a block reached different barriers: on a GPU, undefined
        // behaviour that usually ends the launch.
        -2 => return LAUNCH_FAILED,
        _ => return UNKNOWN,
    }
    let mut guard = lock();
    if let Ok(state) = guard.as_mut() {
        let d = current().unwrap_or(0);
        // SAFETY: the launch's own parameters, as cuLaunchKernel requires
        // (module doc).
        unsafe { corrupt_as_faulty(state, d, &name, params) };
        // Stores into a peer's memory crossed the path between the GPUs.
        if let Some((other, dst, before)) = &into_peer {
            // SAFETY: `dst` holds `before.len()` bytes of a live allocation
            // (found before the launch; a launch frees nothing).
            unsafe { state.cross_peer_path((d, *other), PeerWriter::Kernel, *dst, before) };
            state.apply_faults(*other, true);
        }
        // The kernel wrote into device memory: its faulty cells settle.
        state.apply_faults(d, true);
        // Nothing models this launch: the GPU took what the emulation took.
        if unmodelled {
            state.modelled[d] += emulated;
            state.publish(d);
        }
        if state
            .allocs
            .values()
            .any(|a| a.device == d && !a.redzones_intact())
        {
            state.sticky[d] = Some(ILLEGAL_ADDRESS);
        }
    }
    SUCCESS
}

/// What the scenario's faults do to a launch's product: a hardware fault
/// (`corrupt_products`) is the GPU's own, its places differing from GPU to
/// GPU; a kernel bug (`kernel_bug`) is the same everywhere.
///
/// # Safety
/// `params` holds the launch's parameters, as cuLaunchKernel requires.
unsafe fn corrupt_as_faulty(state: &super::State, d: usize, name: &CStr, params: *mut *mut c_void) {
    let faulty = state.device(d).corrupt_products_after(state.worked_ms(d));
    if faulty > 0 {
        // SAFETY: the launch's own parameters, as cuLaunchKernel
        // requires (module doc); its C lies in a live allocation.
        unsafe { corrupt_product(name, params, faulty, d) };
    }
    let bug = state
        .scenario
        .kernel_bug
        .as_ref()
        .filter(|b| name.to_bytes().starts_with(b.kernel.as_bytes()))
        .map_or(0, |b| b.words);
    if bug > 0 {
        // SAFETY: as above.
        unsafe { corrupt_product(name, params, bug, 0) };
    }
}
