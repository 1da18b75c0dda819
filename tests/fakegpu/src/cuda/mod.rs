//! The fake libcuda.so.1: the CUDA driver API calls gpuprobe makes.
//!
//! Behaviour follows the driver API documentation where gpuprobe could get it
//! wrong: calls before cuInit fail with CUDA_ERROR_NOT_INITIALIZED, context
//! calls need a current context on the calling thread, copies must stay inside
//! an allocation, launches are checked against the hardware limits, events
//! created without timing cannot be timed, and a kernel that writes outside
//! its buffers leaves the context with a sticky CUDA_ERROR_ILLEGAL_ADDRESS
//! (and a GPU past a scenario's `context_error` phase one with that error),
//! copies from and to pinned host memory (and between device buffers) run
//! after their call returns while pageable ones have finished by then, and
//! events see the work's modelled time (`State::modelled`). Kernels run the
//! project's own source on the CPU (emu/).
//!
//! Every `unsafe` block here dereferences a pointer the caller passed: an
//! out-parameter to write, or an input buffer, name or parameter array to
//! read. cuda.h requires the caller to pass valid pointers of the documented
//! size, as the real library does; the fake rejects null where the real one
//! does and, like it, trusts the caller for the rest; "(module doc)" in a
//! SAFETY comment of this module and its files points here.
//!
//! The calls are split by what they emulate: the rules every call passes
//! and the contexts (context.rs), initialisation and the devices
//! (devices.rs), memory and copies (memory.rs), modules and launches
//! (launch.rs), events (events.rs). This file holds the state they share.
#![allow(clippy::missing_safety_doc, non_snake_case)]

mod context;
mod devices;
mod events;
mod launch;
mod memory;
mod peer;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{c_char, c_int};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

pub use context::*;
pub use devices::*;
pub use events::*;
pub use launch::*;
pub use memory::*;
pub use peer::*;

use crate::scenario::{Device, Scenario};
use events::Event;
use launch::{Function, Module};
use memory::{Alloc, PendingCopy, Pinned};

type CUresult = c_int;

const SUCCESS: CUresult = 0;
const INVALID_VALUE: CUresult = 1;
const OUT_OF_MEMORY: CUresult = 2;
const NOT_INITIALIZED: CUresult = 3;
/// cuda.h: "requested CUDA device is unavailable at the current time.
/// Devices are often unavailable due to use of CU_COMPUTEMODE_EXCLUSIVE_PROCESS
/// or CU_COMPUTEMODE_PROHIBITED".
const NO_DEVICE: CUresult = 100;
const INVALID_DEVICE: CUresult = 101;
const INVALID_IMAGE: CUresult = 200;
const INVALID_CONTEXT: CUresult = 201;
/// cuda.h: "an uncorrectable ECC error was detected during execution"
/// (a scenario's `under_load` `context_error`).
const ECC_UNCORRECTABLE: CUresult = 214;
const INVALID_PTX: CUresult = 218;
const UNSUPPORTED_PTX_VERSION: CUresult = 222;
const INVALID_HANDLE: CUresult = 400;
const NOT_READY: CUresult = 600;
const NOT_FOUND: CUresult = 500;
const ILLEGAL_ADDRESS: CUresult = 700;
const LAUNCH_TIMEOUT: CUresult = 702;
const LAUNCH_FAILED: CUresult = 719;
/// CUDA_ERROR_SYSTEM_NOT_READY: "the system is not yet ready to start any
/// CUDA work" (cuda.h).
const SYSTEM_NOT_READY: CUresult = 802;
const UNKNOWN: CUresult = 999;

struct State {
    scenario: Scenario,
    /// CUDA ordinal -> scenario device index, after CUDA_VISIBLE_DEVICES
    /// (a MIG instance's is its parent GPU's, for faults).
    visible: Vec<usize>,
    /// CUDA ordinal -> what the device answers: a scenario GPU, or a MIG
    /// instance of one made into a device of its own.
    devices: Vec<Device>,
    initialized: bool,
    fault_calls: Vec<u32>,
    allocs: BTreeMap<u64, Alloc>,
    modules: HashMap<usize, Module>,
    functions: HashMap<usize, Function>,
    events: HashMap<usize, Event>,
    next_handle: usize,
    /// A sticky error per visible device (this process's context on it),
    /// as after an illegal address, a watchdog's kill or an uncorrectable
    /// ECC error in its work.
    sticky: Vec<Option<CUresult>>,
    /// Contexts refused so far, per visible device.
    refusals: Vec<u32>,
    /// Per visible device, the GPU time of the work queued on it so far:
    /// its event clock is `epoch` plus this. Launches take their modelled
    /// time (`launch_ns_per_thread`; a streaming kernel's bytes at the
    /// device's copy rate), or the emulation's own time where nothing models
    /// them; copies take their bytes at the device's copy or host-link rate.
    /// The time the fake itself spends (emulating, copying, locking) is the
    /// test machine's, not the GPU's, and time in which no work is queued
    /// does not pass on this clock: gpuprobe records its events next to its
    /// work, so no measurement of its spans an idle GPU.
    modelled: Vec<std::time::Duration>,
    epoch: Instant,
    /// A `corrupt` fault that fired on the call now running.
    corruption: Option<crate::scenario::Corruption>,
    /// Per visible device: launches queued, and how many of them the host
    /// has waited for. Kernels run to completion inside cuLaunchKernel, but
    /// the fake's GPU counts as busy (its PCIe link up, its events not
    /// complete) until the host synchronises with the work, as a host
    /// cannot see a real GPU finish before then.
    launched: Vec<u64>,
    waited: Vec<u64>,
    /// Per visible device: when it last went from idle to busy (`rm::Rm`),
    /// ms since the Unix epoch; `None` while idle.
    busy_since_ms: Vec<Option<f64>>,
    /// Per visible device: retains of its primary context.
    contexts: Vec<u32>,
    /// Ordered pairs of visible devices (from, to) whose `from` context has
    /// enabled access to `to`'s memory (cuCtxEnablePeerAccess); a context's
    /// end ends its pairs.
    peers: BTreeSet<(usize, usize)>,
    /// Page-locked host allocations (cuMemAllocHost_v2) by address.
    pinned: BTreeMap<u64, Pinned>,
    /// Per visible device: the launch count its last host copy finishes
    /// at; the copy is in flight while the host has not waited that far.
    host_copy_upto: Vec<u64>,
    /// Per visible device: copies to or from pinned host memory queued and
    /// not yet made. A GPU makes such a copy after the call returns ("the
    /// copy may be asynchronous", CUDA driver API, "API synchronization
    /// behavior"), so the host sees its bytes only once it has waited for
    /// it; the fake moves them at the next call that orders after them
    /// (a launch, another copy, a wait, a free), never before.
    pending: Vec<Vec<PendingCopy>>,
}

impl State {
    fn device(&self, ordinal: usize) -> &Device {
        &self.devices[ordinal]
    }

    fn handle(&mut self) -> usize {
        self.next_handle += 16;
        self.next_handle
    }

    /// Device memory this process takes on `ordinal`: its allocations and,
    /// while its context exists, the context's own cost.
    fn used_bytes(&self, ordinal: usize) -> u64 {
        let context = if self.contexts[ordinal] > 0 {
            self.device(ordinal).context_bytes
        } else {
            0
        };
        context
            + self
                .allocs
                .values()
                .filter(|a| a.device == ordinal)
                .map(|a| a.size as u64)
                .sum::<u64>()
    }

    /// Tells the kernel module (and so NVML) what this device holds now.
    fn publish(&mut self, ordinal: usize) {
        let busy = self.launched[ordinal] > self.waited[ordinal];
        let since = &mut self.busy_since_ms[ordinal];
        *since = if busy {
            Some(since.unwrap_or_else(crate::rm::now_ms))
        } else {
            None
        };
        let busy_since_ms = since.unwrap_or(0.0);
        crate::rm::write(
            self.visible[ordinal],
            crate::rm::Rm {
                busy,
                used_bytes: self.used_bytes(ordinal),
                worked_ms: self.worked_ms(ordinal),
                busy_since_ms,
            },
        );
    }

    /// How long the GPU has worked so far, ms: its event clock's distance
    /// from `epoch`, the clock of the scenario's `under_load` phases.
    fn worked_ms(&self, ordinal: usize) -> f64 {
        self.modelled[ordinal].as_secs_f64() * 1e3
    }

    /// Makes the queued copies of `ordinal` (see `pending`).
    fn flush(&mut self, ordinal: usize) {
        for c in std::mem::take(&mut self.pending[ordinal]) {
            // SAFETY: both ranges were checked live when the copy was
            // queued, and neither is freed before this runs: freeing goes
            // through `in_context`, which flushes first.
            unsafe { c.make(self.device(ordinal), self.worked_ms(ordinal)) };
        }
    }

    /// The host has waited for the device's work up to launch `upto`.
    fn waited_for(&mut self, ordinal: usize, upto: u64) {
        self.waited[ordinal] = self.waited[ordinal].max(upto);
        self.publish(ordinal);
    }

    /// The host has waited for all the device's work.
    fn settle(&mut self, ordinal: usize) {
        self.waited_for(ordinal, self.launched[ordinal]);
    }

    /// Work on `ordinal` that takes `bytes` at `rate` bytes per second of
    /// GPU time (the fake's own time `wall` where the rate is unknown) and
    /// is queued: the GPU is busy until the host waits for it.
    fn queue(&mut self, ordinal: usize, bytes: f64, rate: f64, wall: std::time::Duration) {
        self.modelled[ordinal] += modelled(bytes, rate).unwrap_or(wall);
        self.launched[ordinal] += 1;
        self.publish(ordinal);
    }

    /// A copy the host waited for, which took `bytes` at `rate` of GPU time.
    fn advance(&mut self, ordinal: usize, bytes: f64, rate: f64) {
        self.modelled[ordinal] += modelled(bytes, rate).unwrap_or_default();
        self.publish(ordinal);
    }
}

/// `bytes` at `rate` bytes per second, when the rate is known.
fn modelled(bytes: f64, rate: f64) -> Option<std::time::Duration> {
    let seconds = bytes / rate;
    (rate > 0.0 && seconds.is_finite()).then(|| std::time::Duration::from_secs_f64(seconds))
}

static STATE: OnceLock<Mutex<Result<State, String>>> = OnceLock::new();

thread_local! {
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn lock() -> MutexGuard<'static, Result<State, String>> {
    let cell = STATE.get_or_init(|| Mutex::new(load_state()));
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn load_state() -> Result<State, String> {
    let path =
        std::env::var("FAKEGPU_SCENARIO").map_err(|_| "FAKEGPU_SCENARIO is not set".to_string())?;
    let scenario = Scenario::load(&path)?;
    let targets = visible_devices(&scenario, std::env::var("CUDA_VISIBLE_DEVICES").ok());
    let devices = targets.iter().map(|t| t.device(&scenario)).collect();
    let visible: Vec<usize> = targets.iter().map(|t| t.gpu).collect();
    Ok(State {
        fault_calls: vec![0; scenario.faults.len()],
        sticky: vec![None; visible.len()],
        refusals: vec![0; visible.len()],
        launched: vec![0; visible.len()],
        waited: vec![0; visible.len()],
        busy_since_ms: vec![None; visible.len()],
        contexts: vec![0; visible.len()],
        peers: BTreeSet::new(),
        modelled: vec![std::time::Duration::ZERO; visible.len()],
        pinned: BTreeMap::new(),
        host_copy_upto: vec![0; visible.len()],
        pending: (0..visible.len()).map(|_| Vec::new()).collect(),
        epoch: Instant::now(),
        visible,
        devices,
        scenario,
        initialized: false,
        allocs: BTreeMap::new(),
        modules: HashMap::new(),
        functions: HashMap::new(),
        events: HashMap::new(),
        next_handle: 0x1000,
        corruption: None,
    })
}

unsafe fn write<T>(out: *mut T, value: T) -> CUresult {
    if out.is_null() {
        return INVALID_VALUE;
    }
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    unsafe { out.write(value) };
    SUCCESS
}

unsafe fn write_c_string(out: *mut c_char, len: c_int, text: &str) -> CUresult {
    if out.is_null() || len <= 0 {
        return INVALID_VALUE;
    }
    let bytes = text.as_bytes();
    let n = bytes.len().min(len as usize - 1);
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), out, n);
        *out.add(n) = 0;
    }
    SUCCESS
}

/// The driver API entry points this library exports, as one closed set
/// (`crate::names`): what a scenario's `faults[].call` and
/// `missing_symbols` may name, what `call` and `in_context` match faults
/// on, and (`EXPORTS`) what the link step puts in the dynamic table. Each
/// is a function of this module: the list cannot name one it lacks.
macro_rules! driver_api {
    ($($symbol:ident),+ $(,)?) => {
        crate::names::closed_set! {
            /// One entry point of the fake driver, named as its C symbol.
            #[allow(
                non_camel_case_types,
                reason = "each variant is the C symbol it stands for, spelt as a scenario names it"
            )]
            pub enum Call: "driver call" { $($symbol),+ }
        }

        // Each listed name is a function defined here.
        const _: () = { $(let _ = $symbol;)+ };
    };
}

driver_api! {
    cuInit,
    cuDriverGetVersion,
    cuDeviceGetCount,
    cuDeviceGet,
    cuDeviceGetName,
    cuDeviceGetUuid,
    cuDeviceGetUuid_v2,
    cuDeviceGetPCIBusId,
    cuDeviceTotalMem_v2,
    cuDeviceGetAttribute,
    cuDevicePrimaryCtxRetain,
    cuDevicePrimaryCtxRelease_v2,
    cuDeviceCanAccessPeer,
    cuCtxEnablePeerAccess,
    cuCtxDisablePeerAccess,
    cuCtxSetCurrent,
    cuCtxSynchronize,
    cuMemGetInfo_v2,
    cuMemAlloc_v2,
    cuMemFree_v2,
    cuMemcpyHtoD_v2,
    cuMemcpyDtoH_v2,
    cuMemcpyDtoD_v2,
    cuMemcpyHtoDAsync_v2,
    cuMemcpyDtoHAsync_v2,
    cuMemAllocHost_v2,
    cuMemFreeHost,
    cuModuleLoadData,
    cuModuleUnload,
    cuModuleGetFunction,
    cuLaunchKernel,
    cuEventCreate,
    cuEventRecord,
    cuEventSynchronize,
    cuEventQuery,
    cuEventElapsedTime,
    cuEventDestroy_v2,
    cuGetErrorName,
    cuGetErrorString,
}

/// Every symbol this library exports as the CUDA driver, for the link step
/// that hides a scenario's `missing_symbols`.
pub const EXPORTS: &[&str] = Call::NAMES;
