//! The rules every call passes and the context calls: initialisation, the
//! scenario's faults (a failure, a hang, a corrupting copy), the calling
//! thread's current context and its sticky error, primary contexts
//! (refused by compute mode or out of memory), and the error texts.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void};

use super::devices::ordinal;
use super::{
    lock, write, CUresult, Call, State, CURRENT, ECC_UNCORRECTABLE, INVALID_CONTEXT,
    INVALID_DEVICE, INVALID_VALUE, LAUNCH_TIMEOUT, NOT_INITIALIZED, OUT_OF_MEMORY, SUCCESS,
    UNKNOWN,
};
use crate::scenario::HangScope;

enum Gate {
    Go,
    Fail(CUresult),
    Hang(HangScope),
    Corrupt(crate::scenario::Corruption),
}

/// Runs one API call: the initialisation rule, the scenario's faults, then
/// the call itself. `device` is the CUDA ordinal the call concerns, if any.
pub(super) fn call(
    name: Call,
    device: Option<usize>,
    needs_init: bool,
    body: impl FnOnce(&mut State) -> CUresult,
) -> CUresult {
    // Every call that reaches the driver takes its global lock first (see
    // driver_lock.rs); the error-text lookups are tables in the library.
    let held = (!matches!(name, Call::cuGetErrorName | Call::cuGetErrorString))
        .then(crate::driver_lock::acquire);
    let mut guard = lock();
    let state = match guard.as_mut() {
        Ok(state) => state,
        Err(message) => {
            eprintln!("fakegpu: {message}");
            return UNKNOWN;
        }
    };
    if state.scenario.missing_symbols.contains(&name) {
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

fn gate(state: &mut State, name: Call, device: Option<usize>) -> Gate {
    let real_device = device.and_then(|d| state.visible.get(d).copied());
    for (i, fault) in state.scenario.faults.iter().enumerate() {
        if fault.call != name || (fault.device.is_some() && fault.device != real_device) {
            continue;
        }
        state.fault_calls[i] += 1;
        if state.fault_calls[i] <= fault.after
            || fault
                .times
                .is_some_and(|t| state.fault_calls[i] > fault.after.saturating_add(t))
        {
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

pub(super) fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// Calls that only queue work on the stream and wait for nothing.
const QUEUEING: [Call; 4] = [
    Call::cuLaunchKernel,
    Call::cuEventRecord,
    Call::cuEventCreate,
    Call::cuEventDestroy_v2,
];

/// Sticky errors that the GPU meets while it runs queued work (a kernel
/// the watchdog killed, an uncorrectable ECC error in the context's
/// work): the host learns of them only at a call that waits for the GPU.
const ASYNCHRONOUS: [CUresult; 2] = [LAUNCH_TIMEOUT, ECC_UNCORRECTABLE];

/// Context-scoped calls: the current context's device, or INVALID_CONTEXT.
pub(super) fn in_context(name: Call, body: impl FnOnce(&mut State, usize) -> CUresult) -> CUresult {
    let dev = current();
    call(name, dev, true, |state| match dev {
        None => INVALID_CONTEXT,
        Some(d) => match context_error(state, d) {
            // A launch the watchdog killed, or one an uncorrectable error
            // hit, is known only to calls that wait for the GPU; queueing
            // more work (a launch, an event record) still returns success,
            // as on a real GPU. (A kernel queued on the dead context never
            // runs.)
            Some(code) if ASYNCHRONOUS.contains(&code) && name == Call::cuLaunchKernel => SUCCESS,
            Some(code) if ASYNCHRONOUS.contains(&code) && QUEUEING.contains(&name) => {
                body(state, d)
            }
            Some(code) => code,
            None => {
                // Recording or querying an event orders nothing before it
                // for the host; every other call here does.
                if name != Call::cuEventRecord && name != Call::cuEventQuery {
                    state.flush(d);
                }
                body(state, d)
            }
        },
    })
}

/// The context's sticky error: one already met, or the scenario's
/// `context_error` once the GPU's work has reached its phase (the work
/// running then is what the error hit), which stays from then on.
fn context_error(state: &mut State, d: usize) -> Option<CUresult> {
    if state.sticky[d].is_none() {
        let worked = state.worked_ms(d);
        state.sticky[d] = state
            .device(d)
            .context_error_after(worked)
            .map(crate::scenario::ContextError::code);
    }
    state.sticky[d]
}

pub(super) fn context_handle(ordinal: usize) -> *mut c_void {
    ((ordinal + 1) << 4) as *mut c_void
}

#[no_mangle]
pub unsafe extern "C" fn cuDevicePrimaryCtxRetain(ctx: *mut *mut c_void, dev: c_int) -> CUresult {
    call(
        Call::cuDevicePrimaryCtxRetain,
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
        Call::cuDevicePrimaryCtxRelease_v2,
        usize::try_from(dev).ok(),
        true,
        |state| {
            let Some(d) = ordinal(state, dev) else {
                return INVALID_DEVICE;
            };
            if state.contexts[d] > 0 {
                state.contexts[d] -= 1;
                // Destroying a context waits for its work, and ends the
                // peer access it gave or was given.
                if state.contexts[d] == 0 {
                    state.settle(d);
                    state.peers.retain(|&(from, to)| from != d && to != d);
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
    call(Call::cuCtxSetCurrent, dev, true, |state| {
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
    in_context(Call::cuCtxSynchronize, |state, d| {
        state.settle(d);
        SUCCESS
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
    let known = crate::errors::CUDA.iter().find(|(c, since, _, _)| {
        *c == code && crate::errors::cuda_knows(code, *since, state.scenario.driver_version)
    });
    let Some((_, _, name, text)) = known else {
        // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
        unsafe { *out = std::ptr::null() };
        return INVALID_VALUE;
    };
    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
    unsafe { *out = if description { text } else { name }.as_ptr() };
    SUCCESS
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorName(code: CUresult, out: *mut *const c_char) -> CUresult {
    call(Call::cuGetErrorName, None, false, |state| {
        error_text(state, code, out, false)
    })
}

#[no_mangle]
pub unsafe extern "C" fn cuGetErrorString(code: CUresult, out: *mut *const c_char) -> CUresult {
    call(Call::cuGetErrorString, None, false, |state| {
        error_text(state, code, out, true)
    })
}
