//! The kernels: the committed PTX is what the source compiles to, NVIDIA's
//! own assembler accepts it for every GPU generation gpuprobe targets, and
//! every kernel's product at odd shapes equals the CPU's bit for bit on the
//! fake driver's emulation (the exact verification of src/verify.rs).
//!
//! Both need tools that are not part of a Rust toolchain (clang-19, and
//! ptxas from the PyPI package nvidia-cuda-nvcc-cu12), so they are ignored
//! unless asked for (`--run-ignored all`; a plain run lists them as skipped).
//! Asked for without the tool, they say so and pass, unless
//! GPUPROBE_REQUIRE_TOOLS=1 (set by .ci/run), which makes a missing tool a
//! failure.
use std::path::PathBuf;
use std::process::Command;

use gpuprobe::cuda::kernels::{self, Sgemm};
use gpuprobe::cuda::{self as cuda, Buffer, Context, Driver, Module};
use gpuprobe::verify::{self, Inputs, Reference};

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
    assert!(ptx.contains(".entry gpuprobe_sgemm_fast("));
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

/// Shapes (m, n, k) the FP32 kernels must get exactly right: one element;
/// sizes that are no multiple of any tile (17, 127, 257); non-square; K not
/// a multiple of the 8-deep K slice; rows of A or B whose length is no
/// multiple of 4 (element-wise loads) and ones that are (128-bit loads),
/// with edge tiles in both cases.
const ODD_SHAPES: &[(u32, u32, u32)] = &[
    (1, 1, 1),
    (17, 17, 17),
    (127, 127, 127),
    (257, 257, 257),
    (1, 257, 3),
    (130, 5, 33),
    (33, 130, 47),
    (132, 136, 20),
    (64, 128, 96),
];

/// What the fake driver computed for one kernel, launch and shape, checked
/// as the probe checks it (both passes of src/verify.rs).
fn run_sgemm(
    ctx: &Context<'_>,
    sgemm: Sgemm,
    (m, n, k): (u32, u32, u32),
    grid: [u32; 3],
    block: [u32; 3],
) -> gpuprobe::report::Verification {
    let kernel = Module::load(ctx, kernels::MATMUL_PTX)
        .unwrap()
        .kernel(sgemm.entry())
        .unwrap();
    let inputs = Inputs::generate(m, n, k, 7);
    let (mu, nu, ku) = (m as usize, n as usize, k as usize);
    let mut cpu = vec![0f32; mu * nu];
    gpuprobe::cpu::sgemm(mu, nu, ku, &inputs.a, &inputs.b, &mut cpu, 1);
    let reference = Reference::new(&inputs, cpu, 11);
    let mut products = Vec::new();
    for (a_host, b_host) in [
        (&inputs.a, &inputs.b),
        (&inputs.rounding_a, &inputs.rounding_b),
    ] {
        let a = Buffer::alloc(ctx, a_host.len()).unwrap();
        let b = Buffer::alloc(ctx, b_host.len()).unwrap();
        let c = Buffer::alloc(ctx, mu * nu).unwrap();
        a.upload(a_host).unwrap();
        b.upload(b_host).unwrap();
        // NaN, so that an element the kernel never writes cannot pass.
        c.upload(&vec![f32::NAN; mu * nu]).unwrap();
        let (mut mm, mut nn, mut kk) = (m as i32, n as i32, k as i32);
        let (mut pa, mut pb, mut pc) = (a.ptr, b.ptr, c.ptr);
        let mut params: [*mut std::ffi::c_void; 6] = [
            (&raw mut mm).cast(),
            (&raw mut nn).cast(),
            (&raw mut kk).cast(),
            (&raw mut pa).cast(),
            (&raw mut pb).cast(),
            (&raw mut pc).cast(),
        ];
        // SAFETY: both FP32 kernels take (int, int, int, float*, float*,
        // float*), which `params` points to; the buffers hold m*k, k*n and
        // m*n floats.
        unsafe { cuda::launch(ctx, &kernel, grid, block, &mut params) }.unwrap();
        ctx.synchronize().unwrap();
        let mut out = vec![0f32; mu * nu];
        c.download(&mut out).unwrap();
        products.push(out);
    }
    verify::check(&inputs, &reference, &products[0], &products[1])
}

#[test]
fn fp32_kernels_are_exact_at_odd_shapes_on_the_emulator() {
    let (_cmd, dir) = common::command_with("healthy");
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "inner_fp32_kernels", "--ignored", "--nocapture"])
        .envs(common::scenario_env(dir.path()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs the fake driver on its library path; run by fp32_kernels_are_exact_at_odd_shapes_on_the_emulator"]
fn inner_fp32_kernels() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside fp32_kernels_are_exact_at_odd_shapes_on_the_emulator");
        return;
    }
    let driver = Driver::load().expect("the fake driver loads");
    driver.init().unwrap();
    let ctx = Context::bind(&driver, driver.device(0).unwrap()).unwrap();
    for &shape in ODD_SHAPES {
        let (m, n, k) = shape;
        // The tiled kernel is the old one: the small shapes are enough for
        // it, and keep the emulation short.
        let kinds: &[Sgemm] = if m.max(n).max(k) > 200 {
            &[Sgemm::Fast]
        } else {
            &[Sgemm::Fast, Sgemm::Tiled]
        };
        for &sgemm in kinds {
            let (grid, block) = sgemm.launch(m, n);
            let v = run_sgemm(&ctx, sgemm, shape, grid, block);
            assert!(
                v.passed && v.exact && v.mismatches == 0,
                "{sgemm:?} at {m}x{n}x{k}: {}",
                verify::failed_detail(&v)
            );
        }
    }
    // The check can fail: the fast kernel launched one block column short
    // leaves the last columns of C unwritten.
    let (m, n, k) = (17, 257, 9);
    let (mut grid, block) = Sgemm::Fast.launch(m, n);
    grid[0] -= 1;
    let v = run_sgemm(&ctx, Sgemm::Fast, (m, n, k), grid, block);
    assert!(
        !v.passed && v.mismatches >= u64::from(m),
        "short grid passed"
    );
    assert_eq!(
        Sgemm::for_shape(2048, 2048, 2048),
        Sgemm::Fast,
        "the probe's matmul runs the fast kernel"
    );
}
