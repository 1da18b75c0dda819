//! Events on the default stream: recorded at the device's modelled clock,
//! complete once the host has waited for the work before them, and timed
//! only when created with timing.

use std::ffi::{c_uint, c_void};
use std::time::Instant;

use super::context::in_context;
use super::{write, CUresult, Call, INVALID_HANDLE, INVALID_VALUE, NOT_READY, SUCCESS};

pub(super) struct Event {
    timing: bool,
    recorded: Option<Instant>,
    /// The device's launch count when recorded: the event completes when
    /// the host has waited for that much work.
    after: u64,
}

#[no_mangle]
pub unsafe extern "C" fn cuEventCreate(event: *mut *mut c_void, flags: c_uint) -> CUresult {
    in_context(Call::cuEventCreate, |state, _| {
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
    in_context(Call::cuEventRecord, |state, d| {
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
    in_context(Call::cuEventSynchronize, |state, d| {
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
    in_context(Call::cuEventQuery, |state, d| {
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
    in_context(Call::cuEventElapsedTime, |state, d| {
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
    in_context(Call::cuEventDestroy_v2, |state, _| {
        match state.events.remove(&(event as usize)) {
            Some(_) => SUCCESS,
            None => INVALID_HANDLE,
        }
    })
}
