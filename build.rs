//! Build metadata for `gpuprobe --version`: the git commit and the target
//! triple, as environment variables the crate reads with `env!`.
//!
//! Outside a git checkout (a crate tarball, a vendored copy) or without git
//! installed, the commit is `unknown`; the build never fails for it.
use std::path::Path;
use std::process::Command;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=GPUPROBE_TARGET={target}");
    println!("cargo:rustc-env=GPUPROBE_GIT_COMMIT={}", commit());
    println!("cargo:rerun-if-env-changed=GPUPROBE_GIT_COMMIT");
}

/// Short hash, with `-dirty` when tracked files differ from it.
fn commit() -> String {
    if let Ok(forced) = std::env::var("GPUPROBE_GIT_COMMIT") {
        return forced;
    }
    // Only this crate's own repository counts: a tarball unpacked inside
    // some other checkout must not report that checkout's commit.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let toplevel = git(&["rev-parse", "--show-toplevel"]);
    let same = toplevel.is_some_and(|t| {
        Path::new(&t).canonicalize().ok() == Path::new(&manifest).canonicalize().ok()
    });
    let Some(git_dir) = git(&["rev-parse", "--git-dir"]).filter(|_| same) else {
        return "unknown".into();
    };
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it
    // points to (a commit), and the index (staging changes dirtiness).
    let git_dir = Path::new(&git_dir);
    println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
    println!("cargo:rerun-if-changed={}", git_dir.join("index").display());
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
            // A packed ref has no file of its own; watch packed-refs then.
            let loose = Path::new(&common).join(reference);
            let watched = if loose.exists() {
                loose
            } else {
                Path::new(&common).join("packed-refs")
            };
            println!("cargo:rerun-if-changed={}", watched.display());
        }
    }
    let Some(hash) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = Command::new("git")
        .args(["diff-index", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|s| s.code() == Some(1));
    if dirty {
        format!("{hash}-dirty")
    } else {
        hash
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}
