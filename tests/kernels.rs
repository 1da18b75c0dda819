//! The kernels: the committed PTX is what the source compiles to, NVIDIA's
//! own assembler accepts it for every GPU generation gpuprobe targets, every
//! kernel's product at odd shapes equals the CPU's bit for bit on the fake
//! driver's emulation (the exact verification of src/verify/), and the
//! streaming kernel copies every float of odd lengths exactly, and nothing
//! past them.
//!
//! Both need tools that are not part of a Rust toolchain (clang-19, and
//! ptxas from the PyPI package nvidia-cuda-nvcc-cu12), so they are ignored
//! unless asked for (`--run-ignored all`; a plain run lists them as skipped).
//! Asked for without the tool, they say so and pass, unless
//! GPUPROBE_REQUIRE_TOOLS=1 (set by .ci/run), which makes a missing tool a
//! failure.
use std::path::PathBuf;
use std::process::Command;

use gpuprobe::cuda::kernels::{self, Mma, Sgemm};
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
    let stream = std::fs::read_to_string(common::root().join("kernels/stream.ptx")).unwrap();
    assert!(stream.lines().any(|l| l.trim() == ".version 4.2"));
    assert!(stream.lines().any(|l| l.trim() == ".target sm_52"));
    assert!(stream.contains(&format!(
        ".entry {}(",
        kernels::STREAM_COPY.to_str().unwrap()
    )));
    let compare = std::fs::read_to_string(common::root().join("kernels/compare.ptx")).unwrap();
    assert!(compare.lines().any(|l| l.trim() == ".version 4.2"));
    assert!(compare.lines().any(|l| l.trim() == ".target sm_52"));
    assert!(compare.contains(&format!(".entry {}(", kernels::COMPARE.to_str().unwrap())));
    let peer = std::fs::read_to_string(common::root().join("kernels/peer.ptx")).unwrap();
    assert!(peer.lines().any(|l| l.trim() == ".version 4.2"));
    assert!(peer.lines().any(|l| l.trim() == ".target sm_52"));
    assert!(peer.contains(&format!(
        ".entry {}(",
        kernels::PEER_WRITE.to_str().unwrap()
    )));
    let memtest = std::fs::read_to_string(common::root().join("kernels/memtest.ptx")).unwrap();
    assert!(memtest.lines().any(|l| l.trim() == ".version 4.2"));
    assert!(memtest.lines().any(|l| l.trim() == ".target sm_52"));
    for entry in kernels::MemtestKernel::ALL.map(kernels::MemtestKernel::entry) {
        let name = entry.to_str().unwrap();
        assert!(memtest.contains(&format!(".entry {name}(")), "{name}");
    }
    // mma.sync .tf32/.bf16 need sm_80 and PTX ISA 7.0, which CUDA 11.0
    // drivers JIT (PTX ISA release notes).
    let mma = std::fs::read_to_string(common::root().join("kernels/mma.ptx")).unwrap();
    assert!(
        mma.lines().any(|l| l.trim() == ".version 7.0"),
        "mma PTX ISA changed"
    );
    assert!(mma.lines().any(|l| l.trim() == ".target sm_80"));
    for entry in kernels::Mma::ALL.map(kernels::Mma::entry) {
        let name = entry.to_str().unwrap();
        assert!(mma.contains(&format!(".entry {name}(")), "{name}");
    }
}

#[test]
#[ignore = "needs ptxas (pip install nvidia-cuda-nvcc-cu12): run with --run-ignored all; .ci/run does, with GPUPROBE_REQUIRE_TOOLS=1"]
fn ptxas_assembles_the_ptx_for_sm_52_70_80_90() {
    let Some(ptxas) = ptxas() else {
        return missing("ptxas (pip install nvidia-cuda-nvcc-cu12)");
    };
    let dir = tempfile::tempdir().unwrap();
    let builds = [
        ("matmul.ptx", &["sm_52", "sm_70", "sm_80", "sm_90"][..]),
        ("stream.ptx", &["sm_52", "sm_70", "sm_80", "sm_90"][..]),
        ("compare.ptx", &["sm_52", "sm_70", "sm_80", "sm_90"][..]),
        ("memtest.ptx", &["sm_52", "sm_70", "sm_80", "sm_90"][..]),
        ("peer.ptx", &["sm_52", "sm_70", "sm_80", "sm_90"][..]),
        // Tensor-core PTX: sm_80 and newer only.
        ("mma.ptx", &["sm_80", "sm_90"][..]),
    ];
    for (ptx, arches) in builds {
        for arch in arches {
            let out = Command::new(&ptxas)
                .arg(format!("-arch={arch}"))
                .arg(common::root().join("kernels").join(ptx))
                .arg("-o")
                .arg(dir.path().join(format!("{arch}.cubin")))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ptxas -arch={arch} {ptx} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
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
/// as the probe checks it (both passes of src/verify/).
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
        // SAFETY: both FP32 kernels are GEMM kernels loaded in `ctx`; the
        // buffers hold m*k, k*n and m*n floats.
        unsafe {
            cuda::launch_gemm(
                ctx,
                &kernel,
                (grid, block),
                (m, n, k),
                [a.ptr, b.ptr, c.ptr],
            )
        }
        .unwrap();
        ctx.synchronize().unwrap();
        let mut out = vec![0f32; mu * nu];
        c.download(&mut out).unwrap();
        products.push(out);
    }
    verify::check(&inputs, &reference, &products[0], &products[1])
}

/// A tensor-core kernel's product of BF16-exact inputs at one shape,
/// checked bit for bit against the CPU (no rounding pass, as in the probe).
fn run_mma(
    ctx: &Context<'_>,
    mma: Mma,
    (m, n, k): (u32, u32, u32),
) -> gpuprobe::report::Verification {
    let kernel = Module::load(ctx, kernels::MMA_PTX)
        .unwrap()
        .kernel(mma.entry())
        .unwrap();
    let mut inputs = Inputs::generate(m, n, k, 5);
    for x in inputs.a.iter_mut().chain(inputs.b.iter_mut()) {
        *x = kernels::to_bf16_exact(*x);
    }
    let (mu, nu, ku) = (m as usize, n as usize, k as usize);
    let mut cpu = vec![0f32; mu * nu];
    gpuprobe::cpu::sgemm(mu, nu, ku, &inputs.a, &inputs.b, &mut cpu, 1);
    let reference = Reference::exact_only(cpu);
    let a = Buffer::alloc(ctx, mu * ku).unwrap();
    let b = Buffer::alloc(ctx, ku * nu).unwrap();
    let c = Buffer::alloc(ctx, mu * nu).unwrap();
    a.upload(&inputs.a).unwrap();
    b.upload(&inputs.b).unwrap();
    c.upload(&vec![f32::NAN; mu * nu]).unwrap();
    let (grid, block) = Mma::launch(m, n);
    // SAFETY: the mma kernels are GEMM kernels loaded in `ctx`; the buffers
    // hold m*k, k*n and m*n floats.
    unsafe {
        cuda::launch_gemm(
            ctx,
            &kernel,
            (grid, block),
            (m, n, k),
            [a.ptr, b.ptr, c.ptr],
        )
    }
    .unwrap();
    ctx.synchronize().unwrap();
    let mut out = vec![0f32; mu * nu];
    c.download(&mut out).unwrap();
    verify::check(&inputs, &reference, &out, &[])
}

/// Lengths the streaming kernel must copy exactly: less than one vector,
/// vectors and a tail, one step of a grid, a grid-stride loop of several
/// steps with a tail.
const STREAM_LENGTHS: &[usize] = &[1, 3, 4, 5, 1023, 4097, 70_001];

/// Copies `n` floats with the streaming kernel from `offset` floats into
/// one buffer to `offset` floats into another (an offset of 1 leaves the
/// pointers 4 bytes past 16-byte alignment: the scalar path), with the
/// launch gpuprobe uses for a GPU of `sms` SMs, and checks every float
/// arrived bit for bit and the float after the last was left alone.
fn stream_copies_exactly(
    ctx: &Context<'_>,
    kernel: &cuda::Kernel<'_>,
    n: usize,
    offset: usize,
    sms: u32,
) {
    // Bit patterns a copy must keep: NaNs with payloads, negative zero,
    // subnormals, each different from its neighbours.
    let source: Vec<f32> = (0..=offset + n)
        .map(|i| f32::from_bits((i as u32).wrapping_mul(0x9E37_79B9) ^ 0x7FC0_0001))
        .collect();
    let sentinel = vec![-7.5f32; source.len()];
    let src = Buffer::alloc(ctx, source.len()).unwrap();
    let dst = Buffer::alloc(ctx, source.len()).unwrap();
    src.upload(&source).unwrap();
    dst.upload(&sentinel).unwrap();
    let (grid, block) = kernels::stream_launch(n as u64, sms);
    let pointers = [src.ptr_at(offset).unwrap(), dst.ptr_at(offset).unwrap()];
    // SAFETY: the kernel is gpuprobe_stream_copy, loaded in `ctx`; both
    // pointers have `n` floats (and one more) after them in their buffers.
    unsafe { cuda::launch_stream_copy(ctx, kernel, (grid, block), n as u64, pointers) }.unwrap();
    ctx.synchronize().unwrap();
    let mut back = vec![0f32; source.len()];
    dst.download(&mut back).unwrap();
    let wrong = (0..back.len())
        .filter(|&i| {
            let expected = if (offset..offset + n).contains(&i) {
                source[i]
            } else {
                sentinel[i]
            };
            back[i].to_bits() != expected.to_bits()
        })
        .count();
    assert_eq!(wrong, 0, "n {n}, offset {offset}, grid {grid:?}");
}

/// Whether `gpuprobe_compare` flags `got` against `want` (n words each),
/// with the launch the burn uses on a GPU of `sms` SMs.
fn compare_flags(
    ctx: &Context<'_>,
    kernel: &cuda::Kernel<'_>,
    got: &[f32],
    want: &[f32],
    sms: u32,
) -> bool {
    let (g, w, flag) = (
        Buffer::alloc(ctx, got.len()).unwrap(),
        Buffer::alloc(ctx, want.len()).unwrap(),
        Buffer::alloc(ctx, 1).unwrap(),
    );
    g.upload(got).unwrap();
    w.upload(want).unwrap();
    flag.upload(&[0.0]).unwrap();
    let n = got.len() as u64;
    // SAFETY: the kernel is gpuprobe_compare, loaded in `ctx`; both inputs
    // hold `n` words, the flag one.
    unsafe {
        cuda::launch_compare(
            ctx,
            kernel,
            kernels::compare_launch(n, sms),
            n,
            [g.ptr, w.ptr, flag.ptr],
        )
    }
    .unwrap();
    let mut word = [0f32];
    flag.download(&mut word).unwrap();
    word[0].to_bits() != 0
}

/// The burn's comparison: silent for equal products (and for +0 against
/// −0), a flag for one flipped bit anywhere, a NaN's payload included, at
/// lengths that end inside a block, a grid step and a grid-stride loop.
fn compare_finds_every_difference(ctx: &Context<'_>, kernel: &cuda::Kernel<'_>) {
    for &n in STREAM_LENGTHS {
        let want: Vec<f32> = (0..n)
            .map(|i| f32::from_bits((i as u32).wrapping_mul(0x9E37_79B9) ^ 0x7FC0_0001))
            .collect();
        for sms in [1, 132] {
            assert!(
                !compare_flags(ctx, kernel, &want, &want, sms),
                "n {n}: equal"
            );
            for at in [0, n / 2, n - 1] {
                for bit in [0, 22, 31] {
                    let mut got = want.clone();
                    got[at] = f32::from_bits(got[at].to_bits() ^ (1 << bit));
                    assert!(
                        compare_flags(ctx, kernel, &got, &want, sms),
                        "n {n}, element {at}, bit {bit}, {sms} SMs"
                    );
                }
            }
        }
    }
    let zeros = [0.0f32, -0.0, 1.0];
    let signed = [-0.0f32, 0.0, 1.0];
    assert!(!compare_flags(ctx, kernel, &signed, &zeros, 1), "+0 is -0");
}

#[test]
fn kernels_are_exact_at_odd_shapes_on_the_emulator() {
    common::run_inner("healthy", "inner_kernels");
}

#[test]
#[ignore = "needs the fake driver on its library path; run by kernels_are_exact_at_odd_shapes_on_the_emulator"]
fn inner_kernels() {
    if std::env::var_os("FAKEGPU_SCENARIO").is_none() {
        eprintln!("inner test: runs inside kernels_are_exact_at_odd_shapes_on_the_emulator");
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
    for &shape in ODD_SHAPES {
        for mma in Mma::ALL {
            let v = run_mma(&ctx, mma, shape);
            let (m, n, k) = shape;
            assert!(
                v.passed && v.exact && v.mismatches == 0,
                "{mma:?} at {m}x{n}x{k}: {}",
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
    let stream = Module::load(&ctx, kernels::STREAM_PTX)
        .unwrap()
        .kernel(kernels::STREAM_COPY)
        .unwrap();
    for &n in STREAM_LENGTHS {
        // 132 SMs: one step of the grid covers most lengths; 1 SM: the
        // larger ones loop, vectors four at a time, then the rest.
        for (offset, sms) in [(0, 132), (1, 132), (0, 1), (1, 1)] {
            stream_copies_exactly(&ctx, &stream, n, offset, sms);
        }
    }
    let compare = Module::load(&ctx, kernels::COMPARE_PTX)
        .unwrap()
        .kernel(kernels::COMPARE)
        .unwrap();
    compare_finds_every_difference(&ctx, &compare);
    let peer = Module::load(&ctx, kernels::PEER_PTX)
        .unwrap()
        .kernel(kernels::PEER_WRITE)
        .unwrap();
    peer_write_stores_the_host_pattern(&ctx, &peer);
}

/// `gpuprobe_peer_write` into this GPU's own buffer stores exactly the words
/// the host's `peer_word` computes, at odd lengths and grids (one block
/// looping, several), and nothing past `n`.
fn peer_write_stores_the_host_pattern(ctx: &Context<'_>, kernel: &cuda::Kernel<'_>) {
    for (n, blocks) in [(1usize, 1u32), (255, 1), (1000, 3), (4099, 2)] {
        let buffer = cuda::Buffer::alloc(ctx, n + 1).unwrap();
        buffer
            .upload(&vec![f32::from_bits(0xDEAD_BEEF); n + 1])
            .unwrap();
        let seed = 0x5EED_0000 + n as u32;
        let (mut count, mut dst, mut s) = (n as u64, buffer.ptr, seed);
        let mut params: [*mut std::ffi::c_void; 3] = [
            (&raw mut count).cast(),
            (&raw mut dst).cast(),
            (&raw mut s).cast(),
        ];
        // SAFETY: the kernel's parameters `(n, dst, seed)`, in order; the
        // buffer holds n + 1 words.
        unsafe { cuda::launch(ctx, kernel, [blocks, 1, 1], [256, 1, 1], &mut params) }.unwrap();
        let mut got = vec![0f32; n + 1];
        buffer.download(&mut got).unwrap();
        for (at, word) in got[..n].iter().enumerate() {
            assert_eq!(
                word.to_bits(),
                kernels::peer_word(seed, at as u64),
                "n {n}, word {at}"
            );
        }
        assert_eq!(got[n].to_bits(), 0xDEAD_BEEF, "n {n}: stored past the end");
    }
}

/// The probe's tensor-core stage on a GPU with tensor cores (the healthy
/// scenario's H100, 9.0) and on one without mma.sync for TF32/BF16 (the
/// same scenario as a 7.0 GPU): it runs and reports both precisions on one,
/// and is skipped with the reason on the other.
#[test]
fn tensor_core_check_runs_on_sm_80_and_newer_and_skips_below() {
    let scenario: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::scenario("healthy")).unwrap())
            .unwrap();
    let mut volta = scenario.clone();
    for gpu in volta["devices"].as_array_mut().unwrap() {
        gpu["compute_capability"] = serde_json::json!([7, 0]);
    }
    let tmp = tempfile::tempdir().unwrap();
    for (name, value, runs) in [("hopper", &scenario, true), ("volta", &volta, false)] {
        let path = tmp.path().join(format!("{name}.json"));
        std::fs::write(&path, value.to_string()).unwrap();
        let dir = common::fake_driver(&path);
        let out = Command::new(assert_cmd::cargo::cargo_bin("gpuprobe"))
            .args(["--json", "--size", "48"])
            .envs(common::scenario_env(dir.path()))
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let device = &report["devices"][0];
        let check = device["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "tensor_cores")
            .unwrap_or_else(|| panic!("{name}: no tensor_cores check"));
        let tensor = device["tensor_cores"].as_array().unwrap();
        if runs {
            assert_eq!(check["status"], "pass", "{name}: {check}");
            let precisions: Vec<_> = tensor.iter().map(|t| t["precision"].clone()).collect();
            assert_eq!(precisions, ["tf32", "bf16"]);
            for t in tensor {
                assert_eq!(t["verification"]["passed"], true);
                assert_eq!(t["verification"]["elements"], 48 * 48);
                assert!(t["gpu_tflops"].as_f64().unwrap() > 0.0);
            }
        } else {
            assert_eq!(check["status"], "skip", "{name}: {check}");
            assert!(check["detail"]
                .as_str()
                .unwrap()
                .contains("compute capability 8.0"));
            assert!(tensor.is_empty());
            assert_eq!(out.status.code(), Some(0), "a skip is not a failure");
        }
    }
}
