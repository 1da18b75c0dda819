//! The fake libcuda.so.1: the CUDA driver API calls gpuprobe makes.
//!
//! Behaviour follows the driver API documentation where gpuprobe could get it
//! wrong: calls before cuInit fail with CUDA_ERROR_NOT_INITIALIZED, context
//! calls need a current context on the calling thread, copies must stay inside
//! an allocation, launches are checked against the hardware limits, events
//! created without timing cannot be timed, and a kernel that writes outside
//! its buffers leaves the context with a sticky CUDA_ERROR_ILLEGAL_ADDRESS,
//! copies from and to pinned host memory (and between device buffers) run
//! after their call returns while pageable ones have finished by then, and
//! events see the work's modelled time (`State::modelled`). Kernels run the
//! project's own source on the CPU (emu/).
//!
//! Every `unsafe` block here dereferences a pointer the caller passed: an
//! out-parameter to write, or an input buffer, name or parameter array to
//! read. cuda.h requires the caller to pass valid pointers of the documented
//! size, as the real library does; the fake rejects null where the real one
//! does and, like it, trusts the caller for the rest.
#![allow(clippy::missing_safety_doc, non_snake_case)]

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::scenario::{parse_uuid, Device, HangScope, Scenario};

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
const INVALID_PTX: CUresult = 218;
const UNSUPPORTED_PTX_VERSION: CUresult = 222;
const INVALID_HANDLE: CUresult = 400;
const NOT_READY: CUresult = 600;
const NOT_FOUND: CUresult = 500;
const ILLEGAL_ADDRESS: CUresult = 700;
const LAUNCH_TIMEOUT: CUresult = 702;
const LAUNCH_FAILED: CUresult = 719;
const UNKNOWN: CUresult = 999;

/// Bytes of canary on each side of every allocation.
const REDZONE: usize = 256;
const CANARY: u8 = 0xA5;
/// cuMemAlloc's documented alignment.
const ALIGN: usize = 256;

extern "C" {
    fn fakegpu_kernel_arity(name: *const c_char) -> c_int;
    fn fakegpu_run_kernel(
        name: *const c_char,
        grid: *const c_uint,
        block: *const c_uint,
        params: *mut *mut c_void,
    ) -> c_int;
}

struct Alloc {
    device: usize,
    size: usize,
    /// Backing store; the device pointer is `data + offset`.
    storage: Vec<u8>,
    offset: usize,
}

impl Alloc {
    fn ptr(&self) -> u64 {
        self.storage.as_ptr() as u64 + self.offset as u64
    }

    fn redzones_intact(&self) -> bool {
        let before = &self.storage[self.offset - REDZONE..self.offset];
        let after = &self.storage[self.offset + self.size..self.offset + self.size + REDZONE];
        before.iter().chain(after).all(|b| *b == CANARY)
    }
}

struct Module {
    device: usize,
    entries: Vec<(String, usize)>,
}

struct Function {
    /// The module it came from: unloading the module invalidates it.
    module: usize,
    device: usize,
    name: std::ffi::CString,
    params: usize,
}

struct Event {
    timing: bool,
    recorded: Option<Instant>,
    /// The device's launch count when recorded: the event completes when
    /// the host has waited for that much work.
    after: u64,
}

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
    /// A sticky error per visible device, as after an illegal address.
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
    /// Per visible device: retains of its primary context.
    contexts: Vec<u32>,
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

/// A copy between host memory and the device, queued (pinned host memory)
/// or made at once (pageable).
struct PendingCopy {
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
    unsafe fn make(&self, device: &Device, worked_ms: f64) {
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
struct Pinned {
    size: usize,
    /// Backing store; the pointer is page-aligned inside it.
    _storage: Vec<u8>,
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
    fn publish(&self, ordinal: usize) {
        crate::rm::write(
            self.visible[ordinal],
            crate::rm::Rm {
                busy: self.launched[ordinal] > self.waited[ordinal],
                used_bytes: self.used_bytes(ordinal),
                worked_ms: self.worked_ms(ordinal),
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

    /// Whether `[ptr, ptr + len)` lies in one pinned host allocation.
    fn is_pinned(&self, ptr: u64, len: usize) -> bool {
        self.pinned
            .range(..=ptr)
            .next_back()
            .is_some_and(|(start, p)| ptr + len as u64 <= start + p.size as u64)
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

    /// The allocation holding `[ptr, ptr + len)`, if one does.
    fn find(&mut self, ptr: u64, len: usize) -> Option<&mut Alloc> {
        let (_, alloc) = self.allocs.range_mut(..=ptr).next_back()?;
        let end = alloc.ptr() + alloc.size as u64;
        (ptr + len as u64 <= end).then_some(alloc)
    }
}

/// `bytes` at `rate` bytes per second, when the rate is known.
fn modelled(bytes: f64, rate: f64) -> Option<std::time::Duration> {
    let seconds = bytes / rate;
    (rate > 0.0 && seconds.is_finite()).then(|| std::time::Duration::from_secs_f64(seconds))
}

/// Bytes a memory-bound kernel moves by its contract, from its parameters:
/// `gpuprobe_stream_copy(n, src, dst)` reads and writes n floats
/// (kernels/stream.cu), `gpuprobe_compare(n, got, want, differ)` reads two
/// sets of n words (kernels/compare.cu). Their time on a GPU is those bytes
/// at the memory's rate, whatever the emulation's cost.
///
/// # Safety
/// `params` holds the kernel's parameters, as cuLaunchKernel requires.
unsafe fn memory_bound_bytes(name: &CStr, params: *mut *mut c_void) -> Option<f64> {
    if (name != c"gpuprobe_stream_copy" && name != c"gpuprobe_compare") || params.is_null() {
        return None;
    }
    // SAFETY: the kernel's first parameter is an unsigned long long
    // (cuLaunchKernel's contract, module doc).
    let n = unsafe { (*params).cast::<u64>().read_unaligned() };
    Some(2.0 * 4.0 * n as f64)
}

static STATE: OnceLock<Mutex<Result<State, String>>> = OnceLock::new();
/// One launch at a time: `__shared__` variables are statics in the emulation.
static LAUNCH: Mutex<()> = Mutex::new(());

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
        contexts: vec![0; visible.len()],
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

/// A device CUDA can enumerate: a GPU, or one MIG instance of a GPU in MIG
/// mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Index into the scenario's devices.
    pub gpu: usize,
    /// Index into that GPU's `mig_instances`.
    pub mig: Option<usize>,
}

impl Target {
    /// What this target answers as a CUDA device.
    fn device(self, scenario: &Scenario) -> Device {
        let gpu = &scenario.devices[self.gpu];
        let Some(m) = self.mig else {
            return gpu.clone();
        };
        let instance = &gpu.mig_instances[m];
        Device {
            name: instance.name.clone(),
            uuid: instance.uuid.clone(),
            multiprocessors: instance.multiprocessors,
            memory_bytes: instance.memory_bytes,
            memory_used_bytes: 0,
            mig_instances: Vec::new(),
            mig_parent_uuid: Some(gpu.uuid.clone()),
            ..gpu.clone()
        }
    }
}

/// Every device CUDA could enumerate, in order: each GPU, or its MIG
/// instances when it has MIG mode on.
fn targets(scenario: &Scenario) -> Vec<Target> {
    let mut out = Vec::new();
    for (gpu, d) in scenario.devices.iter().enumerate() {
        if d.mig_instances.is_empty() {
            out.push(Target { gpu, mig: None });
        } else {
            out.extend((0..d.mig_instances.len()).map(|m| Target { gpu, mig: Some(m) }));
        }
    }
    out
}

/// CUDA_VISIBLE_DEVICES as the CUDA driver reads it: a comma list of
/// indices, UUID prefixes (`GPU-…`, `MIG-…`) or MIG instances in the older
/// `MIG-GPU-<gpu uuid>/<gi>/<ci>` form (NVIDIA MIG User Guide, "CUDA Device
/// Enumeration": both forms are accepted, the latter from the R450 and R460
/// drivers); the list ends at the first entry that names no device. A
/// process enumerates one MIG device at most (same section: with CUDA 11 and
/// 12, a CUDA process can enumerate only a single MIG device), so later MIG
/// devices are dropped.
pub fn visible_devices(scenario: &Scenario, var: Option<String>) -> Vec<Target> {
    let all = targets(scenario);
    let mut out: Vec<Target> = Vec::new();
    let one_mig =
        |out: &[Target], t: &Target| t.mig.is_none() || out.iter().all(|o| o.mig.is_none());
    let Some(var) = var else {
        for t in &all {
            if one_mig(&out, t) {
                out.push(*t);
            }
        }
        return out;
    };
    for entry in var.split(',').map(str::trim) {
        let found = if let Ok(i) = entry.parse::<usize>() {
            all.get(i).copied()
        } else if let Some(legacy) = entry.strip_prefix("MIG-GPU-") {
            let mut parts = legacy.split('/');
            let (parent, gi, ci) = (parts.next(), parts.next(), parts.next());
            all.iter().copied().find(|t| {
                let d = &scenario.devices[t.gpu];
                t.mig.is_some_and(|m| {
                    let inst = &d.mig_instances[m];
                    parent.is_some_and(|p| d.uuid.strip_prefix("GPU-") == Some(p))
                        && gi == Some(inst.gpu_instance_id.to_string().as_str())
                        && ci == Some(inst.compute_instance_id.to_string().as_str())
                })
            })
        } else if entry.starts_with("GPU-") || entry.starts_with("MIG-") {
            let matches: Vec<_> = all
                .iter()
                .copied()
                .filter(|t| t.device(scenario).uuid.starts_with(entry))
                .collect();
            (matches.len() == 1).then(|| matches[0])
        } else {
            None
        };
        match found {
            Some(t) if !out.contains(&t) => {
                if one_mig(&out, &t) {
                    out.push(t);
                }
            }
            _ => break,
        }
    }
    out
}

enum Gate {
    Go,
    Fail(CUresult),
    Hang(HangScope),
    Corrupt(crate::scenario::Corruption),
}

/// Runs one API call: the initialisation rule, the scenario's faults, then
/// the call itself. `device` is the CUDA ordinal the call concerns, if any.
fn call(
    name: &str,
    device: Option<usize>,
    needs_init: bool,
    body: impl FnOnce(&mut State) -> CUresult,
) -> CUresult {
    // Every call that reaches the driver takes its global lock first (see
    // driver_lock.rs); the error-text lookups are tables in the library.
    let held = (!name.starts_with("cuGetError")).then(crate::driver_lock::acquire);
    let mut guard = lock();
    let state = match guard.as_mut() {
        Ok(state) => state,
        Err(message) => {
            eprintln!("fakegpu: {message}");
            return UNKNOWN;
        }
    };
    if state.scenario.missing_symbols.iter().any(|s| s == name) {
        // The symbol is hidden from the dynamic table; reaching here means the
        // caller bypassed dlsym, which no real program can do.
        return UNKNOWN;
    }
    match gate(state, name, device) {
        Gate::Go => state.corruption = None,
        Gate::Corrupt(kind) => state.corruption = Some(kind),
        Gate::Fail(code) => return code,
        Gate::Hang(scope) => {
            // A wedged driver's hung call keeps the driver lock: every
            // other call, and the library's destructor at exit, waits on it
            // from now on. A GPU's own hang (a kernel that never finishes)
            // holds nothing of the driver's: the other GPUs go on.
            drop(guard);
            let _held = (scope == HangScope::Driver).then_some(held);
            loop {
                std::thread::park();
            }
        }
    }
    if needs_init && !state.initialized {
        return NOT_INITIALIZED;
    }
    body(state)
}

fn gate(state: &mut State, name: &str, device: Option<usize>) -> Gate {
    let real_device = device.and_then(|d| state.visible.get(d).copied());
    for (i, fault) in state.scenario.faults.iter().enumerate() {
        if fault.call != name || (fault.device.is_some() && fault.device != real_device) {
            continue;
        }
        state.fault_calls[i] += 1;
        if state.fault_calls[i] <= fault.after {
            continue;
        }
        if fault.hang {
            return Gate::Hang(fault.hang_scope);
        }
        if let Some(code) = fault.result {
            return Gate::Fail(code);
        }
        if let Some(kind) = fault.corrupt {
            return Gate::Corrupt(kind);
        }
    }
    Gate::Go
}

fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// Calls that only queue work on the stream and wait for nothing.
const QUEUEING: [&str; 4] = [
    "cuLaunchKernel",
    "cuEventRecord",
    "cuEventCreate",
    "cuEventDestroy_v2",
];

/// Context-scoped calls: the current context's device, or INVALID_CONTEXT.
fn in_context(name: &str, body: impl FnOnce(&mut State, usize) -> CUresult) -> CUresult {
    let dev = current();
    call(name, dev, true, |state| match dev {
        None => INVALID_CONTEXT,
        Some(d) => match state.sticky[d] {
            // A launch the watchdog killed is known only to calls that
            // wait for the GPU; queueing more work (a launch, an event
            // record) still returns success, as on a real GPU.
            // (A kernel queued on the dead context never runs.)
            Some(LAUNCH_TIMEOUT) if name == "cuLaunchKernel" => SUCCESS,
            Some(LAUNCH_TIMEOUT) if QUEUEING.contains(&name) => body(state, d),
            Some(code) => code,
            None => {
                // Recording or querying an event orders nothing before it
                // for the host; every other call here does.
                if name != "cuEventRecord" && name != "cuEventQuery" {
                    state.flush(d);
                }
                body(state, d)
            }
        },
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

#[no_mangle]
pub extern "C" fn cuInit(flags: c_uint) -> CUresult {
    call("cuInit", None, false, |state| {
        if flags != 0 {
            return INVALID_VALUE;
        }
        if state.scenario.host.runs_as_root {
            create_control_node();
        }
        if state.visible.is_empty() {
            return NO_DEVICE;
        }
        state.initialized = true;
        SUCCESS
    })
}

/// What NVIDIA's libcuda does in cuInit when run as root and /dev/nvidiactl
/// is missing: it creates the node (character device 195:255, mode 0666),
/// whether or not a kernel driver is there to answer it (seen with the 470,
/// 535 and 550 drivers on a machine without the kernel module).
#[cfg(unix)]
fn create_control_node() {
    let Some(root) = std::env::var_os("FAKEGPU_ROOT") else {
        return;
    };
    let path = std::path::Path::new(&root).join("dev/nvidiactl");
    if !path.exists() {
        let _ = crate::nodes::driverless(&path, 255);
    }
}

/// Windows has no device nodes.
#[cfg(not(unix))]
fn create_control_node() {}

#[no_mangle]
pub unsafe extern "C" fn cuDriverGetVersion(version: *mut c_int) -> CUresult {
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    call("cuDriverGetVersion", None, false, |state| unsafe {
        write(version, state.scenario.driver_version)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetCount(count: *mut c_int) -> CUresult {
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    call("cuDeviceGetCount", None, true, |state| unsafe {
        write(count, state.visible.len() as c_int)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGet(device: *mut c_int, ordinal: c_int) -> CUresult {
    call(
        "cuDeviceGet",
        usize::try_from(ordinal).ok(),
        true,
        |state| {
            if ordinal < 0 || ordinal as usize >= state.visible.len() {
                return INVALID_DEVICE;
            }
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe { write(device, ordinal) }
        },
    )
}

/// Validates a CUdevice handle (here the ordinal itself).
fn ordinal(state: &State, dev: c_int) -> Option<usize> {
    usize::try_from(dev)
        .ok()
        .filter(|d| *d < state.visible.len())
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetName(name: *mut c_char, len: c_int, dev: c_int) -> CUresult {
    call(
        "cuDeviceGetName",
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe { write_c_string(name, len, &state.device(d).name) },
        },
    )
}

#[repr(C)]
pub struct CUuuid {
    bytes: [u8; 16],
}

/// `v2`: cuDeviceGetUuid_v2, which gives a MIG instance's own UUID; the
/// older cuDeviceGetUuid gives its parent GPU's (CUDA 11.4 added _v2 for
/// this: "If the device is in MIG mode, returns its MIG UUID", CUDA driver
/// API, cuDeviceGetUuid_v2).
fn get_uuid(name: &str, uuid: *mut CUuuid, dev: c_int, v2: bool) -> CUresult {
    call(
        name,
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            Some(d) => {
                let device = state.device(d);
                let text = match &device.mig_parent_uuid {
                    Some(parent) if !v2 => parent,
                    _ => &device.uuid,
                };
                let bytes = parse_uuid(text).unwrap_or_default();
                // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
                unsafe { write(uuid, CUuuid { bytes }) }
            }
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid(uuid: *mut CUuuid, dev: c_int) -> CUresult {
    get_uuid("cuDeviceGetUuid", uuid, dev, false)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetUuid_v2(uuid: *mut CUuuid, dev: c_int) -> CUresult {
    get_uuid("cuDeviceGetUuid_v2", uuid, dev, true)
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetPCIBusId(id: *mut c_char, len: c_int, dev: c_int) -> CUresult {
    call(
        "cuDeviceGetPCIBusId",
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // CUDA writes a 4-digit domain ("0000:18:00.0", as
            // cudaDeviceGetPCIBusId and nvidia-smi -q's "Bus Id" in CUDA's
            // listing); NVML an 8-digit one ("00000000:18:00.0"): the same
            // address, which a reader matches by value.
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe {
                write_c_string(id, len, &cuda_bus_id(&state.device(d).pci_bus_id))
            },
        },
    )
}

/// `bus` (a scenario's NVML-style "00000000:18:00.0") in CUDA's form, with
/// a 4-digit domain: "0000:18:00.0".
fn cuda_bus_id(bus: &str) -> String {
    let mut parts = bus.splitn(2, ':');
    match (parts.next(), parts.next()) {
        (Some(domain), Some(rest)) => match u32::from_str_radix(domain, 16) {
            Ok(d) => format!("{d:04x}:{rest}"),
            Err(_) => bus.to_string(),
        },
        _ => bus.to_string(),
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceTotalMem_v2(bytes: *mut usize, dev: c_int) -> CUresult {
    call(
        "cuDeviceTotalMem_v2",
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            Some(d) => unsafe { write(bytes, state.device(d).memory_bytes as usize) },
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDeviceGetAttribute(
    value: *mut c_int,
    attrib: c_int,
    dev: c_int,
) -> CUresult {
    call(
        "cuDeviceGetAttribute",
        usize::try_from(dev).ok(),
        true,
        |state| {
            let Some(d) = ordinal(state, dev) else {
                return INVALID_DEVICE;
            };
            let device = state.device(d);
            let bus: Vec<i32> = device
                .pci_bus_id
                .split([':', '.'])
                .map(|p| i32::from_str_radix(p, 16).unwrap_or(0))
                .collect();
            // Attribute numbers: CUdevice_attribute in cuda.h.
            let v = match attrib {
                1 => 1024,                                   // MAX_THREADS_PER_BLOCK
                8 => 48 * 1024,                              // MAX_SHARED_MEMORY_PER_BLOCK
                10 => 32,                                    // WARP_SIZE
                13 => device.clock_mhz * 1000,               // CLOCK_RATE (kHz)
                16 => device.multiprocessors,                // MULTIPROCESSOR_COUNT
                33 => bus.get(1).copied().unwrap_or(0),      // PCI_BUS_ID
                34 => bus.get(2).copied().unwrap_or(0),      // PCI_DEVICE_ID
                36 => device.memory_clock_mhz * 1000,        // MEMORY_CLOCK_RATE (kHz)
                37 => device.memory_bus_width_bits,          // GLOBAL_MEMORY_BUS_WIDTH
                50 => bus.first().copied().unwrap_or(0),     // PCI_DOMAIN_ID
                75 => device.compute_capability[0],          // COMPUTE_CAPABILITY_MAJOR
                76 => device.compute_capability[1],          // COMPUTE_CAPABILITY_MINOR
                17 => i32::from(device.kernel_exec_timeout), // KERNEL_EXEC_TIMEOUT
                // COMPUTE_MODE: CUcomputemode, the same numbers as NVML's.
                20 => device.nvml.compute_mode as i32,
                _ => return INVALID_VALUE,
            };
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe { write(value, v) }
        },
    )
}

fn context_handle(ordinal: usize) -> *mut c_void {
    ((ordinal + 1) << 4) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, dev: c_int) -> CUresult {
    call(
        "cuDevicePrimaryCtxRetain",
        usize::try_from(dev).ok(),
        true,
        |state| match ordinal(state, dev) {
            None => INVALID_DEVICE,
            // Another process holds the GPU in EXCLUSIVE_PROCESS mode, or
            // the mode is PROHIBITED: the code the scenario's driver answers.
            Some(d) if state.device(d).refuses_context().is_some() => {
                // PROHIBITED: cuda.h documents 999 for the first retain;
                // later ones answer CUDA_ERROR_DEVICE_UNAVAILABLE (46).
                state.refusals[d] += 1;
                match state.device(d).refuses_context() {
                    Some(999) if state.refusals[d] > 1 => 46,
                    code => code.unwrap_or(UNKNOWN),
                }
            }
            Some(d) => {
                if state.contexts[d] == 0 {
                    let device = state.device(d);
                    let free = device
                        .memory_bytes
                        .saturating_sub(device.memory_used_bytes + state.used_bytes(d));
                    if device.context_bytes > free {
                        return OUT_OF_MEMORY;
                    }
                }
                state.contexts[d] += 1;
                state.publish(d);
                // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
                unsafe { write(ctx, context_handle(d)) }
            }
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRelease_v2(dev: c_int) -> CUresult {
    call(
        "cuDevicePrimaryCtxRelease_v2",
        usize::try_from(dev).ok(),
        true,
        |state| {
            let Some(d) = ordinal(state, dev) else {
                return INVALID_DEVICE;
            };
            if state.contexts[d] > 0 {
                state.contexts[d] -= 1;
                // Destroying a context waits for its work.
                if state.contexts[d] == 0 {
                    state.settle(d);
                }
                state.publish(d);
            }
            SUCCESS
        },
    )
}

#[no_mangle]
pub unsafe extern "C" fn cuCtxSetCurrent(ctx: *mut c_void) -> CUresult {
    let dev = (ctx as usize >> 4).checked_sub(1);
    call("cuCtxSetCurrent", dev, true, |state| {
        if ctx.is_null() {
            CURRENT.with(|c| c.set(None));
            return SUCCESS;
        }
        match dev.filter(|d| *d < state.visible.len() && context_handle(*d) == ctx) {
            None => INVALID_CONTEXT,
            Some(d) => {
                CURRENT.with(|c| c.set(Some(d)));
                SUCCESS
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn cuCtxSynchronize() -> CUresult {
    in_context("cuCtxSynchronize", |state, d| {
        state.settle(d);
        SUCCESS
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemGetInfo_v2(free: *mut usize, total: *mut usize) -> CUresult {
    in_context("cuMemGetInfo_v2", |state, d| {
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
    in_context("cuMemAlloc_v2", |state, d| {
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
    in_context("cuMemFree_v2", |state, d| match state.allocs.remove(&ptr) {
        Some(_) => {
            state.publish(d);
            SUCCESS
        }
        None => INVALID_VALUE,
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyHtoD_v2(dst: u64, src: *const c_void, bytes: usize) -> CUresult {
    in_context("cuMemcpyHtoD_v2", |state, d| {
        if src.is_null() {
            return INVALID_VALUE;
        }
        // A copy from pageable memory waits for the work before it (CUDA
        // driver API, "API synchronization behavior").
        state.settle(d);
        match state.find(dst, bytes) {
            None => INVALID_VALUE,
            Some(_) => {
                // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
                unsafe { std::ptr::copy_nonoverlapping(src.cast::<u8>(), dst as *mut u8, bytes) };
                state.advance(d, bytes as f64, state.device(d).host_bytes_per_second());
                SUCCESS
            }
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuMemcpyDtoH_v2(dst: *mut c_void, src: u64, bytes: usize) -> CUresult {
    in_context("cuMemcpyDtoH_v2", |state, d| {
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

/// cuMemcpyDtoD_v2: asynchronous to the host ("For transfers from device
/// memory to device memory, no host-side synchronization is performed",
/// CUDA driver API, "API synchronization behavior"); the GPU reads and
/// writes every byte, at the device's copy rate.
#[no_mangle]
pub extern "C" fn cuMemcpyDtoD_v2(dst: u64, src: u64, bytes: usize) -> CUresult {
    in_context("cuMemcpyDtoD_v2", |state, d| {
        if state.find(src, bytes).is_none() || state.find(dst, bytes).is_none() {
            return INVALID_VALUE;
        }
        let started = Instant::now();
        // SAFETY: both ranges lie in live allocations (checked above); they
        // may overlap, which `copy` allows.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        let rate = state.device(d).memory_bytes_per_second();
        state.queue(d, 2.0 * bytes as f64, rate, started.elapsed());
        SUCCESS
    })
}

/// cuMemAllocHost_v2: page-locked host memory, page-aligned (CUDA driver
/// API, cuMemAllocHost: "Allocates bytesize bytes of host memory that is
/// page-locked and accessible to the device"). A host that cannot lock that
/// much answers CUDA_ERROR_OUT_OF_MEMORY; scenarios make it so with a fault.
#[no_mangle]
pub unsafe extern "C" fn cuMemAllocHost_v2(pp: *mut *mut c_void, bytes: usize) -> CUresult {
    in_context("cuMemAllocHost_v2", |state, _| {
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
    in_context("cuMemFreeHost", |state, _| {
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
    name: &str,
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
            "cuMemcpyHtoDAsync_v2",
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
    unsafe { copy_async("cuMemcpyDtoHAsync_v2", dst, src, bytes, stream, true) }
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
    in_context("cuModuleLoadData", |state, d| {
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
    in_context("cuModuleUnload", |state, _| {
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
    in_context("cuModuleGetFunction", |state, _| {
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
    let r = in_context("cuLaunchKernel", |state, d| {
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
        launch = Some((name, grid, block, took.is_none()));
        // Queued: the GPU is busy until the host waits for it.
        state.launched[d] += 1;
        state.publish(d);
        SUCCESS
    });
    let Some((name, grid, block, unmodelled)) = launch else {
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
        // A hardware fault (the scenario's `corrupt_products`) is the
        // GPU's own: its places differ from GPU to GPU. A kernel bug
        // (`kernel_bug`) is the same everywhere.
        let faulty = state.device(d).corrupt_products_after(state.worked_ms(d));
        if faulty > 0 {
            // SAFETY: the launch's own parameters, as cuLaunchKernel
            // requires (module doc); its C lies in a live allocation.
            unsafe { corrupt_product(&name, params, faulty, d) };
        }
        let bug = state
            .scenario
            .kernel_bug
            .as_ref()
            .filter(|b| name.to_bytes().starts_with(b.kernel.as_bytes()))
            .map_or(0, |b| b.words);
        if bug > 0 {
            // SAFETY: as above.
            unsafe { corrupt_product(&name, params, bug, 0) };
        }
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

#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, flags: c_uint) -> CUresult {
    in_context("cuEventCreate", |state, _| {
        if flags & !0xF != 0 {
            return INVALID_VALUE;
        }
        let handle = state.handle();
        // CU_EVENT_DISABLE_TIMING = 2.
        state.events.insert(
            handle,
            Event {
                timing: flags & 2 == 0,
                recorded: None,
                after: 0,
            },
        );
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { write(event, handle as *mut c_void) }
    })
}

#[no_mangle]
pub extern "C" fn cuEventRecord(event: *mut c_void, stream: *mut c_void) -> CUresult {
    in_context("cuEventRecord", |state, d| {
        if !stream.is_null() {
            return INVALID_HANDLE;
        }
        let after = state.launched[d];
        let now = state.epoch + state.modelled[d];
        match state.events.get_mut(&(event as usize)) {
            None => INVALID_HANDLE,
            Some(e) => {
                // Launches run to completion inside cuLaunchKernel, so the
                // stream has reached this point now.
                e.recorded = Some(now);
                e.after = after;
                SUCCESS
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn cuEventSynchronize(event: *mut c_void) -> CUresult {
    in_context("cuEventSynchronize", |state, d| {
        match state.events.get(&(event as usize)).map(|e| e.after) {
            Some(after) => {
                state.waited_for(d, after);
                SUCCESS
            }
            None => INVALID_HANDLE,
        }
    })
}

/// CUDA_SUCCESS once the work before the event is done, CUDA_ERROR_NOT_READY
/// before (cuEventQuery); the fake's GPU finishes work when the host waits
/// for it (`State::launched`), so a query alone never sees it finish.
#[no_mangle]
pub extern "C" fn cuEventQuery(event: *mut c_void) -> CUresult {
    in_context("cuEventQuery", |state, d| {
        match state.events.get(&(event as usize)).map(|e| e.after) {
            Some(after) if after <= state.waited[d] => SUCCESS,
            Some(_) => NOT_READY,
            None => INVALID_HANDLE,
        }
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuEventElapsedTime(
    ms: *mut f32,
    start: *mut c_void,
    end: *mut c_void,
) -> CUresult {
    in_context("cuEventElapsedTime", |state, d| {
        let (Some(s), Some(e)) = (
            state.events.get(&(start as usize)),
            state.events.get(&(end as usize)),
        ) else {
            return INVALID_HANDLE;
        };
        // "If either event has not been completed ... CUDA_ERROR_NOT_READY"
        // (cuEventElapsedTime).
        if s.after.max(e.after) > state.waited[d] {
            return NOT_READY;
        }
        match (s.timing && e.timing, s.recorded, e.recorded) {
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            (true, Some(t0), Some(t1)) => unsafe {
                write(ms, t1.saturating_duration_since(t0).as_secs_f32() * 1000.0)
            },
            _ => INVALID_HANDLE,
        }
    })
}

#[no_mangle]
pub extern "C" fn cuEventDestroy_v2(event: *mut c_void) -> CUresult {
    in_context("cuEventDestroy_v2", |state, _| {
        match state.events.remove(&(event as usize)) {
            Some(_) => SUCCESS,
            None => INVALID_HANDLE,
        }
    })
}

/// cuGetErrorName / cuGetErrorString: the texts of the driver version the
/// scenario stands for (`crate::errors`); a code that driver does not know is
/// CUDA_ERROR_INVALID_VALUE with a null string, as the real driver answers.
fn error_text(
    state: &State,
    code: CUresult,
    out: *mut *const c_char,
    description: bool,
) -> CUresult {
    if out.is_null() {
        return INVALID_VALUE;
    }
    let known = crate::errors::CUDA
        .iter()
        .find(|(c, since, _, _)| *c == code && *since <= state.scenario.driver_version);
    match known {
        Some((_, _, name, text)) => {
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe {
                *out = if description {
                    text.as_ptr()
                } else {
                    name.as_ptr()
                }
            };
            SUCCESS
        }
        None => {
            // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
            unsafe { *out = std::ptr::null() };
            INVALID_VALUE
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(code: CUresult, out: *mut *const c_char) -> CUresult {
    call("cuGetErrorName", None, false, |state| {
        error_text(state, code, out, false)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(code: CUresult, out: *mut *const c_char) -> CUresult {
    call("cuGetErrorString", None, false, |state| {
        error_text(state, code, out, true)
    })
}

/// Every symbol this library exports as the CUDA driver, for the link step
/// that hides a scenario's `missing_symbols`.
pub const EXPORTS: &[&str] = &[
    "cuInit",
    "cuDriverGetVersion",
    "cuDeviceGetCount",
    "cuDeviceGet",
    "cuDeviceGetName",
    "cuDeviceGetUuid",
    "cuDeviceGetUuid_v2",
    "cuDeviceGetPCIBusId",
    "cuDeviceTotalMem_v2",
    "cuDeviceGetAttribute",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxSetCurrent",
    "cuCtxSynchronize",
    "cuMemGetInfo_v2",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemcpyHtoD_v2",
    "cuMemcpyDtoH_v2",
    "cuMemcpyDtoD_v2",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuMemAllocHost_v2",
    "cuMemFreeHost",
    "cuModuleLoadData",
    "cuModuleUnload",
    "cuModuleGetFunction",
    "cuLaunchKernel",
    "cuEventCreate",
    "cuEventRecord",
    "cuEventSynchronize",
    "cuEventQuery",
    "cuEventElapsedTime",
    "cuEventDestroy_v2",
    "cuGetErrorName",
    "cuGetErrorString",
];
