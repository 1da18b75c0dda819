//! The driver's global lock, as a hung call leaves it.
//!
//! NVIDIA's user-space libraries reach the GPU through the kernel module's
//! resource manager, which serialises work on a lock of its own; a call that
//! never returns (a wedged GPU, a stuck ioctl) can keep holding it, and then
//! every other driver call waits, in this process and in others, and so do
//! the libraries' own exit-time destructors, which tear the driver's state
//! down through the same lock (FACTS.md section 11: "a wedged driver call can
//! hold the driver's internal lock; atexit handlers and library destructors
//! that call into the driver then block").
//!
//! The fake's libcuda.so.1 and libnvidia-ml.so.1 are two libraries with no
//! memory in common, as the real ones are, so the lock is a kernel object
//! both can reach: an exclusive flock(2) on one file of the prepared folder
//! (FAKEGPU_LOCK, written by `fakegpu prepare`). flock locks belong to an
//! open file description, so two opens in one process exclude each other
//! like two processes do, and the kernel drops a lock when its holder exits.
use std::fs::File;

/// A held driver lock; released when dropped (the descriptor is closed).
pub struct Held(#[allow(dead_code)] File);

/// Takes the driver lock, waiting as long as another call holds it; `None`
/// when the scenario was prepared without one (nothing to wait on). The
/// Windows build of the fake (nvcuda.dll under wine) models no lock: its
/// scenarios hang no call.
#[cfg(not(unix))]
#[must_use = "the lock is held only while the guard lives"]
pub fn acquire() -> Option<Held> {
    None
}

/// Takes the driver lock, waiting as long as another call holds it; `None`
/// when the scenario was prepared without one (nothing to wait on).
#[cfg(unix)]
#[must_use = "the lock is held only while the guard lives"]
pub fn acquire() -> Option<Held> {
    // Keeps the destructor in every library that takes the lock (an archive
    // member is linked only when something in it is needed).
    std::hint::black_box(&UNLOAD);
    let path = std::env::var_os("FAKEGPU_LOCK")?;
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .ok()?;
    loop {
        // SAFETY: the descriptor is open and owned by `file` for this call.
        let r = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        if r == 0 {
            return Some(Held(file));
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// The libraries' exit-time destructor: like the real driver's, it tears the
/// driver state down under the driver lock, so it waits for a hung call
/// that holds it. It runs from exit(3) and dlclose(3), never from _exit(2).
#[cfg(unix)]
extern "C" fn unload() {
    drop(acquire());
}

/// Registered in .fini_array, as a C++ static destructor or
/// `__attribute__((destructor))` of a shared library is.
#[cfg(unix)]
#[used]
#[link_section = ".fini_array"]
static UNLOAD: extern "C" fn() = unload;
