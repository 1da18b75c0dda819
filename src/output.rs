//! Writing files so that a reader never sees a torn one, reading files that
//! may be hostile (a FIFO, /dev/urandom, a huge file) without blocking or
//! running out of memory, and writing to stderr without the risk of a panic.
//!
//! Every file a flag names (`--output`, `--plot`, `watch --state` and
//! `--prometheus`) goes through `write_report`, and is checked by
//! `check_writable` before the run starts, so a long `burn` cannot end by
//! losing its report to a missing folder.
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

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

/// Writes a report (or a plot) to the file a flag names:
/// - a regular file, or a name that does not exist yet, is replaced
///   atomically: a temporary file in the same folder, synced, renamed over
///   it. A symlink is followed to the file it names (a node_exporter
///   textfile folder, a Kubernetes ConfigMap-style `..data` link), which is
///   replaced in its own folder with its mode (and, for root, its owner)
///   kept; the link stays a link. A dangling link creates its target, as a
///   shell's `>` would;
/// - a character device or a FIFO (`/dev/stdout`, `/proc/self/fd/1`, a pipe)
///   is written in place, as a shell redirection would; a FIFO with no reader
///   is an error, not a wait. A regular file behind a `/proc/*/fd` link
///   (`/dev/stderr` redirected to a log) is open in some process, so it is
///   appended to in place, not replaced;
/// - anything else (a directory, a block device, a socket) is refused.
pub fn write_report(path: &Path, data: &[u8]) -> std::io::Result<()> {
    match resolve(path)? {
        Target::File { path: file, kept } => replace(&file, kept.as_ref(), data),
        Target::InPlace(kind) => write_in_place(path, kind, data),
    }
}

/// `--plot`'s writer: the same as `write_report` (a plot is a file a flag
/// names like any other).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    write_report(path, data)
}

/// Whether `write_report` could write `path`, asked before a run starts:
/// the same resolution, and for a file a temporary file really created (and
/// removed) in the folder the file would land in, which no permission bits
/// can stand in for (root, a read-only mount, /proc). A FIFO is not opened:
/// its reader may come later.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    match resolve(path)? {
        Target::File { path: file, .. } => {
            let (tmp, probe) = create_temp(&file)?;
            drop(probe);
            std::fs::remove_file(tmp)
        }
        Target::InPlace(_) => Ok(()),
    }
}

/// What a path a flag names comes to.
enum Target {
    /// A regular file to replace, or a name to create, at `path` (symlinks
    /// resolved); `kept` is the replaced file's metadata.
    File {
        path: PathBuf,
        kept: Option<std::fs::Metadata>,
    },
    /// Written in place through the path as given (the kernel follows it).
    InPlace(std::fs::FileType),
}

/// Symlinks followed before giving up, as the kernel's own limit
/// (path_resolution(7): 40 on Linux).
const MAX_LINKS: usize = 40;

fn resolve(path: &Path) -> std::io::Result<Target> {
    if names_a_folder(path) {
        return Err(std::io::Error::other(
            "the path ends with a slash, which names a folder",
        ));
    }
    // The kernel's view first: it alone follows /proc's fd links (whose
    // text, "pipe:[1234]", is no path).
    let followed = match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Err(std::io::Error::other("it is a directory")),
        Ok(meta) if !meta.is_file() => return in_place(meta.file_type()),
        Ok(meta) => Some(meta.file_type()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&current) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Target::File {
                    path: current,
                    kept: None,
                })
            }
            other => other?,
        };
        if meta.is_file() {
            return Ok(Target::File {
                path: current,
                kept: Some(meta),
            });
        }
        if !meta.file_type().is_symlink() {
            return Err(std::io::Error::other("it is not a regular file"));
        }
        let dir = folder_of(&current);
        if on_procfs(dir) {
            // A file a process has open (stdout redirected to a log): it
            // cannot be replaced, only written.
            return followed
                .map(Target::InPlace)
                .ok_or_else(|| std::io::ErrorKind::NotFound.into());
        }
        refuse_foreign_link(&meta, dir)?;
        current = dir.join(std::fs::read_link(&current)?);
    }
    Err(std::io::Error::other(format!(
        "more than {MAX_LINKS} symlinks to follow"
    )))
}

fn in_place(kind: std::fs::FileType) -> std::io::Result<Target> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_char_device() || kind.is_fifo() {
            return Ok(Target::InPlace(kind));
        }
    }
    let _ = kind;
    Err(std::io::Error::other(
        "it is neither a regular file nor a character device or FIFO; not written",
    ))
}

/// The folder a path's file lives in (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn names_a_folder(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    path.as_os_str().as_bytes().ends_with(b"/")
}

#[cfg(not(unix))]
fn names_a_folder(path: &Path) -> bool {
    let text = path.as_os_str().to_string_lossy();
    text.ends_with('/') || text.ends_with('\\')
}

/// Whether `dir` is on /proc, whose `fd` links lead to open files rather
/// than to paths (proc(5)); /proc and every folder in it share one device.
#[cfg(target_os = "linux")]
fn on_procfs(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(dir), std::fs::metadata("/proc")) {
        (Ok(d), Ok(proc)) => d.dev() == proc.dev(),
        _ => false,
    }
}

#[cfg(not(target_os = "linux"))]
fn on_procfs(_: &Path) -> bool {
    false
}

/// A symlink in a world-writable sticky folder (/tmp) is followed only when
/// this process's user or the folder's owner owns it: the rule of Linux's
/// fs.protected_symlinks (proc_sys_fs(5)), which a rename through a link
/// read with readlink would otherwise escape; without it, anyone could make
/// root's `--state /tmp/gpuprobe.json` replace /etc/shadow.
#[cfg(unix)]
fn refuse_foreign_link(link: &std::fs::Metadata, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let folder = std::fs::metadata(dir)?;
    let shared = folder.mode() & 0o1002 == 0o1002;
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    if shared && link.uid() != me && link.uid() != folder.uid() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "it is a symlink that user {} owns in the shared folder {}; not followed \
                 (as the kernel's fs.protected_symlinks)",
                link.uid(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)] // the unix version's signature
fn refuse_foreign_link(_: &std::fs::Metadata, _: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Creates a temporary file exclusively beside `file` (so a planted file or
/// symlink of that name is never followed). Its name is bounded whatever
/// the target's (a 250-byte name is valid; the same plus a suffix is not).
fn create_temp(file: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let dir = folder_of(file);
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?
        .to_string_lossy();
    let stem: String = name.chars().take(48).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..16u32 {
        let tmp = dir.join(format!(
            ".{stem}.{}.{}.tmp",
            std::process::id(),
            nanos.wrapping_add(attempt)
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !dir.is_dir() => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("the folder {} does not exist", dir.display()),
                ))
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot create a file in {}: {e}", dir.display()),
                ))
            }
        }
    }
    Err(std::io::Error::other(format!(
        "could not create a temporary file in {}",
        dir.display()
    )))
}

/// Replaces `file` (no symlink) atomically with `data`, keeping the mode
/// and owner of the file it replaces (`kept`), then syncs the folder so
/// the rename survives a crash.
fn replace(file: &Path, kept: Option<&std::fs::Metadata>, data: &[u8]) -> std::io::Result<()> {
    let (tmp, mut out) = create_temp(file)?;
    let written = kept
        .map_or(Ok(()), |old| keep_mode_and_owner(&out, old))
        .and_then(|()| out.write_all(data))
        .and_then(|()| out.sync_all());
    drop(out);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, file)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // Best effort: not every platform can open a folder to sync it.
    let _ = std::fs::File::open(folder_of(file)).and_then(|d| d.sync_all());
    Ok(())
}

/// The replacement keeps the replaced file's permission bits (a 0640 report
/// stays 0640, not the umask's 0644), and its owner and group where this
/// process may set them (root; a user for a group of theirs): the file
/// reads as it did before, for the collector that reads it.
#[cfg(unix)]
fn keep_mode_and_owner(out: &std::fs::File, old: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let mine = out.metadata()?;
    if (mine.uid(), mine.gid()) != (old.uid(), old.gid()) {
        // Refused for a user who is not root: the file is then theirs.
        let _ = std::os::unix::fs::fchown(out, Some(old.uid()), Some(old.gid()));
    }
    out.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o777))
}

#[cfg(not(unix))]
#[allow(clippy::unnecessary_wraps)] // the unix version's signature
fn keep_mode_and_owner(_: &std::fs::File, _: &std::fs::Metadata) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn write_in_place(path: &Path, kind: std::fs::FileType, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let mut options = std::fs::OpenOptions::new();
    if kind.is_file() {
        // A file some process has open: added to, never cut short.
        options.append(true);
    } else {
        // O_NONBLOCK: opening a FIFO nobody reads fails (ENXIO) instead of
        // waiting forever (fifo(7)); blocking writes are restored right after.
        options.write(true).custom_flags(libc::O_NONBLOCK);
    }
    let mut file = options.open(path).map_err(|e| {
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

    /// Every name in `dir` (to see that no temporary was left behind).
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_stays_a_link_and_its_target_is_replaced_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let collector = tempfile::tempdir().unwrap();
        let target = collector.path().join("gpu.prom");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = elsewhere.path().join("gpu.prom");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_report(&link, b"report").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "report");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "{mode:o}");
        // The temporary was made, and renamed, beside the target.
        assert_eq!(names(collector.path()), ["gpu.prom"]);
        assert_eq!(names(elsewhere.path()), ["gpu.prom"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_configmap_style_chain_is_followed_to_the_real_file() {
        // Kubernetes' atomic writer: file -> ..data/file, ..data -> ..<timestamp>.
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("..2026_01_01_00_00_00.1");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("report.json"), "old").unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
        let file = dir.path().join("report.json");
        std::os::unix::fs::symlink("..data/report.json", &file).unwrap();
        check_writable(&file).unwrap();
        write_report(&file, b"report").unwrap();
        for link in [&file, &dir.path().join("..data")] {
            let meta = std::fs::symlink_metadata(link).unwrap();
            assert!(meta.file_type().is_symlink(), "{}", link.display());
        }
        assert_eq!(
            std::fs::read_to_string(real.join("report.json")).unwrap(),
            "report"
        );
        assert_eq!(names(&real), ["report.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_symlink_gets_its_target_created() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("state.json");
        std::os::unix::fs::symlink("real.json", &link).unwrap();
        check_writable(&link).unwrap();
        write_report(&link, b"report").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("real.json")).unwrap(),
            "report"
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    /// Root's `--state /tmp/state.json`, where another user planted a link
    /// to a file of root's: the link is not followed (fs.protected_symlinks).
    #[cfg(unix)]
    #[test]
    fn a_link_another_user_planted_in_a_sticky_folder_is_not_followed() {
        use std::os::unix::fs::PermissionsExt as _;
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return; // Only root can plant a link as another user.
        }
        let shared = tempfile::tempdir().unwrap();
        std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(victim.path(), "secret").unwrap();
        let link = shared.path().join("state.json");
        std::os::unix::fs::symlink(victim.path(), &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65_534), Some(65_534)).unwrap();
        let e = check_writable(&link).unwrap_err();
        assert!(e.to_string().contains("fs.protected_symlinks"), "{e}");
        assert!(write_report(&link, b"report").is_err());
        assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "secret");
        // Root's own link there is followed.
        std::os::unix::fs::lchown(&link, Some(0), Some(0)).unwrap();
        write_report(&link, b"report").unwrap();
        assert_eq!(std::fs::read_to_string(victim.path()).unwrap(), "report");
    }

    #[test]
    fn a_long_valid_name_is_written() {
        // 250 bytes is a valid name (NAME_MAX is 255); its temporary's name
        // must not be longer than that.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r".repeat(250));
        check_writable(&file).unwrap();
        write_report(&file, b"report").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "report");
    }

    #[test]
    fn what_cannot_be_written_is_refused_beforehand_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let mut refused = vec![
            (dir.path().join("no/such/report.json"), "does not exist"),
            (dir.path().to_path_buf(), "directory"),
            (dir.path().join("x".repeat(300)), "too long"),
            (file.join("report.json"), "directory"),
            (dir.path().join("new/"), "slash"),
        ];
        // Where even root cannot create a file (root ignores permissions).
        #[cfg(target_os = "linux")]
        refused.push((PathBuf::from("/proc/gpuprobe-report.json"), "cannot create"));
        for (path, says) in refused {
            let e = check_writable(&path).unwrap_err().to_string();
            assert!(e.contains(says), "{}: {e}", path.display());
            assert!(write_report(&path, b"x").is_err(), "{}", path.display());
        }
        for path in [file.clone(), dir.path().join("new.json")] {
            check_writable(&path).unwrap();
        }
        assert_eq!(names(dir.path()), ["a-file"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_behind_a_proc_fd_link_is_appended_to_not_replaced() {
        use std::os::fd::AsRawFd as _;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        std::fs::write(&log, "before\n").unwrap();
        let open = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        let through = dir.path().join("stderr");
        std::os::unix::fs::symlink(format!("/proc/self/fd/{}", open.as_raw_fd()), &through)
            .unwrap();
        check_writable(&through).unwrap();
        write_report(&through, b"report\n").unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "before\nreport\n");
        assert!(std::fs::symlink_metadata(&through)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(names(dir.path()), ["log", "stderr"]);
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
