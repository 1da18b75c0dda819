//! SIGTERM and SIGINT as a request to stop: `watch` ends its loop, and
//! `burn` ends its run early with a report of what it measured.
//!
//! As PID 1 in a container a process gets no default action for SIGTERM: if
//! it installs no handler, `docker stop` waits its grace period and kills it.
//! The handler only sets a flag (async-signal-safe); the loops poll it.
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM or SIGINT has arrived since `install`.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Routes SIGTERM and SIGINT to the stop flag.
#[cfg(unix)]
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// On Windows, Ctrl-C and `docker stop` end the process; nothing to install.
#[cfg(not(unix))]
pub fn install() {}
