//! Device memory and copies: allocations with canaried redzones, the
//! memory a context and its allocations take from the GPU, page-locked host
//! memory, and copies between host and device (pageable ones finished when
//! their call returns, pinned ones and device-to-device ones queued on the
//! stream), each timed at the scenario's copy or host-link rate. A device
//! with bad memory corrupts what it copies back.

use std::ffi::c_void;
use std::time::Instant;

use super::context::in_context;
use super::{write, CUresult, Call, State, INVALID_HANDLE, INVALID_VALUE, OUT_OF_MEMORY, SUCCESS};
use crate::scenario::{Device, MemoryFaultKind, PeerWriter};

/// Bytes of canary on each side of every allocation.
const REDZONE: usize = 256;
const CANARY: u8 = 0xA5;
/// cuMemAlloc's documented alignment.
const ALIGN: usize = 256;

pub(super) struct Alloc {
    pub(super) device: usize,
    pub(super) size: usize,
    /// Backing store; the device pointer is `data + offset`.
    pub(super) storage: Vec<u8>,
    pub(super) offset: usize,
    /// When it was made, among the process's allocations: a faulty cell
    /// of the scenario lies in the oldest live one that reaches it.
    pub(super) serial: usize,
    /// The `flip` faults (by index in `memory_faults`) that have fired in
    /// this allocation: a soft error flips a cell once.
    pub(super) flipped: Vec<usize>,
}

impl Alloc {
    pub(super) fn ptr(&self) -> u64 {
        self.storage.as_ptr() as u64 + self.offset as u64
    }

    pub(super) fn redzones_intact(&self) -> bool {
        let before = &self.storage[self.offset - REDZONE..self.offset];
        let after = &self.storage[self.offset + self.size..self.offset + self.size + REDZONE];
        before.iter().chain(after).all(|b| *b == CANARY)
    }
}

/// A copy between host memory and the device, queued (pinned host memory)
/// or made at once (pageable).
pub(super) struct PendingCopy {
    host: u64,
    device: u64,
    bytes: usize,
    to_host: bool,
}

impl PendingCopy {
    /// Moves the bytes; a copy to the host passes through `device`'s bad
    /// memory, if it has any after `worked_ms`.
    ///
    /// # Safety
    /// Both ranges are live and `bytes` long.
    pub(super) unsafe fn make(&self, device: &Device, worked_ms: f64) {
        // SAFETY: the caller's promise.
        unsafe {
            if self.to_host {
                std::ptr::copy_nonoverlapping(
                    self.device as *const u8,
                    self.host as *mut u8,
                    self.bytes,
                );
                bad_memory(device, worked_ms, self.host as *mut c_void, self.bytes);
            } else {
                std::ptr::copy_nonoverlapping(
                    self.host as *const u8,
                    self.device as *mut u8,
                    self.bytes,
                );
            }
        }
    }
}

/// A page-locked host allocation: the copy engines read and write it
/// directly, so copies from and to it are asynchronous (CUDA driver API,
/// "API synchronization behavior").
pub(super) struct Pinned {
    size: usize,
    /// Backing store; the pointer is page-aligned inside it.
    _storage: Vec<u8>,
}

impl State {
    /// Whether `[ptr, ptr + len)` lies in one pinned host allocation.
    fn is_pinned(&self, ptr: u64, len: usize) -> bool {
        self.pinned
            .range(..=ptr)
            .next_back()
            .is_some_and(|(start, p)| ptr + len as u64 <= start + p.size as u64)
    }

    /// The allocation holding `[ptr, ptr + len)`, if one does.
    pub(super) fn find(&mut self, ptr: u64, len: usize) -> Option<&mut Alloc> {
        let (_, alloc) = self.allocs.range_mut(..=ptr).next_back()?;
        let end = alloc.ptr() + alloc.size as u64;
        (ptr + len as u64 <= end).then_some(alloc)
    }
}

impl State {
    /// Settles device `d`'s memory after a write into it (a kernel, a copy
    /// to the device): each faulty cell of the scenario's `memory_faults`
    /// then holds what its fault leaves, so every later read, a kernel's or
    /// a copy's, sees it. A write is a whole launch or copy here, so a
    /// coupling acts on what the aggressor holds at the end of it.
    /// `kernel`: the write was a kernel's (a soft error, `flip`, strikes
    /// after the first kernel that runs while its allocation exists).
    pub(super) fn apply_faults(&mut self, d: usize, kernel: bool) {
        let faults = self.device(d).memory_faults.clone();
        for (index, fault) in faults.iter().enumerate() {
            let reach = fault.offset.max(fault.aggressor().map_or(0, |(at, _)| at)) + 4;
            let Some(alloc) = self
                .allocs
                .values_mut()
                .filter(|a| a.device == d && a.size as u64 >= reach)
                .min_by_key(|a| a.serial)
            else {
                continue;
            };
            let word = |alloc: &Alloc, at: u64| {
                let start = alloc.offset + at as usize;
                let bytes: [u8; 4] = alloc.storage[start..start + 4]
                    .try_into()
                    .unwrap_or_default();
                u32::from_le_bytes(bytes)
            };
            let old = word(alloc, fault.offset);
            let mask = 1u32 << fault.bit;
            let new = match fault.kind {
                MemoryFaultKind::StuckAt0 => old & !mask,
                MemoryFaultKind::StuckAt1 => old | mask,
                MemoryFaultKind::Flip if !kernel || alloc.flipped.contains(&index) => old,
                MemoryFaultKind::Flip => {
                    alloc.flipped.push(index);
                    old ^ mask
                }
                MemoryFaultKind::Coupled => {
                    let (at, bit) = fault.aggressor().unwrap_or((fault.offset, fault.bit));
                    let aggressor = (word(alloc, at) >> bit) & 1;
                    (old & !mask) | (aggressor << fault.bit)
                }
            };
            let start = alloc.offset + fault.offset as usize;
            alloc.storage[start..start + 4].copy_from_slice(&new.to_le_bytes());
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    in_context(Call::cuMemGetInfo_v2, |state, d| {
        let total_bytes = state.device(d).memory_bytes;
        let used = state.device(d).memory_used_bytes + state.used_bytes(d);
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe {
            let r = write(total, total_bytes as usize);
            if r != SUCCESS {
                return r;
            }
            write(free, total_bytes.saturating_sub(used) as usize)
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemAlloc_v2(ptr: *mut u64, bytes: usize) -> CUresult {
    in_context(Call::cuMemAlloc_v2, |state, d| {
        if bytes == 0 || ptr.is_null() {
            return INVALID_VALUE;
        }
        let device = state.device(d);
        let free = device
            .memory_bytes
            .saturating_sub(device.memory_used_bytes + state.used_bytes(d));
        if bytes as u64 > free {
            return OUT_OF_MEMORY;
        }
        let mut storage = vec![CANARY; bytes + 2 * REDZONE + ALIGN];
        let misalign = (storage.as_ptr() as usize + REDZONE) % ALIGN;
        let offset = REDZONE + (ALIGN - misalign) % ALIGN;
        storage[offset..offset + bytes].fill(0xCD);
        let alloc = Alloc {
            device: d,
            size: bytes,
            storage,
            offset,
            serial: state.handle(),
            flipped: Vec::new(),
        };
        let p = alloc.ptr();
        state.allocs.insert(p, alloc);
        state.publish(d);
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { write(ptr, p) }
    })
}

#[no_mangle]
pub extern "C" fn cuMemFree_v2(ptr: u64) -> CUresult {
    in_context(Call::cuMemFree_v2, |state, d| {
        match state.allocs.remove(&ptr) {
            Some(_) => {
                state.publish(d);
                SUCCESS
            }
            None => INVALID_VALUE,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, bytes: usize) -> CUresult {
    in_context(Call::cuMemcpyHtoD_v2, |state, d| {
        if src.is_null() {
            return INVALID_VALUE;
        }
        // A copy from pageable memory waits for the work before it (CUDA
        // driver API, "API synchronization behavior").
        state.settle(d);
        if state.find(dst, bytes).is_none() {
            return INVALID_VALUE;
        }
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst as *mut u8, bytes) };
        state.apply_faults(d, false);
        state.advance(d, bytes as f64, state.device(d).host_bytes_per_second());
        SUCCESS
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, bytes: usize) -> CUresult {
    in_context(Call::cuMemcpyDtoH_v2, |state, d| {
        if dst.is_null() {
            return INVALID_VALUE;
        }
        if state.find(src, bytes).is_none() {
            return INVALID_VALUE;
        }
        // A copy to pageable memory returns when it has completed, after the
        // work before it (CUDA driver API, "API synchronization behavior").
        state.settle(d);
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.cast::<u8>(), bytes) };
        state.advance(d, bytes as f64, state.device(d).host_bytes_per_second());
        // SAFETY: `dst` holds the `bytes` just written.
        unsafe { bad_memory(state.device(d), state.worked_ms(d), dst, bytes) };
        let words = bytes / 4;
        if let Some(kind) = state.corruption.take() {
            // One element, a third of the way in (or the first after it that
            // the corruption changes: a stuck-at-zero cell under a zero
            // shows nothing).
            for at in (0..words).map(|i| (i + words / 3) % words) {
                // SAFETY: `at` < words, inside the `bytes` just written.
                unsafe {
                    let word = dst.cast::<u32>().add(at);
                    let before = word.read_unaligned();
                    let after = kind.apply(before);
                    if after != before {
                        word.write_unaligned(after);
                        break;
                    }
                }
            }
        }
        SUCCESS
    })
}

/// A device with bad memory (`corrupt_results`) returns wrong words in every
/// copy to the host: spread over the copy, the exponent's top bit flipped,
/// as a failing memory cell would, far outside any tolerance.
///
/// # Safety
/// `dst` holds `bytes` bytes just copied from the device.
unsafe fn bad_memory(device: &Device, worked_ms: f64, dst: *mut c_void, bytes: usize) {
    let corrupt = device.corrupt_results_after(worked_ms) as usize;
    let words = bytes / 4;
    for i in 0..corrupt.min(words) {
        let at = (i * words / corrupt + words / 3) % words;
        // SAFETY: `at` < words, inside the `bytes` the caller promises.
        unsafe {
            let word = dst.cast::<u32>().add(at);
            word.write_unaligned(word.read_unaligned() ^ (1 << 30));
        }
    }
}

/// cuMemcpyDtoD_v2: asynchronous to the host ("For transfers from device
/// memory to device memory, no host-side synchronization is performed",
/// CUDA driver API, "API synchronization behavior"); within one GPU it
/// reads and writes every byte, at the device's copy rate. Under unified
/// addressing the two pointers may lie on different GPUs (CUDA
/// Programming Guide, "Peer-to-Peer Memory Copy"): where the current
/// context has peer access to the other GPU the copy crosses the peer path
/// (`peer.bytes_per_second`, and `peer.faults`), otherwise it is staged
/// through host memory, over each GPU's host link in turn.
#[no_mangle]
pub extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, bytes: usize) -> CUresult {
    in_context(Call::cuMemcpyDtoD_v2, |state, d| {
        let (Some(from), Some(to)) = (state.owner(src, bytes), state.owner(dst, bytes)) else {
            return INVALID_VALUE;
        };
        let other = if from == d { to } else { from };
        let peer = from != to && state.peer_enabled(d, other);
        let before = if peer {
            // SAFETY: `dst` lies in a live allocation of `bytes` (checked above).
            unsafe { std::slice::from_raw_parts(dst as *const u8, bytes) }.to_vec()
        } else {
            Vec::new()
        };
        let started = Instant::now();
        // SAFETY: both ranges lie in live allocations (checked above); they
        // may overlap, which `copy` allows.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        if peer {
            // SAFETY: `dst` holds `bytes` (checked above), `before` as many.
            unsafe { state.cross_peer_path((from, to), PeerWriter::Copy, dst, &before) };
        }
        state.apply_faults(to, false);
        let wall = started.elapsed();
        let bytes = bytes as f64;
        if from == to {
            let rate = state.device(d).memory_bytes_per_second();
            state.queue(d, 2.0 * bytes, rate, wall);
        } else if peer {
            let rate = state
                .scenario
                .peer
                .bytes_per_second
                .unwrap_or_else(|| state.device(from).memory_bytes_per_second());
            state.queue(d, bytes, rate, wall);
        } else {
            // Down one host link and up the other: its time is the sum.
            let seconds = bytes / state.device(from).host_bytes_per_second()
                + bytes / state.device(to).host_bytes_per_second();
            state.queue(d, bytes, bytes / seconds, wall);
        }
        SUCCESS
    })
}

/// cuMemAllocHost_v2: page-locked host memory, page-aligned (CUDA driver
/// API, cuMemAllocHost: "Allocates bytesize bytes of host memory that is
/// page-locked and accessible to the device"). A host that cannot lock that
/// much answers CUDA_ERROR_OUT_OF_MEMORY; scenarios make it so with a fault.
#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytes: usize) -> CUresult {
    in_context(Call::cuMemAllocHost_v2, |state, _| {
        const PAGE: usize = 4096;
        if bytes == 0 || pp.is_null() {
            return INVALID_VALUE;
        }
        let storage = vec![0u8; bytes + PAGE];
        let offset = (PAGE - storage.as_ptr() as usize % PAGE) % PAGE;
        let p = storage.as_ptr() as u64 + offset as u64;
        state.pinned.insert(
            p,
            Pinned {
                size: bytes,
                _storage: storage,
            },
        );
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { write(pp, p as *mut c_void) }
    })
}

/// cuMemFreeHost: only what cuMemAllocHost returned.
#[no_mangle]
pub extern "C" fn cuMemFreeHost(p: *mut c_void) -> CUresult {
    in_context(Call::cuMemFreeHost, |state, _| {
        match state.pinned.remove(&(p as u64)) {
            Some(_) => SUCCESS,
            None => INVALID_VALUE,
        }
    })
}

/// The fake runs only the legacy default stream: a stream handle gpuprobe
/// never makes is one it cannot have.
fn default_stream(stream: *mut c_void) -> bool {
    stream.is_null()
}

/// A copy between host memory and the device, queued on the default
/// stream: from or to pinned memory the call returns at once and the copy
/// runs on the stream; pageable memory is staged, which waits for the work
/// before it, and the call returns once the copy is done (CUDA driver API,
/// "API synchronization behavior", "Asynchronous"). A device with bad
/// memory returns bad words to the host here too.
unsafe fn copy_async(
    name: Call,
    host: *mut c_void,
    device: u64,
    bytes: usize,
    stream: *mut c_void,
    to_host: bool,
) -> CUresult {
    in_context(name, |state, d| {
        if !default_stream(stream) {
            return INVALID_HANDLE;
        }
        if host.is_null() || state.find(device, bytes).is_none() {
            return INVALID_VALUE;
        }
        let pinned = state.is_pinned(host as u64, bytes);
        if !pinned {
            state.settle(d);
        }
        let started = Instant::now();
        let copy = PendingCopy {
            host: host as u64,
            device,
            bytes,
            to_host,
        };
        if pinned {
            state.pending[d].push(copy);
        } else {
            // SAFETY: pointers from the caller, valid as cuda.h requires
            // (module doc); the device range was checked above.
            unsafe { copy.make(state.device(d), state.worked_ms(d)) };
        }
        let mut rate = state.device(d).host_bytes_per_second();
        if state.scenario.shared_host_link {
            // Other GPUs' host copies still in flight share the uplink.
            let others = (0..state.host_copy_upto.len())
                .filter(|&e| e != d && state.waited[e] < state.host_copy_upto[e])
                .count();
            rate /= (1 + others) as f64;
        }
        if pinned {
            state.queue(d, bytes as f64, rate, started.elapsed());
            state.host_copy_upto[d] = state.launched[d];
        } else {
            state.advance(d, bytes as f64, rate);
        }
        SUCCESS
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoDAsync_v2(
    dst: u64,
    src: *const c_void,
    bytes: usize,
    stream: *mut c_void,
) -> CUresult {
    // SAFETY: as cuda.h requires of the caller (module doc).
    unsafe {
        copy_async(
            Call::cuMemcpyHtoDAsync_v2,
            src.cast_mut(),
            dst,
            bytes,
            stream,
            false,
        )
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoHAsync_v2(
    dst: *mut c_void,
    src: u64,
    bytes: usize,
    stream: *mut c_void,
) -> CUresult {
    // SAFETY: as cuda.h requires of the caller (module doc).
    unsafe { copy_async(Call::cuMemcpyDtoHAsync_v2, dst, src, bytes, stream, true) }
}
