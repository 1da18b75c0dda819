//! Writing files so that a reader never sees a torn one, reading files that
//! may be hostile (a FIFO, /dev/urandom, a huge file) without blocking or
//! running out of memory, and writing to stderr without the risk of a panic.
use std::io::{Read as _, Write as _};
use std::path::Path;

/// `eprintln!` that cannot panic: a closed stderr (`2>&-`) is no reason for
/// a health check or an entrypoint to crash.
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that cannot panic (see `stderr_line!`).
macro_rules! stderr_text {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {stderr_line, stderr_text};

/// Writes `data` to `path` atomically: a temporary file created exclusively
/// beside the target (so a planted file or symlink there is never followed),
/// flushed to disk, then renamed over the target.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(
            ".{}.{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id(),
            nanos.wrapping_add(attempt)
        ));
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = file.write_all(data).and_then(|()| file.sync_all());
        drop(file);
        if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        return Ok(());
    }
    Err(std::io::Error::other(
        "could not create a temporary file beside the target",
    ))
}

/// Writes a report to `path`, as `--output` and `watch`'s files do:
/// - a regular file, or a path that does not exist yet (or a symlink to
///   either), is replaced atomically (`write_atomic`);
/// - a character device or a FIFO (`/dev/stdout`, `/proc/self/fd/1`, a pipe)
///   is written in place, as a shell redirection would; a FIFO with no reader
///   is an error, not a wait;
/// - anything else (a directory, a block device, a socket) is refused.
pub fn write_report(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let meta = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return write_atomic(path, data),
        other => other?,
    };
    if meta.is_file() {
        return write_atomic(path, data);
    }
    if meta.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    write_in_place(path, meta.file_type(), data)
}

#[cfg(unix)]
fn write_in_place(path: &Path, kind: std::fs::FileType, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    if !(kind.is_char_device() || kind.is_fifo()) {
        return Err(std::io::Error::other(
            "it is neither a regular file nor a character device or FIFO; not written",
        ));
    }
    // O_NONBLOCK: opening a FIFO nobody reads fails (ENXIO) instead of
    // waiting forever (fifo(7)); blocking writes are restored right after.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if kind.is_fifo() && e.raw_os_error() == Some(libc::ENXIO) {
                std::io::Error::other("it is a FIFO that nobody reads")
            } else {
                e
            }
        })?;
    set_blocking(&file)?;
    file.write_all(data)?;
    file.flush()
}

#[cfg(not(unix))]
fn write_in_place(_: &Path, _: std::fs::FileType, _: &[u8]) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "it is not a regular file; not written",
    ))
}

#[cfg(unix)]
fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fd is an open descriptor owned by `file`, which outlives both
    // calls; F_GETFL and F_SETFL only read and set its status flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Largest state file `health --state` reads. A report is a few KiB (a few
/// hundred KiB with many GPUs); anything near this is not one.
pub const MAX_REPORT_BYTES: u64 = 16 << 20;

/// Reads a file that must be a regular file of at most `limit` bytes,
/// without blocking: a FIFO, a device (`/dev/urandom`) or a directory is
/// refused after opening it non-blocking and looking at what was opened
/// (so no swap between a check and the open can fool it), and a larger file
/// is refused after reading `limit + 1` bytes, never more.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // fifo(7): a non-blocking open for reading succeeds at once even
        // with no writer.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.json");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_does_not_redirect_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let target = dir.path().join("state.json");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        write_atomic(&target, b"report").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "report");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(write_atomic(&dir.path().join("no/such/dir/report.json"), b"x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_device_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular_file(&fifo, MAX_REPORT_BYTES).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = read_regular_file(Path::new("/dev/zero"), MAX_REPORT_BYTES).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        // Writing to a FIFO nobody reads fails instead of waiting.
        assert!(write_report(&fifo, b"x").is_err());
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b' '; 101]).unwrap();
        assert!(read_regular_file(&big, 100).is_err());
        assert_eq!(read_regular_file(&big, 101).unwrap().len(), 101);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_in_place_not_replaced() {
        write_report(Path::new("/dev/null"), b"report").unwrap();
        let meta = std::fs::metadata("/dev/null").unwrap();
        assert!(!meta.is_file());
        let full = write_report(Path::new("/dev/full"), b"report");
        assert!(full.is_err(), "a full device must fail the write");
    }
}
