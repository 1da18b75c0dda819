//! Peer-to-peer between GPUs: cuDeviceCanAccessPeer from the scenario's
//! `peer.access`, peer access enabled per ordered pair of contexts
//! (cuCtxEnablePeerAccess, cuCtxDisablePeerAccess, with the errors the
//! driver API documents), and what the path between two GPUs does to the
//! data that crosses it (`peer.faults`): copies between GPUs and a kernel's
//! stores into a peer's memory. Without peer access a copy between GPUs is
//! staged through host memory and never meets the peer path; a kernel that
//! stores into a GPU it has no access to meets an illegal address.

use std::ffi::{c_int, c_uint, c_void};

use super::context::{call, current};
use super::devices::ordinal;
use super::{
    write, CUresult, Call, State, INVALID_CONTEXT, INVALID_DEVICE, INVALID_VALUE, SUCCESS,
};
use crate::scenario::{PeerFaultKind, PeerWriter};

/// cuda.h: "peer access is not supported between these two devices".
const PEER_ACCESS_UNSUPPORTED: CUresult = 217;
/// cuda.h: "peer access is already enabled".
const PEER_ACCESS_ALREADY_ENABLED: CUresult = 704;
/// cuda.h: "peer access has not been enabled".
const PEER_ACCESS_NOT_ENABLED: CUresult = 705;

impl State {
    /// Whether visible device `from` may access visible device `to`.
    pub(super) fn can_access_peer(&self, from: usize, to: usize) -> bool {
        self.scenario
            .peer
            .access
            .allows(self.visible[from], self.visible[to])
    }

    /// Whether `from`'s context has enabled access to `to`'s memory.
    pub(super) fn peer_enabled(&self, from: usize, to: usize) -> bool {
        self.peers.contains(&(from, to))
    }

    /// The visible device whose allocation holds `[ptr, ptr + len)`.
    pub(super) fn owner(&mut self, ptr: u64, len: usize) -> Option<usize> {
        self.find(ptr, len).map(|a| a.device)
    }

    /// What the peer path from `from` to `to` does to `bytes` at `dst` that
    /// `writer` has just written there; `before` is what they held (a
    /// dropped word keeps it).
    ///
    /// # Safety
    /// `[dst, dst + bytes)` lies in a live allocation, and `before` holds
    /// `bytes` bytes.
    pub(super) unsafe fn cross_peer_path(
        &self,
        (from, to): (usize, usize),
        writer: PeerWriter,
        dst: u64,
        before: &[u8],
    ) {
        let (from, to) = (self.visible[from], self.visible[to]);
        let words = before.len() / 4;
        for fault in &self.scenario.peer.faults {
            if fault.from != from || fault.to != to || !fault.writer.hits(writer) {
                continue;
            }
            for at in (0..words).step_by(fault.every) {
                // SAFETY: `at` < words, inside the range the caller promises.
                unsafe {
                    let word = (dst as *mut u32).add(at);
                    let new = match fault.kind {
                        PeerFaultKind::Drop => u32::from_le_bytes(
                            before[at * 4..at * 4 + 4].try_into().unwrap_or_default(),
                        ),
                        PeerFaultKind::Flip { bit } => word.read_unaligned() ^ (1 << bit),
                    };
                    word.write_unaligned(new);
                }
            }
        }
    }
}

/// cuDeviceCanAccessPeer: 1 where the scenario grants the ordered pair,
/// 0 otherwise and for a device and itself.
#[no_mangle]
pub unsafe extern "C" fn cuDeviceCanAccessPeer(
    can: *mut c_int,
    dev: c_int,
    peer: c_int,
) -> CUresult {
    call(
        Call::cuDeviceCanAccessPeer,
        usize::try_from(dev).ok(),
        true,
        |state| {
            if can.is_null() {
                return INVALID_VALUE;
            }
            match (ordinal(state, dev), ordinal(state, peer)) {
                (Some(d), Some(p)) => {
                    let answer = c_int::from(state.can_access_peer(d, p));
                    // SAFETY: pointers from the caller, valid as cuda.h requires (module doc).
                    unsafe { write(can, answer) }
                }
                _ => INVALID_DEVICE,
            }
        },
    )
}

/// The visible device of a context handle, if it names one.
fn context_device(state: &State, ctx: *mut c_void) -> Option<usize> {
    let d = (ctx as usize >> 4).checked_sub(1)?;
    (d < state.visible.len() && super::context::context_handle(d) == ctx && state.contexts[d] > 0)
        .then_some(d)
}

/// cuCtxEnablePeerAccess (CUDA driver API, "Peer Context Memory Access"):
/// INVALID_VALUE for flags other than 0; INVALID_CONTEXT without a current
/// context, for a peer context that is none or is the current one;
/// PEER_ACCESS_UNSUPPORTED where cuDeviceCanAccessPeer says no;
/// PEER_ACCESS_ALREADY_ENABLED the second time.
#[no_mangle]
pub extern "C" fn cuCtxEnablePeerAccess(peer: *mut c_void, flags: c_uint) -> CUresult {
    let dev = current();
    call(Call::cuCtxEnablePeerAccess, dev, true, |state| {
        if flags != 0 {
            return INVALID_VALUE;
        }
        let Some(d) = dev else {
            return INVALID_CONTEXT;
        };
        match context_device(state, peer) {
            None => INVALID_CONTEXT,
            Some(p) if p == d => INVALID_CONTEXT,
            Some(p) if !state.can_access_peer(d, p) => PEER_ACCESS_UNSUPPORTED,
            Some(p) if !state.peers.insert((d, p)) => PEER_ACCESS_ALREADY_ENABLED,
            Some(_) => SUCCESS,
        }
    })
}

/// cuCtxDisablePeerAccess: PEER_ACCESS_NOT_ENABLED where it was not.
#[no_mangle]
pub extern "C" fn cuCtxDisablePeerAccess(peer: *mut c_void) -> CUresult {
    let dev = current();
    call(Call::cuCtxDisablePeerAccess, dev, true, |state| {
        let Some(d) = dev else {
            return INVALID_CONTEXT;
        };
        match context_device(state, peer) {
            None => INVALID_CONTEXT,
            Some(p) if state.peers.remove(&(d, p)) => SUCCESS,
            Some(_) => PEER_ACCESS_NOT_ENABLED,
        }
    })
}
