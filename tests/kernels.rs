//! The kernels' build products: the committed PTX is what the source
//! compiles to, and NVIDIA's own assembler accepts it for every GPU
//! generation gpuprobe targets.
//!
//! Both need tools that are not part of a Rust toolchain (clang-19, and
//! ptxas from the PyPI package nvidia-cuda-nvcc-cu12), so they are ignored
//! unless asked for (`--run-ignored all`; a plain run lists them as skipped).
//! Asked for without the tool, they say so and pass, unless
//! GPUPROBE_REQUIRE_TOOLS=1 (set by .ci/run), which makes a missing tool a
//! failure.
use std::path::PathBuf;
use std::process::Command;

mod common;

fn required() -> bool {
    std::env::var("GPUPROBE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

fn missing(tool: &str) {
    assert!(!required(), "{tool} not found and GPUPROBE_REQUIRE_TOOLS=1");
    eprintln!(
        "skipped: {tool} not found (install it, or set GPUPROBE_REQUIRE_TOOLS=1 to make this fail)"
    );
}

fn ptxas() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PTXAS") {
        return Some(PathBuf::from(p));
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import nvidia.cuda_nvcc as m; print(list(m.__path__)[0])",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let p = PathBuf::from(dir).join("bin/ptxas");
    p.exists().then_some(p)
}

#[test]
#[ignore = "needs clang-19: run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn committed_ptx_is_what_the_source_compiles_to() {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang-19".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        return missing(&clang);
    }
    let out = Command::new(common::root().join("scripts/build-ptx"))
        .arg("--check")
        .env("CLANG", &clang)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kernels/*.ptx is stale; run scripts/build-ptx:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ptx_is_old_enough_for_every_supported_driver() {
    let ptx = std::fs::read_to_string(common::root().join("kernels/matmul.ptx")).unwrap();
    // PTX ISA 4.2 is JIT-compiled by drivers from CUDA 7.0 on (PTX ISA release notes).
    assert!(
        ptx.lines().any(|l| l.trim() == ".version 4.2"),
        "PTX ISA changed"
    );
    assert!(ptx.lines().any(|l| l.trim() == ".target sm_52"));
    assert!(ptx.contains(".entry gpuprobe_sgemm_tiled("));
}

#[test]
#[ignore = "needs ptxas (pip install nvidia-cuda-nvcc-cu12): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn ptxas_assembles_the_ptx_for_sm_52_70_80_90() {
    let Some(ptxas) = ptxas() else {
        return missing("ptxas (pip install nvidia-cuda-nvcc-cu12)");
    };
    let dir = tempfile::tempdir().unwrap();
    for arch in ["sm_52", "sm_70", "sm_80", "sm_90"] {
        let out = Command::new(&ptxas)
            .arg(format!("-arch={arch}"))
            .arg(common::root().join("kernels/matmul.ptx"))
            .arg("-o")
            .arg(dir.path().join(format!("{arch}.cubin")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ptxas -arch={arch} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
