//! The link step of `fakegpu prepare`, done once per distinct library.
//!
//! A scenario's fake libraries differ only in what they export (its
//! `missing_symbols`) and in their file name and SONAME: everything else the
//! scenario decides is read from the scenario file at run time
//! (FAKEGPU_SCENARIO). Linking libfakegpu.a into a shared library takes
//! most of a prepare, so each distinct library is linked once into a cache
//! beside libfakegpu.a (target/<profile>/fakegpu-libs/) and hard-linked (or
//! copied, across file systems) into the scenario's folder.
//!
//! Many test processes prepare at once (cargo-nextest runs every test in its
//! own process), so the cache takes no lock: each process links into a
//! folder of its own and renames it into place; the first rename wins and
//! the others drop their copy. A reader only ever sees complete entries.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// What decides the bytes of one linked library.
pub struct Library<'a> {
    /// File name in the scenario folder, e.g. "libcuda.so.550.54.15".
    pub file: &'a str,
    pub soname: &'a str,
    /// Symbols in the dynamic table; everything else is local.
    pub exported: &'a [&'a str],
}

/// Puts `library` into `dir`, linking it only if no earlier prepare of this
/// build of the fake did.
pub fn place(library: &Library, dir: &Path) -> Result<(), String> {
    let archive = archive()?;
    let cached = cached(library, &archive)?;
    let target = dir.join(library.file);
    let _ = std::fs::remove_file(&target);
    if std::fs::hard_link(&cached, &target).is_err() {
        std::fs::copy(&cached, &target)
            .map_err(|e| format!("copying {} to {}: {e}", cached.display(), target.display()))?;
    }
    Ok(())
}

/// The cached library, linked now if it is not there yet.
fn cached(library: &Library, archive: &Path) -> Result<PathBuf, String> {
    /// Scratch folders this process has made, for unique names.
    static N: AtomicU32 = AtomicU32::new(0);
    let cache = archive.with_file_name("fakegpu-libs");
    // A rebuilt archive (new size or modification time) starts a new
    // generation; older generations are removed when the first library of
    // the new one is linked.
    let meta = std::fs::metadata(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let cc = compiler();
    let generation = format!(
        "{:016x}",
        fnv1a([meta.len().to_string().as_str(), &modified.to_string(), &cc])
    );
    let mut key = vec![library.file, library.soname];
    key.extend_from_slice(library.exported);
    let entry = cache.join(&generation).join(format!("{:016x}", fnv1a(key)));
    let file = entry.join(library.file);
    if file.exists() {
        return Ok(file);
    }
    std::fs::create_dir_all(cache.join(&generation))
        .map_err(|e| format!("{}: {e}", cache.display()))?;
    remove_other_generations(&cache, &generation);
    let scratch = cache.join(format!(
        "{generation}.tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let linked = link(library, archive, &cc, &scratch);
    let result = linked.and_then(|()| match std::fs::rename(&scratch, &entry) {
        Ok(()) => Ok(()),
        // Another process put the same entry in place first.
        Err(_) if file.exists() => Ok(()),
        Err(e) => Err(format!("{}: {e}", entry.display())),
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| file)
}

/// Best effort: a generation another process still reads from is in use only
/// by a stale build of the fake, and prepared folders hold their own links.
fn remove_other_generations(cache: &Path, current: &str) {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() == 16 && name != current {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// FNV-1a, 64 bits (a stable hash: the cache outlives the process), over
/// the parts with a separator between them.
fn fnv1a<'a>(parts: impl IntoIterator<Item = &'a str>) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// libfakegpu.a, which cargo builds beside this binary.
fn archive() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let lib = exe.with_file_name("libfakegpu.a");
    if lib.exists() {
        Ok(lib)
    } else {
        Err(format!(
            "{} not found: build with `cargo build -p fakegpu`",
            lib.display()
        ))
    }
}

/// Links `library` from the archive into `dir`, with a version script that
/// leaves only `exported` in the dynamic table, so dlsym sees what a real
/// (old) driver would export.
fn link(library: &Library, archive: &Path, cc: &str, dir: &Path) -> Result<(), String> {
    let map = dir.join(format!("{}.map", library.file));
    let mut script = String::from("{\n  global:\n");
    for symbol in library.exported {
        let _ = writeln!(script, "    {symbol};");
    }
    script.push_str("  local: *;\n};\n");
    std::fs::write(&map, script).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(cc);
    cmd.arg("-shared")
        .arg("-o")
        .arg(dir.join(library.file))
        .arg(format!("-Wl,-soname,{}", library.soname))
        .arg(format!("-Wl,--version-script={}", map.display()));
    for symbol in library.exported {
        cmd.arg(format!("-Wl,--undefined={symbol}"));
    }
    cmd.arg(archive)
        .args(["-lstdc++", "-lpthread", "-ldl", "-lm", "-lgcc_s", "-lc"]);
    let out = cmd
        .output()
        .map_err(|e| format!("running the linker: {e}"))?;
    let _ = std::fs::remove_file(&map);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "linking {} failed:\n{}",
            library.file,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
