//! Docker helpers shared by the tests that build images FROM scratch out of
//! files on this machine (no registry is reachable): run docker, check for a
//! daemon (GPUPROBE_REQUIRE_DOCKER=1 turns its absence into a failure), copy
//! a binary's shared libraries into an image root.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running docker")
}

pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("GPUPROBE_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "no Docker daemon reachable and GPUPROBE_REQUIRE_DOCKER=1"
        );
        eprintln!(
            "skipped: no Docker daemon reachable (set GPUPROBE_REQUIRE_DOCKER=1 to make this fail)"
        );
    }
    ok
}

pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Copies `file` to the same absolute path under `root` (following links).
pub fn copy_into(root: &Path, file: &Path) {
    let target = root.join(file.strip_prefix("/").unwrap());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(file, &target).unwrap_or_else(|e| panic!("copying {}: {e}", file.display()));
    // Debug symbols are dead weight in the build context.
    let _ = Command::new("strip")
        .arg("--strip-debug")
        .arg(&target)
        .output();
}

/// The shared libraries `binary` loads, as ldd resolves them.
pub fn libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// An image built from a context folder; removed (and its context deleted)
/// when dropped.
pub struct Image {
    pub tag: String,
    _context: tempfile::TempDir,
}

impl Image {
    /// `docker build`s `context` (its Dockerfile and files) as a fresh tag
    /// starting with `prefix`.
    pub fn build(context: tempfile::TempDir, prefix: &str) -> Image {
        let tag = unique(prefix);
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(context.path())
            .output()
            .expect("running docker build");
        assert!(
            out.status.success(),
            "docker build failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Image {
            tag,
            _context: context,
        }
    }
}

impl Image {
    /// Owns an image made another way (`docker import`, a build with
    /// arguments), to be removed when dropped.
    pub fn adopt(tag: String, context: tempfile::TempDir) -> Image {
        Image {
            tag,
            _context: context,
        }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}
